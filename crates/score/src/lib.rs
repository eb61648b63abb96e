//! The scorer service (`triad.v1.Scorer`): serves one or more models from a
//! versioned repository on the one feature matrix the preprocess service
//! builds, so two models reuse the same preprocessing. It also answers the
//! seed's HTTP contract.
//!
//! Only this crate knows about models: how they load ([`model`]), which
//! version serves ([`repository`]), and how a request is scored
//! ([`engine`]).

pub mod config;
pub mod engine;
pub mod error;
pub mod grpc;
pub mod http;
pub mod model;
mod offload;
pub mod oip;
pub mod outcomes;
pub mod payload;
pub mod repository;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use triad_features::{FeatureSchema, JsonLimits};
use triad_proto::v1::scorer_server::ScorerServer;
use triad_server::{ServerError, Shutdown};

pub use config::ScoreConfig;
pub use engine::{Engine, FeatureSource, Selection};
pub use error::ScoreError;
pub use repository::Repository;

/// Fully-qualified gRPC name of the service, as health reports it.
pub const SERVICE_NAME: &str = "triad.v1.Scorer";

/// Opens the model repository named by `config` (only the models it lists,
/// when it lists any), off the async threads.
pub async fn open_repository(config: &ScoreConfig) -> Result<Arc<Repository>, ServerError> {
    let dir = config.models_dir.clone();
    let pins = config.pins.clone();
    let only = config.models.clone();
    let repository = tokio::task::spawn_blocking(move || {
        Repository::open_filtered(&dir, FeatureSchema::current(), pins, only)
    })
    .await?
    .map_err(ServerError::start)?;
    Ok(Arc::new(repository))
}

/// Serves the scorer until `shutdown` resolves: gRPC on `grpc` and, when
/// given, the seed's HTTP contract and `GET /metrics` on `http`; the
/// repository is polled for changes meanwhile. If a port fails, the rest
/// is stopped too and the error returned. Once the ports have drained,
/// the outcomes still in the spool are sent to the monitor.
pub async fn serve(
    grpc: TcpListener,
    http: Option<TcpListener>,
    config: ScoreConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    // Certificates and tokens first: a bad file fails start-up at once.
    let secured = config.security.load(&[])?;
    let repository = open_repository(&config).await?;
    let features = FeatureSource::remote_with(
        &config.preprocess,
        config.preprocess_timeout,
        config.server.max_message_bytes,
        triad_server::ClientConfig {
            tls: config.upstream_tls.clone(),
            token: config.preprocess_token.clone(),
            ..triad_server::ClientConfig::default()
        },
    )?;
    let mut engine = Engine::new(Arc::clone(&repository), features)
        .with_max_request_bytes(config.max_request_bytes);
    let mut outcome_tasks = None;
    if let Some(monitor) = &config.monitor {
        let (publisher, tasks) = outcomes::OutcomePublisher::start(outcomes::OutcomeConfig {
            spool: config.spool.clone(),
            client: triad_server::ClientConfig {
                tls: config.upstream_tls.clone(),
                token: config.monitor_token.clone(),
                ..triad_server::ClientConfig::default()
            },
            ..outcomes::OutcomeConfig::new(monitor.clone())
        })
        .await
        .map_err(ServerError::start)?;
        tracing::info!(monitor = %monitor, "sending outcomes to the monitor");
        outcome_tasks = Some(tasks);
        engine = engine.with_outcomes(publisher);
    }

    let mut serving = Shutdown::new();
    let watcher = Arc::clone(&repository).watch(config.poll_interval, serving.signalled());
    serving.spawn(async move {
        watcher.await;
        Ok(())
    });
    if let Some(listener) = http {
        let router = http::router(http::HttpState {
            engine: engine.clone(),
            model: config.http_model.clone(),
            limits: JsonLimits::default(),
            payload: payload::PayloadLog::new(&config.payload_log),
        })
        .merge(triad_telemetry::metrics::router());
        serving.spawn(triad_server::serve_http_with(
            listener,
            router,
            &config.server,
            &secured,
            serving.signalled(),
        ));
    }
    serving.spawn(triad_server::serve_secured(
        grpc,
        service_spec(engine, &config),
        &config.server,
        &secured,
        serving.signalled(),
    ));
    let served = serving.run_until(shutdown).await;
    if let Some(outcomes) = outcome_tasks {
        // Requests have drained (every answered one is in the spool): send
        // what the spool holds, within the drain timeout.
        outcomes.shutdown().await;
    }
    served
}

/// The routes, health names and descriptors of the scorer.
pub fn service_spec(engine: Engine, config: &ScoreConfig) -> triad_server::ServiceSpec {
    let inference = oip::GrpcInferenceServiceServer::new(oip::InferenceService::new(
        Arc::clone(engine.repository()),
        config.server.max_message_bytes,
    ))
    .max_decoding_message_size(config.server.max_message_bytes)
    .max_encoding_message_size(config.server.max_message_bytes);
    let scorer = ScorerServer::new(
        grpc::ScorerService::new(engine)
            .with_payload_log(payload::PayloadLog::new(&config.payload_log)),
    )
    .max_decoding_message_size(config.server.max_message_bytes)
    .max_encoding_message_size(config.server.max_message_bytes);
    triad_server::ServiceSpec {
        name: "score",
        routes: tonic::service::Routes::new(scorer).add_service(inference),
        health_names: vec![SERVICE_NAME, oip::SERVICE_NAME],
        descriptors: vec![
            triad_proto::FILE_DESCRIPTOR_SET,
            triad_proto::INFERENCE_FILE_DESCRIPTOR_SET,
        ],
    }
}
