//! The monitor's own Prometheus metrics, in the process registry of
//! `triad_telemetry::metrics` (every name gets the `triad_` prefix) and served
//! on the monitor's HTTP port at `GET /metrics`:
//!
//! - `triad_monitor_outcomes_recorded_total{model}`: outcomes newly stored;
//! - `triad_monitor_outcomes_duplicate_total`: outcomes received again and
//!   not stored (their id was already stored, or repeated in the batch);
//! - `triad_monitor_labels_received_total`: labels stored (refused ones
//!   are not counted);
//! - `triad_monitor_explanations_dropped_total`: outcomes stored without
//!   the explanation they carried, which could not be stored (a number
//!   that is not finite, or more contributions than the schema has
//!   columns): the outcome is kept, its `explanation` is NULL;
//! - `triad_monitor_precision{model}` and `triad_monitor_recall{model}`:
//!   realized precision and recall of the model's primary (non-shadow)
//!   versions over the outcomes scored in the last 7 days
//!   ([`QUALITY_WINDOW_MS`]). They are **computed at scrape time** from the
//!   hourly counters (the application layer reads them and calls
//!   [`set_quality`], run by the `/metrics` route before it encodes), so
//!   they are as current as the labels stored; a model whose value is
//!   undefined in the window (no labelled positive prediction for
//!   precision, no labelled positive for recall) has no sample.
//!
//! - `triad_monitor_alert_firing{model,version,alert,severity,subject}`:
//!   1 for each alert firing after the last evaluation (no sample
//!   otherwise), with `triad_monitor_alert_value` and
//!   `triad_monitor_alert_threshold` under the same labels, and
//!   `triad_monitor_alert_last_evaluation_timestamp_seconds` (the time of
//!   the last evaluation, 0 before the first): set by the application
//!   layer after each evaluation ([`set_alerts`]); the rules of
//!   `deploy/prometheus/alerts.yml` read them. At most
//!   [`MAX_ALERT_SERIES`] alerts get series (critical ones first).
//!
//! Model names come from writers: at most [`MAX_MODEL_SERIES`] of them get
//! series of their own, so that `/metrics` stays bounded whatever names a
//! writer makes up. Outcomes of the models past the first
//! [`MAX_MODEL_SERIES`] seen since start are counted under
//! `model="_other"` ([`OTHER_MODELS`]); the gauges cover the [`MAX_MODEL_SERIES`]
//! models with the most outcomes in the window.
//!
//! This module only registers and records: the application layer
//! ([`crate::app`]) calls it once a write is committed or a scrape asks.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, RwLock};

use prometheus::{GaugeVec, IntCounter, IntCounterVec, Opts};

use crate::buckets::{DAY_MS, HOUR_MS};

/// How far back the precision and recall gauges look.
pub(crate) const QUALITY_WINDOW_MS: i64 = 7 * DAY_MS;

/// Most model names with series of their own in each per-model metric.
pub(crate) const MAX_MODEL_SERIES: usize = 100;

/// The `model` label of outcomes of models past [`MAX_MODEL_SERIES`].
pub(crate) const OTHER_MODELS: &str = "_other";

/// The models with an outcome counter series of their own. Never held
/// across an await.
static COUNTED_MODELS: LazyLock<RwLock<HashSet<String>>> = LazyLock::new(RwLock::default);

/// The `model` label to count `model`'s outcomes under: its own while
/// fewer than [`MAX_MODEL_SERIES`] models have one, else
/// [`OTHER_MODELS`].
fn model_label(model: &str) -> &str {
    if COUNTED_MODELS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .contains(model)
    {
        return model;
    }
    let mut counted = COUNTED_MODELS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if counted.len() < MAX_MODEL_SERIES {
        counted.insert(model.to_owned());
        model
    } else if counted.contains(model) {
        model
    } else {
        OTHER_MODELS
    }
}

/// Most firing alerts with gauge series of their own.
pub(crate) const MAX_ALERT_SERIES: usize = 1_000;

/// Labels of the alert gauges.
const ALERT_LABELS: [&str; 5] = ["model", "version", "alert", "severity", "subject"];

