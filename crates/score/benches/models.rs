//! Model throughput, rows per second on one thread: (a) the shipped ONNX
//! model `models/out_of_policy/1` through tract on 1, 1 000 and 100 000
//! rows (the parity fixture's 50 held-out rows repeated, so the trees take
//! realistic paths and NaN branches), to compare with onnxruntime's figures
//! in `models/out_of_policy/onnxruntime_timing.json`; (b) the native
//! logistic kernel over 35 inputs with a few NaNs on 1, 1 000 and 1 000 000
//! rows. `onnx_out_of_policy_tract_stock_kernel` runs the same plan with
//! tract's own tree-ensemble kernel (see `triad_score::model::onnx`), on 1
//! and 1 000 rows only: it is some 150 times slower.
//! (c) the same logistic rows explained (`explain`: per-feature
//! contributions, one vector per row) on 1, 1 000 and 100 000 rows.
//! Run with `cargo bench -p triad-score --bench models`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use serde::Deserialize;
use triad_features::FeatureSchema;
use triad_score::model::logistic::LogisticModel;
use triad_score::model::onnx::{self, OnnxModel, TreeKernel};
use triad_score::model::{LoadedModel, Model};

#[derive(Deserialize)]
struct Fixture {
    model: String,
    version: String,
    rows: Vec<FixtureRow>,
}

#[derive(Deserialize)]
struct FixtureRow {
    input: Vec<Option<f64>>,
}

/// The ONNX model, its directory and its fixture rows (row-major, model
/// input order).
fn onnx_model() -> (LoadedModel, std::path::PathBuf, Vec<f32>) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = manifest.join("tests/fixtures/out_of_policy_parity.json");
    let text = std::fs::read_to_string(&path).expect("parity fixture");
    let fixture: Fixture = serde_json::from_str(&text).expect("parity fixture json");
    let dir = manifest
        .join("../../models")
        .join(&fixture.model)
        .join(&fixture.version);
    let model = LoadedModel::load(&dir, &fixture.version, FeatureSchema::current())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let rows = fixture
        .rows
        .iter()
        .flat_map(|row| row.input.iter().map(|v| v.map_or(f32::NAN, |v| v as f32)))
        .collect();
    (model, dir, rows)
}

/// `n_rows` rows made of `rows` repeated.
fn repeat_rows(rows: &[f32], n_inputs: usize, n_rows: usize) -> Vec<f32> {
    rows.iter()
        .copied()
        .cycle()
        .take(n_rows * n_inputs)
        .collect()
}

fn onnx_tract(c: &mut Criterion) {
    let (loaded, dir, rows) = onnx_model();
    let n_inputs = loaded.meta.features.len();
    let stock = OnnxModel::load_with(&dir.join(onnx::MODEL_FILE), n_inputs, TreeKernel::Tract)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    // (model, group, rows, samples, measurement time)
    let native: &dyn Model = loaded.model.as_ref();
    let runs = [
        (
            native,
            "onnx_out_of_policy_tract",
            1,
            100,
            Duration::from_secs(3),
        ),
        (
            native,
            "onnx_out_of_policy_tract",
            1_000,
            50,
            Duration::from_secs(5),
        ),
        (
            native,
            "onnx_out_of_policy_tract",
            100_000,
            10,
            Duration::from_secs(10),
        ),
        (
            &stock,
            "onnx_out_of_policy_tract_stock_kernel",
            1,
            20,
            Duration::from_secs(3),
        ),
        (
            &stock,
            "onnx_out_of_policy_tract_stock_kernel",
            1_000,
            10,
            Duration::from_secs(5),
        ),
    ];
    for (model, name, n_rows, samples, time) in runs {
        let mut group = c.benchmark_group(name);
        let input = repeat_rows(&rows, n_inputs, n_rows);
        let mut out = Vec::with_capacity(n_rows);
        model.predict(&input, n_rows, &mut out).unwrap();
        assert_eq!(out.len(), n_rows);
        group
            .sample_size(samples)
            .measurement_time(time)
            .warm_up_time(Duration::from_secs(1))
            .throughput(Throughput::Elements(n_rows as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n_rows), &input, |b, input| {
            b.iter(|| {
                model.predict(black_box(input), n_rows, &mut out).unwrap();
                black_box(&out);
            })
        });
        group.finish();
    }
}

