//! The feature schema: the ordered column names of the matrix, its name,
//! version and a stable hash that scorers check models against.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

use crate::record::{BUDGET_FIELDS, LINE_ITEM_FIELDS};

/// Name of the schema this crate produces.
pub const SCHEMA_NAME: &str = "budget_expense_pairs";

/// Version of the schema; bump it whenever a feature's definition changes,
/// even if the names stay the same.
pub const SCHEMA_VERSION: &str = "1";

/// Column names, in matrix order. `docs/features.md` defines each one.
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    // Vendor similarity (budget vendor fields vs `vendor_name_expense`).
    "travel_vendor_jaro_winkler",
    "travel_vendor_levenshtein",
    "travel_vendor_token_jaccard",
    "purchase_vendor_jaro_winkler",
    "purchase_vendor_levenshtein",
    "purchase_vendor_token_jaccard",
    // Type agreement (`budget_type_budget` vs each expense type/category).
    "type_agrees_expense_type_name_itemization",
    "type_agrees_expense_category_itemization",
    "type_agrees_expense_type_name_expense",
    "type_agrees_expense_category_expense",
    // Amounts.
    "amount_ratio_actual_cost",
    "amount_abs_diff_actual_cost",
    "amount_rel_diff_actual_cost",
    "amount_ratio_budget_price",
    "amount_abs_diff_budget_price",
    "amount_rel_diff_budget_price",
    // Dates.
    "days_from_trip_start",
    "days_from_trip_end",
    "in_trip_window",
    "days_since_budget_generated",
    // Missing flags, budget side.
    "missing_budget_price_budget",
    "missing_travel_vendor_receipts",
    "missing_purchase_vendor_receipts",
    "missing_budget_type_budget",
    "missing_generated_at_budget",
    "missing_start_datetime_trips",
    "missing_end_datetime_trips",
    "missing_actual_cost_budget",
    // Missing flags, line item side.
    "missing_expensed_amount_itemization",
    "missing_expense_type_name_itemization",
    "missing_transaction_date_itemization",
    "missing_expense_category_itemization",
    "missing_vendor_name_expense",
    "missing_expense_type_name_expense",
    "missing_expense_category_expense",
];

/// Number of columns.
pub const N_FEATURES: usize = 35;

/// Number of budget-side missing flags (they come first among the flags):
/// one per budget field but the id.
pub(crate) const N_BUDGET_FLAGS: usize = BUDGET_FIELDS.len() - 1;
/// Number of line-item-side missing flags: one per line-item field but the
/// id.
pub(crate) const N_ITEM_FLAGS: usize = LINE_ITEM_FIELDS.len() - 1;
/// Column of the first missing flag.
pub(crate) const FIRST_FLAG: usize = N_FEATURES - N_BUDGET_FLAGS - N_ITEM_FLAGS;

/// Which input field each missing-flag column belongs to, in column order.
pub const MISSING_FLAG_FIELDS: [&str; N_BUDGET_FLAGS + N_ITEM_FLAGS] = [
    "budget_price_budget",
    "travel_vendor_receipts",
    "purchase_vendor_receipts",
    "budget_type_budget",
    "generated_at_budget",
    "start_datetime_trips",
    "end_datetime_trips",
    "actual_cost_budget",
    "expensed_amount_itemization",
    "expense_type_name_itemization",
    "transaction_date_itemization",
    "expense_category_itemization",
    "vendor_name_expense",
    "expense_type_name_expense",
    "expense_category_expense",
];

