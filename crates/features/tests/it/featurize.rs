//! Feature values on hand-computed cases, and what bad input turns into.

use triad_features::{
    FEATURE_NAMES, Featurizer, ItemErrorCode, ItemKind, JsonLimits, N_FEATURES, RawBudget,
    RawLineItem, RawRequest, parse_request,
};
use triad_test_support::SEED_REQUEST;

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn seed_budget() -> RawBudget {
    RawBudget {
        budget_id: some("309366"),
        budget_price_budget: some("140.0"),
        travel_vendor_receipts: some("Southwest Airlines"),
        purchase_vendor_receipts: some("Southwest Airlines"),
        budget_type_budget: some("flight"),
        generated_at_budget: some("2017-04-08 14:55:39"),
        start_datetime_trips: some("2017-04-18 04:00:00"),
        end_datetime_trips: some("2017-04-19 04:00:00"),
        actual_cost_budget: some("131.98"),
    }
}

fn seed_item() -> RawLineItem {
    RawLineItem {
        itemization_id: some("4659496"),
        expensed_amount_itemization: some("24.0"),
        expense_type_name_itemization: some("Taxi"),
        transaction_date_itemization: some("2017-04-25 00:00:00"),
        expense_category_itemization: some("taxi"),
        vendor_name_expense: some("taxi"),
        expense_type_name_expense: some("Taxi"),
        expense_category_expense: some("taxi"),
    }
}

fn request(budgets: Vec<RawBudget>, items: Vec<RawLineItem>) -> RawRequest {
    RawRequest {
        budgets,
        all_user_expense_lineitems: items,
    }
}

fn assert_close(actual: f32, expected: f64, what: &str) {
    assert!(
        (f64::from(actual) - expected).abs() <= 1e-6 * expected.abs().max(1.0),
        "{what}: expected {expected}, got {actual}"
    );
}

#[test]
fn seed_fixture_gives_hand_computed_features() {
    let parsed = parse_request(SEED_REQUEST, &JsonLimits::default()).unwrap();
    assert!(parsed.errors.is_empty());
    assert_eq!(
        parsed.request,
        request(vec![seed_budget()], vec![seed_item()])
    );
    let matrix = Featurizer::default().featurize(&parsed.request);
    assert_eq!(matrix.n_rows, 1);
    assert_eq!(matrix.values.len(), N_FEATURES);
    assert_eq!(matrix.key(0), ("309366", "4659496"));
    assert!(matrix.errors.is_empty());
    let expected: [(&str, f64); 20] = [
        // "southwest airlines" vs "taxi": Jaro (2/18 + 2/4 + 2/2) / 3, no
        // common prefix; Levenshtein distance 15 over 18 characters.
        ("travel_vendor_jaro_winkler", (2.0 / 18.0 + 0.5 + 1.0) / 3.0),
        ("travel_vendor_levenshtein", 1.0 - 15.0 / 18.0),
        ("travel_vendor_token_jaccard", 0.0),
        (
            "purchase_vendor_jaro_winkler",
            (2.0 / 18.0 + 0.5 + 1.0) / 3.0,
        ),
        ("purchase_vendor_levenshtein", 1.0 - 15.0 / 18.0),
        ("purchase_vendor_token_jaccard", 0.0),
        ("type_agrees_expense_type_name_itemization", 0.0),
        ("type_agrees_expense_category_itemization", 0.0),
        ("type_agrees_expense_type_name_expense", 0.0),
        ("type_agrees_expense_category_expense", 0.0),
        ("amount_ratio_actual_cost", 24.0 / 131.98),
        ("amount_abs_diff_actual_cost", 107.98),
        ("amount_rel_diff_actual_cost", 107.98 / 131.98),
        ("amount_ratio_budget_price", 24.0 / 140.0),
        ("amount_abs_diff_budget_price", 116.0),
        ("amount_rel_diff_budget_price", 116.0 / 140.0),
        // 2017-04-25 00:00 is 6 d 20 h after the start, 5 d 20 h after the end.
        ("days_from_trip_start", 6.0 + 20.0 / 24.0),
        ("days_from_trip_end", 5.0 + 20.0 / 24.0),
        ("in_trip_window", 0.0),
        // 16 d 9 h 4 min 21 s after the budget was generated.
        ("days_since_budget_generated", 16.0 + 32_661.0 / 86_400.0),
    ];
    for (feature, value) in expected {
        assert_close(matrix.get(0, feature).unwrap(), value, feature);
    }
    for (column, name) in FEATURE_NAMES.iter().enumerate().skip(20) {
        assert_eq!(matrix.row(0)[column], 0.0, "{name}");
    }
}

