//! `confusion_days`, the daily rollup alert evaluation reads, equals
//! summing the hourly `confusion_counts` rows per (model, version, shadow,
//! UTC day) — every counter, and the first and last hour holding an
//! outcome — on ragged data: two models, two primary versions and a shadow
//! one, two thresholds, empty days and hours, missing inputs, labels
//! arriving days later and one label changed.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Column, Row};
use triad_proto::v1::Outcome;

use crate::support::{Ctx, DAY, HOUR, MONDAY, label, labels, outcome, record};

on_both!(the_daily_rollup_equals_summing_the_hourly_rows);

/// (model, version, shadow, day start).
type DayKey = (String, String, i64, i64);

/// A numeric column as `f64` (integer or float on either database).
fn number(row: &AnyRow, name: &str) -> f64 {
    row.try_get::<f64, _>(name)
        .or_else(|_| row.try_get::<i64, _>(name).map(|n| n as f64))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every row of `table` as its key and its named numeric columns (those
/// not in `key_columns`).
async fn rows(
    pool: &AnyPool,
    table: &str,
    key_columns: &[&str],
) -> Vec<(DayKey, i64, i64, BTreeMap<String, f64>)> {
    let rows = sqlx::query(&format!("SELECT * FROM {table}"))
        .fetch_all(pool)
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let hourly = table == "confusion_counts";
            let time: i64 = row.get(if hourly { "hour_ms" } else { "day_ms" });
            let key = (
                row.get::<String, _>("model"),
                row.get::<String, _>("version"),
                row.get::<i64, _>("shadow"),
                time.div_euclid(DAY) * DAY,
            );
            let (first, last) = if hourly {
                (time, time)
            } else {
                (row.get("first_hour_ms"), row.get("last_hour_ms"))
            };
            let counts = row
                .columns()
                .iter()
                .map(|c| c.name())
                .filter(|name| !key_columns.contains(name))
                .map(|name| (name.to_owned(), number(row, name)))
                .collect();
            (key, first, last, counts)
        })
        .collect()
}

fn at(model: &str, version: &str, shadow: bool, threshold: f32, mut o: Outcome) -> Outcome {
    o.model = model.into();
    o.version = version.into();
    o.shadow = shadow;
    o.threshold = threshold;
    o
}

async fn the_daily_rollup_equals_summing_the_hourly_rows(ctx: Ctx) {
    let mut client = ctx.client().await;
    let start = MONDAY - 10 * DAY;
    let mut outcomes = Vec::new();
    // Days 0, 1, 3, 4 hold outcomes (day 2 is empty), at ragged hours.
    for (n, (day, hour)) in [(0, 0), (0, 5), (0, 23), (1, 7), (3, 1), (3, 22), (4, 12)]
        .into_iter()
        .enumerate()
    {
        let t = start + day * DAY + hour * HOUR + 60_000 * n as i64;
        for k in 0..3 {
            let id = format!("{n}-{k}");
            let pair = (format!("b{id}"), format!("i{id}"));
            let mut o = outcome(&id, t, (&pair.0, &pair.1), (n + k) % 2 == 0);
            o.score = 0.1 + 0.1 * ((n * 3 + k) % 9) as f32;
            if k == 2 {
                o.line_item.as_mut().unwrap().vendor_name_expense = None;
            }
            let (version, shadow, threshold) = match (day, k) {
                (0 | 1, 0) => ("1", false, 0.5),
                (_, 0) => ("2", false, 0.5),
                (_, 1) => ("2", false, 0.7),
                _ => ("s", true, 0.5),
            };
            outcomes.push(at("m", version, shadow, threshold, o.clone()));
            if n % 3 == 0 {
                let mut other = at("n", "1", false, 0.5, o);
                other.outcome_id = format!("n{id}");
                other.request_id = format!("rn{id}");
                outcomes.push(other);
            }
        }
    }
    // Labels before some of their outcomes, and after.
    labels(&mut client, vec![label(("b0-0", "i0-0"), true)]).await;
    record(&mut client, outcomes).await;
    labels(
        &mut client,
        vec![
            label(("b1-1", "i1-1"), false),
            label(("b4-0", "i4-0"), true),
            label(("b6-2", "i6-2"), true),
        ],
    )
    .await;
    // A label changed days later: one count moves between cells.
    labels(&mut client, vec![label(("b0-0", "i0-0"), false)]).await;

    let hourly = rows(
        &ctx.pool,
        "confusion_counts",
        &["model", "version", "shadow", "threshold", "hour_ms"],
    )
    .await;
    let daily = rows(
        &ctx.pool,
        "confusion_days",
        &[
            "model",
            "version",
            "shadow",
            "day_ms",
            "first_hour_ms",
            "last_hour_ms",
        ],
    )
    .await;
    let mut summed: BTreeMap<DayKey, (i64, i64, BTreeMap<String, f64>)> = BTreeMap::new();
    for (key, hour, _, counts) in hourly {
        let entry = summed.entry(key).or_insert_with(|| {
            (
                hour,
                hour,
                counts.keys().map(|c| (c.clone(), 0.0)).collect(),
            )
        });
        entry.0 = entry.0.min(hour);
        entry.1 = entry.1.max(hour);
        for (column, value) in counts {
            *entry.2.get_mut(&column).unwrap() += value;
        }
    }
    assert!(summed.len() >= 10, "ragged data: {} days", summed.len());
    assert_eq!(
        daily.len(),
        summed.len(),
        "one daily row per version and day"
    );
    for (key, first, last, counts) in daily {
        let (s_first, s_last, s_counts) = &summed[&key];
        assert_eq!((first, last), (*s_first, *s_last), "{key:?}");
        assert_eq!(
            counts.keys().collect::<Vec<_>>(),
            s_counts.keys().collect::<Vec<_>>(),
            "the same counters in both tables"
        );
        for (column, value) in &counts {
            let want = s_counts[column];
            assert!(
                (value - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{key:?} {column}: {value} != {want}"
            );
        }
    }
}
