//! Typed configuration of the scorer, with documented defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use triad_server::auth::TokenSource;
use triad_server::tls::ClientTls;
use triad_server::{Security, ServerLimits};

use crate::payload::PayloadLogConfig;

/// Default gRPC address.
pub const DEFAULT_ADDR: &str = "0.0.0.0:50052";
/// Default address of the seed's HTTP contract.
pub const DEFAULT_HTTP_ADDR: &str = "0.0.0.0:8080";
/// Default preprocess endpoint.
pub const DEFAULT_PREPROCESS: &str = "http://127.0.0.1:50051";
/// Default model repository.
pub const DEFAULT_MODELS_DIR: &str = "models";
/// The model the seed's HTTP contract answers with.
pub const DEFAULT_HTTP_MODEL: &str = "budget_expense_matcher";

/// Environment variable names, one per setting; the `triad-score` binary
/// reads each as the default of the flag of the same name.
pub mod env {
    /// Where to listen for gRPC ([`ScoreConfig::addr`](super::ScoreConfig::addr)).
    pub const ADDR: &str = "TRIAD_SCORE_ADDR";
    /// Where to serve the seed's HTTP contract, or `off`
    /// ([`ScoreConfig::http_addr`](super::ScoreConfig::http_addr)).
    pub const HTTP_ADDR: &str = "TRIAD_SCORE_HTTP_ADDR";
    /// The preprocess service's URL
    /// ([`ScoreConfig::preprocess`](super::ScoreConfig::preprocess)).
    pub const PREPROCESS: &str = "TRIAD_PREPROCESS_URL";
    /// Deadline of each preprocess call, in milliseconds
    /// ([`ScoreConfig::preprocess_timeout`](super::ScoreConfig::preprocess_timeout)).
    pub const PREPROCESS_TIMEOUT_MS: &str = "TRIAD_PREPROCESS_TIMEOUT_MS";
    /// Root of the model repository
    /// ([`ScoreConfig::models_dir`](super::ScoreConfig::models_dir)).
    pub const MODELS_DIR: &str = "TRIAD_MODELS_DIR";
    /// The models to serve, comma-separated
    /// ([`ScoreConfig::models`](super::ScoreConfig::models)).
    pub const MODELS: &str = "TRIAD_MODELS";
    /// Version pins, `model=version`, comma-separated
    /// ([`ScoreConfig::pins`](super::ScoreConfig::pins)).
    pub const PINS: &str = "TRIAD_MODEL_PINS";
    /// How often the repository is rescanned, in milliseconds
    /// ([`ScoreConfig::poll_interval`](super::ScoreConfig::poll_interval)).
    pub const POLL_MS: &str = "TRIAD_MODELS_POLL_MS";
    /// The monitor's gRPC URL
    /// ([`ScoreConfig::monitor`](super::ScoreConfig::monitor)).
    pub const MONITOR: &str = "TRIAD_MONITOR_URL";
    /// File whose first line is the token sent to preprocess
    /// ([`ScoreConfig::preprocess_token`](super::ScoreConfig::preprocess_token)).
    pub const PREPROCESS_TOKEN_FILE: &str = "TRIAD_PREPROCESS_TOKEN_FILE";
    /// The preprocess token itself, when no file is given.
    pub const PREPROCESS_TOKEN: &str = "TRIAD_PREPROCESS_TOKEN";
    /// File whose first line is the token sent to the monitor
    /// ([`ScoreConfig::monitor_token`](super::ScoreConfig::monitor_token)).
    pub const MONITOR_TOKEN_FILE: &str = "TRIAD_MONITOR_TOKEN_FILE";
    /// The monitor's write token itself, when no file is given.
    pub const MONITOR_TOKEN: &str = "TRIAD_MONITOR_TOKEN";
    /// Payload logging on or off
    /// ([`PayloadLogConfig::enabled`](crate::payload::PayloadLogConfig::enabled)).
    pub const PAYLOAD_LOG: &str = "TRIAD_SCORE_PAYLOAD_LOG";
    /// Fields payload logging redacts, comma-separated
    /// ([`PayloadLogConfig::redact`](crate::payload::PayloadLogConfig::redact)).
    pub const REDACT: &str = "TRIAD_SCORE_REDACT";
    /// Directory of the outcome spool, or `off`
    /// ([`SpoolConfig::dir`](super::SpoolConfig::dir)).
    pub const SPOOL_DIR: &str = "TRIAD_SCORE_SPOOL_DIR";
    /// Most bytes the outcome spool may hold
    /// ([`SpoolConfig::max_bytes`](super::SpoolConfig::max_bytes)).
    pub const SPOOL_MAX_BYTES: &str = "TRIAD_SCORE_SPOOL_MAX_BYTES";
    /// Most bytes one request's outcomes may take in the spool
    /// ([`SpoolConfig::max_request_bytes`](super::SpoolConfig::max_request_bytes)).
    pub const SPOOL_MAX_REQUEST_BYTES: &str = "TRIAD_SCORE_SPOOL_MAX_REQUEST_BYTES";
    /// `fsync` the spool before answering
    /// ([`SpoolConfig::fsync`](super::SpoolConfig::fsync)).
    pub const SPOOL_FSYNC: &str = "TRIAD_SCORE_SPOOL_FSYNC";
    /// How long shutdown spends sending the spool, in milliseconds
    /// ([`SpoolConfig::drain_timeout`](super::SpoolConfig::drain_timeout)).
    pub const DRAIN_TIMEOUT_MS: &str = "TRIAD_SCORE_DRAIN_TIMEOUT_MS";
    /// Most bytes one `Score` request may hold in the scorer
    /// ([`ScoreConfig::max_request_bytes`](super::ScoreConfig::max_request_bytes)).
    pub const MAX_REQUEST_BYTES: &str = "TRIAD_SCORE_MAX_REQUEST_BYTES";
}

