//! The monitor's HTTP dashboard: server-rendered HTML with inline SVG
//! charts, no JavaScript and no external assets.
//!
//! - `GET /` lists the models with outcomes;
//! - `GET /models/{name}?days=30&bucket=day&version=` shows one model over
//!   the last `days` days (from the start of the bucket holding
//!   `now - days` to now), in `hour`, `day` or `week` buckets, for one
//!   version or every primary version.
//!
//! The window always ends now (plus the accepted clock skew): outcomes
//! dated later can only have been stored before the monitor refused times
//! in the future; the page leaves them out and says how many there are
//! and how to find them, rather than stretching its charts over the years
//! between now and then.
//!
//! Bad query parameters answer 400 with a message, an unknown model or
//! version 404, a storage failure 500 (503 when no connection is free).
//! A message quotes at most 64 characters of any value from the request
//! ([`triad_server::quote`]).
//! The wire adapter of HTTP: the handlers parse the query string and call
//! the application layer ([`Monitor`]) only, the same operations the gRPC
//! handlers call; `page.rs` renders, `svg.rs` draws.

pub(crate) mod alerts;
mod explain;
pub(crate) mod page;
pub(crate) mod svg;
pub(crate) mod threshold;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use triad_proto::v1::{
    Bucket, DerivedSeries, EventPoint, ListMistakesRequest, MetricPoint, Mistake,
    QueryEventsRequest, QueryMetricsRequest,
};
use triad_series::DEFAULT_ANOMALY_K;

use triad_server::{quote, quote_list};

use crate::app::quality::ANOMALY_SPAN;
use crate::app::{
    AppError, Confusion, DEFAULT_BINS, HistogramFilter, ModelSummary, Monitor, ScoreHistogram,
    validate,
};
use crate::buckets::{DAY_MS, HOUR_MS, Range, Width, now_ms};

/// Days shown when the query does not say.
pub(crate) const DEFAULT_DAYS: u32 = 30;
/// Most days one page may cover (ten years).
pub(crate) const MAX_DAYS: u32 = 3_660;
/// Mistakes listed on a model page.
pub(crate) const MISTAKES_SHOWN: u32 = 25;
/// Most business events a model page charts (the most frequent of its
/// window).
pub(crate) const EVENTS_SHOWN: u32 = 5;
/// Seconds a page may ask to wait before reloading itself (`?refresh=N`):
/// no faster than every 5 s (each reload reruns the page's queries), no
/// slower than hourly.
pub(crate) const REFRESH_SECONDS: std::ops::RangeInclusive<u32> = 5..=3_600;
/// `k` of the EWMA band: the anomaly flags' (robust standard deviations).
pub(crate) const BAND_K: f64 = DEFAULT_ANOMALY_K;

/// The dashboard's routes over `monitor`.
pub(crate) fn router(monitor: Monitor) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/models/{name}", get(model_page))
        .with_state(monitor)
}

/// A failed page: its status and a message for a person. A failed
/// operation of the application layer becomes one in `conversions.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageError {
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// What went wrong, shown on the error page.
    pub message: String,
}

impl PageError {
    fn bad_request(message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (
            self.status,
            Html(page::error_page(self.status, &self.message)),
        )
            .into_response()
    }
}

/// The validated query of a model page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PageQuery {
    pub days: u32,
    pub width: Width,
    /// `None`: every primary version.
    pub version: Option<String>,
    /// Seconds between reloads of the page (`?refresh=N`, opt-in);
    /// `None`: the page never reloads itself.
    pub refresh: Option<u32>,
    /// A threshold to evaluate in the "Threshold trade-offs" section
    /// (`?threshold=0.4`, in `[0, 1]`).
    pub threshold: Option<f64>,
}

impl Default for PageQuery {
    fn default() -> Self {
        Self {
            days: DEFAULT_DAYS,
            width: Width::Day,
            version: None,
            refresh: None,
            threshold: None,
        }
    }
}

/// The query-string name of a bucket width.
pub(crate) fn width_name(width: Width) -> &'static str {
    match width {
        Width::Hour => "hour",
        Width::Day => "day",
        Width::Week => "week",
    }
}

