//! Hostile input, in the normal test suite: the property-test twins of the
//! fuzz targets in `fuzz/` (arbitrary bytes, arbitrary JSON values and
//! arbitrary records into the JSON reader and the featurizer), and one test
//! per bound of the JSON path. Every property asserts the invariants of
//! `triad_test_support::invariants`, which the fuzz targets check too.

use proptest::prelude::*;
use serde_json::{Value, json};
use triad_features::json::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH};
use triad_features::parse::MAX_FIELD_BYTES;
use triad_features::{
    Featurizer, FeaturizerConfig, ItemErrorCode, JsonLimits, RawBudget, RawLineItem, RawRequest,
    RequestError, parse_request,
};

use triad_features::record::{BUDGET_FIELDS, LINE_ITEM_FIELDS as ITEM_FIELDS};
use triad_test_support::{SEED_REQUEST, invariants};

/// Parses, featurizes and checks every invariant; what the JSON fuzz target
/// does per input.
fn featurize_json(body: &str) -> Result<(), TestCaseError> {
    let Ok(parsed) = parse_request(body, &JsonLimits::default()) else {
        return Ok(());
    };
    let request = parsed.request.clone();
    let matrix = Featurizer::default().featurize_with_errors(&parsed.request, parsed.errors);
    invariants::check_matrix(&request, &matrix).map_err(TestCaseError::fail)
}

/// Strings a field may hold: realistic values, edge cases, long and
/// arbitrary ones.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "140.0",
            "-0",
            "1e308",
            "NaN",
            "2017-04-18 04:00:00",
            "2017-04-18T04:00:00+14:00",
            "2016-12-31 23:59:60",
            "Southwest Airlines",
            "SOUTHWEST AIR 5262134",
            "Hôtel Le Méridien",
            "東京ホテル",
            "flight",
            "don't",
        ])
        .prop_map(str::to_owned),
        "[a-c]{1,2}",
        "[0-9.eE+-]{0,80}",
        "\\PC{0,40}",
        any::<String>(),
        (
            1usize..700,
            prop::sample::select(vec!['a', 'é', '東', ' ', '9'])
        )
            .prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
    ]
}

/// Arbitrary JSON, leaning towards the request's own keys.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
    ];
    let key = prop_oneof![
        prop::sample::select(
            BUDGET_FIELDS
                .iter()
                .chain(&ITEM_FIELDS)
                .chain(&["budgets", "all_user_expense_lineitems"])
                .copied()
                .collect::<Vec<_>>()
        )
        .prop_map(str::to_owned),
        "\\PC{0,8}",
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// An item object: some of `fields`, each a string, a number, null or any
/// JSON value; or, now and then, not an object at all.
fn item_value(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let field_value = prop_oneof![
        4 => text().prop_map(Value::String),
        1 => any::<i32>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => json_value(),
    ];
    prop_oneof![
        8 => prop::collection::vec((prop::sample::select(fields), field_value), 0..10)
            .prop_map(|pairs| {
                Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        1 => json_value(),
    ]
}

fn request_value() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(item_value(&BUDGET_FIELDS), 0..6),
        prop::collection::vec(item_value(&ITEM_FIELDS), 0..6),
    )
        .prop_map(
            |(budgets, items)| json!({ "budgets": budgets, "all_user_expense_lineitems": items }),
        )
}

fn field() -> impl Strategy<Value = Option<String>> {
    prop_oneof![1 => Just(None), 6 => text().prop_map(Some)]
}

fn record_id() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(String::new())),
        "[a-c]{1,2}".prop_map(Some),
        (100usize..200).prop_map(|n| Some("x".repeat(n))),
    ]
}

prop_compose! {
    fn budget()(id in record_id(), f in prop::collection::vec(field(), 8)) -> RawBudget {
        let mut f = f.into_iter();
        let mut next = || f.next().flatten();
        RawBudget {
            budget_id: id,
            budget_price_budget: next(),
            travel_vendor_receipts: next(),
            purchase_vendor_receipts: next(),
            budget_type_budget: next(),
            generated_at_budget: next(),
            start_datetime_trips: next(),
            end_datetime_trips: next(),
            actual_cost_budget: next(),
        }
    }
}

