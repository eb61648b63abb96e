//! When something happened, on the wire: the range of event times
//! (milliseconds since the Unix epoch) every service accepts, so that one
//! caller's clock error or garbage time never lands in the monitor's
//! buckets. The scorer checks a request's `occurred_at_ms` with it and the
//! monitor each outcome's `scored_at_ms`; both refuse a time outside it
//! with `INVALID_ARGUMENT`.

/// 2000-01-01T00:00:00Z: the earliest event time accepted.
pub const EARLIEST_MS: i64 = 946_684_800_000;

/// How far past the receiver's clock an event time may be (clocks of two
/// machines disagree a little): five minutes.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1_000;

/// An event time outside the accepted range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Before [`EARLIEST_MS`].
    #[error(
        "{field} is {got}: expected milliseconds since the epoch, no earlier than 2000-01-01 ({EARLIEST_MS})"
    )]
    TooEarly {
        /// The wire field that held the time, e.g. `scored_at_ms`.
        field: &'static str,
        /// The time it held, milliseconds since the epoch.
        got: i64,
    },
    /// Later than the receiver's clock plus [`MAX_CLOCK_SKEW_MS`].
    #[error(
        "{field} is {got}: expected a time no later than now plus {} s of clock skew ({latest})",
        MAX_CLOCK_SKEW_MS / 1_000
    )]
    InTheFuture {
        /// The wire field that held the time, e.g. `scored_at_ms`.
        field: &'static str,
        /// The time it held, milliseconds since the epoch.
        got: i64,
        /// The latest time accepted when it was checked, milliseconds since
        /// the epoch.
        latest: i64,
    },
}

/// Checks that `ms`, the value of `field`, lies between 2000-01-01 and
/// `now_ms` plus [`MAX_CLOCK_SKEW_MS`].
pub fn check_event_time(field: &'static str, ms: i64, now_ms: i64) -> Result<(), TimeError> {
    let latest = now_ms.saturating_add(MAX_CLOCK_SKEW_MS);
    if ms < EARLIEST_MS {
        Err(TimeError::TooEarly { field, got: ms })
    } else if ms > latest {
        Err(TimeError::InTheFuture {
            field,
            got: ms,
            latest,
        })
    } else {
        Ok(())
    }
}

/// Now, in milliseconds since the epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_614_300_000;

    #[test]
    fn times_between_2000_and_now_plus_skew_are_accepted() {
        for ok in [EARLIEST_MS, NOW - 1, NOW, NOW + MAX_CLOCK_SKEW_MS] {
            assert_eq!(check_event_time("t", ok, NOW), Ok(()), "{ok}");
        }
    }

    #[test]
    fn the_far_past_and_the_future_are_refused_with_the_field_named() {
        assert!(matches!(
            check_event_time("occurred_at_ms", EARLIEST_MS - 1, NOW),
            Err(TimeError::TooEarly {
                field: "occurred_at_ms",
                ..
            })
        ));
        for future in [NOW + MAX_CLOCK_SKEW_MS + 1, i64::MAX] {
            let error = check_event_time("scored_at_ms", future, NOW).unwrap_err();
            assert!(matches!(error, TimeError::InTheFuture { .. }));
            assert!(error.to_string().starts_with("scored_at_ms is "), "{error}");
        }
        // A receiver's clock at the end of time never overflows.
        assert_eq!(check_event_time("t", i64::MAX, i64::MAX), Ok(()));
    }
}
