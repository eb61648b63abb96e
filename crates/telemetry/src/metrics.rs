//! Prometheus metrics: one registry per process, a tower layer that counts
//! every gRPC request and times it by service, method and status code, and
//! the `GET /metrics` route every service serves on its HTTP port.
//!
//! Services add their own metrics (outcomes sent, labels received, …) to
//! the registry at start-up ([`register`]).
//!
//! **No caller can grow the series.** The gRPC layer labels a request by
//! its method only when the method is one the server serves
//! ([`GrpcMetricsLayer::new`]); any other path is counted as
//! `service="unknown", method="unknown"`, and a call refused for want of a
//! valid token (its response carries [`Unauthenticated`]) as
//! `service="unauthenticated", method="unauthenticated"`, whatever path it
//! named. So the number of series is bounded by the served methods times
//! the 17 status codes.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use http::{Request, Response};
use http_body::{Body, Frame};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use tower::{Layer, Service};

/// The process registry; every metric name starts with `triad_`.
static REGISTRY: LazyLock<Registry> =
    LazyLock::new(|| Registry::new_custom(Some("triad".to_owned()), None).unwrap_or_default());

/// gRPC requests by service, method and status code.
static GRPC_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let counter = IntCounterVec::new(
        Opts::new(
            "grpc_server_requests_total",
            "gRPC requests handled, by service, method and status code",
        ),
        &["service", "method", "code"],
    )
    .expect("valid metric options");
    register(Box::new(counter.clone()));
    counter
});

/// gRPC request durations by service, method and status code.
static GRPC_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    let histogram = HistogramVec::new(
        HistogramOpts::new(
            "grpc_server_request_duration_seconds",
            "Time from a gRPC request's arrival to the end of its response",
        )
        .buckets(vec![
            0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
            1.0, 2.5, 5.0, 10.0,
        ]),
        &["service", "method", "code"],
    )
    .expect("valid metric options");
    register(Box::new(histogram.clone()));
    histogram
});

/// Adds a metric to the process registry. Registering the same name twice
/// (two servers of one kind in one process, as in tests) keeps the first.
pub fn register(metric: Box<dyn prometheus::core::Collector>) {
    if let Err(error) = REGISTRY.register(metric) {
        tracing::debug!(%error, "metric already registered");
    }
}

/// The registry in the Prometheus text format (version 0.0.4).
pub fn encode() -> String {
    let mut buffer = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&REGISTRY.gather(), &mut buffer) {
        tracing::error!(%error, "cannot encode metrics");
    }
    String::from_utf8(buffer).unwrap_or_default()
}

fn force() {
    LazyLock::force(&GRPC_REQUESTS);
    LazyLock::force(&GRPC_LATENCY);
}

/// `GET /metrics`, to merge into a service's HTTP router.
pub fn router() -> Router {
    force();
    Router::new().route("/metrics", get(metrics_handler))
}

/// `GET /metrics` and `GET /health` (200 while the process runs): the whole
/// HTTP port of a service that has nothing else to serve over HTTP.
pub fn standalone_router() -> Router {
    router().route("/health", get(|| async { "ok\n" }))
}

async fn metrics_handler() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        encode(),
    )
}

/// The label value of every path the server does not serve.
pub const UNKNOWN: &str = "unknown";
/// The label value of every call refused for want of a valid token.
pub const UNAUTHENTICATED: &str = "unauthenticated";

/// A response extension marking a call refused for want of a valid token:
/// [`GrpcMetricsLayer`] counts it without its path.
#[derive(Debug, Clone, Copy)]
pub struct Unauthenticated;

/// Counts and times every gRPC request, labelled by the methods the server
/// serves (any other path is [`UNKNOWN`]).
#[derive(Debug, Clone, Default)]
pub struct GrpcMetricsLayer {
    known: Arc<HashSet<String>>,
}

impl GrpcMetricsLayer {
    /// Labels requests to `methods` (gRPC paths, `/pkg.Service/Method`) by
    /// service and method; every other path is [`UNKNOWN`].
    pub fn new(methods: impl IntoIterator<Item = String>) -> Self {
        Self {
            known: Arc::new(methods.into_iter().collect()),
        }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        force();
        GrpcMetricsService {
            inner,
            known: Arc::clone(&self.known),
        }
    }
}

/// The service [`GrpcMetricsLayer`] wraps around.
#[derive(Debug, Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    known: Arc<HashSet<String>>,
}

