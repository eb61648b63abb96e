//! The `triad.v1.Preprocess` gRPC handlers: validate the request's size,
//! featurize, and convert the matrix to its wire form.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use triad_features::{FeatureMatrix, Featurizer, RawRequest};
use triad_proto::convert::{matrix_chunks, matrix_to_proto};
use triad_proto::v1::preprocess_server::Preprocess;
use triad_proto::v1::{self, FeaturizeRequest};

use crate::config::PreprocessConfig;
use crate::error::PreprocessError;

/// Handlers of the preprocess service.
#[derive(Debug, Clone)]
pub struct PreprocessService {
    featurizer: Arc<Featurizer>,
    config: PreprocessConfig,
}

impl PreprocessService {
    /// A service featurizing with `featurizer` under `config`'s limits.
    pub fn new(featurizer: Arc<Featurizer>, config: PreprocessConfig) -> Self {
        Self { featurizer, config }
    }

    fn check_pairs(
        budgets: usize,
        items: usize,
        limit: usize,
        hint: &'static str,
    ) -> Result<(), PreprocessError> {
        let pairs = budgets.saturating_mul(items);
        if pairs > limit {
            return Err(PreprocessError::TooManyPairs {
                budgets,
                items,
                pairs,
                limit,
                hint,
            });
        }
        Ok(())
    }

    /// Featurizes inline for small requests and on the blocking pool for
    /// large ones.
    async fn featurize(&self, request: RawRequest) -> Result<FeatureMatrix, PreprocessError> {
        let pairs = request.budgets.len() * request.all_user_expense_lineitems.len();
        if pairs <= self.config.blocking_threshold_pairs {
            return Ok(self.featurizer.featurize(&request));
        }
        let featurizer = Arc::clone(&self.featurizer);
        Ok(tokio::task::spawn_blocking(move || featurizer.featurize(&request)).await?)
    }
}

type MatrixStream = Pin<Box<dyn Stream<Item = Result<v1::FeatureMatrix, Status>> + Send>>;

#[tonic::async_trait]
impl Preprocess for PreprocessService {
    async fn featurize(
        &self,
        request: Request<FeaturizeRequest>,
    ) -> Result<Response<v1::FeatureMatrix>, Status> {
        let request_id = triad_telemetry::request_id(&request);
        let request = request.into_inner();
        Self::check_pairs(
            request.budgets.len(),
            request.all_user_expense_lineitems.len(),
            self.config.max_pairs,
            "; send larger batches with FeaturizeStream",
        )?;
        let matrix = self.featurize(request.into()).await?;
        tracing::debug!(
            rows = matrix.n_rows,
            item_errors = matrix.errors.len(),
            "featurized"
        );
        Ok(Response::new(matrix_to_proto(matrix, &request_id)))
    }

    type FeaturizeStreamStream = MatrixStream;

    async fn featurize_stream(
        &self,
        request: Request<Streaming<FeaturizeRequest>>,
    ) -> Result<Response<Self::FeaturizeStreamStream>, Status> {
        let request_id = triad_telemetry::request_id(&request);
        let mut chunks = request.into_inner();
        let mut whole = RawRequest::default();
        let limit = self.config.max_stream_pairs;
        while let Some(chunk) = chunks.next().await {
            let chunk = RawRequest::from(chunk?);
            whole.budgets.extend(chunk.budgets);
            whole
                .all_user_expense_lineitems
                .extend(chunk.all_user_expense_lineitems);
            // Refuse as soon as the limit is passed, before buffering more.
            Self::check_pairs(
                whole.budgets.len(),
                whole.all_user_expense_lineitems.len(),
                limit,
                "",
            )?;
        }
        let matrix = self.featurize(whole).await?;
        tracing::debug!(
            rows = matrix.n_rows,
            item_errors = matrix.errors.len(),
            "featurized stream"
        );
        let messages = matrix_chunks(matrix, &request_id, self.config.rows_per_chunk);
        Ok(Response::new(Box::pin(tokio_stream::iter(
            messages.into_iter().map(Ok),
        ))))
    }
}
