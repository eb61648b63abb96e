//! The single requests sent alone, each with the scorer's memory
//! measured around it.

use super::*;

/// A request sent alone, with the scorer's memory measured around it.
pub(super) struct Shape {
    pub(super) name: &'static str,
    pub(super) request: RawRequest,
    /// The body sent instead of `request`: JSON over HTTP, or protobuf's
    /// wire format with `grpc`.
    pub(super) raw_body: Option<Vec<u8>>,
    /// The models it runs; the seed's HTTP contract when only [`MODEL`]
    /// and not `grpc`.
    pub(super) models: &'static [&'static str],
    pub(super) grpc: bool,
    pub(super) expect: Expect,
}

pub(super) enum Expect {
    Answered,
    Refused,
    Either,
}

pub(super) struct Answer {
    pub(super) label: String,
    pub(super) outcomes: u64,
    pub(super) expected: bool,
}

/// Text over the featurizer's bound (512 bytes), so every kept copy is cut.
pub(super) fn long_text(c: char) -> Option<String> {
    Some(c.to_string().repeat(600))
}

/// `budgets` x `items` pairs with every text field over its bound and ids
/// of 100 bytes.
pub(super) fn bounded_pairs(budgets: usize, items: usize) -> RawRequest {
    RawRequest {
        budgets: (0..budgets)
            .map(|i| RawBudget {
                budget_id: Some(format!("{i:0>100}")),
                budget_price_budget: Some("1250.00".into()),
                travel_vendor_receipts: long_text('t'),
                purchase_vendor_receipts: long_text('p'),
                budget_type_budget: long_text('k'),
                generated_at_budget: Some("2024-03-01T09:00:00Z".into()),
                start_datetime_trips: Some("2024-03-10T09:00:00Z".into()),
                end_datetime_trips: Some("2024-03-14T18:00:00Z".into()),
                actual_cost_budget: Some("1100.00".into()),
            })
            .collect(),
        all_user_expense_lineitems: (0..items)
            .map(|i| RawLineItem {
                itemization_id: Some(format!("{i:0>100}")),
                expensed_amount_itemization: Some("212.40".into()),
                expense_type_name_itemization: long_text('e'),
                transaction_date_itemization: Some("2024-03-11".into()),
                expense_category_itemization: long_text('c'),
                vendor_name_expense: long_text('v'),
                expense_type_name_expense: long_text('n'),
                expense_category_expense: long_text('g'),
            })
            .collect(),
    }
}

/// `budgets` x `items` pairs of the smallest entities.
pub(super) fn small_pairs(budgets: usize, items: usize) -> RawRequest {
    RawRequest {
        budgets: (0..budgets)
            .map(|i| RawBudget {
                budget_id: Some(format!("b{i}")),
                budget_price_budget: Some("900".into()),
                ..RawBudget::default()
            })
            .collect(),
        all_user_expense_lineitems: (0..items)
            .map(|i| RawLineItem {
                itemization_id: Some(format!("i{i}")),
                expensed_amount_itemization: Some("12.5".into()),
                ..RawLineItem::default()
            })
            .collect(),
    }
}

