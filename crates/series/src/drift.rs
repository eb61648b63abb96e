//! Drift statistics between a reference sample and a live sample of one
//! feature: population stability index, two-sample Kolmogorov–Smirnov and
//! Wasserstein-1 distance, with the monitor's default thresholds.

use crate::error::{Result, SeriesError};
use crate::ks::{exact_two_sided, gcd, kolmogn_sf};
use crate::numeric::{Lerp, np_std, np_sum, quantile, sorted_finite};

/// Floor applied to each bin's share in the PSI so empty bins stay finite.
pub const PSI_EPSILON: f64 = 1e-4;
/// PSI above this is drift.
pub const PSI_DRIFT_THRESHOLD: f64 = 0.2;
/// A KS p-value below this is drift.
pub const KS_P_VALUE_THRESHOLD: f64 = 0.05;
/// A Wasserstein distance above this many reference standard deviations is
/// drift.
pub const NORMALIZED_WASSERSTEIN_THRESHOLD: f64 = 0.1;
/// [`KsMethod::Auto`] uses the exact p-value while both samples have at
/// most this many values (scipy's `MAX_AUTO_N`).
pub const MAX_AUTO_EXACT_N: usize = 10_000;

fn sample(values: &[f64], what: &'static str) -> Result<Vec<f64>> {
    let s = sorted_finite(values);
    if s.is_empty() {
        return Err(SeriesError::Empty { what });
    }
    Ok(s)
}

/// The reference's deciles, `np.quantile(reference, [0.1, ..., 0.9])` with
/// numpy's default linear interpolation, after dropping non-finite values.
/// These are the PSI bin edges.
///
/// # Errors
/// [`SeriesError::Empty`] if the reference has no finite value.
pub fn reference_deciles(reference: &[f64]) -> Result<[f64; 9]> {
    let r = sample(reference, "reference sample")?;
    Ok(deciles(&r))
}

fn deciles(sorted: &[f64]) -> [f64; 9] {
    let mut edges = [0.0; 9];
    for (k, e) in edges.iter_mut().enumerate() {
        *e = quantile(sorted, (k + 1) as f64 / 10.0, Lerp::Numpy);
    }
    edges
}

fn bin_shares(sorted: &[f64], edges: &[f64; 9]) -> [f64; 10] {
    let mut counts = [0usize; 10];
    for v in sorted {
        // np.searchsorted(edges, v, side="right"): edges at or below v.
        counts[edges.partition_point(|e| e <= v)] += 1;
    }
    counts.map(|c| (c as f64 / sorted.len() as f64).max(PSI_EPSILON))
}

/// Population stability index of `live` against `reference`, over ten bins
/// cut at the reference's deciles ([`reference_deciles`]).
///
/// A value `v` falls in bin `i` = the number of edges `<= v` (bins are
/// closed on the left: `[e_i, e_{i+1})`, open-ended at both extremes; tied
/// edges give empty bins). With `p_i`, `q_i` the reference and live shares,
/// each floored at [`PSI_EPSILON`] (not renormalised), the index is
/// `sum((q_i - p_i) * ln(q_i / p_i))`. Non-finite values are ignored.
///
/// # Errors
/// [`SeriesError::Empty`] if either sample has no finite value.
pub fn population_stability_index(reference: &[f64], live: &[f64]) -> Result<f64> {
    let r = sample(reference, "reference sample")?;
    let l = sample(live, "live sample")?;
    let edges = deciles(&r);
    let p = bin_shares(&r, &edges);
    let q = bin_shares(&l, &edges);
    let terms: Vec<f64> = p
        .iter()
        .zip(&q)
        .map(|(&p, &q)| (q - p) * (q / p).ln())
        .collect();
    Ok(np_sum(&terms))
}

