//! Properties of generated data sets: determinism, labels, ids, rates,
//! formats, the seed's JSON shape, the policy rule and the split.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{NaiveDate, NaiveDateTime};
use triad_features::{RawBudget, RawLineItem, RawRequest};
use triad_synth::policy::{self, PolicyInput, TravelKind};
use triad_synth::{Dataset, SynthConfig, generate, split, write_labels_csv, write_requests_jsonl};
use triad_test_support::SEED_REQUEST;

fn config(seed: u64) -> SynthConfig {
    SynthConfig {
        seed,
        ..SynthConfig::default()
    }
}

fn jsonl(dataset: &Dataset) -> Vec<u8> {
    let mut out = Vec::new();
    write_requests_jsonl(dataset, &mut out).expect("writing to a Vec cannot fail");
    out
}

fn csv(dataset: &Dataset) -> Vec<u8> {
    let mut out = Vec::new();
    write_labels_csv(dataset, &mut out).expect("writing to a Vec cannot fail");
    out
}

fn present(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}

fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ"))
        .ok()
}

fn parse_cents(text: &str) -> Option<i64> {
    let (whole, frac) = text.split_once('.')?;
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = match frac.len() {
        1 => frac.parse::<i64>().ok()? * 10,
        2 => frac.parse().ok()?,
        _ => return None,
    };
    Some(whole * 100 + frac)
}

fn items_by_id(request: &RawRequest) -> HashMap<&str, &RawLineItem> {
    request
        .all_user_expense_lineitems
        .iter()
        .filter_map(|i| Some((i.itemization_id.as_deref()?, i)))
        .collect()
}

fn budgets_by_id(request: &RawRequest) -> HashMap<&str, &RawBudget> {
    request
        .budgets
        .iter()
        .filter_map(|b| Some((b.budget_id.as_deref()?, b)))
        .collect()
}

#[test]
fn same_seed_gives_identical_bytes_and_other_seeds_differ() {
    let a = generate(&config(7));
    let b = generate(&config(7));
    let c = generate(&config(8));
    assert_eq!(a, b);
    assert_eq!(jsonl(&a), jsonl(&b));
    assert_eq!(csv(&a), csv(&b));
    assert!(!jsonl(&a).is_empty());
    assert_ne!(jsonl(&a), jsonl(&c));
    assert_ne!(csv(&a), csv(&c));
}

#[test]
fn default_config_is_as_documented() {
    let config = SynthConfig::default();
    assert_eq!(config.users, 500);
    assert_eq!(config.budgets_per_user, 1..=4);
    assert_eq!(
        config.start_date,
        NaiveDate::from_ymd_opt(2026, 8, 1).unwrap()
    );
    assert_eq!(config.days, 90);
    assert!((config.null_rate - 0.02).abs() < 1e-12);
    let dataset = generate(&config);
    assert_eq!(dataset.requests.len(), 500);
    for synth in &dataset.requests {
        assert!((1..=4).contains(&synth.request.budgets.len()));
    }
}

#[test]
fn every_pair_has_exactly_one_label() {
    let dataset = generate(&config(11));
    for synth in &dataset.requests {
        let request = &synth.request;
        let expected: Vec<(String, String)> = request
            .budgets
            .iter()
            .flat_map(|b| {
                request.all_user_expense_lineitems.iter().map(move |i| {
                    (
                        b.budget_id.clone().unwrap_or_default(),
                        i.itemization_id.clone().unwrap_or_default(),
                    )
                })
            })
            .collect();
        let labeled: Vec<(String, String)> = synth
            .labels
            .iter()
            .map(|l| (l.budget_id.clone(), l.itemization_id.clone()))
            .collect();
        assert_eq!(labeled, expected, "labels follow the cross product order");
        let distinct: HashSet<_> = labeled.iter().collect();
        assert_eq!(distinct.len(), labeled.len());
    }
    let stats = dataset.stats();
    assert_eq!(stats.pairs, dataset.pair_count());
    let rows = String::from_utf8(csv(&dataset)).expect("CSV is UTF-8");
    assert_eq!(rows.lines().count(), stats.pairs + 1);
}

