//! Typed configuration of the preprocess service, with documented defaults.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use triad_features::FeaturizerConfig;
use triad_server::{Security, ServerLimits};

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
    /// Where to serve `GET /metrics` and `GET /health`; `None`: nowhere.
    pub http_addr: Option<SocketAddr>,
    /// Most (budget, line item) pairs one `Featurize` call may ask for.
    /// 250 000 pairs is a 35 MB matrix; larger batches use
    /// `FeaturizeStream`.
    pub max_pairs: usize,
    /// Most pairs one `FeaturizeStream` call may ask for.
    pub max_stream_pairs: usize,
    /// Most budgets one `Featurize` call, or one whole `FeaturizeStream`,
    /// may hold (default 100 000, as the JSON reader's `max_budgets`): a
    /// stream of budgets with no line items has no pairs to count.
    pub max_budgets: usize,
    /// Most line items one `Featurize` call, or one whole
    /// `FeaturizeStream`, may hold (default 100 000).
    pub max_line_items: usize,
    /// Most bytes (encoded chunks) one `FeaturizeStream` may send in all
    /// before its matrix is built (default 256 MiB): what a stream holds in
    /// memory, whatever its items contain.
    pub max_stream_bytes: usize,
    /// Rows per message of a `FeaturizeStream` response.
    pub rows_per_chunk: usize,
    /// Requests costing more than this many pairs are featurized on the
    /// blocking pool so they do not stall other requests' I/O (long vendor
    /// names count extra: see `service::estimated_cost`).
    pub blocking_threshold_pairs: usize,
    /// Per-field bounds of the featurizer.
    #[serde(skip)]
    pub featurizer: FeaturizerConfig,
    /// Shared server limits.
    pub server: ServerLimits,
    /// TLS and bearer tokens on both ports (default: plain TCP, no
    /// tokens).
    pub security: Security,
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.parse().expect("the default address parses"),
            http_addr: Some(
                DEFAULT_HTTP_ADDR
                    .parse()
                    .expect("the default HTTP address parses"),
            ),
            max_pairs: 250_000,
            max_stream_pairs: 4_000_000,
            max_budgets: 100_000,
            max_line_items: 100_000,
            max_stream_bytes: 256 * 1024 * 1024,
            rows_per_chunk: 8_192,
            blocking_threshold_pairs: 20_000,
            featurizer: FeaturizerConfig::default(),
            server: ServerLimits::default(),
            security: Security::default(),
        }
    }
}
