//! The wire adapter of gRPC: the `triad.v1.Monitor` handlers, each a thin
//! call into the application layer ([`Monitor`]), which checks the request
//! and does the work; its errors become a `Status` in one place
//! (`conversions.rs`). A `RecordOutcomesStream` is summed here, message by
//! message.

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use triad_proto::v1::{
    AlertsRequest, AlertsResponse, AnomaliesRequest, AnomaliesResponse, DriftRequest,
    DriftResponse, ListMistakesRequest, ListMistakesResponse, QueryEventsRequest,
    QueryEventsResponse, QueryMetricsRequest, QueryMetricsResponse, RecordEventsRequest,
    RecordEventsResponse, RecordLabelsRequest, RecordLabelsResponse, RecordOutcomesRequest,
    RecordOutcomesResponse,
};
use triad_proto::v1::{QueryThresholdRequest, QueryThresholdResponse};

use crate::app::Monitor;
use crate::app::validate::MAX_REJECTIONS_LISTED;

/// Handlers of the monitor service.
#[derive(Debug, Clone)]
pub struct MonitorService {
    monitor: Monitor,
}

impl MonitorService {
    /// The handlers over `monitor`.
    pub fn new(monitor: Monitor) -> Self {
        Self { monitor }
    }
}

#[tonic::async_trait]
impl triad_proto::v1::monitor_server::Monitor for MonitorService {
    async fn record_outcomes(
        &self,
        request: Request<RecordOutcomesRequest>,
    ) -> Result<Response<RecordOutcomesResponse>, Status> {
        let request = request.get_ref();
        let response = self.monitor.record_outcomes(request, 0).await?;
        log_rejections("outcomes", rejected(request.outcomes.len(), &response));
        Ok(Response::new(response))
    }

    /// Each message is stored in its own transaction as it arrives; the
    /// answer sums them, rejections numbered across the whole stream and
    /// at most `MAX_REJECTIONS_LISTED` (1 000) of them listed (sent − stored −
    /// duplicates were rejected).
    async fn record_outcomes_stream(
        &self,
        request: Request<Streaming<RecordOutcomesRequest>>,
    ) -> Result<Response<RecordOutcomesResponse>, Status> {
        let mut messages = request.into_inner();
        let mut total = RecordOutcomesResponse::default();
        let mut index = 0_u32;
        let mut sent = 0_usize;
        while let Some(message) = messages.next().await {
            let message = message?;
            let response = self.monitor.record_outcomes(&message, index).await?;
            index = index.saturating_add(message.outcomes.len() as u32);
            sent = sent.saturating_add(message.outcomes.len());
            total.stored += response.stored;
            total.duplicates += response.duplicates;
            total.errors_stored += response.errors_stored;
            let room = MAX_REJECTIONS_LISTED.saturating_sub(total.rejected.len());
            total
                .rejected
                .extend(response.rejected.into_iter().take(room));
        }
        log_rejections("outcomes", rejected(sent, &total));
        Ok(Response::new(total))
    }

    async fn record_labels(
        &self,
        request: Request<RecordLabelsRequest>,
    ) -> Result<Response<RecordLabelsResponse>, Status> {
        let request = request.get_ref();
        let response = self.monitor.record_labels(request).await?;
        let stored = usize::try_from(response.stored).unwrap_or(usize::MAX);
        log_rejections("labels", request.labels.len().saturating_sub(stored));
        Ok(Response::new(response))
    }

    async fn query_metrics(
        &self,
        request: Request<QueryMetricsRequest>,
    ) -> Result<Response<QueryMetricsResponse>, Status> {
        Ok(Response::new(
            self.monitor.query_metrics(request.get_ref()).await?,
        ))
    }

    async fn list_mistakes(
        &self,
        request: Request<ListMistakesRequest>,
    ) -> Result<Response<ListMistakesResponse>, Status> {
        Ok(Response::new(
            self.monitor.list_mistakes(request.get_ref()).await?,
        ))
    }

    async fn anomalies(
        &self,
        request: Request<AnomaliesRequest>,
    ) -> Result<Response<AnomaliesResponse>, Status> {
        Ok(Response::new(
            self.monitor.anomalies(request.get_ref()).await?,
        ))
    }

    async fn record_events(
        &self,
        request: Request<RecordEventsRequest>,
    ) -> Result<Response<RecordEventsResponse>, Status> {
        let request = request.get_ref();
        let response = self.monitor.record_events(request).await?;
        let stored = usize::try_from(response.stored).unwrap_or(usize::MAX);
        log_rejections("events", request.events.len().saturating_sub(stored));
        Ok(Response::new(response))
    }

    async fn query_events(
        &self,
        request: Request<QueryEventsRequest>,
    ) -> Result<Response<QueryEventsResponse>, Status> {
        Ok(Response::new(
            self.monitor.query_events(request.get_ref()).await?,
        ))
    }

    async fn drift(
        &self,
        request: Request<DriftRequest>,
    ) -> Result<Response<DriftResponse>, Status> {
        Ok(Response::new(self.monitor.drift(request.get_ref()).await?))
    }

    async fn query_threshold(
        &self,
        request: Request<QueryThresholdRequest>,
    ) -> Result<Response<QueryThresholdResponse>, Status> {
        Ok(Response::new(
            self.monitor.query_threshold(request.get_ref()).await?,
        ))
    }

    async fn alerts(
        &self,
        request: Request<AlertsRequest>,
    ) -> Result<Response<AlertsResponse>, Status> {
        Ok(Response::new(self.monitor.alerts(request.get_ref()).await?))
    }
}

/// How many of `sent` outcomes `response` rejected (each one was stored,
/// a duplicate or rejected; the list may be cut).
fn rejected(sent: usize, response: &RecordOutcomesResponse) -> usize {
    let kept = response.stored.saturating_add(response.duplicates);
    sent.saturating_sub(usize::try_from(kept).unwrap_or(usize::MAX))
}

fn log_rejections(what: &'static str, n: usize) {
    if n > 0 {
        tracing::warn!(rejected = n, "{what} rejected");
    }
}