#[test]
fn ids_are_unique_digit_strings_across_the_data_set() {
    let dataset = generate(&config(3));
    let mut seen = HashSet::new();
    let mut count = 0;
    for synth in &dataset.requests {
        let ids = synth
            .request
            .budgets
            .iter()
            .map(|b| b.budget_id.as_deref())
            .chain(
                synth
                    .request
                    .all_user_expense_lineitems
                    .iter()
                    .map(|i| i.itemization_id.as_deref()),
            );
        for id in ids {
            let id = id.expect("ids are never null");
            assert!(
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
                "{id}"
            );
            assert!(seen.insert(id.to_owned()), "duplicate id {id}");
            count += 1;
        }
    }
    assert!(count > 4000, "{count}");
    let users: HashSet<_> = dataset.requests.iter().map(|r| &r.user_id).collect();
    assert_eq!(users.len(), dataset.requests.len());
}

#[test]
fn positive_rate_is_about_one_matched_item_per_budget() {
    for seed in [1, 2, 3] {
        let dataset = generate(&config(seed));
        let stats = dataset.stats();
        assert!(
            (0.9..=1.12).contains(&stats.matched_per_budget()),
            "{stats:?}"
        );
        assert!((0.10..=0.17).contains(&stats.positive_rate()), "{stats:?}");
        let mut expensed = 0;
        for synth in &dataset.requests {
            // A line item is a charge for at most one budget.
            let mut per_item: HashMap<&str, usize> = HashMap::new();
            let mut matched_budgets = HashSet::new();
            for label in synth.labels.iter().filter(|l| l.matched) {
                *per_item.entry(label.itemization_id.as_str()).or_default() += 1;
                matched_budgets.insert(label.budget_id.as_str());
            }
            assert!(per_item.values().all(|&n| n == 1));
            expensed += matched_budgets.len();
        }
        // 93 % of budgets are expensed (unexpensed_rate 0.07).
        let share = expensed as f64 / stats.budgets as f64;
        assert!((0.90..=0.96).contains(&share), "{share}");
    }
}

#[test]
fn out_of_policy_only_on_matched_pairs_and_at_a_plausible_rate() {
    let dataset = generate(&config(5));
    let stats = dataset.stats();
    for synth in &dataset.requests {
        for label in &synth.labels {
            assert!(!label.out_of_policy || label.matched, "{label:?}");
        }
    }
    assert!(stats.out_of_policy_pairs > 0);
    assert!(
        (0.08..=0.25).contains(&stats.out_of_policy_rate()),
        "{stats:?}"
    );
    let rows = String::from_utf8(csv(&dataset)).expect("CSV is UTF-8");
    for row in rows.lines().skip(1) {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields.len(), 5);
        assert!(matches!(
            (fields[2], fields[3]),
            ("0", "0") | ("1", "0") | ("1", "1")
        ));
    }
}

#[test]
fn null_rate_is_near_the_configured_value() {
    for (null_rate, tolerance) in [(0.02, 0.004), (0.2, 0.012)] {
        for seed in [1, 2] {
            let dataset = generate(&SynthConfig {
                seed,
                null_rate,
                ..SynthConfig::default()
            });
            let measured = dataset.stats().missing_rate();
            assert!(
                (measured - null_rate).abs() < tolerance,
                "null_rate {null_rate}: measured {measured}"
            );
        }
    }
    let clean = generate(&SynthConfig {
        null_rate: 0.0,
        ..SynthConfig::default()
    });
    assert_eq!(clean.stats().missing_fields, 0);
    // Both nulls and empty strings occur.
    let text = String::from_utf8(jsonl(&generate(&config(1)))).expect("UTF-8");
    assert!(text.contains(":null") && text.contains(":\"\""));
}

#[test]
fn nulls_and_date_formats_do_not_change_the_content() {
    let noisy = generate(&config(9));
    let clean = generate(&SynthConfig {
        null_rate: 0.0,
        iso_datetime_rate: 0.0,
        ..config(9)
    });
    assert_eq!(noisy.requests.len(), clean.requests.len());
    for (n, c) in noisy.requests.iter().zip(&clean.requests) {
        assert_eq!(n.labels, c.labels);
        assert_eq!(n.requested_at, c.requested_at);
        let fields = |r: &RawRequest| -> Vec<Option<String>> {
            let value = serde_json::to_value(r).expect("serializable");
            let mut out = Vec::new();
            for (list, _) in [("budgets", 0), ("all_user_expense_lineitems", 1)] {
                for object in value[list].as_array().into_iter().flatten() {
                    for (_, v) in object.as_object().into_iter().flatten() {
                        out.push(v.as_str().map(str::to_owned));
                    }
                }
            }
            out
        };
        for (a, b) in fields(&n.request).iter().zip(fields(&c.request)) {
            let b = b.expect("clean data has no nulls");
            match a.as_deref() {
                None | Some("") => {}
                Some(a) if a == b => {}
                // ISO rendering of the same datetime.
                Some(a) => assert_eq!(parse_datetime(a), parse_datetime(&b), "{a} vs {b}"),
            }
        }
    }
}

