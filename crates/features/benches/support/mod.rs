//! Deterministic synthetic requests for the featurizer benchmark and the
//! peak-memory example: "realistic" ones, where a user's line items come from
//! a few dozen vendors so that vendor and category strings repeat, and
//! "distinct" ones, where every vendor and category string is unique (the
//! featurizer's worst case: no similarity can be shared between pairs).

use triad_features::{RawBudget, RawLineItem, RawRequest};

/// Vendor spellings as they appear on card statements and receipts.
const ITEM_VENDORS: &[&str] = &[
    "SOUTHWEST AIR 5262134",
    "Southwest Airlines",
    "DELTA AIR 0062345678901",
    "Delta Air Lines",
    "UNITED 0162318872",
    "AMERICAN AIRLINES 001234",
    "ALASKA AIR 0272109",
    "JETBLUE 2791234567",
    "Marriott Downtown",
    "MARRIOTT 33716 SAN FRANCISCO",
    "Hilton Garden Inn",
    "HAMPTON INN #1234",
    "Hyatt Regency Chicago",
    "Holiday Inn Express",
    "Hôtel Le Méridien",
    "UBER *TRIP",
    "UBER *TRIP HELP.UBER.COM",
    "LYFT *RIDE TUE 4PM",
    "Yellow Cab Co",
    "HERTZ RENT-A-CAR",
    "Avis Rent A Car",
    "ENTERPRISE RENT-A-CAR 0432",
    "AMTRAK 0987654321",
    "SP+ PARKING 1234",
    "Airport Parking Lot C",
    "STARBUCKS STORE 05421",
    "Chipotle 1432",
    "The Capital Grille",
    "Panera Bread #601",
    "Hudson News JFK T4",
    "taxi",
];

/// Budget vendors: the booked carrier, hotel or rental company.
const BUDGET_VENDORS: &[&str] = &[
    "Southwest Airlines",
    "Delta Air Lines",
    "United Airlines",
    "American Airlines",
    "Marriott",
    "Hilton Garden Inn",
    "Hyatt Regency",
    "Hertz",
    "Avis",
    "Amtrak",
];

const BUDGET_TYPES: &[&str] = &["flight", "hotel", "car", "train", "Airfare", "Lodging"];

/// (type name, category) pairs as expense systems spell them.
const ITEM_TYPES: &[(&str, &str)] = &[
    ("Airfare", "air travel"),
    ("Airline", "Flights"),
    ("Hotel", "Lodging"),
    ("Taxi", "taxi"),
    ("Ground Transportation", "Rideshare"),
    ("Car Rental", "Rental Car"),
    ("Train", "rail"),
    ("Parking", "car parking"),
    ("Meals", "Business Meals"),
    ("Office Supplies", "Miscellaneous"),
];

/// A small deterministic generator (SplitMix64): no dependency, and the
/// same data on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, values: &'a [T]) -> &'a T {
        &values[self.below(values.len())]
    }

    /// An amount with cents, as upstream writes it ("131.98").
    fn amount(&mut self, max_cents: usize) -> String {
        let cents = 100 + self.below(max_cents);
        format!("{}.{:02}", cents / 100, cents % 100)
    }

    /// A datetime in 2017 in the seed format ("2017-04-18 04:00:00").
    fn datetime(&mut self, day_of_year: usize) -> String {
        let (month, day) = month_day(day_of_year.min(364));
        format!(
            "2017-{month:02}-{day:02} {:02}:{:02}:{:02}",
            self.below(24),
            self.below(60),
            self.below(60)
        )
    }
}

/// Month and day of the `day_of_year`-th day (0-based) of 2017.
fn month_day(day_of_year: usize) -> (usize, usize) {
    const DAYS: [usize; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut rest = day_of_year;
    for (month, days) in DAYS.iter().enumerate() {
        if rest < *days {
            return (month + 1, rest + 1);
        }
        rest -= days;
    }
    (12, 31)
}

/// `index` written in base 26 with the letters `a`..`z`, after a `q` so the
/// token is never a stopword. The normalizer drops digits, so uniqueness has
/// to be spelled in letters to survive normalization.
fn letters(mut index: usize) -> String {
    let mut out = vec![b'q'];
    loop {
        out.push(b'a' + (index % 26) as u8);
        index /= 26;
        if index == 0 {
            break;
        }
    }
    String::from_utf8(out).expect("ASCII letters")
}

/// Which strings a request repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Data {
    /// Vendors and categories drawn from short lists, as in real requests.
    Realistic,
    /// Every vendor and category string unique, even after normalization.
    Distinct,
}

impl Data {
    /// The benchmark's parameter name: `realistic` or `distinct`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Data::Realistic => "realistic",
            Data::Distinct => "distinct",
        }
    }
}

/// A request with `n_budgets` budgets and `n_items` line items.
pub(crate) fn request(data: Data, n_budgets: usize, n_items: usize) -> RawRequest {
    let mut rng = SplitMix(0x7121_AD00 ^ ((n_budgets as u64) << 32) ^ n_items as u64);
    // Distinct data: the realistic string plus a unique letter suffix.
    let mut serial = 0;
    let mut text = |base: &str| match data {
        Data::Realistic => base.to_owned(),
        Data::Distinct => {
            serial += 1;
            format!("{base} {}", letters(serial))
        }
    };
    let budgets = (0..n_budgets)
        .map(|b| {
            let start = rng.below(350);
            let end = start + 1 + rng.below(6);
            let vendor = *rng.pick(BUDGET_VENDORS);
            let purchase = if rng.below(4) == 0 {
                *rng.pick(BUDGET_VENDORS)
            } else {
                vendor
            };
            let kind = *rng.pick(BUDGET_TYPES);
            RawBudget {
                budget_id: Some(format!("{}", 300_000 + b)),
                budget_price_budget: Some(rng.amount(80_000)),
                travel_vendor_receipts: Some(text(vendor)),
                purchase_vendor_receipts: Some(text(purchase)),
                budget_type_budget: Some(text(kind)),
                generated_at_budget: Some(rng.datetime(start.saturating_sub(10))),
                start_datetime_trips: Some(rng.datetime(start)),
                end_datetime_trips: Some(rng.datetime(end)),
                actual_cost_budget: Some(rng.amount(80_000)),
            }
        })
        .collect();
    let items = (0..n_items)
        .map(|i| {
            let vendor = *rng.pick(ITEM_VENDORS);
            let (type_name, category) = *rng.pick(ITEM_TYPES);
            let (type_expense, category_expense) = *rng.pick(ITEM_TYPES);
            let day = rng.below(365);
            RawLineItem {
                itemization_id: Some(format!("{}", 4_600_000 + i)),
                expensed_amount_itemization: Some(rng.amount(60_000)),
                expense_type_name_itemization: Some(text(type_name)),
                transaction_date_itemization: Some(rng.datetime(day)),
                expense_category_itemization: Some(text(category)),
                vendor_name_expense: Some(text(vendor)),
                expense_type_name_expense: Some(text(type_expense)),
                expense_category_expense: Some(text(category_expense)),
            }
        })
        .collect();
    RawRequest {
        budgets,
        all_user_expense_lineitems: items,
    }
}