struct Metrics {
    outcomes: IntCounterVec,
    alert_firing: GaugeVec,
    alert_value: GaugeVec,
    alert_threshold: GaugeVec,
    alert_evaluated: prometheus::Gauge,
    duplicates: IntCounter,
    labels: IntCounter,
    explanations_dropped: IntCounter,
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
    let alert_gauge = |name: &str, help: &str| {
        let gauge =
            GaugeVec::new(Opts::new(name, help), &ALERT_LABELS).expect("valid metric options");
        triad_telemetry::metrics::register(Box::new(gauge.clone()));
        gauge
    };
    let alert_evaluated = prometheus::Gauge::new(
        "monitor_alert_last_evaluation_timestamp_seconds",
        "Time of the monitor's last alert evaluation, in seconds since the epoch (0 before the first)",
    )
    .expect("valid metric options");
    triad_telemetry::metrics::register(Box::new(alert_evaluated.clone()));
    Metrics {
        outcomes,
        alert_firing: alert_gauge(
            "monitor_alert_firing",
            "1 for each alert of the monitor firing after its last evaluation (docs/monitoring.md, Alerts)",
        ),
        alert_value: alert_gauge(
            "monitor_alert_value",
            "The value that breached, for each firing alert",
        ),
        alert_threshold: alert_gauge(
            "monitor_alert_threshold",
            "The threshold breached, for each firing alert",
        ),
        alert_evaluated,
        duplicates: counter(
            "monitor_outcomes_duplicate_total",
            "Outcomes received again and not stored (id already stored or repeated in the batch)",
        ),
        labels: counter(
            "monitor_labels_received_total",
            "Ground-truth labels stored by the monitor (refused labels are not counted)",
        ),
        explanations_dropped: counter(
            "monitor_explanations_dropped_total",
            "Outcomes stored without the explanation they carried, which could not be stored (not finite, or too wide)",
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
pub(crate) fn init() {
    LazyLock::force(&METRICS);
}

/// Start of the window of the precision and recall gauges at `now_ms`:
/// the hour holding `now_ms - QUALITY_WINDOW_MS`.
pub(crate) fn quality_since(now_ms: i64) -> i64 {
    (now_ms - QUALITY_WINDOW_MS).div_euclid(HOUR_MS) * HOUR_MS
}

/// Counts a committed batch: the models of its newly stored outcomes and
/// its duplicates.
pub(crate) fn outcomes_stored<'a>(models: impl IntoIterator<Item = &'a str>, duplicates: u64) {
    let mut by_model: HashMap<&str, u64> = HashMap::new();
    for model in models {
        *by_model.entry(model).or_default() += 1;
    }
    for (model, n) in by_model {
        METRICS
            .outcomes
            .with_label_values(&[model_label(model)])
            .inc_by(n);
    }
    METRICS.duplicates.inc_by(duplicates);
}

/// Counts the outcomes of a committed batch stored without their
/// explanation.
pub(crate) fn explanations_dropped(n: u64) {
    METRICS.explanations_dropped.inc_by(n);
}

/// Counts the labels of a committed batch.
pub(crate) fn labels_stored(n: u64) {
    METRICS.labels.inc_by(n);
}

/// One model's realized quality over the gauges' window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelQuality {
    pub model: String,
    /// Outcomes of its primary versions in the window.
    pub outcomes: i64,
    /// `None` when undefined: the gauge then has no sample.
    pub precision: Option<f64>,
    /// `None` when undefined: the gauge then has no sample.
    pub recall: Option<f64>,
}

/// Sets the precision and recall gauges to `models`, dropping models
/// without a value, for the [`MAX_MODEL_SERIES`] models with the most
/// outcomes.
pub(crate) fn set_quality(mut models: Vec<ModelQuality>) {
    if models.len() > MAX_MODEL_SERIES {
        models.sort_by(|a, b| {
            b.outcomes
                .cmp(&a.outcomes)
                .then_with(|| a.model.cmp(&b.model))
        });
        models.truncate(MAX_MODEL_SERIES);
    }
    let metrics = &*METRICS;
    metrics.precision.reset();
    metrics.recall.reset();
    for quality in models {
        if let Some(precision) = quality.precision {
            metrics
                .precision
                .with_label_values(&[quality.model.as_str()])
                .set(precision);
        }
        if let Some(recall) = quality.recall {
            metrics
                .recall
                .with_label_values(&[quality.model.as_str()])
                .set(recall);
        }
    }
}

/// Sets the alert gauges to the alerts `firing` after an evaluation at
/// `now_ms`: at most [`MAX_ALERT_SERIES`] of them, critical ones first.
pub(crate) fn set_alerts(firing: &[triad_proto::v1::Alert], now_ms: i64) {
    let metrics = &*METRICS;
    metrics.alert_firing.reset();
    metrics.alert_value.reset();
    metrics.alert_threshold.reset();
    let mut shown: Vec<&triad_proto::v1::Alert> = firing.iter().collect();
    shown.sort_by_key(|a| a.severity != "critical");
    for alert in shown.into_iter().take(MAX_ALERT_SERIES) {
        let labels = [
            alert.model.as_str(),
            alert.version.as_str(),
            alert.name.as_str(),
            alert.severity.as_str(),
            alert.subject.as_str(),
        ];
        metrics.alert_firing.with_label_values(&labels).set(1.0);
        metrics
            .alert_value
            .with_label_values(&labels)
            .set(alert.value);
        metrics
            .alert_threshold
            .with_label_values(&labels)
            .set(alert.threshold);
    }
    metrics.alert_evaluated.set(now_ms as f64 / 1_000.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::core::Collector;

    #[tokio::test]
    async fn firing_alerts_become_gauges_and_are_cleared_when_resolved() {
        let _global = triad_test_support::process_wide_state().await;
        init();
        let alert = triad_proto::v1::Alert {
            name: "null_rate_jump".into(),
            severity: "warning".into(),
            model: "m".into(),
            version: "1".into(),
            subject: "vendor_name_expense".into(),
            value: 1.0,
            threshold: 0.2,
            ..Default::default()
        };
        set_alerts(std::slice::from_ref(&alert), 1_764_000_000_000);
        let text = triad_telemetry::metrics::encode();
        let labels = "alert=\"null_rate_jump\",model=\"m\",severity=\"warning\",subject=\"vendor_name_expense\",version=\"1\"";
        for line in [
            format!("triad_monitor_alert_firing{{{labels}}} 1"),
            format!("triad_monitor_alert_value{{{labels}}} 1"),
            format!("triad_monitor_alert_threshold{{{labels}}} 0.2"),
            "triad_monitor_alert_last_evaluation_timestamp_seconds 1764000000".to_owned(),
        ] {
            assert!(text.contains(&line), "{line} missing from:\n{text}");
        }
        triad_test_support::tools::promtool_check(&text);
        set_alerts(&[], 1_764_000_060_000);
        let text = triad_telemetry::metrics::encode();
        assert!(!text.contains("triad_monitor_alert_firing{"), "{text}");
    }

    #[test]
    fn made_up_model_names_get_a_bounded_number_of_series() {
        let names: Vec<String> = (0..3 * MAX_MODEL_SERIES)
            .map(|n| format!("made-up-{n}"))
            .collect();
        for name in &names {
            outcomes_stored([name.as_str(), name.as_str()], 0);
        }
        let series: Vec<(String, f64)> = METRICS
            .outcomes
            .collect()
            .iter()
            .flat_map(|family| family.get_metric().to_vec())
            .map(|m| {
                (
                    m.get_label()[0].value().to_owned(),
                    m.get_counter().get_value(),
                )
            })
            .collect();
        assert!(series.len() <= MAX_MODEL_SERIES + 1, "{}", series.len());
        let other = series
            .iter()
            .find(|(model, _)| model == OTHER_MODELS)
            .map(|(_, n)| *n);
        assert!(
            other >= Some(2.0 * 2.0 * MAX_MODEL_SERIES as f64),
            "{other:?}"
        );
        // A model that got its series keeps it.
        assert_eq!(model_label("made-up-0"), "made-up-0");
    }
}
