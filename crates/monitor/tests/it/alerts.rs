//! Alerts end to end: seven weeks of synthetic history of one model —
//! five healthy weeks, one deliberately degraded week, one recovered week
//! — recorded through the gRPC API of a real monitor, then evaluated day
//! by day at chosen times (no sleeps, no wall clock) with the default
//! thresholds, the alerts delivered to a webhook receiver started here.
//!
//! The degraded week changes three things at once, and exactly three
//! alerts must fire, and nothing else:
//! - precision drops from about 0.9 to 0.5 (half of the predicted
//!   positives are labelled false; recall and the scores are kept, so the
//!   estimated metrics do not move): `precision_anomalous`;
//! - the expense's vendor name goes missing from every line item:
//!   `null_rate_jump` on `vendor_name_expense`;
//! - volume falls from 160 outcomes a day to 75 (under half the usual):
//!   `volume_drop`.
//!
//! The healthy weeks must fire nothing (evaluated every day of them); the
//! receiver fails its first two POSTs (retried), and gets each firing
//! alert exactly once even when the monitor restarts and evaluates the
//! same day again; once the data has recovered, each alert is resolved
//! once, and the history (`Alerts` RPC) lists the three. While they fire,
//! the dashboard's banner shows them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use serde_json::Value;
use tokio::sync::Mutex;
use triad_monitor::{Alerter, Monitor, Profiles, Store, StoreConfig, WebhookConfig};
use triad_proto::v1::{AlertsRequest, Label, Outcome};

use crate::support::{Ctx, DAY, MONDAY, labels, outcome, record};

on_both!(a_degraded_week_fires_exactly_its_alerts_through_the_webhook);

/// First day of the history: seven weeks before [`MONDAY`].
const START: i64 = MONDAY - 49 * DAY;
const HEALTHY_DAYS: i64 = 35;
const DEGRADED_DAYS: i64 = 7;
const DAYS: i64 = HEALTHY_DAYS + DEGRADED_DAYS + 7;
/// Ten minutes past midnight, when the background task evaluates.
const PAST_MIDNIGHT: i64 = 10 * 60 * 1_000;

fn degraded(day: i64) -> bool {
    (HEALTHY_DAYS..HEALTHY_DAYS + DEGRADED_DAYS).contains(&day)
}

/// One day's outcomes and labels: 40 % predicted positive; precision
/// about 0.9 (0.5 when degraded), recall about 0.9.
fn day(i: i64) -> (Vec<Outcome>, Vec<Label>) {
    let n: i64 = if degraded(i) { 75 } else { 160 };
    let predicted = n * 2 / 5;
    let wiggle = [0.0, 0.02, -0.02][i.rem_euclid(3) as usize];
    let precision = if degraded(i) { 0.5 } else { 0.9 + wiggle };
    let tp = (predicted as f64 * precision).round() as i64;
    let fn_ = (tp as f64 / 9.0).round() as i64;
    let mut outcomes = Vec::new();
    let mut truth = Vec::new();
    for k in 0..n {
        let id = format!("d{i}-{k}");
        let (budget, item) = (format!("b{i}-{k}"), format!("it{i}-{k}"));
        let at = START + i * DAY + k * (DAY / n);
        let matched = k < predicted;
        let mut o = outcome(&id, at, (&budget, &item), matched);
        if degraded(i) {
            o.line_item.as_mut().unwrap().vendor_name_expense = None;
        }
        outcomes.push(o);
        let label = if matched { k < tp } else { k - predicted < fn_ };
        truth.push(crate::support::label((&budget, &item), label));
    }
    (outcomes, truth)
}

/// A webhook receiver on `127.0.0.1:0` that answers 500 to its first
/// `fail_first` POSTs, and keeps the bodies it accepted.
struct Receiver {
    url: String,
    accepted: Arc<Mutex<Vec<Value>>>,
    attempts: Arc<AtomicUsize>,
}

