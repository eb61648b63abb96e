//! The monitor service (`triad.v1.Monitor`): stores every scored outcome
//! in a relational table (SQLite by default, PostgreSQL on request), joins
//! ground-truth labels that arrive later, keeps hourly confusion counters
//! up to date incrementally, and serves precision and recall over time with
//! smoothing, trends, change points and anomaly flags from `triad-series`.
//!
//! The raw rows stay open to plain SQL (tables and the
//! `daily_precision_recall` and `mistakes` views, `docs/monitoring.md`).
//! One bad outcome, label or event never fails a batch: it is rejected
//! next to what was stored.
#![forbid(unsafe_code)]

pub mod buckets;
pub mod config;
pub mod error;
pub mod fields;
pub mod metrics;
pub mod service;
pub mod store;

use std::future::Future;

use tokio::net::TcpListener;
use triad_proto::v1::monitor_server::MonitorServer;

pub use config::{MonitorConfig, StoreConfig};
pub use error::MonitorError;
pub use service::MonitorService;
pub use store::{Backend, Counts, CountsFilter, Store};

/// Fully-qualified gRPC name of the service, as health reports it.
pub const SERVICE_NAME: &str = "triad.v1.Monitor";

/// Opens the store of `config` and serves the monitor on `listener` until
/// `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: MonitorConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), MonitorError> {
    let store = Store::open(&config.store).await?;
    let spec = service_spec(store.clone(), &config);
    let served = triad_server::serve(listener, spec, &config.server, shutdown).await;
    store.close().await;
    Ok(served?)
}

/// The routes, health names and descriptors of the service over an
/// already-open `store`, for callers that compose several services on one
/// server.
pub fn service_spec(store: Store, config: &MonitorConfig) -> triad_server::ServiceSpec {
    let server = MonitorServer::new(MonitorService::new(store))
        .max_decoding_message_size(config.server.max_message_bytes)
        .max_encoding_message_size(config.server.max_message_bytes);
    triad_server::ServiceSpec {
        name: "monitor",
        routes: tonic::service::Routes::new(server),
        health_names: vec![SERVICE_NAME],
        descriptors: vec![triad_proto::FILE_DESCRIPTOR_SET],
    }
}
