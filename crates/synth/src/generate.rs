//! The generator: turns a [`SynthConfig`] into a [`Dataset`].
//!
//! Each user is one request. A user has a few trips inside the configured
//! date range and 1–4 (by default) budgets on them: flights (38 %), hotels
//! (30 %), car rentals (18 %) and trains (14 %) before adjustment; a trip
//! has at most one hotel and one car, a second flight or train on a trip is
//! rarer (a return leg), and a user never has two budgets of the same kind
//! with the same vendor. Budgets are booked 1–90 days ahead
//! (`generated_at_budget`), trips last 1–7 days and the actual cost is near
//! the budgeted price.
//!
//! **Matched** line items are charges for a budget's booking, so a matched
//! pair is true by construction: every expensed budget (93 % by default)
//! gets one charge on a statement or receipt spelling of its vendor (or of
//! the booking agency), typed consistently with its kind, near its actual
//! cost (hotel taxes, car extras, flight fees) and dated at booking time
//! (most flights, half the trains) or in the trip window (hotels at check-in
//! or check-out, cars at pick-up or return). Some hotel bills are split into
//! one charge per night, and a hotel policy violation adds a minibar or
//! room-service charge. That makes about 1.0 matched line item per budget
//! and, with the default 2–8 decoys per user, about 13 % matched pairs.
//!
//! Everything else is **unmatched**: everyday decoys (taxis, Uber and Lyft,
//! meals and coffee, parking, office supplies, fuel, Wi-Fi), charges of an
//! older trip with the same kind of vendor (often the same vendor) dated a
//! month or more before any booking, travel booked outside every budget
//! (another airline or hotel during the trip), and the charges of the
//! user's other budgets (cross-matches: e.g. two flights on different
//! airlines). `out_of_policy` follows [`crate::policy`].
//!
//! Randomness comes only from ChaCha8 seeded with the configured seed; each
//! user draws from its own pair of streams (content, then formatting and
//! nulls), so a data set with more users extends a smaller one, and
//! changing `null_rate` or `iso_datetime_rate` leaves the content unchanged.

use std::f64::consts::TAU;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use triad_features::{RawBudget, RawLineItem, RawRequest};

use crate::catalog::{self, Brand, DecoyKind, TypeCategory};
use crate::config::{SynthConfig, bounds, rate};
use crate::dataset::{Dataset, PairLabel, SynthRequest};
use crate::policy::{PolicyInput, TravelKind, out_of_policy};

/// Seed-format datetime (`2017-04-18 04:00:00`).
pub const SEED_DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// ISO-8601 datetime in UTC (`2026-08-03T10:15:00Z`).
pub const ISO_DATETIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// First id handed out; ids then grow by 1–37 at a time, shared by budgets
/// and line items, so every id of a data set is distinct.
const FIRST_ID: u64 = 300_000;

/// Probability that a new budget joins the user's latest trip.
const JOIN_TRIP: f64 = 0.55;

/// Probability that an (ordinary) hotel bill is split per night.
const HOTEL_SPLIT: f64 = 0.15;

