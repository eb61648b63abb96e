//! Alert evaluation (`Monitor::evaluate_alerts`, what the background task
//! runs after each day closes) on SQLite, for 100 models of one primary
//! version each over 90 daily buckets (every threshold's `history_days`
//! set to 90): `alerts/evaluate_100_models_90_days`.
//!
//! The store holds one outcome per model and hour over the 90 days
//! (216 000 outcomes, so 216 000 hourly counter rows: the most counter rows
//! 100 models make over 90 days), one in ten labelled, recorded through
//! `record_outcomes` and `record_labels` so the counters are exactly what
//! ingestion makes them. Evaluated at a fixed time after the last day
//! closed; after the first evaluation the firing state is unchanged, so
//! each measured evaluation reads everything and writes nothing (the
//! steady state). No reference profiles: drift is left out (it reads up
//! to `drift_max_rows` raw outcomes per version; see docs/performance.md).
//! `alerts/rules_100_models_90_days` is the rules alone (what
//! `app/alerts/rules.rs` computes) over the same 100 series of 90 daily
//! points, read beforehand with `QueryMetrics`.
//! Run with `cargo bench -p triad-monitor --bench alerts`.

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use triad_monitor::{AlertSettings, Monitor, Profiles, Store, StoreConfig, Thresholds};
use triad_proto::v1::{Label, Outcome, RecordLabelsRequest, RecordOutcomesRequest};

/// Monday 2025-11-24T00:00:00Z: in the past, as every accepted time is.
const START: i64 = 1_763_942_400_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const DAYS: i64 = 90;
const MODELS: u64 = 100;

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

/// Outcome `n` of hour `hour`: model `m{n % MODELS}`, version 1.
fn outcome(n: u64, hour: i64) -> Outcome {
    let score = unit(n);
    Outcome {
        outcome_id: format!("o{n}"),
        request_id: format!("r{n}"),
        scored_at_ms: START + hour * HOUR,
        model: format!("m{}", n % MODELS),
        version: "1".into(),
        schema_hash: "0f3c9a".into(),
        budget_id: format!("b{n}"),
        itemization_id: format!("i{n}"),
        score,
        threshold: 0.5,
        matched: score >= 0.5,
        latency_ms: 4.0,
        features: vec![score, 1.0],
        ..Outcome::default()
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = AlertSettings {
        defaults: Thresholds {
            history_days: DAYS as u32,
            ..Thresholds::default()
        },
        ..AlertSettings::default()
    };
    let monitor = rt.block_on(async {
        let store = Store::open(&StoreConfig {
            database_url: format!("sqlite://{}/monitor.db", dir.path().display()),
            ..StoreConfig::default()
        })
        .await
        .unwrap();
        Monitor::new(store, Profiles::disabled()).with_alert_settings(settings)
    });
    let started = Instant::now();
    for hour in 0..DAYS * 24 {
        let first = hour as u64 * MODELS;
        let outcomes = (first..first + MODELS).map(|n| outcome(n, hour)).collect();
        rt.block_on(monitor.record_outcomes(
            &RecordOutcomesRequest {
                outcomes,
                ..Default::default()
            },
            0,
        ))
        .unwrap();
        let labels = (first..first + MODELS)
            .filter(|n| n.is_multiple_of(10))
            .map(|n| Label {
                model: format!("m{}", n % MODELS),
                budget_id: format!("b{n}"),
                itemization_id: format!("i{n}"),
                label: unit(n + 77) < 0.6,
                source: "bench".into(),
                ..Default::default()
            })
            .collect();
        rt.block_on(monitor.record_labels(&RecordLabelsRequest { labels }))
            .unwrap();
    }
    eprintln!(
        "stored {} outcomes in {:.1} s",
        DAYS as u64 * 24 * MODELS,
        started.elapsed().as_secs_f64()
    );
    let now = START + DAYS * DAY + 10 * 60_000;
    let first = rt.block_on(monitor.evaluate_alerts(now)).unwrap();
    eprintln!(
        "first evaluation: {} alerts firing ({:?})",
        first.firing.len(),
        first
            .firing
            .iter()
            .map(|a| a.name.as_str())
            .collect::<std::collections::BTreeSet<_>>()
    );
    // The rules alone over the same 100 series of 90 daily points, as
    // `QueryMetrics` reads them.
    let series: Vec<Vec<triad_proto::v1::MetricPoint>> = (0..MODELS)
        .map(|m| {
            let request = triad_proto::v1::QueryMetricsRequest {
                model: format!("m{m}"),
                bucket: triad_proto::v1::Bucket::Day.into(),
                ..Default::default()
            };
            let points = rt.block_on(monitor.query_metrics(&request)).unwrap().points;
            assert_eq!(points.len(), DAYS as usize);
            points
        })
        .collect();
    let mut group = criterion.benchmark_group("alerts");
    group.bench_function("rules_100_models_90_days", |b| {
        b.iter(|| {
            series
                .iter()
                .map(|points| triad_monitor::alert_rules_breached(black_box(points)))
                .sum::<usize>()
        });
    });
    group.sample_size(10);
    group.bench_function("evaluate_100_models_90_days", |b| {
        b.iter(|| {
            let evaluation = rt
                .block_on(monitor.evaluate_alerts(black_box(now)))
                .unwrap();
            black_box(evaluation.firing.len())
        });
    });
    group.finish();
    rt.block_on(monitor.close());
    Criterion::default().configure_from_args().final_summary();
}
