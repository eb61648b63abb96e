//! Piecewise-constant segmentation by PELT with the L2 cost, reproducing
//! ruptures' `Pelt(model="l2", min_size=2, jump=1)` decision for decision.

use crate::anomaly::robust_sigma;
use crate::error::{Result, SeriesError};
use crate::numeric::{np_std, np_sum, np_sum_sq_dev};

/// Minimum segment length (ruptures `min_size`).
pub const PELT_MIN_SIZE: usize = 2;
/// Candidate breakpoint spacing (ruptures `jump`).
pub const PELT_JUMP: usize = 1;

/// One constant piece of a segmented series: indices `start..end` (end
/// exclusive, so `end` is ruptures' breakpoint) and the mean of its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// First index of the segment.
    pub start: usize,
    /// One past the last index of the segment.
    pub end: usize,
    /// Mean of the values in the segment.
    pub mean: f64,
}

/// The L2 segment cost `sum((x - mean)^2)` two ways: `exact` reproduces
/// ruptures' `signal[s:e].var() * (e - s)` bit for bit (numpy's two-pass,
/// pairwise-summed variance), `fast` is O(1) from compensated prefix sums
/// and is trusted only when it is farther than `margin` from a decision
/// boundary.
struct CostL2<'a> {
    values: &'a [f64],
    /// Compensated prefix sums of the centred values and of their squares.
    sum: Vec<(f64, f64)>,
    sum_sq: Vec<(f64, f64)>,
    scratch: Vec<f64>,
    /// Absolute error bound of `fast` against `exact`, before the
    /// magnitude-dependent part added per comparison.
    base_margin: f64,
}

fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

fn prefix(values: impl Iterator<Item = f64>, n: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(n + 1);
    let (mut hi, mut lo) = (0.0, 0.0);
    out.push((hi, lo));
    for v in values {
        let (s, e) = two_sum(hi, v);
        hi = s;
        lo += e;
        out.push((hi, lo));
    }
    out
}

impl<'a> CostL2<'a> {
    fn new(values: &'a [f64]) -> Self {
        let n = values.len();
        let mu = np_sum(values) / n as f64;
        let centred: Vec<f64> = values.iter().map(|v| v - mu).collect();
        let total_sq: f64 = centred.iter().map(|c| c * c).sum();
        let max_abs = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let shift_term = n as f64 * (32.0 * f64::EPSILON * max_abs).powi(2);
        Self {
            values,
            sum: prefix(centred.iter().copied(), n),
            sum_sq: prefix(centred.iter().map(|c| c * c), n),
            scratch: Vec::new(),
            base_margin: 64.0 * f64::EPSILON * (1.0 + total_sq + shift_term),
        }
    }

    fn fast(&self, start: usize, end: usize) -> f64 {
        let diff = |p: &[(f64, f64)]| (p[end].0 - p[start].0) + (p[end].1 - p[start].1);
        let s1 = diff(&self.sum);
        let s2 = diff(&self.sum_sq);
        s2 - s1 * s1 / (end - start) as f64
    }

    fn exact(&mut self, start: usize, end: usize) -> f64 {
        np_sum_sq_dev(&self.values[start..end], &mut self.scratch)
    }

    fn margin(&self, a: f64, b: f64) -> f64 {
        self.base_margin + 4.0 * f64::EPSILON * (a.abs() + b.abs())
    }
}

/// One subproblem of a PELT step: a left partition ending at `t` plus the
/// segment `t..bkp`.
struct Sub {
    t: usize,
    /// ruptures' total of the left partition of `0..t`.
    left: f64,
    fast: f64,
    exact: Option<f64>,
}

