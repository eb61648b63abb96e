//! `triad-monitor`: runs the monitor gRPC service over its database, and
//! its HTTP port (dashboard, `/metrics`, `/health`) unless `--http-addr off`.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use triad_monitor::{MonitorConfig, config};

#[derive(Parser)]
#[command(
    version,
    about = "Triad's monitor service: stores outcomes and labels, serves precision and recall over time"
)]
struct Cli {
    /// Address to listen on for gRPC.
    #[arg(long, env = config::ADDR_ENV, default_value = config::DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Address of the HTTP port (dashboard, /metrics, /health), or `off`.
    #[arg(long, env = config::HTTP_ADDR_ENV, default_value = config::DEFAULT_HTTP_ADDR)]
    http_addr: triad_server::HttpAddr,
    /// sqlite://PATH (or a file path) or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = config::DATABASE_URL_ENV, default_value = config::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Model repository: reference profiles are read from
    /// <models-dir>/<model>/<version>/profile.json (drift, estimated
    /// precision and recall).
    #[arg(long, env = config::MODELS_DIR_ENV, default_value = config::DEFAULT_MODELS_DIR)]
    models_dir: std::path::PathBuf,
    /// Alert thresholds per model: a monitor.toml with [defaults] and
    /// [models.<name>] tables (docs/monitoring.md, "Alerts"). Default: the
    /// documented thresholds for every model.
    #[arg(long, env = config::CONFIG_ENV)]
    config: Option<std::path::PathBuf>,
    /// POST firing and resolved alerts to this http:// URL, in
    /// Alertmanager's webhook format.
    #[arg(long, env = config::ALERT_WEBHOOK_ENV)]
    alert_webhook: Option<String>,
    /// The monitor's public HTTP base (e.g. https://monitor.example), which
    /// the webhook's dashboard links start with.
    #[arg(long, env = config::EXTERNAL_URL_ENV, default_value = "")]
    external_url: String,
    #[command(flatten)]
    limits: triad_server::LimitsArgs,
    #[command(flatten)]
    security: triad_server::SecurityArgs,
    #[command(subcommand)]
    command: Option<triad_server::ServiceCommand>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Held until exit: dropping it flushes the last spans.
    let _telemetry = triad_telemetry::init("triad-monitor");
    if let Some(triad_server::ServiceCommand::Healthcheck) = cli.command {
        triad_server::check_local_with(
            cli.addr,
            triad_monitor::SERVICE_NAME,
            &cli.security.security(),
        )
        .await?;
        return Ok(());
    }
    let mut config = MonitorConfig {
        addr: cli.addr,
        http_addr: cli
            .http_addr
            .0
            .unwrap_or_else(|| MonitorConfig::default().http_addr),
        models_dir: cli.models_dir,
        security: cli.security.security(),
        ..MonitorConfig::default()
    };
    config.store.database_url = cli.database_url;
    config.alerts.config_file = cli.config;
    config.alerts.webhook = cli.alert_webhook.map(|url| config::WebhookConfig {
        url,
        external_url: cli.external_url,
        ..config::WebhookConfig::default()
    });
    cli.limits.apply(&mut config.server);
    let listener = triad_server::bind(config.addr).await?;
    let http = match cli.http_addr.0 {
        Some(addr) => Some(triad_server::bind(addr).await?),
        None => None,
    };
    triad_monitor::serve(listener, http, config, triad_server::shutdown_signal())
        .await
        .context("monitor server failed")
}
