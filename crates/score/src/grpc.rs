//! The `triad.v1.Scorer` gRPC handlers: read the selection, call the engine.

use tonic::{Request, Response, Status};
use triad_proto::v1::scorer_server::Scorer;
use triad_proto::v1::{self, FeaturizeRequest};

use triad_telemetry::RequestIds;

use crate::engine::{Engine, Selection};
use crate::outcomes::request_identity;
use crate::payload::{PayloadLog, score_response_json};

/// Handlers of the scorer service.
#[derive(Debug, Clone)]
pub struct ScorerService {
    engine: Engine,
    payload: PayloadLog,
}

impl ScorerService {
    /// Handlers over `engine`, without payload logging.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            payload: PayloadLog::disabled(),
        }
    }

    /// Logs each `Score` call's input and output, redacted.
    pub fn with_payload_log(mut self, payload: PayloadLog) -> Self {
        self.payload = payload;
        self
    }
}

#[tonic::async_trait]
impl Scorer for ScorerService {
    async fn score(
        &self,
        request: Request<v1::ScoreRequest>,
    ) -> Result<Response<v1::ScoreResponse>, Status> {
        let ids = RequestIds::of(&request);
        let request = request.into_inner();
        // 0 means now; any other time is checked by the engine.
        let occurred_at_ms = (request.occurred_at_ms != 0).then_some(request.occurred_at_ms);
        let ids = RequestIds {
            request_id: request_identity(&ids, occurred_at_ms, &request),
            ..ids
        };
        let request_id = ids.request_id.as_str();
        let selection = Selection {
            models: request.models,
            versions: request.versions.into_iter().collect(),
            occurred_at_ms,
            explain: request.explain,
        };
        let features = FeaturizeRequest {
            budgets: request.budgets,
            all_user_expense_lineitems: request.all_user_expense_lineitems,
        };
        self.payload.log("grpc", "input", request_id, || {
            let raw: triad_features::RawRequest = features.clone().into();
            serde_json::to_value(raw).ok()
        });
        let response = self.engine.score(features, &selection, &ids).await?;
        self.payload.log("grpc", "output", request_id, || {
            Some(score_response_json(&response))
        });
        tracing::debug!(
            request_id,
            rows = response.keys.len(),
            models = response.results.len(),
            item_errors = response.errors.len(),
            "scored"
        );
        Ok(Response::new(response))
    }

    async fn score_matrix(
        &self,
        request: Request<v1::ScoreMatrixRequest>,
    ) -> Result<Response<v1::ScoreResponse>, Status> {
        let ids = RequestIds::of(&request);
        let request = request.into_inner();
        let matrix = request
            .matrix
            .ok_or_else(|| Status::invalid_argument("expected a matrix, got none"))?;
        let selection = Selection {
            models: request.models,
            versions: request.versions.into_iter().collect(),
            occurred_at_ms: None,
            explain: request.explain,
        };
        let response = self.engine.score_matrix(matrix, &selection, &ids).await?;
        Ok(Response::new(response))
    }

    async fn list_models(
        &self,
        _request: Request<v1::ListModelsRequest>,
    ) -> Result<Response<v1::ListModelsResponse>, Status> {
        Ok(Response::new(self.engine.list_models()))
    }
}