/// Generates the data set described by `config`. Deterministic: the same
/// configuration gives the same data set, byte for byte once written.
pub fn generate(config: &SynthConfig) -> Dataset {
    let settings = Settings::from(config);
    let mut ids = Ids { next: FIRST_ID };
    let mut requests: Vec<SynthRequest> = (0..config.users)
        .map(|user| {
            let stream = (user as u64).wrapping_mul(2);
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
            rng.set_stream(stream);
            let mut fmt = ChaCha8Rng::seed_from_u64(config.seed);
            fmt.set_stream(stream.wrapping_add(1));
            let user_id = format!("U{:06}", user + 1);
            UserGen {
                settings: &settings,
                rng: &mut rng,
                ids: &mut ids,
            }
            .request(user_id, &mut fmt)
        })
        .collect();
    requests.sort_by(|a, b| {
        a.requested_at
            .cmp(&b.requested_at)
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    Dataset { requests }
}

/// The configuration with rates clamped and ranges ordered.
struct Settings {
    budgets: (usize, usize),
    decoys: (usize, usize),
    start_date: NaiveDate,
    days: u32,
    null_rate: f64,
    iso_rate: f64,
    agency_rate: f64,
    unexpensed_rate: f64,
    violation_rate: f64,
    label_noise: f64,
}

impl From<&SynthConfig> for Settings {
    fn from(config: &SynthConfig) -> Self {
        Settings {
            budgets: bounds(&config.budgets_per_user),
            decoys: bounds(&config.decoys_per_user),
            start_date: config.start_date,
            days: config.days.max(1),
            null_rate: rate(config.null_rate),
            iso_rate: rate(config.iso_datetime_rate),
            agency_rate: rate(config.agency_rate),
            unexpensed_rate: rate(config.unexpensed_rate),
            violation_rate: rate(config.policy_violation_rate),
            label_noise: rate(config.policy_label_noise),
        }
    }
}

/// The id sequence shared by the whole data set.
struct Ids {
    next: u64,
}

impl Ids {
    fn take(&mut self, rng: &mut ChaCha8Rng) -> String {
        let id = self.next;
        self.next = self.next.saturating_add(rng.random_range(1..=37));
        id.to_string()
    }
}

/// A budget before rendering.
struct Budget {
    id: String,
    kind: TravelKind,
    brand: usize,
    type_name: &'static str,
    travel_vendor: &'static str,
    purchase_vendor: &'static str,
    agency: Option<usize>,
    price_cents: i64,
    actual_cents: i64,
    generated_at: NaiveDateTime,
    start: NaiveDateTime,
    end: NaiveDateTime,
}

/// A trip window and the index of its first budget (a trip's budgets are
/// consecutive while they are generated).
struct Trip {
    start: NaiveDateTime,
    end: NaiveDateTime,
    first_budget: usize,
}

/// A line item before rendering.
struct Item {
    amount_cents: i64,
    vendor: String,
    type_item: &'static str,
    category_item: &'static str,
    type_expense: &'static str,
    category_expense: &'static str,
    date: NaiveDateTime,
    /// Index of the budget it is a charge for, if any.
    budget: Option<usize>,
    out_of_policy: bool,
}

/// How a matched charge breaks the policy, when it is generated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Violation {
    Overrun,
    OffTrip,
    Premium,
}

/// Decoy line item kinds and their weights.
#[derive(Debug, Clone, Copy)]
enum Decoy {
    Everyday(DecoyKind),
    PastTrip,
    Unbudgeted,
}

const DECOYS: &[(Decoy, u32)] = &[
    (Decoy::Everyday(catalog::TAXI), 12),
    (Decoy::Everyday(catalog::RIDESHARE), 15),
    (Decoy::Everyday(catalog::MEALS), 22),
    (Decoy::Everyday(catalog::PARKING), 8),
    (Decoy::Everyday(catalog::OFFICE), 7),
    (Decoy::Everyday(catalog::FUEL), 6),
    (Decoy::Everyday(catalog::CONNECTIVITY), 5),
    (Decoy::PastTrip, 10),
    (Decoy::Unbudgeted, 15),
];

const KINDS: &[(TravelKind, u32)] = &[
    (TravelKind::Flight, 38),
    (TravelKind::Hotel, 30),
    (TravelKind::Car, 18),
    (TravelKind::Train, 14),
];

/// One user's generation state.
struct UserGen<'a> {
    settings: &'a Settings,
    rng: &'a mut ChaCha8Rng,
    ids: &'a mut Ids,
}