impl<S> GrpcMetricsService<S> {
    /// The (service, method) labels of `path`.
    fn labels(&self, path: &str) -> (String, String) {
        match path.trim_start_matches('/').split_once('/') {
            Some((service, method)) if self.known.contains(path) => {
                (service.to_owned(), method.to_owned())
            }
            _ => (UNKNOWN.to_owned(), UNKNOWN.to_owned()),
        }
    }
}

/// What is recorded once the response ends.
struct Pending {
    service: String,
    method: String,
    started: Instant,
}

impl Pending {
    fn finish(self, code: &str) {
        let labels = [self.service.as_str(), self.method.as_str(), code];
        GRPC_REQUESTS.with_label_values(&labels).inc();
        GRPC_LATENCY
            .with_label_values(&labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl<S, B, ResBody> Service<Request<B>> for GrpcMetricsService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<MetricsBody<ResBody>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (service, method) = self.labels(request.uri().path());
        let mut pending = Pending {
            service,
            method,
            started: Instant::now(),
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            if response.extensions().get::<Unauthenticated>().is_some() {
                pending.service = UNAUTHENTICATED.to_owned();
                pending.method = UNAUTHENTICATED.to_owned();
            }
            // A trailers-only response (most errors) carries its status in
            // the headers; otherwise it comes in the trailers.
            let code = response.headers().get("grpc-status").map(status_name);
            let pending = match code {
                Some(code) => {
                    pending.finish(code);
                    None
                }
                None => Some(pending),
            };
            Ok(response.map(|body| MetricsBody {
                inner: body,
                pending,
            }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that records its request's metrics when the
    /// trailers (or the end of the stream) go by.
    pub struct MetricsBody<B> {
        #[pin]
        inner: B,
        pending: Option<Pending>,
    }

    impl<B> PinnedDrop for MetricsBody<B> {
        fn drop(this: Pin<&mut Self>) {
            // A stream dropped before its end (the caller went away).
            if let Some(pending) = this.project().pending.take() {
                pending.finish("CANCELLED");
            }
        }
    }
}

impl<B: Body> Body for MetricsBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(pending) = this.pending.take()
                {
                    pending.finish(trailers.get("grpc-status").map_or("UNKNOWN", status_name));
                }
            }
            Some(Err(_)) => {
                if let Some(pending) = this.pending.take() {
                    pending.finish("INTERNAL");
                }
            }
            None => {
                if let Some(pending) = this.pending.take() {
                    pending.finish("UNKNOWN");
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The canonical name of a `grpc-status` value.
fn status_name(value: &HeaderValue) -> &'static str {
    match value.as_bytes() {
        b"0" => "OK",
        b"1" => "CANCELLED",
        b"2" => "UNKNOWN",
        b"3" => "INVALID_ARGUMENT",
        b"4" => "DEADLINE_EXCEEDED",
        b"5" => "NOT_FOUND",
        b"6" => "ALREADY_EXISTS",
        b"7" => "PERMISSION_DENIED",
        b"8" => "RESOURCE_EXHAUSTED",
        b"9" => "FAILED_PRECONDITION",
        b"10" => "ABORTED",
        b"11" => "OUT_OF_RANGE",
        b"12" => "UNIMPLEMENTED",
        b"13" => "INTERNAL",
        b"14" => "UNAVAILABLE",
        b"15" => "DATA_LOSS",
        b"16" => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_methods_are_labelled_by_name() {
        let layer = GrpcMetricsLayer::new(["/triad.v1.Scorer/Score".to_owned()]);
        let service = layer.layer(());
        assert_eq!(
            service.labels("/triad.v1.Scorer/Score"),
            ("triad.v1.Scorer".to_owned(), "Score".to_owned())
        );
        for path in [
            "/triad.v1.Scorer/Nope",
            "/x/y",
            "/",
            "",
            "/triad.v1.Scorer/Score/",
        ] {
            assert_eq!(
                service.labels(path),
                (UNKNOWN.to_owned(), UNKNOWN.to_owned()),
                "{path}"
            );
        }
    }

    #[test]
    fn status_names() {
        assert_eq!(status_name(&HeaderValue::from_static("0")), "OK");
        assert_eq!(
            status_name(&HeaderValue::from_static("3")),
            "INVALID_ARGUMENT"
        );
        assert_eq!(status_name(&HeaderValue::from_static("99")), "UNKNOWN");
    }
}
