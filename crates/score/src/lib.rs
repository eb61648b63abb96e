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
use tokio::sync::watch;
use triad_features::{FeatureSchema, JsonLimits};
use triad_proto::v1::scorer_server::ScorerServer;

pub use config::ScoreConfig;
pub use engine::{Engine, FeatureSource, Selection};
pub use error::ScoreError;
pub use repository::Repository;

/// Fully-qualified gRPC name of the service, as health reports it.
pub const SERVICE_NAME: &str = "triad.v1.Scorer";

/// Failures starting or running the scorer.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The model repository cannot be read.
    #[error(transparent)]
    Repository(#[from] repository::RepositoryError),
    /// The channel to preprocess cannot be set up.
    #[error(transparent)]
    Endpoint(#[from] triad_server::client::ClientError),
    /// The outcome publisher cannot start.
    #[error(transparent)]
    Outcomes(#[from] outcomes::OutcomeError),
    /// The gRPC server (or its security settings) failed.
    #[error(transparent)]
    Server(#[from] triad_server::ServerError),
    /// The HTTP server failed.
    #[error("http server failed: {0}")]
    Http(std::io::Error),
    /// A task of the scorer (opening or watching the repository, serving
    /// HTTP) panicked or was cancelled.
    #[error("model repository task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Opens the model repository named by `config` (only the models it lists,
/// when it lists any), off the async threads.
pub async fn open_repository(config: &ScoreConfig) -> Result<Arc<Repository>, ServeError> {
    let dir = config.models_dir.clone();
    let pins = config.pins.clone();
    let only = config.models.clone();
    let repository = tokio::task::spawn_blocking(move || {
        Repository::open_filtered(&dir, FeatureSchema::current(), pins, only)
    })
    .await??;
    Ok(Arc::new(repository))
}

/// Serves gRPC on `grpc` and, when given, the seed's HTTP contract on
/// `http`, until `shutdown` resolves; the repository is polled for changes
/// meanwhile.
pub async fn serve(
    grpc: TcpListener,
    http: Option<TcpListener>,
    config: ScoreConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
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
        .await?;
        tracing::info!(monitor = %monitor, "sending outcomes to the monitor");
        outcome_tasks = Some(tasks);
        engine = engine.with_outcomes(publisher);
    }

    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });

    let watcher =
        tokio::spawn(Arc::clone(&repository).watch(config.poll_interval, until_stopped()));
    let http_task = http.map(|listener| {
        let router = http::router(http::HttpState {
            engine: engine.clone(),
            model: config.http_model.clone(),
            limits: JsonLimits::default(),
            payload: payload::PayloadLog::new(&config.payload_log),
        })
        .merge(triad_telemetry::metrics::router());
        tokio::spawn(triad_server::serve_http_with(
            listener,
            router,
            &config.server,
            &secured,
            until_stopped(),
        ))
    });
    let grpc_result = triad_server::serve_secured(
        grpc,
        service_spec(engine, &config),
        &config.server,
        &secured,
        until_stopped(),
    )
    .await;
    let watched = watcher.await;
    let http_result = match http_task {
        Some(task) => task.await,
        None => Ok(Ok(())),
    };
    if let Some(tasks) = outcome_tasks {
        // Requests have drained (every answered one is in the spool): send
        // what the spool holds, within the drain timeout.
        tasks.shutdown().await;
    }
    watched?;
    http_result?.map_err(ServeError::Http)?;
    grpc_result?;
    Ok(())
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