impl UserGen<'_> {
    fn request(mut self, user_id: String, fmt: &mut ChaCha8Rng) -> SynthRequest {
        let budgets = self.budgets();
        let mut items = Vec::new();
        for (index, budget) in budgets.iter().enumerate() {
            self.charges(index, budget, &mut items);
        }
        let (lo, hi) = self.settings.decoys;
        let decoys = self.rng.random_range(lo..=hi);
        for _ in 0..decoys {
            let item = self.decoy(&budgets);
            items.push(item);
        }
        items.shuffle(self.rng);
        let item_ids: Vec<String> = items.iter().map(|_| self.ids.take(self.rng)).collect();

        let mut labels = Vec::with_capacity(budgets.len() * items.len());
        for (index, budget) in budgets.iter().enumerate() {
            for (item, item_id) in items.iter().zip(&item_ids) {
                let matched = item.budget == Some(index);
                labels.push(PairLabel {
                    budget_id: budget.id.clone(),
                    itemization_id: item_id.clone(),
                    matched,
                    out_of_policy: matched && item.out_of_policy,
                });
            }
        }

        let latest = budgets
            .iter()
            .map(|b| b.end)
            .chain(items.iter().map(|i| i.date))
            .max()
            .unwrap_or_else(|| midnight(self.settings.start_date));
        let requested_at = add_days(latest.date(), self.rng.random_range(1..=10))
            .and_time(time_between(self.rng, 8, 20));

        let mut render = Render {
            rng: fmt,
            null_rate: self.settings.null_rate,
            iso_rate: self.settings.iso_rate,
        };
        let request = RawRequest {
            budgets: budgets.iter().map(|b| render.budget(b)).collect(),
            all_user_expense_lineitems: items
                .iter()
                .zip(item_ids)
                .map(|(item, id)| render.item(item, id))
                .collect(),
        };
        SynthRequest {
            user_id,
            request,
            requested_at,
            labels,
        }
    }

    /// The user's budgets, ordered by booking time, with their ids.
    fn budgets(&mut self) -> Vec<Budget> {
        let (lo, hi) = self.settings.budgets;
        let count = self.rng.random_range(lo..=hi);
        let mut trips: Vec<Trip> = Vec::new();
        let mut budgets: Vec<Budget> = Vec::with_capacity(count);
        for _ in 0..count {
            let join = !trips.is_empty() && self.rng.random_bool(JOIN_TRIP);
            let kinds_on_trip: Vec<TravelKind> = match trips.last() {
                Some(trip) if join => budgets[trip.first_budget..]
                    .iter()
                    .map(|b| b.kind)
                    .collect(),
                _ => {
                    let (start, end) = self.trip();
                    trips.push(Trip {
                        start,
                        end,
                        first_budget: budgets.len(),
                    });
                    Vec::new()
                }
            };
            let Some(&Trip { start, end, .. }) = trips.last() else {
                break;
            };
            // A trip has one hotel and one car at most; a second flight or
            // train is the return leg, often with another carrier.
            let weights: Vec<(TravelKind, u32)> = KINDS
                .iter()
                .map(|&(kind, weight)| match kind {
                    _ if !kinds_on_trip.contains(&kind) => (kind, weight),
                    TravelKind::Flight | TravelKind::Train => (kind, weight / 3),
                    TravelKind::Hotel | TravelKind::Car => (kind, 0),
                })
                .collect();
            let kind = weighted(self.rng, &weights, TravelKind::Flight);
            let used: Vec<usize> = budgets
                .iter()
                .filter(|b| b.kind == kind)
                .map(|b| b.brand)
                .collect();
            let brand = self.unused_brand(kind, &used);
            budgets.push(self.budget(kind, brand, (start, end)));
        }
        budgets.sort_by_key(|b| b.generated_at);
        for budget in &mut budgets {
            budget.id = self.ids.take(self.rng);
        }
        budgets
    }

    /// A trip window: starts within the configured days, lasts 1–7 days.
    fn trip(&mut self) -> (NaiveDateTime, NaiveDateTime) {
        const HOURS: &[u32] = &[0, 4, 4, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18];
        const MINUTES: &[u32] = &[0, 0, 0, 0, 15, 30, 45];
        const DURATIONS: &[(i64, u32)] =
            &[(1, 25), (2, 25), (3, 20), (4, 12), (5, 8), (6, 5), (7, 5)];
        let offset = self.rng.random_range(0..self.settings.days);
        let date = add_days(self.settings.start_date, i64::from(offset));
        let hour = pick(self.rng, HOURS, 0);
        let start = date.and_time(hms(hour, pick(self.rng, MINUTES, 0), 0));
        let duration = weighted(self.rng, DURATIONS, 1);
        let end_hour = if self.rng.random_bool(0.25) {
            pick(self.rng, HOURS, 0)
        } else {
            hour
        };
        let end = add_days(date, duration).and_time(hms(end_hour, start.minute(), 0));
        (start, end)
    }

    /// A brand of `kind` not in `used`, or any brand once all are used.
    fn unused_brand(&mut self, kind: TravelKind, used: &[usize]) -> usize {
        let all = catalog::brands(kind).len();
        let free: Vec<usize> = (0..all).filter(|b| !used.contains(b)).collect();
        match free.len() {
            0 => self.rng.random_range(0..all.max(1)),
            n => free[self.rng.random_range(0..n)],
        }
    }

    fn budget(
        &mut self,
        kind: TravelKind,
        brand: usize,
        (start, end): (NaiveDateTime, NaiveDateTime),
    ) -> Budget {
        let lead = match self.rng.random_range(0..10) {
            0..=4 => self.rng.random_range(1..=14),
            5..=8 => self.rng.random_range(15..=45),
            _ => self.rng.random_range(46..=90),
        };
        let generated_at = add_days(start.date(), -lead).and_time(time_between(self.rng, 0, 24));
        let units = (end.date() - start.date()).num_days().max(1) as f64;
        let dollars = match kind {
            TravelKind::Flight => lognormal(self.rng, 330.0, 0.5, 59.0, 2400.0),
            TravelKind::Hotel => units * lognormal(self.rng, 175.0, 0.35, 69.0, 650.0),
            TravelKind::Car => units * lognormal(self.rng, 58.0, 0.3, 28.0, 180.0),
            TravelKind::Train => lognormal(self.rng, 85.0, 0.6, 12.0, 600.0),
        };
        let price_cents = if self.rng.random_bool(0.45) {
            dollars.round() as i64 * 100
        } else {
            to_cents(dollars)
        };
        let actual_cents = match self.rng.random_range(0..10) {
            0 => price_cents,
            1..=8 => scale(price_cents, uniform(self.rng, 0.85, 1.05)),
            _ => scale(price_cents, uniform(self.rng, 1.05, 1.3)),
        };
        let brand_names = catalog::brands(kind)
            .get(brand)
            .map_or(&[][..], |b| b.budget_names);
        let travel_vendor = pick(self.rng, brand_names, "");
        let (agency, purchase_vendor) = if self.rng.random_bool(self.settings.agency_rate) {
            let agency = self.rng.random_range(0..catalog::AGENCIES.len());
            let names = catalog::AGENCIES
                .get(agency)
                .map_or(&[][..], |a| a.budget_names);
            (Some(agency), pick(self.rng, names, ""))
        } else {
            (None, travel_vendor)
        };
        Budget {
            id: String::new(),
            kind,
            brand,
            type_name: weighted(self.rng, catalog::budget_type_names(kind), "flight"),
            travel_vendor,
            purchase_vendor,
            agency,
            price_cents,
            actual_cents,
            generated_at,
            start,
            end,
        }
    }

    /// The vendor text of a charge for `budget`: the agency's statement
    /// descriptor for half of the agency bookings, otherwise the vendor's
    /// statement descriptor (65 %), booking spelling (20 %) or an alias.
    fn charge_vendor(&mut self, budget: &Budget) -> String {
        if let Some(agency) = budget.agency.and_then(|a| catalog::AGENCIES.get(a))
            && self.rng.random_bool(0.5)
        {
            let pattern = pick(self.rng, agency.statement, "");
            return fill(self.rng, pattern);
        }
        match catalog::brands(budget.kind).get(budget.brand) {
            Some(brand) => match self.rng.random_range(0..20) {
                0..=12 => self.statement_vendor(brand),
                13..=16 => budget.travel_vendor.to_owned(),
                _ => pick(self.rng, brand.aliases, "").to_owned(),
            },
            None => budget.travel_vendor.to_owned(),
        }
    }

    fn statement_vendor(&mut self, brand: &Brand) -> String {
        let pattern = pick(self.rng, brand.statement, "");
        fill(self.rng, pattern)
    }

    /// Expense-level type and category, and the itemization's (80 % equal).
    fn travel_types(&mut self, kind: TravelKind) -> (TypeCategory, TypeCategory) {
        let types = catalog::travel_types(kind);
        let expense = pick(self.rng, types, ("", ""));
        let item = if self.rng.random_bool(0.8) {
            expense
        } else {
            pick(self.rng, types, ("", ""))
        };
        (expense, item)
    }

    /// Adds the charges for budget `index` (none if it is not expensed).
    fn charges(&mut self, index: usize, budget: &Budget, items: &mut Vec<Item>) {
        if self.rng.random_bool(self.settings.unexpensed_rate) {
            return;
        }
        let violation = if self.rng.random_bool(self.settings.violation_rate) {
            let choices: &[(Violation, u32)] = match budget.kind {
                TravelKind::Flight | TravelKind::Train => {
                    &[(Violation::Overrun, 50), (Violation::Premium, 50)]
                }
                TravelKind::Hotel | TravelKind::Car => &[
                    (Violation::Overrun, 35),
                    (Violation::OffTrip, 35),
                    (Violation::Premium, 30),
                ],
            };
            Some(weighted(self.rng, choices, Violation::Overrun))
        } else {
            None
        };

        let (start, end) = (budget.start.date(), budget.end.date());
        let nights = (end - start).num_days().max(1);
        let actual = budget.actual_cents;
        let amount_cents = match budget.kind {
            TravelKind::Flight if self.rng.random_bool(0.25) => {
                actual + to_cents(uniform(self.rng, 15.0, 75.0))
            }
            TravelKind::Flight => actual,
            TravelKind::Hotel => scale(actual, uniform(self.rng, 1.0, 1.17)),
            TravelKind::Car => scale(actual, uniform(self.rng, 1.0, 1.18)),
            TravelKind::Train if self.rng.random_bool(0.15) => {
                actual + to_cents(uniform(self.rng, 2.0, 12.0))
            }
            TravelKind::Train => actual,
        };
        let amount_cents = if violation == Some(Violation::Overrun) {
            scale(budget.price_cents, uniform(self.rng, 1.3, 2.0))
                + to_cents(uniform(self.rng, 20.0, 80.0))
        } else {
            amount_cents
        };
        let booked = budget.generated_at.date();
        let mut date = match budget.kind {
            TravelKind::Flight => match self.rng.random_range(0..20) {
                0..=10 => booked,
                11..=12 => add_days(booked, 1),
                _ => start,
            },
            TravelKind::Train => {
                if self.rng.random_bool(0.5) {
                    booked
                } else {
                    start
                }
            }
            TravelKind::Hotel => match self.rng.random_range(0..10) {
                0..=5 => end,
                6..=8 => start,
                _ => add_days(start, 1).min(end),
            },
            TravelKind::Car => {
                if self.rng.random_bool(0.7) {
                    end
                } else {
                    start
                }
            }
        };
        if violation == Some(Violation::OffTrip) {
            let shift = self.rng.random_range(4..=12);
            date = if self.rng.random_bool(0.5) {
                add_days(end, shift)
            } else {
                add_days(start, -shift)
            };
        }
        let vendor = self.charge_vendor(budget);
        let ((type_expense, category_expense), (mut type_item, category_item)) =
            self.travel_types(budget.kind);
        if violation == Some(Violation::Premium) && budget.kind != TravelKind::Hotel {
            type_item = pick(self.rng, catalog::premium_types(budget.kind), type_item);
        }

        let split = budget.kind == TravelKind::Hotel
            && nights >= 2
            && violation.is_none()
            && self.rng.random_bool(HOTEL_SPLIT);
        if split {
            let night_type = pick(self.rng, catalog::HOTEL_NIGHT_TYPES, type_item);
            let per_night = amount_cents / nights;
            for night in 0..nights {
                let amount = if night == nights - 1 {
                    amount_cents - per_night * (nights - 1)
                } else {
                    per_night
                };
                let item = Item {
                    amount_cents: amount,
                    vendor: vendor.clone(),
                    type_item: night_type,
                    category_item,
                    type_expense,
                    category_expense,
                    date: self.charge_time(add_days(start, night)),
                    budget: Some(index),
                    out_of_policy: false,
                };
                items.push(self.labeled(budget, item));
            }
        } else {
            let item = Item {
                amount_cents,
                vendor: vendor.clone(),
                type_item,
                category_item,
                type_expense,
                category_expense,
                date: self.charge_time(date),
                budget: Some(index),
                out_of_policy: false,
            };
            items.push(self.labeled(budget, item));
        }

        if violation == Some(Violation::Premium) && budget.kind == TravelKind::Hotel {
            let extra_type = pick(self.rng, catalog::premium_types(TravelKind::Hotel), "");
            let night = self.rng.random_range(0..nights);
            let item = Item {
                amount_cents: to_cents(lognormal(self.rng, 38.0, 0.6, 8.0, 160.0)),
                vendor,
                type_item: extra_type,
                category_item,
                type_expense,
                category_expense,
                date: self.charge_time(add_days(start, night)),
                budget: Some(index),
                out_of_policy: false,
            };
            items.push(self.labeled(budget, item));
        }
    }

    /// Sets `out_of_policy` by the policy rule, then applies label noise.
    fn labeled(&mut self, budget: &Budget, mut item: Item) -> Item {
        let texts = [item.vendor.as_str(), item.type_item, item.type_expense];
        let rule = out_of_policy(&PolicyInput {
            kind: budget.kind,
            price_cents: budget.price_cents,
            amount_cents: item.amount_cents,
            transaction_date: item.date.date(),
            trip_start: budget.start.date(),
            trip_end: budget.end.date(),
            texts: &texts,
        });
        item.out_of_policy = rule != self.rng.random_bool(self.settings.label_noise);
        item
    }

    /// A transaction datetime on `date`: midnight (85 %, as in the seed) or
    /// a time of day.
    fn charge_time(&mut self, date: NaiveDate) -> NaiveDateTime {
        if self.rng.random_bool(0.85) {
            midnight(date)
        } else {
            date.and_time(time_between(self.rng, 6, 23))
        }
    }

    /// An unmatched line item.
    fn decoy(&mut self, budgets: &[Budget]) -> Item {
        let decoy = weighted(self.rng, DECOYS, Decoy::Everyday(catalog::MEALS));
        let budget = match budgets.len() {
            0 => None,
            n => budgets.get(self.rng.random_range(0..n)),
        };
        match (decoy, budget) {
            (Decoy::Everyday(kind), _) => self.everyday(kind, budgets),
            (Decoy::PastTrip, Some(budget)) => self.past_trip(budget, budgets),
            (Decoy::Unbudgeted, Some(budget)) => self.unbudgeted(budget, budgets),
            // Travel decoys need a budget to imitate.
            (Decoy::PastTrip | Decoy::Unbudgeted, None) => self.everyday(catalog::MEALS, budgets),
        }
    }

    /// A taxi, meal, parking, ... charge, during a trip (60 %) or anywhere
    /// from a few days before the first booking to ten days after the last
    /// trip.
    fn everyday(&mut self, kind: DecoyKind, budgets: &[Budget]) -> Item {
        let vendor_pattern = pick(self.rng, kind.vendors, "");
        let vendor = fill(self.rng, vendor_pattern);
        let (type_expense, category_expense) = pick(self.rng, kind.types, ("", ""));
        let (type_item, category_item) = if self.rng.random_bool(0.85) {
            (type_expense, category_expense)
        } else {
            pick(self.rng, kind.types, ("", ""))
        };
        let amount_cents = to_cents(lognormal(
            self.rng,
            kind.median,
            kind.sigma,
            kind.min,
            kind.max,
        ));
        let date = match budgets.len() {
            0 => add_days(
                self.settings.start_date,
                i64::from(self.rng.random_range(0..self.settings.days)),
            ),
            n if self.rng.random_bool(0.6) => {
                let budget = &budgets[self.rng.random_range(0..n)];
                self.date_in(budget.start.date(), budget.end.date())
            }
            _ => {
                let first = budgets
                    .iter()
                    .map(|b| b.generated_at.date())
                    .min()
                    .unwrap_or(self.settings.start_date);
                let last = budgets
                    .iter()
                    .map(|b| b.end.date())
                    .max()
                    .unwrap_or(self.settings.start_date);
                self.date_in(add_days(first, -5), add_days(last, 10))
            }
        };
        Item {
            amount_cents,
            vendor,
            type_item,
            category_item,
            type_expense,
            category_expense,
            date: self.charge_time(date),
            budget: None,
            out_of_policy: false,
        }
    }

    /// A charge of an older trip: the kind of `budget`,
    /// often the very same vendor and a similar amount, dated 30–120 days
    /// before the user's first booking.
    fn past_trip(&mut self, budget: &Budget, budgets: &[Budget]) -> Item {
        let all = catalog::brands(budget.kind);
        let brand = if self.rng.random_bool(0.6) {
            budget.brand
        } else {
            self.rng.random_range(0..all.len().max(1))
        };
        let vendor = match all.get(brand) {
            Some(brand) => self.statement_vendor(brand),
            None => budget.travel_vendor.to_owned(),
        };
        let first = budgets
            .iter()
            .map(|b| b.generated_at.date())
            .min()
            .unwrap_or(self.settings.start_date);
        let date = add_days(first, -self.rng.random_range(30..=120));
        let amount_cents = scale(budget.price_cents, uniform(self.rng, 0.6, 1.4));
        self.travel_decoy(budget.kind, vendor, amount_cents, date)
    }

    /// Travel booked outside every budget (a flight on another airline, a
    /// hotel not in the request), mostly of `budget`'s kind, during its trip
    /// or on its booking day, with an amount like its price.
    fn unbudgeted(&mut self, budget: &Budget, budgets: &[Budget]) -> Item {
        let kind = if self.rng.random_bool(0.7) {
            budget.kind
        } else {
            weighted(self.rng, KINDS, TravelKind::Flight)
        };
        let used: Vec<usize> = budgets
            .iter()
            .filter(|b| b.kind == kind)
            .map(|b| b.brand)
            .collect();
        let free: Vec<usize> = (0..catalog::brands(kind).len())
            .filter(|b| !used.contains(b))
            .collect();
        let Some(&brand_index) = free.get(self.rng.random_range(0..free.len().max(1))) else {
            // Every vendor of that kind is budgeted: an everyday decoy instead.
            return self.everyday(catalog::MEALS, budgets);
        };
        let vendor = match catalog::brands(kind).get(brand_index) {
            Some(brand) if self.rng.random_bool(0.75) => self.statement_vendor(brand),
            Some(brand) => pick(self.rng, brand.budget_names, "").to_owned(),
            None => String::new(),
        };
        let date = if self.rng.random_bool(0.7) {
            self.date_in(budget.start.date(), budget.end.date())
        } else {
            budget.generated_at.date()
        };
        let amount_cents = scale(budget.price_cents, uniform(self.rng, 0.7, 1.3));
        self.travel_decoy(kind, vendor, amount_cents, date)
    }

    fn travel_decoy(
        &mut self,
        kind: TravelKind,
        vendor: String,
        amount_cents: i64,
        date: NaiveDate,
    ) -> Item {
        let ((type_expense, category_expense), (type_item, category_item)) =
            self.travel_types(kind);
        Item {
            amount_cents: amount_cents.max(100),
            vendor,
            type_item,
            category_item,
            type_expense,
            category_expense,
            date: self.charge_time(date),
            budget: None,
            out_of_policy: false,
        }
    }

    /// A uniform date in `[from, to]`.
    fn date_in(&mut self, from: NaiveDate, to: NaiveDate) -> NaiveDate {
        let span = (to - from).num_days().max(0);
        add_days(from, self.rng.random_range(0..=span))
    }
}

