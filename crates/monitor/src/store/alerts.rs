//! The alerts' firing state and history (`alerts` table, migration
//! `0006_alerts.sql`): one row per stretch of time an alert fired, open
//! (`resolved_ms` NULL) while it fires. SQL only: the rules and their
//! reconciliation are the application layer's (`app/alerts/`).

use sqlx::Any;
use sqlx::any::AnyRow;

use super::{StorageError, Store, sql};

/// An alert's identity: its rule, model, version and subject (the feature
/// or field it is about; empty when the rule has none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct AlertKey {
    pub model: String,
    pub version: String,
    pub name: String,
    pub subject: String,
}

/// One stored stretch of firing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AlertRow {
    pub key: AlertKey,
    pub since_ms: i64,
    pub severity: String,
    /// NaN when not stored (not finite).
    pub value: f64,
    /// NaN when not stored (not finite).
    pub threshold: f64,
    pub evaluated_ms: i64,
    pub resolved_ms: Option<i64>,
    pub notified_ms: Option<i64>,
    pub resolved_notified: bool,
}

/// What one evaluation changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AlertChanges {
    /// Alerts that start firing, and firing ones with their new value.
    pub upsert: Vec<AlertRow>,
    /// Firing stretches that end: the key, its `since_ms` and the
    /// resolution time.
    pub resolve: Vec<(AlertKey, i64, i64)>,
}

const COLUMNS: &str = "model, version, name, subject, since_ms, severity, value, threshold, \
     evaluated_ms, resolved_ms, notified_ms, resolved_notified";

fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

fn row(r: &AnyRow) -> Result<AlertRow, StorageError> {
    use sqlx::Row;
    let maybe_float = |i: usize| -> Result<f64, StorageError> {
        let value: Option<f64> = r
            .try_get(i)
            .map_err(|e| StorageError::Corrupt(format!("column {i}: {e}")))?;
        Ok(value.unwrap_or(f64::NAN))
    };
    Ok(AlertRow {
        key: AlertKey {
            model: sql::text(r, 0)?,
            version: sql::text(r, 1)?,
            name: sql::text(r, 2)?,
            subject: sql::text(r, 3)?,
        },
        since_ms: sql::int(r, 4)?,
        severity: sql::text(r, 5)?,
        value: maybe_float(6)?,
        threshold: maybe_float(7)?,
        evaluated_ms: sql::int(r, 8)?,
        resolved_ms: sql::opt_int(r, 9)?,
        notified_ms: sql::opt_int(r, 10)?,
        resolved_notified: sql::int(r, 11)? != 0,
    })
}

