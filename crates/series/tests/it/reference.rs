//! Checks every statistic against the Python reference fixtures written by
//! `reference/generate.py` (pandas, numpy, statsmodels, ruptures, scipy).
//! Closed forms must agree within 1e-9, iterative fits and KS p-values
//! within 1e-6, change points exactly (errors scaled by `max(1, |expected|)`).

use serde_json::Value;
use triad_series::{
    KsMethod, default_penalty, ewma, ks_2samp, normalized_wasserstein, piecewise_constant,
    population_stability_index, reference_deciles, robust_fit, robust_trend, rolling_median,
    trend_line, wasserstein_distance,
};

use crate::support::{assert_all_close, assert_close, load, num, nums};

const CLOSED_FORM: f64 = 1e-9;
const ITERATIVE: f64 = 1e-6;

fn cases(fixture: &Value) -> &Vec<Value> {
    fixture["cases"].as_array().expect("fixture has cases")
}

fn name(case: &Value) -> &str {
    case["name"].as_str().expect("case has a name")
}

#[test]
fn ewma_matches_pandas() {
    let fixture = load("smoothing.json");
    let mut checked = 0;
    for case in cases(&fixture) {
        let values = nums(&case["values"]);
        for (span, expected) in case["ewma"].as_object().expect("ewma map") {
            let span: usize = span.parse().expect("span");
            let got = ewma(&values, span).expect("valid span");
            assert_all_close(
                &got,
                &nums(expected),
                CLOSED_FORM,
                &format!("ewma {} span {span}", name(case)),
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} ewma cases");
}

#[test]
fn rolling_median_matches_pandas() {
    let fixture = load("smoothing.json");
    let mut checked = 0;
    for case in cases(&fixture) {
        let values = nums(&case["values"]);
        for (window, expected) in case["rolling_median"].as_object().expect("median map") {
            let window: usize = window.parse().expect("window");
            let got = rolling_median(&values, window).expect("valid window");
            assert_all_close(
                &got,
                &nums(expected),
                CLOSED_FORM,
                &format!("rolling median {} window {window}", name(case)),
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} rolling-median cases");
}

#[test]
fn trend_line_matches_numpy_polyfit() {
    let fixture = load("trend.json");
    for case in cases(&fixture) {
        let (x, y) = (nums(&case["x"]), nums(&case["y"]));
        let line = trend_line(&x, &y).expect("fit");
        let what = format!("polyfit {}", name(case));
        assert_close(
            line.slope,
            num(&case["polyfit"]["slope"]),
            CLOSED_FORM,
            &what,
        );
        assert_close(
            line.intercept,
            num(&case["polyfit"]["intercept"]),
            CLOSED_FORM,
            &what,
        );
        assert_all_close(&line.fitted(&x), &nums(&case["fitted"]), CLOSED_FORM, &what);
    }
}

#[test]
fn robust_trend_matches_statsmodels_rlm() {
    let fixture = load("trend.json");
    let mut checked = 0;
    for case in cases(&fixture) {
        let Some(rlm) = case.get("rlm") else { continue };
        let (x, y) = (nums(&case["x"]), nums(&case["y"]));
        let line = robust_trend(&x, &y).expect("fit");
        let what = format!("rlm {}", name(case));
        assert_close(line.slope, num(&rlm["slope"]), ITERATIVE, &what);
        assert_close(line.intercept, num(&rlm["intercept"]), ITERATIVE, &what);
        let fit = robust_fit(&x, &y).expect("fit");
        assert_eq!(fit.line, line);
        assert_close(fit.scale, num(&rlm["scale"]), ITERATIVE, &what);
        // On a perfect fit statsmodels' residuals are rounding noise
        // (scale ~1e-15) and whether it runs one more fit depends on that
        // noise; elsewhere the iteration counts must agree.
        if num(&rlm["scale"]) > 1e-12 {
            assert_eq!(
                fit.iterations as u64,
                rlm["iterations"].as_u64().expect("iterations"),
                "{what}: iterations"
            );
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} rlm cases");
}

#[test]
fn robust_trend_differs_from_ols_where_outliers_exist() {
    // Guards against robust_trend silently returning the OLS line.
    let fixture = load("trend.json");
    let case = cases(&fixture)
        .iter()
        .find(|c| name(c) == "gross_outliers")
        .expect("gross_outliers case");
    let (x, y) = (nums(&case["x"]), nums(&case["y"]));
    let ols = trend_line(&x, &y).expect("ols");
    let rob = robust_trend(&x, &y).expect("rlm");
    assert!(
        (ols.intercept - rob.intercept).abs() > 1.0,
        "{ols:?} vs {rob:?}"
    );
}

#[test]
fn pelt_matches_ruptures_breakpoints_exactly() {
    let fixture = load("changepoints.json");
    let mut checked = 0;
    for case in cases(&fixture) {
        let values = nums(&case["values"]);
        for result in case["results"].as_array().expect("results") {
            let pen = num(&result["penalty"]);
            let expected: Vec<usize> = result["breakpoints"]
                .as_array()
                .expect("breakpoints")
                .iter()
                .map(|b| usize::try_from(b.as_u64().expect("index")).expect("usize"))
                .collect();
            let segments = piecewise_constant(&values, pen).expect("segmentation");
            let got: Vec<usize> = segments.iter().map(|s| s.end).collect();
            assert_eq!(got, expected, "{} with penalty {pen}", name(case));
            // Segments tile the series and carry their means.
            let mut start = 0;
            for s in &segments {
                assert_eq!(s.start, start);
                let seg = &values[s.start..s.end];
                let mean = seg.iter().sum::<f64>() / seg.len() as f64;
                assert_close(s.mean, mean, CLOSED_FORM, "segment mean");
                start = s.end;
            }
            checked += 1;
        }
    }
    assert!(checked >= 80, "only {checked} pelt cases");
}

#[test]
fn default_penalty_matches_reference_formula() {
    let fixture = load("changepoints.json");
    for case in cases(&fixture) {
        let values = nums(&case["values"]);
        let got = default_penalty(&values).expect("penalty");
        assert_close(
            got,
            num(&case["default_penalty"]),
            CLOSED_FORM,
            &format!("default penalty {}", name(case)),
        );
    }
}

#[test]
fn drift_statistics_match_numpy_and_scipy() {
    let fixture = load("drift.json");
    for case in cases(&fixture) {
        let what = name(case);
        let (r, l) = (nums(&case["reference"]), nums(&case["live"]));
        let deciles = reference_deciles(&r).expect("deciles");
        assert_all_close(&deciles, &nums(&case["deciles"]), CLOSED_FORM, what);
        let psi = population_stability_index(&r, &l).expect("psi");
        assert_close(psi, num(&case["psi"]), CLOSED_FORM, &format!("psi {what}"));
        let w = wasserstein_distance(&r, &l).expect("wasserstein");
        assert_close(
            w,
            num(&case["wasserstein"]),
            CLOSED_FORM,
            &format!("w1 {what}"),
        );
        let nw = normalized_wasserstein(&r, &l).expect("normalized");
        assert_close(
            nw,
            num(&case["normalized_wasserstein"]),
            CLOSED_FORM,
            &format!("normalized w1 {what}"),
        );
    }
}

#[test]
fn ks_matches_scipy_auto_and_asymp() {
    let fixture = load("drift.json");
    let mut methods = Vec::new();
    for case in cases(&fixture) {
        let what = name(case);
        let (r, l) = (nums(&case["reference"]), nums(&case["live"]));
        let auto = ks_2samp(&r, &l, KsMethod::Auto).expect("ks auto");
        let expected_method = match case["ks_auto"]["method"].as_str() {
            Some("exact") => KsMethod::Exact,
            Some("asymp") => KsMethod::Asymp,
            other => panic!("unknown method {other:?}"),
        };
        assert_eq!(auto.method, expected_method, "{what}");
        methods.push(auto.method);
        assert_close(
            auto.statistic,
            num(&case["ks_auto"]["statistic"]),
            CLOSED_FORM,
            &format!("ks auto statistic {what}"),
        );
        assert_close(
            auto.p_value,
            num(&case["ks_auto"]["p_value"]),
            ITERATIVE,
            &format!("ks auto p {what}"),
        );
        let asymp = ks_2samp(&r, &l, KsMethod::Asymp).expect("ks asymp");
        assert_eq!(asymp.method, KsMethod::Asymp);
        assert_close(
            asymp.statistic,
            num(&case["ks_asymp"]["statistic"]),
            CLOSED_FORM,
            &format!("ks asymp statistic {what}"),
        );
        assert_close(
            asymp.p_value,
            num(&case["ks_asymp"]["p_value"]),
            ITERATIVE,
            &format!("ks asymp p {what}"),
        );
    }
    assert!(methods.contains(&KsMethod::Exact) && methods.contains(&KsMethod::Asymp));
}
