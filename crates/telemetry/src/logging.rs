//! The tracing subscriber every Triad binary installs: human-readable lines
//! by default, JSON lines when `TRIAD_LOG_FORMAT=json`, filtered by
//! `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// Environment variable choosing the log format (`text` or `json`).
pub const LOG_FORMAT_ENV: &str = "TRIAD_LOG_FORMAT";

/// Installs the global subscriber. Safe to call more than once (later calls
/// are no-ops), so tests and `triad up` can call it freely.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var(LOG_FORMAT_ENV).is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