/// Renders true values as seed-format strings, with nulls and ISO dates.
struct Render<'a> {
    rng: &'a mut ChaCha8Rng,
    null_rate: f64,
    iso_rate: f64,
}

impl Render<'_> {
    /// A non-id field: null (70 %) or empty (30 %) with the null rate.
    fn field(&mut self, value: String) -> Option<String> {
        if self.rng.random::<f64>() < self.null_rate {
            if self.rng.random_bool(0.7) {
                None
            } else {
                Some(String::new())
            }
        } else {
            Some(value)
        }
    }

    fn datetime(&mut self, value: NaiveDateTime) -> Option<String> {
        let format = if self.rng.random_bool(self.iso_rate) {
            ISO_DATETIME_FORMAT
        } else {
            SEED_DATETIME_FORMAT
        };
        self.field(value.format(format).to_string())
    }

    fn budget(&mut self, b: &Budget) -> RawBudget {
        RawBudget {
            budget_id: Some(b.id.clone()),
            budget_price_budget: self.field(format_cents(b.price_cents)),
            travel_vendor_receipts: self.field(b.travel_vendor.to_owned()),
            purchase_vendor_receipts: self.field(b.purchase_vendor.to_owned()),
            budget_type_budget: self.field(b.type_name.to_owned()),
            generated_at_budget: self.datetime(b.generated_at),
            start_datetime_trips: self.datetime(b.start),
            end_datetime_trips: self.datetime(b.end),
            actual_cost_budget: self.field(format_cents(b.actual_cents)),
        }
    }

    fn item(&mut self, i: &Item, id: String) -> RawLineItem {
        RawLineItem {
            itemization_id: Some(id),
            expensed_amount_itemization: self.field(format_cents(i.amount_cents)),
            expense_type_name_itemization: self.field(i.type_item.to_owned()),
            transaction_date_itemization: self.datetime(i.date),
            expense_category_itemization: self.field(i.category_item.to_owned()),
            vendor_name_expense: self.field(i.vendor.clone()),
            expense_type_name_expense: self.field(i.type_expense.to_owned()),
            expense_category_expense: self.field(i.category_expense.to_owned()),
        }
    }
}