/// Everything the scorer can be told.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreConfig {
    /// Where to listen for gRPC (`Scorer`, and the Open Inference Protocol).
    pub addr: SocketAddr,
    /// Where to serve the seed's HTTP contract; `None` disables it.
    pub http_addr: Option<SocketAddr>,
    /// The preprocess service's URL.
    pub preprocess: String,
    /// Deadline of each preprocess call (connect included).
    pub preprocess_timeout: Duration,
    /// Root of the model repository (`<root>/<model>/<version>/`).
    pub models_dir: PathBuf,
    /// Serve only these models (empty: every model in the repository).
    pub models: Vec<String>,
    /// Version pins by model name, overriding `serving.toml`.
    pub pins: BTreeMap<String, String>,
    /// How often the repository is rescanned for new or removed versions.
    pub poll_interval: Duration,
    /// The model the seed's HTTP contract answers with.
    pub http_model: String,
    /// The monitor's gRPC URL; every outcome is sent there. `None` sends
    /// nothing.
    pub monitor: Option<String>,
    /// Shared server limits.
    pub server: ServerLimits,
    /// TLS and bearer tokens on the scorer's own ports (default: plain
    /// TCP, no tokens).
    pub security: Security,
    /// TLS towards preprocess and the monitor, used for their `https://`
    /// URLs: the CA to trust and the client certificate for mutual TLS.
    pub upstream_tls: ClientTls,
    /// Bearer token sent to preprocess.
    pub preprocess_token: Option<TokenSource>,
    /// Bearer token sent to the monitor (its service token: outcomes are
    /// writes).
    pub monitor_token: Option<TokenSource>,
    /// Logging of each request's input and output, redacted.
    pub payload_log: PayloadLogConfig,
    /// Where outcomes wait for the monitor.
    pub spool: SpoolConfig,
    /// Most bytes one `Score` request may hold in the scorer, estimated
    /// from its budgets and items before any work
    /// ([`crate::engine::estimated_bytes`]); a larger request is refused
    /// with `INVALID_ARGUMENT`. Default 56 MiB
    /// ([`DEFAULT_MAX_REQUEST_BYTES`]): about 140 000 pairs
    /// of one model with short ids.
    pub max_request_bytes: usize,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.parse().expect("the default address parses"),
            http_addr: Some(
                DEFAULT_HTTP_ADDR
                    .parse()
                    .expect("the default address parses"),
            ),
            preprocess: DEFAULT_PREPROCESS.to_owned(),
            preprocess_timeout: Duration::from_secs(5),
            models_dir: PathBuf::from(DEFAULT_MODELS_DIR),
            models: Vec::new(),
            pins: BTreeMap::new(),
            poll_interval: Duration::from_secs(2),
            http_model: DEFAULT_HTTP_MODEL.to_owned(),
            monitor: None,
            server: ServerLimits::default(),
            security: Security::default(),
            upstream_tls: ClientTls::default(),
            preprocess_token: None,
            monitor_token: None,
            payload_log: PayloadLogConfig::default(),
            spool: SpoolConfig::default(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

/// Default of [`ScoreConfig::max_request_bytes`] (and of
/// `Engine::with_max_request_bytes`): 56 MiB, so that with what the
/// engine's estimate leaves out (the HTTP body and its parsing, the
/// allocator's slack) one request raises the scorer's RSS by at most
/// 64 MiB (`triad soak`, `docs/performance.md`).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 56 << 20;

/// Default bound of an on-disk spool.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 1 << 30;
/// Default bound of a spool in memory (no directory).
pub const DEFAULT_MEMORY_SPOOL_MAX_BYTES: u64 = 64 << 20;
/// Parent of the binary's default spool directory (relative to the working
/// directory, next to the monitor's default `triad-data/monitor.db`).
pub const DEFAULT_SPOOL_ROOT: &str = "triad-data/spool";

/// The outcome spool: where outcomes wait until the monitor has
/// acknowledged them (`docs/operations.md`, "No lost outcomes").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Directory of the on-disk spool, used by one process at a time.
    /// `None` keeps the spool in memory: it rides out a monitor outage but
    /// not a restart. Default `None`; the `triad-score` binary defaults to
    /// [`default_spool_dir`].
    pub dir: Option<PathBuf>,
    /// Most bytes the spool may hold; past it requests are refused
    /// (`UNAVAILABLE`, counted and logged) until the monitor catches up. `None`: [`DEFAULT_SPOOL_MAX_BYTES`] on disk,
    /// [`DEFAULT_MEMORY_SPOOL_MAX_BYTES`] in memory.
    pub max_bytes: Option<u64>,
    /// `fsync` every group of records written (and the cursor) before the
    /// requests that produced them are answered. Off (default), a record
    /// is safe once in the OS page cache: it survives a crash or `SIGKILL`
    /// of the scorer, not of the machine.
    pub fsync: bool,
    /// How long shutdown spends sending what the spool holds once requests
    /// have drained; what is left stays in an on-disk spool for the next
    /// start. Default 5 s.
    pub drain_timeout: Duration,
    /// Most bytes one request's outcomes may take in the spool; a request
    /// over it is refused (`INVALID_ARGUMENT`) rather than crowd out
    /// everyone else's. `None`: a quarter of [`SpoolConfig::max_bytes`],
    /// at most 256 MiB.
    pub max_request_bytes: Option<u64>,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_bytes: None,
            fsync: false,
            drain_timeout: Duration::from_secs(5),
            max_request_bytes: None,
        }
    }
}