fn width_wire(width: Width) -> Bucket {
    match width {
        Width::Hour => Bucket::Hour,
        Width::Day => Bucket::Day,
        Width::Week => Bucket::Week,
    }
}

impl PageQuery {
    /// Validates the query string's pairs; a repeated or unknown
    /// parameter is refused too.
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Self, PageError> {
        let mut query = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in pairs {
            if seen.contains(&name.as_str()) {
                return Err(PageError::bad_request(format!(
                    "{} is given twice: expected it at most once",
                    quote(name)
                )));
            }
            seen.push(name);
            match name.as_str() {
                "days" => {
                    query.days = value
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|d| (1..=MAX_DAYS).contains(d))
                        .ok_or_else(|| {
                            PageError::bad_request(format!(
                                "days is {}: expected a whole number of days from 1 to {MAX_DAYS}",
                                quote(value)
                            ))
                        })?;
                }
                "bucket" => {
                    query.width = match value.as_str() {
                        "hour" => Width::Hour,
                        "day" => Width::Day,
                        "week" => Width::Week,
                        _ => {
                            return Err(PageError::bad_request(format!(
                                "bucket is {}: expected hour, day or week",
                                quote(value)
                            )));
                        }
                    };
                }
                "version" => {
                    query.version = (!value.is_empty()).then(|| value.clone());
                }
                "refresh" => query.refresh = Some(parse_refresh(value)?),
                "threshold" => query.threshold = Some(threshold::parse_threshold(value)?),
                _ => {
                    return Err(PageError::bad_request(format!(
                        "unknown query parameter {}: expected days, bucket, version, refresh or threshold",
                        quote(name)
                    )));
                }
            }
        }
        Ok(query)
    }
}

/// The seconds of a `refresh` query parameter, within [`REFRESH_SECONDS`].
fn parse_refresh(value: &str) -> Result<u32, PageError> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|s| REFRESH_SECONDS.contains(s))
        .ok_or_else(|| {
            PageError::bad_request(format!(
                "refresh is {}: expected a whole number of seconds from {} to {}",
                quote(value),
                REFRESH_SECONDS.start(),
                REFRESH_SECONDS.end()
            ))
        })
}

/// Everything a model page shows, loaded once.
#[derive(Debug, Clone)]
pub(crate) struct ModelView {
    pub model: String,
    pub query: PageQuery,
    pub summary: ModelSummary,
    /// Start of the range.
    pub from_ms: i64,
    pub now_ms: i64,
    /// End of the range (excluded): now plus the accepted clock skew.
    pub to_ms: i64,
    /// How many outcomes of the model (any version) lie in the hours
    /// starting at or after `to_ms`, and the start of the last such hour:
    /// stored before the monitor refused times in the future, they are
    /// left out of the page.
    pub future: Option<(i64, i64)>,
    /// Whether the version shown is a shadow one (then its shadow
    /// outcomes are included).
    pub include_shadow: bool,
    pub points: Vec<MetricPoint>,
    pub series: Vec<DerivedSeries>,
    pub mistakes: Vec<Mistake>,
    /// Whether more mistakes lie in the range than are listed.
    pub more_mistakes: bool,
    pub histogram: ScoreHistogram,
    /// Drift of the newest outcomes of the range against the model's
    /// reference profile.
    pub drift: triad_proto::v1::DriftResponse,
    /// The window's most frequent business events ([`EVENTS_SHOWN`]) and
    /// their duration per bucket (`QueryEvents`).
    pub events: Vec<(String, Vec<EventPoint>)>,
    /// `QueryThreshold` over the window ([`threshold`]).
    pub threshold: triad_proto::v1::QueryThresholdResponse,
}

impl ModelView {
    /// A derived series of `QueryMetrics` by name, when it has one value
    /// per point.
    pub(crate) fn derived(&self, name: &str) -> Option<&[f64]> {
        self.series
            .iter()
            .find(|s| s.name == name && s.values.len() == self.points.len())
            .map(|s| s.values.as_slice())
    }

