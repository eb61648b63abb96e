//! The alert webhook, an outbound wire adapter: firing and resolved
//! alerts POSTed as JSON in Alertmanager's webhook format (version "4"),
//! so any receiver written for Alertmanager (chat bridges, paging tools)
//! takes them unchanged.
//!
//! One message per model and delivery round, at most [`MAX_ALERTS_PER_MESSAGE`]
//! alerts each (more are split, so `truncatedAlerts` is always 0):
//!
//! ```json
//! {"version":"4","groupKey":"{}:{model=\"m\"}","truncatedAlerts":0,
//!  "status":"firing","receiver":"triad-monitor",
//!  "groupLabels":{"model":"m"},"commonLabels":{…},"commonAnnotations":{…},
//!  "externalURL":"https://monitor.example",
//!  "alerts":[{"status":"firing","labels":{"alertname":"volume_drop",
//!    "model":"m","version":"1","severity":"critical"},
//!    "annotations":{"summary":"…","value":"12","threshold":"80",
//!    "link":"/models/m?…"},
//!    "startsAt":"2025-11-24T00:00:00.000Z","endsAt":"0001-01-01T00:00:00Z",
//!    "generatorURL":"https://monitor.example/models/m?…","fingerprint":"…"}]}
//! ```
//!
//! Delivery runs on its own task behind a bounded queue, never in an RPC:
//! each POST has a timeout (covering connecting, sending and the answer's
//! headers; the answer's body is never read, a redirect never followed: a
//! 3xx is a failure not retried), a failed one (no answer, 5xx or 429) is
//! retried with exponential backoff a bounded number of times, and a
//! message that finds the queue full is dropped. De-duplication is kept in
//! the store (`alerts.notified_ms`, `alerts.resolved_notified`): an alert
//! is sent when it starts firing, again only once `repeat_interval` has
//! passed since its last delivery, and its resolution once; what was not
//! delivered is sent at the next evaluation. Delivery is at least once: a
//! receiver that fails after acting on a message gets it again.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};
use triad_proto::v1::Alert;

use crate::app::Monitor;
use crate::config::WebhookConfig;

/// Most alerts in one message.
pub(crate) const MAX_ALERTS_PER_MESSAGE: usize = 100;
/// Longest webhook URL or external URL accepted.
pub(crate) const MAX_URL_BYTES: usize = 2_048;
/// `endsAt` of a firing alert, as Alertmanager writes it.
const NOT_ENDED: &str = "0001-01-01T00:00:00Z";

/// Why a webhook setting was refused at start.
#[derive(Debug, thiserror::Error)]
#[error("alert webhook: {0}")]
pub struct WebhookError(String);

/// `url` with any user information (`user:password@`) replaced by `…@`,
/// so no error or log echoes credentials.
fn redacted(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => {
            let sep = if scheme.is_empty() && !url.contains("://") {
                ""
            } else {
                "://"
            };
            format!("{scheme}{sep}…@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// Checks the settings: an `http://` URL with a host and no user
/// information, an external URL empty or `http(s)://` with a host, bounded
/// sizes, positive timeout, attempts and queue. No error repeats
/// credentials written in a URL.
pub(crate) fn check(config: &WebhookConfig) -> Result<http::Uri, WebhookError> {
    let quoted = || triad_server::quote(&redacted(&config.url)).to_string();
    if config.url.len() > MAX_URL_BYTES || config.external_url.len() > MAX_URL_BYTES {
        return Err(WebhookError(format!(
            "the URL is longer than {MAX_URL_BYTES} bytes"
        )));
    }
    if !config.external_url.is_empty() {
        let external = config.external_url.parse::<http::Uri>().ok();
        let fine = external.as_ref().is_some_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.host().is_some_and(|h| !h.is_empty())
                && uri.authority().is_some_and(|a| !a.as_str().contains('@'))
        });
        if !fine {
            return Err(WebhookError(format!(
                "the external URL {} is not an http:// or https:// URL with a host (and no user information)",
                triad_server::quote(&redacted(&config.external_url))
            )));
        }
    }
    let uri: http::Uri = config
        .url
        .parse()
        .map_err(|_| WebhookError(format!("{} is not a URL", quoted())))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(WebhookError(format!(
            "{}: user information in the URL is not supported (it would be sent in clear and logged); \
             expected http://host:port/path",
            quoted()
        )));
    }
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(WebhookError(format!(
                "{}: https is not supported, expected http:// (put a TLS-terminating proxy in front of the receiver)",
                quoted()
            )));
        }
        _ => {
            return Err(WebhookError(format!("{} is not an http:// URL", quoted())));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(WebhookError(format!("{} has no host", quoted())));
    }
    if config.timeout.is_zero() || config.max_attempts == 0 || config.queue == 0 {
        return Err(WebhookError(
            "timeout, max_attempts and queue must be positive".to_owned(),
        ));
    }
    if config.max_attempts > 20 {
        return Err(WebhookError(format!(
            "max_attempts is {}: expected at most 20",
            config.max_attempts
        )));
    }
    Ok(uri)
}

