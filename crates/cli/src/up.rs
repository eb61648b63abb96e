//! `triad up`: the embedded default. Starts every service in this process on
//! its default port — preprocess, one scorer serving every model in the
//! repository with the seed's HTTP contract, and the monitor on a SQLite
//! file with its HTTP dashboard — checks the chain end to end with the seed
//! request, and prints ready-to-paste calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

/// `println!` that ignores a closed standard output: the services keep
/// running when whoever started them stops reading.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
use clap::Args;
use tokio::sync::watch;
use triad_features::{JsonLimits, parse_request};
use triad_preprocess::PreprocessConfig;
use triad_proto::v1::{self, scorer_client::ScorerClient};
use triad_score::ScoreConfig;

/// The seed's example request, embedded so the check needs no files.
pub const SEED_REQUEST: &str = include_str!("../../../tests/fixtures/seed_request.json");

#[derive(Args)]
pub struct UpArgs {
    /// gRPC address of the preprocess service.
    #[arg(long, env = triad_preprocess::config::ADDR_ENV, default_value = triad_preprocess::config::DEFAULT_ADDR)]
    preprocess_addr: SocketAddr,
    /// gRPC address of the scorer (Scorer and the Open Inference Protocol).
    #[arg(long, env = triad_score::config::env::ADDR, default_value = triad_score::config::DEFAULT_ADDR)]
    score_addr: SocketAddr,
    /// Address of the seed's HTTP contract.
    #[arg(long, env = triad_score::config::env::HTTP_ADDR, default_value = triad_score::config::DEFAULT_HTTP_ADDR)]
    http_addr: SocketAddr,
    /// gRPC address of the monitor.
    #[arg(long, env = triad_monitor::config::ADDR_ENV, default_value = triad_monitor::config::DEFAULT_ADDR)]
    monitor_addr: SocketAddr,
    /// HTTP address of the monitor: its dashboard, /metrics and /health.
    #[arg(long, env = triad_monitor::config::HTTP_ADDR_ENV, default_value = triad_monitor::config::DEFAULT_HTTP_ADDR)]
    monitor_http_addr: SocketAddr,
    /// The monitor's database (SQLite file by default; `postgres://…` for
    /// PostgreSQL).
    #[arg(long, env = triad_monitor::config::DATABASE_URL_ENV, default_value = triad_monitor::config::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Model repository.
    #[arg(long, env = triad_score::config::env::MODELS_DIR, default_value = triad_score::config::DEFAULT_MODELS_DIR)]
    models_dir: PathBuf,
    /// The scorer's outcome spool, where outcomes wait for the monitor.
    /// Default: `spool/score` beside a SQLite database, else
    /// `triad-data/spool/score`.
    #[arg(long, env = triad_score::config::env::SPOOL_DIR)]
    spool_dir: Option<PathBuf>,
    /// Stop after the end-to-end check instead of serving until ctrl-c.
    #[arg(long)]
    check_only: bool,
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.models_dir.is_dir(),
        "no model repository at {}: run from the repository root or pass --models-dir",
        args.models_dir.display()
    );
    // The scorer stops first, so that its outcome sender flushes into a
    // monitor that is still up; then the back-end services stop.
    let (stop, stopped) = watch::channel(false);
    let (stop_front, front_stopped) = watch::channel(false);
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };

    let listener = triad_server::bind(args.preprocess_addr).await?;
    let preprocess_addr = listener.local_addr()?;
    let preprocess = tokio::spawn(triad_preprocess::serve(
        listener,
        PreprocessConfig {
            addr: preprocess_addr,
            ..PreprocessConfig::default()
        },
        until_stopped(stopped.clone()),
    ));

    let listener = triad_server::bind(args.monitor_addr).await?;
    let monitor_addr = listener.local_addr()?;
    let monitor_http = triad_server::bind(args.monitor_http_addr).await?;
    let monitor_http_addr = monitor_http.local_addr()?;
    let mut monitor_config = triad_monitor::MonitorConfig {
        addr: monitor_addr,
        http_addr: monitor_http_addr,
        models_dir: args.models_dir.clone(),
        ..triad_monitor::MonitorConfig::default()
    };
    monitor_config.store.database_url = args.database_url.clone();
    let monitor = tokio::spawn(triad_monitor::serve(
        listener,
        Some(monitor_http),
        monitor_config,
        until_stopped(stopped.clone()),
    ));

    let grpc = triad_server::bind(args.score_addr).await?;
    let http = triad_server::bind(args.http_addr).await?;
    let (score_addr, http_addr) = (grpc.local_addr()?, http.local_addr()?);
    let scorer = tokio::spawn(triad_score::serve(
        grpc,
        Some(http),
        ScoreConfig {
            addr: score_addr,
            http_addr: Some(http_addr),
            preprocess: format!("http://127.0.0.1:{}", preprocess_addr.port()),
            models_dir: args.models_dir.clone(),
            monitor: Some(format!("http://127.0.0.1:{}", monitor_addr.port())),
            spool: triad_score::config::SpoolConfig {
                dir: Some(
                    args.spool_dir
                        .clone()
                        .unwrap_or_else(|| data_dir(&args.database_url).join("spool/score")),
                ),
                ..triad_score::config::SpoolConfig::default()
            },
            ..ScoreConfig::default()
        },
        until_stopped(front_stopped),
    ));

    let check = check(preprocess_addr, score_addr, monitor_addr).await;
    if check.is_ok() {
        print_banner(
            preprocess_addr,
            score_addr,
            http_addr,
            monitor_addr,
            monitor_http_addr,
        );
        if !args.check_only {
            triad_server::shutdown_signal().await;
        }
    }
    let _ = stop_front.send(true);
    let scorer = scorer.await?.context("scorer failed");
    let _ = stop.send(true);
    preprocess.await?.context("preprocess server failed")?;
    monitor.await?.context("monitor failed")?;
    scorer?;
    check
}

