//! Featurizer throughput: pairs per second for 1×1, 50×200 and 1000×1000
//! budgets × line items, on realistic data (vendors and categories repeat)
//! and on distinct data (every string unique), plus JSON parse + featurize
//! of the seed request for reference. Run with `cargo bench -p triad-features`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use triad_features::{Featurizer, JsonLimits, parse_request};

mod support;

use support::Data;

const SEED_REQUEST: &str = include_str!("../../../tests/fixtures/seed_request.json");

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

criterion_group!(benches, featurize, parse_and_featurize);
criterion_main!(benches);
