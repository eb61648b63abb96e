//! `score_bins`: per (model, version, shadow, hour, bin) counts of
//! outcomes labelled positive, labelled negative and not labelled yet,
//! moved by deltas inside the transaction that stores the outcome or label
//! causing them, exactly as `confusion_counts` is ([`super::counters`]).
//! `QueryThreshold` sums them instead of reading raw scores; its exact path
//! reads the raw scores ([`Store::threshold_scores`]).
//!
//! The resolution: [`BINS`] bins whose lower edges are the single-precision
//! floats nearest `k / 1000` ([`lower_edge`]); a score falls in the bin of
//! the largest edge at or below it ([`bin_of`]). Migration `0005` holds the
//! same edges (`score_bin_edges`, tested equal) and counted the outcomes
//! stored before it with them.
//!
//! They move on exactly two events, as the counters do:
//! - a newly stored outcome adds 1 to its bin's cell of its current label
//!   ([`count_new_outcome`]; which outcomes the histogram holds is decided
//!   in one place, [`BinnedOutcome::counted`]);
//! - a label that changes an outcome's current label moves 1 from the old
//!   cell (or from unlabelled) to the new one in the same row
//!   ([`move_label`]); a row's total never changes, so no row is ever
//!   emptied and a row exists only for a bin that holds outcomes.

use std::collections::HashMap;

use sqlx::Any;

use super::scored::SCORED_SQL;
use super::{StorageError, Store, Writer, sql};
use crate::buckets::{HOUR_MS, Width};
use crate::store::HistogramFilter;

/// Bins of the histogram: edges `0, 0.001, …, 1` (as `f32`), the last bin
/// holding the scores `>= 1`.
pub(crate) const BINS: usize = 1_001;

/// The score-bin resolution: `1 / (BINS - 1)`.
pub(crate) const RESOLUTION: f64 = 0.001;

/// The lower edge of bin `k` (`k < BINS`): the `f32` nearest `k / 1000`.
pub(crate) fn lower_edge(k: usize) -> f32 {
    // IEEE division is correctly rounded: the f32 nearest k / 1000.
    k as f32 / (BINS - 1) as f32
}

/// The bin of `score`: the largest `k` with `lower_edge(k) <= score`; 0 for
/// scores below 0 (and NaN, which is never stored).
pub(crate) fn bin_of(score: f32) -> usize {
    if score.is_nan() || score <= 0.0 {
        return 0;
    }
    if score >= 1.0 {
        return BINS - 1;
    }
    let mut k = ((f64::from(score) * (BINS - 1) as f64).floor() as usize).min(BINS - 1);
    while k > 0 && lower_edge(k) > score {
        k -= 1;
    }
    while k + 1 < BINS && lower_edge(k + 1) <= score {
        k += 1;
    }
    k
}

/// Key of one `score_bins` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BinKey {
    pub model: String,
    pub version: String,
    pub shadow: bool,
    pub hour_ms: i64,
    pub bin: usize,
}

/// The counts of one row, or a delta to add to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BinCounts {
    pub positive: i64,
    pub negative: i64,
    pub unlabelled: i64,
}

impl BinCounts {
    /// Adds `by` to the cell of `label` (`None`: unlabelled).
    fn cell(&mut self, label: Option<bool>, by: i64) {
        match label {
            Some(true) => self.positive += by,
            Some(false) => self.negative += by,
            None => self.unlabelled += by,
        }
    }
}

/// The deltas of one transaction.
pub(crate) type BinDeltas = HashMap<BinKey, BinCounts>;

/// One stored outcome as the histogram sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BinnedOutcome<'a> {
    pub model: &'a str,
    pub version: &'a str,
    pub shadow: bool,
    pub hour_ms: i64,
    pub score: f32,
    /// Whether the model scored it ([`super::scored`]).
    pub scored: bool,
}

impl BinnedOutcome<'_> {
    /// Whether the histogram holds this outcome: the one condition both
    /// [`count_new_outcome`] and [`move_label`] obey — the scored outcomes
    /// ([`super::scored`]); a gated model's rows not scored stay out, in
    /// migration `0005`'s backfill and [`Store::threshold_scores`]'s SQL
    /// alike.
    fn counted(&self) -> bool {
        self.scored
    }

    fn key(&self) -> BinKey {
        BinKey {
            model: self.model.to_owned(),
            version: self.version.to_owned(),
            shadow: self.shadow,
            hour_ms: self.hour_ms,
            bin: bin_of(self.score),
        }
    }
}

