//! The monitor's storage on SQLite (a file in a temporary directory), both
//! through the very `Monitor` operations the gRPC handlers call:
//!
//! - `ingest/batch_1000`: outcomes stored per second, in `RecordOutcomes`
//!   batches of 1 000 realistic outcomes (every raw input field, 35
//!   features with a few NaNs, fresh ids, 4 models x 2 versions over a
//!   day), into a growing table;
//! - `query_metrics/90_daily_buckets`: `QueryMetrics` (model, every
//!   primary version, day buckets, derived series) over 90 days of stored
//!   outcomes. The store is filled first through `record_outcomes` in
//!   batches of 10 000 (compact outcomes: no raw inputs, 4 features, to
//!   keep the file small) with one outcome in ten labelled through
//!   `record_labels`, so the counters are exactly what ingestion makes
//!   them. The query reads the hourly counters only, never the outcomes.
//!
//! `TRIAD_BENCH_OUTCOMES` sets how many outcomes the query bench stores
//! (default 1 000 000; the documented figure uses 10 000 000, which takes
//! a few minutes to fill). Run with
//! `cargo bench -p triad-monitor --bench store`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use triad_monitor::{Monitor, Profiles, Store, StoreConfig};
use triad_proto::v1::{
    Bucket, Budget, ExpenseLineItem, Label, Outcome, QueryMetricsRequest, RecordLabelsRequest,
    RecordOutcomesRequest,
};

/// Monday 2025-11-24T00:00:00Z: in the past, as every accepted time is.
const START: i64 = 1_763_942_400_000;
const DAY: i64 = 86_400_000;
const DAYS: i64 = 90;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn open(dir: &tempfile::TempDir) -> Monitor {
    let store = Store::open(&StoreConfig {
        database_url: format!("sqlite://{}/monitor.db", dir.path().display()),
        ..StoreConfig::default()
    })
    .await
    .unwrap();
    Monitor::new(store, Profiles::disabled())
}

/// A cheap deterministic generator (splitmix64).
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(n: u64) -> f32 {
    (mix(n) >> 40) as f32 / (1u64 << 24) as f32
}

/// Outcome number `n`: model `m{n%4}`, version `n%2+1`, scored at
/// `at_ms`; `full` adds every raw input and 35 features.
fn outcome(n: u64, at_ms: i64, full: bool) -> Outcome {
    let score = unit(n);
    let model = format!("m{}", n % 4);
    let (budget, line_item, features) = if full {
        let budget = Budget {
            budget_id: Some(format!("b{}", n / 7)),
            budget_price_budget: Some(format!("{:.2}", unit(n + 1) * 3000.0)),
            travel_vendor_receipts: (!n.is_multiple_of(5)).then(|| "Hilton|Delta".to_owned()),
            purchase_vendor_receipts: None,
            budget_type_budget: Some("travel".into()),
            generated_at_budget: Some("2026-11-01T08:00:00Z".into()),
            start_datetime_trips: Some("2026-11-10T00:00:00Z".into()),
            end_datetime_trips: Some("2026-11-14T00:00:00Z".into()),
            actual_cost_budget: Some(format!("{:.2}", unit(n + 2) * 2500.0)),
        };
        let item = ExpenseLineItem {
            itemization_id: Some(format!("i{n}")),
            expensed_amount_itemization: Some(format!("{:.2}", unit(n + 3) * 400.0)),
            expense_type_name_itemization: Some("Taxi".into()),
            transaction_date_itemization: Some("2026-11-11".into()),
            expense_category_itemization: Some("Ground Transportation".into()),
            vendor_name_expense: Some(format!("Vendor {}", n % 997)),
            expense_type_name_expense: Some("Taxi".into()),
            expense_category_expense: (!n.is_multiple_of(3)).then(|| "Travel".to_owned()),
        };
        let features = (0..35_u64)
            .map(|k| {
                if (n + k).is_multiple_of(11) {
                    f32::NAN
                } else {
                    unit(n * 64 + k)
                }
            })
            .collect();
        (Some(budget), Some(item), features)
    } else {
        (None, None, vec![score, 1.0, 0.0, unit(n + 9)])
    };
    Outcome {
        outcome_id: format!("req{}:{model}:{}:b{}:i{n}", n / 50, n % 2 + 1, n / 7),
        request_id: format!("req{}", n / 50),
        scored_at_ms: at_ms,
        model,
        version: format!("{}", n % 2 + 1),
        schema_hash: "0f3c9a".into(),
        budget_id: format!("b{}", n / 7),
        itemization_id: format!("i{n}"),
        score,
        threshold: 0.5,
        matched: score >= 0.5,
        latency_ms: 4.0 + unit(n + 5) * 10.0,
        shadow: false,
        budget,
        line_item,
        features,
        correlation_id: String::new(),
        not_scored: false,
        explanation: None,
    }
}

