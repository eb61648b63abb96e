//! No lost outcomes: what the scorer answered is in its outcome spool, and
//! reaches the monitor exactly once — after a monitor outage, after a
//! `SIGKILL` of the scorer (the real `triad-score` binary), and on a
//! graceful `SIGTERM`, which drains requests and then flushes the spool.
//!
//! The monitor here is the real one (SQLite in a temporary directory)
//! behind a thin wrapper that counts every outcome it is sent, so the tests
//! can tell "stored once" from "sent once".

#![allow(
    clippy::disallowed_types,
    reason = "the counting monitor's lock is taken and released without an await in between"
)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message as _;
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};
use triad_features::FeatureSchema;
use triad_proto::v1::monitor_server::{Monitor, MonitorServer};
use triad_proto::v1::scorer_client::ScorerClient;
use triad_proto::v1::{self, ScoreRequest};
use triad_score::outcomes::SpoolRecord;
use triad_score::outcomes::spool::{self, SpoolOptions};
use triad_test_support::{get, seed_score_request, wait_healthy};

use crate::support::{Stack, write_logistic};

const MODEL: &str = "ratio";

fn hash() -> &'static str {
    &FeatureSchema::current().hash
}

/// A model repository with one logistic model, `ratio` version 1.
fn repository() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    write_logistic(repo.path(), MODEL, "1", 0.0, &[], 0.5, hash());
    repo
}

/// The seed request widened to `budgets` × `items` pairs, ids made unique.
fn request(budgets: usize, items: usize) -> ScoreRequest {
    let seed = seed_score_request();
    ScoreRequest {
        budgets: (0..budgets)
            .map(|i| {
                let mut budget = seed.budgets[0].clone();
                budget.budget_id = Some(format!("b{i}"));
                budget
            })
            .collect(),
        all_user_expense_lineitems: (0..items)
            .map(|i| {
                let mut item = seed.all_user_expense_lineitems[0].clone();
                item.itemization_id = Some(format!("i{i}"));
                item
            })
            .collect(),
        ..ScoreRequest::default()
    }
}

fn with_id(request: ScoreRequest, id: &str) -> Request<ScoreRequest> {
    let mut call = Request::new(request);
    call.metadata_mut()
        .insert("x-request-id", id.parse().unwrap());
    call
}

/// The outcome ids an answered `Score` call produced (under the scorer's
/// own request id; the caller's `x-request-id` is only echoed).
fn outcome_ids(correlation_id: &str, response: &v1::ScoreResponse) -> Vec<String> {
    assert_eq!(response.correlation_id, correlation_id);
    response
        .results
        .iter()
        .flat_map(|scores| {
            (0..response.keys.len()).map(move |row| {
                triad_score::outcomes::outcome_id(
                    &response.request_id,
                    &scores.model,
                    &scores.version,
                    row,
                )
            })
        })
        .collect()
}

/// What the counting monitor saw.
#[derive(Default)]
struct Seen {
    /// Every outcome id sent, with how often.
    ids: HashMap<String, u64>,
    /// Outcomes sent, duplicates included.
    sent: u64,
    /// `traceparent` metadata of each `RecordOutcomes` call that had one.
    traceparents: Vec<String>,
}

/// The real monitor service, counting what it is sent.
#[derive(Clone)]
struct CountingMonitor {
    inner: triad_monitor::MonitorService,
    seen: Arc<Mutex<Seen>>,
    /// Distinct outcome ids received so far.
    distinct: Arc<watch::Sender<usize>>,
}

#[tonic::async_trait]
impl Monitor for CountingMonitor {
    async fn record_outcomes(
        &self,
        request: Request<v1::RecordOutcomesRequest>,
    ) -> Result<Response<v1::RecordOutcomesResponse>, Status> {
        let traceparent = request
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let ids: Vec<String> = request
            .get_ref()
            .outcomes
            .iter()
            .map(|o| o.outcome_id.clone())
            .collect();
        let response = self.inner.record_outcomes(request).await?;
        let distinct = {
            let mut seen = self.seen.lock().unwrap();
            seen.sent += ids.len() as u64;
            seen.traceparents.extend(traceparent);
            for id in ids {
                *seen.ids.entry(id).or_default() += 1;
            }
            seen.ids.len()
        };
        self.distinct.send_replace(distinct);
        Ok(response)
    }

    async fn record_outcomes_stream(
        &self,
        request: Request<Streaming<v1::RecordOutcomesRequest>>,
    ) -> Result<Response<v1::RecordOutcomesResponse>, Status> {
        self.inner.record_outcomes_stream(request).await
    }

    async fn record_labels(
        &self,
        request: Request<v1::RecordLabelsRequest>,
    ) -> Result<Response<v1::RecordLabelsResponse>, Status> {
        self.inner.record_labels(request).await
    }

