//! `RecordLabels`: labels checked one by one (a bad label is rejected, the
//! others stored), then stored and joined to their outcomes in one
//! transaction.

use triad_proto::v1::{Label, RecordLabelsRequest, RecordLabelsResponse, Rejection};

use super::Monitor;
use super::error::AppError;
use super::validate;
use crate::buckets::now_ms;
use crate::store::{NewLabel, PairKey};

/// When the truth of `label` became known (0: `now`), or why it cannot be
/// stored. A time in the future is refused like one before 2000: the
/// newest label wins, so a label dated in the future could never be
/// corrected.
fn check(label: &Label, now: i64) -> Result<i64, String> {
    validate::item_id("model", &label.model, true)?;
    validate::item_id("budget_id", &label.budget_id, true)?;
    validate::item_id("itemization_id", &label.itemization_id, true)?;
    validate::item_id("request_id", &label.request_id, false)?;
    validate::item_id("source", &label.source, false)?;
    validate::event_time("labelled_at_ms", label.labelled_at_ms, now)
}

impl Monitor {
    /// Stores labels and re-joins their outcomes (`RecordLabels`).
    pub async fn record_labels(
        &self,
        request: &RecordLabelsRequest,
    ) -> Result<RecordLabelsResponse, AppError> {
        let now = now_ms();
        let mut response = RecordLabelsResponse::default();
        let mut labels: Vec<NewLabel<'_>> = Vec::with_capacity(request.labels.len());
        for (i, label) in request.labels.iter().enumerate() {
            let labelled_at_ms = match check(label, now) {
                Ok(at) => at,
                Err(reason) => {
                    validate::list_rejection(
                        &mut response.rejected,
                        Rejection {
                            index: i as u32,
                            id: String::new(),
                            reason,
                        },
                    );
                    continue;
                }
            };
            labels.push(NewLabel {
                pair: PairKey::of(&label.model, &label.budget_id, &label.itemization_id),
                request_id: &label.request_id,
                label: label.label,
                labelled_at_ms,
                source: &label.source,
            });
        }
        if labels.is_empty() {
            return Ok(response);
        }
        response.joined = self.store().insert_labels(&labels, now).await?;
        response.stored = labels.len() as u64;
        crate::telemetry::labels_stored(response.stored);
        Ok(response)
    }
}