/// How [`ks_2samp`] computes its p-value (scipy's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KsMethod {
    /// Exact while both samples have at most [`MAX_AUTO_EXACT_N`] values,
    /// asymptotic otherwise (scipy's default).
    Auto,
    /// The exact distribution of the two-sample statistic (falls back to
    /// `Asymp` where scipy does: a too large `lcm(n1, n2)` or a failed
    /// computation).
    Exact,
    /// scipy's `asymp`: the one-sample two-sided distribution `kstwo` with
    /// `n = round(n1 n2 / (n1 + n2))`.
    Asymp,
}

/// Result of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsTest {
    /// `max |F_reference(v) - F_live(v)|` over all observed `v`; with the
    /// exact method, rounded to a multiple of `1 / lcm(n1, n2)` as scipy does.
    pub statistic: f64,
    /// Two-sided p-value, in `[0, 1]` (NaN only for the asymptotic method
    /// with `n1 = n2 = 1`, where scipy's `n` rounds to 0).
    pub p_value: f64,
    /// The method actually used (never `Auto`).
    pub method: KsMethod,
}

/// Two-sample two-sided Kolmogorov–Smirnov test, as
/// `scipy.stats.ks_2samp(reference, live, method=...)` (scipy 1.17).
/// Non-finite values are ignored (scipy would propagate NaN).
///
/// # Errors
/// [`SeriesError::Empty`] if either sample has no finite value.
pub fn ks_2samp(reference: &[f64], live: &[f64], method: KsMethod) -> Result<KsTest> {
    let a = sample(reference, "reference sample")?;
    let b = sample(live, "live sample")?;
    let (n1, n2) = (a.len(), b.len());
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let mut max_s = f64::NEG_INFINITY;
    let mut min_s = f64::INFINITY;
    for v in a.iter().chain(&b) {
        let c1 = a.partition_point(|x| x <= v) as f64 / n1f;
        let c2 = b.partition_point(|x| x <= v) as f64 / n2f;
        let diff = c1 - c2;
        max_s = max_s.max(diff);
        min_s = min_s.min(diff);
    }
    let min_s = (-min_s).clamp(0.0, 1.0);
    let mut d = if min_s > max_s { min_s } else { max_s };

    let (n1u, n2u) = (n1 as u64, n2 as u64);
    let mut mode = match method {
        KsMethod::Auto if n1.max(n2) <= MAX_AUTO_EXACT_N => KsMethod::Exact,
        KsMethod::Auto => KsMethod::Asymp,
        KsMethod::Exact => {
            let g = gcd(n1u, n2u);
            if (n1u / g) as f64 >= f64::from(i32::MAX) / (n2u / g) as f64 {
                KsMethod::Asymp
            } else {
                KsMethod::Exact
            }
        }
        KsMethod::Asymp => KsMethod::Asymp,
    };
    let mut p = f64::NAN;
    if mode == KsMethod::Exact {
        let (rounded, prob) = exact_two_sided(n1u, n2u, d);
        d = rounded;
        match prob {
            Some(prob) => p = prob,
            None => mode = KsMethod::Asymp,
        }
    }
    if mode == KsMethod::Asymp {
        let (m, n) = (n1f.max(n2f), n1f.min(n2f));
        let en = m * n / (m + n);
        p = kolmogn_sf(en.round_ties_even() as u64, d);
    }
    Ok(KsTest {
        statistic: d,
        p_value: if p.is_nan() { p } else { p.clamp(0.0, 1.0) },
        method: mode,
    })
}

/// Wasserstein-1 (earth mover's) distance between the empirical
/// distributions of `u` and `v`, as `scipy.stats.wasserstein_distance(u, v)`:
/// the area between their CDFs, `sum |F_u - F_v| * gap` over consecutive
/// pooled values. In the samples' unit. Non-finite values are ignored.
///
/// # Errors
/// [`SeriesError::Empty`] if either sample has no finite value.
pub fn wasserstein_distance(u: &[f64], v: &[f64]) -> Result<f64> {
    let a = sample(u, "reference sample")?;
    let b = sample(v, "live sample")?;
    Ok(wasserstein_sorted(&a, &b))
}

