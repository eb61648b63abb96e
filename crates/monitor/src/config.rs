//! Typed configuration of the monitor service, with documented defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use triad_server::{Security, ServerLimits};

/// Default gRPC address.
pub const DEFAULT_ADDR: &str = "0.0.0.0:50053";
/// Default address of the HTTP port (dashboard, `/metrics`, `/health`).
pub const DEFAULT_HTTP_ADDR: &str = "0.0.0.0:8081";
/// Default database: a SQLite file, created with its directory on first
/// start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./triad-data/monitor.db";

/// Largest [`StoreConfig::rows_per_statement`].
pub const MAX_ROWS_PER_STATEMENT: usize = 900;

/// Environment variable overriding the gRPC listen address.
pub const ADDR_ENV: &str = "TRIAD_MONITOR_ADDR";
/// Environment variable overriding the dashboard's HTTP address.
pub const HTTP_ADDR_ENV: &str = "TRIAD_MONITOR_HTTP_ADDR";
/// Environment variable overriding [`StoreConfig::database_url`].
pub const DATABASE_URL_ENV: &str = "TRIAD_MONITOR_DATABASE_URL";
/// Default model repository, where reference profiles are read: the
/// scorer's default too.
pub const DEFAULT_MODELS_DIR: &str = "models";
/// Environment variable overriding [`MonitorConfig::models_dir`] (the one
/// the scorer reads too).
pub const MODELS_DIR_ENV: &str = "TRIAD_MODELS_DIR";

/// Everything the monitor service can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorConfig {
    /// Where to listen for gRPC.
    pub addr: SocketAddr,
    /// Where the HTTP port listens: the dashboard, `/metrics` and
    /// `/health`.
    pub http_addr: SocketAddr,
    /// The storage layer's settings.
    pub store: StoreConfig,
    /// Shared server limits.
    pub server: ServerLimits,
    /// TLS and bearer tokens on both ports: the service token may call
    /// everything, the read-only token the dashboard and the read RPCs
    /// ([`crate::READ_METHODS`]). Default: plain TCP, no tokens.
    pub security: Security,
    /// The model repository: the reference profile of model `m` version
    /// `v` is read from `<models_dir>/m/v/profile.json` on first use and
    /// again when the file changes. Without one, `Drift` answers "not
    /// available" and performance is estimated from raw scores. Default
    /// [`DEFAULT_MODELS_DIR`].
    pub models_dir: PathBuf,
    /// Alert evaluation: the thresholds file and the webhook
    /// (docs/monitoring.md, "Alerts").
    pub alerts: AlertsConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.parse().expect("the default address parses"),
            http_addr: DEFAULT_HTTP_ADDR
                .parse()
                .expect("the default HTTP address parses"),
            store: StoreConfig::default(),
            server: ServerLimits::default(),
            security: Security::default(),
            models_dir: PathBuf::from(DEFAULT_MODELS_DIR),
            alerts: AlertsConfig::default(),
        }
    }
}

/// Settings of the [`Store`](crate::Store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// `sqlite://PATH` (or a bare file path) for a SQLite file, created
    /// with its parent directory when missing and switched to WAL mode;
    /// `postgres://…` for PostgreSQL. Default
    /// [`DEFAULT_DATABASE_URL`].
    pub database_url: String,
    /// Most pooled database connections (default 8; SQLite uses at most 4:
    /// one writer at a time, the rest read).
    pub max_connections: u32,
    /// How long a request waits for a free connection (default 10 s).
    pub acquire_timeout: Duration,
    /// Most points one `QueryMetrics`, `Anomalies` or `QueryEvents` answer
    /// may hold (default 10 000, over a year of hourly buckets); a longer
    /// series is refused and the caller asked for a larger bucket or a
    /// narrower range. Change-point detection is quadratic in the length.
    pub max_points: usize,
    /// Most outcome rows per multi-row `INSERT` (default and maximum 900:
    /// an outcome row has 34 parameters and SQLite allows 32 766 per
    /// statement; other statements scale it to their width).
    pub rows_per_statement: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            max_points: 10_000,
            rows_per_statement: MAX_ROWS_PER_STATEMENT,
        }
    }
}

/// Environment variable naming the alert thresholds file (`--config`).
pub const CONFIG_ENV: &str = "TRIAD_MONITOR_CONFIG";
/// Environment variable naming the alert webhook (`--alert-webhook`).
pub const ALERT_WEBHOOK_ENV: &str = "TRIAD_MONITOR_ALERT_WEBHOOK";
/// Environment variable naming the monitor's public HTTP base
/// (`--external-url`), which the webhook's links start with.
pub const EXTERNAL_URL_ENV: &str = "TRIAD_MONITOR_EXTERNAL_URL";

/// Alert evaluation's settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertsConfig {
    /// The `monitor.toml` of per-model thresholds; `None`: the documented
    /// defaults for every model.
    pub config_file: Option<PathBuf>,
    /// Where firing and resolved alerts are POSTed; `None`: no webhook.
    pub webhook: Option<WebhookConfig>,
}

/// The alert webhook: an Alertmanager-format receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// `http://host[:port]/path` (https is refused: put a TLS-terminating
    /// proxy in front of an https receiver).
    pub url: String,
    /// The monitor's public HTTP base (`https://monitor.example`), which
    /// the alerts' dashboard links (`generatorURL`) start with; empty: the
    /// links stay relative.
    pub external_url: String,
    /// The `receiver` field of each message (default `triad-monitor`).
    pub receiver: String,
    /// Longest wait for one POST's answer (default 10 s).
    pub timeout: Duration,
    /// Most POSTs of one message (default 5).
    pub max_attempts: u32,
    /// Wait before the first retry, doubled at each retry (default 1 s).
    pub initial_backoff: Duration,
    /// Longest wait between retries (default 60 s).
    pub max_backoff: Duration,
    /// A firing alert delivered is sent again only once it has fired this
    /// long since its last delivery (default 24 h).
    pub repeat_interval: Duration,
    /// Most messages waiting to be sent; more are dropped (and sent at the
    /// next evaluation), so an unreachable receiver never holds memory or
    /// the monitor (default 64).
    pub queue: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            external_url: String::new(),
            receiver: "triad-monitor".to_owned(),
            timeout: Duration::from_secs(10),
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            repeat_interval: Duration::from_secs(24 * 3_600),
            queue: 64,
        }
    }
}
