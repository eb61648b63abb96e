//! Long vendor texts: the block-wise similarities equal `strsim` exactly
//! (on arbitrary unicode, on normalized texts of any length, and on a whole
//! request of long CJK vendor names), and a featurization stops once its
//! [`Interrupt`] fires.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use triad_features::text::{
    SimilarityProfile, TextNormalizer, character_similarities, jaro_winkler, normalized_levenshtein,
};
use triad_features::{Featurizer, Interrupt, Interrupted, RawBudget, RawLineItem, RawRequest};

/// Asserts both similarities of `a` and `b` equal strsim's bit for bit.
fn assert_same_as_strsim(a: &str, b: &str) -> Result<(), TestCaseError> {
    let (pa, pb) = (SimilarityProfile::new(a), SimilarityProfile::new(b));
    let (jw, lev) = character_similarities(&pa, &pb);
    let (want_jw, want_lev) = (
        strsim::jaro_winkler(a, b),
        strsim::normalized_levenshtein(a, b),
    );
    prop_assert_eq!(
        jw.to_bits(),
        want_jw.to_bits(),
        "jaro_winkler({:?}, {:?})",
        a,
        b
    );
    prop_assert_eq!(
        lev.to_bits(),
        want_lev.to_bits(),
        "levenshtein({:?}, {:?})",
        a,
        b
    );
    prop_assert_eq!(jaro_winkler(&pa, &pb).to_bits(), want_jw.to_bits());
    prop_assert_eq!(
        normalized_levenshtein(&pa, &pb).to_bits(),
        want_lev.to_bits()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn similarities_equal_strsim_on_arbitrary_unicode(a in any::<String>(), b in any::<String>()) {
        assert_same_as_strsim(&a, &b)?;
    }

    #[test]
    fn similarities_equal_strsim_on_normalized_arbitrary_unicode(
        a in "\\PC{0,200}",
        b in "\\PC{0,200}",
    ) {
        let normalizer = TextNormalizer::new();
        if let (Some(a), Some(b)) = (normalizer.normalize(&a), normalizer.normalize(&b)) {
            assert_same_as_strsim(&a.cleaned, &b.cleaned)?;
        }
    }

    #[test]
    fn similarities_equal_strsim_on_long_normalized_texts(
        a in "[a-e ]{1,400}",
        b in "[a-e ]{1,400}",
    ) {
        assert_same_as_strsim(&a, &b)?;
    }

    #[test]
    fn similarities_equal_strsim_on_near_copies(
        a in "[a-z ]{60,300}",
        edits in prop::collection::vec((any::<prop::sample::Index>(), "[a-z ]{0,3}"), 0..12),
    ) {
        // Mostly-equal texts: long runs of matches, and windows that reach
        // across block boundaries.
        let mut b = a.clone();
        for (at, text) in edits {
            let at = at.index(b.len() + 1);
            let end = (at + text.len().min(2)).min(b.len());
            b.replace_range(at..end, &text);
        }
        assert_same_as_strsim(&a, &b)?;
    }
}

/// `count` distinct names of `chars` CJK ideographs each.
fn cjk_names(count: usize, chars: usize, seed: u64) -> Vec<String> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            (0..chars)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    char::from_u32(0x4E00 + (state % 0x5200) as u32).unwrap()
                })
                .collect()
        })
        .collect()
}

/// `n` budgets and `n` line items whose vendors are distinct long CJK names.
fn long_cjk_request(n: usize) -> RawRequest {
    let names = cjk_names(3 * n, 170, 7);
    RawRequest {
        budgets: (0..n)
            .map(|i| RawBudget {
                budget_id: Some(format!("b{i}")),
                travel_vendor_receipts: Some(names[3 * i].clone()),
                purchase_vendor_receipts: Some(names[3 * i + 1].clone()),
                ..Default::default()
            })
            .collect(),
        all_user_expense_lineitems: (0..n)
            .map(|i| RawLineItem {
                itemization_id: Some(format!("i{i}")),
                vendor_name_expense: Some(names[3 * i + 2].clone()),
                ..Default::default()
            })
            .collect(),
    }
}

