//! Per-item errors: a bad item is data, reported next to the good rows, never
//! a failed request.

use std::fmt;

/// Which input list an item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// An element of the request's `budgets`.
    Budget,
    /// An element of the request's `all_user_expense_lineitems`.
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
    /// The list the item is in.
    pub kind: ItemKind,
    /// Zero-based position of the item in its input list.
    pub index: u32,
    /// The item's id, when it has one.
    pub id: Option<String>,
    /// The field at fault; `None` for the whole item.
    pub field: Option<&'static str>,
    /// What went wrong, as a stable code.
    pub code: ItemErrorCode,
    /// What went wrong, for a person: what was expected and what came.
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
    /// The body is not JSON (syntax error or truncated).
    #[error("request is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The body is larger than [`JsonLimits::max_body_bytes`](crate::JsonLimits::max_body_bytes).
    #[error("request body is {bytes} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Size of the body, in bytes.
        bytes: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// Arrays and objects nest deeper than [`JsonLimits::max_depth`](crate::JsonLimits::max_depth).
    #[error("request nests arrays and objects deeper than the limit of {limit} levels")]
    TooDeep {
        /// The limit, in levels.
        limit: usize,
    },
    /// The top-level value is not an object; holds the JSON type it is.
    #[error("expected a JSON object with `budgets` and `all_user_expense_lineitems`, got {0}")]
    NotAnObject(&'static str),
    /// A required top-level key is absent; holds the key.
    #[error(
        "expected the key `{0}` (a JSON array, empty when there is nothing to match), but the request has no such key"
    )]
    MissingKey(&'static str),
    /// A top-level list is not a JSON array.
    #[error("expected `{field}` to be a JSON array, got {got}")]
    NotAnArray {
        /// The key of the list.
        field: &'static str,
        /// The JSON type it has instead.
        got: &'static str,
    },
    /// A top-level list has more items than
    /// [`JsonLimits::max_budgets`](crate::JsonLimits::max_budgets) or
    /// [`JsonLimits::max_line_items`](crate::JsonLimits::max_line_items) allows.
    #[error("`{field}` has {count} items, more than the limit of {limit}")]
    TooManyItems {
        /// The key of the list.
        field: &'static str,
        /// How many items it has.
        count: usize,
        /// The limit, in items.
        limit: usize,
    },
}
