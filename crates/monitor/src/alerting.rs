//! The alert evaluator: a background task of [`crate::serve`] that
//! evaluates the alert rules at start and after each daily bucket closes
//! ([`EVALUATION_DELAY_MS`] past midnight UTC, so late outcomes of the
//! day are in), then hands what is due to the webhook. It stops with the
//! server's `triad_server::Shutdown`, in the middle of an evaluation too.
//!
//! [`Alerter`] is also the handle tests (and tools) use to run an
//! evaluation at a chosen time, deterministically, and wait for its
//! deliveries ([`Alerter::flush`]).
//!
//! Bounded cost: one evaluation at a time, one version at a time, reading
//! the daily counters of `history_days` and at most `drift_max_rows`
//! outcomes per version, for at most
//! `app::alerts::MAX_EVALUATED_MODELS` models.

use std::future::Future;
use std::time::Duration;

use crate::app::{AlertEvaluation, AppError, Monitor};
use crate::buckets::{DAY_MS, Width, now_ms};
use crate::config::WebhookConfig;
use crate::webhook::{self, Webhook, WebhookError};

/// How long after a day closes (midnight UTC) it is evaluated: the
/// accepted clock skew (5 minutes) plus room for the scorer's spool to
/// deliver the day's last outcomes.
pub const EVALUATION_DELAY_MS: i64 = 10 * 60 * 1_000;
/// Wait before another try after a failed evaluation.
const RETRY_AFTER: Duration = Duration::from_secs(300);

/// Evaluates alerts over a [`Monitor`] and delivers them to the webhook,
/// if one is configured.
#[derive(Debug, Clone)]
pub struct Alerter {
    monitor: Monitor,
    webhook: Option<Webhook>,
}

impl Alerter {
    /// The evaluator over `monitor`, with the webhook of `webhook` (checked
    /// here: an https, malformed or oversized URL is refused), and the
    /// webhook's sending task, to be spawned (it ends once every clone of
    /// the [`Alerter`] is dropped).
    pub fn new(
        monitor: Monitor,
        webhook: Option<WebhookConfig>,
    ) -> Result<(Self, Option<impl Future<Output = ()> + Send + 'static>), WebhookError> {
        let (webhook, task) = match webhook {
            Some(config) => {
                webhook::check(&config)?;
                let (webhook, task) = Webhook::new(config, monitor.clone());
                (Some(webhook), Some(task))
            }
            None => (None, None),
        };
        Ok((Self { monitor, webhook }, task))
    }

    /// Evaluates the rules on the last day closed at `now_ms`, stores the
    /// firing state, and queues for the webhook what is due at `now_ms`
    /// (without waiting for the deliveries: see [`Alerter::flush`]).
    pub async fn evaluate_at(&self, now_ms: i64) -> Result<AlertEvaluation, AppError> {
        let evaluation = self.monitor.evaluate_alerts(now_ms).await?;
        if let Some(webhook) = &self.webhook {
            let repeat =
                i64::try_from(webhook.config().repeat_interval.as_millis()).unwrap_or(i64::MAX);
            let due = self.monitor.alerts_to_deliver(now_ms, repeat).await?;
            if !due.is_empty() {
                webhook.send(due, now_ms).await;
            }
        }
        Ok(evaluation)
    }

    /// Waits until every delivery queued so far is done (delivered or
    /// given up).
    pub async fn flush(&self) {
        if let Some(webhook) = &self.webhook {
            webhook.flush().await;
        }
    }

    /// Evaluates now and after each day closes until `shutdown` resolves.
    pub(crate) async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let now = now_ms();
            let wait = tokio::select! {
                () = &mut shutdown => return,
                evaluated = self.evaluate_at(now) => match evaluated {
                    Ok(evaluation) => {
                        tracing::info!(
                            firing = evaluation.firing.len(),
                            started = evaluation.started.len(),
                            resolved = evaluation.resolved.len(),
                            day = %crate::buckets::day_string(evaluation.bucket_ms),
                            "alerts evaluated"
                        );
                        next_wait(now, now_ms())
                    }
                    Err(error) => {
                        tracing::warn!(%error, "alert evaluation failed: tried again later");
                        RETRY_AFTER.min(next_wait(now, now_ms()))
                    }
                },
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// How long to wait, at `now`, for the evaluation after the one run at
/// `evaluated`: until the next day closes plus [`EVALUATION_DELAY_MS`].
fn next_wait(evaluated: i64, now: i64) -> Duration {
    let next = Width::Day.start(evaluated - EVALUATION_DELAY_MS) + DAY_MS + EVALUATION_DELAY_MS;
    Duration::from_millis(u64::try_from(next - now).unwrap_or(0).max(1_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_evaluation_follows_the_next_day_closing() {
        let midnight = 20_000 * DAY_MS;
        // Started at 15:00: next at 00:10 the next day.
        let at = midnight + 15 * 3_600_000;
        assert_eq!(
            next_wait(at, at),
            Duration::from_millis((9 * 3_600_000 + EVALUATION_DELAY_MS) as u64)
        );
        // Evaluated at 00:10 on the dot: the next one is a day later.
        let at = midnight + EVALUATION_DELAY_MS;
        assert_eq!(next_wait(at, at), Duration::from_millis(DAY_MS as u64));
        // Started at 00:05, before the delay: the day just closed is
        // evaluated again at 00:10.
        let at = midnight + 5 * 60_000;
        assert_eq!(next_wait(at, at), Duration::from_millis(5 * 60_000));
    }
}
