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
//!
//! Three layers (`docs/architecture.md`, "The monitor in layers"): the wire
//! adapters (`grpc.rs`, `dashboard/`, `events_http.rs`, and [`serve`] here) call the
//! application layer, [`Monitor`] (`app/`: checks requests, computes model
//! quality and drift, records telemetry), which calls the [`Store`]
//! (`store/`: SQL only). Each layer has its error type ([`StorageError`];
//! [`RequestError`] and [`AppError`]), and an operation's error becomes a
//! gRPC or HTTP status in one place (`conversions.rs`); start-up and
//! serving fail with `triad_server::ServerError`, like every service.

mod alerting;
mod app;
mod buckets;
pub mod config;
mod conversions;
mod dashboard;
mod events_http;
mod fields;
mod grpc;
mod links;
mod profiles;
mod store;
mod telemetry;
mod webhook;

use std::future::Future;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use triad_proto::v1::monitor_server::MonitorServer;
use triad_server::{ServerError, Shutdown};

pub use alerting::{Alerter, EVALUATION_DELAY_MS};
pub use app::{
    AlertEvaluation, AlertSettings, AppError, Monitor, RequestError, SettingsError, Thresholds,
};
pub use config::{AlertsConfig, MonitorConfig, StoreConfig, WebhookConfig};
pub use grpc::MonitorService;
pub use profiles::Profiles;
pub use store::{Backend, ModelSummary, StorageError, Store, VersionSummary};
pub use webhook::WebhookError;

/// The alert rules alone, for the benchmark (`benches/alerts.rs`): how
/// many rules the daily `points` of one version breach with the default
/// thresholds (no drift). Not an API.
#[doc(hidden)]
pub fn alert_rules_breached(points: &[triad_proto::v1::MetricPoint]) -> usize {
    app::alerts::rules::check(points, None, &Thresholds::default()).len()
}

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
    "/triad.v1.Monitor/QueryThreshold",
    "/triad.v1.Monitor/Alerts",
];

/// Opens the store of `config` and serves the monitor until `shutdown`
/// resolves: gRPC on `grpc`, and on `http` (when given) the dashboard,
/// `GET /metrics` and `GET /health` ([`http_router`]), and evaluates
/// alerts in the background ([`Alerter`]). If either port
/// fails, the other is stopped too and the error returned; the store is
/// closed once both have drained.
pub async fn serve(
    grpc: TcpListener,
    http: Option<TcpListener>,
    config: MonitorConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    // Certificates and tokens first: a bad file fails start-up at once.
    let secured = config.security.load(READ_METHODS)?;
    let alert_settings = match &config.alerts.config_file {
        Some(path) => AlertSettings::load(path).map_err(ServerError::start)?,
        None => AlertSettings::default(),
    };
    let profiles = profiles::Profiles::new(&config.models_dir);
    let store = Store::open(&config.store)
        .await
        .map_err(ServerError::start)?;
    let monitor = Monitor::new(store, profiles).with_alert_settings(alert_settings);
    telemetry::init();
    let mut serving = Shutdown::new();
    // Alerts: evaluated at start and after each day closes, delivered on
    // their own task; both stop with the server.
    let (alerter, deliveries) = match Alerter::new(monitor.clone(), config.alerts.webhook.clone()) {
        Ok(alerter) => alerter,
        Err(error) => {
            monitor.close().await;
            return Err(ServerError::start(error));
        }
    };
    if let Some(deliveries) = deliveries {
        let stopped = serving.signalled();
        serving.spawn(async move {
            tokio::select! {
                () = deliveries => {}
                () = stopped => {}
            }
            Ok(())
        });
    }
    serving.spawn({
        let stopped = serving.signalled();
        async move {
            alerter.run(stopped).await;
            Ok(())
        }
    });
    if let Some(listener) = http {
        serving.spawn(triad_server::serve_http_with(
            listener,
            http_router(monitor.clone()),
            &config.server,
            &secured,
            serving.signalled(),
        ));
    }
    serving.spawn(triad_server::serve_secured(
        grpc,
        service_spec(monitor.clone(), &config),
        &config.server,
        &secured,
        serving.signalled(),
    ));
    let served = serving.run_until(shutdown).await;
    monitor.close().await;
    served
}

/// The monitor's HTTP port over `monitor`: the dashboard (`GET /`,
/// `GET /models/{name}`), business events in (`POST /events`, the JSON
/// twin of `RecordEvents`, `events_http.rs`), `GET /metrics` (the monitor's precision and
/// recall gauges are refreshed from the store on each scrape, see
/// `telemetry.rs`) and `GET /health` (200 while the process runs).
pub fn http_router(monitor: Monitor) -> Router {
    let metrics = triad_telemetry::metrics::router().layer(axum::middleware::from_fn_with_state(
        monitor.clone(),
        refresh_metrics,
    ));
    let events = Router::new()
        .route("/events", post(events_http::record))
        .layer(axum::extract::DefaultBodyLimit::max(
            events_http::MAX_BODY_BYTES,
        ))
        .with_state(monitor.clone());
    dashboard::router(monitor)
        .merge(events)
        .merge(metrics)
        .route("/health", get(|| async { "ok\n" }))
}

/// Refreshes the gauges computed at scrape time, then encodes.
async fn refresh_metrics(
    axum::extract::State(monitor): axum::extract::State<Monitor>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Err(error) = monitor.refresh_quality_gauges().await {
        tracing::warn!(%error, "cannot refresh the precision and recall gauges");
    }
    next.run(request).await
}

/// The routes, health names and descriptors of the service over
/// `monitor` (an already-open store), for callers that compose several
/// services on one server.
pub fn service_spec(monitor: Monitor, config: &MonitorConfig) -> triad_server::ServiceSpec {
    let server = MonitorServer::new(MonitorService::new(monitor))
        .max_decoding_message_size(config.server.max_message_bytes)
        .max_encoding_message_size(config.server.max_message_bytes);
    triad_server::ServiceSpec {
        name: "monitor",
        routes: tonic::service::Routes::new(server),
        health_names: vec![SERVICE_NAME],
        descriptors: vec![triad_proto::FILE_DESCRIPTOR_SET],
    }
}