fn wasserstein_sorted(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    all.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let terms: Vec<f64> = all
        .windows(2)
        .map(|w| {
            let ca = a.partition_point(|x| *x <= w[0]) as f64 / na;
            let cb = b.partition_point(|x| *x <= w[0]) as f64 / nb;
            (ca - cb).abs() * (w[1] - w[0])
        })
        .collect();
    np_sum(&terms)
}

/// [`wasserstein_distance`] divided by the reference's population standard
/// deviation (`np.std`, `ddof=0`), so it reads in reference standard
/// deviations whatever the feature's unit. A constant reference gives 0 if
/// the distance is 0 and `+infinity` otherwise.
///
/// # Errors
/// [`SeriesError::Empty`] if either sample has no finite value.
pub fn normalized_wasserstein(reference: &[f64], live: &[f64]) -> Result<f64> {
    let a = sample(reference, "reference sample")?;
    let b = sample(live, "live sample")?;
    Ok(normalize(wasserstein_sorted(&a, &b), np_std(&a)))
}

fn normalize(w: f64, std: f64) -> f64 {
    if std > 0.0 {
        w / std
    } else if w == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// All drift statistics for one feature, with the default verdicts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftReport {
    /// [`population_stability_index`].
    pub psi: f64,
    /// [`ks_2samp`] with [`KsMethod::Auto`].
    pub ks: KsTest,
    /// [`wasserstein_distance`].
    pub wasserstein: f64,
    /// [`normalized_wasserstein`].
    pub normalized_wasserstein: f64,
}

impl DriftReport {
    /// `psi > PSI_DRIFT_THRESHOLD`.
    #[must_use]
    pub fn psi_drifted(&self) -> bool {
        self.psi > PSI_DRIFT_THRESHOLD
    }

    /// `ks.p_value < KS_P_VALUE_THRESHOLD`.
    #[must_use]
    pub fn ks_drifted(&self) -> bool {
        self.ks.p_value < KS_P_VALUE_THRESHOLD
    }

    /// `normalized_wasserstein > NORMALIZED_WASSERSTEIN_THRESHOLD`.
    #[must_use]
    pub fn wasserstein_drifted(&self) -> bool {
        self.normalized_wasserstein > NORMALIZED_WASSERSTEIN_THRESHOLD
    }

    /// Whether any of the three statistics crosses its threshold.
    #[must_use]
    pub fn drifted(&self) -> bool {
        self.psi_drifted() || self.ks_drifted() || self.wasserstein_drifted()
    }
}

