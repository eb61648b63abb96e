//! Small numeric kernels that reproduce numpy's floating-point behaviour
//! closely enough for bit-for-bit agreement where the statistics need it
//! (segment costs compared for ties, quantile bin edges), and the one
//! median and quantile of the workspace.

use std::cmp::Ordering;

/// Sum in numpy's order: the pairwise summation `np.add.reduce` uses for a
/// contiguous float64 array (8-way unrolled blocks of at most 128 values,
/// split in halves above that).
pub(crate) fn np_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
        let whole = n - n % 8;
        let mut i = 8;
        while i < whole {
            for (k, acc) in r.iter_mut().enumerate() {
                *acc += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        np_sum(&a[..n2]) + np_sum(&a[n2..])
    }
}

/// `a.var() * len(a)` as numpy computes it: two passes, pairwise sums.
/// `scratch` is reused between calls to avoid allocating.
pub(crate) fn np_sum_sq_dev(a: &[f64], scratch: &mut Vec<f64>) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    let m = a.len() as f64;
    let mean = np_sum(a) / m;
    scratch.clear();
    scratch.extend(a.iter().map(|&x| {
        let d = x - mean;
        d * d
    }));
    (np_sum(scratch) / m) * m
}

/// Total order used for sorting finite samples.
pub(crate) fn cmp_f64(a: &f64, b: &f64) -> Ordering {
    a.total_cmp(b)
}

/// The finite values of `values`, in order.
pub(crate) fn finite(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| v.is_finite()).collect()
}

/// The finite values of `values`, sorted ascending.
pub(crate) fn sorted_finite(values: &[f64]) -> Vec<f64> {
    let mut v = finite(values);
    v.sort_by(cmp_f64);
    v
}

/// Median of an already sorted, non-empty slice, as `np.median`: the middle
/// value, or the mean of the two middle values.
pub(crate) fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The median of `values`, in any order, as `np.median`: the middle value
/// after sorting, or the mean of the two middle values; NaN when empty.
/// Callers that want only finite values filter them first.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(cmp_f64);
    median_sorted(&v)
}

/// How [`quantile`] interpolates at fraction `t` between the two closest
/// ranks `a <= b`. Both are the same linear rule (Hyndman and Fan type 7);
/// they round differently, so for some `t >= 0.5` they differ in the last
/// bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lerp {
    /// numpy's: `a + (b - a) t` below `t = 0.5`, `b - (b - a) (1 - t)` from
    /// there on, bit for bit `np.quantile(values, q)` (`method="linear"`).
    Numpy,
    /// `a + (b - a) t` for every `t`: what the monitor's business-event
    /// summaries (`QueryEvents`' median and 90th percentile) answer.
    FromLower,
}

/// The `q` quantile (`0 <= q <= 1`) of ascending `sorted` values by linear
/// interpolation between the closest ranks, at position `(n - 1) q`; `q`
/// outside `[0, 1]` gives the first or last value, an empty slice NaN.
pub fn quantile(sorted: &[f64], q: f64, lerp: Lerp) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let virtual_index = (n - 1) as f64 * q;
    if virtual_index >= (n - 1) as f64 {
        return sorted[n - 1];
    }
    if virtual_index < 0.0 {
        return sorted[0];
    }
    let previous = virtual_index.floor();
    let gamma = virtual_index - previous;
    let i = previous as usize;
    let (a, b) = (sorted[i], sorted[i + 1]);
    let diff = b - a;
    match lerp {
        Lerp::Numpy if gamma >= 0.5 => b - diff * (1.0 - gamma),
        Lerp::Numpy | Lerp::FromLower => a + diff * gamma,
    }
}

/// Population standard deviation (`np.std`, `ddof=0`).
pub(crate) fn np_std(a: &[f64]) -> f64 {
    let mut scratch = Vec::with_capacity(a.len());
    if a.is_empty() {
        return f64::NAN;
    }
    (np_sum_sq_dev(a, &mut scratch) / a.len() as f64).sqrt()
}

/// `x * 2^e`, stepping so intermediate powers stay normal.
pub(crate) fn ldexp(mut x: f64, mut e: i64) -> f64 {
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    // `e` is now within [-1000, 1000], so the cast cannot truncate.
    x * 2f64.powi(e as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_agrees_with_plain_sum_on_exact_values() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(np_sum(&v), 499_500.0);
        assert_eq!(np_sum(&[]), 0.0);
        assert_eq!(np_sum(&[1.5]), 1.5);
    }

    #[test]
    fn pairwise_sum_differs_from_sequential_order() {
        // 0.1 repeated: the pairwise tree rounds differently from a loop.
        let v = vec![0.1; 1000];
        let sequential: f64 = v.iter().sum();
        assert_ne!(np_sum(&v), sequential);
        assert!((np_sum(&v) - 100.0).abs() < 1e-12);
    }

    #[test]
    fn quantile_matches_numpy_linear() {
        let s = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile(&s, 0.5, Lerp::Numpy), 3.0);
        assert_eq!(quantile(&s, 1.0, Lerp::Numpy), 8.0);
        assert_eq!(quantile(&s, 0.0, Lerp::Numpy), 1.0);
        assert!((quantile(&s, 0.1, Lerp::Numpy) - 1.3).abs() < 1e-15);
        assert_eq!(quantile(&[5.0], 0.3, Lerp::Numpy), 5.0);
        assert!(quantile(&[], 0.3, Lerp::Numpy).is_nan());
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let q = |sorted: &[f64], q| quantile(sorted, q, Lerp::FromLower);
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(q(&v, 0.5), 3.0);
        // numpy.quantile([1, 2, 3, 4, 10], 0.9) == 7.6
        assert!((q(&v, 0.9) - 7.6).abs() < 1e-12);
        assert_eq!(q(&[5.0], 0.9), 5.0);
        assert!(q(&[], 0.5).is_nan());
        assert_eq!(q(&[1.0, 2.0], 0.5), 1.5);
    }

    #[test]
    fn the_two_interpolations_differ_only_in_rounding() {
        // numpy's rounding and the plain one part in the last bits here.
        let v = [11.9, 29.6];
        let (numpy, from_lower) = (
            quantile(&v, 0.9, Lerp::Numpy),
            quantile(&v, 0.9, Lerp::FromLower),
        );
        assert_ne!(numpy, from_lower);
        assert!((numpy - from_lower).abs() < 1e-14);
        // Below t = 0.5 they are one formula.
        assert_eq!(
            quantile(&v, 0.3, Lerp::Numpy),
            quantile(&v, 0.3, Lerp::FromLower)
        );
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn ldexp_scales_by_powers_of_two() {
        assert_eq!(ldexp(1.0, 3), 8.0);
        assert_eq!(ldexp(3.0, -1), 1.5);
        assert_eq!(ldexp(1.0, 1023), f64::MAX / (2.0 - f64::EPSILON));
        assert_eq!(ldexp(1.0, -1074), f64::from_bits(1));
    }
}
