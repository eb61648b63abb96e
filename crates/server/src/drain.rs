//! Graceful shutdown in two steps, the same on every port: when the
//! shutdown future resolves the server starts **draining** — health says
//! so at once (gRPC health `NOT_SERVING`, HTTP `GET /health` 503) while
//! requests are still accepted and served — and after
//! [`ServerLimits::drain_delay`](crate::ServerLimits) it **stops**: the
//! listener closes, open connections are told to go away (HTTP/2 GOAWAY,
//! HTTP/1 `connection: close`) and in-flight requests finish.
//!
//! The delay is what lets a load balancer (or Kubernetes removing the pod
//! from a Service's endpoints) see the failing health check and send
//! traffic elsewhere before the port closes, so no caller is refused.

use std::future::Future;
use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode};
use tokio::sync::watch;
use tower::{Layer, Service};

/// Where a server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Serving, health SERVING.
    Serving,
    /// Still serving, health NOT_SERVING (the drain delay).
    Draining,
    /// No longer accepting; in-flight requests finish.
    Stopped,
}

/// A server's phase, watched by its accept loop, its connections and its
/// health.
pub(crate) fn channel() -> (watch::Sender<Phase>, watch::Receiver<Phase>) {
    watch::channel(Phase::Serving)
}

/// Waits for `shutdown`, then marks the server draining, runs `on_drain`
/// (turning health NOT_SERVING), waits `delay` and marks it stopped.
pub(crate) async fn run<D: Future<Output = ()>>(
    shutdown: impl Future<Output = ()>,
    delay: std::time::Duration,
    phase: watch::Sender<Phase>,
    on_drain: D,
) {
    shutdown.await;
    tracing::info!(
        ?delay,
        "shutting down: health NOT_SERVING, still serving for the drain delay"
    );
    phase.send_replace(Phase::Draining);
    on_drain.await;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    tracing::info!("drain delay over: no longer accepting, finishing in-flight requests");
    phase.send_replace(Phase::Stopped);
}

/// The HTTP path every service answers health on.
pub(crate) const HEALTH_PATH: &str = "/health";

/// Answers `GET`/`HEAD /health` with 503 once the server drains, whatever
/// the service's own `/health` route says; passes everything else (and
/// `/health` while serving) through.
#[derive(Debug, Clone)]
pub(crate) struct DrainHealthLayer {
    phase: watch::Receiver<Phase>,
}

impl DrainHealthLayer {
    pub(crate) fn new(phase: watch::Receiver<Phase>) -> Self {
        Self { phase }
    }
}

impl<S> Layer<S> for DrainHealthLayer {
    type Service = DrainHealth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DrainHealth {
            inner,
            phase: self.phase.clone(),
        }
    }
}

/// The service [`DrainHealthLayer`] wraps.
#[derive(Debug, Clone)]
pub(crate) struct DrainHealth<S> {
    inner: S,
    phase: watch::Receiver<Phase>,
}

impl<S, B> Service<Request<B>> for DrainHealth<S>
where
    S: Service<Request<B>, Response = Response<axum::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<axum::body::Body>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Response<axum::body::Body>, S::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let health = request.uri().path() == HEALTH_PATH
            && (request.method() == Method::GET || request.method() == Method::HEAD);
        if health && *self.phase.borrow() != Phase::Serving {
            let mut response = Response::new(axum::body::Body::from("draining\n"));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return Box::pin(std::future::ready(Ok(response)));
        }
        Box::pin(self.inner.call(request))
    }
}
