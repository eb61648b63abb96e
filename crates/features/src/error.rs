//! Per-item errors: a bad item is data, reported next to the good rows, never
//! a failed request.

use std::fmt;

/// Which input list an item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    Budget,
    LineItem,
}

impl ItemKind {
    /// The name used on the wire: `budget` or `expense_line_item`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Budget => "budget",
            ItemKind::LineItem => "expense_line_item",
        }
    }
}

/// What went wrong with an item or one of its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemErrorCode {
    /// The item has no usable id; it forms no row.
    MissingId,
    /// An earlier item of the same kind has the same id; this one forms no row.
    DuplicateId,
    /// A field could not be parsed; it is treated as missing.
    InvalidValue,
    /// A field is longer than the configured limit; it is treated as missing.
    ValueTooLong,
    /// The item is not an object at all; it forms no row.
    MalformedItem,
}

impl ItemErrorCode {
    /// Stable upper-snake-case name, as in the proto enum without its prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemErrorCode::MissingId => "MISSING_ID",
            ItemErrorCode::DuplicateId => "DUPLICATE_ID",
            ItemErrorCode::InvalidValue => "INVALID_VALUE",
            ItemErrorCode::ValueTooLong => "VALUE_TOO_LONG",
            ItemErrorCode::MalformedItem => "MALFORMED_ITEM",
        }
    }
}

/// A problem with one input item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemError {
    pub kind: ItemKind,
    /// Zero-based position of the item in its input list.
    pub index: u32,
    /// The item's id, when it has one.
    pub id: Option<String>,
    /// The field at fault; `None` for the whole item.
    pub field: Option<&'static str>,
    pub code: ItemErrorCode,
    pub message: String,
    /// True when the item formed no row at all.
    pub dropped: bool,
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{}", self.kind.as_str(), self.index)?;
        if let Some(id) = &self.id {
            write!(f, " (id {id})")?;
        }
        if let Some(field) = self.field {
            write!(f, " field {field}")?;
        }
        write!(f, ": {} ({})", self.message, self.code.as_str())
    }
}

/// Whole-request failures of the JSON reader (the per-item ones are
/// [`ItemError`]s).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("request body is {bytes} bytes, more than the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("request nests arrays and objects deeper than the limit of {limit} levels")]
    TooDeep { limit: usize },
    #[error("expected a JSON object with `budgets` and `all_user_expense_lineitems`, got {0}")]
    NotAnObject(&'static str),
    #[error(
        "expected the key `{0}` (a JSON array, empty when there is nothing to match), but the request has no such key"
    )]
    MissingKey(&'static str),
    #[error("expected `{field}` to be a JSON array, got {got}")]
    NotAnArray {
        field: &'static str,
        got: &'static str,
    },
    #[error("`{field}` has {count} items, more than the limit of {limit}")]
    TooManyItems {
        field: &'static str,
        count: usize,
        limit: usize,
    },
}