/// Counts a newly stored outcome with its current label, if the
/// histogram holds it ([`BinnedOutcome::counted`]).
pub(crate) fn count_new_outcome(
    deltas: &mut BinDeltas,
    outcome: BinnedOutcome<'_>,
    label: Option<bool>,
) {
    if outcome.counted() {
        deltas.entry(outcome.key()).or_default().cell(label, 1);
    }
}

/// Moves a stored outcome from its `old` label's cell to its `new` one's.
pub(crate) fn move_label(
    deltas: &mut BinDeltas,
    outcome: BinnedOutcome<'_>,
    old: Option<bool>,
    new: Option<bool>,
) {
    if old == new || !outcome.counted() {
        return;
    }
    let delta = deltas.entry(outcome.key()).or_default();
    delta.cell(old, -1);
    delta.cell(new, 1);
}

/// Adds `deltas` to their hourly rows (`score_bins`) and to their days'
/// rows (`score_bins_daily`), creating missing rows, in multi-row upserts.
pub(crate) async fn apply(w: &mut Writer<'_>, deltas: BinDeltas) -> Result<(), StorageError> {
    let mut daily = BinDeltas::new();
    for (key, c) in &deltas {
        let day = daily
            .entry(BinKey {
                hour_ms: Width::Day.start(key.hour_ms),
                ..key.clone()
            })
            .or_default();
        day.positive += c.positive;
        day.negative += c.negative;
        day.unlabelled += c.unlabelled;
    }
    upsert(w, "score_bins", "hour_ms", deltas).await?;
    upsert(w, "score_bins_daily", "day_ms", daily).await
}

/// Adds `deltas` to the rows of `table` (a literal) keyed by `time` (its
/// hour or day column).
async fn upsert(
    w: &mut Writer<'_>,
    table: &str,
    time: &str,
    deltas: BinDeltas,
) -> Result<(), StorageError> {
    let deltas: Vec<(BinKey, BinCounts)> = deltas
        .into_iter()
        .filter(|(_, c)| *c != BinCounts::default())
        .collect();
    const COLS: usize = 8;
    let keys = format!("model, version, shadow, {time}, bin");
    for chunk in deltas.chunks((w.per * 34 / COLS).max(1)) {
        let statement = w.backend.sql(format!(
            "INSERT INTO {table} ({keys}, positive, negative, unlabelled) VALUES {} \
             ON CONFLICT ({keys}) DO UPDATE SET \
             positive = {table}.positive + excluded.positive, \
             negative = {table}.negative + excluded.negative, \
             unlabelled = {table}.unlabelled + excluded.unlabelled",
            sql::values(w.backend, chunk.len(), COLS, 1)
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for (key, c) in chunk {
            query = query
                .bind(key.model.as_str())
                .bind(key.version.as_str())
                .bind(i64::from(key.shadow))
                .bind(key.hour_ms)
                .bind(key.bin as i64)
                .bind(c.positive)
                .bind(c.negative)
                .bind(c.unlabelled);
        }
        query.execute(&mut *w.tx).await?;
    }
    Ok(())
}

/// Outcomes of one score (a bin's lower edge, or one exact score) by label.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct ScoreCounts {
    pub score: f32,
    pub positive: u64,
    pub negative: u64,
    pub unlabelled: u64,
}

/// A threshold the window's outcomes were scored with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ThresholdUse {
    pub threshold: f32,
    pub outcomes: u64,
    /// Start of the newest hour holding outcomes scored with it.
    pub last_hour_ms: i64,
}

/// The hours overlapping a filter's range: `[first, end)`, both hour
/// starts (unbounded sides far beyond any stored time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HourSpan {
    first: i64,
    end: i64,
}

/// Stands for an unbounded side: beyond any storable time, and far from
/// overflowing.
const FAR: i64 = 1 << 60;

impl HourSpan {
    fn of(filter: &HistogramFilter) -> Self {
        let first = filter
            .range
            .from_ms
            .map_or(-FAR, |from| Width::Hour.start(from));
        let end = filter.range.to_ms.map_or(FAR, |to| {
            Width::Hour
                .start(to.saturating_sub(1))
                .saturating_add(HOUR_MS)
        });
        Self { first, end }
    }

