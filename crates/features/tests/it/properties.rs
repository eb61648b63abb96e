//! Property tests: no input panics the featurizer, and every value is finite
//! or NaN with the missing flag of one of its inputs set.

use proptest::prelude::*;
use triad_features::{
    FeatureSchema, Featurizer, JsonLimits, MISSING_FLAG_FIELDS, RawBudget, RawLineItem, RawRequest,
    feature_inputs, parse_request,
};

/// Field values: realistic ones, edge cases and arbitrary unicode.
fn field() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(String::new())),
        prop_oneof![
            Just("140.0"),
            Just("-0"),
            Just("1e308"),
            Just("NaN"),
            Just("0.001"),
            Just("2017-04-18 04:00:00"),
            Just("9999-12-31T23:59:59Z"),
            Just("2017-02-29"),
            Just("Southwest Airlines"),
            Just("SOUTHWEST AIR 5262134"),
            Just("Hôtel Le Méridien"),
            Just("flight"),
            Just("taxi"),
        ]
        .prop_map(|s| Some(s.to_owned())),
        "[0-9.eE+-]{0,12}".prop_map(Some),
        "\\PC{0,40}".prop_map(Some),
        any::<f64>().prop_map(|x| Some(x.to_string())),
    ]
}

fn id() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(String::new())),
        "[a-c]{1,2}".prop_map(Some)
    ]
}

prop_compose! {
    fn budget()(
        budget_id in id(), a in field(), b in field(), c in field(), d in field(),
        e in field(), f in field(), g in field(), h in field(),
    ) -> RawBudget {
        RawBudget {
            budget_id, budget_price_budget: a, travel_vendor_receipts: b,
            purchase_vendor_receipts: c, budget_type_budget: d, generated_at_budget: e,
            start_datetime_trips: f, end_datetime_trips: g, actual_cost_budget: h,
        }
    }
}

prop_compose! {
    fn item()(
        itemization_id in id(), a in field(), b in field(), c in field(), d in field(),
        e in field(), f in field(), g in field(),
    ) -> RawLineItem {
        RawLineItem {
            itemization_id, expensed_amount_itemization: a, expense_type_name_itemization: b,
            transaction_date_itemization: c, expense_category_itemization: d,
            vendor_name_expense: e, expense_type_name_expense: f, expense_category_expense: g,
        }
    }
}

fn flag_column(field: &str) -> usize {
    let offset = MISSING_FLAG_FIELDS
        .iter()
        .position(|f| *f == field)
        .unwrap();
    FeatureSchema::current().feature_names.len() - MISSING_FLAG_FIELDS.len() + offset
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn values_are_finite_or_nan_with_a_flag(
        budgets in prop::collection::vec(budget(), 0..4),
        items in prop::collection::vec(item(), 0..4),
    ) {
        let request = RawRequest { budgets, all_user_expense_lineitems: items };
        let matrix = Featurizer::default().featurize(&request);
        prop_assert_eq!(matrix.n_rows, matrix.budget_ids.len() * matrix.item_ids.len());
        prop_assert_eq!(matrix.values.len(), matrix.n_rows * matrix.n_cols());
        for r in 0..matrix.n_rows {
            let row = matrix.row(r);
            for (column, value) in row.iter().enumerate() {
                if value.is_nan() {
                    let flagged = feature_inputs(column)
                        .iter()
                        .any(|input| row[flag_column(input)] == 1.0);
                    prop_assert!(flagged, "column {} is NaN without a flag: {:?}", column, row);
                } else {
                    prop_assert!(value.is_finite(), "column {} is {}", column, value);
                }
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics(body in "\\PC{0,200}") {
        let _ = parse_request(&body, &JsonLimits::default());
    }

    #[test]
    fn json_shaped_garbage_never_panics(
        values in prop::collection::vec(
            prop_oneof![
                Just("null".to_owned()),
                Just("[]".to_owned()),
                Just("{}".to_owned()),
                Just("true".to_owned()),
                any::<i64>().prop_map(|n| n.to_string()),
                "\\PC{0,10}".prop_map(|s| serde_json_string(&s)),
            ],
            0..6,
        )
    ) {
        let fields = ["budget_id", "budget_price_budget", "start_datetime_trips"];
        let budgets: Vec<String> = values
            .chunks(3)
            .map(|chunk| {
                let pairs: Vec<String> = chunk
                    .iter()
                    .zip(fields)
                    .map(|(v, f)| format!("\"{f}\":{v}"))
                    .collect();
                format!("{{{}}}", pairs.join(","))
            })
            .chain(values.iter().cloned())
            .collect();
        let body = format!(
            "{{\"budgets\":[{}],\"all_user_expense_lineitems\":[{}]}}",
            budgets.join(","),
            values.join(",")
        );
        if let Ok(parsed) = parse_request(&body, &JsonLimits::default()) {
            let matrix = Featurizer::default()
                .featurize_with_errors(&parsed.request, parsed.errors);
            prop_assert_eq!(matrix.values.len(), matrix.n_rows * matrix.n_cols());
        }
    }
}

fn serde_json_string(s: &str) -> String {
    format!("{s:?}").replace("\\'", "'")
}
