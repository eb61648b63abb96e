//! The confusion counters summed per time bucket, for `QueryMetrics` and
//! `Anomalies`: never a scan of the raw outcomes.

use std::collections::BTreeMap;

use sqlx::Any;
use triad_features::MISSING_FLAG_FIELDS;
use triad_proto::v1::{
    AnomaliesRequest, AnomaliesResponse, MetricPoint, QueryMetricsRequest, QueryMetricsResponse,
};

use super::counters::{COUNT_COLUMNS, Counts, is_float_column};
use super::{Store, sql, validate};
use crate::buckets::{HOUR_MS, Range, Width, day_or_ms};
use crate::error::MonitorError;
use crate::quality::{self, ANOMALY_SPAN};

/// Which counters to sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountsFilter {
    pub model: String,
    /// `None`: every version.
    pub version: Option<String>,
    pub include_shadow: bool,
    /// Applied at hour resolution: the hours overlapping the range.
    pub range: Range,
    pub width: Width,
}

impl CountsFilter {
    fn from_wire(
        model: &str,
        version: &str,
        from_ms: i64,
        to_ms: i64,
        bucket: i32,
        include_shadow: bool,
    ) -> Result<Self, MonitorError> {
        validate::query_id("model", model, true)?;
        validate::query_id("version", version, false)?;
        Ok(Self {
            model: model.to_owned(),
            version: (!version.is_empty()).then(|| version.to_owned()),
            include_shadow,
            range: Range::from_wire(from_ms, to_ms)?,
            width: Width::from_wire(bucket)?,
        })
    }
}

impl Store {
    /// The summed counters of each bucket from the first to the last one
    /// holding outcomes, empty buckets included.
    pub async fn bucket_counts(
        &self,
        filter: &CountsFilter,
    ) -> Result<Vec<(i64, Counts)>, MonitorError> {
        let sums: Vec<String> = COUNT_COLUMNS
            .iter()
            .map(|c| {
                if is_float_column(c) {
                    format!("SUM({c})")
                } else {
                    format!("CAST(SUM({c}) AS BIGINT)")
                }
            })
            .collect();
        // Buckets are summed in SQL, grouped by their number (an
        // expression that cannot overflow on any stored hour); the
        // smallest hour of each group gives its start.
        let mut statement = format!(
            "SELECT {}, MIN(hour_ms), {} FROM confusion_counts WHERE model = $1",
            filter.width.sql_number("hour_ms"),
            sums.join(", ")
        );
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        if filter.version.is_some() {
            statement += &format!(" AND version = ${}", next());
        }
        if !filter.include_shadow {
            statement += " AND shadow = 0";
        }
        if filter.range.from_ms.is_some() {
            statement += &format!(" AND hour_ms > ${}", next());
        }
        if filter.range.to_ms.is_some() {
            statement += &format!(" AND hour_ms < ${}", next());
        }
        statement += " GROUP BY 1 ORDER BY 1";
        let statement = self.backend().sql(statement);
        let mut query = sqlx::query::<Any>(&statement).bind(filter.model.as_str());
        if let Some(version) = &filter.version {
            query = query.bind(version.as_str());
        }
        if let Some(from) = filter.range.from_ms {
            query = query.bind(from - HOUR_MS);
        }
        if let Some(to) = filter.range.to_ms {
            query = query.bind(to);
        }
        let rows = query.fetch_all(self.pool()).await?;

        // Columns: the bucket number, its first hour, then COUNT_COLUMNS:
        // eight counts, one null count per input field, four expected cells.
        const FIRST_NULL: usize = 10;
        const FIRST_EXPECTED: usize = FIRST_NULL + MISSING_FLAG_FIELDS.len();
        let mut buckets: BTreeMap<i64, Counts> = BTreeMap::new();
        for row in &rows {
            let start = filter.width.start(sql::int(row, 1)?);
            let mut c = Counts {
                outcomes: sql::int(row, 2)?,
                predicted_positive: sql::int(row, 3)?,
                labelled: sql::int(row, 4)?,
                tp: sql::int(row, 5)?,
                fp: sql::int(row, 6)?,
                fn_: sql::int(row, 7)?,
                tn: sql::int(row, 8)?,
                score_sum: sql::float(row, 9)?,
                nulls: [0; MISSING_FLAG_FIELDS.len()],
                expected_tp: sql::float(row, FIRST_EXPECTED)?,
                expected_fp: sql::float(row, FIRST_EXPECTED + 1)?,
                expected_fn: sql::float(row, FIRST_EXPECTED + 2)?,
                expected_tn: sql::float(row, FIRST_EXPECTED + 3)?,
            };
            for (i, n) in c.nulls.iter_mut().enumerate() {
                *n = sql::int(row, FIRST_NULL + i)?;
            }
            buckets.entry(start).or_default().add(&c);
        }
        let (Some(&first), Some(&last)) = (buckets.keys().next(), buckets.keys().next_back())
        else {
            return Ok(Vec::new());
        };
        let max = self.config().max_points;
        let points = filter.width.count(first, last).unwrap_or(usize::MAX);
        if points > max {
            return Err(MonitorError::TooManyPoints {
                points,
                max,
                first_day: day_or_ms(first),
                last_day: day_or_ms(last),
            });
        }
        // Every start lies between `first` and `last`: no overflow.
        let step = filter.width.millis();
        Ok((0..points as i64)
            .map(|i| {
                let start = first + i * step;
                (start, buckets.get(&start).copied().unwrap_or_default())
            })
            .collect())
    }

    async fn points(&self, filter: &CountsFilter) -> Result<Vec<MetricPoint>, MonitorError> {
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
    ) -> Result<QueryMetricsResponse, MonitorError> {
        let filter = CountsFilter::from_wire(
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
    ) -> Result<AnomaliesResponse, MonitorError> {
        let filter = CountsFilter::from_wire(
            &request.model,
            &request.version,
            request.from_ms,
            request.to_ms,
            request.bucket,
            request.include_shadow,
        )?;
        validate::query_id("metric", &request.metric, true)?;
        quality::validate_metric(&request.metric)?;
        let span = match request.span {
            0 => ANOMALY_SPAN,
            span => span as usize,
        };
        let k = if request.k == 0.0 {
            triad_series::DEFAULT_ANOMALY_K
        } else if request.k.is_finite() && request.k > 0.0 {
            request.k
        } else {
            return Err(MonitorError::InvalidParameter {
                field: "k",
                got: request.k,
            });
        };
        let points = self.points(&filter).await?;
        Ok(quality::anomalies(&points, &request.metric, span, k))
    }
}
