//! Test support for the scorer: a model repository in a temporary
//! directory, a preprocess server that counts its calls, the scorer, and a
//! fake monitor, all on ephemeral loopback ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status, Streaming};
use triad_features::{FeatureSchema, Featurizer};
use triad_preprocess::{PreprocessConfig, PreprocessService};
use triad_proto::v1::preprocess_server::{Preprocess, PreprocessServer};
use triad_proto::v1::scorer_client::ScorerClient;
use triad_proto::v1::{self, FeaturizeRequest};
use triad_score::ScoreConfig;

/// Writes a logistic model version: `weights` by feature name.
pub(crate) fn write_logistic(
    root: &Path,
    name: &str,
    version: &str,
    intercept: f64,
    weights: &[(&str, f64)],
    threshold: f32,
    schema_hash: &str,
) -> PathBuf {
    let dir = root.join(name).join(version);
    std::fs::create_dir_all(&dir).unwrap();
    let features: Vec<String> = FeatureSchema::current().feature_names.clone();
    let meta = format!(
        "kind = \"logistic\"\nthreshold = {threshold}\ndescription = \"test model {name}\"\n\
         trained_at = \"2026-11-25T00:00:00Z\"\nfeatures = {features:?}\n\n\
         [schema]\nname = \"budget_expense_pairs\"\nversion = \"1\"\nhash = \"{schema_hash}\"\n\n\
         [metrics]\nprecision = 0.9\nrecall = 0.8\n"
    );
    std::fs::write(dir.join("model.toml"), meta).unwrap();
    let weights: serde_json::Map<String, serde_json::Value> = weights
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
        .collect();
    let model = serde_json::json!({ "intercept": intercept, "weights": weights });
    std::fs::write(dir.join("model.json"), model.to_string()).unwrap();
    dir
}

/// A preprocess service that counts the calls it serves.
#[derive(Clone)]
pub(crate) struct CountingPreprocess {
    inner: PreprocessService,
    pub calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl Preprocess for CountingPreprocess {
    async fn featurize(
        &self,
        request: Request<FeaturizeRequest>,
    ) -> Result<Response<v1::FeatureMatrix>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.featurize(request).await
    }

    type FeaturizeStreamStream = <PreprocessService as Preprocess>::FeaturizeStreamStream;

    async fn featurize_stream(
        &self,
        request: Request<Streaming<FeaturizeRequest>>,
    ) -> Result<Response<Self::FeaturizeStreamStream>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.featurize_stream(request).await
    }
}

/// Preprocess and scorer, running until [`Stack::stop`].
pub(crate) struct Stack {
    pub preprocess_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub preprocess_calls: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Stack {
    /// Starts both services; `models_dir` is the scorer's repository.
    pub(crate) async fn start(models_dir: &Path) -> Self {
        Self::start_with(models_dir, |_| {}).await
    }

    pub(crate) async fn start_with(
        models_dir: &Path,
        tweak: impl FnOnce(&mut ScoreConfig),
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let until = move |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let calls = Arc::new(AtomicUsize::new(0));
        let counting = CountingPreprocess {
            inner: PreprocessService::new(
                Arc::new(Featurizer::default()),
                PreprocessConfig::default(),
            ),
            calls: Arc::clone(&calls),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let preprocess_addr = listener.local_addr().unwrap();
        let spec = triad_server::ServiceSpec {
            name: "preprocess",
            routes: tonic::service::Routes::new(PreprocessServer::new(counting)),
            health_names: vec![triad_preprocess::SERVICE_NAME],
            descriptors: vec![triad_proto::FILE_DESCRIPTOR_SET],
        };
        let stopped_p = until(stopped.clone());
        let preprocess = tokio::spawn(async move {
            triad_server::serve(listener, spec, &Default::default(), stopped_p)
                .await
                .unwrap();
        });

        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
        let mut config = ScoreConfig {
            addr: grpc_addr,
            http_addr: Some(http_addr),
            preprocess: format!("http://{preprocess_addr}"),
            models_dir: models_dir.to_owned(),
            poll_interval: Duration::from_millis(50),
            ..ScoreConfig::default()
        };
        tweak(&mut config);
        let stopped_s = until(stopped.clone());
        let scorer = tokio::spawn(async move {
            triad_score::serve(grpc, Some(http), config, stopped_s)
                .await
                .unwrap();
        });
        let stack = Self {
            preprocess_addr,
            grpc_addr,
            http_addr,
            preprocess_calls: calls,
            stop,
            tasks: vec![preprocess, scorer],
        };
        for endpoint in [stack.scorer_endpoint(), format!("http://{preprocess_addr}")] {
            triad_test_support::wait_healthy(&endpoint).await;
        }
        stack
    }

    pub(crate) fn scorer_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    pub(crate) async fn scorer(&self) -> ScorerClient<tonic::transport::Channel> {
        ScorerClient::connect(self.scorer_endpoint()).await.unwrap()
    }

    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("servers stop")
                .unwrap();
        }
    }
}