    /// The whole UTC days within the span, `[from, to)`; an empty range
    /// (`from == to`, inside the span) when there is none, so that the
    /// hours before and after it cover the span alone.
    fn whole_days(self) -> (i64, i64) {
        let from = match Width::Day.start(self.first) {
            start if start == self.first => start,
            start => start.saturating_add(Width::Day.millis()),
        };
        let to = Width::Day.start(self.end);
        if from < to {
            (from, to)
        } else {
            (self.end, self.end)
        }
    }
}

/// `WHERE …` over an hourly table (`hour_ms`) for `filter`'s hours (the
/// hours overlapping its range), numbering placeholders from 1, and the
/// binds it needs after the model.
fn hourly_clause(filter: &HistogramFilter) -> (String, Vec<i64>) {
    let mut clause = String::from("WHERE model = $1");
    let mut n = 1;
    let mut times = Vec::new();
    if filter.version.is_some() {
        n += 1;
        clause += &format!(" AND version = ${n}");
    }
    if !filter.include_shadow {
        clause += " AND shadow = 0";
    }
    if let Some(from) = filter.range.from_ms {
        n += 1;
        clause += &format!(" AND hour_ms > ${n}");
        times.push(from.saturating_sub(HOUR_MS));
    }
    if let Some(to) = filter.range.to_ms {
        n += 1;
        clause += &format!(" AND hour_ms < ${n}");
        times.push(to);
    }
    (clause, times)
}

impl Store {
    /// The histogram of `filter`'s outcomes, summed over the hours
    /// overlapping its range (as `QueryMetrics` counts): one entry per
    /// bin holding outcomes, its score the bin's lower edge, in increasing
    /// order.
    pub(crate) async fn binned_scores(
        &self,
        filter: &HistogramFilter,
    ) -> Result<Vec<ScoreCounts>, StorageError> {
        let hours = HourSpan::of(filter);
        let (full_from, full_to) = hours.whole_days();
        // The whole days from the daily rows, the hours before and after
        // them from the hourly ones.
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        let mut part = |table: &str, time: &str, ranges: usize| {
            let mut clause = format!("model = ${}", next());
            if filter.version.is_some() {
                clause += &format!(" AND version = ${}", next());
            }
            if !filter.include_shadow {
                clause += " AND shadow = 0";
            }
            let spans: Vec<String> = (0..ranges)
                .map(|_| format!("({time} >= ${} AND {time} < ${})", next(), next()))
                .collect();
            format!(
                "SELECT bin, positive, negative, unlabelled FROM {table} WHERE {clause} AND ({})",
                spans.join(" OR ")
            )
        };
        let daily = part("score_bins_daily", "day_ms", 1);
        let hourly = part("score_bins", "hour_ms", 2);
        let statement = self.backend().sql(format!(
            "SELECT bin, CAST(SUM(positive) AS BIGINT), CAST(SUM(negative) AS BIGINT), \
             CAST(SUM(unlabelled) AS BIGINT) FROM ({daily} UNION ALL {hourly}) AS b \
             GROUP BY bin ORDER BY bin"
        ));
        let mut query = sqlx::query::<Any>(&statement);
        for spans in [
            vec![(full_from, full_to)],
            vec![(hours.first, full_from), (full_to, hours.end)],
        ] {
            query = query.bind(filter.model.as_str());
            if let Some(version) = &filter.version {
                query = query.bind(version.as_str());
            }
            for (from, to) in spans {
                query = query.bind(from).bind(to);
            }
        }
        let mut out = Vec::new();
        for row in query.fetch_all(self.pool()).await? {
            let bin = usize::try_from(sql::int(&row, 0)?)
                .unwrap_or(0)
                .min(BINS - 1);
            let counts = ScoreCounts {
                score: lower_edge(bin),
                positive: count(sql::int(&row, 1)?),
                negative: count(sql::int(&row, 2)?),
                unlabelled: count(sql::int(&row, 3)?),
            };
            if counts.positive + counts.negative + counts.unlabelled > 0 {
                out.push(counts);
            }
        }
        Ok(out)
    }

