//! Field parsers: amounts and datetimes as upstream writes them. Each returns
//! a reason on failure; the featurizer turns it into NaN, a missing flag and
//! a per-item error.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Largest absolute amount accepted, in currency units. Anything larger is a
/// data error, and bounding it keeps every derived feature finite.
pub const MAX_ABS_AMOUNT: f64 = 1e9;

/// Smallest budget amount usable as a reference for ratios (one cent).
pub const MIN_BUDGET_AMOUNT: f64 = 0.01;

/// Longest amount or datetime, in bytes after trimming, that is parsed at
/// all; a longer value is refused without being read. No real amount or
/// datetime comes near it, and it keeps the parsers' work per field small.
pub const MAX_FIELD_BYTES: usize = 64;

/// Earliest and latest accepted year: keeps day differences finite and
/// catches garbage such as year 0 or 99999.
pub const YEAR_RANGE: std::ops::RangeInclusive<i32> = 1900..=2200;

/// Why a field value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Not a plain decimal number; holds the value.
    #[error("expected a decimal number such as \"131.98\", got {0:?}")]
    NotANumber(String),
    /// A number beyond ±[`MAX_ABS_AMOUNT`]; holds the value.
    #[error("expected an amount between -{max} and {max}, got {0}", max = MAX_ABS_AMOUNT)]
    AmountOutOfRange(String),
    /// A budget amount below [`MIN_BUDGET_AMOUNT`]; holds the value.
    #[error("expected a budget amount of at least {min}, got {0}", min = MIN_BUDGET_AMOUNT)]
    BudgetNotPositive(String),
    /// Not a datetime in any accepted format; holds the value.
    #[error(
        "expected a datetime as \"YYYY-MM-DD HH:MM:SS\", \"YYYY-MM-DD\" or ISO-8601, got {0:?}"
    )]
    NotADatetime(String),
    /// A datetime whose year is outside [`YEAR_RANGE`]; holds the value.
    #[error("expected a year between 1900 and 2200, got {0:?}")]
    YearOutOfRange(String),
    /// Longer than [`MAX_FIELD_BYTES`]; holds its length in bytes.
    #[error("expected at most {max} bytes, got {0}; not parsed", max = MAX_FIELD_BYTES)]
    TooLong(usize),
}

/// `text` trimmed, unless it is longer than [`MAX_FIELD_BYTES`].
fn bounded(text: &str) -> Result<&str, FieldError> {
    let trimmed = text.trim();
    if trimmed.len() > MAX_FIELD_BYTES {
        return Err(FieldError::TooLong(trimmed.len()));
    }
    Ok(trimmed)
}

/// Parses an amount: a plain decimal number, surrounding spaces allowed.
/// `inf`, `NaN`, numbers beyond [`MAX_ABS_AMOUNT`] and texts longer than
/// [`MAX_FIELD_BYTES`] are rejected.
pub fn parse_amount(text: &str) -> Result<f64, FieldError> {
    let trimmed = bounded(text)?;
    let looks_numeric = !trimmed.is_empty()
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    let value: f64 = looks_numeric
        .then(|| trimmed.parse().ok())
        .flatten()
        .ok_or_else(|| FieldError::NotANumber(shorten(trimmed)))?;
    if !value.is_finite() || value.abs() > MAX_ABS_AMOUNT {
        return Err(FieldError::AmountOutOfRange(shorten(trimmed)));
    }
    Ok(value)
}

/// Parses a budget amount, which must also be at least [`MIN_BUDGET_AMOUNT`].
pub fn parse_budget_amount(text: &str) -> Result<f64, FieldError> {
    let value = parse_amount(text)?;
    if value < MIN_BUDGET_AMOUNT {
        return Err(FieldError::BudgetNotPositive(shorten(text.trim())));
    }
    Ok(value)
}

const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
];

/// Parses a datetime into seconds since the Unix epoch. Accepts the seed's
/// `YYYY-MM-DD HH:MM:SS` (fractional seconds allowed), a bare date (midnight),
/// ISO-8601 with `T`, and RFC 3339 with an offset (converted to UTC). Naive
/// datetimes are taken as UTC: only differences between them matter.
pub fn parse_datetime(text: &str) -> Result<i64, FieldError> {
    let trimmed = bounded(text)?;
    let parsed = match parse_seed_datetime(trimmed) {
        Some(parsed) => parsed,
        None => parse_datetime_general(trimmed)?,
    };
    if !YEAR_RANGE.contains(&chrono::Datelike::year(&parsed)) {
        return Err(FieldError::YearOutOfRange(shorten(trimmed)));
    }
    Ok(parsed.and_utc().timestamp())
}

/// The fast path for the seed's own layout, `YYYY-MM-DD HH:MM:SS` (or with
/// `T`), with a valid date and time: what the general path returns for it
/// (RFC 3339 needs an offset, so the first naive format takes it). Anything
/// else, including leap second 60, is left to the general path.
fn parse_seed_datetime(text: &str) -> Option<NaiveDateTime> {
    let b: &[u8; 19] = text.as_bytes().try_into().ok()?;
    let layout_ok = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b' ' | b'T')
        && b[13] == b':'
        && b[16] == b':';
    if !layout_ok {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0u32, |value, &digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u32::from(digit - b'0'))
        })
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)?.and_hms_opt(
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
    )
}

