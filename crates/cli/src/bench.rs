//! `triad bench`: requests per second and latency percentiles of the
//! services over loopback, with real servers started in this process on
//! ephemeral ports.
//!
//! Scenarios: `Score` with a 1×1 and a 50×200 request (through a real
//! preprocess: two gRPC hops), the seed request over the seed's HTTP
//! contract (`POST /budget_expense_matcher/`, HTTP/1.1 keep-alive, one
//! connection per caller), and Open Inference Protocol `ModelInfer` with a
//! 1×20 input (one hop, a logistic model over 20 features), each at 1 and
//! at N concurrent callers. Callers share a few HTTP/2 connections, as a
//! real client pool would. Every scenario runs for a fixed time after a
//! short warm-up; any failed request is counted and reported, never hidden.
//! `--report-outcomes N` measures `triad report` instead
//! ([`crate::report::bench`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use triad_features::{RawBudget, RawLineItem, RawRequest};
use triad_preprocess::PreprocessConfig;
use triad_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use triad_proto::inference::{InferTensorContents, ModelInferRequest, model_infer_request};
use triad_proto::v1::{self, scorer_client::ScorerClient};
use triad_score::ScoreConfig;
use triad_server::Shutdown;

use crate::http1::HttpConnection;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Seconds each scenario runs (after a one-second warm-up).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent callers of the loaded scenarios.
    #[arg(long, default_value_t = 32)]
    callers: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Model repository the scorer serves.
    #[arg(long, default_value = "models")]
    models_dir: std::path::PathBuf,
    /// Model to score with.
    #[arg(long, default_value = "budget_expense_matcher")]
    model: String,
    /// Send every outcome to the monitor at this URL (default: none), to
    /// measure what publishing outcomes costs a `Score` call; a URL nothing
    /// listens on measures the request path alone.
    #[arg(long)]
    monitor: Option<String>,
    /// The scorer's outcome spool directory (with --monitor; default: in
    /// memory).
    #[arg(long)]
    spool_dir: Option<std::path::PathBuf>,
    /// fsync the outcome spool before each answer.
    #[arg(long)]
    spool_fsync: bool,
    /// Instead of the service scenarios, measure `triad report` over a
    /// week of this many stored outcomes (see `report/bench.rs`).
    #[arg(long)]
    report_outcomes: Option<u64>,
    /// With --report-outcomes: the SQLite file to fill, kept and reused
    /// (default: a temporary one).
    #[arg(long, requires = "report_outcomes")]
    report_db: Option<std::path::PathBuf>,
}

/// Measured figures of one scenario.
struct Figures {
    requests: usize,
    failures: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(outcomes) = args.report_outcomes {
        return crate::report::bench::run(outcomes, args.report_db, args.models_dir).await;
    }
    let repository = bench_repository(&args.models_dir, &args.model)?;
    let mut services = Shutdown::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let preprocess_addr = listener.local_addr()?;
    services.spawn(triad_preprocess::serve(
        listener,
        None,
        PreprocessConfig::default(),
        services.signalled(),
    ));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let score_addr = grpc.local_addr()?;
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http_addr = http.local_addr()?;
    services.spawn(triad_score::serve(
        grpc,
        Some(http),
        ScoreConfig {
            addr: score_addr,
            http_addr: Some(http_addr),
            http_model: args.model.clone(),
            preprocess: format!("http://{preprocess_addr}"),
            models_dir: repository.clone(),
            monitor: args.monitor.clone(),
            spool: triad_score::config::SpoolConfig {
                dir: args.spool_dir.clone(),
                fsync: args.spool_fsync,
                ..Default::default()
            },
            ..ScoreConfig::default()
        },
        services.signalled(),
    ));
    let endpoint = format!("http://{score_addr}");
    triad_server::healthcheck(&endpoint, triad_score::SERVICE_NAME, Duration::from_secs(5))
        .await
        .context("scorer did not become healthy")?;

