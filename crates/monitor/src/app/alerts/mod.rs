//! Alerts: the rules of [`rules`] evaluated per model and primary version
//! over daily buckets of the hourly counters, on the last *closed* day,
//! their firing state reconciled with the store (an alert keeps the
//! since-when of its first breach across evaluations and restarts, and
//! its stretch is closed when a later evaluation finds it healthy), and
//! the `Alerts` RPC over that state. Thresholds per model come from
//! [`settings`] (`monitor.toml`).
//!
//! What is evaluated: every model with outcomes (at most
//! [`MAX_EVALUATED_MODELS`], by name), each of its primary (non-shadow)
//! versions with an outcome in the history window, except a version
//! superseded by one whose first outcome came after its last. Drift is
//! compared only for a version with outcomes in the last closed day and a
//! reference profile.

pub(crate) mod rules;
pub(crate) mod settings;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use triad_proto::v1::{Alert, AlertsRequest, AlertsResponse, DriftRequest, MetricPoint};

use super::error::{AppError, RequestError};
use super::{Monitor, quality, validate};
use crate::buckets::{DAY_MS, Width, now_ms};
use crate::links;
use crate::profiles::Lookup;
use crate::store::{AlertChanges, AlertKey, AlertRow, Counts, ModelSummary};
use crate::telemetry;
use rules::{Finding, Rule};
use settings::Thresholds;

/// Most models one evaluation reads (the first by name); the others are
/// skipped with a warning.
pub(crate) const MAX_EVALUATED_MODELS: usize = 1_000;
/// Most firing alerts read back at once (and so kept firing).
pub(crate) const MAX_FIRING: usize = 100_000;
/// Most alerts handed to the webhook per evaluation.
pub(crate) const MAX_DELIVERED: usize = 1_000;
/// How old a resolution may be and still be delivered (a webhook added
/// later does not get a year of old resolutions).
pub(crate) const RESOLVED_DELIVERY_WINDOW_MS: i64 = 7 * DAY_MS;
/// How much earlier than the repeat interval a firing alert may be sent
/// again: evaluations run once a day at about 00:10, and one that starts a
/// little earlier than the last (timer or clock jitter) must not wait a
/// whole day more. At most half the interval.
pub(crate) const REPEAT_SLACK_MS: i64 = 15 * 60 * 1_000;
/// Alerts an `Alerts` answer holds when the request says 0.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 100;
/// Most alerts one `Alerts` answer may hold.
pub(crate) const MAX_PAGE_SIZE: u32 = 1_000;
/// Most days a dashboard link covers (the dashboard's own limit).
const MAX_LINK_DAYS: i64 = 3_660;

/// What one evaluation found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertEvaluation {
    /// Start of the closed day evaluated.
    pub bucket_ms: i64,
    /// Every alert firing after the evaluation.
    pub firing: Vec<Alert>,
    /// Alerts that started firing in this evaluation.
    pub started: Vec<Alert>,
    /// Alerts this evaluation resolved.
    pub resolved: Vec<Alert>,
}

/// The link to the dashboard view of an alert: the model page over the
/// days from its start to `now` (at least `history_days`), its version,
/// daily buckets, and the section that shows the rule.
pub(crate) fn link(row: &AlertRow, history_days: u32, now: i64) -> String {
    let since_days = (now.saturating_sub(row.since_ms)).div_euclid(DAY_MS) + 2;
    let days = since_days
        .max(i64::from(history_days))
        .clamp(1, MAX_LINK_DAYS);
    let section = Rule::from_name(&row.key.name).map_or("summary", Rule::section);
    format!(
        "{}#{section}",
        links::model_page(&row.key.model, days, "day", Some(&row.key.version))
    )
}

/// The latest delivery time of a firing alert due again at `now_ms` with
/// the repeat interval `repeat_ms`: `repeat_ms` before, less the slack
/// ([`REPEAT_SLACK_MS`], at most half the interval).
fn repeat_before(now_ms: i64, repeat_ms: i64) -> i64 {
    let slack = REPEAT_SLACK_MS.min(repeat_ms / 2);
    now_ms
        .saturating_sub(repeat_ms)
        .saturating_add(slack.max(0))
}

fn key(model: &str, version: &str, finding: &Finding) -> AlertKey {
    AlertKey {
        model: model.to_owned(),
        version: version.to_owned(),
        name: finding.rule.name().to_owned(),
        subject: finding.subject.clone(),
    }
}