impl SpoolConfig {
    /// The bound in effect.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes.unwrap_or(if self.dir.is_some() {
            DEFAULT_SPOOL_MAX_BYTES
        } else {
            DEFAULT_MEMORY_SPOOL_MAX_BYTES
        })
    }
}

impl SpoolConfig {
    /// The bound on one request in effect.
    pub fn max_request_bytes(&self) -> u64 {
        self.max_request_bytes
            .unwrap_or_else(|| (self.max_bytes() / 4).min(256 << 20))
    }
}

/// The binary's default spool directory for a scorer listening on `addr`:
/// `triad-data/spool/score-<port>`, one per instance on a host.
pub fn default_spool_dir(addr: SocketAddr) -> PathBuf {
    PathBuf::from(DEFAULT_SPOOL_ROOT).join(format!("score-{}", addr.port()))
}

/// Parses `name=version` pins, comma-separated.
pub fn parse_pins(text: &str) -> Result<BTreeMap<String, String>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|pin| !pin.is_empty())
        .map(|pin| {
            pin.split_once('=')
                .map(|(name, version)| (name.trim().to_owned(), version.trim().to_owned()))
                .ok_or_else(|| format!("expected a pin as model=version, got {pin:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse() {
        let pins = parse_pins("a=1, b = 2").unwrap();
        assert_eq!(pins["a"], "1");
        assert_eq!(pins["b"], "2");
        assert!(parse_pins("").unwrap().is_empty());
        assert_eq!(
            parse_pins("a").unwrap_err(),
            "expected a pin as model=version, got \"a\""
        );
    }
}