#[test]
fn more_users_extend_a_smaller_data_set() {
    let small = generate(&SynthConfig {
        users: 40,
        ..config(4)
    });
    let large = generate(&SynthConfig {
        users: 120,
        ..config(4)
    });
    let by_user: HashMap<&str, _> = large
        .requests
        .iter()
        .map(|r| (r.user_id.as_str(), r))
        .collect();
    for synth in &small.requests {
        assert_eq!(Some(&synth), by_user.get(synth.user_id.as_str()));
    }
}

#[test]
fn jsonl_lines_are_seed_shaped_and_parse_back() {
    let seed: serde_json::Value = serde_json::from_str(SEED_REQUEST).expect("seed parses");
    let keys = |v: &serde_json::Value| -> BTreeSet<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let request_keys = keys(&seed);
    let budget_keys = keys(&seed["budgets"][0]);
    let item_keys = keys(&seed["all_user_expense_lineitems"][0]);
    assert_eq!(budget_keys.len(), 9);
    assert_eq!(item_keys.len(), 8);
    // The record types read the seed itself.
    let parsed_seed: RawRequest = serde_json::from_str(SEED_REQUEST).expect("seed parses");
    assert_eq!(
        parsed_seed.budgets[0].actual_cost_budget.as_deref(),
        Some("131.98")
    );

    let dataset = generate(&config(12));
    let bytes = jsonl(&dataset);
    let text = String::from_utf8(bytes).expect("JSONL is UTF-8");
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), dataset.requests.len());
    let mut saw_null = false;
    for (line, synth) in lines.iter().zip(&dataset.requests) {
        let value: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        assert_eq!(keys(&value), request_keys);
        for budget in value["budgets"].as_array().expect("budgets array") {
            assert_eq!(keys(budget), budget_keys);
            for field in budget.as_object().into_iter().flat_map(|o| o.values()) {
                assert!(field.is_string() || field.is_null(), "{field}");
                saw_null |= field.is_null();
            }
        }
        for item in value["all_user_expense_lineitems"]
            .as_array()
            .expect("items array")
        {
            assert_eq!(keys(item), item_keys);
            for field in item.as_object().into_iter().flat_map(|o| o.values()) {
                assert!(field.is_string() || field.is_null(), "{field}");
                saw_null |= field.is_null();
            }
        }
        let parsed: RawRequest = serde_json::from_str(line).expect("parses as RawRequest");
        assert_eq!(parsed, synth.request);
    }
    assert!(saw_null);
}

#[test]
fn fields_look_like_the_seed() {
    let dataset = generate(&config(21));
    let (mut datetimes, mut iso) = (0usize, 0usize);
    let mut kinds = HashSet::new();
    let (mut budgets, mut via_agency) = (0usize, 0usize);
    for synth in &dataset.requests {
        for b in &synth.request.budgets {
            budgets += 1;
            if let Some(kind) = present(&b.budget_type_budget) {
                assert!(
                    ["flight", "hotel", "car", "train", "rail"].contains(&kind),
                    "{kind}"
                );
                kinds.insert(kind.to_owned());
            }
            for amount in [&b.budget_price_budget, &b.actual_cost_budget] {
                if let Some(amount) = present(amount) {
                    assert!(parse_cents(amount).is_some_and(|c| c > 0), "{amount}");
                }
            }
            let times: Vec<Option<NaiveDateTime>> = [
                &b.generated_at_budget,
                &b.start_datetime_trips,
                &b.end_datetime_trips,
            ]
            .into_iter()
            .map(|field| {
                present(field).map(|text| {
                    datetimes += 1;
                    iso += usize::from(text.ends_with('Z'));
                    parse_datetime(text).unwrap_or_else(|| panic!("bad datetime {text}"))
                })
            })
            .collect();
            if let [Some(generated), Some(start), Some(end)] = times[..] {
                assert!(generated < start && start < end);
                let days = (end.date() - start.date()).num_days();
                assert!((1..=7).contains(&days), "{days}");
                let lead = (start.date() - generated.date()).num_days();
                assert!((1..=90).contains(&lead), "{lead}");
            }
            if let (Some(travel), Some(purchase)) = (
                present(&b.travel_vendor_receipts),
                present(&b.purchase_vendor_receipts),
            ) {
                via_agency += usize::from(travel != purchase);
            }
        }
        for i in &synth.request.all_user_expense_lineitems {
            if let Some(amount) = present(&i.expensed_amount_itemization) {
                assert!(parse_cents(amount).is_some_and(|c| c > 0), "{amount}");
            }
            if let Some(text) = present(&i.transaction_date_itemization) {
                datetimes += 1;
                iso += usize::from(text.ends_with('Z'));
                assert!(parse_datetime(text).is_some(), "bad datetime {text}");
            }
        }
    }
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    let iso_share = iso as f64 / datetimes as f64;
    assert!((0.02..=0.04).contains(&iso_share), "{iso_share}");
    let agency_share = via_agency as f64 / budgets as f64;
    assert!((0.08..=0.18).contains(&agency_share), "{agency_share}");
}