/// Cents as the seed writes amounts: `"131.98"`, `"131.9"`, `"140.0"`.
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let (whole, frac) = (abs / 100, abs % 100);
    if frac % 10 == 0 {
        format!("{sign}{whole}.{}", frac / 10)
    } else {
        format!("{sign}{whole}.{frac:02}")
    }
}

fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Box–Muller standard normal.
fn std_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

/// Log-normal with the given median, clamped to `[min, max]`.
fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64, min: f64, max: f64) -> f64 {
    (median * (sigma * std_normal(rng)).exp()).clamp(min, max)
}

fn to_cents(dollars: f64) -> i64 {
    (dollars * 100.0).round() as i64
}

fn scale(cents: i64, factor: f64) -> i64 {
    (cents as f64 * factor).round() as i64
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T], fallback: T) -> T {
    match items.len() {
        0 => fallback,
        n => items[rng.random_range(0..n)],
    }
}

fn weighted<T: Copy>(rng: &mut ChaCha8Rng, choices: &[(T, u32)], fallback: T) -> T {
    let total: u32 = choices.iter().map(|&(_, w)| w).sum();
    if total == 0 {
        return fallback;
    }
    let mut draw = rng.random_range(0..total);
    for &(choice, weight) in choices {
        if draw < weight {
            return choice;
        }
        draw -= weight;
    }
    fallback
}