fn ingest(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let monitor = rt.block_on(open(&dir));
    let mut next = 0_u64;
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1_000));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("batch_1000", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let outcomes = (next..next + 1_000)
                    .map(|n| outcome(n, START + (n as i64 * 86) % DAY, true))
                    .collect();
                next += 1_000;
                let request = RecordOutcomesRequest {
                    outcomes,
                    ..Default::default()
                };
                let started = Instant::now();
                let response = rt.block_on(monitor.record_outcomes(&request, 0)).unwrap();
                spent += started.elapsed();
                assert_eq!(response.stored, 1_000);
            }
            spent
        });
    });
    group.finish();
    rt.block_on(monitor.close());
}

fn fill(rt: &tokio::runtime::Runtime, monitor: &Monitor, total: u64) {
    let started = Instant::now();
    let batch = 10_000_u64;
    let step = (DAYS * DAY) / total as i64;
    let mut n = 0;
    while n < total {
        let end = (n + batch).min(total);
        let outcomes = (n..end)
            .map(|k| outcome(k, START + k as i64 * step.max(1), false))
            .collect();
        let request = RecordOutcomesRequest {
            outcomes,
            ..Default::default()
        };
        rt.block_on(monitor.record_outcomes(&request, 0)).unwrap();
        let labels = (n..end)
            .filter(|k| k.is_multiple_of(10))
            .map(|k| Label {
                model: format!("m{}", k % 4),
                budget_id: format!("b{}", k / 7),
                itemization_id: format!("i{k}"),
                label: unit(k + 77) < 0.6,
                source: "bench".into(),
                ..Default::default()
            })
            .collect();
        rt.block_on(monitor.record_labels(&RecordLabelsRequest { labels }))
            .unwrap();
        n = end;
    }
    eprintln!(
        "stored {total} outcomes and {} labels in {:.1} s ({:.0} outcomes/s with labels)",
        total / 10,
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64()
    );
}

fn query_metrics(c: &mut Criterion) {
    let total: u64 = std::env::var("TRIAD_BENCH_OUTCOMES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let monitor = rt.block_on(open(&dir));
    fill(&rt, &monitor, total);
    let request = QueryMetricsRequest {
        model: "m1".into(),
        bucket: Bucket::Day.into(),
        ..Default::default()
    };
    let response = rt.block_on(monitor.query_metrics(&request)).unwrap();
    assert_eq!(response.points.len(), DAYS as usize);
    let counted: u64 = response.points.iter().map(|p| p.count).sum();
    assert_eq!(counted, total / 4);
    let mut group = c.benchmark_group("query_metrics");
    group.sample_size(30);
    group.bench_function(format!("90_daily_buckets_over_{total}_outcomes"), |b| {
        b.iter(|| {
            let response = rt
                .block_on(monitor.query_metrics(black_box(&request)))
                .unwrap();
            black_box(response.points.len())
        });
    });
    group.finish();
    rt.block_on(monitor.close());
}

// What `criterion_group!` and `criterion_main!` expand to, without the
// undocumented `pub fn` the first one declares.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    ingest(&mut criterion);
    query_metrics(&mut criterion);
    Criterion::default().configure_from_args().final_summary();
}