    println!(
        "triad bench: {} s per scenario, {} core(s), loopback, servers and callers in one process",
        args.seconds,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!(
        "{:<28} {:>8} {:>12} {:>10} {:>10} {:>9}",
        "scenario", "callers", "requests/s", "p50", "p99", "failures"
    );
    let pool = channels(&endpoint, args.connections.min(args.callers)).await?;
    let scorers: Vec<_> = pool
        .iter()
        .map(|channel| {
            ScorerClient::new(channel.clone())
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20)
        })
        .collect();
    for (label, budgets, items) in [("Score 1x1", 1, 1), ("Score 50x200", 50, 200)] {
        let request = Arc::new(score_request(budgets, items, &args.model));
        for callers in [1, args.callers] {
            let request = Arc::clone(&request);
            let figures = load(&scorers, callers, args.seconds, move |mut client| {
                let request = Arc::clone(&request);
                async move { client.score((*request).clone()).await.is_ok() }
            })
            .await?;
            print_row(label, callers, &figures);
        }
    }
    let seed = Arc::new(crate::up::SEED_REQUEST.as_bytes().to_vec());
    for callers in [1, args.callers] {
        let mut connections = Vec::new();
        for _ in 0..callers {
            connections.push(Arc::new(tokio::sync::Mutex::new(
                HttpConnection::open(http_addr).await?,
            )));
        }
        let seed = Arc::clone(&seed);
        let figures = load(&connections, callers, args.seconds, move |connection| {
            let seed = Arc::clone(&seed);
            async move {
                let mut connection = connection.lock().await;
                connection
                    .post("/budget_expense_matcher/", &seed)
                    .await
                    .is_ok_and(|status| status == 200)
            }
        })
        .await?;
        print_row("HTTP seed request", callers, &figures);
    }
    let inference: Vec<_> = pool
        .iter()
        .map(|c| GrpcInferenceServiceClient::new(c.clone()))
        .collect();
    let infer = Arc::new(ModelInferRequest {
        model_name: INFER_MODEL.to_owned(),
        inputs: vec![model_infer_request::InferInputTensor {
            name: "features".to_owned(),
            datatype: "FP32".to_owned(),
            shape: vec![1, INFER_FEATURES as i64],
            contents: Some(InferTensorContents {
                fp32_contents: (0..INFER_FEATURES).map(|i| i as f32 / 10.0).collect(),
                ..InferTensorContents::default()
            }),
            ..Default::default()
        }],
        ..ModelInferRequest::default()
    });
    for callers in [1, args.callers] {
        let infer = Arc::clone(&infer);
        let figures = load(&inference, callers, args.seconds, move |mut client| {
            let infer = Arc::clone(&infer);
            async move { client.model_infer((*infer).clone()).await.is_ok() }
        })
        .await?;
        print_row("ModelInfer 1x20", callers, &figures);
    }

    services.stop().await?;
    let _ = std::fs::remove_dir_all(&repository);
    Ok(())
}

/// Runs `callers` loops of `call` for `seconds` (after a warm-up second);
/// caller `i` uses client `i % clients.len()`.
async fn load<C, F, Fut>(
    clients: &[C],
    callers: usize,
    seconds: u64,
    call: F,
) -> anyhow::Result<Figures>
where
    C: Clone + Send + 'static,
    F: Fn(C) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let warm_up = Instant::now() + Duration::from_secs(1);
    let end = warm_up + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let client = clients[caller % clients.len()].clone();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut failures) = (Vec::new(), 0usize);
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let ok = call(client.clone()).await;
                if started >= warm_up {
                    if ok {
                        latencies.push(started.elapsed());
                    } else {
                        failures += 1;
                    }
                }
            }
            (latencies, failures)
        }));
    }
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for task in tasks {
        let (l, f) = task.await?;
        latencies.extend(l);
        failures += f;
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Figures {
        requests: latencies.len(),
        failures,
        elapsed: Duration::from_secs(seconds),
        p50: at(0.50),
        p99: at(0.99),
    })
}