impl Store {
    /// Every firing alert (of `model` when given), critical first, then by
    /// model, version, rule and subject; at most `limit` (so a page of them
    /// never hides a critical one behind warnings).
    pub(crate) async fn firing_alerts(
        &self,
        model: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StorageError> {
        let filter = if model.is_some() {
            " AND model = $1"
        } else {
            ""
        };
        let statement = self.backend().sql(format!(
            "SELECT {COLUMNS} FROM alerts WHERE resolved_ms IS NULL{filter} \
             ORDER BY CASE severity WHEN 'critical' THEN 0 ELSE 1 END, \
             model, version, name, subject LIMIT {limit}"
        ));
        let mut query = sqlx::query::<Any>(&statement);
        if let Some(model) = model {
            query = query.bind(model);
        }
        query
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(row)
            .collect()
    }

    /// How many alerts fire (of `model` when given).
    pub(crate) async fn count_firing_alerts(
        &self,
        model: Option<&str>,
    ) -> Result<u64, StorageError> {
        use sqlx::Row;
        let filter = if model.is_some() {
            " AND model = $1"
        } else {
            ""
        };
        let statement = self.backend().sql(format!(
            "SELECT COUNT(*) FROM alerts WHERE resolved_ms IS NULL{filter}"
        ));
        let mut query = sqlx::query::<Any>(&statement);
        if let Some(model) = model {
            query = query.bind(model);
        }
        let count: i64 = query
            .fetch_one(self.pool())
            .await?
            .try_get(0)
            .map_err(|e| StorageError::Corrupt(format!("alert count: {e}")))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The alerts that fired at some time in `[since_ms, until_ms)` (of
    /// `model` when given), newest first; at most `limit`.
    pub(crate) async fn alert_history(
        &self,
        model: Option<&str>,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StorageError> {
        let filter = if model.is_some() {
            " AND model = $3"
        } else {
            ""
        };
        let statement = self.backend().sql(format!(
            "SELECT {COLUMNS} FROM alerts WHERE since_ms < $1 \
             AND (resolved_ms IS NULL OR resolved_ms > $2){filter} \
             ORDER BY since_ms DESC, model, version, name, subject LIMIT {limit}"
        ));
        let mut query = sqlx::query::<Any>(&statement).bind(until_ms).bind(since_ms);
        if let Some(model) = model {
            query = query.bind(model);
        }
        query
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(row)
            .collect()
    }

    /// The alerts the webhook has to deliver at `now_ms`: firing ones never
    /// delivered or last delivered at or before `repeat_before_ms`, and
    /// resolved ones whose resolution was not delivered, resolved after
    /// `resolved_after_ms`; at most `limit`, oldest first.
    pub(crate) async fn alerts_to_notify(
        &self,
        repeat_before_ms: i64,
        resolved_after_ms: i64,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StorageError> {
        let statement = self.backend().sql(format!(
            "SELECT {COLUMNS} FROM alerts WHERE \
             (resolved_ms IS NULL AND (notified_ms IS NULL OR notified_ms <= $1)) \
             OR (resolved_ms IS NOT NULL AND resolved_notified = 0 AND resolved_ms > $2) \
             ORDER BY since_ms, model, version, name, subject LIMIT {limit}"
        ));
        sqlx::query::<Any>(&statement)
            .bind(repeat_before_ms)
            .bind(resolved_after_ms)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(row)
            .collect()
    }

    /// Applies one evaluation's changes in one transaction. An upsert of a
    /// stretch that was resolved (the same `since_ms`: a closed day
    /// evaluated again after a resolution, by a restart, a retry or late
    /// labels) opens it again: firing, its resolution no longer due to the
    /// webhook (if not yet delivered, it never is), and its firing due
    /// again (`notified_ms` cleared) so the receiver hears it fires.
    pub(crate) async fn apply_alert_changes(
        &self,
        changes: &AlertChanges,
    ) -> Result<(), StorageError> {
        if changes.upsert.is_empty() && changes.resolve.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer().await?;
        let insert = writer.backend.sql(format!(
            "INSERT INTO alerts ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,NULL,NULL,0) \
             ON CONFLICT (model, version, name, subject, since_ms) DO UPDATE SET \
             severity = excluded.severity, value = excluded.value, \
             threshold = excluded.threshold, evaluated_ms = excluded.evaluated_ms, \
             notified_ms = CASE WHEN alerts.resolved_ms IS NULL THEN alerts.notified_ms \
             ELSE NULL END, resolved_ms = NULL, resolved_notified = 0"
        ));
        for alert in &changes.upsert {
            sqlx::query::<Any>(&insert)
                .bind(alert.key.model.as_str())
                .bind(alert.key.version.as_str())
                .bind(alert.key.name.as_str())
                .bind(alert.key.subject.as_str())
                .bind(alert.since_ms)
                .bind(alert.severity.as_str())
                .bind(finite(alert.value))
                .bind(finite(alert.threshold))
                .bind(alert.evaluated_ms)
                .execute(&mut *writer.tx)
                .await?;
        }
        let resolve = writer.backend.sql(
            "UPDATE alerts SET resolved_ms = $1 WHERE model = $2 AND version = $3 \
             AND name = $4 AND subject = $5 AND since_ms = $6 AND resolved_ms IS NULL"
                .to_owned(),
        );
        for (key, since_ms, resolved_ms) in &changes.resolve {
            sqlx::query::<Any>(&resolve)
                .bind(*resolved_ms)
                .bind(key.model.as_str())
                .bind(key.version.as_str())
                .bind(key.name.as_str())
                .bind(key.subject.as_str())
                .bind(*since_ms)
                .execute(&mut *writer.tx)
                .await?;
        }
        writer.tx.commit().await?;
        Ok(())
    }

    /// Records that the webhook delivered these alerts at `now_ms`: the
    /// firing ones' `notified_ms`, the resolved ones' `resolved_notified`.
    pub(crate) async fn mark_alerts_notified(
        &self,
        delivered: &[(AlertKey, i64, bool)],
        now_ms: i64,
    ) -> Result<(), StorageError> {
        if delivered.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer().await?;
        let firing = writer.backend.sql(
            "UPDATE alerts SET notified_ms = $1 WHERE model = $2 AND version = $3 \
             AND name = $4 AND subject = $5 AND since_ms = $6"
                .to_owned(),
        );
        let resolved = writer.backend.sql(
            "UPDATE alerts SET resolved_notified = 1 WHERE model = $1 AND version = $2 \
             AND name = $3 AND subject = $4 AND since_ms = $5"
                .to_owned(),
        );
        for (key, since_ms, was_resolved) in delivered {
            let query = if *was_resolved {
                sqlx::query::<Any>(&resolved)
            } else {
                sqlx::query::<Any>(&firing).bind(now_ms)
            };
            query
                .bind(key.model.as_str())
                .bind(key.version.as_str())
                .bind(key.name.as_str())
                .bind(key.subject.as_str())
                .bind(*since_ms)
                .execute(&mut *writer.tx)
                .await?;
        }
        writer.tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;

    async fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&StoreConfig {
            database_url: format!("sqlite://{}/m.db", dir.path().display()),
            ..StoreConfig::default()
        })
        .await
        .unwrap()
    }

    fn alert(since_ms: i64) -> AlertRow {
        AlertRow {
            key: AlertKey {
                model: "m".into(),
                version: "1".into(),
                name: "volume_drop".into(),
                subject: String::new(),
            },
            since_ms,
            severity: "critical".into(),
            value: 10.0,
            threshold: 80.0,
            evaluated_ms: since_ms,
            resolved_ms: None,
            notified_ms: None,
            resolved_notified: false,
        }
    }

    /// A day fires, is resolved when evaluated again (late outcomes), and
    /// fires again at a third evaluation of the same day: the stretch is
    /// open again, everywhere, and its firing due to the webhook.
    #[tokio::test]
    async fn a_resolved_stretch_that_fires_again_the_same_day_is_open_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let day = 20_000 * 86_400_000;
        let row = alert(day);
        let upsert = AlertChanges {
            upsert: vec![row.clone()],
            resolve: vec![],
        };
        store.apply_alert_changes(&upsert).await.unwrap();
        store
            .mark_alerts_notified(&[(row.key.clone(), day, false)], day + 1)
            .await
            .unwrap();
        store
            .apply_alert_changes(&AlertChanges {
                upsert: vec![],
                resolve: vec![(row.key.clone(), day, day)],
            })
            .await
            .unwrap();
        store
            .mark_alerts_notified(&[(row.key.clone(), day, true)], day + 2)
            .await
            .unwrap();
        assert!(store.firing_alerts(None, 10).await.unwrap().is_empty());

        store.apply_alert_changes(&upsert).await.unwrap();
        let firing = store.firing_alerts(None, 10).await.unwrap();
        assert_eq!(firing.len(), 1);
        assert_eq!(firing[0].resolved_ms, None);
        assert_eq!(firing[0].notified_ms, None);
        assert!(!firing[0].resolved_notified);
        let due = store.alerts_to_notify(day, day - 1, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].resolved_ms, None);
        // A firing stretch updated keeps its delivery time.
        store
            .mark_alerts_notified(&[(row.key.clone(), day, false)], day + 3)
            .await
            .unwrap();
        store.apply_alert_changes(&upsert).await.unwrap();
        let firing = store.firing_alerts(None, 10).await.unwrap();
        assert_eq!(firing[0].notified_ms, Some(day + 3));
    }

    /// 25 warnings on models named before the one critical alert's: a
    /// page of 21 still holds the critical one, first, and the count is
    /// of them all.
    #[tokio::test]
    async fn critical_alerts_come_first_and_the_count_is_of_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let mut upsert: Vec<AlertRow> = (0..25)
            .map(|i| {
                let mut row = alert(0);
                row.key.model = format!("a{i:02}");
                row.key.name = "null_rate_jump".into();
                row.severity = "warning".into();
                row
            })
            .collect();
        let mut critical = alert(0);
        critical.key.model = "z".into();
        upsert.push(critical);
        store
            .apply_alert_changes(&AlertChanges {
                upsert,
                resolve: vec![],
            })
            .await
            .unwrap();
        let page = store.firing_alerts(None, 21).await.unwrap();
        assert_eq!(page.len(), 21);
        assert_eq!(
            (page[0].key.model.as_str(), page[0].severity.as_str()),
            ("z", "critical")
        );
        assert_eq!(page[1].key.model, "a00");
        assert_eq!(store.count_firing_alerts(None).await.unwrap(), 26);
        assert_eq!(store.count_firing_alerts(Some("z")).await.unwrap(), 1);
        assert_eq!(store.count_firing_alerts(Some("y")).await.unwrap(), 0);
    }
}