prop_compose! {
    fn line_item()(id in record_id(), f in prop::collection::vec(field(), 7)) -> RawLineItem {
        let mut f = f.into_iter();
        let mut next = || f.next().flatten();
        RawLineItem {
            itemization_id: id,
            expensed_amount_itemization: next(),
            expense_type_name_itemization: next(),
            transaction_date_itemization: next(),
            expense_category_itemization: next(),
            vendor_name_expense: next(),
            expense_type_name_expense: next(),
            expense_category_expense: next(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Twin of `fuzz/fuzz_targets/json_request.rs` on unstructured input.
    #[test]
    fn arbitrary_bytes_into_the_json_reader(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        featurize_json(&String::from_utf8_lossy(&bytes))?;
    }

    /// The seed request with bytes flipped, cut or inserted: mostly still
    /// JSON, so this reaches far deeper than random bytes.
    #[test]
    fn mutated_seed_requests(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)) {
        let mut body = SEED_REQUEST.as_bytes().to_vec();
        for (at, byte, op) in edits {
            let at = at.index(body.len() + 1);
            match op {
                0 if at < body.len() => body[at] = byte,
                1 if at < body.len() => { body.remove(at); }
                _ => body.insert(at, byte),
            }
        }
        featurize_json(&String::from_utf8_lossy(&body))?;
    }

    /// Twin of the JSON fuzz target on arbitrary JSON values.
    #[test]
    fn arbitrary_json_values_into_the_json_reader(value in json_value()) {
        featurize_json(&value.to_string())?;
    }

    /// Request-shaped JSON with arbitrary items and fields: errors are per
    /// item and every value is finite or flagged.
    #[test]
    fn request_shaped_json_errors_are_per_item(value in request_value()) {
        let body = value.to_string();
        let parsed = parse_request(&body, &JsonLimits::default());
        prop_assert!(parsed.is_ok(), "a request-shaped body was refused: {:?}", parsed.err());
        featurize_json(&body)?;
    }

    /// The streaming reader reads exactly what the tree reader reads from
    /// the same JSON: records, per-item errors and their order, and the
    /// whole-request error, on request-shaped and arbitrary values, with
    /// limits small enough to be hit.
    #[test]
    fn the_streaming_reader_reads_what_the_tree_reader_reads(
        value in prop_oneof![request_value(), json_value()],
        max_items in prop_oneof![Just(100_000usize), 0usize..4],
    ) {
        let limits = JsonLimits { max_budgets: max_items, max_line_items: max_items, ..limits() };
        // The tree as the old reader built it: parsed from the same text
        // (serde_json's float parsing may differ from `value` by an ulp).
        let text = value.to_string();
        let streamed = parse_request(&text, &limits);
        let tree: Value = serde_json::from_str(&text).unwrap();
        let tree = triad_features::json::from_value(tree, &limits);
        match (streamed, tree) {
            (Ok(streamed), Ok(tree)) => prop_assert_eq!(streamed, tree),
            (Err(streamed), Err(tree)) => prop_assert_eq!(streamed.to_string(), tree.to_string()),
            (streamed, tree) => prop_assert!(false, "streamed {:?}, tree {:?}", streamed, tree),
        }
    }

    /// Twin of `fuzz/fuzz_targets/records.rs`: arbitrary records straight
    /// into the featurizer, with small bounds so that they are hit.
    #[test]
    fn arbitrary_records_into_the_featurizer(
        budgets in prop::collection::vec(budget(), 0..5),
        items in prop::collection::vec(line_item(), 0..5),
        max_text_bytes in prop_oneof![Just(512usize), 0usize..40],
    ) {
        let request = RawRequest { budgets, all_user_expense_lineitems: items };
        let featurizer = Featurizer::new(FeaturizerConfig { max_text_bytes, ..FeaturizerConfig::default() });
        let matrix = featurizer.featurize(&request);
        invariants::check_matrix(&request, &matrix).map_err(TestCaseError::fail)?;
    }
}

fn limits() -> JsonLimits {
    JsonLimits::default()
}

#[test]
fn a_body_over_the_size_limit_is_refused_before_parsing() {
    let small = JsonLimits {
        max_body_bytes: 100,
        ..limits()
    };
    let body = format!("{{\"budgets\":[],\"x\":\"{}\"}}", "a".repeat(100));
    assert_eq!(body.len(), 121);
    let err = parse_request(&body, &small).unwrap_err();
    assert!(matches!(
        err,
        RequestError::TooLarge {
            bytes: 121,
            limit: 100
        }
    ));
    assert_eq!(
        err.to_string(),
        "request body is 121 bytes, more than the limit of 100"
    );
    // Exactly at the limit is fine.
    let body = format!(
        "{{\"budgets\":[],\"all_user_expense_lineitems\":[]{}}}",
        " ".repeat(100 - 46)
    );
    assert_eq!(body.len(), 100);
    assert!(parse_request(&body, &small).is_ok());
    assert_eq!(limits().max_body_bytes, DEFAULT_MAX_BODY_BYTES);
}

#[test]
fn nesting_past_the_depth_limit_is_refused() {
    let nested = |depth: usize| {
        format!(
            "{{\"budgets\":[{{\"budget_id\":\"1\",\"budget_type_budget\":{}0{}}}],\"all_user_expense_lineitems\":[]}}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // Object, array, item, then `depth` arrays.
    let at_limit = nested(DEFAULT_MAX_DEPTH - 3);
    let parsed = parse_request(&at_limit, &limits()).unwrap();
    assert_eq!(parsed.errors.len(), 1);
    assert_eq!(parsed.errors[0].code, ItemErrorCode::InvalidValue);
    let err = parse_request(&nested(DEFAULT_MAX_DEPTH - 2), &limits()).unwrap_err();
    assert!(matches!(err, RequestError::TooDeep { limit } if limit == DEFAULT_MAX_DEPTH));
    assert_eq!(
        err.to_string(),
        "request nests arrays and objects deeper than the limit of 32 levels"
    );
    // Far past serde_json's own recursion limit: still the clean error, and
    // no stack overflow.
    let err = parse_request(&"[".repeat(1_000_000), &limits()).unwrap_err();
    assert!(matches!(err, RequestError::TooDeep { .. }));
}

#[test]
fn brackets_inside_strings_do_not_count_towards_the_depth() {
    let body = json!({
        "budgets": [{
            "budget_id": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            "budget_type_budget": "\\\"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
        }],
        "all_user_expense_lineitems": [],
    })
    .to_string();
    let parsed = parse_request(&body, &limits()).unwrap();
    assert_eq!(parsed.request.budgets.len(), 1);
}

#[test]
fn without_the_pre_scan_deep_nesting_still_cannot_exhaust_the_stack() {
    // The reader recurses only through its fixed shape (object, list,
    // record, field); anything deeper is skipped by serde_json
    // iteratively, so even a million levels read to an answer.
    let lax = JsonLimits {
        max_depth: usize::MAX,
        max_body_bytes: usize::MAX,
        ..limits()
    };
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let err = parse_request(&deep(1_000_000), &lax).unwrap_err();
    assert!(err.to_string().contains("got an array"), "{err}");
    let body = format!(
        r#"{{"budgets": [{}, {{"budget_id": {}}}], "all_user_expense_lineitems": []}}"#,
        deep(1_000_000),
        deep(1_000_000)
    );
    let parsed = parse_request(&body, &lax).unwrap();
    assert_eq!(parsed.request.budgets.len(), 2);
    assert_eq!(parsed.errors.len(), 2, "{:?}", parsed.errors);
}

#[test]
fn too_many_items_is_a_request_error() {
    let small = JsonLimits {
        max_budgets: 2,
        max_line_items: 3,
        ..limits()
    };
    let body = json!({ "budgets": [{}, {}], "all_user_expense_lineitems": [{}, {}, {}, {}] });
    let err = parse_request(&body.to_string(), &small).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`all_user_expense_lineitems` has 4 items, more than the limit of 3"
    );
}

#[test]
fn over_long_fields_are_per_item_errors() {
    let long_amount = "1".repeat(MAX_FIELD_BYTES + 1);
    let long_date = format!("2017-04-18 {}", "0".repeat(MAX_FIELD_BYTES));
    let long_text = "Southwest ".repeat(60);
    let body = json!({
        "budgets": [
            { "budget_id": "b1", "budget_price_budget": long_amount, "start_datetime_trips": long_date },
            { "budget_id": "x".repeat(129) },
        ],
        "all_user_expense_lineitems": [{ "itemization_id": "i1", "vendor_name_expense": long_text }],
    })
    .to_string();
    let parsed = parse_request(&body, &limits()).unwrap();
    let request = parsed.request.clone();
    let matrix = Featurizer::default().featurize_with_errors(&parsed.request, parsed.errors);
    invariants::check_matrix(&request, &matrix).unwrap();
    assert_eq!(matrix.n_rows, 1);
    let summary: Vec<(&str, Option<&str>, ItemErrorCode, bool)> = matrix
        .errors
        .iter()
        .map(|e| (e.kind.as_str(), e.field, e.code, e.dropped))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "budget",
                Some("budget_price_budget"),
                ItemErrorCode::InvalidValue,
                false
            ),
            (
                "budget",
                Some("start_datetime_trips"),
                ItemErrorCode::InvalidValue,
                false
            ),
            (
                "budget",
                Some("budget_id"),
                ItemErrorCode::ValueTooLong,
                true
            ),
            (
                "expense_line_item",
                Some("vendor_name_expense"),
                ItemErrorCode::ValueTooLong,
                false
            ),
        ]
    );
    assert!(matrix.errors[0].message.contains("at most 64 bytes"));
    assert_eq!(matrix.get(0, "missing_budget_price_budget"), Some(1.0));
    assert_eq!(matrix.get(0, "missing_vendor_name_expense"), Some(1.0));
}

