//! Business events: `RecordEvents` checks and stores them as they come;
//! `QueryEvents` summarizes one event's durations per bucket as count,
//! median and 90th percentile.

use std::collections::BTreeMap;

use triad_proto::v1::{
    Event, EventPoint, QueryEventsRequest, QueryEventsResponse, RecordEventsRequest,
    RecordEventsResponse, Rejection,
};
use triad_series::{Lerp, quantile};

use super::Monitor;
use super::error::{AppError, RequestError};
use super::validate;
use crate::buckets::{day_or_ms, now_ms};
use crate::store::NewEvent;

/// When `event` happened (0: `now`), or why it cannot be stored.
fn check(event: &Event, now: i64) -> Result<i64, String> {
    validate::item_id("name", &event.name, true)?;
    validate::item_id("request_id", &event.request_id, false)?;
    if !event.duration_ms.is_finite() || event.duration_ms < 0.0 {
        return Err(format!(
            "duration_ms is {}: expected a finite number >= 0",
            event.duration_ms
        ));
    }
    validate::event_time("occurred_at_ms", event.occurred_at_ms, now)
}

impl Monitor {
    /// Stores business events (`RecordEvents`).
    pub async fn record_events(
        &self,
        request: &RecordEventsRequest,
    ) -> Result<RecordEventsResponse, AppError> {
        let now = now_ms();
        let mut response = RecordEventsResponse::default();
        let mut valid = Vec::with_capacity(request.events.len());
        for (i, event) in request.events.iter().enumerate() {
            match check(event, now) {
                Ok(occurred_at_ms) => valid.push(NewEvent {
                    name: &event.name,
                    duration_ms: event.duration_ms,
                    occurred_at_ms,
                    request_id: &event.request_id,
                }),
                Err(reason) => validate::list_rejection(
                    &mut response.rejected,
                    Rejection {
                        index: i as u32,
                        id: String::new(),
                        reason,
                    },
                ),
            }
        }
        if valid.is_empty() {
            return Ok(response);
        }
        response.stored = self.store().insert_events(&valid, now).await?;
        Ok(response)
    }

    /// Count, median and p90 of one event's durations per bucket, for the
    /// buckets holding events (`QueryEvents`).
    pub async fn query_events(
        &self,
        request: &QueryEventsRequest,
    ) -> Result<QueryEventsResponse, AppError> {
        validate::query_id("name", &request.name, true)?;
        let range = validate::range(request.from_ms, request.to_ms)?;
        let width = validate::width(request.bucket)?;
        let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for (at, duration) in self.store().event_durations(&request.name, &range).await? {
            buckets.entry(width.start(at)).or_default().push(duration);
        }
        let max = self.store().config().max_points;
        if buckets.len() > max {
            let day = |start: Option<&i64>| start.copied().map(day_or_ms).unwrap_or_default();
            return Err(RequestError::TooManyPoints {
                points: buckets.len(),
                max,
                first_day: day(buckets.keys().next()),
                last_day: day(buckets.keys().next_back()),
            }
            .into());
        }
        let points = buckets
            .into_iter()
            .map(|(start, mut durations)| {
                durations.sort_by(f64::total_cmp);
                EventPoint {
                    bucket_start_ms: start,
                    count: durations.len() as u64,
                    median_ms: quantile(&durations, 0.5, Lerp::FromLower),
                    p90_ms: quantile(&durations, 0.9, Lerp::FromLower),
                }
            })
            .collect();
        Ok(QueryEventsResponse { points })
    }
}
