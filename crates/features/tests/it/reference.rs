//! The featurizer against a naive reference written straight from the
//! feature definitions (every pair computed from scratch with `strsim` and
//! the public parsers and normalizer): every value must be equal bit for
//! bit, on realistic and on all-distinct data, with missing, blank,
//! unparsable and too-long fields mixed in.

use triad_features::parse::{FieldError, parse_amount, parse_budget_amount, parse_datetime};
use triad_features::text::{
    NormalizedText, TextNormalizer, TravelCategory, jaccard, travel_category,
};
use triad_features::{Featurizer, N_FEATURES, RawBudget, RawLineItem, RawRequest};

#[path = "../../benches/support/mod.rs"]
mod support;

use support::Data;

const DAY: f64 = 86_400.0;
const TOLERANCE: f64 = 2.0 * DAY;
const MAX_TEXT_BYTES: usize = 512;

/// A parsed number or NaN, with its missing flag.
fn number(value: &Option<String>, parse: fn(&str) -> Result<f64, FieldError>) -> (f64, f32) {
    match value.as_deref().filter(|text| !text.trim().is_empty()) {
        None => (f64::NAN, 1.0),
        Some(text) => parse(text).map_or((f64::NAN, 1.0), |value| (value, 0.0)),
    }
}

fn datetime(value: &Option<String>) -> (f64, f32) {
    number(value, |text| {
        parse_datetime(text).map(|seconds| seconds as f64)
    })
}

/// A normalized text or `None`, with its missing flag.
fn text(normalizer: &TextNormalizer, value: &Option<String>) -> (Option<NormalizedText>, f32) {
    let normalized = value
        .as_deref()
        .filter(|text| text.len() <= MAX_TEXT_BYTES)
        .and_then(|text| normalizer.normalize(text));
    let flag = if normalized.is_none() { 1.0 } else { 0.0 };
    (normalized, flag)
}

/// What a type or category text means for agreement.
fn category(text: &NormalizedText) -> (Option<TravelCategory>, String) {
    match travel_category(text) {
        Some(category) => (Some(category), String::new()),
        None => (None, text.cleaned.clone()),
    }
}

fn similarities(a: &Option<NormalizedText>, b: &Option<NormalizedText>) -> [f32; 3] {
    match (a, b) {
        (Some(a), Some(b)) => [
            strsim::jaro_winkler(&a.cleaned, &b.cleaned) as f32,
            strsim::normalized_levenshtein(&a.cleaned, &b.cleaned) as f32,
            jaccard(&a.stems, &b.stems) as f32,
        ],
        _ => [f32::NAN; 3],
    }
}

/// The row of one pair, from scratch.
fn reference_row(normalizer: &TextNormalizer, budget: &RawBudget, item: &RawLineItem) -> Vec<f32> {
    let (price, f_price) = number(&budget.budget_price_budget, parse_budget_amount);
    let (travel, f_travel) = text(normalizer, &budget.travel_vendor_receipts);
    let (purchase, f_purchase) = text(normalizer, &budget.purchase_vendor_receipts);
    let (budget_type, f_type) = text(normalizer, &budget.budget_type_budget);
    let (generated, f_generated) = datetime(&budget.generated_at_budget);
    let (start, f_start) = datetime(&budget.start_datetime_trips);
    let (mut end, mut f_end) = datetime(&budget.end_datetime_trips);
    if end < start {
        (end, f_end) = (f64::NAN, 1.0);
    }
    let (actual, f_actual) = number(&budget.actual_cost_budget, parse_budget_amount);

    let (amount, f_amount) = number(&item.expensed_amount_itemization, parse_amount);
    let (type_i, f_type_i) = text(normalizer, &item.expense_type_name_itemization);
    let (date, f_date) = datetime(&item.transaction_date_itemization);
    let (cat_i, f_cat_i) = text(normalizer, &item.expense_category_itemization);
    let (vendor, f_vendor) = text(normalizer, &item.vendor_name_expense);
    let (type_e, f_type_e) = text(normalizer, &item.expense_type_name_expense);
    let (cat_e, f_cat_e) = text(normalizer, &item.expense_category_expense);

    let mut row = Vec::with_capacity(N_FEATURES);
    row.extend(similarities(&travel, &vendor));
    row.extend(similarities(&purchase, &vendor));
    for item_type in [&type_i, &cat_i, &type_e, &cat_e] {
        row.push(match (&budget_type, item_type) {
            (Some(a), Some(b)) => f32::from(u8::from(category(a) == category(b))),
            _ => f32::NAN,
        });
    }
    for reference in [actual, price] {
        let diff = (amount - reference).abs();
        row.extend([
            (amount / reference) as f32,
            diff as f32,
            (diff / reference) as f32,
        ]);
    }
    row.push(((date - start) / DAY) as f32);
    row.push(((date - end) / DAY) as f32);
    row.push(if date.is_nan() || start.is_nan() || end.is_nan() {
        f32::NAN
    } else {
        f32::from(u8::from(
            date >= start - TOLERANCE && date <= end + TOLERANCE,
        ))
    });
    row.push(((date - generated) / DAY) as f32);
    row.extend([
        f_price,
        f_travel,
        f_purchase,
        f_type,
        f_generated,
        f_start,
        f_end,
        f_actual,
    ]);
    row.extend([
        f_amount, f_type_i, f_date, f_cat_i, f_vendor, f_type_e, f_cat_e,
    ]);
    row
}