/// The breakpoints ruptures' `Pelt._seg` returns, as sorted segment ends
/// (the last is `n`). `exact_only` disables the fast path (for testing).
fn pelt(values: &[f64], pen: f64, exact_only: bool) -> Vec<usize> {
    let n = values.len();
    let mut cost = CostL2::new(values);
    // total[t]: ruptures' sum(partitions[t].values()), the left fold of the
    // partition's (cost + pen) values; None where no partition of 0..t exists.
    let mut total: Vec<Option<f64>> = vec![None; n + 1];
    let mut start_of: Vec<usize> = vec![0; n + 1];
    total[0] = Some(0.0);
    let mut admissible: Vec<usize> = Vec::new();
    let ends = (0..n)
        .step_by(PELT_JUMP)
        .filter(|&k| k >= PELT_MIN_SIZE)
        .chain(std::iter::once(n));
    let mut subs: Vec<Sub> = Vec::new();
    for bkp in ends {
        admissible.push((bkp - PELT_MIN_SIZE) / PELT_JUMP * PELT_JUMP);
        subs.clear();
        for &t in &admissible {
            // ruptures skips (`continue`s) a t with no partition of 0..t.
            if let Some(left) = total[t] {
                let fast = if exact_only {
                    f64::NAN
                } else {
                    left + (cost.fast(t, bkp) + pen)
                };
                subs.push(Sub {
                    t,
                    left,
                    fast,
                    exact: None,
                });
            }
        }
        let exact_of = |sub: &mut Sub, cost: &mut CostL2<'_>| -> f64 {
            if let Some(v) = sub.exact {
                return v;
            }
            let v = sub.left + (cost.exact(sub.t, bkp) + pen);
            sub.exact = Some(v);
            v
        };
        // The optimal partition: Python's min() keeps the first minimum.
        let best_fast = subs.iter().map(|s| s.fast).fold(f64::INFINITY, f64::min);
        let mut best: Option<(usize, f64)> = None;
        for (i, sub) in subs.iter_mut().enumerate() {
            // A non-finite fast total (overflowing squares) decides nothing.
            let near = exact_only
                || !sub.fast.is_finite()
                || !best_fast.is_finite()
                || sub.fast <= best_fast + 2.0 * cost.margin(sub.fast, best_fast);
            if !near {
                continue;
            }
            let v = exact_of(sub, &mut cost);
            if best.is_none_or(|(_, b)| v < b) {
                best = Some((i, v));
            }
        }
        let Some((best_index, best_total)) = best else {
            // Unreachable for a non-negative penalty: the previous optimum
            // always survives pruning. Stop rather than panic.
            break;
        };
        total[bkp] = Some(best_total);
        start_of[bkp] = subs[best_index].t;
        // Pruning, with ruptures' zip(admissible, subproblems) pairing.
        let threshold = best_total + pen;
        let mut kept = Vec::with_capacity(admissible.len());
        for (&t, sub) in admissible.iter().zip(subs.iter_mut()) {
            let keep = if exact_only {
                exact_of(sub, &mut cost) <= threshold
            } else {
                let m = cost.margin(sub.fast, threshold);
                if !(sub.fast.is_finite() && threshold.is_finite() && m.is_finite()) {
                    exact_of(sub, &mut cost) <= threshold
                } else if sub.fast < threshold - m {
                    true
                } else if sub.fast > threshold + m {
                    false
                } else {
                    exact_of(sub, &mut cost) <= threshold
                }
            };
            if keep {
                kept.push(t);
            }
        }
        admissible = kept;
    }
    let mut breakpoints = Vec::new();
    let mut end = n;
    while end > 0 {
        breakpoints.push(end);
        end = start_of[end];
    }
    breakpoints.reverse();
    breakpoints
}

fn segments(values: &[f64], breakpoints: &[usize]) -> Vec<Segment> {
    let mut start = 0;
    breakpoints
        .iter()
        .map(|&end| {
            let seg = &values[start..end];
            let s = Segment {
                start,
                end,
                mean: np_sum(seg) / seg.len() as f64,
            };
            start = end;
            s
        })
        .collect()
}

