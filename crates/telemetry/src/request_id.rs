//! Request ids: every request carries an `x-request-id` (the caller's, or a
//! fresh one), every log line of the request names it, and handlers can read
//! it to echo it back or pass it on.

use std::task::{Context, Poll};

use http::{HeaderValue, Request};
use tower::{Layer, Service};

/// The metadata key carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest caller-supplied id kept; a longer one is replaced.
const MAX_ID_LEN: usize = 128;

/// Adds an `x-request-id` to requests that lack a usable one.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetRequestIdLayer;

impl<S> Layer<S> for SetRequestIdLayer {
    type Service = SetRequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetRequestId { inner }
    }
}

/// The service [`SetRequestIdLayer`] wraps around.
#[derive(Debug, Clone)]
pub struct SetRequestId<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for SetRequestId<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let usable = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .is_some_and(|id| !id.is_empty() && id.len() <= MAX_ID_LEN);
        if !usable {
            let id = new_request_id();
            if let Ok(value) = HeaderValue::from_str(&id) {
                request.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
        }
        self.inner.call(request)
    }
}

/// A fresh random request id (32 hex digits).
pub fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Random per process, unique per request: a process-random seed mixed
    // with a counter through a bijective mixer (splitmix64).
    static SEED: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{:016x}", splitmix(*SEED), splitmix(*SEED ^ n))
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The request id of a gRPC request (set by [`SetRequestIdLayer`]).
pub fn request_id<T>(request: &tonic::Request<T>) -> String {
    request
        .metadata()
        .get(REQUEST_ID_HEADER)
        .and_then(|id| id.to_str().ok())
        .map_or_else(new_request_id, str::to_owned)
}

/// The tracing span of one gRPC request: method path and request id; a
/// child of the caller's W3C `traceparent` when it sent one and spans are
/// exported, named after the method (`triad.v1.Scorer/Score`). Health
/// checks and reflection only get a `trace`-level span, so probes do not
/// fill the traces.
pub fn make_span<B>(request: &Request<B>) -> tracing::Span {
    make_service_span("", request)
}

/// [`make_span`] for a request served by `service` (e.g. `score`), which
/// exported spans carry as `triad.service` (all services share one
/// `service.name` when `triad up` runs them in one process). Log lines are
/// the same as [`make_span`]'s.
pub fn make_service_span<B>(service: &'static str, request: &Request<B>) -> tracing::Span {
    let path = request.uri().path();
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|id| id.to_str().ok())
        .unwrap_or("");
    let probe = path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.");
    let span = if probe {
        tracing::trace_span!(
            "grpc",
            path = %path,
            request_id = %id,
            otel.name = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
        )
    } else {
        tracing::info_span!(
            "grpc",
            path = %path,
            request_id = %id,
            otel.name = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
        )
    };
    crate::trace::name_span(&span, path.trim_start_matches('/'), "server");
    if !service.is_empty() {
        crate::trace::set_attribute(&span, crate::trace::SERVICE_ATTRIBUTE, service);
    }
    crate::trace::set_parent_from(&span, request.headers());
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_hex() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