#[test]
fn negatives_include_same_kind_travel_charges() {
    // Hard negatives: unmatched line items typed like the budget's kind
    // (another budget's charge, an older trip, unbudgeted travel).
    let dataset = generate(&SynthConfig {
        null_rate: 0.0,
        ..config(6)
    });
    let type_kind = |name: &str| match name {
        "Airfare" | "Air Travel" | "Airline Ticket" => Some(TravelKind::Flight),
        "Hotel" | "Lodging" | "Hotel Room" | "Accommodation" => Some(TravelKind::Hotel),
        "Car Rental" | "Rental Car" | "Auto Rental" => Some(TravelKind::Car),
        "Train" | "Rail" | "Train Ticket" | "Public Transport" => Some(TravelKind::Train),
        _ => None,
    };
    let (mut negatives, mut same_kind) = (0usize, 0usize);
    let mut vendor_differs = 0usize;
    let mut matched = 0usize;
    for synth in &dataset.requests {
        let budgets = budgets_by_id(&synth.request);
        let items = items_by_id(&synth.request);
        for label in &synth.labels {
            let (b, i) = (
                budgets[label.budget_id.as_str()],
                items[label.itemization_id.as_str()],
            );
            let kind = b
                .budget_type_budget
                .as_deref()
                .and_then(TravelKind::from_budget_type);
            let item_kind = i.expense_type_name_expense.as_deref().and_then(type_kind);
            if label.matched {
                matched += 1;
                assert_eq!(kind, item_kind, "a charge is typed like its budget");
                vendor_differs += usize::from(i.vendor_name_expense != b.travel_vendor_receipts);
            } else {
                negatives += 1;
                same_kind += usize::from(kind.is_some() && kind == item_kind);
            }
        }
    }
    let hard = same_kind as f64 / negatives as f64;
    assert!((0.08..=0.4).contains(&hard), "{hard}");
    // Most charges carry a statement spelling, not the booking's.
    let noisy = vendor_differs as f64 / matched as f64;
    assert!((0.6..=0.95).contains(&noisy), "{noisy}");
}

/// Recomputes the documented policy rule from the rendered fields of every
/// matched pair.
fn policy_agreement(dataset: &Dataset) -> (usize, usize) {
    let (mut agree, mut total) = (0, 0);
    for synth in &dataset.requests {
        let budgets = budgets_by_id(&synth.request);
        let items = items_by_id(&synth.request);
        for label in synth.labels.iter().filter(|l| l.matched) {
            let (b, i) = (
                budgets[label.budget_id.as_str()],
                items[label.itemization_id.as_str()],
            );
            let date = |f: &Option<String>| present(f).and_then(parse_datetime).map(|d| d.date());
            let (Some(kind), Some(price), Some(amount), Some(txn), Some(start), Some(end)) = (
                present(&b.budget_type_budget).and_then(TravelKind::from_budget_type),
                present(&b.budget_price_budget).and_then(parse_cents),
                present(&i.expensed_amount_itemization).and_then(parse_cents),
                date(&i.transaction_date_itemization),
                date(&b.start_datetime_trips),
                date(&b.end_datetime_trips),
            ) else {
                continue;
            };
            let texts: Vec<&str> = [
                &i.vendor_name_expense,
                &i.expense_type_name_itemization,
                &i.expense_type_name_expense,
            ]
            .into_iter()
            .filter_map(present)
            .collect();
            let rule = policy::out_of_policy(&PolicyInput {
                kind,
                price_cents: price,
                amount_cents: amount,
                transaction_date: txn,
                trip_start: start,
                trip_end: end,
                texts: &texts,
            });
            total += 1;
            agree += usize::from(rule == label.out_of_policy);
        }
    }
    (agree, total)
}

