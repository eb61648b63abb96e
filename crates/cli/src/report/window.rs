//! The report's time window from `--since` and `--until`: a duration back
//! from `--until` (`7d`, `24h`) or an RFC 3339 time, and an end that
//! defaults to the start of the current UTC day, so that a report holds
//! whole days only. Bounded: at most [`MAX_DAYS`] days long, from
//! 2000-01-01 on, ending at most a day after now.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

/// One day, in milliseconds.
pub(crate) const DAY_MS: i64 = 86_400_000;
/// One hour, in milliseconds.
const HOUR_MS: i64 = 3_600_000;
/// The longest window a report covers, in days.
pub(crate) const MAX_DAYS: i64 = 366;
/// 2000-01-01T00:00:00Z: the monitor stores nothing older.
const EARLIEST_MS: i64 = 946_684_800_000;
/// Longest `--since`/`--until` value read, in bytes.
const MAX_ARG_BYTES: usize = 64;

/// `[from_ms, until_ms)`, milliseconds since the epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) from_ms: i64,
    pub(crate) until_ms: i64,
}

impl Window {
    /// The window from the two arguments, relative to `now_ms`.
    pub(crate) fn parse(since: &str, until: Option<&str>, now_ms: i64) -> anyhow::Result<Self> {
        let until_ms = match until {
            None => now_ms.div_euclid(DAY_MS) * DAY_MS,
            Some("now") => now_ms,
            Some(text) => time("--until", text)?,
        };
        let from_ms = match duration(since)? {
            Some(length) => until_ms - length,
            None => time("--since", since)?,
        };
        if until_ms > now_ms + DAY_MS {
            bail!("--until is more than a day after now: expected a time in the past");
        }
        if from_ms < EARLIEST_MS {
            bail!("the window starts before 2000-01-01: the monitor stores nothing older");
        }
        if from_ms >= until_ms {
            bail!(
                "--since ({}) is not before --until ({}): expected a window of at least one millisecond",
                rfc3339(from_ms),
                rfc3339(until_ms)
            );
        }
        if until_ms - from_ms > MAX_DAYS * DAY_MS {
            bail!("the window is longer than {MAX_DAYS} days: expected at most {MAX_DAYS}d");
        }
        Ok(Self { from_ms, until_ms })
    }

    /// The same window one week earlier.
    pub(crate) fn week_before(self) -> Self {
        Self {
            from_ms: self.from_ms - 7 * DAY_MS,
            until_ms: self.until_ms - 7 * DAY_MS,
        }
    }

    /// The start of every UTC day the window overlaps, oldest first.
    pub(crate) fn days(self) -> Vec<i64> {
        let first = self.from_ms.div_euclid(DAY_MS) * DAY_MS;
        (0..)
            .map(|i| first + i * DAY_MS)
            .take_while(|start| *start < self.until_ms)
            .collect()
    }
}

/// `7d` or `24h` as milliseconds, `None` when `text` is not a duration.
fn duration(text: &str) -> anyhow::Result<Option<i64>> {
    check_length("--since", text)?;
    let (digits, unit) = match text.strip_suffix('d') {
        Some(digits) => (digits, DAY_MS),
        None => match text.strip_suffix('h') {
            Some(digits) => (digits, HOUR_MS),
            None => return Ok(None),
        },
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let n: i64 = digits
        .parse()
        .ok()
        .filter(|n| *n > 0 && *n <= MAX_DAYS * DAY_MS / unit)
        .with_context(|| {
            format!(
                "--since is {text:?}: expected 1 to {MAX_DAYS} days (or {} hours)",
                MAX_DAYS * 24
            )
        })?;
    Ok(Some(n * unit))
}

fn check_length(flag: &str, text: &str) -> anyhow::Result<()> {
    if text.len() > MAX_ARG_BYTES {
        bail!(
            "{flag} is {} bytes long: expected a duration such as 7d or an RFC 3339 time",
            text.len()
        );
    }
    Ok(())
}

/// An RFC 3339 time as milliseconds since the epoch.
fn time(flag: &str, text: &str) -> anyhow::Result<i64> {
    check_length(flag, text)?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            anyhow::anyhow!(
                "{flag} is {text:?}: expected a duration such as 7d or 24h, or an RFC 3339 time such as 2026-11-02T00:00:00Z"
            )
        })
}

/// `ms` as an RFC 3339 time in UTC, to the second.
pub(crate) fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// The UTC day of `ms`, `YYYY-MM-DD`.
pub(crate) fn day(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-09T10:30:00Z, a Monday.
    const NOW: i64 = 1_794_220_200_000;
    const MIDNIGHT: i64 = 1_794_182_400_000;

    #[test]
    fn durations_end_at_the_start_of_today_by_default() {
        let w = Window::parse("7d", None, NOW).unwrap();
        assert_eq!(w.until_ms, MIDNIGHT);
        assert_eq!(w.from_ms, MIDNIGHT - 7 * DAY_MS);
        assert_eq!(w.days().len(), 7);
        assert_eq!(day(w.from_ms), "2026-11-02");
        let w = Window::parse("24h", Some("now"), NOW).unwrap();
        assert_eq!((w.from_ms, w.until_ms), (NOW - DAY_MS, NOW));
        assert_eq!(w.days().len(), 2);
        assert_eq!(w.week_before().until_ms, NOW - 7 * DAY_MS);
    }

    #[test]
    fn rfc3339_times_are_read() {
        let w = Window::parse(
            "2026-11-02T00:00:00Z",
            Some("2026-11-05T00:00:00+01:00"),
            NOW,
        )
        .unwrap();
        assert_eq!(w.from_ms, MIDNIGHT - 7 * DAY_MS);
        assert_eq!(w.until_ms, MIDNIGHT - 4 * DAY_MS - 3_600_000);
        assert_eq!(rfc3339(w.from_ms), "2026-11-02T00:00:00Z");
    }

    #[test]
    fn nonsense_and_unbounded_windows_are_refused() {
        for (since, until, expected) in [
            ("0d", None, "expected 1 to 366 days"),
            ("367d", None, "expected 1 to 366 days"),
            ("99999999999999999999d", None, "expected 1 to 366 days"),
            ("8785h", None, "expected 1 to 366 days"),
            ("7w", None, "expected a duration such as 7d"),
            ("-7d", None, "expected a duration such as 7d"),
            ("yesterday", None, "expected a duration such as 7d"),
            ("", None, "expected a duration such as 7d"),
            (
                "1999-12-31T00:00:00Z",
                Some("2000-01-02T00:00:00Z"),
                "before 2000-01-01",
            ),
            (
                "2026-11-05T00:00:00Z",
                Some("2026-11-01T00:00:00Z"),
                "is not before --until",
            ),
            ("2020-01-01T00:00:00Z", None, "longer than 366 days"),
            (
                "7d",
                Some("2030-01-01T00:00:00Z"),
                "more than a day after now",
            ),
            ("7d", Some("tomorrow"), "--until is \"tomorrow\""),
        ] {
            let error = Window::parse(since, until, NOW).unwrap_err().to_string();
            assert!(error.contains(expected), "{since} {until:?}: {error}");
        }
        let long = "9".repeat(100);
        let error = Window::parse(&long, None, NOW).unwrap_err().to_string();
        assert!(error.contains("100 bytes long"), "{error}");
    }
}
