//! Typed configuration of the scorer, with documented defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use triad_server::ServerLimits;

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

/// Environment variable names, one per setting.
pub mod env {
    pub const ADDR: &str = "TRIAD_SCORE_ADDR";
    pub const HTTP_ADDR: &str = "TRIAD_SCORE_HTTP_ADDR";
    pub const PREPROCESS: &str = "TRIAD_PREPROCESS_URL";
    pub const PREPROCESS_TIMEOUT_MS: &str = "TRIAD_PREPROCESS_TIMEOUT_MS";
    pub const MODELS_DIR: &str = "TRIAD_MODELS_DIR";
    pub const MODELS: &str = "TRIAD_MODELS";
    pub const PINS: &str = "TRIAD_MODEL_PINS";
    pub const POLL_MS: &str = "TRIAD_MODELS_POLL_MS";
    pub const MONITOR: &str = "TRIAD_MONITOR_URL";
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
        }
    }
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
