//! What the workspace's tests share, written once (in the spirit of
//! linkerd's `linkerd/app/test`): the repository's fixtures and the seed
//! request in every shape a front door takes ([`fixtures`]), waiting for a
//! server under test to be healthy ([`wait_healthy`]), a minimal HTTP/1.1
//! client, plain and over TLS ([`http`]), a throw-away certificate
//! authority ([`TestPki`]), the invariants every feature matrix keeps
//! ([`invariants`]), and the external tools some tests drive ([`tools`]).
//!
//! Helpers only one crate's tests use stay in that crate's `tests/it/`.
//! Crates whose tests need these take this one as a dev-dependency;
//! nothing ships it.
//!
//! Each crate's integration tests are one binary, so tests that touch
//! state global to the process (the tracing subscriber and its OTLP
//! exporter, the Prometheus registry's gauges) hold
//! [`process_wide_state`] while they do.

pub mod fixtures;
pub mod http;
pub mod invariants;
mod pki;
#[cfg(test)]
mod tidy;
pub mod tools;

use std::time::Duration;

pub use fixtures::{
    SEED_REQUEST, SEED_RESPONSE, seed_featurize_request, seed_score_request, shipped_models,
    workspace_root,
};
pub use http::{HttpResponse, get, http_request, https_request, post};
pub use pki::TestPki;

/// A lock for tests that set or read state global to the process (the
/// global tracing subscriber, gauges of the one Prometheus registry that
/// a `/metrics` scrape refreshes): two such tests of one binary never run
/// at once. Held for the whole test.
pub async fn process_wide_state() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Waits until the gRPC server at `endpoint` answers `SERVING` (servers
/// under test start in milliseconds); panics after about three seconds
/// of refusals.
pub async fn wait_healthy(endpoint: &str) {
    for _ in 0..300 {
        if triad_server::healthcheck(endpoint, "", Duration::from_secs(1))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{endpoint} never became healthy");
}
