//! Serving an HTTP port (metrics, dashboards, the seed contract) with the
//! same guarantees as a gRPC port: connections from [`crate::accept`]
//! (handshake deadline, per-peer cap), HTTP/1 and HTTP/2 served by
//! hyper-util with a header-read timeout, an idle timeout and HTTP/2
//! keepalive; every request behind a request timeout, the whole-server
//! concurrency limit with load shedding (503 + `Retry-After`, never
//! `/health`), bearer tokens and a catch-panic layer; and the two-step
//! drain of [`crate::drain`] (`/health` answers 503 from its start).
//!
//! (`axum::serve` has none of these timeouts, hence the connection loop
//! here.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use http::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::Service;
use tower_http::timeout::TimeoutLayer;

use crate::accept::{self, AcceptLimits, Conn};
use crate::drain::{self, DrainHealthLayer, Phase};
use crate::{Secured, ServerError, ServerLimits, auth, overload, panic};

/// Serves an HTTP router on `listener` until `shutdown` resolves, with
/// default [`ServerLimits`].
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_http_with(
        listener,
        router,
        &ServerLimits::default(),
        &Secured::default(),
        shutdown,
    )
    .await
}

/// [`serve_http`] with TLS and bearer tokens as `secured` says: `GET` and
/// `HEAD` take a read-only token, other methods the service token, and
/// the open paths (only `/health` by default) none. Default
/// [`ServerLimits`]; [`serve_http_with`] takes the service's own.
pub fn serve_http_secured<F>(
    listener: TcpListener,
    router: Router,
    secured: &Secured,
    shutdown: F,
) -> impl Future<Output = Result<(), ServerError>> + Send + 'static + use<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_http_with(
        listener,
        router,
        &ServerLimits::default(),
        secured,
        shutdown,
    )
}

/// [`serve_http_secured`] with `limits` (timeouts, concurrency, drain
/// delay).
pub fn serve_http_with<F>(
    listener: TcpListener,
    router: Router,
    limits: &ServerLimits,
    secured: &Secured,
    shutdown: F,
) -> impl Future<Output = Result<(), ServerError>> + Send + 'static + use<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    let limits = limits.clone();
    let secured = secured.clone();
    async move {
        tracing::info!(
            addr = ?listener.local_addr().ok(),
            tls = secured.is_tls(),
            tokens = secured.is_authenticated(),
            "serving http"
        );
        let (phase_sender, phase) = drain::phase_channel();
        // Innermost first: a panic answers 500; a request past the timeout
        // 503; past capacity 503 at once. Tokens are checked before a
        // request takes capacity; health answers 503 once draining.
        let router = router
            .layer(panic::http_layer())
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                limits.request_timeout,
            ))
            .layer(overload::ShedLayer::http(limits.max_concurrent_requests));
        let router = auth::http_layer(router, secured.authorizer.clone())
            .layer(DrainHealthLayer::new(phase.clone()))
            // One span per request, a child of the caller's W3C `traceparent`.
            .layer(triad_telemetry::trace::HttpTraceLayer);

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(limits.http2_keepalive_interval)
            .keep_alive_timeout(limits.http2_keepalive_timeout)
            .max_concurrent_streams(
                u32::try_from(limits.concurrency_per_connection).unwrap_or(u32::MAX),
            );
        let builder = Arc::new(builder);

        let mut connections = accept::spawn(
            listener,
            secured.http_tls.clone(),
            AcceptLimits::from(&limits),
            phase.clone(),
        );
        let draining = drain::run(shutdown, limits.drain_delay, phase_sender, async {});
        tokio::pin!(draining);
        let mut open = JoinSet::new();
        loop {
            tokio::select! {
                () = &mut draining => break,
                conn = connections.recv() => match conn {
                    Some(conn) => {
                        open.spawn(serve_connection(
                            conn,
                            Arc::clone(&builder),
                            router.clone(),
                            phase.clone(),
                            limits.idle_timeout,
                            limits.request_timeout,
                        ));
                    }
                    None => break,
                },
                Some(_) = open.join_next(), if !open.is_empty() => {}
            }
        }
        // Stopped: no new connections; open ones were told to close and
        // finish their in-flight requests.
        drop(connections);
        while open.join_next().await.is_some() {}
        Ok(())
    }
}

/// When a connection's last request ended, and how many are in flight.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last request.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    /// When the connection became idle; `None` while a request is in
    /// flight.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.opened + Duration::from_millis(self.last_ms.load(Ordering::Acquire)))
    }
}

/// Marks a request over when dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let elapsed = u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.store(elapsed, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The router of one connection, counting its requests in flight.
#[derive(Clone)]
struct Tracked {
    router: Router,
    activity: Arc<Activity>,
}

impl<B> Service<Request<B>> for Tracked
where
    Router:
        Service<Request<B>, Response = axum::response::Response, Error = std::convert::Infallible>,
    <Router as Service<Request<B>>>::Future: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<
        Box<dyn Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<B>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.activity.in_flight.fetch_add(1, Ordering::AcqRel);
        let in_flight = InFlight(Arc::clone(&self.activity));
        let future = self.router.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(in_flight);
            response
        })
    }
}

/// Serves one connection until it ends, it stays idle for `idle_timeout`,
/// or the server stops; a connection told to close gets `grace` to finish
/// its in-flight requests, then is dropped.
async fn serve_connection(
    conn: Conn,
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    mut phase: watch::Receiver<Phase>,
    idle_timeout: Duration,
    grace: Duration,
) {
    let peer = conn.peer();
    let activity = Activity::new();
    let service = TowerToHyperService::new(Tracked {
        router,
        activity: Arc::clone(&activity),
    });
    let connection = builder.serve_connection(TokioIo::new(conn), service);
    tokio::pin!(connection);
    let stopped = async move {
        let _ = phase.wait_for(|phase| *phase == Phase::Stopped).await;
    };
    tokio::pin!(stopped);
    let timer = tokio::time::sleep(idle_timeout);
    tokio::pin!(timer);
    let mut closing = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%peer, %error, "http connection ended with an error");
                }
                return;
            }
            () = &mut stopped, if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
                timer.as_mut().reset(Instant::now() + grace);
            }
            () = &mut timer => {
                if closing {
                    tracing::debug!(%peer, "http connection still busy after its grace period: closed");
                    return;
                }
                let now = Instant::now();
                match activity.idle_since() {
                    Some(since) if now >= since + idle_timeout => {
                        tracing::debug!(%peer, "idle http connection closed");
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                        timer.as_mut().reset(now + grace);
                    }
                    Some(since) => timer.as_mut().reset(since + idle_timeout),
                    None => timer.as_mut().reset(now + idle_timeout),
                }
            }
        }
    }
}