    async fn query_metrics(
        &self,
        request: Request<v1::QueryMetricsRequest>,
    ) -> Result<Response<v1::QueryMetricsResponse>, Status> {
        self.inner.query_metrics(request).await
    }

    async fn list_mistakes(
        &self,
        request: Request<v1::ListMistakesRequest>,
    ) -> Result<Response<v1::ListMistakesResponse>, Status> {
        self.inner.list_mistakes(request).await
    }

    async fn anomalies(
        &self,
        request: Request<v1::AnomaliesRequest>,
    ) -> Result<Response<v1::AnomaliesResponse>, Status> {
        self.inner.anomalies(request).await
    }

    async fn record_events(
        &self,
        request: Request<v1::RecordEventsRequest>,
    ) -> Result<Response<v1::RecordEventsResponse>, Status> {
        self.inner.record_events(request).await
    }

    async fn query_events(
        &self,
        request: Request<v1::QueryEventsRequest>,
    ) -> Result<Response<v1::QueryEventsResponse>, Status> {
        self.inner.query_events(request).await
    }

    async fn drift(
        &self,
        request: Request<v1::DriftRequest>,
    ) -> Result<Response<v1::DriftResponse>, Status> {
        self.inner.drift(request).await
    }

    async fn query_threshold(
        &self,
        request: Request<v1::QueryThresholdRequest>,
    ) -> Result<Response<v1::QueryThresholdResponse>, Status> {
        self.inner.query_threshold(request).await
    }

    async fn alerts(
        &self,
        request: Request<v1::AlertsRequest>,
    ) -> Result<Response<v1::AlertsResponse>, Status> {
        self.inner.alerts(request).await
    }
}

