//! The generated data set: requests in the seed's shape, their pair labels,
//! summary statistics and a user-disjoint train/test split.

use chrono::NaiveDateTime;
use serde::Serialize;
use triad_features::RawRequest;
use triad_features::record::{BUDGET_FIELDS, LINE_ITEM_FIELDS};

/// A synthetic data set: one request per user, ordered by `requested_at`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// The requests.
    pub requests: Vec<SynthRequest>,
}

/// One user's request and the ground truth for each of its pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthRequest {
    /// The synthetic user (e.g. `"U000042"`); a user has exactly one request.
    pub user_id: String,
    /// The request exactly as the seed API would receive it.
    pub request: RawRequest,
    /// When the request was made: after every trip and charge it contains.
    pub requested_at: NaiveDateTime,
    /// One label per (budget, line item) pair, budgets outer and line items
    /// inner, both in request order.
    pub labels: Vec<PairLabel>,
}

/// Ground truth for one (budget, line item) pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PairLabel {
    /// The budget's `budget_id`.
    pub budget_id: String,
    /// The line item's `itemization_id`.
    pub itemization_id: String,
    /// Whether the line item is a charge for this budget's booking.
    pub matched: bool,
    /// Whether the matched charge breaks the travel policy (see
    /// [`crate::policy`]); always false when `matched` is false.
    pub out_of_policy: bool,
}

/// Counts over a data set; see [`Dataset::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatasetStats {
    /// Requests (users).
    pub requests: usize,
    /// Budgets.
    pub budgets: usize,
    /// Line items.
    pub line_items: usize,
    /// Labeled (budget, line item) pairs.
    pub pairs: usize,
    /// Pairs labeled matched.
    pub matched_pairs: usize,
    /// Pairs labeled out of policy.
    pub out_of_policy_pairs: usize,
    /// Non-id fields of budgets and line items.
    pub non_id_fields: usize,
    /// Non-id fields that are null or empty.
    pub missing_fields: usize,
}

impl DatasetStats {
    /// Matched pairs over all pairs.
    pub fn positive_rate(&self) -> f64 {
        ratio(self.matched_pairs, self.pairs)
    }

    /// Matched pairs per budget.
    pub fn matched_per_budget(&self) -> f64 {
        ratio(self.matched_pairs, self.budgets)
    }

    /// Out-of-policy pairs over matched pairs.
    pub fn out_of_policy_rate(&self) -> f64 {
        ratio(self.out_of_policy_pairs, self.matched_pairs)
    }

    /// Null or empty non-id fields over all non-id fields.
    pub fn missing_rate(&self) -> f64 {
        ratio(self.missing_fields, self.non_id_fields)
    }
}

fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Non-id fields per budget and per line item.
const BUDGET_NON_ID_FIELDS: usize = BUDGET_FIELDS.len() - 1;
const ITEM_NON_ID_FIELDS: usize = LINE_ITEM_FIELDS.len() - 1;

fn is_missing(field: &Option<String>) -> bool {
    field.as_deref().is_none_or(str::is_empty)
}

impl Dataset {
    /// Total number of labeled pairs.
    pub fn pair_count(&self) -> usize {
        self.requests.iter().map(|r| r.labels.len()).sum()
    }

    /// Counts budgets, line items, pairs, positives and missing fields.
    pub fn stats(&self) -> DatasetStats {
        let mut stats = DatasetStats {
            requests: self.requests.len(),
            ..DatasetStats::default()
        };
        for synth in &self.requests {
            let request = &synth.request;
            stats.budgets += request.budgets.len();
            stats.line_items += request.all_user_expense_lineitems.len();
            stats.pairs += synth.labels.len();
            stats.matched_pairs += synth.labels.iter().filter(|l| l.matched).count();
            stats.out_of_policy_pairs += synth.labels.iter().filter(|l| l.out_of_policy).count();
            stats.non_id_fields += request.budgets.len() * BUDGET_NON_ID_FIELDS
                + request.all_user_expense_lineitems.len() * ITEM_NON_ID_FIELDS;
            for b in &request.budgets {
                stats.missing_fields += [
                    &b.budget_price_budget,
                    &b.travel_vendor_receipts,
                    &b.purchase_vendor_receipts,
                    &b.budget_type_budget,
                    &b.generated_at_budget,
                    &b.start_datetime_trips,
                    &b.end_datetime_trips,
                    &b.actual_cost_budget,
                ]
                .into_iter()
                .filter(|f| is_missing(f))
                .count();
            }
            for i in &request.all_user_expense_lineitems {
                stats.missing_fields += [
                    &i.expensed_amount_itemization,
                    &i.expense_type_name_itemization,
                    &i.transaction_date_itemization,
                    &i.expense_category_itemization,
                    &i.vendor_name_expense,
                    &i.expense_type_name_expense,
                    &i.expense_category_expense,
                ]
                .into_iter()
                .filter(|f| is_missing(f))
                .count();
            }
        }
        stats
    }
}

/// Splits a data set into `(train, test)` by request, hence by user: no
/// user is in both. The test part gets `round(n × test_share)` requests
/// (`test_share` clamped to `[0, 1]`): the users with the smallest fixed
/// hash of their id, so the split is deterministic and barely changes when
/// users are added. Both parts keep the input order.
pub fn split(dataset: &Dataset, test_share: f64) -> (Dataset, Dataset) {
    let n = dataset.requests.len();
    let share = crate::config::rate(test_share);
    // Rounded share of a count that fits in f64 exactly for any real n.
    let n_test = ((n as f64) * share).round().min(n as f64) as usize;
    let mut order: Vec<(u64, usize)> = dataset
        .requests
        .iter()
        .enumerate()
        .map(|(index, r)| (user_hash(&r.user_id), index))
        .collect();
    order.sort_unstable();
    let mut is_test = vec![false; n];
    for &(_, index) in order.iter().take(n_test) {
        is_test[index] = true;
    }
    let (mut train, mut test) = (Dataset::default(), Dataset::default());
    for (request, test_side) in dataset.requests.iter().zip(is_test) {
        if test_side {
            test.requests.push(request.clone());
        } else {
            train.requests.push(request.clone());
        }
    }
    (train, test)
}

/// FNV-1a of the bytes followed by a SplitMix64 finalizer: stable across
/// platforms and Rust versions, unlike `std`'s hasher.
fn user_hash(user_id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in user_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}
