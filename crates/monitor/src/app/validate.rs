//! Checks of the caller's values that every write and query shares: ids
//! and names (at most [`MAX_ID_BYTES`], no NUL character, which
//! PostgreSQL cannot store and would fail a whole batch over), event times
//! (between 2000-01-01 and now plus the clock skew,
//! [`triad_proto::time::check_event_time`]; 0 means now), time ranges and
//! bucket widths, metric names, and the rejections of refused items. A
//! message or a rejection never echoes more than 64 characters of a
//! caller's value ([`triad_server::quote()`]), and one answer lists at most
//! [`MAX_REJECTIONS_LISTED`] rejections, so that what a caller sends cannot
//! make the answer (or the monitor's memory) grow beyond what it sent.

use std::borrow::Cow;

use triad_proto::v1::{Bucket, Rejection};

use super::error::RequestError;
use super::quality::METRIC_NAMES;
use crate::buckets::{Range, Width};
use crate::fields::SEED_FIELDS;

/// Longest id (outcome, request, correlation, pair ids, model, version,
/// event name, label source) accepted, in bytes.
pub(crate) const MAX_ID_BYTES: usize = 512;

/// Most rejections one answer lists (a `RecordOutcomesStream` across all
/// its messages). Every outcome sent is stored, a duplicate or rejected,
/// so the caller still knows how many were rejected: sent − `stored` −
/// `duplicates`.
pub(crate) const MAX_REJECTIONS_LISTED: usize = 1_000;

/// Why the id `value` of `field` cannot be stored, if it cannot: empty
/// (when `required`), longer than [`MAX_ID_BYTES`] or holding a NUL
/// character.
pub(crate) fn item_id(field: &'static str, value: &str, required: bool) -> Result<(), String> {
    if required && value.is_empty() {
        return Err(format!("{field} is empty: expected a non-empty id"));
    }
    query_id(field, value, false).map_err(|error| error.to_string())
}

/// `text` as both databases can store it: PostgreSQL refuses the NUL
/// character in text, so each one becomes U+FFFD (`�`). For values kept
/// as reports (raw inputs, item errors), never refused over it.
pub(crate) fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The time an item happened: `ms`, or `now` when `ms` is 0; refused
/// (with the reason) when it lies before 2000-01-01 or after `now` plus
/// [`triad_proto::time::MAX_CLOCK_SKEW_MS`]. Times outside that range
/// would land in buckets nobody looks at, or stretch every answer over
/// the years between them and now.
pub(crate) fn event_time(field: &'static str, ms: i64, now: i64) -> Result<i64, String> {
    if ms == 0 {
        return Ok(now);
    }
    triad_proto::time::check_event_time(field, ms, now).map_err(|error| error.to_string())?;
    Ok(ms)
}

/// Checks a query's id or name of `field`: non-empty when `required`, at
/// most [`MAX_ID_BYTES`] and without a NUL character (no other one can be
/// stored).
pub(crate) fn query_id(
    field: &'static str,
    value: &str,
    required: bool,
) -> Result<(), RequestError> {
    if required && value.is_empty() {
        return Err(RequestError::Empty { field });
    }
    if value.len() > MAX_ID_BYTES {
        return Err(RequestError::too_long(field, value, MAX_ID_BYTES));
    }
    if value.contains('\0') {
        return Err(RequestError::nul(field, value));
    }
    Ok(())
}

/// The range of a request's `from_ms` and `to_ms`, where 0 means
/// unbounded: neither negative, and `from_ms <= to_ms` when both are set.
pub(crate) fn range(from_ms: i64, to_ms: i64) -> Result<Range, RequestError> {
    for (field, got) in [("from_ms", from_ms), ("to_ms", to_ms)] {
        if got < 0 {
            return Err(RequestError::NegativeTime { field, got });
        }
    }
    if from_ms != 0 && to_ms != 0 && from_ms > to_ms {
        return Err(RequestError::InvertedRange { from_ms, to_ms });
    }
    Ok(Range {
        from_ms: (from_ms != 0).then_some(from_ms),
        to_ms: (to_ms != 0).then_some(to_ms),
    })
}

/// The width of a request's `bucket`; `BUCKET_UNSPECIFIED` is a day.
pub(crate) fn width(bucket: i32) -> Result<Width, RequestError> {
    match Bucket::try_from(bucket) {
        Ok(Bucket::Hour) => Ok(Width::Hour),
        Ok(Bucket::Day | Bucket::Unspecified) => Ok(Width::Day),
        Ok(Bucket::Week) => Ok(Width::Week),
        Err(_) => Err(RequestError::UnknownBucket(bucket)),
    }
}

/// The id a rejection names: the item's id when it could be a stored one,
/// else its quotation (at most 64 characters and its length).
pub(crate) fn rejected_id(id: &str) -> String {
    if id.len() <= MAX_ID_BYTES {
        id.to_owned()
    } else {
        triad_server::quote(id).to_string()
    }
}

/// `text` when at most `max` bytes long, else its longest prefix (on a
/// character boundary) of at most `max - 3` bytes followed by `…`.
pub(crate) fn truncated(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!("{}…", &text[..cut]))
}

