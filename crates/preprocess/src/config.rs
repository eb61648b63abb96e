//! Typed configuration of the preprocess service, with documented defaults.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use triad_features::FeaturizerConfig;
use triad_server::ServerLimits;

/// Default gRPC address.
pub const DEFAULT_ADDR: &str = "0.0.0.0:50051";

/// Default HTTP address (`/metrics`, `/health`).
pub const DEFAULT_HTTP_ADDR: &str = "0.0.0.0:8082";

/// Environment variable overriding the listen address.
pub const ADDR_ENV: &str = "TRIAD_PREPROCESS_ADDR";
/// Environment variable overriding the HTTP address (`off` disables it).
pub const HTTP_ADDR_ENV: &str = "TRIAD_PREPROCESS_HTTP_ADDR";
/// Environment variable overriding [`PreprocessConfig::max_pairs`].
pub const MAX_PAIRS_ENV: &str = "TRIAD_PREPROCESS_MAX_PAIRS";

/// Everything the preprocess service can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreprocessConfig {
    /// Where to listen for gRPC.
    pub addr: SocketAddr,
    /// Most (budget, line item) pairs one `Featurize` call may ask for.
    /// 250 000 pairs is a 35 MB matrix; larger batches use
    /// `FeaturizeStream`.
    pub max_pairs: usize,
    /// Most pairs one `FeaturizeStream` call may ask for.
    pub max_stream_pairs: usize,
    /// Rows per message of a `FeaturizeStream` response.
    pub rows_per_chunk: usize,
    /// Requests with more pairs than this are featurized on the blocking
    /// pool so they do not stall other requests' I/O.
    pub blocking_threshold_pairs: usize,
    /// Per-field bounds of the featurizer.
    #[serde(skip)]
    pub featurizer: FeaturizerConfig,
    /// Shared server limits.
    pub server: ServerLimits,
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.parse().expect("the default address parses"),
            max_pairs: 250_000,
            max_stream_pairs: 4_000_000,
            rows_per_chunk: 8_192,
            blocking_threshold_pairs: 20_000,
            featurizer: FeaturizerConfig::default(),
            server: ServerLimits::default(),
        }
    }
}
