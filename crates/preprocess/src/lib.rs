//! The preprocess service (`triad.v1.Preprocess`): turns a request of
//! budgets and expense line items into one named, versioned feature matrix,
//! built once and shared by every scorer.
//!
//! A bad item never fails the request: it comes back as a per-item error
//! beside the rows of every good pair. Whole-request failures are limited to
//! what the caller can fix: too many pairs, or a malformed stream.

pub mod config;
pub mod error;
pub mod service;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use triad_features::Featurizer;
use triad_proto::v1::preprocess_server::PreprocessServer;

pub use config::PreprocessConfig;
pub use error::PreprocessError;
pub use service::PreprocessService;

/// Fully-qualified gRPC name of the service, as health reports it.
pub const SERVICE_NAME: &str = "triad.v1.Preprocess";

/// Serves the preprocess service on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: PreprocessConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), triad_server::ServerError> {
    let secured = config.security.load(&[])?;
    let spec = service_spec(&config);
    triad_server::serve_secured(listener, spec, &config.server, &secured, shutdown).await
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