/// The primary versions of `summary` worth evaluating over a window
/// starting at `first_ms`: with an outcome in it, and not superseded.
fn evaluated_versions(summary: &ModelSummary, first_ms: i64) -> Vec<&str> {
    let primary: Vec<_> = summary.versions.iter().filter(|v| !v.shadow).collect();
    primary
        .iter()
        .filter(|v| v.last_hour_ms >= first_ms)
        .filter(|v| !primary.iter().any(|w| w.first_hour_ms > v.last_hour_ms))
        .map(|v| v.version.as_str())
        .collect()
}

impl Monitor {
    /// The alert thresholds of `model`.
    pub(crate) fn alert_thresholds(&self, model: &str) -> &Thresholds {
        self.alert_settings().thresholds(model)
    }

    /// The wire alert of a stored row, at `now`.
    pub(crate) fn alert_to_wire(&self, row: &AlertRow, now: i64) -> Alert {
        let rule = Rule::from_name(&row.key.name);
        let history_days = self.alert_thresholds(&row.key.model).history_days;
        Alert {
            name: row.key.name.clone(),
            severity: row.severity.clone(),
            model: row.key.model.clone(),
            version: row.key.version.clone(),
            subject: row.key.subject.clone(),
            value: row.value,
            threshold: row.threshold,
            since_ms: row.since_ms,
            resolved_ms: row.resolved_ms.unwrap_or(0),
            link: link(row, history_days, now),
            summary: rule
                .map(|r| r.summary(&row.key.subject, row.value, row.threshold))
                .unwrap_or_default(),
        }
    }

    /// One version's daily points over `history_days` ending with the
    /// closed day starting at `last_ms`, empty days included, from its
    /// `days` (in day order, any before the window skipped).
    fn daily_points(days: &[(i64, Counts)], last_ms: i64, history_days: u32) -> Vec<MetricPoint> {
        let first = last_ms - i64::from(history_days - 1) * DAY_MS;
        let mut held = days.iter().peekable();
        (0..i64::from(history_days))
            .map(|i| {
                let start = first + i * DAY_MS;
                while held.next_if(|(s, _)| *s < start).is_some() {}
                match held.next_if(|(s, _)| *s == start) {
                    Some((_, counts)) => quality::point(start, counts),
                    None => quality::point(start, &Counts::default()),
                }
            })
            .collect()
    }

    /// What the rules find for one version at the closed day `last_ms`,
    /// given its `days` (as [`Monitor::daily_points`] takes them), and
    /// whether drift was judged: false when the version has a reference
    /// profile that could not be read, or the comparison failed or was not
    /// available (its drift alerts then keep their state); true when it
    /// was compared, or the version has no profile at all.
    pub(crate) async fn version_findings(
        &self,
        model: &str,
        version: &str,
        last_ms: i64,
        days: &[(i64, Counts)],
    ) -> Result<(Vec<Finding>, bool), AppError> {
        let t = self.alert_thresholds(model).clone();
        let points = Self::daily_points(days, last_ms, t.history_days);
        let lookup = self.profiles().get(model, version).await;
        let has_profile = lookup.profile().is_some();
        let unreadable = matches!(lookup, Lookup::Invalid { .. });
        let drift = if has_profile && points.last().is_some_and(|p| p.count > 0) {
            let request = DriftRequest {
                model: model.to_owned(),
                version: version.to_owned(),
                from_ms: last_ms,
                to_ms: last_ms + DAY_MS,
                max_rows: t.drift_max_rows,
            };
            match self.drift(&request).await {
                Ok(drift) if !drift.available => {
                    tracing::warn!(
                        model,
                        version,
                        reason = %drift.unavailable_reason,
                        "drift not compared for alerts"
                    );
                    None
                }
                Ok(drift) => Some(drift),
                Err(error) => {
                    tracing::warn!(%error, model, version, "drift not compared for alerts");
                    None
                }
            }
        } else {
            None
        };
        let judged = if has_profile {
            drift.is_some()
        } else {
            !unreadable
        };
        Ok((rules::check(&points, drift.as_ref(), &t), judged))
    }

