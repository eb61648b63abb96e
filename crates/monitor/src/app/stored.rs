//! What the dashboard and the gauges read about what is stored: the models
//! and their versions, each model's realized quality over the gauges'
//! window, the outcomes dated after a page's window, score histograms, and
//! which business events a window holds.

use super::Monitor;
use super::error::AppError;
use super::validate;
use crate::buckets::now_ms;
use crate::store::{Confusion, HistogramFilter, ModelSummary, ScoreHistogram};
use crate::telemetry::{self, ModelQuality, quality_since};

/// Bins of a score histogram when none are asked for.
pub(crate) const DEFAULT_BINS: usize = 20;
/// Most bins one histogram may have.
pub(crate) const MAX_BINS: usize = 200;

impl Monitor {
    /// The names of the business events of a window (`from_ms` included,
    /// `to_ms` excluded), most frequent first, at most `limit`.
    pub(crate) async fn event_names(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<String>, AppError> {
        Ok(self.store().event_names(from_ms, to_ms, limit).await?)
    }

    /// Every model with outcomes, by name.
    pub(crate) async fn list_models(&self) -> Result<Vec<ModelSummary>, AppError> {
        Ok(self.store().list_models().await?)
    }

    /// One model's summary, `None` when it has no outcome.
    pub(crate) async fn model_summary(
        &self,
        model: &str,
    ) -> Result<Option<ModelSummary>, AppError> {
        Ok(self.store().model_summary(model).await?)
    }

    /// How many outcomes of `model` were scored in the hours starting at or
    /// after `from_hour_ms`, and the last of those hours
    /// ([`crate::store::Store::outcomes_from_hour`]).
    pub(crate) async fn outcomes_from_hour(
        &self,
        model: &str,
        from_hour_ms: i64,
    ) -> Result<Option<(i64, i64)>, AppError> {
        Ok(self.store().outcomes_from_hour(model, from_hour_ms).await?)
    }

    /// Per model, the confusion cells of its primary versions over the
    /// gauges' window at `now_ms` ([`quality_since`]).
    pub(crate) async fn recent_confusion(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(String, Confusion)>, AppError> {
        Ok(self.store().recent_confusion(quality_since(now_ms)).await?)
    }

    /// Sets the precision and recall gauges from the counters of the hours
    /// overlapping the gauges' window ([`telemetry::set_quality`]).
    pub(crate) async fn refresh_quality_gauges(&self) -> Result<(), AppError> {
        let recent = self.recent_confusion(now_ms()).await?;
        telemetry::set_quality(
            recent
                .into_iter()
                .map(|(model, confusion)| ModelQuality {
                    model,
                    outcomes: confusion.outcomes,
                    precision: confusion.precision(),
                    recall: confusion.recall(),
                })
                .collect(),
        );
        Ok(())
    }

    /// The scores of the outcomes `filter` selects in `bins` equal bins
    /// (1 to [`MAX_BINS`]; 0 means [`DEFAULT_BINS`]), split by label.
    pub(crate) async fn score_histogram(
        &self,
        filter: &HistogramFilter,
        bins: usize,
    ) -> Result<ScoreHistogram, AppError> {
        validate::query_id("model", &filter.model, true)?;
        let bins = match bins {
            0 => DEFAULT_BINS,
            n => n.min(MAX_BINS),
        };
        Ok(self.store().score_histogram(filter, bins).await?)
    }
}
