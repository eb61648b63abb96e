//! Time buckets (UTC hours, days and ISO weeks starting on Monday) and
//! time ranges, on epoch milliseconds with integer arithmetic that cannot
//! overflow, whatever time a row holds (rows stored before event times
//! were validated may hold any non-negative `i64`). A request's bucket and
//! range are checked into these by the application layer
//! (`app/validate.rs`).

/// One hour in milliseconds: the counters' resolution.
pub(crate) const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;
/// One week in milliseconds.
pub(crate) const WEEK_MS: i64 = 7 * DAY_MS;
/// 1970-01-01 was a Thursday: weeks start 4 days after the epoch (Monday
/// 1970-01-05), modulo 7 days.
const WEEK_OFFSET_MS: i64 = 4 * DAY_MS;

/// A bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    /// One UTC hour.
    Hour,
    /// One UTC day.
    Day,
    /// One ISO week, Monday to Sunday (UTC).
    Week,
}

impl Width {
    /// The bucket's length in milliseconds.
    pub(crate) fn millis(self) -> i64 {
        match self {
            Self::Hour => HOUR_MS,
            Self::Day => DAY_MS,
            Self::Week => WEEK_MS,
        }
    }

    /// `(width, offset)`: buckets start at `offset` modulo `width`.
    fn grid(self) -> (i64, i64) {
        match self {
            Self::Hour => (HOUR_MS, 0),
            Self::Day => (DAY_MS, 0),
            Self::Week => (WEEK_MS, WEEK_OFFSET_MS),
        }
    }

    /// An SQL expression of the number of the bucket holding the integer
    /// column `column`: `floor((column - offset) / width)`, written so that
    /// no intermediate value can overflow for any `BIGINT` (no addition to
    /// the column itself; SQLite turns an overflowing integer into a float
    /// and PostgreSQL fails), with `/` and `%` truncating toward zero as
    /// both databases do. Rows of one bucket share the number; ordering
    /// by it orders the buckets.
    pub(crate) fn sql_number(self, column: &str) -> String {
        let (width, offset) = self.grid();
        // column = q * width + r with |r| < width (truncating division):
        // floor(column / width) is q, less 1 when r < 0, and
        // m = (r + width) % width in [0, width) is the remainder after it
        // (r + width cannot overflow). Then
        // floor((column - offset) / width) = floor(column / width) - 1
        // + [m >= offset], which for offset 0 is floor(column / width).
        let floor =
            format!("({column} / {width} - CASE WHEN {column} % {width} < 0 THEN 1 ELSE 0 END)");
        if offset == 0 {
            floor
        } else {
            format!(
                "({floor} - 1 + CASE WHEN ({column} % {width} + {width}) % {width} >= {offset} \
                 THEN 1 ELSE 0 END)"
            )
        }
    }

    /// Start of the bucket holding `ms`; saturates at `i64::MIN` for the
    /// few times before the first representable bucket start.
    pub(crate) fn start(self, ms: i64) -> i64 {
        let (width, offset) = self.grid();
        let (ms, width, offset) = (i128::from(ms), i128::from(width), i128::from(offset));
        let start = (ms - offset).div_euclid(width) * width + offset;
        i64::try_from(start).unwrap_or(i64::MIN)
    }

    /// How many buckets of this width run from the one starting at
    /// `first` to the one starting at `last` (both included), without
    /// overflow: `None` when `last < first` or the count does not fit a
    /// `usize`.
    pub(crate) fn count(self, first: i64, last: i64) -> Option<usize> {
        let span = i128::from(last) - i128::from(first);
        if span < 0 {
            return None;
        }
        usize::try_from(span / i128::from(self.millis()) + 1).ok()
    }
}

/// A `[from, to)` range of epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Range {
    /// First millisecond in the range; `None`: unbounded.
    pub from_ms: Option<i64>,
    /// First millisecond after the range; `None`: unbounded.
    pub to_ms: Option<i64>,
}