/// A monitor that keeps what it receives in memory.
#[derive(Clone, Default)]
pub(crate) struct FakeMonitor {
    pub outcomes: Arc<tokio::sync::Mutex<Vec<v1::Outcome>>>,
    /// Per-item errors received, with the request they came from.
    pub errors: Arc<tokio::sync::Mutex<Vec<(String, v1::ItemError)>>>,
}

#[tonic::async_trait]
impl triad_proto::v1::monitor_server::Monitor for FakeMonitor {
    async fn record_outcomes(
        &self,
        request: Request<v1::RecordOutcomesRequest>,
    ) -> Result<Response<v1::RecordOutcomesResponse>, Status> {
        let request = request.into_inner();
        let stored = request.outcomes.len() as u64;
        self.outcomes.lock().await.extend(request.outcomes);
        let request_id = request.request_id;
        self.errors
            .lock()
            .await
            .extend(request.errors.into_iter().map(|e| (request_id.clone(), e)));
        Ok(Response::new(v1::RecordOutcomesResponse {
            stored,
            ..Default::default()
        }))
    }

    async fn record_outcomes_stream(
        &self,
        _request: Request<Streaming<v1::RecordOutcomesRequest>>,
    ) -> Result<Response<v1::RecordOutcomesResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn record_labels(
        &self,
        _request: Request<v1::RecordLabelsRequest>,
    ) -> Result<Response<v1::RecordLabelsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn query_metrics(
        &self,
        _request: Request<v1::QueryMetricsRequest>,
    ) -> Result<Response<v1::QueryMetricsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_mistakes(
        &self,
        _request: Request<v1::ListMistakesRequest>,
    ) -> Result<Response<v1::ListMistakesResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn anomalies(
        &self,
        _request: Request<v1::AnomaliesRequest>,
    ) -> Result<Response<v1::AnomaliesResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn record_events(
        &self,
        _request: Request<v1::RecordEventsRequest>,
    ) -> Result<Response<v1::RecordEventsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn query_events(
        &self,
        _request: Request<v1::QueryEventsRequest>,
    ) -> Result<Response<v1::QueryEventsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn drift(
        &self,
        _request: Request<v1::DriftRequest>,
    ) -> Result<Response<v1::DriftResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn query_threshold(
        &self,
        _request: Request<v1::QueryThresholdRequest>,
    ) -> Result<Response<v1::QueryThresholdResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn alerts(
        &self,
        _request: Request<v1::AlertsRequest>,
    ) -> Result<Response<v1::AlertsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// Serves `monitor` on `listener` until `stop` resolves.
pub(crate) fn serve_fake_monitor(
    listener: tokio::net::TcpListener,
    monitor: FakeMonitor,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    serve_fake_monitor_with_limit(listener, monitor, 64 << 20, stop)
}

/// [`serve_fake_monitor`] refusing messages over `max_message_bytes` (as
/// tonic does: `OUT_OF_RANGE`).
pub(crate) fn serve_fake_monitor_with_limit(
    listener: tokio::net::TcpListener,
    monitor: FakeMonitor,
    max_message_bytes: usize,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let spec = triad_server::ServiceSpec {
        name: "fake-monitor",
        routes: tonic::service::Routes::new(
            triad_proto::v1::monitor_server::MonitorServer::new(monitor)
                .max_decoding_message_size(max_message_bytes),
        ),
        health_names: vec![],
        descriptors: vec![],
    };
    tokio::spawn(async move {
        triad_server::serve(listener, spec, &Default::default(), stop)
            .await
            .unwrap();
    })
}
