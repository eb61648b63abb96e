//! The seed's raw input fields as the monitor stores them: one nullable
//! text column per field, plus a missing-value counter per field.
//!
//! The fields are [`MISSING_FLAG_FIELDS`]: the raw inputs the featurizer
//! flags when missing, budget fields first, in `records.proto` order (one
//! list, owned by `triad-features`; every count here is its length). The
//! pair ids (`budget_id`, `itemization_id`) are stored from the outcome's
//! key and are never missing.

use triad_features::MISSING_FLAG_FIELDS;
use triad_features::record::{BUDGET_FIELDS, LINE_ITEM_FIELDS};
use triad_proto::v1::{Budget, ExpenseLineItem, Outcome};

/// How many of [`MISSING_FLAG_FIELDS`] are the budget's (they come first):
/// every budget field but its id.
pub(crate) const BUDGET_INPUTS: usize = BUDGET_FIELDS.len() - 1;

/// Every seed field name, as `null_rate` reports them: the budget's, then
/// the line item's, as `triad_features::record` names them.
pub(crate) const SEED_FIELDS: [&str; BUDGET_FIELDS.len() + LINE_ITEM_FIELDS.len()] = {
    let mut fields = [""; BUDGET_FIELDS.len() + LINE_ITEM_FIELDS.len()];
    let mut i = 0;
    while i < fields.len() {
        fields[i] = if i < BUDGET_FIELDS.len() {
            BUDGET_FIELDS[i]
        } else {
            LINE_ITEM_FIELDS[i - BUDGET_FIELDS.len()]
        };
        i += 1;
    }
    fields
};

/// The outcome's raw input values in [`MISSING_FLAG_FIELDS`] order (`None`
/// when the side or the field is absent).
pub(crate) fn input_values(outcome: &Outcome) -> [Option<&str>; MISSING_FLAG_FIELDS.len()] {
    let b = outcome.budget.as_ref();
    let i = outcome.line_item.as_ref();
    let bf = |f: fn(&Budget) -> &Option<String>| b.and_then(|b| f(b).as_deref());
    let itf = |f: fn(&ExpenseLineItem) -> &Option<String>| i.and_then(|i| f(i).as_deref());
    [
        bf(|b| &b.budget_price_budget),
        bf(|b| &b.travel_vendor_receipts),
        bf(|b| &b.purchase_vendor_receipts),
        bf(|b| &b.budget_type_budget),
        bf(|b| &b.generated_at_budget),
        bf(|b| &b.start_datetime_trips),
        bf(|b| &b.end_datetime_trips),
        bf(|b| &b.actual_cost_budget),
        itf(|i| &i.expensed_amount_itemization),
        itf(|i| &i.expense_type_name_itemization),
        itf(|i| &i.transaction_date_itemization),
        itf(|i| &i.expense_category_itemization),
        itf(|i| &i.vendor_name_expense),
        itf(|i| &i.expense_type_name_expense),
        itf(|i| &i.expense_category_expense),
    ]
}

/// Rebuilds both raw sides from the pair ids and the stored columns.
pub(crate) fn sides(
    budget_id: &str,
    itemization_id: &str,
    values: [Option<String>; MISSING_FLAG_FIELDS.len()],
) -> (Budget, ExpenseLineItem) {
    let [
        budget_price_budget,
        travel_vendor_receipts,
        purchase_vendor_receipts,
        budget_type_budget,
        generated_at_budget,
        start_datetime_trips,
        end_datetime_trips,
        actual_cost_budget,
        expensed_amount_itemization,
        expense_type_name_itemization,
        transaction_date_itemization,
        expense_category_itemization,
        vendor_name_expense,
        expense_type_name_expense,
        expense_category_expense,
    ] = values;
    (
        Budget {
            budget_id: Some(budget_id.to_owned()),
            budget_price_budget,
            travel_vendor_receipts,
            purchase_vendor_receipts,
            budget_type_budget,
            generated_at_budget,
            start_datetime_trips,
            end_datetime_trips,
            actual_cost_budget,
        },
        ExpenseLineItem {
            itemization_id: Some(itemization_id.to_owned()),
            expensed_amount_itemization,
            expense_type_name_itemization,
            transaction_date_itemization,
            expense_category_itemization,
            vendor_name_expense,
            expense_type_name_expense,
            expense_category_expense,
        },
    )
}

/// A raw value counts as missing when absent or blank.
pub(crate) fn is_missing(value: Option<&str>) -> bool {
    value.is_none_or(|v| v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_means_absent_or_blank() {
        assert!(is_missing(None));
        assert!(is_missing(Some("  ")));
        assert!(!is_missing(Some("0")));
    }

    #[test]
    fn seed_fields_are_the_ids_and_the_input_fields() {
        let mut from_inputs: Vec<&str> = MISSING_FLAG_FIELDS.to_vec();
        from_inputs.push("budget_id");
        from_inputs.push("itemization_id");
        from_inputs.sort_unstable();
        let mut seed = SEED_FIELDS.to_vec();
        seed.sort_unstable();
        assert_eq!(seed, from_inputs);
    }

    #[test]
    fn budget_inputs_come_first() {
        let (budget, item) = MISSING_FLAG_FIELDS.split_at(BUDGET_INPUTS);
        assert!(
            budget.iter().all(|f| BUDGET_FIELDS.contains(f)),
            "{budget:?}"
        );
        assert!(
            item.iter().all(|f| LINE_ITEM_FIELDS.contains(f)),
            "{item:?}"
        );
    }
}