    /// Evaluates every rule at `now_ms` on the last closed day, stores the
    /// firing state (new alerts, new values, resolutions) and sets the
    /// alert gauges. Evaluating twice at the same time changes nothing.
    pub async fn evaluate_alerts(&self, now_ms: i64) -> Result<AlertEvaluation, AppError> {
        let last_ms = Width::Day.start(now_ms) - DAY_MS;
        let mut models = self.store().model_days_summaries().await?;
        // Alerts of what could not be evaluated keep their state: the
        // models skipped, and the drift of versions not compared.
        let mut skipped: BTreeSet<String> = BTreeSet::new();
        if models.len() > MAX_EVALUATED_MODELS {
            tracing::warn!(
                models = models.len(),
                evaluated = MAX_EVALUATED_MODELS,
                "more models than alerts evaluate: the last by name are skipped (their alerts keep their state)"
            );
            skipped.extend(models.drain(MAX_EVALUATED_MODELS..).map(|m| m.model));
        }
        let mut drift_not_judged: BTreeSet<(String, String)> = BTreeSet::new();
        let before: BTreeMap<AlertKey, AlertRow> = self
            .store()
            .firing_alerts(None, MAX_FIRING)
            .await?
            .into_iter()
            .map(|row| (row.key.clone(), row))
            .collect();
        // Every evaluated version's days in one query over the longest
        // window, grouped per version.
        let longest = models
            .iter()
            .map(|m| self.alert_thresholds(&m.model).history_days)
            .max()
            .unwrap_or(1);
        let mut days: HashMap<(String, String), Vec<(i64, Counts)>> = HashMap::new();
        if let Some(last_model) = models.last() {
            let first_ms = last_ms - i64::from(longest - 1) * DAY_MS;
            for version in self
                .store()
                .primary_days(&last_model.model, first_ms, last_ms)
                .await?
            {
                days.insert((version.model, version.version), version.days);
            }
        }
        let mut now_firing: BTreeMap<AlertKey, AlertRow> = BTreeMap::new();
        for summary in &models {
            let t = self.alert_thresholds(&summary.model);
            let first_ms = last_ms - i64::from(t.history_days - 1) * DAY_MS;
            for version in evaluated_versions(summary, first_ms) {
                let held = days
                    .get(&(summary.model.clone(), version.to_owned()))
                    .map_or(&[][..], Vec::as_slice);
                let (findings, drift_judged) = self
                    .version_findings(&summary.model, version, last_ms, held)
                    .await?;
                if !drift_judged {
                    drift_not_judged.insert((summary.model.clone(), version.to_owned()));
                }
                for finding in findings {
                    let key = key(&summary.model, version, &finding);
                    let since_ms = before.get(&key).map_or(last_ms, |row| row.since_ms);
                    let row = AlertRow {
                        key: key.clone(),
                        since_ms,
                        severity: finding.rule.severity().as_str().to_owned(),
                        value: finding.value,
                        threshold: finding.threshold,
                        evaluated_ms: last_ms,
                        resolved_ms: None,
                        notified_ms: before.get(&key).and_then(|row| row.notified_ms),
                        resolved_notified: false,
                    };
                    now_firing.insert(key, row);
                }
            }
        }
        for (key, row) in &before {
            let kept = skipped.contains(&key.model)
                || (key.name == Rule::FeatureDrift.name()
                    && drift_not_judged.contains(&(key.model.clone(), key.version.clone())));
            if kept && !now_firing.contains_key(key) {
                now_firing.insert(key.clone(), row.clone());
            }
        }
        let mut changes = AlertChanges::default();
        let mut evaluation = AlertEvaluation {
            bucket_ms: last_ms,
            ..AlertEvaluation::default()
        };
        for (key, row) in &now_firing {
            match before.get(key) {
                Some(old)
                    if old.value.to_bits() == row.value.to_bits()
                        && old.threshold.to_bits() == row.threshold.to_bits()
                        && old.evaluated_ms == row.evaluated_ms => {}
                Some(_) => changes.upsert.push(row.clone()),
                None => {
                    changes.upsert.push(row.clone());
                    evaluation.started.push(self.alert_to_wire(row, now_ms));
                }
            }
        }
        for (key, row) in &before {
            if !now_firing.contains_key(key) {
                let resolved_ms = last_ms.max(row.since_ms);
                changes
                    .resolve
                    .push((key.clone(), row.since_ms, resolved_ms));
                let resolved = AlertRow {
                    resolved_ms: Some(resolved_ms),
                    ..row.clone()
                };
                evaluation
                    .resolved
                    .push(self.alert_to_wire(&resolved, now_ms));
            }
        }
        self.store().apply_alert_changes(&changes).await?;
        evaluation.firing = now_firing
            .values()
            .map(|row| self.alert_to_wire(row, now_ms))
            .collect();
        telemetry::set_alerts(&evaluation.firing, now_ms);
        Ok(evaluation)
    }