/// Replaces a third of the fields with something missing or broken.
fn damage(request: &mut RawRequest) {
    let replacements = [
        None,
        Some(String::new()),
        Some("   ".to_owned()),
        Some("#123-456".to_owned()),
        Some("the of and".to_owned()),
        Some("lots".to_owned()),
        Some("2017-02-30 00:00:00".to_owned()),
        Some("x".repeat(MAX_TEXT_BYTES + 1)),
        Some("Hôtel Le Méridien".to_owned()),
        Some("2017-04-18".to_owned()),
    ];
    // Every third field: 3 is coprime with the 8 budget and 7 item fields,
    // so every field gets every kind of damage somewhere.
    let mut counter = 0usize;
    let mut visit = |field: &mut Option<String>| {
        counter += 1;
        if counter.is_multiple_of(3) {
            *field = replacements[(counter / 3) % replacements.len()].clone();
        }
    };
    for b in &mut request.budgets {
        for field in [
            &mut b.budget_price_budget,
            &mut b.travel_vendor_receipts,
            &mut b.purchase_vendor_receipts,
            &mut b.budget_type_budget,
            &mut b.generated_at_budget,
            &mut b.start_datetime_trips,
            &mut b.end_datetime_trips,
            &mut b.actual_cost_budget,
        ] {
            visit(field);
        }
    }
    // Trips that end before they start.
    for b in request.budgets.iter_mut().step_by(4) {
        std::mem::swap(&mut b.start_datetime_trips, &mut b.end_datetime_trips);
    }
    for i in &mut request.all_user_expense_lineitems {
        for field in [
            &mut i.expensed_amount_itemization,
            &mut i.expense_type_name_itemization,
            &mut i.transaction_date_itemization,
            &mut i.expense_category_itemization,
            &mut i.vendor_name_expense,
            &mut i.expense_type_name_expense,
            &mut i.expense_category_expense,
        ] {
            visit(field);
        }
    }
}

fn assert_matches_reference(request: &RawRequest, what: &str) {
    let normalizer = TextNormalizer::new();
    let matrix = Featurizer::default().featurize(request);
    let items = &request.all_user_expense_lineitems;
    assert_eq!(matrix.n_rows, request.budgets.len() * items.len(), "{what}");
    for (r, ((budget_id, item_id), row)) in matrix.rows().enumerate() {
        let (budget, item) = (&request.budgets[r / items.len()], &items[r % items.len()]);
        assert_eq!(budget.budget_id.as_deref(), Some(budget_id));
        assert_eq!(item.itemization_id.as_deref(), Some(item_id));
        let expected = reference_row(&normalizer, budget, item);
        for (column, (&got, &want)) in row.iter().zip(&expected).enumerate() {
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{what}: row {r}, column {column}: got {got}, expected {want}"
            );
        }
    }
}

#[test]
fn equals_the_reference_on_generated_requests() {
    for data in [Data::Realistic, Data::Distinct] {
        let mut request = support::request(data, 9, 40);
        assert_matches_reference(&request, data.name());
        damage(&mut request);
        assert_matches_reference(&request, &format!("{} with damaged fields", data.name()));
    }
}