/// Now, in milliseconds since the epoch (the one clock of every service,
/// [`triad_proto::time::now_ms`]).
pub(crate) fn now_ms() -> i64 {
    triad_proto::time::now_ms()
}

/// The UTC day of `ms` as `YYYY-MM-DD`; empty for a time beyond the
/// calendar's range (about 262 000 years either side of 1970).
pub(crate) fn day_string(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.date_naive().to_string())
        .unwrap_or_default()
}

/// `ms` as a UTC day for messages: `YYYY-MM-DD`, or the raw number of
/// milliseconds when it has no calendar date.
pub(crate) fn day_or_ms(ms: i64) -> String {
    match day_string(ms) {
        day if day.is_empty() => format!("{ms} ms"),
        day => day,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-25T13:45:00Z is a Wednesday.
    const WED: i64 = 1_795_614_300_000;

    #[test]
    fn buckets_start_on_the_hour_the_day_and_monday() {
        assert_eq!(Width::Hour.start(WED), 1_795_611_600_000);
        assert_eq!(day_string(Width::Day.start(WED)), "2026-11-25");
        assert_eq!(Width::Day.start(WED) % DAY_MS, 0);
        let monday = Width::Week.start(WED);
        assert_eq!(day_string(monday), "2026-11-23");
        assert_eq!(monday % DAY_MS, 0);
        assert_eq!(Width::Week.start(monday), monday);
        assert_eq!(Width::Week.start(monday - 1), monday - WEEK_MS);
        assert_eq!(day_string(Width::Week.start(0)), "1969-12-29");
    }

    /// What [`Width::sql_number`] computes, with SQL's truncating `/` and
    /// `%` (Rust's on `i64`).
    fn sql_number(width: Width, c: i64) -> i64 {
        let (w, o) = width.grid();
        let floor = c / w - i64::from(c % w < 0);
        if o == 0 {
            floor
        } else {
            floor - 1 + i64::from((c % w + w) % w >= o)
        }
    }

    #[test]
    fn bucket_numbers_and_starts_never_overflow() {
        let monday = Width::Week.start(WED);
        let times = [
            0,
            1,
            WED,
            monday,
            monday - 1,
            4 * DAY_MS,
            4 * DAY_MS - 1,
            -1,
            -WEEK_MS - 1,
            i64::MAX,
            i64::MAX - HOUR_MS,
            i64::MAX / HOUR_MS * HOUR_MS,
            i64::MIN,
            i64::MIN + 1,
        ];
        for width in [Width::Hour, Width::Day, Width::Week] {
            let sql = width.sql_number("hour_ms");
            assert!(
                !sql.contains("hour_ms +") && !sql.contains("hour_ms -"),
                "{sql}"
            );
            for ms in times {
                let start = width.start(ms);
                assert!(start <= ms, "{width:?} {ms}");
                if start > i64::MIN {
                    assert!(i128::from(ms) - i128::from(start) < i128::from(width.millis()));
                }
                // Same bucket, same number; the next bucket, the next one.
                let n = sql_number(width, ms);
                if start > i64::MIN {
                    assert_eq!(sql_number(width, start), n, "{width:?} {ms}");
                }
                if let Some(next) = start.checked_add(width.millis()) {
                    assert_eq!(sql_number(width, next), n + 1, "{width:?} {ms}");
                }
            }
        }
        assert_eq!(Width::Day.count(0, 2 * DAY_MS), Some(3));
        assert_eq!(Width::Hour.count(1, 0), None);
        assert_eq!(
            Width::Hour.count(Width::Hour.start(0), Width::Hour.start(i64::MAX)),
            Some((i64::MAX / HOUR_MS + 1) as usize)
        );
        assert_eq!(day_or_ms(i64::MAX), format!("{} ms", i64::MAX));
        assert_eq!(day_or_ms(WED), "2026-11-25");
    }
}
