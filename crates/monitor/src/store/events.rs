//! Business events: stored as they come, read back per name and time
//! range.

use sqlx::Any;

use super::{StorageError, Store, sql};
use crate::buckets::Range;

/// One business event to store, as the caller checked it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewEvent<'a> {
    pub name: &'a str,
    /// How long it took, in milliseconds (finite, >= 0).
    pub duration_ms: f64,
    /// When it happened, in milliseconds since the epoch.
    pub occurred_at_ms: i64,
    pub request_id: &'a str,
}

impl Store {
    /// Stores `events`, received at `now`; returns how many were stored.
    pub(crate) async fn insert_events(
        &self,
        events: &[NewEvent<'_>],
        now: i64,
    ) -> Result<u64, StorageError> {
        let mut stored = 0;
        let mut writer = self.writer().await?;
        for chunk in events.chunks(self.rows_per_statement() * 6) {
            let statement = writer.backend.sql(format!(
                "INSERT INTO events (name, duration_ms, occurred_at_ms, request_id, received_at_ms) \
                 VALUES {}",
                sql::values(writer.backend, chunk.len(), 5, 1)
            ));
            let mut query = sqlx::query::<Any>(&statement);
            for event in chunk {
                query = query
                    .bind(event.name)
                    .bind(event.duration_ms)
                    .bind(event.occurred_at_ms)
                    .bind(event.request_id)
                    .bind(now);
            }
            stored += query.execute(&mut *writer.tx).await?.rows_affected();
        }
        writer.tx.commit().await?;
        Ok(stored)
    }

    /// The names of the events that happened from `from_ms` (included) to
    /// `to_ms` (excluded), most frequent first (then by name), at most
    /// `limit` of them.
    pub(crate) async fn event_names(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let statement = self.backend().sql(
            "SELECT name FROM events WHERE occurred_at_ms >= $1 AND occurred_at_ms < $2 \
             GROUP BY name ORDER BY COUNT(*) DESC, name LIMIT $3"
                .to_owned(),
        );
        sqlx::query::<Any>(&statement)
            .bind(from_ms)
            .bind(to_ms)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| sql::text(row, 0))
            .collect()
    }

    /// The time (`occurred_at_ms`) and duration of every event named
    /// `name` that happened in `range`.
    pub(crate) async fn event_durations(
        &self,
        name: &str,
        range: &Range,
    ) -> Result<Vec<(i64, f64)>, StorageError> {
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
        let mut query = sqlx::query::<Any>(&statement).bind(name);
        if let Some(from) = range.from_ms {
            query = query.bind(from);
        }
        if let Some(to) = range.to_ms {
            query = query.bind(to);
        }
        query
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| Ok((sql::int(row, 0)?, sql::float(row, 1)?)))
            .collect()
    }
}