    /// The buckets flagged by `<metric>.anomaly`.
    pub(crate) fn anomalies(&self, metric: &str) -> Vec<usize> {
        self.derived(&format!("{metric}.anomaly"))
            .map(|flags| {
                flags
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| **f >= 0.5)
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The EWMA (span [`ANOMALY_SPAN`]) of `values`, from the derived
    /// series when `QueryMetrics` gave it, else computed.
    pub(crate) fn ewma(&self, metric: &str, values: &[f64]) -> Vec<f64> {
        match self.derived(&format!("{metric}.ewma_{ANOMALY_SPAN}")) {
            Some(ewma) => ewma.to_vec(),
            None => triad_series::ewma(values, ANOMALY_SPAN)
                .unwrap_or_else(|_| vec![f64::NAN; values.len()]),
        }
    }
}

/// The index; of its query string only `refresh` is read.
async fn index(
    State(monitor): State<Monitor>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Html<String>, PageError> {
    let refresh = match pairs.iter().find(|(name, _)| name == "refresh") {
        Some((_, value)) => Some(parse_refresh(value)?),
        None => None,
    };
    let now = now_ms();
    let (models, recent, banner) = tokio::try_join!(
        monitor.list_models(),
        monitor.recent_confusion(now),
        firing_banner(&monitor, "")
    )?;
    let recent: HashMap<String, Confusion> = recent.into_iter().collect();
    let page = page::index(&models, &recent, now, refresh);
    Ok(Html(alerts::with_banner(page, &banner)))
}

async fn model_page(
    State(monitor): State<Monitor>,
    Path(model): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Html<String>, PageError> {
    let query = PageQuery::parse(&pairs)?;
    let view = load(&monitor, model, query).await?;
    let banner = firing_banner(&monitor, &view.model).await?;
    Ok(Html(alerts::with_banner(page::model(&view), &banner)))
}

/// The banner of the alerts firing now, of `model` (empty: every model).
async fn firing_banner(monitor: &Monitor, model: &str) -> Result<String, AppError> {
    let request = triad_proto::v1::AlertsRequest {
        model: model.to_owned(),
        page_size: alerts::ALERTS_SHOWN as u32,
        ..Default::default()
    };
    let (firing, count) =
        tokio::try_join!(monitor.alerts(&request), monitor.firing_alert_count(model))?;
    Ok(alerts::banner(&firing.alerts, count))
}

/// Versions named in a "no such version" message.
const VERSIONS_NAMED: usize = 10;

/// The end of a page's window opened at `now`: every outcome accepted
/// until then was scored before it ([`triad_proto::time::check_event_time`]).
pub(crate) fn window_end(now: i64) -> i64 {
    now.saturating_add(triad_proto::time::MAX_CLOCK_SKEW_MS + 1)
}

/// Loads a model page's data, or 404 for an unknown model or version.
pub(crate) async fn load(
    monitor: &Monitor,
    model: String,
    query: PageQuery,
) -> Result<ModelView, PageError> {
    let not_found = |message: String| PageError {
        status: StatusCode::NOT_FOUND,
        message,
    };
    let no_model = || {
        not_found(format!(
            "model {} has no outcome: expected one of the models on /",
            quote(&model)
        ))
    };
    // No other name can have been stored.
    if validate::query_id("model", &model, true).is_err() {
        return Err(no_model());
    }
    let Some(summary) = monitor.model_summary(&model).await? else {
        return Err(no_model());
    };
    let include_shadow = match &query.version {
        None => false,
        Some(version) => {
            let mut matching = summary.versions.iter().filter(|v| &v.version == version);
            let Some(first) = matching.next() else {
                return Err(not_found(format!(
                    "model {} has no version {}: expected one of {}",
                    quote(&model),
                    quote(version),
                    quote_list(
                        summary.versions.iter().map(|v| v.version.as_str()),
                        VERSIONS_NAMED
                    )
                )));
            };
            first.shadow || matching.any(|v| v.shadow)
        }
    };
    let now = now_ms();
    let from_ms = query
        .width
        .start(now - i64::from(query.days) * DAY_MS)
        .max(0);
    let to_ms = window_end(now);
    let version = query.version.clone().unwrap_or_default();
    let quality_request = QueryMetricsRequest {
        model: model.clone(),
        version: version.clone(),
        from_ms,
        to_ms,
        bucket: width_wire(query.width).into(),
        include_shadow,
    };
    let mistakes_request = ListMistakesRequest {
        model: model.clone(),
        version,
        from_ms,
        to_ms,
        page_size: MISTAKES_SHOWN,
        include_shadow,
        ..ListMistakesRequest::default()
    };
    let quality = monitor.query_metrics(&quality_request);
    let mistakes = monitor.list_mistakes(&mistakes_request);
    let filter = HistogramFilter {
        model: model.clone(),
        version: query.version.clone(),
        include_shadow,
        range: Range {
            from_ms: Some(from_ms),
            to_ms: Some(to_ms),
        },
    };
    let histogram = monitor.score_histogram(&filter, DEFAULT_BINS);
    // Drift over the newest outcomes of the range (at most 5 000).
    let drift_request = triad_proto::v1::DriftRequest {
        model: model.clone(),
        version: query.version.clone().unwrap_or_default(),
        from_ms,
        to_ms,
        ..triad_proto::v1::DriftRequest::default()
    };
    let drift = monitor.drift(&drift_request);
    // The business events of the window, each as QueryEvents answers it.
    let events = async {
        let names = monitor.event_names(from_ms, to_ms, EVENTS_SHOWN).await?;
        let mut events = Vec::with_capacity(names.len());
        for name in names {
            let request = QueryEventsRequest {
                name,
                from_ms,
                to_ms,
                bucket: width_wire(query.width).into(),
            };
            let points = monitor.query_events(&request).await?.points;
            events.push((request.name, points));
        }
        Ok::<_, AppError>(events)
    };
    // The counters of the hours the window's quality series leave out.
    let future = monitor.outcomes_from_hour(&model, Width::Hour.start(to_ms - 1) + HOUR_MS);
    let trade_offs = threshold::load(monitor, &model, &query, include_shadow, (from_ms, to_ms));
    let (quality, mistakes, histogram, drift, future, events, trade_offs) = tokio::try_join!(
        quality, mistakes, histogram, drift, future, events, trade_offs
    )?;
    Ok(ModelView {
        model,
        query,
        summary,
        from_ms,
        now_ms: now,
        to_ms,
        future,
        include_shadow,
        points: quality.points,
        series: quality.series,
        more_mistakes: !mistakes.next_page_token.is_empty(),
        mistakes: mistakes.mistakes,
        histogram,
        drift,
        events,
        threshold: trade_offs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn queries_default_and_validate() {
        assert_eq!(PageQuery::parse(&[]).unwrap(), PageQuery::default());
        let q = PageQuery::parse(&pairs(&[
            ("days", "7"),
            ("bucket", "hour"),
            ("version", "2"),
        ]))
        .unwrap();
        assert_eq!(
            q,
            PageQuery {
                days: 7,
                width: Width::Hour,
                version: Some("2".into()),
                refresh: None,
                threshold: None,
            }
        );
        assert_eq!(
            PageQuery::parse(&pairs(&[("version", "")]))
                .unwrap()
                .version,
            None
        );
        for bad in [
            &[("bucket", "month")][..],
            &[("days", "0")],
            &[("days", "x")],
            &[("days", "99999")],
            &[("colour", "red")],
            &[("days", "1"), ("days", "2")],
        ] {
            let error = PageQuery::parse(&pairs(bad)).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{bad:?}");
        }
        let error = PageQuery::parse(&pairs(&[("bucket", "month")])).unwrap_err();
        assert_eq!(
            error.message,
            "bucket is \"month\": expected hour, day or week"
        );
        let long = "x".repeat(10_000);
        for bad in [
            &[("bucket", long.as_str())][..],
            &[("days", long.as_str())],
            &[(long.as_str(), "1")],
            &[(long.as_str(), "1"), (long.as_str(), "1")],
        ] {
            let error = PageQuery::parse(&pairs(bad)).unwrap_err();
            assert!(error.message.len() < 200, "{}", error.message);
        }
    }
}
