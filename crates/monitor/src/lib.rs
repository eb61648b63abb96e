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

pub mod buckets;
pub mod config;
pub mod dashboard;
pub mod drift;
pub mod error;
pub mod fields;
pub mod metrics;
pub mod profiles;
pub mod service;
pub mod store;
pub mod telemetry;

use std::future::Future;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use triad_proto::v1::monitor_server::MonitorServer;

pub use config::{MonitorConfig, StoreConfig};
pub use error::MonitorError;
pub use service::MonitorService;
pub use store::{Backend, Counts, CountsFilter, Store};

/// Fully-qualified gRPC name of the service, as health reports it.
pub const SERVICE_NAME: &str = "triad.v1.Monitor";

/// The RPCs a read-only token may call (what the dashboard and analysts
/// query); every other RPC writes and needs the service token
/// (`RecordOutcomes`, `RecordOutcomesStream`, `RecordLabels`,
/// `RecordEvents`).
pub const READ_METHODS: &[&str] = &[
    "/triad.v1.Monitor/QueryMetrics",
    "/triad.v1.Monitor/ListMistakes",
    "/triad.v1.Monitor/Anomalies",
    "/triad.v1.Monitor/QueryEvents",
    "/triad.v1.Monitor/Drift",
];

/// Opens the store of `config` and serves the monitor until `shutdown`
/// resolves: gRPC on `grpc`, and on `http` (when given) the dashboard,
/// `GET /metrics` and `GET /health` ([`http_router`]). Shutdown stops both
/// servers; if either fails, the other is stopped too and the error
/// returned.
pub async fn serve(
    grpc: TcpListener,
    http: Option<TcpListener>,
    config: MonitorConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), MonitorError> {
    // Certificates and tokens first: a bad file fails start-up at once.
    let secured = config.security.load(READ_METHODS)?;
    let profiles = profiles::Profiles::new(&config.models_dir);
    let store = Store::open_with_profiles(&config.store, profiles).await?;
    telemetry::init();
    let (stop, stopped) = watch::channel(false);
    let until_stopped = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let http_task = http.map(|listener| {
        tokio::spawn(triad_server::serve_http_with(
            listener,
            http_router(store.clone()),
            &config.server,
            &secured,
            until_stopped(),
        ))
    });
    // Without an HTTP listener this only waits for the stop signal.
    let http_done = async {
        match http_task {
            Some(task) => match task.await {
                Ok(served) => served.map_err(MonitorError::Http),
                Err(join) => Err(MonitorError::Http(std::io::Error::other(join))),
            },
            None => {
                until_stopped().await;
                Ok(())
            }
        }
    };
    let spec = service_spec(store.clone(), &config);
    let grpc_done =
        triad_server::serve_secured(grpc, spec, &config.server, &secured, until_stopped());
    tokio::pin!(shutdown, http_done, grpc_done);
    let mut http_result = None;
    let grpc_result = tokio::select! {
        result = &mut grpc_done => result,
        () = &mut shutdown => {
            let _ = stop.send(true);
            grpc_done.await
        }
        result = &mut http_done => {
            http_result = Some(result);
            let _ = stop.send(true);
            grpc_done.await
        }
    };
    let _ = stop.send(true);
    let http_result = match http_result {
        Some(result) => result,
        None => http_done.await,
    };
    store.close().await;
    grpc_result?;
    http_result
}

/// The monitor's HTTP port over `store`: the dashboard (`GET /`,
/// `GET /models/{name}`), `GET /metrics` (the monitor's precision and
/// recall gauges are refreshed from the store on each scrape, see
/// [`telemetry`]) and `GET /health` (200 while the process runs).
pub fn http_router(store: Store) -> Router {
    let metrics = triad_telemetry::metrics::router().layer(axum::middleware::from_fn_with_state(
        store.clone(),
        refresh_metrics,
    ));
    dashboard::router(store)
        .merge(metrics)
        .route("/health", get(|| async { "ok\n" }))
}

/// Refreshes the gauges computed at scrape time, then encodes.
async fn refresh_metrics(
    axum::extract::State(store): axum::extract::State<Store>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Err(error) = telemetry::refresh_quality(&store).await {
        tracing::warn!(%error, "cannot refresh the precision and recall gauges");
    }
    next.run(request).await
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
