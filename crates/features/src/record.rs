//! Raw input records exactly as upstream sends them: every field an optional
//! string. These are the seed API's JSON objects and the proto messages'
//! common ground; nothing here is parsed or validated yet (see [`crate::parse`]).

use serde::{Deserialize, Serialize};

/// A travel budget as sent by upstream. Field names are the seed API's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawBudget {
    /// The budget's id: names its rows and its per-item errors.
    pub budget_id: Option<String>,
    /// The booked price, a decimal amount.
    pub budget_price_budget: Option<String>,
    /// The vendor on the travel receipts (carrier, hotel, rental company).
    pub travel_vendor_receipts: Option<String>,
    /// The vendor on the purchase receipts.
    pub purchase_vendor_receipts: Option<String>,
    /// What the budget is for, in words ("flight", "Lodging").
    pub budget_type_budget: Option<String>,
    /// When the budget was created, a datetime.
    pub generated_at_budget: Option<String>,
    /// When the trip starts, a datetime.
    pub start_datetime_trips: Option<String>,
    /// When the trip ends, a datetime.
    pub end_datetime_trips: Option<String>,
    /// What the budget actually cost, a decimal amount.
    pub actual_cost_budget: Option<String>,
}

/// An expense line item as sent by upstream. Field names are the seed API's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawLineItem {
    /// The line item's id: names its rows and its per-item errors.
    pub itemization_id: Option<String>,
    /// The amount expensed, a decimal amount (negative for a refund).
    pub expensed_amount_itemization: Option<String>,
    /// The line item's expense type, in words.
    pub expense_type_name_itemization: Option<String>,
    /// When the transaction happened, a datetime.
    pub transaction_date_itemization: Option<String>,
    /// The line item's expense category, in words.
    pub expense_category_itemization: Option<String>,
    /// The vendor as the card statement or receipt spells it.
    pub vendor_name_expense: Option<String>,
    /// The whole expense's type, in words.
    pub expense_type_name_expense: Option<String>,
    /// The whole expense's category, in words.
    pub expense_category_expense: Option<String>,
}

/// A request in the seed's shape: the budgets and the line items to match
/// against them. Every budget is paired with every line item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRequest {
    /// The budgets, in input order.
    pub budgets: Vec<RawBudget>,
    /// The line items, in input order.
    pub all_user_expense_lineitems: Vec<RawLineItem>,
}

/// How the featurizer reads a raw field, which sets how much of it it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// `budget_id`, `itemization_id`: at most
    /// [`FeaturizerConfig::max_id_bytes`](crate::FeaturizerConfig).
    Id,
    /// Amounts and datetimes: at most [`crate::parse::MAX_FIELD_BYTES`].
    Parsed,
    /// Free text (vendors, types, categories): at most
    /// [`FeaturizerConfig::max_text_bytes`](crate::FeaturizerConfig).
    Text,
}

/// The seed's JSON key of each [`RawBudget`] field, in declaration order.
pub const BUDGET_FIELDS: [&str; 9] = [
    "budget_id",
    "budget_price_budget",
    "travel_vendor_receipts",
    "purchase_vendor_receipts",
    "budget_type_budget",
    "generated_at_budget",
    "start_datetime_trips",
    "end_datetime_trips",
    "actual_cost_budget",
];

/// The seed's JSON key of each [`RawLineItem`] field, in declaration order.
pub const LINE_ITEM_FIELDS: [&str; 8] = [
    "itemization_id",
    "expensed_amount_itemization",
    "expense_type_name_itemization",
    "transaction_date_itemization",
    "expense_category_itemization",
    "vendor_name_expense",
    "expense_type_name_expense",
    "expense_category_expense",
];

/// The kind of each [`RawBudget`] field, in declaration order.
pub const BUDGET_FIELD_KINDS: [FieldKind; BUDGET_FIELDS.len()] = {
    use FieldKind::{Id, Parsed, Text};
    [Id, Parsed, Text, Text, Text, Parsed, Parsed, Parsed, Parsed]
};

/// The kind of each [`RawLineItem`] field, in declaration order.
pub const LINE_ITEM_FIELD_KINDS: [FieldKind; LINE_ITEM_FIELDS.len()] = {
    use FieldKind::{Id, Parsed, Text};
    [Id, Parsed, Text, Parsed, Text, Text, Text, Text]
};

/// Why an id cannot name an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdProblem {
    /// Empty, or only whitespace.
    Blank,
    /// Longer than the bound, in bytes.
    TooLong {
        /// The id's length, in bytes.
        len: usize,
    },
    /// Holds a control character: NUL, which PostgreSQL cannot store, or
    /// any other, which JSON answers and logs escape to six bytes each.
    Control,
}

/// The one rule an id must meet to name an item (a request's budget or
/// line item, a caller's matrix key): not blank, at most `max_bytes`
/// bytes, no control character. Every pair answered is then one the
/// monitor can store, since it accepts every id this accepts (its own
/// bound is larger and it refuses only NUL), so no answered outcome is
/// lost to an id; and an id costs at most twice its bytes in a JSON
/// answer (only `"` and `\` are escaped).
pub fn check_id(id: &str, max_bytes: usize) -> Result<(), IdProblem> {
    if id.trim().is_empty() {
        Err(IdProblem::Blank)
    } else if id.len() > max_bytes {
        Err(IdProblem::TooLong { len: id.len() })
    } else if id.chars().any(char::is_control) {
        Err(IdProblem::Control)
    } else {
        Ok(())
    }
}

/// What ends a value [`clip`] cut: `…[cut from N bytes]`, so whoever reads
/// a kept copy knows it is not the whole value.
pub const CUT_MARKER: &str = "…[cut from ";

/// `value` as a kept copy holds it: whole when it has at most `max_bytes`
/// bytes, else its first `max_bytes` bytes (on a character boundary)
/// followed by [`CUT_MARKER`] and the original length. What a copy can
/// cost is then bounded by the limit, whatever the caller sent.
pub fn clip(value: &str, max_bytes: usize) -> std::borrow::Cow<'_, str> {
    if value.len() <= max_bytes {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut cut = max_bytes;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    std::borrow::Cow::Owned(format!(
        "{}{CUT_MARKER}{} bytes]",
        &value[..cut],
        value.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_values_and_marks_cut_ones() {
        assert_eq!(clip("Southwest", 64), "Southwest");
        assert!(matches!(clip("abc", 3), std::borrow::Cow::Borrowed(_)));
        assert_eq!(clip("abcdef", 4), "abcd…[cut from 6 bytes]");
        // Never inside a character: "é" is two bytes.
        assert_eq!(clip("aéé", 2), "a…[cut from 5 bytes]");
        let long = "x".repeat(1 << 20);
        assert!(clip(&long, 512).len() < 540);
    }
}