/// Waits for both services and scores the seed request through them.
async fn check(
    preprocess: SocketAddr,
    score: SocketAddr,
    monitor: SocketAddr,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(5);
    let monitor = format!("http://127.0.0.1:{}", monitor.port());
    triad_server::healthcheck(&monitor, triad_monitor::SERVICE_NAME, timeout)
        .await
        .context("monitor did not become healthy")?;
    let preprocess = format!("http://127.0.0.1:{}", preprocess.port());
    let score = format!("http://127.0.0.1:{}", score.port());
    triad_server::healthcheck(&preprocess, triad_preprocess::SERVICE_NAME, timeout)
        .await
        .context("preprocess did not become healthy")?;
    triad_server::healthcheck(&score, triad_score::SERVICE_NAME, timeout)
        .await
        .context("scorer did not become healthy")?;
    let request: v1::FeaturizeRequest = parse_request(SEED_REQUEST, &JsonLimits::default())?
        .request
        .into();
    let response = ScorerClient::connect(score)
        .await?
        .score(v1::ScoreRequest {
            budgets: request.budgets,
            all_user_expense_lineitems: request.all_user_expense_lineitems,
            ..v1::ScoreRequest::default()
        })
        .await
        .context("scoring the seed request")?
        .into_inner();
    say!(
        "seed request: {} pair(s) featurized once (schema {}), scored by {} model(s):",
        response.keys.len(),
        response.schema_hash,
        response.results.len()
    );
    for result in &response.results {
        for (key, (score, matched)) in response
            .keys
            .iter()
            .zip(result.scores.iter().zip(&result.matched))
        {
            say!(
                "  {:<24} v{:<3} budget {} x item {}: score {score:.4} (threshold {}) matched={matched}",
                result.model,
                result.version,
                key.budget_id,
                key.itemization_id,
                result.threshold
            );
        }
    }
    Ok(())
}

/// The data directory of `triad up`: the SQLite database file's directory,
/// or `triad-data` for another database.
fn data_dir(database_url: &str) -> PathBuf {
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .or_else(|| (!database_url.contains("://")).then_some(database_url))
        .map(|rest| rest.split('?').next().unwrap_or_default());
    match path
        .map(std::path::Path::new)
        .and_then(std::path::Path::parent)
    {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("triad-data"),
    }
}

fn print_banner(
    preprocess: SocketAddr,
    score: SocketAddr,
    http: SocketAddr,
    monitor: SocketAddr,
    monitor_http: SocketAddr,
) {
    say!();
    say!("triad is up (ctrl-c to stop)");
    say!("  preprocess  grpc  {preprocess}");
    say!("  score       grpc  {score}   (triad.v1.Scorer, inference.GRPCInferenceService)");
    say!("  score       http  {http}    (POST /budget_expense_matcher/, GET /metrics)");
    say!("  monitor     grpc  {monitor}   (triad.v1.Monitor; every outcome is stored)");
    say!("  monitor     http  {monitor_http}    (dashboard, GET /metrics)");
    say!();
    say!("dashboard: http://127.0.0.1:{}/", monitor_http.port());
    say!();
    say!("try:");
    say!(
        "  curl -s -d @tests/fixtures/seed_request.json localhost:{}/budget_expense_matcher/",
        http.port()
    );
    say!(
        "  grpcurl -plaintext -d @ localhost:{} triad.v1.Scorer/Score < tests/fixtures/seed_request.json",
        score.port()
    );
    say!(
        "  grpcurl -plaintext -d @ localhost:{} triad.v1.Preprocess/Featurize < tests/fixtures/seed_request.json",
        preprocess.port()
    );
}
