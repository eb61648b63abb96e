//! Smoothing: the exponentially weighted moving average and the trailing
//! rolling median, both matching pandas.

use crate::error::{Result, SeriesError};
use crate::numeric::{cmp_f64, median_sorted};

/// The smoothing factor for an EWMA span: `alpha = 2 / (span + 1)`, computed
/// as pandas does (`com = (span - 1) / 2`, `alpha = 1 / (1 + com)`).
///
/// # Errors
/// [`SeriesError::InvalidSpan`] if `span` is 0.
pub fn ewma_alpha(span: usize) -> Result<f64> {
    if span == 0 {
        return Err(SeriesError::InvalidSpan(span));
    }
    Ok(1.0 / (1.0 + com(span)))
}

fn com(span: usize) -> f64 {
    (span as f64 - 1.0) / 2.0
}

/// Exponentially weighted moving average with `alpha = 2 / (span + 1)`,
/// identical to pandas `Series.ewm(span=span, adjust=False).mean()` (with its
/// defaults `ignore_na=False`, `min_periods=0`).
///
/// The output has one value per input value. The series starts at the first
/// finite input (`y = x` there); earlier outputs are NaN. After that
/// `y_t = ((1 - alpha) y_{t-1} + alpha x_t) / ((1 - alpha) + alpha)`.
///
/// Missing points (NaN or ±infinity, which pandas also treats as missing)
/// output the previous average unchanged, and the previous average's weight
/// keeps decaying across them: after `g` missing points the next finite
/// value enters as `(w y + a x) / (w + a)` with `w = (1 - alpha)^(g + 1)` and
/// `a = alpha`, except for span 3 (`com = 1`), where pandas uses
/// `a = 1 - w`; this function reproduces both.
///
/// An empty input gives an empty output.
///
/// # Errors
/// [`SeriesError::InvalidSpan`] if `span` is 0.
pub fn ewma(values: &[f64], span: usize) -> Result<Vec<f64>> {
    let alpha = ewma_alpha(span)?;
    let com = com(span);
    let old_wt_factor = 1.0 - alpha;
    let mut new_wt = alpha;
    let mut out = Vec::with_capacity(values.len());
    let Some((&first, rest)) = values.split_first() else {
        return Ok(out);
    };
    let mut weighted = if first.is_finite() { first } else { f64::NAN };
    out.push(weighted);
    let mut old_wt = 1.0;
    for &x in rest {
        let observed = x.is_finite();
        if !weighted.is_nan() {
            old_wt *= old_wt_factor;
            if observed {
                // pandas skips the update when the value equals the average,
                // so constant series stay exactly constant.
                if weighted != x {
                    if com == 1.0 {
                        new_wt = 1.0 - old_wt;
                    }
                    weighted = old_wt * weighted + new_wt * x;
                    weighted /= old_wt + new_wt;
                }
                old_wt = 1.0;
            }
        } else if observed {
            weighted = x;
        }
        out.push(weighted);
    }
    Ok(out)
}

