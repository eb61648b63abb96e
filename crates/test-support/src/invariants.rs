//! What every feature matrix keeps, whatever the input: shared by the
//! property tests of `triad-features` and `triad-proto` and by the fuzz
//! targets in `fuzz/` (which include this file by path, so it uses
//! nothing but `triad-features`), so that a fuzzer and the test suite
//! check the same things.
//!
//! - the shape: `n_rows = budgets × items` rows of `n_cols` values;
//! - every value is finite, or NaN with the missing flag of one of its
//!   inputs set; every flag is 0 or 1;
//! - errors are per item: each input item either forms rows (its id is in
//!   the matrix, once) or has exactly one error marked `dropped`, never
//!   both; no error points past the end of its list.

use std::collections::{HashMap, HashSet};

use triad_features::{
    FeatureMatrix, ItemError, ItemKind, MISSING_FLAG_FIELDS, RawRequest, feature_inputs,
};

/// Checks `matrix`, the featurization of `request`; says what is wrong.
pub fn check_matrix(request: &RawRequest, matrix: &FeatureMatrix) -> Result<(), String> {
    check_shape(matrix)?;
    check_values(matrix)?;
    check_items(
        ItemKind::Budget,
        request.budgets.len(),
        &matrix.budget_ids,
        &matrix.errors,
    )?;
    check_items(
        ItemKind::LineItem,
        request.all_user_expense_lineitems.len(),
        &matrix.item_ids,
        &matrix.errors,
    )?;
    let budget_ids = request.budgets.iter().map(|b| b.budget_id.as_deref());
    check_ids_in_order(budget_ids, &matrix.budget_ids)?;
    let item_ids = request
        .all_user_expense_lineitems
        .iter()
        .map(|i| i.itemization_id.as_deref());
    check_ids_in_order(item_ids, &matrix.item_ids)
}

fn check_shape(matrix: &FeatureMatrix) -> Result<(), String> {
    let pairs = matrix.budget_ids.len() * matrix.item_ids.len();
    if matrix.n_rows != pairs {
        return Err(format!(
            "n_rows is {}, expected {} budgets x {} items = {pairs}",
            matrix.n_rows,
            matrix.budget_ids.len(),
            matrix.item_ids.len()
        ));
    }
    if matrix.values.len() != matrix.n_rows * matrix.n_cols() {
        return Err(format!(
            "{} values for {} rows x {} columns",
            matrix.values.len(),
            matrix.n_rows,
            matrix.n_cols()
        ));
    }
    Ok(())
}

fn flag_column(n_cols: usize, field: &str) -> Option<usize> {
    let offset = MISSING_FLAG_FIELDS.iter().position(|f| *f == field)?;
    Some(n_cols - MISSING_FLAG_FIELDS.len() + offset)
}

fn check_values(matrix: &FeatureMatrix) -> Result<(), String> {
    let n_cols = matrix.n_cols();
    let first_flag = n_cols - MISSING_FLAG_FIELDS.len();
    for r in 0..matrix.n_rows {
        let row = matrix.row(r);
        for (column, &value) in row.iter().enumerate() {
            if column >= first_flag {
                if value != 0.0 && value != 1.0 {
                    return Err(format!("row {r}: flag column {column} is {value}"));
                }
            } else if value.is_nan() {
                let flagged = feature_inputs(column)
                    .iter()
                    .any(|input| flag_column(n_cols, input).is_some_and(|flag| row[flag] == 1.0));
                if !flagged {
                    return Err(format!(
                        "row {r}: column {column} is NaN and none of {:?} is flagged missing",
                        feature_inputs(column)
                    ));
                }
            } else if !value.is_finite() {
                return Err(format!("row {r}: column {column} is {value}"));
            }
        }
    }
    Ok(())
}

/// Every item of the list either formed rows or has one dropped error.
fn check_items(
    kind: ItemKind,
    n_items: usize,
    ids_with_rows: &[String],
    errors: &[ItemError],
) -> Result<(), String> {
    let mut dropped: HashMap<u32, usize> = HashMap::new();
    for error in errors.iter().filter(|e| e.kind == kind) {
        if error.index as usize >= n_items {
            return Err(format!(
                "error {error} points past the end of the {n_items} {} items",
                kind.as_str()
            ));
        }
        if error.message.is_empty() || error.message.len() > 1024 {
            return Err(format!(
                "error message of {} bytes for {} #{}",
                error.message.len(),
                kind.as_str(),
                error.index
            ));
        }
        if error.dropped {
            *dropped.entry(error.index).or_default() += 1;
        }
    }
    if let Some((index, count)) = dropped.iter().find(|(_, count)| **count > 1) {
        return Err(format!(
            "{} #{index} has {count} dropped errors, expected one",
            kind.as_str()
        ));
    }
    if ids_with_rows.len() + dropped.len() != n_items {
        return Err(format!(
            "{} {}s formed rows and {} were dropped, out of {n_items}",
            ids_with_rows.len(),
            kind.as_str(),
            dropped.len()
        ));
    }
    Ok(())
}

/// The matrix's ids are distinct, and a subsequence of the input's ids.
fn check_ids_in_order<'a>(
    mut input: impl Iterator<Item = Option<&'a str>>,
    ids: &[String],
) -> Result<(), String> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id.as_str()) {
            return Err(format!("id {id:?} forms rows twice"));
        }
        if !input.any(|candidate| candidate == Some(id.as_str())) {
            return Err(format!("id {id:?} is not in the input, or out of order"));
        }
    }
    Ok(())
}