/// The single requests every soak sends, each at most 4 MiB.
pub(super) fn memory_shapes() -> Vec<Shape> {
    let mut huge_field = small_pairs(1, 1);
    huge_field.budgets[0].travel_vendor_receipts = Some("t".repeat(4_000_000));
    let mut long_texts = small_pairs(1, 80);
    for item in &mut long_texts.all_user_expense_lineitems {
        item.vendor_name_expense = Some("v".repeat(50_000));
    }
    // 4 MiB of the smallest JSON values where items belong, and of
    // fields no item has: what a reader that builds a JSON tree first pays
    // most for.
    let numbers = format!(
        "{{\"budgets\": [], \"all_user_expense_lineitems\": [{}1]}}",
        "1,".repeat(2_000_000)
    );
    let unknown_fields = format!(
        "{{\"budgets\": [], \"all_user_expense_lineitems\": [{}{{}}]}}",
        "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7},".repeat(80_000)
    );
    // One budget whose 1 MB id each of its eight bad fields' errors would
    // repeat; 48 000 budgets that are not objects (an error each, matched
    // against the reader's own); 146 x 146 pairs of 128 control characters
    // per id (six bytes each in a JSON answer).
    let bad_fields: String = triad_features::record::BUDGET_FIELDS[1..]
        .iter()
        .map(|field| format!(r#", "{field}": true"#))
        .collect();
    let huge_id = format!(
        r#"{{"budgets": [{{"budget_id": "{}"{bad_fields}}}], "all_user_expense_lineitems": []}}"#,
        "i".repeat(1_000_000)
    );
    let zeros = format!(
        r#"{{"budgets": [{}0], "all_user_expense_lineitems": []}}"#,
        "0,".repeat(47_999)
    );
    let mut control_ids = small_pairs(146, 146);
    for (i, budget) in control_ids.budgets.iter_mut().enumerate() {
        budget.budget_id = Some(format!("{i:\u{1}>128}"));
    }
    vec![
        Shape {
            name: "4 MiB of empty budgets (gRPC)",
            request: RawRequest::default(),
            raw_body: Some([0x0a, 0x00].repeat(2 << 20)),
            models: &[MODEL],
            grpc: true,
            expect: Expect::Refused,
        },
        Shape {
            name: "a 1 MB id and eight bad fields",
            request: RawRequest::default(),
            raw_body: Some(huge_id.into_bytes()),
            models: &[MODEL],
            grpc: false,
            expect: Expect::Answered,
        },
        Shape {
            name: "48 000 budgets that are not objects",
            request: RawRequest::default(),
            raw_body: Some(zeros.into_bytes()),
            models: &[MODEL],
            grpc: false,
            expect: Expect::Either,
        },
        Shape {
            name: "146 x 146 pairs, control-character ids",
            request: control_ids,
            raw_body: None,
            models: &[MODEL],
            grpc: false,
            expect: Expect::Either,
        },
        Shape {
            name: "2 000 000 numbers as items",
            request: RawRequest::default(),
            raw_body: Some(numbers.into_bytes()),
            models: &[MODEL],
            grpc: false,
            expect: Expect::Refused,
        },
        Shape {
            name: "80 000 items of unknown fields",
            request: RawRequest::default(),
            raw_body: Some(unknown_fields.into_bytes()),
            models: &[MODEL],
            grpc: false,
            expect: Expect::Either,
        },
        Shape {
            name: "one 4 MB text field",
            raw_body: None,
            request: huge_field,
            models: &[MODEL],
            grpc: false,
            expect: Expect::Answered,
        },
        Shape {
            name: "80 items with 50 kB texts",
            raw_body: None,
            request: long_texts,
            models: &[MODEL],
            grpc: false,
            expect: Expect::Answered,
        },
        Shape {
            name: "1 x 60 000 small items",
            raw_body: None,
            request: small_pairs(1, 60_000),
            models: &[MODEL],
            grpc: false,
            expect: Expect::Either,
        },
        Shape {
            name: "1 x 30 000 small items",
            raw_body: None,
            request: small_pairs(1, 30_000),
            models: &[MODEL],
            grpc: false,
            expect: Expect::Answered,
        },
        Shape {
            name: "60 x 60 pairs, every field at its bound",
            raw_body: None,
            request: bounded_pairs(60, 60),
            models: &[MODEL],
            grpc: false,
            expect: Expect::Answered,
        },
        Shape {
            name: "60 x 60 bounded pairs, two models (gRPC)",
            raw_body: None,
            request: bounded_pairs(60, 60),
            models: &[MODEL, SECOND_MODEL],
            grpc: true,
            expect: Expect::Answered,
        },
        Shape {
            name: "300 x 300 small pairs",
            request: small_pairs(300, 300),
            raw_body: None,
            models: &[MODEL],
            grpc: false,
            expect: Expect::Answered,
        },
        Shape {
            name: "400 x 400 small pairs",
            raw_body: None,
            request: small_pairs(400, 400),
            models: &[MODEL],
            grpc: false,
            expect: Expect::Either,
        },
        Shape {
            name: "2 000 x 2 000 small pairs (gRPC)",
            raw_body: None,
            request: small_pairs(2000, 2000),
            models: &[MODEL],
            grpc: true,
            expect: Expect::Refused,
        },
    ]
}

/// `--heavy`: the largest pair products with every field at its bound.
pub(super) fn heavy_shapes() -> Vec<Shape> {
    vec![
        Shape {
            name: "200 x 200 pairs, every field at its bound",
            raw_body: None,
            request: bounded_pairs(200, 200),
            models: &[MODEL],
            grpc: false,
            expect: Expect::Either,
        },
        Shape {
            name: "200 x 200 bounded pairs, two models (gRPC)",
            raw_body: None,
            request: bounded_pairs(200, 200),
            models: &[MODEL, SECOND_MODEL],
            grpc: true,
            expect: Expect::Either,
        },
    ]
}
