//! Builds one synthetic request and featurizes it, for peak-memory and
//! profiling runs outside criterion:
//!
//! ```text
//! cargo build --release -p triad-features --example featurize_peak
//! /usr/bin/time -v target/release/examples/featurize_peak            # 1000×1000 realistic
//! target/release/examples/featurize_peak distinct 50 200 100         # data, budgets, items, repeats
//! ```

use std::time::{Duration, Instant};

use triad_features::Featurizer;

#[path = "../benches/support/mod.rs"]
mod support;

use support::Data;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = match args.first().map(String::as_str) {
        None | Some("realistic") => Data::Realistic,
        Some("distinct") => Data::Distinct,
        Some(other) => panic!("expected `realistic` or `distinct`, got {other:?}"),
    };
    let number = |index: usize, default: usize| {
        args.get(index).map_or(default, |text| {
            text.parse()
                .unwrap_or_else(|_| panic!("expected a count, got {text:?}"))
        })
    };
    let (n_budgets, n_items, repeats) = (number(1, 1000), number(2, 1000), number(3, 1));

    let request = support::request(data, n_budgets, n_items);
    let featurizer = Featurizer::default();
    let mut elapsed = Duration::ZERO;
    let mut finite = 0;
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        let matrix = featurizer.featurize(&request);
        elapsed += start.elapsed();
        finite += matrix.values.iter().filter(|v| v.is_finite()).count();
    }
    let elapsed = elapsed / repeats.max(1) as u32;
    let pairs = (n_budgets * n_items) as f64;
    println!(
        "{} {n_budgets}x{n_items}: {elapsed:?} per request, {:.2} M pairs/s ({finite} finite values)",
        data.name(),
        pairs / elapsed.as_secs_f64() / 1e6,
    );
}