#[test]
fn long_cjk_vendor_features_equal_their_definition() {
    let request = long_cjk_request(6);
    let matrix = Featurizer::default().featurize(&request);
    assert_eq!(matrix.n_rows, 36);
    assert!(matrix.errors.is_empty(), "{:?}", matrix.errors);
    let normalizer = TextNormalizer::new();
    let cleaned = |text: &Option<String>| normalizer.normalize(text.as_ref().unwrap()).unwrap();
    let width = matrix.n_cols();
    for (b, budget) in request.budgets.iter().enumerate() {
        for (i, item) in request.all_user_expense_lineitems.iter().enumerate() {
            let row = &matrix.values[(b * 6 + i) * width..][..width];
            let vendor = cleaned(&item.vendor_name_expense);
            assert!(vendor.cleaned.len() > 64, "{}", vendor.cleaned);
            for (offset, side) in [
                (0, &budget.travel_vendor_receipts),
                (3, &budget.purchase_vendor_receipts),
            ] {
                let side = cleaned(side);
                let (x, y) = (side.cleaned.as_str(), vendor.cleaned.as_str());
                assert_eq!(row[offset], strsim::jaro_winkler(x, y) as f32);
                assert_eq!(row[offset + 1], strsim::normalized_levenshtein(x, y) as f32);
            }
        }
    }
}

#[test]
fn a_deadline_already_past_stops_before_any_work() {
    let featurizer = Featurizer::default();
    let request = long_cjk_request(4);
    let past = Instant::now() - Duration::from_millis(1);
    assert_eq!(
        featurizer
            .featurize_until(&request, Vec::new(), &Interrupt::at(past))
            .map(|matrix| matrix.n_rows),
        Err(Interrupted::DeadlineExceeded)
    );
}

#[test]
fn a_set_cancel_flag_stops_the_featurization() {
    let featurizer = Featurizer::default();
    let request = long_cjk_request(4);
    let flag = Arc::new(AtomicBool::new(true));
    let far = Instant::now() + Duration::from_secs(3600);
    let interrupt = Interrupt::at(far).or_cancelled_by(flag);
    assert_eq!(
        featurizer
            .featurize_until(&request, Vec::new(), &interrupt)
            .map(|matrix| matrix.n_rows),
        Err(Interrupted::Cancelled)
    );
}

#[test]
fn an_interrupt_that_does_not_fire_gives_the_same_matrix() {
    let featurizer = Featurizer::default();
    let request = long_cjk_request(8);
    let far = Instant::now() + Duration::from_secs(3600);
    let interrupt = Interrupt::at(far).or_cancelled_by(Arc::new(AtomicBool::new(false)));
    let until = featurizer
        .featurize_until(&request, Vec::new(), &interrupt)
        .expect("a deadline an hour away does not fire");
    let plain = featurizer.featurize(&request);
    assert_eq!(until.n_rows, 64);
    let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&until.values), bits(&plain.values));
    assert_eq!(until.budget_ids, plain.budget_ids);
    assert_eq!(until.item_ids, plain.item_ids);
}

#[test]
fn a_deadline_passing_mid_work_stops_the_featurization() {
    // 60 × 60 with 180 distinct long vendors: thousands of long comparisons,
    // far more than 5 ms of work on any machine, so the deadline passes
    // while the similarity table is being built and a check inside the loop
    // must see it.
    let featurizer = Featurizer::default();
    let request = long_cjk_request(60);
    let deadline = Instant::now() + Duration::from_millis(5);
    assert_eq!(
        featurizer
            .featurize_until(&request, Vec::new(), &Interrupt::at(deadline))
            .map(|matrix| matrix.n_rows),
        Err(Interrupted::DeadlineExceeded)
    );
}
