//! Conversions between the wire types of `triad.v1` and the domain types of
//! `triad-features`, kept here so that every service converts the same way.

use triad_features as features;

use crate::v1;

impl From<v1::Budget> for features::RawBudget {
    fn from(b: v1::Budget) -> Self {
        Self {
            budget_id: b.budget_id,
            budget_price_budget: b.budget_price_budget,
            travel_vendor_receipts: b.travel_vendor_receipts,
            purchase_vendor_receipts: b.purchase_vendor_receipts,
            budget_type_budget: b.budget_type_budget,
            generated_at_budget: b.generated_at_budget,
            start_datetime_trips: b.start_datetime_trips,
            end_datetime_trips: b.end_datetime_trips,
            actual_cost_budget: b.actual_cost_budget,
        }
    }
}

impl From<features::RawBudget> for v1::Budget {
    fn from(b: features::RawBudget) -> Self {
        Self {
            budget_id: b.budget_id,
            budget_price_budget: b.budget_price_budget,
            travel_vendor_receipts: b.travel_vendor_receipts,
            purchase_vendor_receipts: b.purchase_vendor_receipts,
            budget_type_budget: b.budget_type_budget,
            generated_at_budget: b.generated_at_budget,
            start_datetime_trips: b.start_datetime_trips,
            end_datetime_trips: b.end_datetime_trips,
            actual_cost_budget: b.actual_cost_budget,
        }
    }
}

impl From<v1::ExpenseLineItem> for features::RawLineItem {
    fn from(i: v1::ExpenseLineItem) -> Self {
        Self {
            itemization_id: i.itemization_id,
            expensed_amount_itemization: i.expensed_amount_itemization,
            expense_type_name_itemization: i.expense_type_name_itemization,
            transaction_date_itemization: i.transaction_date_itemization,
            expense_category_itemization: i.expense_category_itemization,
            vendor_name_expense: i.vendor_name_expense,
            expense_type_name_expense: i.expense_type_name_expense,
            expense_category_expense: i.expense_category_expense,
        }
    }
}

impl From<features::RawLineItem> for v1::ExpenseLineItem {
    fn from(i: features::RawLineItem) -> Self {
        Self {
            itemization_id: i.itemization_id,
            expensed_amount_itemization: i.expensed_amount_itemization,
            expense_type_name_itemization: i.expense_type_name_itemization,
            transaction_date_itemization: i.transaction_date_itemization,
            expense_category_itemization: i.expense_category_itemization,
            vendor_name_expense: i.vendor_name_expense,
            expense_type_name_expense: i.expense_type_name_expense,
            expense_category_expense: i.expense_category_expense,
        }
    }
}

impl From<v1::FeaturizeRequest> for features::RawRequest {
    fn from(r: v1::FeaturizeRequest) -> Self {
        Self {
            budgets: r.budgets.into_iter().map(Into::into).collect(),
            all_user_expense_lineitems: r
                .all_user_expense_lineitems
                .into_iter()
                .map(Into::into)
                .collect(),
        }
    }
}

impl From<features::RawRequest> for v1::FeaturizeRequest {
    fn from(r: features::RawRequest) -> Self {
        Self {
            budgets: r.budgets.into_iter().map(Into::into).collect(),
            all_user_expense_lineitems: r
                .all_user_expense_lineitems
                .into_iter()
                .map(Into::into)
                .collect(),
        }
    }
}

impl From<&features::FeatureSchema> for v1::FeatureSchema {
    fn from(s: &features::FeatureSchema) -> Self {
        Self {
            name: s.name.clone(),
            version: s.version.clone(),
            feature_names: s.feature_names.clone(),
            hash: s.hash.clone(),
        }
    }
}

impl From<features::ItemErrorCode> for v1::ItemErrorCode {
    fn from(code: features::ItemErrorCode) -> Self {
        use features::ItemErrorCode as C;
        match code {
            C::MissingId => Self::MissingId,
            C::DuplicateId => Self::DuplicateId,
            C::InvalidValue => Self::InvalidValue,
            C::ValueTooLong => Self::ValueTooLong,
            C::MalformedItem => Self::MalformedItem,
        }
    }
}

impl From<features::ItemError> for v1::ItemError {
    fn from(e: features::ItemError) -> Self {
        let id = e.id.unwrap_or_default();
        let (budget_id, itemization_id) = match e.kind {
            features::ItemKind::Budget => (id, String::new()),
            features::ItemKind::LineItem => (String::new(), id),
        };
        Self {
            budget_id,
            itemization_id,
            field: e.field.unwrap_or_default().to_owned(),
            code: v1::ItemErrorCode::from(e.code).into(),
            message: e.message,
            dropped: e.dropped,
            index: e.index,
            item_kind: e.kind.as_str().to_owned(),
        }
    }
}

/// Splits a matrix into wire messages of at most `rows_per_chunk` rows. The
/// first message carries the schema and every per-item error; there is
/// always at least one message, even for an empty matrix.
pub fn matrix_chunks(
    matrix: features::FeatureMatrix,
    request_id: &str,
    rows_per_chunk: usize,
) -> Vec<v1::FeatureMatrix> {
    let rows_per_chunk = rows_per_chunk.max(1);
    let n_cols = matrix.n_cols();
    let schema = v1::FeatureSchema::from(matrix.schema);
    let mut chunks = Vec::with_capacity(matrix.n_rows.div_ceil(rows_per_chunk).max(1));
    let mut start = 0;
    loop {
        let end = (start + rows_per_chunk).min(matrix.n_rows);
        chunks.push(v1::FeatureMatrix {
            schema: None,
            n_rows: (end - start) as u32,
            n_cols: n_cols as u32,
            values: matrix.values[start * n_cols..end * n_cols].to_vec(),
            keys: (start..end)
                .map(|r| {
                    let (budget_id, itemization_id) = matrix.key(r);
                    v1::PairKey {
                        budget_id: budget_id.to_owned(),
                        itemization_id: itemization_id.to_owned(),
                    }
                })
                .collect(),
            errors: Vec::new(),
            request_id: request_id.to_owned(),
        });
        start = end;
        if start >= matrix.n_rows {
            break;
        }
    }
    chunks[0].schema = Some(schema);
    chunks[0].errors = matrix.errors.into_iter().map(Into::into).collect();
    chunks
}

/// The whole matrix as one wire message.
pub fn matrix_to_proto(matrix: features::FeatureMatrix, request_id: &str) -> v1::FeatureMatrix {
    let n_rows = matrix.n_rows;
    let mut chunks = matrix_chunks(matrix, request_id, n_rows.max(1));
    chunks.swap_remove(0)
}
