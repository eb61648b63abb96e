//! No input makes a statistic panic: empty, length 1-3, constant, NaN-only,
//! infinite and extreme values all give a value or a clear error.

use proptest::prelude::*;
use triad_series::{
    DEFAULT_ANOMALY_K, KsMethod, SeriesError, default_penalty, drift_report, ewma, ewma_anomalies,
    ks_2samp, normalized_wasserstein, piecewise_constant, population_stability_index,
    reference_deciles, robust_fit, rolling_median, trend_line, wasserstein_distance,
};

/// Any float, including NaN, infinities, subnormals and extremes.
fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e6..1e6_f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => prop::num::f64::ANY,
    ]
}

fn finite_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e3..1e3_f64,
        1 => (0..5).prop_map(f64::from),
        1 => prop::num::f64::NORMAL,
        1 => Just(f64::MAX),
        1 => Just(f64::MIN_POSITIVE),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn smoothing_never_panics(values in prop::collection::vec(any_value(), 0..40), span in 1usize..25) {
        let e = ewma(&values, span).unwrap();
        prop_assert_eq!(e.len(), values.len());
        let m = rolling_median(&values, span).unwrap();
        prop_assert_eq!(m.len(), values.len());
        for (out, window_has_finite) in m.iter().zip((0..values.len()).map(|t| {
            values[t.saturating_sub(span - 1)..=t].iter().any(|v| v.is_finite())
        })) {
            prop_assert_eq!(out.is_nan(), !window_has_finite);
        }
        let _ = ewma_anomalies(&values, span, DEFAULT_ANOMALY_K).unwrap();
    }

    #[test]
    fn trends_never_panic(pairs in prop::collection::vec((any_value(), any_value()), 0..30)) {
        let (x, y): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        let _ = trend_line(&x, &y);
        let _ = robust_fit(&x, &y);
    }

    #[test]
    fn segmentation_tiles_any_finite_series(
        values in prop::collection::vec(finite_value(), 0..40),
        pen in prop_oneof![Just(0.0), 0.0..100.0_f64],
    ) {
        let segments = piecewise_constant(&values, pen).unwrap();
        let mut start = 0;
        for s in &segments {
            prop_assert_eq!(s.start, start);
            prop_assert!(s.end > s.start);
            start = s.end;
        }
        prop_assert_eq!(start, values.len());
        let _ = default_penalty(&values).unwrap();
    }

    #[test]
    fn drift_never_panics(
        reference in prop::collection::vec(any_value(), 0..60),
        live in prop::collection::vec(any_value(), 0..60),
    ) {
        let finite = |v: &[f64]| v.iter().any(|x| x.is_finite());
        let both = finite(&reference) && finite(&live);
        prop_assert_eq!(population_stability_index(&reference, &live).is_ok(), both);
        prop_assert_eq!(wasserstein_distance(&reference, &live).is_ok(), both);
        prop_assert_eq!(normalized_wasserstein(&reference, &live).is_ok(), both);
        prop_assert_eq!(drift_report(&reference, &live).is_ok(), both);
        prop_assert_eq!(reference_deciles(&reference).is_ok(), finite(&reference));
        for method in [KsMethod::Auto, KsMethod::Exact, KsMethod::Asymp] {
            if let Ok(t) = ks_2samp(&reference, &live, method) {
                prop_assert!((0.0..=1.0).contains(&t.statistic));
                prop_assert!(t.p_value.is_nan() || (0.0..=1.0).contains(&t.p_value));
            }
        }
        if let Ok(psi) = population_stability_index(&reference, &live) {
            prop_assert!(psi >= 0.0 || psi.is_nan());
        }
    }
}

#[test]
fn nan_only_inputs() {
    let nan = [f64::NAN; 4];
    assert!(ewma(&nan, 3).unwrap().iter().all(|v| v.is_nan()));
    assert!(rolling_median(&nan, 3).unwrap().iter().all(|v| v.is_nan()));
    assert!(ewma_anomalies(&nan, 3, 3.0).unwrap().is_empty());
    assert!(matches!(
        trend_line(&nan, &nan),
        Err(SeriesError::TooShort { got: 0, .. })
    ));
    assert_eq!(
        population_stability_index(&nan, &[1.0]),
        Err(SeriesError::Empty {
            what: "reference sample"
        })
    );
    assert!(matches!(
        piecewise_constant(&nan, 1.0),
        Err(SeriesError::NonFinite { index: 0, .. })
    ));
}

#[test]
fn errors_read_as_expected_versus_got() {
    let e = trend_line(&[1.0], &[1.0]).unwrap_err().to_string();
    assert_eq!(
        e,
        "trend input too short: expected at least 2 finite points, got 1"
    );
    let e = piecewise_constant(&[1.0], -2.0).unwrap_err().to_string();
    assert_eq!(
        e,
        "invalid penalty: expected a finite value of at least 0, got -2"
    );
    let e = ewma(&[1.0], 0).unwrap_err().to_string();
    assert_eq!(e, "invalid span: expected at least 1, got 0");
}

#[test]
fn large_exact_ks_is_fast_enough_and_valid() {
    // The exact path at scipy's size limit, unequal sizes (lattice method).
    let a: Vec<f64> = (0..10_000).map(|i| f64::from(i) * 0.37 % 101.0).collect();
    let b: Vec<f64> = (0..9_999).map(|i| f64::from(i) * 0.41 % 103.0).collect();
    let t = ks_2samp(&a, &b, KsMethod::Auto).unwrap();
    assert_eq!(t.method, KsMethod::Exact);
    assert!((0.0..=1.0).contains(&t.p_value));
}
