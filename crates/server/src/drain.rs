//! Shutdown, from the signal to the last request, in one place:
//!
//! - [`shutdown_signal`]: what stops a service binary (ctrl-c, SIGTERM).
//! - [`Shutdown`]: one shutdown for a set of tasks — a service's ports and
//!   background work, or the services `triad up` and `triad bench` run in
//!   one process. It is signalled once, every task sees it, and it is done
//!   when the last task has finished. The `serve` function of every
//!   service is built on it.
//! - Each port's graceful shutdown, in two steps: when its shutdown future
//!   resolves the port starts **draining** — health says so at once (gRPC
//!   health `NOT_SERVING`, HTTP `GET /health` 503) while requests are still
//!   accepted and served — and after
//!   [`ServerLimits::drain_delay`](crate::ServerLimits) it **stops**: the
//!   listener closes, open connections are told to go away (HTTP/2 GOAWAY,
//!   HTTP/1 `connection: close`) and in-flight requests finish.
//!
//! The delay is what lets a load balancer (or Kubernetes removing the pod
//! from a Service's endpoints) see the failing health check and send
//! traffic elsewhere before the port closes, so no caller is refused.

use std::future::Future;
use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};
use tower::{Layer, Service};

/// Resolves on ctrl-c or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// One shutdown for a set of tasks that stop together: signalled once, by
/// [`Shutdown::stop`] or when [`Shutdown::run_until`]'s trigger fires;
/// seen by every task through the future [`Shutdown::signalled`] hands
/// it; and over when every task has finished, with the first task's
/// error, `E`.
///
/// The first task to fail signals it too, once it is being waited for: a
/// service whose HTTP port fails does not go on serving gRPC alone.
/// Dropping a `Shutdown` aborts the tasks still running; `stop` is the
/// graceful end.
#[derive(Debug)]
pub struct Shutdown<E> {
    /// `true` once shutdown is signalled; every task's future watches it.
    signalled: watch::Sender<bool>,
    /// The tasks, each ending in its own result.
    tasks: JoinSet<Result<(), E>>,
}

impl<E> Default for Shutdown<E> {
    fn default() -> Self {
        Self {
            signalled: watch::Sender::new(false),
            tasks: JoinSet::new(),
        }
    }
}

impl<E> Shutdown<E>
where
    E: From<JoinError> + Send + 'static,
{
    /// A shutdown with no task yet, not signalled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A future that resolves once the shutdown is signalled (or this
    /// handle dropped): what each port and background task is given as
    /// its shutdown future.
    pub fn signalled(&self) -> impl Future<Output = ()> + Send + 'static + use<E> {
        let mut signalled = self.signalled.subscribe();
        async move {
            let _ = signalled.wait_for(|signalled| *signalled).await;
        }
    }

    /// Runs `task` on the runtime as one of this shutdown's tasks. A task
    /// that panics counts as failed, with its [`JoinError`].
    pub fn spawn(&mut self, task: impl Future<Output = Result<(), E>> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Signals the shutdown to every task; signalling it again does
    /// nothing.
    fn signal(&self) {
        self.signalled.send_replace(true);
    }

    /// Serves until `trigger` resolves, a task fails or every task has
    /// finished; then signals the shutdown and waits for every task. The
    /// first task's error, if any failed.
    pub async fn run_until(mut self, trigger: impl Future<Output = ()>) -> Result<(), E> {
        tokio::pin!(trigger);
        let mut first_error = None;
        loop {
            tokio::select! {
                () = &mut trigger => break,
                joined = self.tasks.join_next() => match joined {
                    Some(joined) => {
                        if let Err(error) = outcome(joined) {
                            first_error = Some(error);
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        self.signal();
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = outcome(joined) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Signals the shutdown and waits for every task. The first task's
    /// error, if any failed.
    pub async fn stop(self) -> Result<(), E> {
        self.run_until(std::future::ready(())).await
    }
}

/// A joined task's result, a panic counted as its error.
fn outcome<E: From<JoinError>>(joined: Result<Result<(), E>, JoinError>) -> Result<(), E> {
    joined.map_err(E::from)?
}

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

/// A port's phase, watched by its accept loop, its connections and its
/// health.
pub(crate) fn phase_channel() -> (watch::Sender<Phase>, watch::Receiver<Phase>) {
    watch::channel(Phase::Serving)
}

/// Waits for `shutdown`, then marks the port draining, runs `on_drain`
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::ServerError;

    #[tokio::test]
    async fn stop_signals_every_task_and_waits_for_the_last() {
        let finished = Arc::new(AtomicUsize::new(0));
        let mut shutdown = Shutdown::<ServerError>::new();
        for _ in 0..3 {
            let signalled = shutdown.signalled();
            let finished = Arc::clone(&finished);
            shutdown.spawn(async move {
                signalled.await;
                tokio::task::yield_now().await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        }
        shutdown.stop().await.unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn the_first_task_to_fail_stops_the_others_and_its_error_is_returned() {
        let mut shutdown = Shutdown::<ServerError>::new();
        let signalled = shutdown.signalled();
        shutdown.spawn(async move {
            signalled.await;
            Ok(())
        });
        shutdown.spawn(async { Err(ServerError::start(std::io::Error::other("no database"))) });
        let error = shutdown
            .run_until(std::future::pending())
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "no database");
    }

    #[tokio::test]
    async fn a_panicking_task_is_a_failed_task() {
        let mut shutdown = Shutdown::<ServerError>::new();
        let signalled = shutdown.signalled();
        shutdown.spawn(async move {
            signalled.await;
            Ok(())
        });
        shutdown.spawn(async { panic!("a bug in a task") });
        let error = shutdown
            .run_until(std::future::pending())
            .await
            .unwrap_err();
        assert!(matches!(error, ServerError::Task(_)), "{error}");
    }
}