/// `n` channels to `endpoint`.
async fn channels(endpoint: &str, n: usize) -> anyhow::Result<Vec<tonic::transport::Channel>> {
    let mut channels = Vec::new();
    for _ in 0..n.max(1) {
        channels.push(
            tonic::transport::Endpoint::from_shared(endpoint.to_owned())?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    Ok(channels)
}

fn print_row(label: &str, callers: usize, figures: &Figures) {
    println!(
        "{:<28} {:>8} {:>12.0} {:>10} {:>10} {:>9}",
        label,
        callers,
        figures.requests as f64 / figures.elapsed.as_secs_f64(),
        format!("{:.2} ms", figures.p50.as_secs_f64() * 1e3),
        format!("{:.2} ms", figures.p99.as_secs_f64() * 1e3),
        figures.failures
    );
}

/// A 20-feature logistic model for the `ModelInfer` scenario, written into
/// a scratch repository beside a copy of the served models.
fn bench_repository(
    models_dir: &std::path::Path,
    model: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let root = std::env::temp_dir().join(format!("triad-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let copy_from = models_dir.join(model);
    for entry in walk(&copy_from)? {
        let target = root.join(model).join(entry.strip_prefix(&copy_from)?);
        std::fs::create_dir_all(target.parent().context("a file has a parent")?)?;
        std::fs::copy(&entry, &target)?;
    }
    let schema = triad_features::FeatureSchema::current();
    let features: Vec<String> = schema
        .feature_names
        .iter()
        .take(INFER_FEATURES)
        .cloned()
        .collect();
    let dir = root.join(INFER_MODEL).join("1");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("model.toml"),
        format!(
            "kind = \"logistic\"\nthreshold = 0.5\nfeatures = {features:?}\n\n[schema]\nname = \"{}\"\nversion = \"{}\"\nhash = \"{}\"\n",
            schema.name, schema.version, schema.hash
        ),
    )?;
    let weights: serde_json::Map<String, serde_json::Value> = features
        .iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), serde_json::json!(0.1 * i as f64 - 1.0)))
        .collect();
    std::fs::write(
        dir.join("model.json"),
        serde_json::json!({ "intercept": 0.25, "weights": weights }).to_string(),
    )?;
    Ok(root)
}

fn walk(dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(walk(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

const INFER_MODEL: &str = "bench_logistic_20";
const INFER_FEATURES: usize = 20;

/// A realistic request: `budgets` budgets and `items` line items of one
/// user, drawn from the synthetic data set (ids made unique).
fn score_request(budgets: usize, items: usize, model: &str) -> v1::ScoreRequest {
    let dataset = triad_synth::generate(&triad_synth::SynthConfig {
        users: 200,
        ..triad_synth::SynthConfig::default()
    });
    let all_budgets: Vec<RawBudget> = dataset
        .requests
        .iter()
        .flat_map(|r| r.request.budgets.iter().cloned())
        .collect();
    let all_items: Vec<RawLineItem> = dataset
        .requests
        .iter()
        .flat_map(|r| r.request.all_user_expense_lineitems.iter().cloned())
        .collect();
    let request = RawRequest {
        budgets: all_budgets
            .into_iter()
            .cycle()
            .take(budgets)
            .enumerate()
            .map(|(i, mut b)| {
                b.budget_id = Some(format!("b{i}"));
                b
            })
            .collect(),
        all_user_expense_lineitems: all_items
            .into_iter()
            .cycle()
            .take(items)
            .enumerate()
            .map(|(i, mut item)| {
                item.itemization_id = Some(format!("i{i}"));
                item
            })
            .collect(),
    };
    let request: v1::FeaturizeRequest = request.into();
    v1::ScoreRequest {
        budgets: request.budgets,
        all_user_expense_lineitems: request.all_user_expense_lineitems,
        models: vec![model.to_owned()],
        ..v1::ScoreRequest::default()
    }
}