#[test]
fn matching_pair_scores_high_on_vendor_type_amount_and_dates() {
    let item = RawLineItem {
        expensed_amount_itemization: some("131.98"),
        expense_type_name_itemization: some("Airfare"),
        expense_category_itemization: some("air travel"),
        transaction_date_itemization: some("2017-04-10 09:12:00"),
        vendor_name_expense: some("SOUTHWEST AIR 5262134"),
        expense_type_name_expense: some("Airline"),
        expense_category_expense: some("Flights"),
        ..seed_item()
    };
    let matrix = Featurizer::default().featurize(&request(vec![seed_budget()], vec![item]));
    let get = |feature| matrix.get(0, feature).unwrap();
    // Jaro = (13/18 + 1 + 1) / 3; Winkler adds 4 * 0.1 * (1 - Jaro).
    let jaro = (13.0 / 18.0 + 2.0) / 3.0;
    assert_close(
        get("travel_vendor_jaro_winkler"),
        jaro + 0.4 * (1.0 - jaro),
        "jw",
    );
    assert_close(get("travel_vendor_levenshtein"), 1.0 - 5.0 / 18.0, "lev");
    // Stems {airlin, southwest} vs {air, southwest}.
    assert_close(get("travel_vendor_token_jaccard"), 1.0 / 3.0, "jaccard");
    for feature in &FEATURE_NAMES[6..10] {
        assert_eq!(get(feature), 1.0, "{feature}");
    }
    assert_eq!(get("amount_ratio_actual_cost"), 1.0);
    assert_eq!(get("amount_abs_diff_actual_cost"), 0.0);
    // Bought 7 d 18 h 48 min before the trip: outside the 2-day tolerance.
    assert_close(get("days_from_trip_start"), -(7.0 + 18.8 / 24.0), "start");
    assert_eq!(get("in_trip_window"), 0.0);
}

#[test]
fn trip_window_tolerance_is_two_days_each_side() {
    let at = |date: &str| {
        let item = RawLineItem {
            transaction_date_itemization: some(date),
            ..seed_item()
        };
        let matrix = Featurizer::default().featurize(&request(vec![seed_budget()], vec![item]));
        matrix.get(0, "in_trip_window").unwrap()
    };
    assert_eq!(at("2017-04-16 04:00:00"), 1.0);
    assert_eq!(at("2017-04-16 03:59:59"), 0.0);
    assert_eq!(at("2017-04-21 04:00:00"), 1.0);
    assert_eq!(at("2017-04-21 04:00:01"), 0.0);
}

#[test]
fn nulls_and_empty_strings_give_nan_and_flags() {
    let budget = RawBudget {
        budget_id: some("b1"),
        ..RawBudget::default()
    };
    let item = RawLineItem {
        itemization_id: some("i1"),
        expensed_amount_itemization: some(""),
        expense_type_name_itemization: some("  "),
        transaction_date_itemization: some(""),
        expense_category_itemization: None,
        vendor_name_expense: some("#123"),
        expense_type_name_expense: some(""),
        expense_category_expense: None,
    };
    let matrix = Featurizer::default().featurize(&request(vec![budget], vec![item]));
    assert_eq!(matrix.n_rows, 1);
    assert!(matrix.errors.is_empty(), "{:?}", matrix.errors);
    let row = matrix.row(0);
    assert!(row[..20].iter().all(|v| v.is_nan()), "{row:?}");
    assert!(row[20..].iter().all(|v| *v == 1.0), "{row:?}");
}