/// Replaces every `#` of a statement pattern by a random digit.
fn fill(rng: &mut ChaCha8Rng, pattern: &str) -> String {
    pattern
        .chars()
        .map(|c| {
            if c == '#' {
                char::from(b'0' + rng.random_range(0..10u8))
            } else {
                c
            }
        })
        .collect()
}

/// `date + days`, or `date` itself at chrono's limits.
fn add_days(date: NaiveDate, days: i64) -> NaiveDate {
    TimeDelta::try_days(days)
        .and_then(|delta| date.checked_add_signed(delta))
        .unwrap_or(date)
}

fn hms(hour: u32, minute: u32, second: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, second).unwrap_or(NaiveTime::MIN)
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN)
}

/// A uniform time of day with the hour in `[from_hour, to_hour)`.
fn time_between(rng: &mut ChaCha8Rng, from_hour: u32, to_hour: u32) -> NaiveTime {
    let seconds = rng.random_range(from_hour * 3600..to_hour.max(from_hour + 1) * 3600);
    NaiveTime::from_num_seconds_from_midnight_opt(seconds.min(86_399), 0).unwrap_or(NaiveTime::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_written_like_the_seed() {
        assert_eq!(format_cents(13_198), "131.98");
        assert_eq!(format_cents(14_000), "140.0");
        assert_eq!(format_cents(2_400), "24.0");
        assert_eq!(format_cents(13_190), "131.9");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(-250), "-2.5");
    }

    #[test]
    fn statement_patterns_get_digits() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let vendor = fill(&mut rng, "SOUTHWEST AIR #######");
        assert_eq!(vendor.len(), "SOUTHWEST AIR 5262134".len());
        assert!(vendor.starts_with("SOUTHWEST AIR "));
        assert!(
            vendor["SOUTHWEST AIR ".len()..]
                .bytes()
                .all(|b| b.is_ascii_digit())
        );
    }

    #[test]
    fn weighted_respects_weights() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let choices = [("a", 1), ("b", 0), ("c", 3)];
        let draws: Vec<&str> = (0..4000)
            .map(|_| weighted(&mut rng, &choices, "x"))
            .collect();
        let a = draws.iter().filter(|&&d| d == "a").count();
        assert!(!draws.contains(&"b") && !draws.contains(&"x"));
        assert!((800..1200).contains(&a), "{a}");
        assert_eq!(weighted(&mut rng, &[("a", 0)], "x"), "x");
    }
}
