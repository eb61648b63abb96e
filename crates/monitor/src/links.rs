//! Links to the dashboard's pages, written the one way both the dashboard
//! (a wire adapter) and the alerts (the application layer, for an alert's
//! link) write them: percent-encoding of path segments and query values,
//! and a model page's address. Depends on nothing else in the crate.

use std::fmt::Write;

/// `text` percent-encoded for a URL path segment or query value (every
/// byte but `A-Z a-z 0-9 - . _ ~`).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The model page of `model` over `days` days in buckets of `bucket`
/// (`hour`, `day` or `week`), of `version` when given.
pub(crate) fn model_page(model: &str, days: i64, bucket: &str, version: Option<&str>) -> String {
    let mut href = format!("/models/{}?days={days}&bucket={bucket}", encode(model));
    if let Some(version) = version {
        href += &format!("&version={}", encode(version));
    }
    href
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_percent_encoded() {
        assert_eq!(encode("a b/ç?&#~-._"), "a%20b%2F%C3%A7%3F%26%23~-._");
        assert_eq!(
            model_page("a b", 28, "day", Some("1/2")),
            "/models/a%20b?days=28&bucket=day&version=1%2F2"
        );
        assert_eq!(
            model_page("m", 7, "hour", None),
            "/models/m?days=7&bucket=hour"
        );
    }
}
