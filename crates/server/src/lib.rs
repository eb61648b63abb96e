//! What every Triad server port shares, in one place: accepting
//! connections with deadlines ([`accept`]), the tower layers (request ids,
//! metrics and request tracing from `triad-telemetry`, auth, timeouts,
//! concurrency limits, load shedding, catching panics), `grpc.health.v1`,
//! server reflection, shutdown — the process signal, the one [`Shutdown`]
//! handle a service's ports and tasks stop by, and each port's drain delay
//! ([`drain`]) —, and the `healthcheck` client the binaries expose.
//!
//! Service crates only build their [`tonic::service::Routes`] (or an
//! [`axum::Router`]) and call [`serve`] / [`serve_http`] with an
//! already-bound listener and a shutdown future, so tests and `triad up`
//! can run every service in one process. Each service's own entry
//! function has one shape, `serve(grpc, http, config, shutdown)`, and
//! returns a [`ServerError`].

pub mod accept;
pub mod auth;
pub mod cli;
pub mod client;
pub mod drain;
mod grpc;
pub mod health;
mod http_server;
pub mod overload;
pub mod panic;
pub mod quote;
pub mod security;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tonic::service::Routes;

pub use cli::{HttpAddr, LimitsArgs, ServiceCommand};
pub use client::{ClientConfig, GrpcChannel};
pub use drain::{Shutdown, shutdown_signal};
pub use grpc::{serve, serve_secured};
pub use health::{check_local, check_local_with, healthcheck};
pub use http_server::{serve_http, serve_http_secured, serve_http_with};
pub use quote::{quote, quote_list};
pub use security::{Secured, Security, SecurityArgs};

/// Limits and timeouts of every port a service opens, gRPC and HTTP.
/// `docs/operations.md` ("Connections and timeouts") explains each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerLimits {
    /// Largest message a server decodes or encodes, in bytes. Default
    /// 64 MiB.
    pub max_message_bytes: usize,
    /// Most requests served at once per gRPC connection; past it, requests
    /// are shed with `UNAVAILABLE` rather than queued. Default 256.
    pub concurrency_per_connection: usize,
    /// Most requests served at once by the whole server, over every
    /// connection (gRPC and HTTP ports each count their own); past it,
    /// requests are answered at once — gRPC `RESOURCE_EXHAUSTED`, HTTP 503
    /// with `Retry-After` — health checks excepted. Default 1 024.
    pub max_concurrent_requests: usize,
    /// Upper bound on any request's duration (reading its body included);
    /// a caller's `grpc-timeout` shortens it. Past it gRPC answers
    /// `CANCELLED`/`DEADLINE_EXCEEDED`, HTTP 503. Default 30 s.
    pub request_timeout: Duration,
    /// A new connection must finish its TLS handshake (when TLS is on) and
    /// send the start of its first request within this, or it is closed.
    /// Default 5 s.
    pub handshake_timeout: Duration,
    /// Most connections of one peer address (an IPv6 peer by its /64)
    /// waiting for their handshake or first bytes at once; past it the
    /// peer's oldest is closed. Default 256.
    pub max_pending_per_peer: usize,
    /// Most connections waiting for their handshake or first bytes at
    /// once, over all peers; past it the oldest is closed. Default 4 096.
    pub max_pending: usize,
    /// HTTP/1 ports: longest a client may take to send a request's headers,
    /// counted from the first byte — and so also how long a keep-alive
    /// connection may sit idle between requests. Default 10 s.
    pub header_read_timeout: Duration,
    /// HTTP ports: a connection with no request in flight for this long is
    /// closed gracefully. Default 60 s.
    pub idle_timeout: Duration,
    /// HTTP/2 (gRPC and HTTP ports): a PING is sent after this long without
    /// a frame from the client. Default 30 s.
    pub http2_keepalive_interval: Duration,
    /// HTTP/2: a connection whose PING is not answered within this is
    /// closed. Default 20 s.
    pub http2_keepalive_timeout: Duration,
    /// TCP keepalive on accepted sockets (`None`: off). Default 60 s.
    pub tcp_keepalive: Option<Duration>,
    /// gRPC ports: a connection older than this is asked to go away
    /// (GOAWAY; clients reconnect, e.g. to spread over new replicas).
    /// Default `None`: no limit.
    pub max_connection_age: Option<Duration>,
    /// Shutdown: how long health says NOT_SERVING (HTTP `/health` 503)
    /// while requests are still accepted and served, before the port
    /// closes and in-flight requests drain. Default 0 (set it to a few
    /// load-balancer health-check periods behind one).
    pub drain_delay: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024 * 1024,
            concurrency_per_connection: 256,
            max_concurrent_requests: 1024,
            request_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
            max_pending_per_peer: 256,
            max_pending: 4096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(20),
            tcp_keepalive: Some(Duration::from_secs(60)),
            max_connection_age: None,
            drain_delay: Duration::ZERO,
        }
    }
}

/// Why a server could not start or stopped serving: what a port's
/// `serve` and every service's `serve` return.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The service's own start-up failed: its model repository, its
    /// outcome spool, its database.
    #[error(transparent)]
    Start(Box<dyn std::error::Error + Send + Sync>),
    /// The descriptors given for reflection do not describe a service.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A descriptor set given for reflection is not protobuf.
    #[error("cannot decode a file descriptor set: {0}")]
    Descriptor(#[from] prost::DecodeError),
    /// The gRPC server failed.
    #[error("grpc transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The certificates or keys cannot be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The tokens cannot be read.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// A channel to another service cannot be set up.
    #[error(transparent)]
    Client(#[from] client::ClientError),
    /// The address is taken or not this machine's.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the operating system refused it.
        source: std::io::Error,
    },
    /// A port or background task panicked.
    #[error("serving task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl ServerError {
    /// [`ServerError::Start`] of a service's own start-up failure.
    pub fn start(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Start(Box::new(error))
    }
}

/// What a service crate hands to [`serve`].
pub struct ServiceSpec {
    /// Short name for logs, e.g. `preprocess`.
    pub name: &'static str,
    /// The service's own routes.
    pub routes: Routes,
    /// Fully-qualified gRPC names of the services `routes` serve: reported
    /// SERVING by health, the only ones reflection lists (beside health and
    /// reflection), and the only ones metrics label by method.
    pub health_names: Vec<&'static str>,
    /// Encoded file descriptor sets describing those services (they may
    /// describe others too; only `health_names` are published).
    pub descriptors: Vec<&'static [u8]>,
}

/// Binds `addr`, with a clear error naming the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}
