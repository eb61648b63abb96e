//! Featurizer throughput: pairs per second for 1×1, 50×200 and 1000×1000
//! budgets × line items, on realistic data (vendors and categories repeat)
//! and on distinct data (every string unique), plus JSON parse + featurize
//! of the seed request for reference, 100×100 with distinct long CJK
//! vendor names (the slowest text input the bounds admit), and the
//! character similarities alone against `strsim`. Run with
//! `cargo bench -p triad-features`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use triad_features::{Featurizer, JsonLimits, RawRequest, parse_request};
use triad_test_support::SEED_REQUEST;

mod support;

use support::Data;

/// Featurization from already-parsed records: the service's own work.
fn featurize(c: &mut Criterion) {
    let featurizer = Featurizer::default();
    // (budgets, items, samples, measurement time). A 1000×1000 request
    // takes tens of milliseconds (hundreds with distinct strings): few
    // samples of equal iteration counts keep the whole run short.
    let sizes = [
        (1, 1, 100, Duration::from_secs(3), SamplingMode::Auto),
        (50, 200, 50, Duration::from_secs(5), SamplingMode::Auto),
        (1000, 1000, 10, Duration::from_secs(8), SamplingMode::Flat),
    ];
    for (n_budgets, n_items, samples, time, mode) in sizes {
        let mut group = c.benchmark_group(format!("featurize_{n_budgets}x{n_items}"));
        group
            .sample_size(samples)
            .measurement_time(time)
            .warm_up_time(Duration::from_secs(1))
            .sampling_mode(mode)
            .throughput(Throughput::Elements((n_budgets * n_items) as u64));
        for data in [Data::Realistic, Data::Distinct] {
            let request = support::request(data, n_budgets, n_items);
            let check = featurizer.featurize(&request);
            assert_eq!(check.n_rows, n_budgets * n_items, "{:?}", check.errors);
            drop(check);
            group.bench_with_input(
                BenchmarkId::from_parameter(data.name()),
                &request,
                |b, request| b.iter(|| featurizer.featurize(black_box(request))),
            );
        }
        group.finish();
    }
}

/// `n` budgets and `n` line items whose vendors are `n` distinct names of 170
/// CJK characters each (510 bytes, just under `max_text_bytes`): deunicode
/// turns each into about 1 000 bytes of pinyin, so every one of the
/// 2n × n distinct vendor pairs compares two long texts.
fn long_cjk_request(n: usize) -> RawRequest {
    let mut request = support::request(support::Data::Distinct, n, n);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut name = || -> String {
        (0..170)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // CJK Unified Ideographs, U+4E00..U+9FFF.
                char::from_u32(0x4E00 + (state % 0x5200) as u32).expect("a CJK ideograph")
            })
            .collect()
    };
    for budget in &mut request.budgets {
        budget.travel_vendor_receipts = Some(name());
        budget.purchase_vendor_receipts = Some(name());
    }
    for item in &mut request.all_user_expense_lineitems {
        item.vendor_name_expense = Some(name());
    }
    request
}

/// Featurization of 100×100 pairs with distinct long CJK vendor names.
fn long_cjk(c: &mut Criterion) {
    let featurizer = Featurizer::default();
    let n = 100;
    let request = long_cjk_request(n);
    let check = featurizer.featurize(&request);
    assert_eq!(check.n_rows, n * n, "{:?}", check.errors);
    assert!(check.errors.is_empty(), "{:?}", check.errors);
    drop(check);
    let mut group = c.benchmark_group(format!("featurize_long_cjk_{n}x{n}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements((n * n) as u64));
    group.bench_with_input(BenchmarkId::from_parameter("distinct"), &request, |b, r| {
        b.iter(|| featurizer.featurize(black_box(r)))
    });
    group.finish();
}

/// Normalized vendor names: `n` short ones (a known vendor plus a distinct
/// word, 10 to 40 bytes) or `n` long ones (170 random CJK characters, about
/// 1 000 bytes of pinyin once normalized).
fn vendor_texts(long: bool, n: usize) -> Vec<String> {
    let normalizer = triad_features::text::TextNormalizer::new();
    let request = support::request(support::Data::Realistic, 1, n);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    request
        .all_user_expense_lineitems
        .iter()
        .map(|item| {
            let text: String = if long {
                (0..170)
                    .map(|_| char::from_u32(0x4E00 + (next() % 0x5200) as u32).expect("CJK"))
                    .collect()
            } else {
                let word: String = (0..5)
                    .map(|_| char::from(b'a' + (next() % 26) as u8))
                    .collect();
                let vendor = item.vendor_name_expense.as_deref().unwrap_or("taxi");
                format!("{vendor} {word}")
            };
            normalizer.normalize(&text).expect("letters left").cleaned
        })
        .collect()
}

/// The two character similarities of every pair of `n` vendor names, with
/// the bit-parallel code the featurizer runs and with `strsim`, which it
/// equals bit for bit (docs/architecture.md, "Hand-written or a crate").
fn similarities(c: &mut Criterion) {
    use triad_features::text::{SimilarityProfile, character_similarities};
    for (long, n, time) in [(false, 40, 3), (true, 12, 6)] {
        let texts = vendor_texts(long, n);
        let kind = if long { "long" } else { "short" };
        let mut group = c.benchmark_group(format!("similarities_{kind}_{n}x{n}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(time))
            .warm_up_time(Duration::from_secs(1))
            .throughput(Throughput::Elements((n * n) as u64));
        group.bench_function("bit_parallel", |b| {
            b.iter(|| {
                let profiles: Vec<_> = texts.iter().map(|t| SimilarityProfile::new(t)).collect();
                let mut sum = 0.0;
                for x in &profiles {
                    for y in &profiles {
                        let (jaro_winkler, levenshtein) = character_similarities(x, y);
                        sum += jaro_winkler + levenshtein;
                    }
                }
                black_box(sum)
            })
        });
        group.bench_function("strsim", |b| {
            b.iter(|| {
                let mut sum = 0.0;
                for x in &texts {
                    for y in &texts {
                        sum += strsim::jaro_winkler(x, y) + strsim::normalized_levenshtein(x, y);
                    }
                }
                black_box(sum)
            })
        });
        group.finish();
    }
}

/// JSON parse + featurize of the 1×1 seed request, for reference.
fn parse_and_featurize(c: &mut Criterion) {
    let featurizer = Featurizer::default();
    let limits = JsonLimits::default();
    let mut group = c.benchmark_group("parse_and_featurize_seed");
    group
        .sample_size(100)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(1));
    group.bench_function("1x1", |b| {
        b.iter(|| {
            let parsed = parse_request(black_box(SEED_REQUEST), &limits).expect("seed parses");
            featurizer.featurize_with_errors(&parsed.request, parsed.errors)
        })
    });
    group.finish();
}

// What `criterion_group!` and `criterion_main!` expand to, written out:
// the macro's `pub fn` has no doc and is reachable from nowhere.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    featurize(&mut criterion);
    long_cjk(&mut criterion);
    parse_and_featurize(&mut criterion);
    similarities(&mut criterion);
    criterion.final_summary();
}