/// Every accepted layout, through chrono's parsers.
fn parse_datetime_general(trimmed: &str) -> Result<NaiveDateTime, FieldError> {
    DateTime::parse_from_rfc3339(trimmed)
        .map(|dt| dt.naive_utc())
        .ok()
        .or_else(|| {
            NAIVE_FORMATS
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(trimmed, format).ok())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(trimmed, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
        })
        .ok_or_else(|| FieldError::NotADatetime(shorten(trimmed)))
}

/// Keeps error messages short when the offending value is huge.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("131.98"), Ok(131.98));
        assert_eq!(parse_amount(" 24 "), Ok(24.0));
        assert_eq!(parse_amount("-12.5"), Ok(-12.5));
        assert_eq!(parse_amount("1e3"), Ok(1000.0));
        assert!(matches!(
            parse_amount("abc"),
            Err(FieldError::NotANumber(_))
        ));
        assert!(matches!(
            parse_amount("$12"),
            Err(FieldError::NotANumber(_))
        ));
        assert!(matches!(
            parse_amount("inf"),
            Err(FieldError::NotANumber(_))
        ));
        assert!(matches!(
            parse_amount("NaN"),
            Err(FieldError::NotANumber(_))
        ));
        assert!(matches!(
            parse_amount("1e400"),
            Err(FieldError::AmountOutOfRange(_))
        ));
        assert!(matches!(
            parse_amount("2e9"),
            Err(FieldError::AmountOutOfRange(_))
        ));
        assert!(matches!(
            parse_budget_amount("0"),
            Err(FieldError::BudgetNotPositive(_))
        ));
        assert!(matches!(
            parse_budget_amount("-5"),
            Err(FieldError::BudgetNotPositive(_))
        ));
        assert_eq!(parse_budget_amount("140.0"), Ok(140.0));
    }

    #[test]
    fn datetimes() {
        let base = parse_datetime("2017-04-18 04:00:00").unwrap();
        assert_eq!(base, 1_492_488_000);
        assert_eq!(parse_datetime("2017-04-18T04:00:00"), Ok(base));
        assert_eq!(parse_datetime("2017-04-18T04:00:00Z"), Ok(base));
        assert_eq!(parse_datetime("2017-04-18T06:00:00+02:00"), Ok(base));
        assert_eq!(parse_datetime("2017-04-18 04:00:00.000"), Ok(base));
        assert_eq!(parse_datetime("2017-04-18"), Ok(base - 4 * 3600));
        assert!(matches!(
            parse_datetime("2017-13-45 00:00:00"),
            Err(FieldError::NotADatetime(_))
        ));
        assert!(matches!(
            parse_datetime("yesterday"),
            Err(FieldError::NotADatetime(_))
        ));
        assert!(matches!(
            parse_datetime("0001-01-01"),
            Err(FieldError::YearOutOfRange(_))
        ));
    }

    #[test]
    fn seed_layout_fast_path_agrees_with_chrono() {
        let cases = [
            "2017-04-18 04:00:00",
            "2017-04-18T04:00:00",
            "2016-02-29 23:59:59",
            "2017-02-29 00:00:00",
            "2017-02-30 00:00:00",
            "2017-13-01 00:00:00",
            "2017-00-10 00:00:00",
            "2017-04-18 24:00:00",
            "2017-04-18 23:60:00",
            "2016-12-31 23:59:60",
            "0000-01-01 00:00:00",
            "1899-12-31 23:59:59",
            "1900-01-01 00:00:00",
            "2200-12-31 23:59:59",
            "9999-12-31 23:59:59",
            "2017-04-18 04:0a:00",
            "2017-04-18_04:00:00",
            "2017-04-18 04:00:0",
            "+017-04-18 04:00:00",
            "2017-4-18 04:00:00Z",
        ];
        for text in cases {
            let general = parse_datetime_general(text).ok();
            if let Some(fast) = parse_seed_datetime(text) {
                assert_eq!(Some(fast), general, "{text}");
            }
        }
        assert!(parse_seed_datetime("2017-04-18 04:00:00").is_some());
        assert!(parse_seed_datetime("2016-12-31 23:59:60").is_none());
        assert_eq!(
            parse_datetime("2016-12-31 23:59:60"),
            Ok(parse_datetime("2016-12-31 23:59:59").unwrap())
        );
        assert!(matches!(
            parse_datetime("1899-12-31 23:59:59"),
            Err(FieldError::YearOutOfRange(_))
        ));
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "x".repeat(MAX_FIELD_BYTES);
        let message = parse_amount(&long).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
        let message = parse_datetime(&"é".repeat(40)).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn values_longer_than_the_bound_are_not_parsed() {
        let long_number = format!("1{}", "0".repeat(MAX_FIELD_BYTES));
        assert_eq!(
            parse_amount(&long_number),
            Err(FieldError::TooLong(MAX_FIELD_BYTES + 1))
        );
        let long_date = format!("2017-04-18 04:00:00.{}", "0".repeat(MAX_FIELD_BYTES));
        assert!(matches!(
            parse_datetime(&long_date),
            Err(FieldError::TooLong(_))
        ));
        // Surrounding spaces do not count.
        let padded = format!("{}131.98{}", " ".repeat(100), " ".repeat(100));
        assert_eq!(parse_amount(&padded), Ok(131.98));
        assert_eq!(
            parse_amount(&"9".repeat(MAX_FIELD_BYTES + 1))
                .unwrap_err()
                .to_string(),
            "expected at most 64 bytes, got 65; not parsed"
        );
    }
}