#[test]
fn out_of_policy_is_learnable_from_the_pair_fields() {
    let exact = generate(&SynthConfig {
        null_rate: 0.0,
        policy_label_noise: 0.0,
        ..config(8)
    });
    let (agree, total) = policy_agreement(&exact);
    assert!(total > 1000);
    assert_eq!(agree, total, "without noise the rule explains every label");

    let noisy = generate(&config(8));
    let (agree, total) = policy_agreement(&noisy);
    let rate = agree as f64 / total as f64;
    // 2 % label noise plus markers lost to nulls.
    assert!((0.95..0.995).contains(&rate), "{rate}");
}

#[test]
fn split_is_by_user_deterministic_and_disjoint() {
    let dataset = generate(&config(13));
    let (train, test) = split(&dataset, 0.2);
    assert_eq!(test.requests.len(), 100);
    assert_eq!(train.requests.len(), 400);
    assert_eq!(split(&dataset, 0.2), (train.clone(), test.clone()));

    let users =
        |d: &Dataset| -> HashSet<String> { d.requests.iter().map(|r| r.user_id.clone()).collect() };
    let ids = |d: &Dataset| -> HashSet<String> {
        d.requests
            .iter()
            .flat_map(|r| r.labels.iter())
            .flat_map(|l| [l.budget_id.clone(), l.itemization_id.clone()])
            .collect()
    };
    assert!(users(&train).is_disjoint(&users(&test)));
    assert!(ids(&train).is_disjoint(&ids(&test)));
    let all: HashSet<String> = users(&train).union(&users(&test)).cloned().collect();
    assert_eq!(all, users(&dataset));
    assert_eq!(train.pair_count() + test.pair_count(), dataset.pair_count());
    // Each part keeps the data set's order (by requested_at).
    assert!(
        test.requests
            .windows(2)
            .all(|w| w[0].requested_at <= w[1].requested_at)
    );

    // A user keeps its side when the data set grows.
    let larger = generate(&SynthConfig {
        users: 800,
        ..config(13)
    });
    let (_, larger_test) = split(&larger, 0.2);
    let overlap = users(&test).intersection(&users(&larger_test)).count();
    assert!(overlap >= 90, "{overlap}");

    let (all_train, none) = split(&dataset, 0.0);
    assert!(none.requests.is_empty());
    assert_eq!(all_train, dataset);
    let (none, all_test) = split(&dataset, 1.0);
    assert!(none.requests.is_empty());
    assert_eq!(all_test.requests.len(), 500);
}

#[test]
fn out_of_range_settings_do_not_panic() {
    let dataset = generate(&SynthConfig {
        users: 30,
        budgets_per_user: std::ops::RangeInclusive::new(3, 0),
        decoys_per_user: 0..=0,
        days: 0,
        null_rate: f64::NAN,
        iso_datetime_rate: 7.0,
        agency_rate: -1.0,
        unexpensed_rate: 2.0,
        policy_violation_rate: f64::INFINITY,
        policy_label_noise: -0.5,
        ..SynthConfig::default()
    });
    let stats = dataset.stats();
    assert_eq!(stats.requests, 30);
    assert_eq!(stats.missing_fields, 0);
    // Every budget unexpensed and no decoys: no line items at all.
    assert_eq!(stats.line_items, 0);
    assert_eq!(stats.pairs, 0);
    assert_eq!(split(&dataset, 0.5).1.requests.len(), 15);
}

#[test]
fn trips_have_one_hotel_and_one_car_at_most() {
    let dataset = generate(&SynthConfig {
        null_rate: 0.0,
        ..config(17)
    });
    let mut shared_trips = 0;
    for synth in &dataset.requests {
        let mut per_trip: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
        for b in &synth.request.budgets {
            let window = (
                b.start_datetime_trips.as_deref().unwrap_or_default(),
                b.end_datetime_trips.as_deref().unwrap_or_default(),
            );
            let kind = b.budget_type_budget.as_deref().unwrap_or_default();
            per_trip.entry(window).or_default().push(kind);
        }
        for kinds in per_trip.values() {
            shared_trips += usize::from(kinds.len() > 1);
            for single in ["hotel", "car"] {
                assert!(
                    kinds.iter().filter(|&&k| k == single).count() <= 1,
                    "{kinds:?}"
                );
            }
        }
    }
    assert!(shared_trips > 100, "{shared_trips}");
}