/// The input fields each feature is computed from, in column order: a
/// feature is NaN exactly when one of these is missing (null, empty,
/// unparsable or too long), and then that field's missing flag is set.
/// Missing flags themselves are never NaN and list no inputs.
pub fn feature_inputs(column: usize) -> &'static [&'static str] {
    const TRAVEL: &[&str] = &["travel_vendor_receipts", "vendor_name_expense"];
    const PURCHASE: &[&str] = &["purchase_vendor_receipts", "vendor_name_expense"];
    const ACTUAL: &[&str] = &["expensed_amount_itemization", "actual_cost_budget"];
    const PRICE: &[&str] = &["expensed_amount_itemization", "budget_price_budget"];
    match column {
        0..=2 => TRAVEL,
        3..=5 => PURCHASE,
        6 => &["budget_type_budget", "expense_type_name_itemization"],
        7 => &["budget_type_budget", "expense_category_itemization"],
        8 => &["budget_type_budget", "expense_type_name_expense"],
        9 => &["budget_type_budget", "expense_category_expense"],
        10..=12 => ACTUAL,
        13..=15 => PRICE,
        16 => &["transaction_date_itemization", "start_datetime_trips"],
        17 => &["transaction_date_itemization", "end_datetime_trips"],
        18 => &[
            "transaction_date_itemization",
            "start_datetime_trips",
            "end_datetime_trips",
        ],
        19 => &["transaction_date_itemization", "generated_at_budget"],
        _ => &[],
    }
}

/// Names and versions the matrix columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSchema {
    /// What the rows are, e.g. `budget_expense_pairs`.
    pub name: String,
    /// Bumped on any change to a column's definition.
    pub version: String,
    /// The column names, in column order.
    pub feature_names: Vec<String>,
    /// First 16 hex digits of SHA-256 over name, version and names.
    pub hash: String,
}

impl FeatureSchema {
    /// Builds a schema and computes its hash.
    pub fn new(name: &str, version: &str, feature_names: Vec<String>) -> Self {
        let hash = schema_hash(name, version, &feature_names);
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            feature_names,
            hash,
        }
    }

    /// The schema this crate's featurizer produces.
    pub fn current() -> &'static FeatureSchema {
        static CURRENT: LazyLock<FeatureSchema> = LazyLock::new(|| {
            FeatureSchema::new(
                SCHEMA_NAME,
                SCHEMA_VERSION,
                FEATURE_NAMES
                    .iter()
                    .map(|name| (*name).to_owned())
                    .collect(),
            )
        });
        &CURRENT
    }

    /// Column index of a feature, if the schema has it.
    pub fn index_of(&self, feature: &str) -> Option<usize> {
        self.feature_names.iter().position(|name| name == feature)
    }
}

/// The stable schema hash: SHA-256 over `name`, `version` and each feature
/// name, each followed by a newline; the first 16 hex digits.
pub fn schema_hash(name: &str, version: &str, feature_names: &[String]) -> String {
    let mut hasher = Sha256::new();
    for part in [name, version]
        .into_iter()
        .chain(feature_names.iter().map(String::as_str))
    {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_flags_line_up() {
        let mut names = FEATURE_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), N_FEATURES);
        for (offset, field) in MISSING_FLAG_FIELDS.iter().enumerate() {
            assert_eq!(
                FEATURE_NAMES[FIRST_FLAG + offset],
                format!("missing_{field}")
            );
        }
    }

    #[test]
    fn every_computed_feature_names_flagged_inputs() {
        for (column, name) in FEATURE_NAMES.iter().enumerate().take(FIRST_FLAG) {
            let inputs = feature_inputs(column);
            assert!(!inputs.is_empty(), "{name}");
            for input in inputs {
                assert!(MISSING_FLAG_FIELDS.contains(input), "{input}");
            }
        }
        assert!(feature_inputs(FIRST_FLAG).is_empty());
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let schema = FeatureSchema::current();
        assert_eq!(schema.hash.len(), 16);
        assert_eq!(schema.hash, FeatureSchema::current().hash);
        let mut names = schema.feature_names.clone();
        names.swap(0, 1);
        assert_ne!(
            schema_hash(SCHEMA_NAME, SCHEMA_VERSION, &names),
            schema.hash
        );
        assert_ne!(
            schema_hash(SCHEMA_NAME, "2", &schema.feature_names),
            schema.hash
        );
        // Pinned: changing the schema must be a deliberate act.
        assert_eq!(schema_hash("n", "1", &["a".to_owned()]), "0ca796656792369a");
    }
}
