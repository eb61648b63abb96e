//! `triad-score`: runs the scorer service (gRPC and the seed's HTTP
//! contract).

/// mimalloc: measurably faster than the system allocator on the request
/// path (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use triad_score::ScoreConfig;
use triad_score::config::{self, env};
use triad_score::payload::PayloadLogConfig;
use triad_server::security::token_source;

#[derive(Parser)]
#[command(
    version,
    about = "Triad's scorer: serves models on the shared feature matrix"
)]
struct Cli {
    /// Address to listen on for gRPC.
    #[arg(long, env = env::ADDR, default_value = config::DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Address of the seed's HTTP contract; `off` disables it.
    #[arg(long, env = env::HTTP_ADDR, default_value = config::DEFAULT_HTTP_ADDR)]
    http_addr: triad_server::HttpAddr,
    /// URL of the preprocess service.
    #[arg(long, env = env::PREPROCESS, default_value = config::DEFAULT_PREPROCESS)]
    preprocess: String,
    /// Deadline of each preprocess call, in milliseconds.
    #[arg(long, env = env::PREPROCESS_TIMEOUT_MS, default_value_t = 5_000)]
    preprocess_timeout_ms: u64,
    /// Root of the model repository.
    #[arg(long, env = env::MODELS_DIR, default_value = config::DEFAULT_MODELS_DIR)]
    models_dir: PathBuf,
    /// Serve only these models (comma-separated; default: all).
    #[arg(long, env = env::MODELS, value_delimiter = ',')]
    models: Vec<String>,
    /// Version pins, `model=version`, comma-separated.
    #[arg(long, env = env::PINS, default_value = "")]
    pin: String,
    /// gRPC URL of the monitor to send every outcome to (none: send nothing).
    #[arg(long, env = env::MONITOR)]
    monitor: Option<String>,
    /// Directory of the outcome spool, where outcomes wait for the monitor
    /// (`off`: in memory, lost on restart). Default
    /// `triad-data/spool/score-<grpc port>`, or in memory when that cannot
    /// be created.
    #[arg(long, env = env::SPOOL_DIR)]
    spool_dir: Option<String>,
    /// Most bytes the outcome spool may hold; past it requests are
    /// refused with UNAVAILABLE until the monitor catches up. Default 1 GiB
    /// on disk, 64 MiB in memory.
    #[arg(long, env = env::SPOOL_MAX_BYTES)]
    spool_max_bytes: Option<u64>,
    /// Most bytes one request's outcomes may take in the spool; a larger
    /// request is refused with INVALID_ARGUMENT. Default a quarter of the
    /// spool's size, at most 256 MiB.
    #[arg(long, env = env::SPOOL_MAX_REQUEST_BYTES)]
    spool_max_request_bytes: Option<u64>,
    /// fsync the spool before answering each request: outcomes then
    /// survive a machine crash, not only a crash of the scorer; costs a
    /// disk flush per group of requests.
    #[arg(long, env = env::SPOOL_FSYNC)]
    spool_fsync: bool,
    /// How long shutdown spends sending the spool to the monitor, in
    /// milliseconds; what is left stays in the spool for the next start.
    #[arg(long, env = env::DRAIN_TIMEOUT_MS, default_value_t = 5_000)]
    drain_timeout_ms: u64,
    /// Most bytes one Score request may hold in the scorer, estimated from
    /// its budgets and items before any work; a larger one is refused with
    /// INVALID_ARGUMENT (default 56 MiB).
    #[arg(long, env = env::MAX_REQUEST_BYTES)]
    max_request_bytes: Option<usize>,
    /// How often to rescan the model repository, in milliseconds.
    #[arg(long, env = env::POLL_MS, default_value_t = 2_000)]
    poll_ms: u64,
    #[command(flatten)]
    limits: triad_server::LimitsArgs,
    #[command(flatten)]
    security: triad_server::SecurityArgs,
    #[command(flatten)]
    upstream_tls: triad_server::security::UpstreamTlsArgs,
    /// File whose first line is the bearer token sent to preprocess; or
    /// set TRIAD_PREPROCESS_TOKEN.
    #[arg(long, env = env::PREPROCESS_TOKEN_FILE)]
    preprocess_token_file: Option<PathBuf>,
    /// File whose first line is the bearer token sent to the monitor (its
    /// service token); or set TRIAD_MONITOR_TOKEN.
    #[arg(long, env = env::MONITOR_TOKEN_FILE)]
    monitor_token_file: Option<PathBuf>,
    /// Log each request's input and output, redacted, at debug level under
    /// the `triad_score::payload` target (`RUST_LOG=info,triad_score::payload=debug`);
    /// `off` never does, whatever the log level.
    #[arg(
        long,
        env = env::PAYLOAD_LOG,
        default_value = "on",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    payload_log: bool,
    /// Fields whose values payload logging replaces with "[redacted]",
    /// comma-separated; `*` at either end matches any text (default
    /// `*vendor*,*description*`: the free-text fields).
    #[arg(long, env = env::REDACT, value_delimiter = ',')]
    redact: Option<Vec<String>>,
    #[command(subcommand)]
    command: Option<triad_server::ServiceCommand>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Held until exit: dropping it flushes the last spans.
    let _telemetry = triad_telemetry::init("triad-score");
    if let Some(triad_server::ServiceCommand::Healthcheck) = cli.command {
        triad_server::check_local_with(
            cli.addr,
            triad_score::SERVICE_NAME,
            &cli.security.security(),
        )
        .await?;
        return Ok(());
    }
    let mut config = ScoreConfig {
        addr: cli.addr,
        http_addr: cli.http_addr.0,
        preprocess: cli.preprocess,
        preprocess_timeout: Duration::from_millis(cli.preprocess_timeout_ms),
        models_dir: cli.models_dir,
        models: cli.models,
        pins: config::parse_pins(&cli.pin).map_err(anyhow::Error::msg)?,
        poll_interval: Duration::from_millis(cli.poll_ms),
        spool: config::SpoolConfig {
            dir: spool_dir(cli.spool_dir.as_deref(), cli.addr, cli.monitor.is_some()),
            max_bytes: cli.spool_max_bytes,
            fsync: cli.spool_fsync,
            drain_timeout: Duration::from_millis(cli.drain_timeout_ms),
            max_request_bytes: cli.spool_max_request_bytes,
        },
        monitor: cli.monitor,
        security: cli.security.security(),
        upstream_tls: cli.upstream_tls.client_tls(),
        preprocess_token: token_source(&cli.preprocess_token_file, env::PREPROCESS_TOKEN),
        monitor_token: token_source(&cli.monitor_token_file, env::MONITOR_TOKEN),
        payload_log: PayloadLogConfig {
            enabled: cli.payload_log,
            redact: match cli.redact {
                Some(fields) => fields
                    .into_iter()
                    .filter(|f| !f.trim().is_empty())
                    .collect(),
                None => PayloadLogConfig::default().redact,
            },
        },
        ..ScoreConfig::default()
    };
    cli.limits.apply(&mut config.server);
    if let Some(max) = cli.max_request_bytes {
        config.max_request_bytes = max;
    }
    let grpc = triad_server::bind(config.addr).await?;
    let http = match config.http_addr {
        Some(addr) => Some(triad_server::bind(addr).await?),
        None => None,
    };
    triad_score::serve(grpc, http, config, triad_server::shutdown_signal())
        .await
        .context("scorer failed")
}

/// The spool directory: the one asked for, none for `off`, else the
/// default one when it can be created (a read-only image keeps the spool
/// in memory, with a warning).
fn spool_dir(flag: Option<&str>, addr: SocketAddr, monitor: bool) -> Option<PathBuf> {
    match flag {
        Some("off" | "") => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None if !monitor => None,
        None => {
            let dir = config::default_spool_dir(addr);
            match std::fs::create_dir_all(&dir) {
                Ok(()) => Some(dir),
                Err(error) => {
                    tracing::warn!(
                        spool = %dir.display(),
                        %error,
                        "cannot create the default outcome spool; keeping outcomes in memory (set --spool-dir)"
                    );
                    None
                }
            }
        }
    }
}
