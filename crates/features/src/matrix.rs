//! The featurizer's output: a dense row-major matrix whose rows are the cross
//! product of the accepted budgets and line items, budget-major.

use crate::error::ItemError;
use crate::schema::FeatureSchema;

/// A dense feature matrix with its schema, row keys and per-item errors.
///
/// Row `r` pairs budget `r / item_ids.len()` with line item
/// `r % item_ids.len()`; keys are implied by that layout, so a 1000 × 1000
/// request does not hold a million pairs of id strings.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    /// The names and version of the columns.
    pub schema: &'static FeatureSchema,
    /// Number of rows: accepted budgets × accepted line items.
    pub n_rows: usize,
    /// `n_rows * schema.feature_names.len()` values, row-major; NaN marks a
    /// missing value.
    pub values: Vec<f32>,
    /// Ids of the budgets that formed rows, in input order.
    pub budget_ids: Vec<String>,
    /// Ids of the line items that formed rows, in input order.
    pub item_ids: Vec<String>,
    /// Problems with single items, in input order; an item marked
    /// [`ItemError::dropped`] formed no row.
    pub errors: Vec<ItemError>,
}

impl FeatureMatrix {
    /// Number of columns.
    pub fn n_cols(&self) -> usize {
        self.schema.feature_names.len()
    }

    /// The values of row `r`.
    ///
    /// # Panics
    /// If `r >= n_rows`.
    pub fn row(&self, r: usize) -> &[f32] {
        let n_cols = self.n_cols();
        &self.values[r * n_cols..(r + 1) * n_cols]
    }

    /// The `(budget_id, itemization_id)` of row `r`.
    ///
    /// # Panics
    /// If `r >= n_rows`.
    pub fn key(&self, r: usize) -> (&str, &str) {
        let n_items = self.item_ids.len();
        (&self.budget_ids[r / n_items], &self.item_ids[r % n_items])
    }

    /// Every row with its key, in row order.
    pub fn rows(&self) -> impl Iterator<Item = ((&str, &str), &[f32])> {
        (0..self.n_rows).map(|r| (self.key(r), self.row(r)))
    }

    /// The value of `feature` in row `r`, if the schema has that feature.
    pub fn get(&self, r: usize, feature: &str) -> Option<f32> {
        self.schema.index_of(feature).map(|c| self.row(r)[c])
    }
}
