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

/// `budget` as an outcome keeps it: each field cut to the bytes the
/// featurizer reads of it ([`features::clip`], marked when cut), so a copy
/// kept per scored pair costs a bounded amount whatever the caller sent.
pub fn kept_budget(budget: &v1::Budget, config: &features::FeaturizerConfig) -> v1::Budget {
    use features::record::BUDGET_FIELD_KINDS as K;
    let keep = |value: &Option<String>, kind| {
        value
            .as_deref()
            .map(|v| features::clip(v, config.read_bound(kind)).into_owned())
    };
    v1::Budget {
        budget_id: keep(&budget.budget_id, K[0]),
        budget_price_budget: keep(&budget.budget_price_budget, K[1]),
        travel_vendor_receipts: keep(&budget.travel_vendor_receipts, K[2]),
        purchase_vendor_receipts: keep(&budget.purchase_vendor_receipts, K[3]),
        budget_type_budget: keep(&budget.budget_type_budget, K[4]),
        generated_at_budget: keep(&budget.generated_at_budget, K[5]),
        start_datetime_trips: keep(&budget.start_datetime_trips, K[6]),
        end_datetime_trips: keep(&budget.end_datetime_trips, K[7]),
        actual_cost_budget: keep(&budget.actual_cost_budget, K[8]),
    }
}

/// `item` as an outcome keeps it (see [`kept_budget`]).
pub fn kept_line_item(
    item: &v1::ExpenseLineItem,
    config: &features::FeaturizerConfig,
) -> v1::ExpenseLineItem {
    use features::record::LINE_ITEM_FIELD_KINDS as K;
    let keep = |value: &Option<String>, kind| {
        value
            .as_deref()
            .map(|v| features::clip(v, config.read_bound(kind)).into_owned())
    };
    v1::ExpenseLineItem {
        itemization_id: keep(&item.itemization_id, K[0]),
        expensed_amount_itemization: keep(&item.expensed_amount_itemization, K[1]),
        expense_type_name_itemization: keep(&item.expense_type_name_itemization, K[2]),
        transaction_date_itemization: keep(&item.transaction_date_itemization, K[3]),
        expense_category_itemization: keep(&item.expense_category_itemization, K[4]),
        vendor_name_expense: keep(&item.vendor_name_expense, K[5]),
        expense_type_name_expense: keep(&item.expense_type_name_expense, K[6]),
        expense_category_expense: keep(&item.expense_category_expense, K[7]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_inputs_are_cut_to_what_the_featurizer_reads_and_marked() {
        let config = features::FeaturizerConfig::default();
        let long = "Southwest ".repeat(10_000);
        let budget = v1::Budget {
            budget_id: Some("b1".to_owned()),
            budget_price_budget: Some("1".repeat(1_000)),
            travel_vendor_receipts: Some(long.clone()),
            purchase_vendor_receipts: Some("Hilton".to_owned()),
            ..v1::Budget::default()
        };
        let kept = kept_budget(&budget, &config);
        assert_eq!(kept.budget_id.as_deref(), Some("b1"));
        assert_eq!(kept.purchase_vendor_receipts.as_deref(), Some("Hilton"));
        assert_eq!(kept.start_datetime_trips, None);
        let travel = kept.travel_vendor_receipts.unwrap();
        assert!(travel.starts_with(&long[..config.max_text_bytes]));
        assert!(travel.ends_with("…[cut from 100000 bytes]"), "{travel}");
        let price = kept.budget_price_budget.unwrap();
        assert!(price.len() < 100 && price.ends_with("[cut from 1000 bytes]"));

        let item = v1::ExpenseLineItem {
            itemization_id: Some("i1".to_owned()),
            vendor_name_expense: Some(long),
            transaction_date_itemization: Some("2024-05-01".to_owned()),
            ..v1::ExpenseLineItem::default()
        };
        let kept = kept_line_item(&item, &config);
        assert_eq!(
            kept.transaction_date_itemization.as_deref(),
            Some("2024-05-01")
        );
        assert!(kept.vendor_name_expense.unwrap().len() < config.max_text_bytes + 40);
    }
}