/// Number of logistic inputs: the whole feature matrix.
const N_LOGISTIC_INPUTS: usize = triad_features::N_FEATURES;

/// A deterministic 35-input logistic model.
fn logistic_model() -> LogisticModel {
    let weights = (0..N_LOGISTIC_INPUTS)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.1)
        .collect();
    let impute = (0..N_LOGISTIC_INPUTS).map(|i| i as f32 * 0.01).collect();
    let means = (0..N_LOGISTIC_INPUTS)
        .map(|i| i as f32 * 0.02 - 0.3)
        .collect();
    LogisticModel::new(-0.5, weights, impute).with_reference_means(means)
}

/// Deterministic inputs in [-2, 2) with one value in 16 missing (NaN).
fn logistic_rows(n_rows: usize) -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..n_rows * N_LOGISTIC_INPUTS)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let bits = (state >> 40) as u32;
            if bits.is_multiple_of(16) {
                f32::NAN
            } else {
                (bits as f32 / (1u32 << 24) as f32) * 4.0 - 2.0
            }
        })
        .collect()
}

fn logistic(c: &mut Criterion) {
    let model = logistic_model();
    let sizes = [
        (1, 100, Duration::from_secs(3)),
        (1_000, 100, Duration::from_secs(3)),
        (1_000_000, 20, Duration::from_secs(10)),
    ];
    let mut group = c.benchmark_group("logistic_35_inputs");
    for (n_rows, samples, time) in sizes {
        let input = logistic_rows(n_rows);
        let mut out = Vec::with_capacity(n_rows);
        model.predict(&input, n_rows, &mut out).unwrap();
        assert_eq!(out.len(), n_rows);
        group
            .sample_size(samples)
            .measurement_time(time)
            .warm_up_time(Duration::from_secs(1))
            .throughput(Throughput::Elements(n_rows as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n_rows), &input, |b, input| {
            b.iter(|| {
                model.predict(black_box(input), n_rows, &mut out).unwrap();
                black_box(&out);
            })
        });
    }
    group.finish();
}

/// The explanation of every row as the engine builds it with `explain`
/// (one contribution vector per row, allocated), on the same rows.
fn logistic_explained(c: &mut Criterion) {
    let model = logistic_model();
    let mut group = c.benchmark_group("logistic_35_inputs_explained");
    for (n_rows, samples, time) in [
        (1, 100, Duration::from_secs(3)),
        (1_000, 100, Duration::from_secs(3)),
        (100_000, 20, Duration::from_secs(10)),
    ] {
        let input = logistic_rows(n_rows);
        let n_inputs = input.len() / n_rows;
        group
            .sample_size(samples)
            .measurement_time(time)
            .warm_up_time(Duration::from_secs(1))
            .throughput(Throughput::Elements(n_rows as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n_rows), &input, |b, input| {
            b.iter(|| {
                let explained: Vec<(f32, f32, Vec<f32>)> = input
                    .chunks_exact(n_inputs)
                    .map(|row| {
                        let mut contributions = Vec::with_capacity(n_inputs);
                        let (intercept, logit) =
                            model.explain_row(black_box(row), &mut contributions);
                        (intercept, logit, contributions)
                    })
                    .collect();
                black_box(explained);
            })
        });
    }
    group.finish();
}

// What `criterion_group!` and `criterion_main!` expand to, written out:
// the group function they generate is `pub` and has no doc.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    onnx_tract(&mut criterion);
    logistic(&mut criterion);
    logistic_explained(&mut criterion);
    Criterion::default().configure_from_args().final_summary();
}