#[test]
fn unparsable_values_are_missing_with_an_item_error() {
    let budget = RawBudget {
        budget_price_budget: some("-5"),
        start_datetime_trips: some("2017-02-30 00:00:00"),
        actual_cost_budget: some("lots"),
        ..seed_budget()
    };
    let item = RawLineItem {
        expensed_amount_itemization: some("1e300"),
        transaction_date_itemization: some("next tuesday"),
        ..seed_item()
    };
    let matrix = Featurizer::default().featurize(&request(vec![budget], vec![item]));
    assert_eq!(matrix.n_rows, 1);
    let fields: Vec<_> = matrix.errors.iter().map(|e| e.field.unwrap()).collect();
    assert_eq!(
        fields,
        [
            "budget_price_budget",
            "start_datetime_trips",
            "actual_cost_budget",
            "expensed_amount_itemization",
            "transaction_date_itemization"
        ]
    );
    assert!(
        matrix
            .errors
            .iter()
            .all(|e| e.code == ItemErrorCode::InvalidValue && !e.dropped)
    );
    assert_eq!(matrix.errors[0].id.as_deref(), Some("309366"));
    assert_eq!(
        matrix.errors[0].message,
        "expected a budget amount of at least 0.01, got -5"
    );
    assert_eq!(matrix.errors[3].kind, ItemKind::LineItem);
    for feature in [
        "missing_budget_price_budget",
        "missing_start_datetime_trips",
        "missing_actual_cost_budget",
        "missing_expensed_amount_itemization",
        "missing_transaction_date_itemization",
    ] {
        assert_eq!(matrix.get(0, feature), Some(1.0), "{feature}");
    }
    assert!(matrix.get(0, "amount_ratio_actual_cost").unwrap().is_nan());
    assert!(
        matrix
            .get(0, "days_since_budget_generated")
            .unwrap()
            .is_nan()
    );
    // The vendor fields were fine and still count.
    assert_eq!(matrix.get(0, "missing_vendor_name_expense"), Some(0.0));
    assert!(!matrix.get(0, "travel_vendor_levenshtein").unwrap().is_nan());
}

#[test]
fn negative_expense_is_a_refund_not_an_error() {
    let item = RawLineItem {
        expensed_amount_itemization: some("-131.98"),
        ..seed_item()
    };
    let matrix = Featurizer::default().featurize(&request(vec![seed_budget()], vec![item]));
    assert!(matrix.errors.is_empty());
    assert_eq!(matrix.get(0, "amount_ratio_actual_cost"), Some(-1.0));
    assert_close(
        matrix.get(0, "amount_abs_diff_actual_cost").unwrap(),
        263.96,
        "abs",
    );
    assert_eq!(matrix.get(0, "amount_rel_diff_actual_cost"), Some(2.0));
}

#[test]
fn unicode_vendors_are_transliterated() {
    let budget = RawBudget {
        travel_vendor_receipts: some("Hôtel Le Méridien"),
        ..seed_budget()
    };
    let item = RawLineItem {
        vendor_name_expense: some("HOTEL LE MERIDIEN PARIS 0042"),
        ..seed_item()
    };
    let matrix = Featurizer::default().featurize(&request(vec![budget], vec![item]));
    assert_close(
        matrix.get(0, "travel_vendor_levenshtein").unwrap(),
        1.0 - 6.0 / 23.0,
        "lev",
    );
    assert_close(
        matrix.get(0, "travel_vendor_token_jaccard").unwrap(),
        3.0 / 4.0,
        "jaccard",
    );
}

#[test]
fn ten_kilobyte_vendor_is_too_long_but_the_pair_is_kept() {
    let item = RawLineItem {
        vendor_name_expense: some(&"Southwest ".repeat(1024)),
        ..seed_item()
    };
    let matrix = Featurizer::default().featurize(&request(vec![seed_budget()], vec![item]));
    assert_eq!(matrix.n_rows, 1);
    assert_eq!(matrix.errors.len(), 1);
    let error = &matrix.errors[0];
    assert_eq!(error.code, ItemErrorCode::ValueTooLong);
    assert_eq!(error.field, Some("vendor_name_expense"));
    assert_eq!(
        error.message,
        "expected at most 512 bytes, got 10240; treated as missing"
    );
    assert_eq!(matrix.get(0, "missing_vendor_name_expense"), Some(1.0));
    assert!(
        matrix
            .get(0, "travel_vendor_jaro_winkler")
            .unwrap()
            .is_nan()
    );
}