    /// The thresholds `filter`'s outcomes were scored with (from the
    /// hourly counters, over the hours overlapping its range), newest
    /// first: by their newest hour, then by outcomes; at most `limit`.
    pub(crate) async fn thresholds_in_use(
        &self,
        filter: &HistogramFilter,
        limit: usize,
    ) -> Result<Vec<ThresholdUse>, StorageError> {
        let (clause, times) = hourly_clause(filter);
        let statement = self.backend().sql(format!(
            "SELECT threshold, CAST(SUM(outcomes) AS BIGINT), MAX(hour_ms) \
             FROM confusion_counts {clause} GROUP BY threshold \
             ORDER BY 3 DESC, 2 DESC, 1 DESC LIMIT {limit}"
        ));
        let mut query = sqlx::query::<Any>(&statement).bind(filter.model.as_str());
        if let Some(version) = &filter.version {
            query = query.bind(version.as_str());
        }
        for t in times {
            query = query.bind(t);
        }
        let mut out = Vec::new();
        for row in query.fetch_all(self.pool()).await? {
            out.push(ThresholdUse {
                // Stored from an f32: narrowing gives it back exactly.
                threshold: sql::float(&row, 0)? as f32,
                outcomes: count(sql::int(&row, 1)?),
                last_hour_ms: sql::int(&row, 2)?,
            });
        }
        Ok(out)
    }

    /// Outcomes in the hours overlapping `filter`'s range (from the hourly
    /// counters): an upper bound of those in the range itself.
    pub(crate) async fn outcomes_in_hours(
        &self,
        filter: &HistogramFilter,
    ) -> Result<u64, StorageError> {
        let (clause, times) = hourly_clause(filter);
        let statement = self.backend().sql(format!(
            "SELECT CAST(SUM(outcomes) AS BIGINT) FROM confusion_counts {clause}"
        ));
        let mut query = sqlx::query::<Any>(&statement).bind(filter.model.as_str());
        if let Some(version) = &filter.version {
            query = query.bind(version.as_str());
        }
        for t in times {
            query = query.bind(t);
        }
        let row = query.fetch_one(self.pool()).await?;
        Ok(count(sql::opt_int(&row, 0)?.unwrap_or(0)))
    }

    /// The exact path: every outcome `filter` selects (its range exact to
    /// the millisecond), grouped by distinct score with its current truth
    /// as the `labelled_outcomes` view computes it (the request's own label
    /// wins over the pair's), in increasing score order; at most `limit`
    /// outcomes are read, `None` when there are more.
    pub(crate) async fn threshold_scores(
        &self,
        filter: &HistogramFilter,
        limit: usize,
    ) -> Result<Option<Vec<ScoreCounts>>, StorageError> {
        let mut clause = format!("WHERE {SCORED_SQL} AND model = $1");
        let mut n = 1;
        if filter.version.is_some() {
            n += 1;
            clause += &format!(" AND version = ${n}");
        }
        if !filter.include_shadow {
            clause += " AND shadow = 0";
        }
        if filter.range.from_ms.is_some() {
            n += 1;
            clause += &format!(" AND scored_at_ms >= ${n}");
        }
        if filter.range.to_ms.is_some() {
            n += 1;
            clause += &format!(" AND scored_at_ms < ${n}");
        }
        let statement = self.backend().sql(format!(
            "SELECT score, truth FROM labelled_outcomes {clause} LIMIT {}",
            limit.saturating_add(1)
        ));
        let mut query = sqlx::query::<Any>(&statement).bind(filter.model.as_str());
        if let Some(version) = &filter.version {
            query = query.bind(version.as_str());
        }
        if let Some(from) = filter.range.from_ms {
            query = query.bind(from);
        }
        if let Some(to) = filter.range.to_ms {
            query = query.bind(to);
        }
        let rows = query.fetch_all(self.pool()).await?;
        if rows.len() > limit {
            return Ok(None);
        }
        let mut by_score: HashMap<u32, ScoreCounts> = HashMap::new();
        for row in &rows {
            // Stored from an f32: narrowing gives it back exactly.
            let score = sql::float(row, 0)? as f32;
            let entry = by_score.entry(score.to_bits()).or_insert(ScoreCounts {
                score,
                ..ScoreCounts::default()
            });
            match sql::opt_int(row, 1)? {
                Some(0) => entry.negative += 1,
                Some(_) => entry.positive += 1,
                None => entry.unlabelled += 1,
            }
        }
        let mut out: Vec<ScoreCounts> = by_score.into_values().collect();
        out.sort_by(|a, b| a.score.total_cmp(&b.score));
        Ok(Some(out))
    }
}

