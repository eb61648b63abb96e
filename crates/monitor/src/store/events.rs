//! Business events: stored as they come, summarized per bucket as count,
//! median and 90th percentile of their durations.

use std::collections::BTreeMap;

use sqlx::Any;
use triad_proto::v1::{
    EventPoint, QueryEventsRequest, QueryEventsResponse, RecordEventsRequest, RecordEventsResponse,
    Rejection,
};
use triad_series::{Lerp, quantile};

use super::{Store, sql, validate};
use crate::buckets::{Range, Width, day_or_ms, now_ms};
use crate::error::MonitorError;

/// When `event` happened (0: `now`), or why it cannot be stored.
fn check(event: &triad_proto::v1::Event, now: i64) -> Result<i64, String> {
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

impl Store {
    /// Stores business events (`RecordEvents`).
    pub async fn record_events(
        &self,
        request: &RecordEventsRequest,
    ) -> Result<RecordEventsResponse, MonitorError> {
        let now = now_ms();
        let mut response = RecordEventsResponse::default();
        let mut valid = Vec::with_capacity(request.events.len());
        for (i, event) in request.events.iter().enumerate() {
            match check(event, now) {
                Ok(at) => valid.push((event, at)),
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
        let mut writer = self.writer().await?;
        for chunk in valid.chunks(self.rows_per_statement() * 6) {
            let statement = writer.backend.sql(format!(
                "INSERT INTO events (name, duration_ms, occurred_at_ms, request_id, received_at_ms) \
                 VALUES {}",
                sql::values(writer.backend, chunk.len(), 5, 1)
            ));
            let mut query = sqlx::query::<Any>(&statement);
            for (event, at) in chunk {
                query = query
                    .bind(event.name.as_str())
                    .bind(event.duration_ms)
                    .bind(*at)
                    .bind(event.request_id.as_str())
                    .bind(now);
            }
            response.stored += query.execute(&mut *writer.tx).await?.rows_affected();
        }
        writer.tx.commit().await?;
        Ok(response)
    }

    /// Count, median and p90 of one event's durations per bucket, for the
    /// buckets holding events (`QueryEvents`).
    pub async fn query_events(
        &self,
        request: &QueryEventsRequest,
    ) -> Result<QueryEventsResponse, MonitorError> {
        validate::query_id("name", &request.name, true)?;
        let range = Range::from_wire(request.from_ms, request.to_ms)?;
        let width = Width::from_wire(request.bucket)?;
        let mut statement =
            "SELECT occurred_at_ms, duration_ms FROM events WHERE name = $1".to_owned();
        let mut n = 1;
        if range.from_ms.is_some() {
            n += 1;
            statement += &format!(" AND occurred_at_ms >= ${n}");
        }
        if range.to_ms.is_some() {
            n += 1;
            statement += &format!(" AND occurred_at_ms < ${n}");
        }
        let statement = self.backend().sql(statement);
        let mut query = sqlx::query::<Any>(&statement).bind(request.name.as_str());
        if let Some(from) = range.from_ms {
            query = query.bind(from);
        }
        if let Some(to) = range.to_ms {
            query = query.bind(to);
        }
        let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for row in query.fetch_all(self.pool()).await? {
            let at = sql::int(&row, 0)?;
            buckets
                .entry(width.start(at))
                .or_default()
                .push(sql::float(&row, 1)?);
        }
        let max = self.config().max_points;
        if buckets.len() > max {
            let day = |start: Option<&i64>| start.copied().map(day_or_ms).unwrap_or_default();
            return Err(MonitorError::TooManyPoints {
                points: buckets.len(),
                max,
                first_day: day(buckets.keys().next()),
                last_day: day(buckets.keys().next_back()),
            });
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
