//! Overload: each service, driven far past its capacity on loopback, keeps
//! serving what it accepts, refuses the rest at once with a clear
//! `RESOURCE_EXHAUSTED`, and does not grow its memory without bound.
//!
//! Capacity is made small (`max_concurrent_requests = 2`) and the callers
//! many (48), so the servers are saturated on any machine; the bounds on
//! latency and memory are generous because the test must not depend on the
//! machine's speed: what it checks is that nothing queues without bound.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{Mutex, oneshot};
use tonic::Code;
use triad_proto::v1::monitor_client::MonitorClient;
use triad_proto::v1::preprocess_client::PreprocessClient;
use triad_proto::v1::scorer_client::ScorerClient;
use triad_proto::v1::{self, FeaturizeRequest};
use triad_server::ServerLimits;
use triad_test_support::{seed_featurize_request, seed_score_request};

const CALLERS: usize = 48;
const CALLS_PER_CALLER: usize = 25;

/// What a storm of calls got back.
#[derive(Debug, Default)]
struct Report {
    ok: usize,
    shed: usize,
    other: Vec<String>,
    accepted_ms: Vec<f64>,
}

impl Report {
    fn p99_ms(&self) -> f64 {
        let mut sorted = self.accepted_ms.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
            .get((sorted.len() * 99).div_ceil(100).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    }

    /// Past saturation: some calls were served, some refused, each
    /// refusal was `RESOURCE_EXHAUSTED` with a message, and nothing else
    /// went wrong; accepted calls did not wait in a queue.
    fn check(&self, service: &str) {
        eprintln!(
            "{service}: {} ok, {} shed, accepted p99 {:.1} ms",
            self.ok,
            self.shed,
            self.p99_ms()
        );
        assert!(
            self.other.is_empty(),
            "{service}: unexpected answers {:?}",
            self.other
        );
        assert_eq!(self.ok + self.shed, CALLERS * CALLS_PER_CALLER);
        assert!(self.ok > 0, "{service}: nothing was served");
        assert!(self.shed > 0, "{service}: never saturated, nothing shed");
        assert!(
            self.p99_ms() < 10_000.0,
            "{service}: accepted calls queued (p99 {} ms)",
            self.p99_ms()
        );
    }
}

/// Runs `CALLERS` concurrent loops of `call`.
async fn storm<F, Fut>(call: F) -> Report
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send,
{
    let report = Arc::new(Mutex::new(Report::default()));
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let call = call.clone();
        let report = Arc::clone(&report);
        tasks.push(tokio::spawn(async move {
            for _ in 0..CALLS_PER_CALLER {
                let started = Instant::now();
                let result = call().await;
                let ms = started.elapsed().as_secs_f64() * 1e3;
                let mut report = report.lock().await;
                match result {
                    Ok(()) => {
                        report.ok += 1;
                        report.accepted_ms.push(ms);
                    }
                    Err(status)
                        if status.code() == Code::ResourceExhausted
                            && status.message().contains("capacity") =>
                    {
                        report.shed += 1;
                    }
                    Err(status) => report.other.push(format!("{status:?}")),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(report).unwrap().into_inner()
}

/// Resident memory of this process (servers and callers), in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn limits() -> ServerLimits {
    ServerLimits {
        max_concurrent_requests: 2,
        ..ServerLimits::default()
    }
}

/// A realistic heavier request: the seed's budget against 200 line items.
fn wide_request() -> FeaturizeRequest {
    let mut request = seed_featurize_request();
    let item = request.all_user_expense_lineitems[0].clone();
    request.all_user_expense_lineitems = (0..200)
        .map(|i| {
            let mut item = item.clone();
            item.itemization_id = Some(format!("item-{i}"));
            item
        })
        .collect();
    request
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_sheds_past_capacity_and_stays_bounded() {
    // Its thousands of calls make spans the tracing test's exporter would
    // queue beside its own.
    let _process = triad_test_support::process_wide_state().await;
    let mut stops: Vec<oneshot::Sender<()>> = Vec::new();
    let mut stop = || {
        let (sender, receiver) = oneshot::channel::<()>();
        stops.push(sender);
        async move {
            let _ = receiver.await;
        }
    };

    // preprocess, small capacity.
    let (pre_listener, pre_addr) = listener().await;
    let config = triad_preprocess::PreprocessConfig {
        server: limits(),
        ..Default::default()
    };
    tokio::spawn(triad_preprocess::serve(pre_listener, None, config, stop()));

    // A second preprocess with the default capacity, for the scorer.
    let (feed_listener, feed_addr) = listener().await;
    tokio::spawn(triad_preprocess::serve(
        feed_listener,
        None,
        Default::default(),
        stop(),
    ));

    // monitor, small capacity, SQLite in a temporary directory.
    let data = tempfile::tempdir().unwrap();
    let (mon_listener, mon_addr) = listener().await;
    let mut monitor_config = triad_monitor::MonitorConfig {
        server: limits(),
        ..Default::default()
    };
    monitor_config.store.database_url = format!("sqlite://{}/monitor.db", data.path().display());
    tokio::spawn(triad_monitor::serve(
        mon_listener,
        None,
        monitor_config,
        stop(),
    ));

    // scorer, small capacity, on the shipped models.
    let (score_listener, score_addr) = listener().await;
    let score_config = triad_score::ScoreConfig {
        preprocess: format!("http://{feed_addr}"),
        models_dir: triad_test_support::shipped_models(),
        server: limits(),
        ..Default::default()
    };
    tokio::spawn(triad_score::serve(
        score_listener,
        None,
        score_config,
        stop(),
    ));

    for addr in [pre_addr, feed_addr, mon_addr, score_addr] {
        triad_server::healthcheck(&format!("http://{addr}"), "", Duration::from_secs(30))
            .await
            .expect("server healthy");
    }

    // Warm up once, then measure memory across the storms.
    let wide = Arc::new(wide_request());
    let preprocess = PreprocessClient::connect(format!("http://{pre_addr}"))
        .await
        .unwrap();
    preprocess.clone().featurize((*wide).clone()).await.unwrap();
    let rss_before = rss_mib();

    let report = storm({
        let client = preprocess.clone();
        let wide = Arc::clone(&wide);
        move || {
            let mut client = client.clone();
            let request = (*wide).clone();
            async move { client.featurize(request).await.map(drop) }
        }
    })
    .await;
    report.check("preprocess");

    let scorer = ScorerClient::connect(format!("http://{score_addr}"))
        .await
        .unwrap();
    let report = storm({
        let client = scorer.clone();
        move || {
            let mut client = client.clone();
            let request = seed_score_request();
            async move { client.score(request).await.map(drop) }
        }
    })
    .await;
    report.check("score");

    let monitor = MonitorClient::connect(format!("http://{mon_addr}"))
        .await
        .unwrap();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let report = storm({
        let client = monitor.clone();
        move || {
            let mut client = client.clone();
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let outcomes = (0..100).map(|i| outcome(n, i)).collect();
            async move {
                client
                    .record_outcomes(v1::RecordOutcomesRequest {
                        outcomes,
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            }
        }
    })
    .await;
    report.check("monitor");

    let growth = rss_mib() - rss_before;
    eprintln!("resident memory grew by {growth:.0} MiB over the storms");
    assert!(growth < 512.0, "memory grew by {growth:.0} MiB");

    for stop in stops {
        let _ = stop.send(());
    }
}

fn outcome(call: usize, i: usize) -> v1::Outcome {
    v1::Outcome {
        outcome_id: format!("overload-{call}-{i}"),
        request_id: format!("overload-{call}"),
        scored_at_ms: 1_764_000_000_000,
        model: "budget_expense_matcher".into(),
        version: "1".into(),
        schema_hash: "hash".into(),
        budget_id: format!("b{call}"),
        itemization_id: format!("i{i}"),
        score: 0.7,
        threshold: 0.5,
        matched: true,
        latency_ms: 1.0,
        ..Default::default()
    }
}