async fn receiver(fail_first: usize) -> Receiver {
    let accepted: Arc<Mutex<Vec<Value>>> = Arc::default();
    let attempts = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let accepted = accepted.clone();
            let attempts = attempts.clone();
            move |Json(body): Json<Value>| async move {
                if attempts.fetch_add(1, Ordering::SeqCst) < fail_first {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                accepted.lock().await.push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url,
        accepted,
        attempts,
    }
}

/// An evaluator on the monitor's database (as a restarted monitor would
/// open it), delivering to `url` with short retry waits.
async fn open_alerter(ctx: &Ctx, url: &str) -> (Alerter, Store) {
    let store = Store::open(&StoreConfig {
        database_url: ctx.database_url.clone(),
        max_connections: 2,
        ..StoreConfig::default()
    })
    .await
    .unwrap();
    let monitor = Monitor::new(store.clone(), Profiles::disabled());
    let webhook = WebhookConfig {
        url: url.to_owned(),
        external_url: "http://monitor.example".into(),
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..WebhookConfig::default()
    };
    let (alerter, deliveries) = Alerter::new(monitor, Some(webhook)).unwrap();
    tokio::spawn(deliveries.unwrap());
    (alerter, store)
}

/// The `(alertname, subject, status)` of each alert of the messages.
fn delivered(messages: &[Value]) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = messages
        .iter()
        .flat_map(|m| m["alerts"].as_array().unwrap().clone())
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_owned(),
                a["labels"]["subject"].as_str().unwrap_or("").to_owned(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn expected(status: &str) -> Vec<(String, String, String)> {
    [
        ("null_rate_jump", "vendor_name_expense"),
        ("precision_anomalous", ""),
        ("volume_drop", ""),
    ]
    .iter()
    .map(|(a, s)| ((*a).to_owned(), (*s).to_owned(), status.to_owned()))
    .collect()
}

fn names(alerts: &[triad_proto::v1::Alert]) -> BTreeSet<(String, String)> {
    alerts
        .iter()
        .map(|a| (a.name.clone(), a.subject.clone()))
        .collect()
}

/// Evaluation time after day `i` closed.
fn after(i: i64) -> i64 {
    START + (i + 1) * DAY + PAST_MIDNIGHT
}

async fn a_degraded_week_fires_exactly_its_alerts_through_the_webhook(ctx: Ctx) {
    let mut client = ctx.client().await;
    for i in 0..DAYS {
        let (outcomes, truth) = day(i);
        assert!(record(&mut client, outcomes).await.rejected.is_empty());
        labels(&mut client, truth).await;
    }
    let receiver = receiver(2).await;
    let (alerter, store) = open_alerter(&ctx, &receiver.url).await;

    // The healthy weeks: nothing, any day.
    for i in 13..HEALTHY_DAYS {
        let evaluation = alerter.evaluate_at(after(i)).await.unwrap();
        assert_eq!(evaluation.bucket_ms, START + i * DAY);
        assert!(
            evaluation.firing.is_empty(),
            "day {i}: {:?}",
            evaluation.firing
        );
    }
    alerter.flush().await;
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 0);

    // The first degraded day: exactly the three alerts.
    let first = after(HEALTHY_DAYS);
    let evaluation = alerter.evaluate_at(first).await.unwrap();
    let wanted: BTreeSet<(String, String)> = expected("firing")
        .into_iter()
        .map(|(a, s, _)| (a, s))
        .collect();
    assert_eq!(names(&evaluation.firing), wanted, "{:?}", evaluation.firing);
    assert_eq!(names(&evaluation.started), wanted);
    for alert in &evaluation.firing {
        assert_eq!(alert.since_ms, START + HEALTHY_DAYS * DAY);
        assert_eq!((alert.model.as_str(), alert.version.as_str()), ("m", "1"));
        assert!(
            alert
                .link
                .starts_with("/models/m?days=28&bucket=day&version=1#"),
            "{}",
            alert.link
        );
        let severity = if alert.name == "volume_drop" {
            "critical"
        } else {
            "warning"
        };
        assert_eq!(alert.severity, severity);
    }
    let volume = evaluation
        .firing
        .iter()
        .find(|a| a.name == "volume_drop")
        .unwrap();
    assert_eq!((volume.value, volume.threshold), (75.0, 80.0));
    alerter.flush().await;
    // Two failures, then one message holding the three.
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 3);
    let messages = receiver.accepted.lock().await.clone();
    assert_eq!(messages.len(), 1);
    assert_eq!(delivered(&messages), expected("firing"));
    assert_eq!(messages[0]["version"], "4");
    assert_eq!(messages[0]["status"], "firing");
    assert_eq!(messages[0]["groupLabels"]["model"], "m");
    assert!(
        messages[0]["alerts"][0]["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://monitor.example/models/m?")
    );

    // Evaluating the same day again, after a restart: nothing new, nothing
    // sent twice, the since-when kept.
    drop(alerter);
    store.close().await;
    let (alerter, store) = open_alerter(&ctx, &receiver.url).await;
    let again = alerter.evaluate_at(first + 3_600_000).await.unwrap();
    assert!(again.started.is_empty(), "{:?}", again.started);
    assert_eq!(names(&again.firing), wanted);
    assert!(
        again
            .firing
            .iter()
            .all(|a| a.since_ms == START + HEALTHY_DAYS * DAY)
    );
    alerter.flush().await;
    assert_eq!(receiver.accepted.lock().await.len(), 1);

    // The Alerts RPC of the running monitor sees the same state.
    let firing = client
        .alerts(AlertsRequest {
            model: "m".into(),
            ..AlertsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&firing.alerts), wanted);
    assert!(!firing.truncated);
    // And the dashboard's banner, on the index and the model's page.
    for path in ["/", "/models/m"] {
        let (status, page) = triad_test_support::get(ctx.http, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(page.contains("3 alerts firing"), "{path}: {page}");
        for (alert, _) in &wanted {
            assert!(
                page.contains(&format!("data-alert=\"{alert}\"")),
                "{path}: {alert}"
            );
        }
    }

    // A week after the data recovered: everything resolved, once.
    let recovered = after(DAYS - 1);
    let evaluation = alerter.evaluate_at(recovered).await.unwrap();
    assert!(evaluation.firing.is_empty(), "{:?}", evaluation.firing);
    assert_eq!(names(&evaluation.resolved), wanted);
    alerter.flush().await;
    let messages = receiver.accepted.lock().await.clone();
    assert_eq!(messages.len(), 2);
    assert_eq!(delivered(&messages[1..]), expected("resolved"));
    assert_eq!(messages[1]["status"], "resolved");
    alerter.evaluate_at(recovered).await.unwrap();
    alerter.flush().await;
    assert_eq!(receiver.accepted.lock().await.len(), 2);

    // The history lists the three for the window, resolved; the firing
    // list is empty.
    let history = client
        .alerts(AlertsRequest {
            model: "m".into(),
            history: true,
            since_ms: START,
            until_ms: START + DAYS * DAY,
            ..AlertsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&history.alerts), wanted);
    assert!(
        history
            .alerts
            .iter()
            .all(|a| a.resolved_ms == START + (DAYS - 1) * DAY)
    );
    let before = client
        .alerts(AlertsRequest {
            history: true,
            since_ms: START,
            until_ms: START + HEALTHY_DAYS * DAY,
            ..AlertsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(before.alerts.is_empty(), "{:?}", before.alerts);
    let firing = client
        .alerts(AlertsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(firing.alerts.is_empty());
    let (_, page) = triad_test_support::get(ctx.http, "/models/m").await;
    assert!(!page.contains("id=\"alerts\""));
    drop(alerter);
    store.close().await;
}

on_both!(the_alerts_rpc_bounds_what_a_caller_asks);

async fn the_alerts_rpc_bounds_what_a_caller_asks(ctx: Ctx) {
    let mut client = ctx.client().await;
    for bad in [
        AlertsRequest {
            page_size: 1_001,
            ..AlertsRequest::default()
        },
        AlertsRequest {
            model: "x".repeat(10_000),
            ..AlertsRequest::default()
        },
        AlertsRequest {
            history: true,
            since_ms: 10,
            until_ms: 5,
            ..AlertsRequest::default()
        },
        AlertsRequest {
            history: true,
            since_ms: -1,
            ..AlertsRequest::default()
        },
    ] {
        let status = client.alerts(bad).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().len() < 300, "{}", status.message());
    }
}

/// A `monitor.toml` with an unknown key or a value out of range, or an
/// https webhook, stops the monitor at start with a message naming it.
#[tokio::test]
async fn bad_alert_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.toml");
    let start = |alerts: triad_monitor::AlertsConfig| {
        let dir = dir.path().to_owned();
        async move {
            let config = triad_monitor::MonitorConfig {
                store: StoreConfig {
                    database_url: format!("sqlite://{}/m.db", dir.display()),
                    ..StoreConfig::default()
                },
                alerts,
                ..triad_monitor::MonitorConfig::default()
            };
            let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            triad_monitor::serve(grpc, None, config, std::future::pending())
                .await
                .unwrap_err()
                .to_string()
        }
    };
    for (text, expected) in [
        (
            "[defaults]\nvolume_ratoi = 0.5\n",
            "[defaults] unknown field `volume_ratoi`",
        ),
        (
            "[models.m]\nnull_rate_jump = 2\n",
            "[models.m] null_rate_jump is 2: expected a number from 0.001 to 1",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let error = start(triad_monitor::AlertsConfig {
            config_file: Some(path.clone()),
            webhook: None,
        })
        .await;
        assert!(error.contains(expected), "{error}");
        assert!(error.contains("monitor.toml"), "{error}");
    }
    let error = start(triad_monitor::AlertsConfig {
        config_file: None,
        webhook: Some(WebhookConfig {
            url: "https://hooks.example/x".into(),
            ..WebhookConfig::default()
        }),
    })
    .await;
    assert!(error.contains("https is not supported"), "{error}");
}