/// A summed count (never negative in a consistent store) as `u64`.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_the_nearest_floats_and_bins_round_down() {
        assert_eq!(lower_edge(0), 0.0);
        assert_eq!(lower_edge(400), 0.4_f32);
        assert_eq!(lower_edge(370), 0.37_f32);
        assert_eq!(lower_edge(700), 0.7_f32);
        assert_eq!(lower_edge(BINS - 1), 1.0);
        for k in 0..BINS {
            let edge = lower_edge(k);
            assert_eq!(bin_of(edge), k, "{edge}");
            if k > 0 {
                assert!(lower_edge(k - 1) < edge);
                // The float just below an edge is in the bin before.
                assert_eq!(bin_of(f32::from_bits(edge.to_bits() - 1)), k - 1, "{edge}");
            }
        }
        assert_eq!(bin_of(-3.0), 0);
        assert_eq!(bin_of(7.5), BINS - 1);
        assert_eq!(bin_of(0.000_999), 0);
        assert_eq!(bin_of(0.999_999), BINS - 2);
    }

    #[test]
    fn a_label_moves_one_count_within_its_row() {
        let outcome = BinnedOutcome {
            model: "m",
            version: "1",
            shadow: false,
            hour_ms: 0,
            score: 0.5,
            scored: true,
        };
        let mut deltas = BinDeltas::new();
        count_new_outcome(&mut deltas, outcome, None);
        move_label(&mut deltas, outcome, None, Some(true));
        move_label(&mut deltas, outcome, Some(true), Some(false));
        move_label(&mut deltas, outcome, Some(false), Some(false));
        assert_eq!(deltas.len(), 1);
        assert_eq!(
            deltas.values().next(),
            Some(&BinCounts {
                positive: 0,
                negative: 1,
                unlabelled: 0
            })
        );
    }

    #[test]
    fn a_row_not_scored_never_enters_the_histogram() {
        let outcome = BinnedOutcome {
            model: "m",
            version: "1",
            shadow: false,
            hour_ms: 0,
            score: 0.5,
            scored: false,
        };
        let mut deltas = BinDeltas::new();
        count_new_outcome(&mut deltas, outcome, None);
        move_label(&mut deltas, outcome, None, Some(true));
        assert!(deltas.is_empty());
    }

    #[test]
    fn a_span_reads_whole_days_and_the_hours_around_them() {
        use crate::buckets::{DAY_MS, Range};
        let day = 20_000 * DAY_MS;
        let span = |from: Option<i64>, to: Option<i64>| {
            HourSpan::of(&HistogramFilter {
                model: "m".into(),
                version: None,
                include_shadow: false,
                range: Range {
                    from_ms: from,
                    to_ms: to,
                },
            })
        };
        // Aligned: days only.
        let s = span(Some(day), Some(day + 3 * DAY_MS));
        assert_eq!(s.whole_days(), (day, day + 3 * DAY_MS));
        // Ragged: 5:30 on the first day to 2:10 on the fourth.
        let s = span(
            Some(day + 5 * HOUR_MS + 1_800_000),
            Some(day + 3 * DAY_MS + 2 * HOUR_MS + 600_000),
        );
        assert_eq!(
            (s.first, s.end),
            (day + 5 * HOUR_MS, day + 3 * DAY_MS + 3 * HOUR_MS)
        );
        assert_eq!(s.whole_days(), (day + DAY_MS, day + 3 * DAY_MS));
        // Within one day: hours only.
        let s = span(Some(day + HOUR_MS), Some(day + 5 * HOUR_MS));
        assert_eq!(s.whole_days(), (s.end, s.end));
        // Unbounded.
        let s = span(None, None);
        assert!(s.whole_days().0 <= -FAR + DAY_MS && s.whole_days().1 >= FAR - DAY_MS);
    }

    #[test]
    fn the_migration_holds_the_same_edges() {
        let migration = include_str!("../../migrations/0005_score_bins.sql");
        for k in 0..BINS {
            let n = f64::from(lower_edge(k)) * 8_589_934_592.0;
            assert_eq!(n.fract(), 0.0, "{k}");
            assert!(
                migration.contains(&format!("({k}, {})", n as u64)),
                "edge {k} missing from the migration"
            );
        }
    }
}
