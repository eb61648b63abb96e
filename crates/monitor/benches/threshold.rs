//! `QueryThreshold` on SQLite (a file in a temporary directory), through
//! the very `Monitor` operation the gRPC handler calls, over one model's
//! stored outcomes: 30 days of them, evenly spread (every hour holds
//! outcomes in nearly every one of the 1 001 score bins, the histogram's
//! worst case), filled first through `record_outcomes` in batches of
//! 10 000 (compact outcomes: no raw inputs, 4 features) with one outcome in
//! ten labelled through `record_labels`, so `score_bins` is exactly what
//! ingestion and labelling make it.
//!
//! - `query_threshold/histogram_30_days`: the whole curve, the current and
//!   F1-best thresholds and one asked threshold over all 30 days (30 whole
//!   days: about 30 000 daily rows);
//! - `query_threshold/histogram_30_days_ragged`: the same from 05:00 on
//!   the first day to 21:00 on the last (28 whole days and 40 hours: about
//!   68 000 rows);
//! - `query_threshold/histogram_7_days`: the same over the last 7 days;
//! - `query_threshold/exact_7_hours`: the exact path over the first 7
//!   hours (about 97 000 outcomes at 10 M, under its 100 000 cap).
//!
//! `TRIAD_BENCH_OUTCOMES` sets how many outcomes are stored (default
//! 1 000 000; the documented figure uses 10 000 000, which takes a few
//! minutes to fill). Run with
//! `cargo bench -p triad-monitor --bench threshold`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use triad_monitor::{Monitor, Profiles, Store, StoreConfig};
use triad_proto::v1::{
    Label, Outcome, QueryThresholdRequest, RecordLabelsRequest, RecordOutcomesRequest,
};

/// Monday 2025-11-24T00:00:00Z: in the past, as every accepted time is.
const START: i64 = 1_763_942_400_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const DAYS: i64 = 30;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
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

/// Whether outcome `n` is truly positive (about 30 %).
fn positive(n: u64) -> bool {
    unit(n + 77) < 0.3
}

/// Outcome number `n` of model `m` version `1`, scored at `at_ms`: a
/// positive's score leans high, a negative's low.
fn outcome(n: u64, at_ms: i64) -> Outcome {
    let u = unit(n);
    let score = if positive(n) { 1.0 - u * u } else { u * u };
    Outcome {
        outcome_id: format!("req{}:m:1:b{}:i{n}", n / 50, n / 7),
        request_id: format!("req{}", n / 50),
        scored_at_ms: at_ms,
        model: "m".into(),
        version: "1".into(),
        schema_hash: "0f3c9a".into(),
        budget_id: format!("b{}", n / 7),
        itemization_id: format!("i{n}"),
        score,
        threshold: 0.5,
        matched: score >= 0.5,
        latency_ms: 4.0,
        shadow: false,
        budget: None,
        line_item: None,
        features: vec![score, 1.0, 0.0, unit(n + 9)],
        correlation_id: String::new(),
        not_scored: false,
        explanation: None,
    }
}

fn fill(rt: &tokio::runtime::Runtime, monitor: &Monitor, total: u64) {
    let started = Instant::now();
    let batch = 10_000_u64;
    let step = ((DAYS * DAY) / total as i64).max(1);
    let mut n = 0;
    while n < total {
        let end = (n + batch).min(total);
        let outcomes = (n..end)
            .map(|k| outcome(k, START + k as i64 * step))
            .collect();
        let request = RecordOutcomesRequest {
            outcomes,
            ..Default::default()
        };
        rt.block_on(monitor.record_outcomes(&request, 0)).unwrap();
        let labels = (n..end)
            .filter(|k| k.is_multiple_of(10))
            .map(|k| Label {
                model: "m".into(),
                budget_id: format!("b{}", k / 7),
                itemization_id: format!("i{k}"),
                label: positive(k),
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

fn query_threshold(c: &mut Criterion) {
    let total: u64 = std::env::var("TRIAD_BENCH_OUTCOMES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(Store::open(&StoreConfig {
            database_url: format!("sqlite://{}/monitor.db", dir.path().display()),
            ..StoreConfig::default()
        }))
        .unwrap();
    let monitor = Monitor::new(store, Profiles::disabled());
    fill(&rt, &monitor, total);
    let window = |from_ms: i64, to_ms: i64, exact: bool| QueryThresholdRequest {
        model: "m".into(),
        from_ms,
        to_ms,
        thresholds: vec![0.4],
        exact,
        ..Default::default()
    };
    let end = START + DAYS * DAY;
    let cases = [
        ("histogram_30_days", window(START, end, false)),
        (
            "histogram_30_days_ragged",
            window(START + 5 * HOUR + 123, end - 3 * HOUR - 77, false),
        ),
        ("histogram_7_days", window(end - 7 * DAY, end, false)),
        ("exact_7_hours", window(START, START + 7 * HOUR, true)),
    ];
    let all = rt.block_on(monitor.query_threshold(&cases[0].1)).unwrap();
    assert_eq!(all.outcomes, total);
    assert_eq!(all.labelled_positive + all.labelled_negative, total / 10);
    eprintln!(
        "30 days: {} curve points, best F1 at {:?}",
        all.curve.as_ref().map_or(0, |c| c.thresholds.len()),
        all.best_f1.as_ref().map(|p| p.threshold)
    );
    let mut group = c.benchmark_group("query_threshold");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for (name, request) in &cases {
        let answer = rt.block_on(monitor.query_threshold(request)).unwrap();
        eprintln!("{name}: {} outcomes", answer.outcomes);
        group.bench_function(format!("{name}_over_{total}_outcomes"), |b| {
            b.iter(|| {
                let response = rt
                    .block_on(monitor.query_threshold(black_box(request)))
                    .unwrap();
                black_box(response.outcomes)
            });
        });
    }
    group.finish();
    rt.block_on(monitor.close());
}

// What `criterion_group!` and `criterion_main!` expand to, without the
// undocumented `pub fn` the first one declares.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    query_threshold(&mut criterion);
    Criterion::default().configure_from_args().final_summary();
}