fn check_finite(values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(SeriesError::NonFinite {
            what: "series",
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Segments `values` into constant pieces by PELT with the L2 cost
/// (`sum((x - segment mean)^2)`), `min_size = 2`, `jump = 1`, returning the
/// same breakpoints as
/// `ruptures.Pelt(model="l2", min_size=2, jump=1).fit(values).predict(pen=penalty)`.
///
/// The optimum minimises `sum(cost(segment)) + penalty * segments`. Ties go
/// to the earliest last breakpoint, and candidates are pruned exactly as
/// ruptures prunes them (kept while their total is at most the best total
/// plus `penalty`), including its floating-point summation order, so ties
/// in integer-valued series resolve the same way.
///
/// An empty series gives no segments and a length-1 series one segment
/// (ruptures raises for fewer than 2 points). See [`default_penalty`] for a
/// penalty derived from the series.
///
/// Cost: PELT cannot prune inside a long change-free stretch, so the worst
/// case is quadratic in the length (in a release build, about 0.1 s for
/// 5 000 points and 1.2 s for 20 000).
///
/// # Errors
/// [`SeriesError::InvalidPenalty`] if `penalty` is negative or not finite,
/// [`SeriesError::NonFinite`] if any value is NaN or infinite (positions
/// must keep their meaning, so missing points are not dropped).
pub fn piecewise_constant(values: &[f64], penalty: f64) -> Result<Vec<Segment>> {
    if !penalty.is_finite() || penalty < 0.0 {
        return Err(SeriesError::InvalidPenalty(penalty));
    }
    check_finite(values)?;
    match values.len() {
        0 => Ok(Vec::new()),
        1 => Ok(segments(values, &[1])),
        _ => Ok(segments(values, &pelt(values, penalty, false))),
    }
}

/// A BIC-like penalty for [`piecewise_constant`]: `2 * sigma^2 * ln(n)`.
///
/// `sigma` is the noise level estimated robustly from first differences
/// (which a level shift barely affects): `sigma = s(diff(x)) / sqrt(2)` with
/// `s` the robust scale of the anomaly rule — `1.4826 * MAD`, or
/// `1.2533 * mean absolute deviation from the median` when the MAD is 0. If
/// that is still 0 (all differences equal, e.g. a ramp), `sigma` is the
/// series' standard deviation; a constant series gets penalty 0, which still
/// yields a single segment. Fewer than 2 points give 0.
///
/// # Errors
/// [`SeriesError::NonFinite`] if any value is NaN or infinite.
pub fn default_penalty(values: &[f64]) -> Result<f64> {
    check_finite(values)?;
    let n = values.len();
    if n < 2 {
        return Ok(0.0);
    }
    let diffs: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    let mut sigma = robust_sigma(&diffs) / std::f64::consts::SQRT_2;
    if sigma == 0.0 || !sigma.is_finite() {
        sigma = np_std(values);
    }
    Ok(2.0 * sigma * sigma * (n as f64).ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(values: &[f64], pen: f64) -> Vec<usize> {
        piecewise_constant(values, pen)
            .unwrap()
            .iter()
            .map(|s| s.end)
            .collect()
    }

    /// A small deterministic generator (64-bit LCG) for self-contained tests.
    fn lcg(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn finds_a_clear_level_shift() {
        let mut x = vec![0.0; 10];
        x.extend(vec![5.0; 10]);
        let segs = piecewise_constant(&x, 1.0).unwrap();
        assert_eq!(
            segs,
            vec![
                Segment {
                    start: 0,
                    end: 10,
                    mean: 0.0
                },
                Segment {
                    start: 10,
                    end: 20,
                    mean: 5.0
                }
            ]
        );
    }

    #[test]
    fn short_and_constant_series() {
        assert!(piecewise_constant(&[], 1.0).unwrap().is_empty());
        assert_eq!(ends(&[3.0], 1.0), vec![1]);
        assert_eq!(ends(&[3.0, 4.0], 0.0), vec![2]);
        assert_eq!(ends(&[3.0, 4.0, 100.0], 0.0), vec![3]);
        assert_eq!(ends(&[2.0; 9], 0.0), vec![9]);
        assert_eq!(ends(&[2.0; 9], 5.0), vec![9]);
    }

    #[test]
    fn zero_penalty_splits_into_minimum_size_pieces() {
        // With pen = 0 every split that lowers the cost is taken; pieces of
        // 2 or 3 points each, never 1.
        let x = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let e = ends(&x, 0.0);
        let mut start = 0;
        for &end in &e {
            assert!(end - start >= PELT_MIN_SIZE);
            start = end;
        }
        assert_eq!(*e.last().unwrap(), x.len());
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert_eq!(
            piecewise_constant(&[1.0], -1.0),
            Err(SeriesError::InvalidPenalty(-1.0))
        );
        assert!(matches!(
            piecewise_constant(&[1.0], f64::NAN),
            Err(SeriesError::InvalidPenalty(_))
        ));
        assert!(matches!(
            piecewise_constant(&[1.0, f64::NAN, 2.0], 1.0),
            Err(SeriesError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            default_penalty(&[f64::INFINITY]),
            Err(SeriesError::NonFinite { index: 0, .. })
        ));
    }

    #[test]
    fn fast_path_agrees_with_exact_path() {
        let mut rnd = lcg(7);
        for case in 0..300 {
            let n = 2 + case % 60;
            let integer = case % 2 == 0;
            let shift = if case % 3 == 0 { 1e6 } else { 0.0 };
            let x: Vec<f64> = (0..n)
                .map(|i| {
                    let level = if i > n / 2 { 3.0 } else { 0.0 };
                    let noise = rnd();
                    let v = if integer {
                        (noise * 4.0).floor()
                    } else {
                        noise
                    };
                    shift + level + v
                })
                .collect();
            for pen in [0.0, 0.5, 1.0, 2.0, 4.0, 10.0] {
                assert_eq!(
                    pelt(&x, pen, false),
                    pelt(&x, pen, true),
                    "case {case} pen {pen}"
                );
            }
        }
    }

    fn fixture(name: &str) -> serde_json::Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        serde_json::from_str(&text).expect("fixture parses")
    }

    #[test]
    fn exact_cost_is_bit_for_bit_ruptures_cost() {
        // Ties between partitions are decided on these values, so they must
        // be numpy's to the last bit, not merely close.
        let fixture = fixture("changepoints.json");
        let mut checked = 0;
        for case in fixture["cases"].as_array().expect("cases") {
            let values: Vec<f64> = case["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|v| v.as_f64().expect("finite value"))
                .collect();
            let mut cost = CostL2::new(&values);
            for triple in case["costs"].as_array().expect("costs") {
                let s = usize::try_from(triple[0].as_u64().expect("start")).expect("usize");
                let e = usize::try_from(triple[1].as_u64().expect("end")).expect("usize");
                let expected = triple[2].as_f64().expect("cost");
                let got = cost.exact(s, e);
                assert_eq!(
                    got.to_bits(),
                    expected.to_bits(),
                    "{s}..{e}: {got:e} vs {expected:e}"
                );
                let fast = cost.fast(s, e);
                assert!(
                    (fast - got).abs() <= cost.margin(fast, got),
                    "{s}..{e}: fast {fast:e}"
                );
                checked += 1;
            }
        }
        assert!(checked > 300, "only {checked} costs");
    }

    #[test]
    fn default_penalty_cases() {
        assert_eq!(default_penalty(&[]).unwrap(), 0.0);
        assert_eq!(default_penalty(&[1.0]).unwrap(), 0.0);
        assert_eq!(default_penalty(&[4.0; 10]).unwrap(), 0.0);
        // A ramp has equal differences: falls back to the series' spread.
        let ramp: Vec<f64> = (0..10).map(f64::from).collect();
        let p = default_penalty(&ramp).unwrap();
        assert!((p - 2.0 * 8.25 * 10f64.ln()).abs() < 1e-9, "{p}");
        // Noise of unit-ish scale gives a penalty of the order of ln(n).
        let mut rnd = lcg(3);
        let x: Vec<f64> = (0..200).map(|_| rnd() * 12f64.sqrt()).collect();
        let p = default_penalty(&x).unwrap();
        assert!(
            p > 0.5 * 2.0 * 200f64.ln() && p < 2.0 * 2.0 * 200f64.ln(),
            "{p}"
        );
    }
}