/// Adds `rejection` to `listed` unless it already holds
/// [`MAX_REJECTIONS_LISTED`].
pub(crate) fn list_rejection(listed: &mut Vec<Rejection>, rejection: Rejection) {
    if listed.len() < MAX_REJECTIONS_LISTED {
        listed.push(rejection);
    }
}

/// Checks that `name` is a metric `Anomalies` can watch: one of
/// [`METRIC_NAMES`] or `null_rate.<seed field>`.
pub(crate) fn metric(name: &str) -> Result<(), RequestError> {
    let known = METRIC_NAMES.contains(&name)
        || name
            .strip_prefix("null_rate.")
            .is_some_and(|field| SEED_FIELDS.contains(&field));
    if known {
        Ok(())
    } else {
        Err(RequestError::unknown_metric(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use triad_proto::time::{EARLIEST_MS, MAX_CLOCK_SKEW_MS};

    const NOW: i64 = 1_795_614_300_000;

    #[test]
    fn event_times_between_2000_and_now_are_kept_and_zero_means_now() {
        assert_eq!(event_time("t", 0, NOW), Ok(NOW));
        assert_eq!(event_time("t", EARLIEST_MS, NOW), Ok(EARLIEST_MS));
        assert_eq!(
            event_time("t", NOW + MAX_CLOCK_SKEW_MS, NOW),
            Ok(NOW + MAX_CLOCK_SKEW_MS)
        );
        for bad in [
            -1,
            1,
            EARLIEST_MS - 1,
            NOW + MAX_CLOCK_SKEW_MS + 1,
            i64::MAX,
            i64::MIN,
        ] {
            let reason = event_time("scored_at_ms", bad, NOW).unwrap_err();
            assert!(reason.starts_with("scored_at_ms is "), "{reason}");
        }
    }

    #[test]
    fn long_values_are_quoted_not_echoed() {
        let long = "x".repeat(10_000);
        let reason = item_id("outcome_id", &long, true).unwrap_err();
        assert!(reason.len() < 200, "{reason}");
        assert!(reason.contains("(10000 bytes)"), "{reason}");
        assert_eq!(
            item_id("model", "", true).unwrap_err(),
            "model is empty: expected a non-empty id"
        );
        assert_eq!(item_id("request_id", "", false), Ok(()));
        assert!(rejected_id(&long).len() < 100);
        assert_eq!(rejected_id("abc"), "abc");
        let error = query_id("model", &long, true).unwrap_err().to_string();
        assert!(error.len() < 200, "{error}");
        assert!(matches!(
            query_id("model", "", true),
            Err(RequestError::Empty { field: "model" })
        ));
        assert!(query_id("version", "", false).is_ok());
        assert!(matches!(
            query_id("model", "a\0b", true),
            Err(RequestError::Nul { field: "model", .. })
        ));
        assert_eq!(
            item_id("budget_id", "a\0b", true).unwrap_err(),
            "budget_id is \"a\\0b\": expected no NUL character"
        );
        assert_eq!(storable("a\0b"), "a\u{FFFD}b");
        assert!(matches!(storable("ab"), Cow::Borrowed("ab")));
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        assert_eq!(truncated("abc", 3), "abc");
        assert_eq!(truncated("abcdef", 5), "ab…");
        let cut = truncated("ééééé", 6);
        assert!(cut.len() <= 6 && cut.ends_with('…'), "{cut}");
        assert_eq!(cut, "é…");
    }

    #[test]
    fn at_most_a_thousand_rejections_are_listed() {
        let mut listed = Vec::new();
        for index in 0..(MAX_REJECTIONS_LISTED as u32 + 5) {
            list_rejection(
                &mut listed,
                Rejection {
                    index,
                    ..Rejection::default()
                },
            );
        }
        assert_eq!(listed.len(), MAX_REJECTIONS_LISTED);
        assert_eq!(
            listed.last().unwrap().index,
            MAX_REJECTIONS_LISTED as u32 - 1
        );
    }

    #[test]
    fn metric_names_validate() {
        assert!(metric("precision").is_ok());
        assert!(metric("null_rate.vendor_name_expense").is_ok());
        assert!(metric("null_rate.nope").is_err());
        assert!(metric("accuracy").is_ok());
        assert!(metric("estimated_f1").is_ok());
        assert!(metric("balanced_accuracy").is_err());
    }

    #[test]
    fn ranges_validate_and_treat_zero_as_unbounded() {
        assert_eq!(range(0, 0).unwrap(), Range::default());
        assert!(matches!(
            range(5, 4),
            Err(RequestError::InvertedRange { .. })
        ));
        assert!(matches!(
            range(-1, 0),
            Err(RequestError::NegativeTime {
                field: "from_ms",
                ..
            })
        ));
        assert_eq!(
            range(10, 20).unwrap(),
            Range {
                from_ms: Some(10),
                to_ms: Some(20)
            }
        );
        assert!(matches!(width(9), Err(RequestError::UnknownBucket(9))));
        assert_eq!(width(0).unwrap(), Width::Day);
    }
}