/// Computes every drift statistic of `live` against `reference`.
/// Non-finite values are ignored.
///
/// # Errors
/// [`SeriesError::Empty`] if either sample has no finite value.
pub fn drift_report(reference: &[f64], live: &[f64]) -> Result<DriftReport> {
    let a = sample(reference, "reference sample")?;
    let b = sample(live, "live sample")?;
    let wasserstein = wasserstein_sorted(&a, &b);
    Ok(DriftReport {
        psi: population_stability_index(&a, &b)?,
        ks: ks_2samp(&a, &b, KsMethod::Auto)?,
        wasserstein,
        normalized_wasserstein: normalize(wasserstein, np_std(&a)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_show_no_drift() {
        let x: Vec<f64> = (0..200).map(|i| f64::from(i % 37) * 0.5).collect();
        let r = drift_report(&x, &x).unwrap();
        assert_eq!(r.psi, 0.0);
        assert_eq!(r.ks.statistic, 0.0);
        assert_eq!(r.ks.p_value, 1.0);
        assert_eq!(r.wasserstein, 0.0);
        assert!(!r.drifted());
    }

    #[test]
    fn shifted_sample_drifts_on_every_statistic() {
        let x: Vec<f64> = (0..200).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| v + 100.0).collect();
        let r = drift_report(&x, &y).unwrap();
        assert!(
            r.psi_drifted() && r.ks_drifted() && r.wasserstein_drifted(),
            "{r:?}"
        );
        // A pure shift moves every quantile by 100; half of each sample
        // lies beyond the other.
        assert_eq!(r.wasserstein, 100.0);
        assert_eq!(r.ks.statistic, 0.5);
        assert!((r.normalized_wasserstein - 100.0 / 3333.25_f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn psi_by_hand() {
        // Reference 0..=9 has deciles 0.9, 1.8, ..., 8.1: one value per bin.
        let r: Vec<f64> = (0..10).map(f64::from).collect();
        let edges = reference_deciles(&r).unwrap();
        assert!((edges[0] - 0.9).abs() < 1e-15 && (edges[8] - 8.1).abs() < 1e-12);
        // Live: everything in the first bin.
        let l = vec![-1.0; 5];
        let expected = (1.0 - 0.1) * (1.0_f64 / 0.1).ln()
            + 9.0 * (PSI_EPSILON - 0.1) * (PSI_EPSILON / 0.1).ln();
        let psi = population_stability_index(&r, &l).unwrap();
        assert!((psi - expected).abs() < 1e-12, "{psi} vs {expected}");
    }

    #[test]
    fn nan_values_are_ignored() {
        let r = [1.0, 2.0, f64::NAN, 3.0];
        let l = [1.0, f64::INFINITY, 2.0, 3.0];
        assert_eq!(wasserstein_distance(&r, &l).unwrap(), 0.0);
        assert_eq!(ks_2samp(&r, &l, KsMethod::Auto).unwrap().statistic, 0.0);
        assert_eq!(population_stability_index(&r, &l).unwrap(), 0.0);
    }

    #[test]
    fn empty_samples_are_errors() {
        assert_eq!(
            ks_2samp(&[], &[1.0], KsMethod::Auto),
            Err(SeriesError::Empty {
                what: "reference sample"
            })
        );
        assert_eq!(
            wasserstein_distance(&[1.0], &[f64::NAN]),
            Err(SeriesError::Empty {
                what: "live sample"
            })
        );
        assert!(population_stability_index(&[f64::NAN], &[1.0]).is_err());
        assert!(drift_report(&[1.0], &[]).is_err());
        assert!(reference_deciles(&[]).is_err());
    }

    #[test]
    fn constant_reference_normalisation() {
        assert_eq!(normalized_wasserstein(&[2.0; 5], &[2.0; 3]).unwrap(), 0.0);
        assert_eq!(
            normalized_wasserstein(&[2.0; 5], &[3.0]).unwrap(),
            f64::INFINITY
        );
        let r = drift_report(&[2.0; 5], &[3.0]).unwrap();
        assert!(r.wasserstein_drifted());
    }

    #[test]
    fn single_values() {
        let t = ks_2samp(&[1.0], &[2.0], KsMethod::Auto).unwrap();
        assert_eq!(
            (t.statistic, t.p_value, t.method),
            (1.0, 1.0, KsMethod::Exact)
        );
        let t = ks_2samp(&[1.0], &[2.0], KsMethod::Asymp).unwrap();
        assert_eq!(t.statistic, 1.0);
        assert!(t.p_value.is_nan());
        assert_eq!(wasserstein_distance(&[1.0], &[2.5]).unwrap(), 1.5);
    }

    #[test]
    fn auto_switches_to_asymptotic_for_large_samples() {
        let x: Vec<f64> = (0..10_001).map(f64::from).collect();
        let y: Vec<f64> = (0..50).map(|i| f64::from(i) * 3.0).collect();
        assert_eq!(
            ks_2samp(&x, &y, KsMethod::Auto).unwrap().method,
            KsMethod::Asymp
        );
        assert_eq!(
            ks_2samp(&y, &y, KsMethod::Auto).unwrap().method,
            KsMethod::Exact
        );
    }
}