#[test]
fn items_without_ids_or_with_duplicate_ids_are_dropped_alone() {
    let budgets = vec![
        seed_budget(),
        RawBudget {
            budget_id: None,
            ..seed_budget()
        },
        RawBudget {
            budget_id: some("b2"),
            ..seed_budget()
        },
    ];
    let items = vec![
        seed_item(),
        RawLineItem {
            itemization_id: some(""),
            ..seed_item()
        },
        seed_item(),
        RawLineItem {
            itemization_id: some("i2"),
            ..seed_item()
        },
    ];
    let matrix = Featurizer::default().featurize(&request(budgets, items));
    assert_eq!(matrix.budget_ids, ["309366", "b2"]);
    assert_eq!(matrix.item_ids, ["4659496", "i2"]);
    assert_eq!(matrix.n_rows, 4);
    let keys: Vec<_> = matrix.rows().map(|(key, _)| key).collect();
    assert_eq!(
        keys,
        [
            ("309366", "4659496"),
            ("309366", "i2"),
            ("b2", "4659496"),
            ("b2", "i2")
        ]
    );
    let codes: Vec<_> = matrix
        .errors
        .iter()
        .map(|e| (e.kind, e.index, e.code, e.dropped))
        .collect();
    assert_eq!(
        codes,
        [
            (ItemKind::Budget, 1, ItemErrorCode::MissingId, true),
            (ItemKind::LineItem, 1, ItemErrorCode::MissingId, true),
            (ItemKind::LineItem, 2, ItemErrorCode::DuplicateId, true),
        ]
    );
    // Identical inputs give identical rows.
    assert_eq!(matrix.row(0), matrix.row(2));
}

#[test]
fn an_id_the_monitor_could_not_store_forms_no_row() {
    // A NUL character: the monitor refuses it (PostgreSQL cannot store
    // one), so a pair answered with it would be lost.
    let budgets = vec![
        seed_budget(),
        RawBudget {
            budget_id: some("nul\0inside"),
            ..seed_budget()
        },
    ];
    let items = vec![
        RawLineItem {
            // Any other control character: six bytes each in a JSON answer.
            itemization_id: some("a\u{1}b"),
            ..seed_item()
        },
        seed_item(),
    ];
    let matrix = Featurizer::default().featurize(&request(budgets, items));
    assert_eq!(matrix.budget_ids, ["309366"]);
    assert_eq!(matrix.item_ids, ["4659496"]);
    let codes: Vec<_> = matrix
        .errors
        .iter()
        .map(|e| (e.kind, e.index, e.code, e.dropped))
        .collect();
    assert_eq!(
        codes,
        [
            (ItemKind::Budget, 1, ItemErrorCode::InvalidValue, true),
            (ItemKind::LineItem, 0, ItemErrorCode::InvalidValue, true),
        ]
    );
    assert!(
        matrix.errors[0].message.contains("NUL"),
        "{:?}",
        matrix.errors
    );
}

#[test]
fn json_errors_carry_through_and_dropped_items_are_skipped() {
    let body = r#"{"budgets":[null,{"budget_id":"1","budget_price_budget":"100"}],
                  "all_user_expense_lineitems":[{"itemization_id":"2","expensed_amount_itemization":{"v":1}}]}"#;
    let parsed = parse_request(body, &JsonLimits::default()).unwrap();
    let matrix = Featurizer::default().featurize_with_errors(&parsed.request, parsed.errors);
    assert_eq!(matrix.n_rows, 1);
    assert_eq!(matrix.key(0), ("1", "2"));
    assert_eq!(matrix.errors.len(), 2);
    assert_eq!(matrix.errors[0].code, ItemErrorCode::MalformedItem);
    assert_eq!(matrix.errors[1].field, Some("expensed_amount_itemization"));
    assert_eq!(
        matrix.get(0, "missing_expensed_amount_itemization"),
        Some(1.0)
    );
}

#[test]
fn inverted_trip_dates_drop_the_end() {
    let budget = RawBudget {
        end_datetime_trips: some("2017-04-01 00:00:00"),
        ..seed_budget()
    };
    let matrix = Featurizer::default().featurize(&request(vec![budget], vec![seed_item()]));
    assert_eq!(matrix.errors.len(), 1);
    assert_eq!(matrix.errors[0].field, Some("end_datetime_trips"));
    assert!(matrix.get(0, "in_trip_window").unwrap().is_nan());
    assert_eq!(matrix.get(0, "missing_end_datetime_trips"), Some(1.0));
    assert_close(
        matrix.get(0, "days_from_trip_start").unwrap(),
        6.0 + 20.0 / 24.0,
        "start still counts",
    );
}

#[test]
fn empty_sides_give_an_empty_matrix() {
    let matrix = Featurizer::default().featurize(&request(vec![seed_budget()], vec![]));
    assert_eq!(matrix.n_rows, 0);
    assert!(matrix.values.is_empty());
    assert_eq!(matrix.budget_ids, ["309366"]);
}
