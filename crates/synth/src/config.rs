//! Generation settings: [`SynthConfig`] and its documented defaults.

use std::ops::RangeInclusive;

use chrono::NaiveDate;

/// First trip day of the default configuration: 2026-08-01.
pub const DEFAULT_START_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2026, 8, 1) {
    Some(date) => date,
    None => panic!("2026-08-01 is a valid date"),
};

/// Everything that shapes a synthetic data set. The same configuration
/// always yields byte-identical output.
///
/// Out-of-range values are tolerated, never rejected: rates are clamped to
/// `[0, 1]` (NaN counts as 0), reversed ranges are read low to high and
/// `days` of 0 counts as 1.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Seed of the random number generator (ChaCha8). Default 42.
    pub seed: u64,
    /// Number of users; each user is one request. Default 500.
    pub users: usize,
    /// Budgets per user, drawn uniformly. Default `1..=4`.
    pub budgets_per_user: RangeInclusive<usize>,
    /// Unmatched ("decoy") line items per user, drawn uniformly: taxis,
    /// rideshares, meals, parking, office supplies, fuel, Wi-Fi, charges of
    /// an older trip and travel booked outside any budget. Default `2..=8`.
    pub decoys_per_user: RangeInclusive<usize>,
    /// First day on which a trip may start. Default 2026-08-01.
    pub start_date: NaiveDate,
    /// Trips start within `days` days of `start_date`. Default 90.
    pub days: u32,
    /// Probability that any non-id field is null (70 %) or an empty string
    /// (30 %). Default 0.02.
    pub null_rate: f64,
    /// Probability that a datetime field is written as ISO-8601
    /// (`2026-08-03T10:15:00Z`) instead of the seed's `2026-08-03 10:15:00`.
    /// Default 0.03.
    pub iso_datetime_rate: f64,
    /// Probability that a budget was bought through a booking agency
    /// (Expedia, Concur Travel, ...), making `purchase_vendor_receipts`
    /// differ from `travel_vendor_receipts`; half of those charges then show
    /// the agency as the expense vendor. Default 0.12.
    pub agency_rate: f64,
    /// Probability that a budget has no matching line item at all (not yet
    /// expensed). Default 0.07.
    pub unexpensed_rate: f64,
    /// Probability that an expensed budget's charge is generated as a policy
    /// violation (overrun, off-trip date or premium marker; see
    /// [`crate::policy`]). Ordinary variation (taxes, fees, fare changes)
    /// adds a few more. Default 0.12.
    pub policy_violation_rate: f64,
    /// Share of matched pairs whose `out_of_policy` label is flipped after
    /// the rule is applied (label noise). Default 0.02.
    pub policy_label_noise: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 42,
            users: 500,
            budgets_per_user: 1..=4,
            decoys_per_user: 2..=8,
            start_date: DEFAULT_START_DATE,
            days: 90,
            null_rate: 0.02,
            iso_datetime_rate: 0.03,
            agency_rate: 0.12,
            unexpensed_rate: 0.07,
            policy_violation_rate: 0.12,
            policy_label_noise: 0.02,
        }
    }
}

/// A probability as used by the generator: clamped to `[0, 1]`, NaN as 0.
pub(crate) fn rate(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

/// The bounds of a range, low first even if written reversed.
pub(crate) fn bounds(range: &RangeInclusive<usize>) -> (usize, usize) {
    let (a, b) = (*range.start(), *range.end());
    (a.min(b), a.max(b))
}