    /// The alerts the webhook has to deliver at `now_ms`: firing ones not
    /// delivered in the last `repeat_ms` (less [`REPEAT_SLACK_MS`]), and resolutions not delivered
    /// (of the last [`RESOLVED_DELIVERY_WINDOW_MS`]); at most
    /// [`MAX_DELIVERED`], oldest first.
    pub(crate) async fn alerts_to_deliver(
        &self,
        now_ms: i64,
        repeat_ms: i64,
    ) -> Result<Vec<Alert>, AppError> {
        let rows = self
            .store()
            .alerts_to_notify(
                repeat_before(now_ms, repeat_ms),
                now_ms.saturating_sub(RESOLVED_DELIVERY_WINDOW_MS),
                MAX_DELIVERED,
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| self.alert_to_wire(row, now_ms))
            .collect())
    }

    /// Records that the webhook delivered `alerts` at `now_ms`.
    pub(crate) async fn alerts_delivered(
        &self,
        alerts: &[Alert],
        now_ms: i64,
    ) -> Result<(), AppError> {
        let delivered: Vec<(AlertKey, i64, bool)> = alerts
            .iter()
            .map(|a| {
                (
                    AlertKey {
                        model: a.model.clone(),
                        version: a.version.clone(),
                        name: a.name.clone(),
                        subject: a.subject.clone(),
                    },
                    a.since_ms,
                    a.resolved_ms != 0,
                )
            })
            .collect();
        Ok(self
            .store()
            .mark_alerts_notified(&delivered, now_ms)
            .await?)
    }

    /// How many alerts fire now (of `model`; empty: every model).
    pub(crate) async fn firing_alert_count(&self, model: &str) -> Result<u64, AppError> {
        let model = (!model.is_empty()).then_some(model);
        Ok(self.store().count_firing_alerts(model).await?)
    }

    /// The alerts firing now (critical first), or those that fired in a
    /// range (`Alerts`).
    pub async fn alerts(&self, request: &AlertsRequest) -> Result<AlertsResponse, AppError> {
        validate::query_id("model", &request.model, false)?;
        let page = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n <= MAX_PAGE_SIZE => n,
            got => {
                return Err(RequestError::PageSize {
                    got,
                    max: MAX_PAGE_SIZE,
                }
                .into());
            }
        } as usize;
        let model = (!request.model.is_empty()).then_some(request.model.as_str());
        let now = now_ms();
        let rows = if request.history {
            let range = validate::range(request.since_ms, request.until_ms)?;
            let since = range.from_ms.unwrap_or(0);
            let until = range.to_ms.unwrap_or(i64::MAX);
            self.store()
                .alert_history(model, since, until, page + 1)
                .await?
        } else {
            self.store().firing_alerts(model, page + 1).await?
        };
        let truncated = rows.len() > page;
        Ok(AlertsResponse {
            alerts: rows
                .iter()
                .take(page)
                .map(|row| self.alert_to_wire(row, now))
                .collect(),
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::VersionSummary;

    fn version(name: &str, shadow: bool, first: i64, last: i64) -> VersionSummary {
        VersionSummary {
            version: name.into(),
            shadow,
            outcomes: 1,
            labelled: 0,
            first_hour_ms: first,
            last_hour_ms: last,
        }
    }

    #[test]
    fn a_daily_evaluation_a_little_early_repeats_a_firing_alert() {
        let day = 20_000 * DAY_MS;
        let notified = day + 10 * 60_000 + 30_000;
        // The next day's evaluation, 5 s past 00:10 (25 s earlier in the
        // day than the delivery): due again.
        let now = day + DAY_MS + 10 * 60_000 + 5_000;
        assert!(notified <= repeat_before(now, DAY_MS));
        // Twenty minutes early is not.
        assert!(notified > repeat_before(notified + DAY_MS - 20 * 60_000, DAY_MS));
        // A short interval keeps at least half of itself.
        assert_eq!(repeat_before(1_000_000, 60_000), 1_000_000 - 30_000);
    }

    #[test]
    fn superseded_shadow_and_silent_versions_are_not_evaluated() {
        let summary = ModelSummary {
            model: "m".into(),
            versions: vec![
                version("1", false, 0, 10),
                version("2", false, 11, 50),
                version("3", false, 20, 40),
                version("s", true, 0, 50),
                version("old", false, 0, 2),
            ],
        };
        assert_eq!(evaluated_versions(&summary, 5), ["2", "3"]);
    }

    /// A drift alert of a version whose reference profile cannot be read
    /// (not a profile) keeps firing, with its since-when: it was not
    /// judged. Without a profile at all it is resolved.
    #[tokio::test]
    async fn a_drift_alert_is_kept_while_the_profile_cannot_be_read() {
        use crate::config::StoreConfig;
        use crate::profiles::Profiles;
        use crate::store::{AlertChanges, Store};
        use triad_proto::v1::{Outcome, RecordOutcomesRequest};

        const START: i64 = 1_763_942_400_000 - 20 * DAY_MS;
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        std::fs::create_dir_all(models.join("m").join("1")).unwrap();
        std::fs::write(
            models.join("m").join("1").join(triad_series::PROFILE_FILE),
            "not a profile",
        )
        .unwrap();
        let store = Store::open(&StoreConfig {
            database_url: format!("sqlite://{}/m.db", dir.path().display()),
            ..StoreConfig::default()
        })
        .await
        .unwrap();
        let monitor = Monitor::new(store.clone(), Profiles::new(&models));
        let outcomes = (0..5)
            .map(|k| Outcome {
                outcome_id: format!("o{k}"),
                request_id: format!("r{k}"),
                scored_at_ms: START + 3_600_000 * k,
                model: "m".into(),
                version: "1".into(),
                schema_hash: "h".into(),
                budget_id: format!("b{k}"),
                itemization_id: format!("i{k}"),
                score: 0.5,
                threshold: 0.5,
                matched: true,
                latency_ms: 1.0,
                features: vec![0.5],
                ..Default::default()
            })
            .collect();
        let request = RecordOutcomesRequest {
            outcomes,
            ..Default::default()
        };
        assert!(
            monitor
                .record_outcomes(&request, 0)
                .await
                .unwrap()
                .rejected
                .is_empty()
        );
        let since = START - 3 * DAY_MS;
        let drifted = AlertRow {
            key: AlertKey {
                model: "m".into(),
                version: "1".into(),
                name: Rule::FeatureDrift.name().into(),
                subject: "score".into(),
            },
            since_ms: since,
            severity: "warning".into(),
            value: 0.5,
            threshold: 0.2,
            evaluated_ms: START - DAY_MS,
            resolved_ms: None,
            notified_ms: None,
            resolved_notified: false,
        };
        store
            .apply_alert_changes(&AlertChanges {
                upsert: vec![drifted.clone()],
                resolve: vec![],
            })
            .await
            .unwrap();
        let now = START + DAY_MS + 600_000;
        let evaluation = monitor.evaluate_alerts(now).await.unwrap();
        assert_eq!(evaluation.bucket_ms, START);
        assert!(evaluation.resolved.is_empty(), "{:?}", evaluation.resolved);
        assert_eq!(evaluation.firing.len(), 1, "{:?}", evaluation.firing);
        assert_eq!(evaluation.firing[0].since_ms, since);
        assert_eq!(store.firing_alerts(None, 10).await.unwrap(), [drifted]);

        // No profile at all: drift is not watched, the alert resolves.
        let monitor = Monitor::new(store.clone(), Profiles::disabled());
        let evaluation = monitor.evaluate_alerts(now).await.unwrap();
        assert_eq!(evaluation.resolved.len(), 1);
        assert!(store.firing_alerts(None, 10).await.unwrap().is_empty());
    }

    #[test]
    fn links_name_the_model_page_its_version_range_and_section() {
        let row = AlertRow {
            key: AlertKey {
                model: "a b".into(),
                version: "1/2".into(),
                name: "null_rate_jump".into(),
                subject: "budget_id".into(),
            },
            since_ms: 0,
            severity: "warning".into(),
            value: 1.0,
            threshold: 0.2,
            evaluated_ms: 0,
            resolved_ms: None,
            notified_ms: None,
            resolved_notified: false,
        };
        assert_eq!(
            link(&row, 28, 3 * DAY_MS),
            "/models/a%20b?days=28&bucket=day&version=1%2F2#null-rates"
        );
        assert_eq!(
            link(&row, 28, 100 * DAY_MS),
            "/models/a%20b?days=102&bucket=day&version=1%2F2#null-rates"
        );
    }
}