#[test]
fn a_repeated_key_reads_as_its_last_value_as_a_json_object_would() {
    // What serde_json's own objects keep; the streaming reader must not
    // keep anything (records or errors) of an earlier value.
    let parsed = parse_request(
        r#"{"budgets": [1, 2], "all_user_expense_lineitems": [],
            "budgets": [{"budget_id": "x", "budget_id": [1], "actual_cost_budget": "9"}]}"#,
        &limits(),
    )
    .unwrap();
    assert_eq!(parsed.request.budgets.len(), 1);
    assert_eq!(parsed.request.budgets[0].budget_id, None);
    assert_eq!(
        parsed.request.budgets[0].actual_cost_budget.as_deref(),
        Some("9")
    );
    let errors: Vec<_> = parsed
        .errors
        .iter()
        .map(|e| (e.index, e.field, e.code))
        .collect();
    assert_eq!(
        errors,
        [(0, Some("budget_id"), ItemErrorCode::InvalidValue)]
    );
}

#[test]
fn an_items_errors_repeat_at_most_128_bytes_of_its_id() {
    // Eight bad fields and a 1 MB id: the id used to be copied into each
    // of the eight errors, and from there into the answer.
    let fields: String = BUDGET_FIELDS[1..]
        .iter()
        .map(|field| format!(r#", "{field}": true"#))
        .collect();
    let body = format!(
        r#"{{"budgets": [{{"budget_id": "{}"{fields}}}], "all_user_expense_lineitems": []}}"#,
        "i".repeat(1_000_000)
    );
    let parsed = parse_request(&body, &limits()).unwrap();
    assert_eq!(parsed.errors.len(), 8);
    for error in &parsed.errors {
        let id = error.id.as_deref().unwrap();
        assert!(
            id.len() < 200 && id.starts_with("iii"),
            "{} bytes",
            id.len()
        );
    }
}
