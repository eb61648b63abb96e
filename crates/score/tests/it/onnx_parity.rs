//! Parity of the shipped ONNX model `models/out_of_policy/1` run by tract
//! with scikit-learn and onnxruntime, on the held-out rows that
//! `models/train_out_of_policy.py` wrote to
//! `tests/fixtures/out_of_policy_parity.json` (null = NaN).
//!
//! The training script snaps every split threshold to a float32 value (which
//! changes no scikit-learn prediction on float32 inputs), so tract's float32
//! comparisons take the same branches as scikit-learn's float64 ones for any
//! input; what remains is float32 vs float64 summation of 100 leaf values
//! and the sigmoid, far below the tolerance.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use triad_features::FeatureSchema;
use triad_score::model::onnx::{self, OnnxModel, TreeKernel};
use triad_score::model::{LoadedModel, Model, ModelError, ModelKind};

/// Largest allowed difference between tract's probability and either
/// reference.
const TOLERANCE: f64 = 1e-5;

#[derive(Debug, Deserialize)]
struct Fixture {
    model: String,
    version: String,
    features: Vec<String>,
    rows: Vec<FixtureRow>,
}

#[derive(Debug, Deserialize)]
struct FixtureRow {
    budget_id: String,
    itemization_id: String,
    input: Vec<Option<f64>>,
    sklearn: f64,
    onnxruntime: f64,
}

