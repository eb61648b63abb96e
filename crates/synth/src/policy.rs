//! The travel-policy rule behind the `out_of_policy` label.
//!
//! A line item that is **matched** to a budget (it is a charge for that
//! booking) is out of policy when at least one of these holds:
//!
//! 1. **Overrun**: its amount exceeds the budget's price by more than the
//!    policy margin, `amount > price × 1.20 + 15.00`
//!    ([`AMOUNT_MARGIN_PERCENT`], [`AMOUNT_ALLOWANCE_CENTS`]).
//! 2. **Off-trip date** (hotel and car budgets only): it is dated more than
//!    [`DATE_SLACK_DAYS`] calendar days before the trip's start date or after
//!    its end date (an extended stay or a personal rental). Flights and
//!    trains are usually charged at booking time, so their dates are exempt.
//! 3. **Premium marker**: its vendor or either expense type name contains,
//!    case-insensitively, one of [`PREMIUM_MARKERS`] ("FIRST CLASS",
//!    "MINIBAR", "LUXURY", ...).
//!
//! Unmatched pairs are never out of policy. The generator evaluates the rule
//! on the true values before nulls are injected, then flips the label of a
//! small share of matched pairs (`SynthConfig::policy_label_noise`), so the
//! label is learnable from the pair's features up to that noise and the
//! fields lost to nulls.

use chrono::NaiveDate;

/// Allowed overrun over the budget's price, in percent.
pub const AMOUNT_MARGIN_PERCENT: i64 = 20;

/// Allowed absolute overrun on top of the percentage, in cents.
pub const AMOUNT_ALLOWANCE_CENTS: i64 = 1_500;

/// Calendar days a hotel or car charge may fall outside the trip window.
pub const DATE_SLACK_DAYS: i64 = 3;

/// Upper-case substrings of a vendor or expense type name that mark a
/// premium purchase: premium fare classes, upgrades, hotel extras, luxury cars.
pub const PREMIUM_MARKERS: &[&str] = &[
    "FIRST CLASS",
    "BUSINESS CLASS",
    "UPGRADE",
    "MINIBAR",
    "ROOM SERVICE",
    "LUXURY",
];

/// The kind of travel a budget pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TravelKind {
    /// Airfare (`budget_type_budget` "flight").
    Flight,
    /// Lodging ("hotel").
    Hotel,
    /// Car rental ("car").
    Car,
    /// Rail ("train" or "rail").
    Train,
}

impl TravelKind {
    /// Every kind, in a fixed order.
    pub const ALL: [TravelKind; 4] = [
        TravelKind::Flight,
        TravelKind::Hotel,
        TravelKind::Car,
        TravelKind::Train,
    ];

    /// The kind named by a `budget_type_budget` value, ignoring case and
    /// surrounding spaces; `None` for anything else.
    pub fn from_budget_type(text: &str) -> Option<TravelKind> {
        match text.trim().to_ascii_lowercase().as_str() {
            "flight" => Some(TravelKind::Flight),
            "hotel" => Some(TravelKind::Hotel),
            "car" => Some(TravelKind::Car),
            "train" | "rail" => Some(TravelKind::Train),
            _ => None,
        }
    }
}

/// What the rule looks at for one matched (budget, line item) pair.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    /// The budget's kind.
    pub kind: TravelKind,
    /// `budget_price_budget`, in cents.
    pub price_cents: i64,
    /// `expensed_amount_itemization`, in cents.
    pub amount_cents: i64,
    /// Date of `transaction_date_itemization`.
    pub transaction_date: NaiveDate,
    /// Date of `start_datetime_trips`.
    pub trip_start: NaiveDate,
    /// Date of `end_datetime_trips`.
    pub trip_end: NaiveDate,
    /// `vendor_name_expense`, `expense_type_name_itemization` and
    /// `expense_type_name_expense` (whichever are present).
    pub texts: &'a [&'a str],
}

/// Whether the amount exceeds the price by more than the policy margin.
pub fn is_overrun(price_cents: i64, amount_cents: i64) -> bool {
    // amount > price × (100 + margin) / 100 + allowance, in exact integers.
    i128::from(amount_cents) * 100
        > i128::from(price_cents) * i128::from(100 + AMOUNT_MARGIN_PERCENT)
            + i128::from(AMOUNT_ALLOWANCE_CENTS) * 100
}

/// Whether a hotel or car charge is dated too far outside the trip window.
pub fn is_off_trip(
    kind: TravelKind,
    transaction_date: NaiveDate,
    trip_start: NaiveDate,
    trip_end: NaiveDate,
) -> bool {
    if !matches!(kind, TravelKind::Hotel | TravelKind::Car) {
        return false;
    }
    let before = (trip_start - transaction_date).num_days();
    let after = (transaction_date - trip_end).num_days();
    before > DATE_SLACK_DAYS || after > DATE_SLACK_DAYS
}

/// Whether any of the texts carries a [`PREMIUM_MARKERS`] entry.
pub fn has_premium_marker(texts: &[&str]) -> bool {
    texts.iter().any(|text| {
        let upper = text.to_uppercase();
        PREMIUM_MARKERS.iter().any(|marker| upper.contains(marker))
    })
}

/// The rule itself (see the module documentation), for a matched pair.
pub fn out_of_policy(input: &PolicyInput<'_>) -> bool {
    is_overrun(input.price_cents, input.amount_cents)
        || is_off_trip(
            input.kind,
            input.transaction_date,
            input.trip_start,
            input.trip_end,
        )
        || has_premium_marker(input.texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 8, day).unwrap_or_default()
    }

    #[test]
    fn overrun_threshold_is_twenty_percent_plus_fifteen_dollars() {
        // price 100.00 → threshold 135.00
        assert!(!is_overrun(10_000, 13_500));
        assert!(is_overrun(10_000, 13_501));
        assert!(!is_overrun(10_000, 9_000));
    }

    #[test]
    fn off_trip_only_for_hotels_and_cars_beyond_the_slack() {
        let (start, end) = (date(10), date(12));
        assert!(!is_off_trip(TravelKind::Hotel, date(15), start, end));
        assert!(is_off_trip(TravelKind::Hotel, date(16), start, end));
        assert!(!is_off_trip(TravelKind::Car, date(7), start, end));
        assert!(is_off_trip(TravelKind::Car, date(6), start, end));
        assert!(!is_off_trip(TravelKind::Flight, date(1), start, end));
        assert!(!is_off_trip(TravelKind::Train, date(30), start, end));
    }

    #[test]
    fn markers_are_case_insensitive() {
        assert!(has_premium_marker(&[
            "UNITED 0162349",
            "Airfare - First Class"
        ]));
        assert!(has_premium_marker(&["minibar"]));
        assert!(!has_premium_marker(&["HERTZ RENT-A-CAR", "Car Rental"]));
        let input = PolicyInput {
            kind: TravelKind::Flight,
            price_cents: 14_000,
            amount_cents: 13_198,
            transaction_date: date(3),
            trip_start: date(18),
            trip_end: date(19),
            texts: &["SOUTHWEST AIR 5262134", "Airfare"],
        };
        assert!(!out_of_policy(&input));
        assert!(out_of_policy(&PolicyInput {
            texts: &["Seat Upgrade"],
            ..input
        }));
    }

    #[test]
    fn budget_type_names_map_to_kinds() {
        assert_eq!(
            TravelKind::from_budget_type(" Rail "),
            Some(TravelKind::Train)
        );
        assert_eq!(
            TravelKind::from_budget_type("flight"),
            Some(TravelKind::Flight)
        );
        assert_eq!(TravelKind::from_budget_type("taxi"), None);
    }
}