/// The real monitor on a SQLite file, serving on `listener` until dropped.
struct MonitorUnderTest {
    store: triad_monitor::Store,
    seen: Arc<Mutex<Seen>>,
    distinct: watch::Receiver<usize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl MonitorUnderTest {
    async fn start(listener: tokio::net::TcpListener) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = triad_monitor::Store::open(&triad_monitor::StoreConfig {
            database_url: format!("sqlite://{}", dir.path().join("monitor.db").display()),
            ..triad_monitor::StoreConfig::default()
        })
        .await
        .unwrap();
        let (distinct_tx, distinct) = watch::channel(0);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let monitor = CountingMonitor {
            inner: triad_monitor::MonitorService::new(triad_monitor::Monitor::new(
                store.clone(),
                triad_monitor::Profiles::disabled(),
            )),
            seen: Arc::clone(&seen),
            distinct: Arc::new(distinct_tx),
        };
        let spec = triad_server::ServiceSpec {
            name: "monitor",
            routes: tonic::service::Routes::new(MonitorServer::new(monitor)),
            health_names: vec![triad_monitor::SERVICE_NAME],
            descriptors: vec![],
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            triad_server::serve(listener, spec, &Default::default(), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            store,
            seen,
            distinct,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Waits (at most a minute) until `n` distinct outcomes arrived.
    async fn wait_for_distinct(&mut self, n: usize) {
        let waited =
            tokio::time::timeout(Duration::from_secs(60), self.distinct.wait_for(|d| *d >= n))
                .await
                .map(|r| r.is_ok());
        assert!(
            waited == Ok(true),
            "the monitor received {} of {n} outcomes",
            *self.distinct.borrow()
        );
    }

    /// Outcome rows the store holds for the test model.
    async fn rows(&self) -> i64 {
        self.store
            .model_summary(MODEL)
            .await
            .unwrap()
            .map_or(0, |summary| summary.outcomes())
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

/// A loopback address that was free a moment ago.
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The preprocess service in this process, until the sender is dropped.
async fn start_preprocess() -> (SocketAddr, watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(triad_preprocess::serve(
        listener,
        None,
        triad_preprocess::PreprocessConfig::default(),
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    (addr, stop)
}

/// The real `triad-score` binary; killed if still running when dropped.
struct ScorerProcess {
    child: Option<Child>,
    grpc: SocketAddr,
    http: SocketAddr,
}

impl ScorerProcess {
    async fn start(
        models: &Path,
        spool: &Path,
        preprocess: SocketAddr,
        monitor: SocketAddr,
    ) -> Self {
        let (grpc, http) = (free_addr(), free_addr());
        let child = Command::new(env!("CARGO_BIN_EXE_triad-score"))
            .arg("--addr")
            .arg(grpc.to_string())
            .arg("--http-addr")
            .arg(http.to_string())
            .arg("--preprocess")
            .arg(format!("http://{preprocess}"))
            .arg("--monitor")
            .arg(format!("http://{monitor}"))
            .arg("--models-dir")
            .arg(models)
            .arg("--spool-dir")
            .arg(spool)
            .arg("--drain-timeout-ms")
            .arg("20000")
            .env("RUST_LOG", "warn")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let process = Self {
            child: Some(child),
            grpc,
            http,
        };
        wait_healthy(&format!("http://{grpc}")).await;
        process
    }

    async fn client(&self) -> ScorerClient<tonic::transport::Channel> {
        ScorerClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap()
    }

    /// A value of the process's own `/metrics`.
    async fn metric(&self, name: &str) -> f64 {
        let (status, body) = get(self.http, "/metrics").await;
        assert_eq!(status, 200);
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let child = self.child.as_ref().expect("running");
        rustix::process::kill_process(rustix::process::Pid::from_child(child), signal).unwrap();
    }

    /// Waits (at most 60 s) for the process to exit.
    async fn wait(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || child.wait().unwrap()),
        )
        .await
        .expect("the scorer exits")
        .unwrap()
    }
}

impl Drop for ScorerProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Calls `Score` from `callers` concurrent loops (20 pairs a call) until
/// the scorer stops answering; returns the outcome ids of every call that
/// was answered. `answered` counts answered calls as they come.
async fn score_until_refused(
    scorer: &ScorerProcess,
    callers: usize,
    tag: &str,
    answered: Arc<watch::Sender<usize>>,
) -> tokio::task::JoinHandle<Vec<String>> {
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let mut client = scorer.client().await;
        let answered = Arc::clone(&answered);
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for call in 0.. {
                let id = format!("{tag}-{caller}-{call}");
                match client.score(with_id(request(4, 5), &id)).await {
                    Ok(response) => {
                        ids.extend(outcome_ids(&id, response.get_ref()));
                        answered.send_modify(|n| *n += 1);
                    }
                    Err(_) => break,
                }
            }
            ids
        }));
    }
    tokio::spawn(async move {
        let mut ids = Vec::new();
        for task in tasks {
            ids.extend(task.await.unwrap());
        }
        ids
    })
}

/// Outcomes left in a spool directory no process holds.
fn spooled(dir: &Path) -> u64 {
    let (_, _, recovered) = spool::open(Some(dir), SpoolOptions::new(1 << 30, false)).unwrap();
    recovered.outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_scored_while_the_monitor_is_down_all_arrive_once_it_is_up() {
    let repo = repository();
    let spool_dir = tempfile::tempdir().unwrap();
    let monitor_addr = free_addr();
    let stack = Stack::start_with(repo.path(), |config| {
        config.monitor = Some(format!("http://{monitor_addr}"));
        config.spool.dir = Some(spool_dir.path().to_owned());
    })
    .await;
    let mut client = stack.scorer().await;
    let mut scored = Vec::new();
    for i in 0..6 {
        let id = format!("down-{i}");
        let response = client
            .score(with_id(request(20, 40), &id))
            .await
            .expect("scoring does not depend on the monitor");
        scored.extend(outcome_ids(&id, response.get_ref()));
    }
    let n = scored.len();
    assert_eq!(n, 6 * 20 * 40, "thousands of pairs");
    let on_disk: u64 = std::fs::read_dir(spool_dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        on_disk > n as u64 * 100,
        "the outcomes wait on disk ({on_disk} bytes)"
    );

    // The monitor comes up at the address the scorer was given.
    let listener = tokio::net::TcpListener::bind(monitor_addr).await.unwrap();
    let mut monitor = MonitorUnderTest::start(listener).await;
    monitor.wait_for_distinct(n).await;
    assert_eq!(monitor.rows().await, n as i64);
    {
        let seen = monitor.seen.lock().unwrap();
        let expected: HashSet<&String> = scored.iter().collect();
        let received: HashSet<&String> = seen.ids.keys().collect();
        assert_eq!(received, expected);
    }
    stack.stop().await;
    monitor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_outcomes_survive_sigkill_and_are_sent_once_after_restart() {
    let repo = repository();
    let spool_dir = tempfile::tempdir().unwrap();
    let (preprocess, _stop_preprocess) = start_preprocess().await;
    let monitor_addr = free_addr();

    // The monitor is down: every outcome waits in the spool.
    let scorer =
        ScorerProcess::start(repo.path(), spool_dir.path(), preprocess, monitor_addr).await;
    let (answered, mut answered_rx) = watch::channel(0);
    let callers = 8;
    let traffic = score_until_refused(&scorer, callers, "kill", Arc::new(answered)).await;
    answered_rx.wait_for(|n| *n >= 200).await.unwrap();
    scorer.signal(rustix::process::Signal::KILL); // mid-traffic
    let acknowledged = traffic.await.unwrap();
    let status = scorer.wait().await;
    assert!(!status.success(), "killed: {status}");
    assert!(acknowledged.len() >= 200 * 20);

    // Restart on the same spool, with the monitor up.
    let listener = tokio::net::TcpListener::bind(monitor_addr).await.unwrap();
    let mut monitor = MonitorUnderTest::start(listener).await;
    let scorer =
        ScorerProcess::start(repo.path(), spool_dir.path(), preprocess, monitor_addr).await;
    monitor.wait_for_distinct(acknowledged.len()).await;
    // Everything the spool held was sent when nothing is pending.
    let mut pending = f64::NAN;
    for _ in 0..600 {
        pending = scorer.metric("triad_outcomes_pending").await;
        if pending == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending, 0.0, "the restarted scorer sent its spool");
    let replayed = scorer.metric("triad_outcomes_replayed_total").await as u64;

    let distinct = {
        let seen = monitor.seen.lock().unwrap();
        for id in &acknowledged {
            assert_eq!(
                seen.ids.get(id),
                Some(&1),
                "{id}: answered, so sent exactly once"
            );
        }
        let distinct = seen.ids.len() as u64;
        assert_eq!(seen.sent, distinct, "no outcome was sent twice");
        assert_eq!(replayed, distinct, "everything came from the spool");
        // Written but not answered: at most the calls in flight at the kill.
        let in_flight = distinct - acknowledged.len() as u64;
        assert!(
            in_flight <= callers as u64 * 20,
            "{in_flight} unanswered outcomes"
        );
        distinct
    };
    assert_eq!(monitor.rows().await, distinct as i64);

    scorer.signal(rustix::process::Signal::TERM);
    let status = scorer.wait().await;
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
    assert_eq!(spooled(spool_dir.path()), 0);
    monitor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_then_flushes_the_spool_to_the_monitor() {
    let repo = repository();
    let spool_dir = tempfile::tempdir().unwrap();
    let (preprocess, _stop_preprocess) = start_preprocess().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let monitor_addr = listener.local_addr().unwrap();
    let mut monitor = MonitorUnderTest::start(listener).await;

    let scorer =
        ScorerProcess::start(repo.path(), spool_dir.path(), preprocess, monitor_addr).await;
    let (answered, mut answered_rx) = watch::channel(0);
    let traffic = score_until_refused(&scorer, 8, "term", Arc::new(answered)).await;
    answered_rx.wait_for(|n| *n >= 200).await.unwrap();
    scorer.signal(rustix::process::Signal::TERM); // mid-traffic
    let acknowledged = traffic.await.unwrap();
    let status = scorer.wait().await;
    assert!(status.success(), "SIGTERM exits cleanly: {status}");

    // Every answered outcome was delivered before exit: none waits in the
    // spool, and the monitor holds each once.
    assert_eq!(spooled(spool_dir.path()), 0);
    monitor.wait_for_distinct(acknowledged.len()).await;
    let expected: HashSet<String> = acknowledged.iter().cloned().collect();
    {
        let seen = monitor.seen.lock().unwrap();
        let received: HashSet<String> = seen.ids.keys().cloned().collect();
        assert_eq!(received, expected, "stored == answered");
    }
    assert_eq!(monitor.rows().await, acknowledged.len() as i64);
    monitor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spooled_records_trace_travels_with_its_outcomes() {
    // A record written by an earlier process, with the trace of the
    // request that produced it.
    let spool_dir = tempfile::tempdir().unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    {
        let record = SpoolRecord {
            traceparent: traceparent.to_owned(),
            outcomes: vec![v1::Outcome {
                outcome_id: "traced/ratio/1/b/i".to_owned(),
                request_id: "traced".to_owned(),
                scored_at_ms: 1_700_000_000_000,
                model: MODEL.to_owned(),
                version: "1".to_owned(),
                schema_hash: hash().to_owned(),
                budget_id: "b".to_owned(),
                itemization_id: "i".to_owned(),
                score: 0.7,
                threshold: 0.5,
                matched: true,
                ..v1::Outcome::default()
            }],
            ..SpoolRecord::default()
        };
        let (mut writer, _, _) =
            spool::open(Some(spool_dir.path()), SpoolOptions::new(1 << 20, false)).unwrap();
        let mut frame = Vec::new();
        spool::frame_into(&mut frame, 1, &record.encode_to_vec());
        writer.append(&frame, 1).unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let monitor_addr = listener.local_addr().unwrap();
    let mut monitor = MonitorUnderTest::start(listener).await;
    let repo = repository();
    let stack = Stack::start_with(repo.path(), |config| {
        config.monitor = Some(format!("http://{monitor_addr}"));
        config.spool.dir = Some(spool_dir.path().to_owned());
    })
    .await;
    monitor.wait_for_distinct(1).await;
    assert_eq!(
        monitor.seen.lock().unwrap().traceparents,
        vec![traceparent.to_owned()]
    );
    assert_eq!(monitor.rows().await, 1);
    stack.stop().await;
    monitor.stop().await;
}
