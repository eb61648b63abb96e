//! The monitor's own Prometheus metrics, in the process registry of
//! `triad_telemetry::metrics` (every name gets the `triad_` prefix) and served
//! on the monitor's HTTP port at `GET /metrics`:
//!
//! - `triad_monitor_outcomes_recorded_total{model}`: outcomes newly stored;
//! - `triad_monitor_outcomes_duplicate_total`: outcomes received again and
//!   not stored (their id was already stored, or repeated in the batch);
//! - `triad_monitor_labels_received_total`: labels stored (refused ones
//!   are not counted);
//! - `triad_monitor_precision{model}` and `triad_monitor_recall{model}`:
//!   realized precision and recall of the model's primary (non-shadow)
//!   versions over the outcomes scored in the last 7 days
//!   ([`QUALITY_WINDOW_MS`]). They are **computed at scrape time** from the
//!   hourly counters ([`refresh_quality`], run by the `/metrics` route
//!   before it encodes), so they are as current as the labels stored; a
//!   model whose value is undefined in the window (no labelled positive
//!   prediction for precision, no labelled positive for recall) has no
//!   sample.

use std::collections::HashMap;
use std::sync::LazyLock;

use prometheus::{GaugeVec, IntCounter, IntCounterVec, Opts};

use crate::buckets::{DAY_MS, HOUR_MS, now_ms};
use crate::error::MonitorError;
use crate::store::Store;

/// How far back the precision and recall gauges look.
pub const QUALITY_WINDOW_MS: i64 = 7 * DAY_MS;

struct Metrics {
    outcomes: IntCounterVec,
    duplicates: IntCounter,
    labels: IntCounter,
    precision: GaugeVec,
    recall: GaugeVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let counter = |name: &str, help: &str| {
        let counter = IntCounter::new(name, help).expect("valid metric options");
        triad_telemetry::metrics::register(Box::new(counter.clone()));
        counter
    };
    let gauge = |name: &str, help: &str| {
        let gauge = GaugeVec::new(Opts::new(name, help), &["model"]).expect("valid metric options");
        triad_telemetry::metrics::register(Box::new(gauge.clone()));
        gauge
    };
    let outcomes = IntCounterVec::new(
        Opts::new(
            "monitor_outcomes_recorded_total",
            "Outcomes newly stored by the monitor, by model",
        ),
        &["model"],
    )
    .expect("valid metric options");
    triad_telemetry::metrics::register(Box::new(outcomes.clone()));
    Metrics {
        outcomes,
        duplicates: counter(
            "monitor_outcomes_duplicate_total",
            "Outcomes received again and not stored (id already stored or repeated in the batch)",
        ),
        labels: counter(
            "monitor_labels_received_total",
            "Ground-truth labels stored by the monitor (refused labels are not counted)",
        ),
        precision: gauge(
            "monitor_precision",
            "Realized precision of the model's primary versions over the outcomes scored in the last 7 days, computed at scrape time",
        ),
        recall: gauge(
            "monitor_recall",
            "Realized recall of the model's primary versions over the outcomes scored in the last 7 days, computed at scrape time",
        ),
    }
});

/// Registers every metric of the monitor (they appear at 0 before the
/// first outcome).
pub fn init() {
    LazyLock::force(&METRICS);
}

/// Start of the window of the precision and recall gauges at `now_ms`:
/// the hour holding `now_ms - QUALITY_WINDOW_MS`.
pub fn quality_since(now_ms: i64) -> i64 {
    (now_ms - QUALITY_WINDOW_MS).div_euclid(HOUR_MS) * HOUR_MS
}

/// Counts a committed batch: the models of its newly stored outcomes and
/// its duplicates.
pub fn outcomes_stored<'a>(models: impl IntoIterator<Item = &'a str>, duplicates: u64) {
    let mut by_model: HashMap<&str, u64> = HashMap::new();
    for model in models {
        *by_model.entry(model).or_default() += 1;
    }
    for (model, n) in by_model {
        METRICS.outcomes.with_label_values(&[model]).inc_by(n);
    }
    METRICS.duplicates.inc_by(duplicates);
}

/// Counts the labels of a committed batch.
pub fn labels_stored(n: u64) {
    METRICS.labels.inc_by(n);
}

/// Sets the precision and recall gauges from the counters of the hours
/// overlapping the last [`QUALITY_WINDOW_MS`], dropping models without a
/// value.
pub async fn refresh_quality(store: &Store) -> Result<(), MonitorError> {
    let recent = store.recent_confusion(quality_since(now_ms())).await?;
    let metrics = &*METRICS;
    metrics.precision.reset();
    metrics.recall.reset();
    for (model, confusion) in recent {
        if let Some(precision) = confusion.precision() {
            metrics
                .precision
                .with_label_values(&[model.as_str()])
                .set(precision);
        }
        if let Some(recall) = confusion.recall() {
            metrics
                .recall
                .with_label_values(&[model.as_str()])
                .set(recall);
        }
    }
    Ok(())
}