/// Trailing rolling median over `window` points, identical to pandas
/// `Series.rolling(window, min_periods=1).median()`.
///
/// Output `t` is the median of the finite values among inputs
/// `max(0, t + 1 - window) ..= t` (the window is right-aligned and shrinks at
/// the start); an even count averages the two middle values. Non-finite
/// inputs are ignored; a window with no finite value gives NaN. An empty
/// input gives an empty output.
///
/// # Errors
/// [`SeriesError::InvalidWindow`] if `window` is 0.
pub fn rolling_median(values: &[f64], window: usize) -> Result<Vec<f64>> {
    if window == 0 {
        return Err(SeriesError::InvalidWindow(window));
    }
    let mut sorted: Vec<f64> = Vec::with_capacity(window.min(values.len()));
    let mut out = Vec::with_capacity(values.len());
    for (t, &x) in values.iter().enumerate() {
        if x.is_finite() {
            let at = sorted.partition_point(|v| cmp_f64(v, &x).is_lt());
            sorted.insert(at, x);
        }
        if t >= window {
            let leaving = values[t - window];
            if leaving.is_finite() {
                let at = sorted.partition_point(|v| cmp_f64(v, &leaving).is_lt());
                if sorted
                    .get(at)
                    .is_some_and(|v| v.to_bits() == leaving.to_bits())
                {
                    sorted.remove(at);
                }
            }
        }
        out.push(median_sorted(&sorted));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_from_span() {
        assert_eq!(ewma_alpha(1).unwrap(), 1.0);
        assert_eq!(ewma_alpha(3).unwrap(), 0.5);
        assert!((ewma_alpha(20).unwrap() - 2.0 / 21.0).abs() < 1e-16);
        assert_eq!(ewma_alpha(0), Err(SeriesError::InvalidSpan(0)));
    }

    #[test]
    fn ewma_recursion_by_hand() {
        let y = ewma(&[1.0, 2.0, 3.0], 3).unwrap();
        assert_eq!(y, vec![1.0, 1.5, 2.25]);
    }

    #[test]
    fn ewma_span_one_is_identity() {
        let x = [3.0, -1.0, 7.5, 0.25];
        assert_eq!(ewma(&x, 1).unwrap(), x.to_vec());
    }

    #[test]
    fn ewma_edge_cases() {
        assert!(ewma(&[], 5).unwrap().is_empty());
        assert_eq!(ewma(&[4.0], 5).unwrap(), vec![4.0]);
        assert_eq!(ewma(&[2.0; 6], 10).unwrap(), vec![2.0; 6]);
        let y = ewma(&[f64::NAN, f64::NAN, 2.0, 2.0], 5).unwrap();
        assert!(y[0].is_nan() && y[1].is_nan());
        assert_eq!(&y[2..], &[2.0, 2.0]);
        assert_eq!(ewma(&[f64::NAN], 5).unwrap().len(), 1);
    }

    #[test]
    fn ewma_missing_points_follow_pandas() {
        // pandas: Series([1, nan, 3]).ewm(span=3, adjust=False).mean()
        //   -> [1.0, 1.0, 2.5]  (span-3 rule: new weight 1 - 0.25)
        assert_eq!(ewma(&[1.0, f64::NAN, 3.0], 3).unwrap(), vec![1.0, 1.0, 2.5]);
        // span 5: (4/9 * 1 + 1/3 * 3) / (4/9 + 1/3) = 13/7
        let y = ewma(&[1.0, f64::INFINITY, 3.0], 5).unwrap();
        assert_eq!(y[1], 1.0);
        assert!((y[2] - 13.0 / 7.0).abs() < 1e-15);
    }

    #[test]
    fn rolling_median_by_hand() {
        let x = [5.0, 1.0, 3.0, 2.0, 8.0];
        assert_eq!(
            rolling_median(&x, 3).unwrap(),
            vec![5.0, 3.0, 3.0, 2.0, 3.0]
        );
        assert_eq!(rolling_median(&x, 1).unwrap(), x.to_vec());
        assert_eq!(
            rolling_median(&x, 2).unwrap(),
            vec![5.0, 3.0, 2.0, 2.5, 5.0]
        );
    }

    #[test]
    fn rolling_median_edge_cases() {
        assert!(rolling_median(&[], 3).unwrap().is_empty());
        assert_eq!(rolling_median(&[1.0], 3), Ok(vec![1.0]));
        assert_eq!(
            rolling_median(&[1.0], 0),
            Err(SeriesError::InvalidWindow(0))
        );
        let y = rolling_median(&[1.0, f64::NAN, f64::NAN, f64::NAN, 5.0, 6.0], 3).unwrap();
        assert_eq!(&y[..3], &[1.0, 1.0, 1.0]);
        assert!(y[3].is_nan());
        assert_eq!(&y[4..], &[5.0, 5.5]);
        // Repeated values and signed zeros leave and enter cleanly.
        let y = rolling_median(&[0.0, -0.0, 0.0, 1.0, 1.0, 1.0], 2).unwrap();
        assert_eq!(y, vec![0.0, 0.0, 0.0, 0.5, 1.0, 1.0]);
    }
}
