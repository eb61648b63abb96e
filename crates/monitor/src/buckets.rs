//! Time buckets (UTC hours, days and ISO weeks starting on Monday) and
//! request time ranges, on epoch milliseconds with integer arithmetic.

use triad_proto::v1::Bucket;

use crate::error::MonitorError;

/// One hour in milliseconds: the counters' resolution.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// One week in milliseconds.
pub const WEEK_MS: i64 = 7 * DAY_MS;
/// 1970-01-01 was a Thursday: weeks start 4 days after the epoch (Monday
/// 1970-01-05), modulo 7 days.
const WEEK_OFFSET_MS: i64 = 4 * DAY_MS;

/// A bucket width, validated from the wire enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    Hour,
    Day,
    Week,
}

impl Width {
    /// `BUCKET_UNSPECIFIED` is a day.
    pub fn from_wire(bucket: i32) -> Result<Self, MonitorError> {
        match Bucket::try_from(bucket) {
            Ok(Bucket::Hour) => Ok(Self::Hour),
            Ok(Bucket::Day | Bucket::Unspecified) => Ok(Self::Day),
            Ok(Bucket::Week) => Ok(Self::Week),
            Err(_) => Err(MonitorError::UnknownBucket(bucket)),
        }
    }

    /// The bucket's length in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Self::Hour => HOUR_MS,
            Self::Day => DAY_MS,
            Self::Week => WEEK_MS,
        }
    }

    /// `(width, shift)` such that the bucket holding `ms >= 0` is number
    /// `(ms + shift) / width` (integer division, no negative operand) and
    /// starts at `number * width - shift`: how SQL groups counters.
    pub fn grouping(self) -> (i64, i64) {
        match self {
            Self::Hour => (HOUR_MS, 0),
            Self::Day => (DAY_MS, 0),
            Self::Week => (WEEK_MS, WEEK_MS - WEEK_OFFSET_MS),
        }
    }

    /// Start of the bucket holding `ms`.
    pub fn start(self, ms: i64) -> i64 {
        let (width, offset) = match self {
            Self::Hour => (HOUR_MS, 0),
            Self::Day => (DAY_MS, 0),
            Self::Week => (WEEK_MS, WEEK_OFFSET_MS),
        };
        (ms - offset).div_euclid(width) * width + offset
    }
}

/// A validated `[from, to)` range of epoch milliseconds; `None` is
/// unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl Range {
    /// From the wire's `from_ms`/`to_ms`, where 0 means unbounded.
    pub fn from_wire(from_ms: i64, to_ms: i64) -> Result<Self, MonitorError> {
        for (field, got) in [("from_ms", from_ms), ("to_ms", to_ms)] {
            if got < 0 {
                return Err(MonitorError::NegativeTime { field, got });
            }
        }
        if from_ms != 0 && to_ms != 0 && from_ms > to_ms {
            return Err(MonitorError::InvertedRange { from_ms, to_ms });
        }
        Ok(Self {
            from_ms: (from_ms != 0).then_some(from_ms),
            to_ms: (to_ms != 0).then_some(to_ms),
        })
    }

    /// Whether `ms` lies in the range.
    pub fn contains(&self, ms: i64) -> bool {
        self.from_ms.is_none_or(|from| ms >= from) && self.to_ms.is_none_or(|to| ms < to)
    }
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The UTC day of `ms` as `YYYY-MM-DD`.
pub fn day_string(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.date_naive().to_string())
        .unwrap_or_default()
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
        for width in [Width::Hour, Width::Day, Width::Week] {
            let (w, shift) = width.grouping();
            for ms in [0, WED, monday, monday - 1, 4 * DAY_MS, 4 * DAY_MS - 1] {
                assert_eq!(
                    (ms + shift) / w * w - shift,
                    width.start(ms),
                    "{width:?} {ms}"
                );
            }
        }
    }

    #[test]
    fn ranges_validate_and_treat_zero_as_unbounded() {
        assert_eq!(Range::from_wire(0, 0).unwrap(), Range::default());
        assert!(matches!(
            Range::from_wire(5, 4),
            Err(MonitorError::InvertedRange { .. })
        ));
        assert!(matches!(
            Range::from_wire(-1, 0),
            Err(MonitorError::NegativeTime {
                field: "from_ms",
                ..
            })
        ));
        let r = Range::from_wire(10, 20).unwrap();
        assert!(r.contains(10) && r.contains(19) && !r.contains(20) && !r.contains(9));
        assert!(matches!(
            Width::from_wire(9),
            Err(MonitorError::UnknownBucket(9))
        ));
        assert_eq!(Width::from_wire(0).unwrap(), Width::Day);
    }
}
