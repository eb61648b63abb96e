//! `QueryMetrics` and `Anomalies`: the hourly confusion counters summed per
//! bucket by the store, every bucket from the first to the last one holding
//! outcomes, turned into points and series by [`quality`](super::quality).

use triad_proto::v1::{
    AnomaliesRequest, AnomaliesResponse, MetricPoint, QueryMetricsRequest, QueryMetricsResponse,
};

use super::Monitor;
use super::error::{AppError, RequestError};
use super::quality::{self, ANOMALY_SPAN};
use super::validate;
use crate::buckets::day_or_ms;
use crate::store::{Counts, CountsFilter};

/// The counters a `QueryMetrics` or `Anomalies` request asks for.
fn counts_filter(
    model: &str,
    version: &str,
    from_ms: i64,
    to_ms: i64,
    bucket: i32,
    include_shadow: bool,
) -> Result<CountsFilter, RequestError> {
    validate::query_id("model", model, true)?;
    validate::query_id("version", version, false)?;
    Ok(CountsFilter {
        model: model.to_owned(),
        version: (!version.is_empty()).then(|| version.to_owned()),
        include_shadow,
        range: validate::range(from_ms, to_ms)?,
        width: validate::width(bucket)?,
    })
}

impl Monitor {
    /// The summed counters of each bucket from the first to the last one
    /// holding outcomes, empty buckets included; refused when that is more
    /// than the store's `max_points`.
    async fn bucket_counts(&self, filter: &CountsFilter) -> Result<Vec<(i64, Counts)>, AppError> {
        let buckets = self.store().bucket_counts(filter).await?;
        let (Some(&(first, _)), Some(&(last, _))) = (buckets.first(), buckets.last()) else {
            return Ok(Vec::new());
        };
        let max = self.store().config().max_points;
        let points = filter.width.count(first, last).unwrap_or(usize::MAX);
        if points > max {
            return Err(RequestError::TooManyPoints {
                points,
                max,
                first_day: day_or_ms(first),
                last_day: day_or_ms(last),
            }
            .into());
        }
        // Every start lies between `first` and `last`: no overflow.
        let step = filter.width.millis();
        let mut held = buckets.into_iter().peekable();
        Ok((0..points as i64)
            .map(|i| {
                let start = first + i * step;
                let counts = held.next_if(|&(held, _)| held == start).map(|(_, c)| c);
                (start, counts.unwrap_or_default())
            })
            .collect())
    }

    async fn points(&self, filter: &CountsFilter) -> Result<Vec<MetricPoint>, AppError> {
        Ok(self
            .bucket_counts(filter)
            .await?
            .iter()
            .map(|(start, counts)| quality::point(*start, counts))
            .collect())
    }

    /// Precision and recall over time with their derived series
    /// (`QueryMetrics`).
    pub async fn query_metrics(
        &self,
        request: &QueryMetricsRequest,
    ) -> Result<QueryMetricsResponse, AppError> {
        let filter = counts_filter(
            &request.model,
            &request.version,
            request.from_ms,
            request.to_ms,
            request.bucket,
            request.include_shadow,
        )?;
        let points = self.points(&filter).await?;
        let series = quality::derived_series(&points);
        Ok(QueryMetricsResponse { points, series })
    }

    /// EWMA anomaly flags and change points of one metric (`Anomalies`).
    pub async fn anomalies(
        &self,
        request: &AnomaliesRequest,
    ) -> Result<AnomaliesResponse, AppError> {
        let filter = counts_filter(
            &request.model,
            &request.version,
            request.from_ms,
            request.to_ms,
            request.bucket,
            request.include_shadow,
        )?;
        validate::query_id("metric", &request.metric, true)?;
        validate::metric(&request.metric)?;
        let span = match request.span {
            0 => ANOMALY_SPAN,
            span => span as usize,
        };
        let k = if request.k == 0.0 {
            triad_series::DEFAULT_ANOMALY_K
        } else if request.k.is_finite() && request.k > 0.0 {
            request.k
        } else {
            return Err(RequestError::InvalidParameter {
                field: "k",
                got: request.k,
            }
            .into());
        };
        let points = self.points(&filter).await?;
        Ok(quality::anomalies(&points, &request.metric, span, k))
    }
}