fn fixture() -> Fixture {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/out_of_policy_parity.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn model_dir(fixture: &Fixture) -> PathBuf {
    triad_test_support::shipped_models()
        .join(&fixture.model)
        .join(&fixture.version)
}

fn load(fixture: &Fixture) -> LoadedModel {
    LoadedModel::load(
        &model_dir(fixture),
        &fixture.version,
        FeatureSchema::current(),
    )
    .unwrap_or_else(|e| panic!("loading {}: {e}", model_dir(fixture).display()))
}

/// The fixture's rows as one row-major f32 matrix in the model's input order.
fn input_matrix(fixture: &Fixture) -> Vec<f32> {
    fixture
        .rows
        .iter()
        .flat_map(|row| {
            assert_eq!(row.input.len(), fixture.features.len());
            row.input
                .iter()
                .map(|value| value.map_or(f32::NAN, |v| v as f32))
        })
        .collect()
}

#[test]
fn tract_matches_sklearn_and_onnxruntime_on_every_fixture_row() {
    let fixture = fixture();
    let loaded = load(&fixture);
    assert_eq!(loaded.meta.kind, ModelKind::Onnx);
    assert_eq!(loaded.meta.features, fixture.features);
    assert!(
        fixture.rows.len() >= 40,
        "expected about 50 fixture rows, got {}",
        fixture.rows.len()
    );
    assert!(
        fixture
            .rows
            .iter()
            .any(|row| row.input.iter().any(Option::is_none)),
        "expected fixture rows with missing inputs"
    );

    let input = input_matrix(&fixture);
    let mut out = Vec::new();
    loaded
        .model
        .predict(&input, fixture.rows.len(), &mut out)
        .unwrap();
    assert_eq!(out.len(), fixture.rows.len());

    let mut failures = Vec::new();
    let mut worst = [0.0f64; 2];
    for (row, &tract) in fixture.rows.iter().zip(&out) {
        let tract = f64::from(tract);
        for (k, (reference, expected)) in [
            ("scikit-learn", row.sklearn),
            ("onnxruntime", row.onnxruntime),
        ]
        .into_iter()
        .enumerate()
        {
            let diff = (tract - expected).abs();
            worst[k] = worst[k].max(diff);
            if diff.is_nan() || diff > TOLERANCE {
                failures.push(format!(
                    "pair ({}, {}): tract {tract} vs {reference} {expected} (diff {diff:e})",
                    row.budget_id, row.itemization_id
                ));
            }
        }
    }
    eprintln!(
        "tract vs scikit-learn: max |diff| {:e}; vs onnxruntime: {:e}",
        worst[0], worst[1]
    );
    assert!(
        failures.is_empty(),
        "expected tract within {TOLERANCE:e} of both references, got:\n{}",
        failures.join("\n")
    );
}

#[test]
fn native_tree_kernel_matches_tracts_own_bit_for_bit() {
    let fixture = fixture();
    let path = model_dir(&fixture).join(onnx::MODEL_FILE);
    let n_inputs = fixture.features.len();
    let native = OnnxModel::load_with(&path, n_inputs, TreeKernel::Native).unwrap();
    let stock = OnnxModel::load_with(&path, n_inputs, TreeKernel::Tract).unwrap();
    assert_eq!(native.native_tree_kernels(), 1);
    assert_eq!(stock.native_tree_kernels(), 0);

    // The fixture rows; each with one more input missing; scaled by 1.5
    // (other branches); and a row of nothing but NaN.
    let rows = input_matrix(&fixture);
    let mut input = rows.clone();
    for (i, row) in rows.chunks_exact(n_inputs).enumerate() {
        let mut row = row.to_vec();
        row[i % n_inputs] = f32::NAN;
        input.extend(row);
    }
    input.extend(rows.iter().map(|v| v * 1.5));
    input.extend(vec![f32::NAN; n_inputs]);
    let n_rows = input.len() / n_inputs;

    let (mut a, mut b) = (Vec::new(), Vec::new());
    native.predict(&input, n_rows, &mut a).unwrap();
    stock.predict(&input, n_rows, &mut b).unwrap();
    let a_bits: Vec<u32> = a.iter().map(|v| v.to_bits()).collect();
    let b_bits: Vec<u32> = b.iter().map(|v| v.to_bits()).collect();
    assert_eq!(a_bits, b_bits);
}

#[test]
fn batch_size_does_not_change_a_row_score() {
    let fixture = fixture();
    let loaded = load(&fixture);
    let n_inputs = fixture.features.len();
    let input = input_matrix(&fixture);
    let mut batch = Vec::new();
    loaded
        .model
        .predict(&input, fixture.rows.len(), &mut batch)
        .unwrap();
    let mut one = Vec::new();
    for (i, row) in input.chunks_exact(n_inputs).enumerate() {
        loaded.model.predict(row, 1, &mut one).unwrap();
        assert_eq!(one, [batch[i]], "row {i} alone vs in the batch");
    }
}

#[test]
fn full_width_matrix_gathers_the_model_columns() {
    let fixture = fixture();
    let loaded = load(&fixture);
    let schema = FeatureSchema::current();
    let n_cols = schema.feature_names.len();
    assert!(!loaded.reads_whole_rows);

    let input = input_matrix(&fixture);
    let mut direct = Vec::new();
    loaded
        .model
        .predict(&input, fixture.rows.len(), &mut direct)
        .unwrap();

    // Columns the model does not read hold a value it must ignore.
    let mut matrix = vec![123.0f32; fixture.rows.len() * n_cols];
    for (r, row) in input.chunks_exact(fixture.features.len()).enumerate() {
        for (&value, &column) in row.iter().zip(&loaded.columns) {
            matrix[r * n_cols + column] = value;
        }
    }
    let mut gathered = Vec::new();
    loaded
        .predict_matrix(&matrix, fixture.rows.len(), n_cols, &mut gathered)
        .unwrap();
    assert_eq!(gathered, direct);
}

#[test]
fn zero_rows_give_no_scores() {
    let fixture = fixture();
    let loaded = load(&fixture);
    let mut out = vec![0.5f32; 3];
    loaded.model.predict(&[], 0, &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn wrong_input_length_is_a_clear_error() {
    let fixture = fixture();
    let loaded = load(&fixture);
    let mut out = Vec::new();
    let error = loaded.model.predict(&[0.0; 39], 2, &mut out).unwrap_err();
    assert!(
        matches!(error, ModelError::Run { rows: 2, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "model failed on a batch of 2 rows: expected 40 values (2 rows x 20 inputs), got 39"
    );
}

#[test]
fn load_errors_name_the_file() {
    let fixture = fixture();
    let path = model_dir(&fixture).join(onnx::MODEL_FILE);

    // The graph reads 20 columns; 35 cannot be typed through it.
    let error = OnnxModel::load(&path, 35).unwrap_err();
    assert!(matches!(error, ModelError::Invalid { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.ends_with(
            "expected an onnx graph input of 35 columns (the features in model.toml), got 20"
        ),
        "{message}"
    );

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join(onnx::MODEL_FILE);
    std::fs::write(&garbage, b"not an onnx file").unwrap();
    let error = OnnxModel::load(&garbage, 20).unwrap_err();
    assert!(matches!(error, ModelError::Invalid { .. }), "{error:?}");
    assert!(
        error.to_string().contains("cannot parse the onnx graph"),
        "{error}"
    );

    let missing = dir.path().join("missing.onnx");
    let error = OnnxModel::load(&missing, 20).unwrap_err();
    assert!(matches!(error, ModelError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("missing.onnx"), "{error}");
}
