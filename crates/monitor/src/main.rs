//! `triad-monitor`: runs the monitor gRPC service over its database.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
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
    /// Address reserved for the HTTP dashboard.
    #[arg(long, env = config::HTTP_ADDR_ENV, default_value = config::DEFAULT_HTTP_ADDR)]
    http_addr: SocketAddr,
    /// sqlite://PATH (or a file path) or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = config::DATABASE_URL_ENV, default_value = config::DEFAULT_DATABASE_URL)]
    database_url: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Exits 0 when the server at --addr answers SERVING (for container
    /// health checks).
    Healthcheck,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    triad_server::telemetry::init();
    if let Some(Command::Healthcheck) = cli.command {
        let port = cli.addr.port();
        let endpoint = format!("http://127.0.0.1:{port}");
        triad_server::healthcheck(
            &endpoint,
            triad_monitor::SERVICE_NAME,
            Duration::from_secs(2),
        )
        .await?;
        return Ok(());
    }
    let mut config = MonitorConfig {
        addr: cli.addr,
        http_addr: cli.http_addr,
        ..MonitorConfig::default()
    };
    config.store.database_url = cli.database_url;
    let listener = triad_server::bind(config.addr).await?;
    triad_monitor::serve(listener, config, triad_server::shutdown_signal())
        .await
        .context("monitor server failed")
}