/// RFC 3339 in UTC, milliseconds.
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| NOT_ENDED.to_owned())
}

/// The alert's labels: `alertname`, `model`, `version`, `severity`, and
/// `subject` when it has one.
pub(crate) fn labels(alert: &Alert) -> BTreeMap<&'static str, String> {
    let mut labels = BTreeMap::from([
        ("alertname", alert.name.clone()),
        ("model", alert.model.clone()),
        ("version", alert.version.clone()),
        ("severity", alert.severity.clone()),
    ]);
    if !alert.subject.is_empty() {
        labels.insert("subject", alert.subject.clone());
    }
    labels
}

/// A stable 64-bit FNV-1a hash of the labels, in 16 hex digits (the
/// shape of Alertmanager's fingerprints): the same alert always has the
/// same fingerprint, across evaluations and restarts.
pub(crate) fn fingerprint(labels: &BTreeMap<&'static str, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, value) in labels {
        for byte in name
            .bytes()
            .chain([0xff])
            .chain(value.bytes())
            .chain([0xff])
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn annotations(alert: &Alert) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("summary", alert.summary.clone()),
        ("value", format!("{}", alert.value)),
        ("threshold", format!("{}", alert.threshold)),
        ("link", alert.link.clone()),
    ])
}

/// The pairs every map of `maps` shares.
fn common(maps: &[BTreeMap<&'static str, String>]) -> BTreeMap<&'static str, String> {
    let Some((first, rest)) = maps.split_first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

/// One message for `model`'s `alerts` (a resolved one has `resolved_ms`
/// set), in Alertmanager's webhook format.
pub(crate) fn message(config: &WebhookConfig, model: &str, alerts: &[Alert]) -> Value {
    let base = config.external_url.trim_end_matches('/');
    let all_labels: Vec<_> = alerts.iter().map(labels).collect();
    let all_annotations: Vec<_> = alerts.iter().map(annotations).collect();
    let firing = alerts.iter().any(|a| a.resolved_ms == 0);
    let items: Vec<Value> = alerts
        .iter()
        .zip(&all_labels)
        .zip(&all_annotations)
        .map(|((alert, labels), annotations)| {
            json!({
                "status": if alert.resolved_ms == 0 { "firing" } else { "resolved" },
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(alert.since_ms),
                "endsAt": if alert.resolved_ms == 0 {
                    NOT_ENDED.to_owned()
                } else {
                    rfc3339(alert.resolved_ms)
                },
                "generatorURL": format!("{base}{}", alert.link),
                "fingerprint": fingerprint(labels),
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{model={model:?}}}"),
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": config.receiver,
        "groupLabels": { "model": model },
        "commonLabels": common(&all_labels),
        "commonAnnotations": common(&all_annotations),
        "externalURL": base,
        "alerts": items,
    })
}

/// What the sender is asked to do.
pub(crate) enum Job {
    /// Deliver these alerts, then record which were delivered at `now_ms`
    /// (the evaluation's time).
    Deliver { alerts: Vec<Alert>, now_ms: i64 },
    /// Answer once every earlier job is done.
    Flush(oneshot::Sender<()>),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deliver { alerts, .. } => write!(f, "Deliver({} alerts)", alerts.len()),
            Self::Flush(_) => f.write_str("Flush"),
        }
    }
}

/// The sending side of the webhook: a bounded queue to the task that
/// POSTs, and the alerts queued or being sent (never queued twice).
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    jobs: mpsc::Sender<Job>,
    pending: Arc<Mutex<HashSet<String>>>,
    config: Arc<WebhookConfig>,
}

/// The key of an alert's delivery: its fingerprint, start, and whether
/// it is the resolution.
fn pending_key(alert: &Alert) -> String {
    format!(
        "{}/{}/{}",
        fingerprint(&labels(alert)),
        alert.since_ms,
        alert.resolved_ms != 0
    )
}

impl Webhook {
    /// The queue and the task that empties it, recording deliveries in
    /// `monitor`'s store (to be spawned; it ends when every [`Webhook`] is
    /// dropped). `config` must have passed [`check`].
    pub(crate) fn new(
        config: WebhookConfig,
        monitor: Monitor,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (jobs, queue) = mpsc::channel(config.queue);
        let config = Arc::new(config);
        let webhook = Self {
            jobs,
            pending: Arc::default(),
            config: config.clone(),
        };
        let pending = webhook.pending.clone();
        (webhook, send_all(config, queue, pending, monitor))
    }

    /// The settings.
    pub(crate) fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// Queues `alerts` not already queued. Never waits: a full queue drops
    /// the job (logged; the alerts are due again at the next evaluation).
    pub(crate) async fn send(&self, alerts: Vec<Alert>, now_ms: i64) {
        let mut pending = self.pending.lock().await;
        let fresh: Vec<Alert> = alerts
            .into_iter()
            .filter(|a| !pending.contains(&pending_key(a)))
            .collect();
        if fresh.is_empty() {
            return;
        }
        let keys: Vec<String> = fresh.iter().map(pending_key).collect();
        match self.jobs.try_send(Job::Deliver {
            alerts: fresh,
            now_ms,
        }) {
            Ok(()) => pending.extend(keys),
            Err(error) => {
                tracing::warn!(%error, "alert webhook queue full: alerts sent at the next evaluation");
            }
        }
    }

    /// Waits until every job queued before is done.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn send_all(
    config: Arc<WebhookConfig>,
    mut queue: mpsc::Receiver<Job>,
    pending: Arc<Mutex<HashSet<String>>>,
    monitor: Monitor,
) {
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();
    while let Some(job) = queue.recv().await {
        match job {
            Job::Flush(done) => {
                let _ = done.send(());
            }
            Job::Deliver { alerts, now_ms } => {
                let mut by_model: BTreeMap<&str, Vec<Alert>> = BTreeMap::new();
                for alert in &alerts {
                    by_model
                        .entry(alert.model.as_str())
                        .or_default()
                        .push(alert.clone());
                }
                for (model, alerts) in by_model {
                    for chunk in alerts.chunks(MAX_ALERTS_PER_MESSAGE) {
                        let body = message(&config, model, chunk).to_string();
                        if !post(&client, &config, body).await {
                            continue;
                        }
                        if let Err(error) = monitor.alerts_delivered(chunk, now_ms).await {
                            tracing::warn!(%error, "alert delivery not recorded: sent again at the next evaluation");
                        }
                    }
                }
                let mut pending = pending.lock().await;
                for alert in &alerts {
                    pending.remove(&pending_key(alert));
                }
            }
        }
    }
}

/// POSTs `body` until a 2xx answer, at most `max_attempts` times, with
/// doubling backoff; a 4xx other than 429 is not retried. Whether it was
/// delivered.
async fn post(client: &Client<HttpConnector, Body>, config: &WebhookConfig, body: String) -> bool {
    let mut backoff = config.initial_backoff;
    for attempt in 1..=config.max_attempts {
        let request = http::Request::post(config.url.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "triad-monitor")
            .body(Body::from(body.clone()));
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(%error, "alert webhook request cannot be built");
                return false;
            }
        };
        let retry = match tokio::time::timeout(config.timeout, client.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => return true,
            Ok(Ok(response)) => {
                let status = response.status();
                tracing::warn!(%status, attempt, "alert webhook answered an error");
                status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, attempt, "alert webhook unreachable");
                true
            }
            Err(_) => {
                tracing::warn!(attempt, timeout = ?config.timeout, "alert webhook timed out");
                true
            }
        };
        if !retry || attempt == config.max_attempts {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(config.max_backoff.max(Duration::from_millis(1)));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str, resolved_ms: i64) -> Alert {
        Alert {
            name: name.into(),
            severity: "critical".into(),
            model: "m".into(),
            version: "1".into(),
            value: 12.0,
            threshold: 80.0,
            since_ms: 1_763_942_400_000,
            resolved_ms,
            link: "/models/m?days=28&bucket=day&version=1#volume".into(),
            summary: "few".into(),
            ..Alert::default()
        }
    }

    #[test]
    fn messages_follow_the_alertmanager_format() {
        let config = WebhookConfig {
            url: "http://127.0.0.1:9/hook".into(),
            external_url: "https://monitor.example/".into(),
            ..WebhookConfig::default()
        };
        let m = message(
            &config,
            "m",
            &[
                alert("volume_drop", 0),
                alert("precision_anomalous", 1_764_028_800_000),
            ],
        );
        assert_eq!(m["version"], "4");
        assert_eq!(m["status"], "firing");
        assert_eq!(m["receiver"], "triad-monitor");
        assert_eq!(m["groupKey"], "{}:{model=\"m\"}");
        assert_eq!(m["groupLabels"], json!({"model": "m"}));
        assert_eq!(
            m["commonLabels"],
            json!({"model": "m", "version": "1", "severity": "critical"})
        );
        assert_eq!(m["externalURL"], "https://monitor.example");
        let first = &m["alerts"][0];
        assert_eq!(first["status"], "firing");
        assert_eq!(first["labels"]["alertname"], "volume_drop");
        assert_eq!(first["startsAt"], "2025-11-24T00:00:00.000Z");
        assert_eq!(first["endsAt"], NOT_ENDED);
        assert_eq!(
            first["generatorURL"],
            "https://monitor.example/models/m?days=28&bucket=day&version=1#volume"
        );
        assert_eq!(first["fingerprint"].as_str().unwrap().len(), 16);
        let second = &m["alerts"][1];
        assert_eq!(second["status"], "resolved");
        assert_eq!(second["endsAt"], "2025-11-25T00:00:00.000Z");
        assert_ne!(first["fingerprint"], second["fingerprint"]);
        let resolved = message(&config, "m", &[alert("volume_drop", 5)]);
        assert_eq!(resolved["status"], "resolved");
        // The fingerprint depends on the labels only.
        assert_eq!(resolved["alerts"][0]["fingerprint"], first["fingerprint"]);
    }

    #[test]
    fn fingerprints_are_fnv1a_of_the_labels_as_documented() {
        // The example of docs/monitoring.md, "The webhook".
        let alert = Alert {
            name: "volume_drop".into(),
            model: "budget_expense_matcher".into(),
            version: "1".into(),
            severity: "critical".into(),
            ..Alert::default()
        };
        assert_eq!(fingerprint(&labels(&alert)), "2aefc213514e01fd");
    }

    #[test]
    fn only_bounded_http_urls_are_accepted() {
        let with = |url: &str| WebhookConfig {
            url: url.into(),
            ..WebhookConfig::default()
        };
        assert!(check(&with("http://127.0.0.1:9093/hook")).is_ok());
        for bad in [
            "https://h/x",
            "ftp://h/x",
            "h/x",
            "",
            "http:///x",
            &format!("http://h/{}", "x".repeat(MAX_URL_BYTES)),
        ] {
            let error = check(&with(bad)).unwrap_err().to_string();
            assert!(error.len() < 300, "{error}");
        }
        let zero = WebhookConfig {
            max_attempts: 0,
            ..with("http://h/x")
        };
        assert!(check(&zero).is_err());
    }

    #[test]
    fn credentials_in_a_url_are_refused_and_never_echoed() {
        for url in [
            "http://user:s3cret@h/x",
            "https://user:s3cret@h/x",
            "ftp://user:s3cret@h/x",
            "http://user:s3cret@/x",
        ] {
            let error = check(&WebhookConfig {
                url: url.into(),
                ..WebhookConfig::default()
            })
            .unwrap_err()
            .to_string();
            assert!(!error.contains("s3cret"), "{error}");
            assert!(!error.contains("user:"), "{error}");
        }
        let external = |external_url: &str| WebhookConfig {
            url: "http://h/x".into(),
            external_url: external_url.into(),
            ..WebhookConfig::default()
        };
        assert!(check(&external("")).is_ok());
        assert!(check(&external("https://monitor.example/")).is_ok());
        assert!(check(&external("http://127.0.0.1:8080")).is_ok());
        for bad in [
            "monitor.example",
            "ftp://monitor.example",
            "javascript:alert(1)",
            "http://u:s3cret@monitor.example",
        ] {
            let error = check(&external(bad)).unwrap_err().to_string();
            assert!(error.contains("external URL"), "{error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
        assert_eq!(redacted("http://a:b@h:1/p@q"), "http://…@h:1/p@q");
        assert_eq!(redacted("http://h/p"), "http://h/p");
    }
}
