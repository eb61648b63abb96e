//! What every Triad gRPC server shares, in one place: the tower layers
//! (request ids, metrics and request tracing from `triad-telemetry`,
//! timeouts, concurrency limits, load shedding), `grpc.health.v1`, server
//! reflection, graceful shutdown, and the `healthcheck` client the binaries
//! expose.
//!
//! Service crates only build their [`tonic::service::Routes`] and call
//! [`serve`] with an already-bound listener and a shutdown future, so tests
//! and `triad up` can run every service in one process.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod client;
pub mod health;
pub mod overload;
pub mod quote;
pub mod security;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tower_http::trace::TraceLayer;

pub use cli::{HttpAddr, ServiceCommand};
pub use client::{ClientConfig, GrpcChannel};
pub use health::{check_local, check_local_with, healthcheck};
pub use quote::{quote, quote_list};
pub use security::{Secured, Security, SecurityArgs};
use triad_telemetry::{metrics, request_id};

/// Limits and timeouts common to every gRPC server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerLimits {
    /// Largest message a server decodes or encodes, in bytes.
    pub max_message_bytes: usize,
    /// Most requests served at once per connection; past it, requests are
    /// shed with `UNAVAILABLE` rather than queued.
    pub concurrency_per_connection: usize,
    /// Most requests served at once by the whole server, over every
    /// connection; past it, requests are answered `RESOURCE_EXHAUSTED` at
    /// once (health checks excepted).
    pub max_concurrent_requests: usize,
    /// Upper bound on any request's duration; a caller's `grpc-timeout`
    /// shortens it.
    pub request_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024 * 1024,
            concurrency_per_connection: 256,
            max_concurrent_requests: 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Failures of server start-up or of the transport.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("grpc transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What a service crate hands to [`serve`].
pub struct ServiceSpec {
    /// Short name for logs, e.g. `preprocess`.
    pub name: &'static str,
    /// The service's own routes.
    pub routes: Routes,
    /// Fully-qualified gRPC service names reported SERVING by health.
    pub health_names: Vec<&'static str>,
    /// Encoded file descriptor sets published through reflection.
    pub descriptors: Vec<&'static [u8]>,
}

/// Binds `addr`, with a clear error naming the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Serves `spec` on `listener` with health, reflection and the shared layers
/// until `shutdown` resolves; then health turns NOT_SERVING first and
/// in-flight requests drain.
pub async fn serve(
    listener: TcpListener,
    spec: ServiceSpec,
    limits: &ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    serve_secured(listener, spec, limits, &Secured::default(), shutdown).await
}

/// [`serve`] with TLS and bearer tokens as `secured` says (see
/// [`Security::load`]).
pub async fn serve_secured(
    listener: TcpListener,
    spec: ServiceSpec,
    limits: &ServerLimits,
    secured: &Secured,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    for name in &spec.health_names {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;

    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for descriptor in &spec.descriptors {
        reflection = reflection.register_encoded_file_descriptor_set(descriptor);
    }
    let reflection_v1 = reflection.build_v1()?;
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for descriptor in &spec.descriptors {
        reflection = reflection.register_encoded_file_descriptor_set(descriptor);
    }
    let reflection_v1alpha = reflection.build_v1alpha()?;

    let routes = spec
        .routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let local = listener.local_addr().ok();
    tracing::info!(
        service = spec.name,
        addr = ?local,
        tls = secured.is_tls(),
        tokens = secured.is_authenticated(),
        "serving grpc"
    );
    let health_names = spec.health_names;
    let name = spec.name;
    let draining = async move {
        shutdown.await;
        tracing::info!("shutting down: health NOT_SERVING, draining requests");
        for name in health_names {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
    };

    let router = tonic::transport::Server::builder()
        .timeout(limits.request_timeout)
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        .load_shed(true)
        .layer(request_id::SetRequestIdLayer)
        .layer(metrics::GrpcMetricsLayer)
        .layer(TraceLayer::new_for_grpc().make_span_with(
            // A child of the caller's `traceparent`, tagged with the service.
            move |request: &http::Request<_>| request_id::make_service_span(name, request),
        ))
        // Refused calls are counted and traced, and never take capacity.
        .layer(auth::GrpcAuthLayer::new(secured.authorizer.clone()))
        .layer(overload::ShedLayer::new(limits.max_concurrent_requests))
        .add_routes(routes);
    match &secured.grpc_tls {
        None => {
            router
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener)
                        .with_nodelay(Some(true))
                        .with_keepalive(Some(Duration::from_secs(60))),
                    draining,
                )
                .await?
        }
        Some(acceptor) => {
            router
                .serve_with_incoming_shutdown(
                    tls::TlsListener::new(listener, acceptor.clone())
                        .map_err(|source| ServerError::Bind {
                            addr: local.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
                            source,
                        })?
                        .into_incoming(),
                    draining,
                )
                .await?
        }
    }
    Ok(())
}

/// Serves an HTTP router (metrics, dashboards, the seed contract) on
/// `listener` until `shutdown` resolves.
pub async fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_http_secured(listener, router, &Secured::default(), shutdown).await
}

/// [`serve_http`] with TLS and bearer tokens as `secured` says: `GET` and
/// `HEAD` take a read-only token, other methods the service token, and
/// the open paths (`/health`, `/metrics` by default) none.
pub fn serve_http_secured(
    listener: TcpListener,
    router: axum::Router,
    secured: &Secured,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    let secured = secured.clone();
    async move {
        tracing::info!(
            addr = ?listener.local_addr().ok(),
            tls = secured.is_tls(),
            tokens = secured.is_authenticated(),
            "serving http"
        );
        let router = auth::http_layer(router, secured.authorizer.clone());
        // One span per request, a child of the caller's W3C `traceparent`.
        let router = router.layer(triad_telemetry::trace::HttpTraceLayer);
        match secured.http_tls {
            None => {
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            Some(acceptor) => {
                axum::serve(tls::TlsListener::new(listener, acceptor)?, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
    }
}

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
