//! Fixture loading and tolerance checks shared by the reference tests.

use std::path::PathBuf;

use serde_json::Value;

/// Parses `tests/fixtures/<name>`.
pub(crate) fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad fixture {}: {e}", path.display()))
}

/// One fixture float: a number, null for NaN, or "inf" / "-inf".
pub(crate) fn num(v: &Value) -> f64 {
    match v {
        Value::Null => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        Value::Number(n) => n.as_f64().expect("fixture number fits f64"),
        other => panic!("not a fixture float: {other}"),
    }
}

/// A fixture array of floats.
pub(crate) fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(num)
        .collect()
}

/// `|actual - expected| <= tol * max(1, |expected|)`, with NaN matching NaN
/// and infinities matching themselves. Returns the scaled error (0 when
/// both are the same non-finite value, infinity on a NaN/finite mismatch).
pub(crate) fn scaled_error(actual: f64, expected: f64) -> f64 {
    if expected.is_nan() || actual.is_nan() {
        return if expected.is_nan() && actual.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if expected.is_infinite() || actual.is_infinite() {
        return if expected == actual {
            0.0
        } else {
            f64::INFINITY
        };
    }
    (actual - expected).abs() / expected.abs().max(1.0)
}

/// Asserts [`scaled_error`] is within `tol`.
pub(crate) fn assert_close(actual: f64, expected: f64, tol: f64, what: &str) {
    let err = scaled_error(actual, expected);
    assert!(
        err <= tol,
        "{what}: got {actual:e}, expected {expected:e} (scaled error {err:e} > {tol:e})"
    );
}

/// Asserts two series agree element-wise within `tol`.
pub(crate) fn assert_all_close(actual: &[f64], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert_close(a, e, tol, &format!("{what}[{i}]"));
    }
}
