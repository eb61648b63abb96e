//! Quoting a caller's value inside an error message, bounded: whatever a
//! caller sends (a 10 kB model name, a 200 kB id), the message it gets back
//! quotes at most [`MAX_QUOTED_CHARS`] characters of it and says how long
//! the whole value was. Every error message that echoes client input goes
//! through [`quote`], so no answer (and no `grpc-message` header) grows
//! with the caller's input.

use std::fmt;

/// Most characters of a caller's value an error message quotes.
pub const MAX_QUOTED_CHARS: usize = 64;

/// `value`, quoted as `{:?}` would, cut after [`MAX_QUOTED_CHARS`]
/// characters with a note of its full length: `"abc…" (10240 bytes)`.
pub fn quote(value: &str) -> Quoted<'_> {
    Quoted(value)
}

/// What [`quote`] returns: formats the bounded quotation.
#[derive(Clone, Copy)]
pub struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(MAX_QUOTED_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => {
                // `{:?}` of the head, its closing quote moved after the
                // ellipsis.
                let head = format!("{:?}", &self.0[..cut]);
                let open = head.strip_suffix('"').unwrap_or(&head);
                write!(f, "{open}…\" ({} bytes)", self.0.len())
            }
        }
    }
}

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Quotes every value of `values` with [`quote`], and at most
/// `max_items` of them: `["a", "b", … 998 more]`.
pub fn quote_list<'a>(values: impl IntoIterator<Item = &'a str>, max_items: usize) -> String {
    let mut out = String::from("[");
    let mut more = 0_usize;
    for (i, value) in values.into_iter().enumerate() {
        if i >= max_items {
            more += 1;
            continue;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&quote(value).to_string());
    }
    if more > 0 {
        out.push_str(&format!(", … {more} more"));
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole() {
        assert_eq!(quote("abc").to_string(), "\"abc\"");
        assert_eq!(quote("a\"b\n").to_string(), "\"a\\\"b\\n\"");
        let exact = "x".repeat(MAX_QUOTED_CHARS);
        assert_eq!(quote(&exact).to_string(), format!("\"{exact}\""));
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary_with_their_length() {
        let long = "é".repeat(10_000);
        let quoted = quote(&long).to_string();
        assert_eq!(
            quoted,
            format!("\"{}…\" (20000 bytes)", "é".repeat(MAX_QUOTED_CHARS))
        );
        assert!(quoted.len() < 200);
    }

    #[test]
    fn lists_are_bounded_in_items_and_in_each_item() {
        let long = "m".repeat(500);
        let names = ["a", long.as_str(), "c", "d"];
        let quoted = quote_list(names, 3);
        assert!(quoted.starts_with("[\"a\", \"mmm"), "{quoted}");
        assert!(quoted.ends_with("\"c\", … 1 more]"), "{quoted}");
        assert!(quoted.len() < 120, "{quoted}");
        assert_eq!(quote_list([], 3), "[]");
    }
}
