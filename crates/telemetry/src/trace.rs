//! Distributed tracing: W3C trace context (`traceparent`, `tracestate`)
//! carried on every hop, so one `Score` call is one trace across the
//! scorer, preprocess and the monitor.
//!
//! The helpers here read and write the context of `tracing` spans through
//! the OpenTelemetry layer [`crate::logging::init`] installs when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set ([`crate::otlp`]). Without that
//! layer every helper is a no-op: nothing is extracted, injected or
//! exported.
//!
//! Where the context travels:
//! - gRPC servers: [`make_span`] (the request span of
//!   `triad_server::serve`) is made a child of the caller's `traceparent`;
//! - HTTP servers: [`HttpTraceLayer`] opens one span per request, a child of
//!   the caller's `traceparent`, and runs the handler inside it;
//! - gRPC clients: [`InjectTraceContextLayer`] (applied by
//!   `triad_server::client::connect`) writes the current span's context
//!   into every outgoing call that does not carry one already;
//! - work done off the request path (the scorer's outcome batches) keeps
//!   [`current_traceparent`] and sends it with the work later.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};

use http::{HeaderMap, Request};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::request_id::REQUEST_ID_HEADER;

/// The W3C header naming the caller's trace and span.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// The W3C header carrying vendor-specific trace state.
pub const TRACESTATE_HEADER: &str = "tracestate";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Marks span export as on (called once the OpenTelemetry layer is
/// installed).
pub(crate) fn set_enabled() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether spans are exported (the OpenTelemetry layer is installed).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The current span's context as a W3C `traceparent` header value
/// (`00-<trace id>-<span id>-<flags>`), or `None` when tracing is off or no
/// span is entered. Cheap when tracing is off.
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    traceparent_of(&tracing::Span::current())
}

/// `span`'s context as a W3C `traceparent` header value.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut headers = HeaderMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(&mut headers));
    headers
        .get(TRACEPARENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The remote context `headers` carry (an empty context when they carry
/// none, or a malformed one).
pub fn extract(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Makes `span` a child of the remote context in `headers`, if they carry
/// a valid one. Call it right after creating the span, before entering it.
pub fn set_parent_from(span: &tracing::Span, headers: &HeaderMap) {
    if !enabled() || !headers.contains_key(TRACEPARENT_HEADER) {
        return;
    }
    let context = extract(headers);
    if context.span().span_context().is_valid() {
        // Fails only when tracing is off (no OpenTelemetry layer): nothing
        // to link then.
        let _ = span.set_parent(context);
    }
}

/// Writes the current span's context into `headers`, unless they already
/// carry a `traceparent` (a caller that set one explicitly wins).
pub fn inject_current(headers: &mut HeaderMap) {
    if !enabled() || headers.contains_key(TRACEPARENT_HEADER) {
        return;
    }
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
    }
}

/// Names `span` for OpenTelemetry (`otel.name`, `otel.kind`) when spans
/// are exported; log lines are unchanged otherwise. The span must declare
/// both fields (as `tracing::field::Empty`).
pub fn name_span(span: &tracing::Span, name: &str, kind: &'static str) {
    if enabled() {
        span.record("otel.name", name);
        span.record("otel.kind", kind);
    }
}

/// The span attribute naming the Triad service that served a request.
pub const SERVICE_ATTRIBUTE: &str = "triad.service";

/// Sets an attribute of `span` in exported spans only (log lines do not
/// show it); a no-op when spans are not exported.
pub fn set_attribute(span: &tracing::Span, key: &'static str, value: &'static str) {
    if enabled() {
        span.set_attribute(key, value);
    }
}

/// Client side: writes the current span's context (`traceparent`,
/// `tracestate`) into every outgoing request, unless the request carries a
/// `traceparent` already. Runs when the call is made, so the span current
/// at the call site is the parent of the remote side.
#[derive(Debug, Clone, Copy, Default)]
pub struct InjectTraceContextLayer;

impl<S> Layer<S> for InjectTraceContextLayer {
    type Service = InjectTraceContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectTraceContext { inner }
    }
}

/// The service [`InjectTraceContextLayer`] wraps around.
#[derive(Debug, Clone)]
pub struct InjectTraceContext<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for InjectTraceContext<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        inject_current(request.headers_mut());
        self.inner.call(request)
    }
}

/// Server side, for HTTP routers: one `http` span per request (method,
/// matched route, request id), a child of the caller's `traceparent`, with
/// the handler run inside it. `/metrics` and `/health` get no span, so
/// scrapes and probes do not fill the traces.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpTraceLayer;

impl<S> Layer<S> for HttpTraceLayer {
    type Service = HttpTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTrace { inner }
    }
}

