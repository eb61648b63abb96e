//! Load shedding across a whole server: at most
//! [`ServerLimits::max_concurrent_requests`](crate::ServerLimits) requests
//! run at once, over every connection; a request past that is answered at
//! once — gRPC `RESOURCE_EXHAUSTED`, HTTP 503 with `Retry-After` — instead
//! of waiting in a queue that grows without bound. Health checks (gRPC
//! health, HTTP `/health`) are never shed, so a busy replica is not
//! mistaken for a dead one and restarted.
//!
//! (tonic's own `concurrency_limit_per_connection` bounds one connection;
//! a server with many clients needs a bound on their sum.)

use std::sync::Arc;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode};
use prometheus::IntCounter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

/// Requests answered `RESOURCE_EXHAUSTED` because the server was full.
static SHED: LazyLock<IntCounter> = LazyLock::new(|| {
    let counter = IntCounter::new(
        "grpc_server_shed_total",
        "gRPC requests refused with RESOURCE_EXHAUSTED because the server was at capacity",
    )
    .expect("valid metric options");
    triad_telemetry::metrics::register(Box::new(counter.clone()));
    counter
});

/// HTTP requests answered 503 because the server was full.
static HTTP_SHED: LazyLock<IntCounter> = LazyLock::new(|| {
    let counter = IntCounter::new(
        "http_server_shed_total",
        "HTTP requests refused with 503 because the server was at capacity",
    )
    .expect("valid metric options");
    triad_telemetry::metrics::register(Box::new(counter.clone()));
    counter
});

/// gRPC paths never shed.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// What a shed request is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `RESOURCE_EXHAUSTED`.
    Grpc,
    /// 503 with `Retry-After: 1`.
    Http,
}

/// Sheds requests past `max` in flight (shared by every connection).
#[derive(Debug, Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
    max: usize,
    protocol: Protocol,
}

impl ShedLayer {
    /// For a gRPC server: past `max`, `RESOURCE_EXHAUSTED`.
    pub fn new(max: usize) -> Self {
        LazyLock::force(&SHED);
        Self::with(max, Protocol::Grpc)
    }

    /// For an HTTP server: past `max`, 503 with `Retry-After`; `/health`
    /// is never shed.
    pub fn http(max: usize) -> Self {
        LazyLock::force(&HTTP_SHED);
        Self::with(max, Protocol::Http)
    }

    fn with(max: usize, protocol: Protocol) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            protocol,
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            permits: Arc::clone(&self.permits),
            max: self.max,
            protocol: self.protocol,
        }
    }
}

/// The service [`ShedLayer`] wraps.
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
    max: usize,
    protocol: Protocol,
}

impl<S> Shed<S> {
    fn never_shed(&self, path: &str) -> bool {
        match self.protocol {
            Protocol::Grpc => path.starts_with(HEALTH_PREFIX),
            Protocol::Http => path == crate::drain::HEALTH_PATH,
        }
    }

    fn refusal<ResBody: Default>(&self) -> Response<ResBody> {
        match self.protocol {
            Protocol::Grpc => {
                SHED.inc();
                tonic::Status::resource_exhausted(format!(
                    "server at capacity ({} requests in flight); retry with backoff",
                    self.max
                ))
                .into_http()
            }
            Protocol::Http => {
                HTTP_SHED.inc();
                let mut response = Response::new(ResBody::default());
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for Shed<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<ResBody>, S::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let permit: Option<OwnedSemaphorePermit> = if self.never_shed(request.uri().path()) {
            None
        } else {
            match Arc::clone(&self.permits).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let refusal = self.refusal();
                    return Box::pin(async move { Ok(refusal) });
                }
            }
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(permit);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tokio::sync::Notify;
    use tonic::body::Body;

    /// A service whose calls wait until `release` is notified.
    fn held(
        release: Arc<Notify>,
    ) -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible, Future = impl Send>
    + Clone {
        tower::service_fn(move |_request: Request<()>| {
            let release = Arc::clone(&release);
            async move {
                release.notified().await;
                Ok::<_, Infallible>(Response::new(Body::empty()))
            }
        })
    }

    fn grpc_status(response: &Response<Body>) -> Option<i32> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
    }

    #[tokio::test]
    async fn past_the_limit_requests_are_refused_at_once_and_health_is_never_shed() {
        let release = Arc::new(Notify::new());
        let mut service = ShedLayer::new(2).layer(held(Arc::clone(&release)));
        let request = |path: &str| Request::builder().uri(path).body(()).unwrap();

        let first = tokio::spawn(service.call(request("/triad.v1.Scorer/Score")));
        let second = tokio::spawn(service.call(request("/triad.v1.Scorer/Score")));
        tokio::task::yield_now().await;

        let refused = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            service.call(request("/triad.v1.Scorer/Score")),
        )
        .await
        .expect("refused at once, not queued")
        .unwrap();
        assert_eq!(
            grpc_status(&refused),
            Some(tonic::Code::ResourceExhausted as i32)
        );

        // Health goes through even at capacity.
        let health = tokio::spawn(service.call(request("/grpc.health.v1.Health/Check")));
        tokio::task::yield_now().await;
        release.notify_waiters();
        for call in [first, second, health] {
            let response = call.await.unwrap().unwrap();
            assert_eq!(grpc_status(&response), None, "served, not shed");
        }

        // Capacity is given back when calls finish.
        let again = tokio::spawn(service.call(request("/triad.v1.Scorer/Score")));
        tokio::task::yield_now().await;
        release.notify_waiters();
        assert_eq!(grpc_status(&again.await.unwrap().unwrap()), None);
    }

    #[tokio::test]
    async fn http_requests_past_the_limit_get_503_with_retry_after_and_health_goes_through() {
        let release = Arc::new(Notify::new());
        let mut service = ShedLayer::http(1).layer(held(Arc::clone(&release)));
        let request = |path: &str| Request::builder().uri(path).body(()).unwrap();

        let first = tokio::spawn(service.call(request("/budget_expense_matcher/")));
        tokio::task::yield_now().await;
        let refused = service
            .call(request("/budget_expense_matcher/"))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[http::header::RETRY_AFTER], "1");

        let health = tokio::spawn(service.call(request("/health")));
        tokio::task::yield_now().await;
        release.notify_waiters();
        for call in [first, health] {
            assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
        }
    }
}
