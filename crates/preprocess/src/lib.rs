//! The preprocess service (`triad.v1.Preprocess`): turns a request of
//! budgets and expense line items into one named, versioned feature matrix,
//! built once and shared by every scorer.
//!
//! A bad item never fails the request: it comes back as a per-item error
//! beside the rows of every good pair. Whole-request failures are limited to
//! what the caller can fix: too many pairs, or a malformed stream.
//!
//! [`serve`] runs the whole service — the gRPC port and the HTTP port of
//! `GET /metrics` and `GET /health` — for the `triad-preprocess` binary,
//! `triad up` and tests alike.

pub mod config;
pub mod error;
pub mod service;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use triad_features::Featurizer;
use triad_proto::v1::preprocess_server::PreprocessServer;
use triad_server::{ServerError, Shutdown};

pub use config::PreprocessConfig;
pub use error::PreprocessError;
pub use service::PreprocessService;

/// Fully-qualified gRPC name of the service, as health reports it.
pub const SERVICE_NAME: &str = "triad.v1.Preprocess";

/// Serves the preprocess service until `shutdown` resolves: gRPC on
/// `grpc`, and on `http` (when given) `GET /metrics` and `GET /health`.
/// If either port fails, the other is stopped too and the error returned.
pub async fn serve(
    grpc: TcpListener,
    http: Option<TcpListener>,
    config: PreprocessConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    // Certificates and tokens first: a bad file fails start-up at once.
    let secured = config.security.load(&[])?;
    let mut serving = Shutdown::new();
    if let Some(listener) = http {
        serving.spawn(triad_server::serve_http_with(
            listener,
            triad_telemetry::metrics::standalone_router(),
            &config.server,
            &secured,
            serving.signalled(),
        ));
    }
    serving.spawn(triad_server::serve_secured(
        grpc,
        service_spec(&config),
        &config.server,
        &secured,
        serving.signalled(),
    ));
    serving.run_until(shutdown).await
}

/// The routes, health names and descriptors of the service, for callers
/// that compose several services on one server.
pub fn service_spec(config: &PreprocessConfig) -> triad_server::ServiceSpec {
    let featurizer = Arc::new(Featurizer::new(config.featurizer));
    let service = PreprocessService::new(featurizer, config.clone());
    let server = PreprocessServer::new(service)
        .max_decoding_message_size(config.server.max_message_bytes)
        .max_encoding_message_size(config.server.max_message_bytes);
    triad_server::ServiceSpec {
        name: "preprocess",
        routes: tonic::service::Routes::new(server),
        health_names: vec![SERVICE_NAME],
        descriptors: vec![triad_proto::FILE_DESCRIPTOR_SET],
    }
}