/// The service [`HttpTraceLayer`] wraps around.
#[derive(Debug, Clone)]
pub struct HttpTrace<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for HttpTrace<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let span = make_http_span(&request);
        let future = span.in_scope(|| self.inner.call(request));
        future.instrument(span)
    }
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
    name_span(&span, path.trim_start_matches('/'), "server");
    if !service.is_empty() {
        set_attribute(&span, SERVICE_ATTRIBUTE, service);
    }
    set_parent_from(&span, request.headers());
    span
}

/// The span of one HTTP request (none for scrapes and probes).
pub fn make_http_span<B>(request: &Request<B>) -> tracing::Span {
    let path = request.uri().path();
    if matches!(path, "/metrics" | "/health" | "/healthz" | "/ready") {
        return tracing::Span::none();
    }
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or(path, axum::extract::MatchedPath::as_str);
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|id| id.to_str().ok())
        .unwrap_or("");
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        route = %route,
        request_id = %id,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
    );
    name_span(&span, &format!("{} {route}", request.method()), "server");
    set_parent_from(&span, request.headers());
    span
}

/// Reads trace headers from an [`http::HeaderMap`].
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes trace headers into an [`http::HeaderMap`].
struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use opentelemetry::trace::TracerProvider as _;
    use tower::ServiceExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    /// Runs `body` with a subscriber that has the OpenTelemetry layer
    /// (spans get ids; nothing is exported).
    fn with_tracing<T>(body: impl FnOnce() -> T) -> T {
        set_enabled();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, body)
    }

    fn traced_request() -> Request<()> {
        Request::builder()
            .uri("/triad.v1.Scorer/Score")
            .header(TRACEPARENT_HEADER, format!("00-{TRACE}-{PARENT}-01"))
            .body(())
            .unwrap()
    }

    #[test]
    fn a_server_span_continues_the_callers_trace() {
        with_tracing(|| {
            let span = make_span(&traced_request());
            let traceparent = span.in_scope(current_traceparent).unwrap();
            let parts: Vec<&str> = traceparent.split('-').collect();
            assert_eq!(parts.len(), 4, "{traceparent}");
            assert_eq!(parts[0], "00");
            assert_eq!(parts[1], TRACE, "the caller's trace id is kept");
            assert_ne!(parts[2], PARENT, "the server span is a new span");
            assert_eq!(parts[3], "01");
        });
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        with_tracing(|| {
            let request = Request::builder()
                .header(TRACEPARENT_HEADER, "00-not-a-trace-01")
                .body(())
                .unwrap();
            let span = make_span(&request);
            let traceparent = span.in_scope(current_traceparent).unwrap();
            assert!(!traceparent.contains(TRACE));
            assert_eq!(traceparent.len(), 55, "{traceparent}");
        });
    }

    #[test]
    fn no_span_no_traceparent() {
        with_tracing(|| assert_eq!(current_traceparent(), None));
    }

    /// What the client layer sent.
    fn send(request: Request<()>) -> HeaderMap {
        let service =
            InjectTraceContextLayer.layer(tower::service_fn(|request: Request<()>| async move {
                Ok::<_, Infallible>(request.headers().clone())
            }));
        let future = service.oneshot(request);
        // The layer works when called; the future is then ready at once.
        let waker = std::task::Waker::noop();
        let mut cx = TaskContext::from_waker(waker);
        match std::pin::pin!(future).poll(&mut cx) {
            Poll::Ready(Ok(headers)) => headers,
            _ => panic!("the test service answers at once"),
        }
    }

    #[test]
    fn the_client_layer_sends_the_current_span() {
        with_tracing(|| {
            let span = make_span(&traced_request());
            let expected = span.in_scope(current_traceparent).unwrap();
            let headers = span.in_scope(|| send(Request::new(())));
            assert_eq!(
                headers
                    .get(TRACEPARENT_HEADER)
                    .and_then(|v| v.to_str().ok()),
                Some(expected.as_str())
            );
        });
    }

    #[test]
    fn the_client_layer_keeps_a_traceparent_the_call_set() {
        with_tracing(|| {
            let span = make_span(&traced_request());
            let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            let request = Request::builder()
                .header(TRACEPARENT_HEADER, own)
                .body(())
                .unwrap();
            let headers = span.in_scope(|| send(request));
            let sent: Vec<_> = headers.get_all(TRACEPARENT_HEADER).iter().collect();
            assert_eq!(sent, [own]);
        });
    }

    #[test]
    fn the_client_layer_sends_nothing_outside_a_span() {
        with_tracing(|| {
            let headers = send(Request::new(()));
            assert!(!headers.contains_key(TRACEPARENT_HEADER));
        });
    }
}
