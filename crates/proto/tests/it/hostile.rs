//! Hostile input on the proto path, in the normal test suite: the
//! property-test twin of `fuzz/fuzz_targets/proto_request.rs`. Arbitrary
//! bytes and arbitrary messages are decoded as `triad.v1` requests,
//! converted to records and featurized; the matrix keeps the invariants of
//! `triad_test_support::invariants`, the records survive the
//! trip through the wire, and the matrix splits into chunks that add up.

use proptest::prelude::*;
use prost::Message;
use triad_features::{Featurizer, RawRequest};
use triad_proto::convert::{matrix_chunks, matrix_to_proto};
use triad_proto::v1;
use triad_test_support::{invariants, seed_featurize_request};

fn seed_proto() -> Vec<u8> {
    seed_featurize_request().encode_to_vec()
}

/// Converts, featurizes, checks, and chunks `request` as preprocess does.
fn featurize_proto(
    request: v1::FeaturizeRequest,
    rows_per_chunk: usize,
) -> Result<(), TestCaseError> {
    let raw = RawRequest::from(request);
    let back = RawRequest::from(
        v1::FeaturizeRequest::decode(
            v1::FeaturizeRequest::from(raw.clone())
                .encode_to_vec()
                .as_slice(),
        )
        .unwrap(),
    );
    prop_assert_eq!(&raw, &back);
    let matrix = Featurizer::default().featurize(&raw);
    invariants::check_matrix(&raw, &matrix).map_err(TestCaseError::fail)?;
    let (n_rows, n_cols, n_errors) = (matrix.n_rows, matrix.n_cols(), matrix.errors.len());
    let whole = matrix_to_proto(matrix.clone(), "r");
    prop_assert_eq!(whole.n_rows as usize, n_rows);
    prop_assert_eq!(whole.values.len(), n_rows * n_cols);
    let chunks = matrix_chunks(matrix, "r", rows_per_chunk);
    prop_assert!(!chunks.is_empty());
    prop_assert_eq!(
        chunks.iter().map(|c| c.n_rows as usize).sum::<usize>(),
        n_rows
    );
    prop_assert!(chunks[0].schema.is_some());
    prop_assert_eq!(chunks[0].errors.len(), n_errors);
    let mut values = Vec::new();
    for chunk in &chunks {
        prop_assert_eq!(chunk.values.len(), chunk.n_rows as usize * n_cols);
        prop_assert_eq!(chunk.keys.len(), chunk.n_rows as usize);
        values.extend_from_slice(&chunk.values);
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    prop_assert_eq!(bits(&values), bits(&whole.values));
    Ok(())
}

fn field() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "",
            "140.0",
            "2017-04-18 04:00:00",
            "Southwest Airlines",
            "flight",
            "1e999",
        ])
        .prop_map(|s| Some(s.to_owned())),
        "\\PC{0,30}".prop_map(Some),
        (0usize..600).prop_map(|n| Some("ab ".repeat(n))),
    ]
}

fn id() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), "[a-c]{0,2}".prop_map(Some)]
}

prop_compose! {
    fn budget()(budget_id in id(), f in prop::collection::vec(field(), 8)) -> v1::Budget {
        let mut f = f.into_iter();
        let mut next = || f.next().flatten();
        v1::Budget {
            budget_id,
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
    fn item()(itemization_id in id(), f in prop::collection::vec(field(), 7)) -> v1::ExpenseLineItem {
        let mut f = f.into_iter();
        let mut next = || f.next().flatten();
        v1::ExpenseLineItem {
            itemization_id,
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

    #[test]
    fn arbitrary_bytes_as_featurize_and_score_requests(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        rows_per_chunk in 0usize..5,
    ) {
        if let Ok(request) = v1::FeaturizeRequest::decode(bytes.as_slice()) {
            featurize_proto(request, rows_per_chunk)?;
        }
        if let Ok(request) = v1::ScoreRequest::decode(bytes.as_slice()) {
            featurize_proto(
                v1::FeaturizeRequest {
                    budgets: request.budgets,
                    all_user_expense_lineitems: request.all_user_expense_lineitems,
                },
                rows_per_chunk,
            )?;
        }
    }

    /// The encoded seed request with bytes flipped, cut or inserted.
    #[test]
    fn mutated_seed_protos(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        rows_per_chunk in 0usize..5,
    ) {
        let mut bytes = seed_proto();
        for (at, byte, op) in edits {
            let at = at.index(bytes.len() + 1);
            match op {
                0 if at < bytes.len() => bytes[at] = byte,
                1 if at < bytes.len() => { bytes.remove(at); }
                _ => bytes.insert(at, byte),
            }
        }
        if let Ok(request) = v1::FeaturizeRequest::decode(bytes.as_slice()) {
            featurize_proto(request, rows_per_chunk)?;
        }
    }

    /// Arbitrary messages through the wire and the featurizer.
    #[test]
    fn arbitrary_messages(
        budgets in prop::collection::vec(budget(), 0..5),
        items in prop::collection::vec(item(), 0..5),
        rows_per_chunk in 0usize..5,
    ) {
        let request = v1::FeaturizeRequest { budgets, all_user_expense_lineitems: items };
        let decoded = v1::FeaturizeRequest::decode(request.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(&decoded, &request);
        featurize_proto(request, rows_per_chunk)?;
    }
}
