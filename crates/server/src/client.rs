//! The one way a Triad service opens a gRPC channel to another (scorer →
//! preprocess, scorer → monitor): deadlines, TCP settings and the client
//! layers every hop needs live here, so each call site only names the
//! endpoint.
//!
//! A [`GrpcChannel`] is a boxed, cloneable tower service, so the layers
//! stacked on it (trace propagation, balancing, TLS) never change the
//! generated clients' types.

use std::time::Duration;

use tonic::body::Body;
use tonic::transport::Endpoint;
use tower::util::BoxCloneSyncService;

/// Any error a client layer can raise.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failure of a [`GrpcChannel`] call before a status arrives (connection
/// refused, timed out, …). A concrete type rather than a bare [`BoxError`],
/// which keeps generated clients' futures `Send`-checkable.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ChannelError(BoxError);

impl ChannelError {
    /// Wraps any layer's error.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }
}

/// A cloneable gRPC channel with Triad's client layers applied; every
/// generated client (`PreprocessClient<GrpcChannel>`, …) runs over it.
pub type GrpcChannel = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, ChannelError>;

/// Settings of one outgoing gRPC connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Longest a connection attempt may take.
    pub connect_timeout: Duration,
    /// Deadline of every call, sent to the server as `grpc-timeout`.
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Failures to set a channel up (the connection itself is lazy: an
/// unreachable server fails the call, not this).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid gRPC endpoint {endpoint:?}: {source}")]
    Endpoint {
        endpoint: String,
        source: tonic::transport::Error,
    },
}

/// A lazily-connecting channel to `endpoint` (e.g. `http://127.0.0.1:50051`).
pub fn connect(endpoint: &str, config: &ClientConfig) -> Result<GrpcChannel, ClientError> {
    let channel = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|source| ClientError::Endpoint {
            endpoint: endpoint.to_owned(),
            source,
        })?
        .connect_timeout(config.connect_timeout)
        .timeout(config.timeout)
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(BoxCloneSyncService::new(
        tower::ServiceBuilder::new()
            .map_err(ChannelError::new)
            .service(channel),
    ))
}
