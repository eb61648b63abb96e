//! p-values of the two-sample Kolmogorov–Smirnov test, ported from scipy
//! 1.17 (`scipy.stats._stats_py`, `_stats_pythran`, `_ksstats` and the
//! `smirnov` special function) so that `ks_2samp` agrees with scipy.

use crate::numeric::ldexp;

const E128: i64 = 128;
fn ep128() -> f64 {
    2f64.powi(128)
}
fn em128() -> f64 {
    2f64.powi(-128)
}

fn clip01(p: f64) -> f64 {
    if p.is_nan() { p } else { p.clamp(0.0, 1.0) }
}

pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// scipy `_attempt_exact_2kssamp` for the two-sided alternative: the exact
/// p-value and the statistic rounded to a multiple of `1 / lcm(n1, n2)`,
/// or `None` (with that rounded statistic) when the computation fails.
pub(crate) fn exact_two_sided(n1: u64, n2: u64, d: f64) -> (f64, Option<f64>) {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even();
    let d = h / lcm as f64;
    if h == 0.0 {
        return (d, Some(1.0));
    }
    // `h` is a rounded product of a statistic in [0, 1] and the lcm.
    let h = h as u64;
    let prob = if n1 == n2 {
        Some(prob_outside_square(n1, h))
    } else {
        outer_prob_inside(n1, n2, g, h)
    };
    match prob {
        Some(p) if (0.0..=1.0).contains(&p) => (d, Some(p)),
        _ => (d, None),
    }
}

/// scipy `_compute_prob_outside_square(n, h)`: `P(D_{n,n} >= h / n)`.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as i64, h as i64);
    let mut p = 0.0;
    let mut k = (n as f64 / h as f64).floor() as i64;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// scipy `_compute_outer_prob_inside_method(m, n, g, h)`: the proportion of
/// lattice paths that leave the band `|x/m - y/n| < h / lcm(m, n)`.
/// `None` where scipy's indexing would leave its buffer.
fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> Option<f64> {
    let (mut m, mut n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    if m < n {
        (m, n) = (n, m);
    }
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1);
    let len_a = usize::try_from(len_a).ok()?;
    let mut a = vec![1.0_f64; len_a];
    for v in a.iter_mut().take(usize::try_from(maxj).ok()?) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((((ng * i - h) as f64) / mg as f64).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = ((((ng * i + h) as f64) / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return Some(1.0);
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let src = usize::try_from(jj + minj - lastminj).ok()?;
            let prev = *a.get(src)?;
            val = (prev * i as f64 + val * j as f64) / (i + j) as f64;
            *a.get_mut(usize::try_from(jj).ok()?)? = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            // numpy slice assignment clips at the end of the buffer.
            let from = usize::try_from(maxj - minj).ok()?;
            let to = usize::try_from(maxj - minj + (lastlen - curlen)).ok()?;
            for v in a.iter_mut().take(to).skip(from) {
                *v = 1.0;
            }
        }
    }
    a.get(usize::try_from(maxj - minj - 1).ok()?).copied()
}

/// scipy `kstwo.sf(d, n)`: the survival function of the one-sample two-sided
/// Kolmogorov–Smirnov statistic `D_n`, via Simard and L'Ecuyer's choice of
/// methods (`_kolmogn` with `cdf=False`). NaN for `n == 0`.
pub(crate) fn kolmogn_sf(n: u64, x: f64) -> f64 {
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    let nf = n as f64;
    // rv_continuous support handling: sf is 1 at or below 0.5 / n, 0 at 1.
    if x <= 0.5 / nf {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let t = nf * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            let mut p = 1.0;
            for i in 1..=n {
                p *= i as f64 * (1.0 / nf) * (2.0 * t - 1.0);
            }
            p
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip01(1.0 - prob);
    }
    if t >= nf - 1.0 {
        return clip01(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        return clip01(2.0 * smirnov_sf(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754_693 {
            return clip01(1.0 - kolmogn_dmtw_cdf(n, x));
        }
        if nxsquared <= 4.0 {
            return clip01(1.0 - kolmogn_pomeranz_cdf(n, x));
        }
        return clip01(2.0 * smirnov_sf(n, x));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip01(2.0 * smirnov_sf(n, x));
    }
    let cdf = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        kolmogn_dmtw_cdf(n, x)
    } else {
        kolmogn_pelz_good_cdf(nf, x)
    };
    clip01(1.0 - cdf)
}

/// scipy's `_STIRLING_COEFFS` (B_2j / (2j (2j - 1)), j = 8..1), as f64.
const STIRLING_COEFFS: [f64; 8] = [
    -0.029_550_653_594_771_242,
    0.006_410_256_410_256_41,
    -0.001_917_526_917_526_917_6,
    0.000_841_750_841_750_841_7,
    -0.000_595_238_095_238_095_3,
    0.000_793_650_793_650_793_7,
    -0.002_777_777_777_777_778,
    0.083_333_333_333_333_33,
];

fn polyval(coeffs: &[f64], x: f64) -> f64 {
    coeffs.iter().fold(0.0, |acc, &c| acc * x + c)
}

/// `ln(n! / n^n)` by Stirling's series (scipy `_log_nfactorial_div_n_pow_n`).
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    let rn = 1.0 / n;
    let log_2pi = (2.0 * std::f64::consts::PI).ln();
    n.ln() / 2.0 - n + log_2pi / 2.0 + rn * polyval(&STIRLING_COEFFS, rn / n)
}

fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            let aik = a[i * m + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..m {
                c[i * m + j] += aik * b[k * m + j];
            }
        }
    }
    c
}

/// `P(D_n <= d)` by Durbin's matrix method as organised by Marsaglia, Tsang
/// and Wang (scipy `_kolmogn_DMTW`).
fn kolmogn_dmtw_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let nd = nf * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut hm = vec![0.0; m * m];
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powi(j as i32)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tt) * fac;
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let mut hpwr = vec![0.0; m * m];
    for i in 0..m {
        hpwr[i * m + i] = 1.0;
    }
    let mut nn = n;
    let mut expnt: i64 = 0;
    let mut hexpnt: i64 = 0;
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = matmul(&hpwr, &hm, m);
            expnt += hexpnt;
        }
        hm = matmul(&hm, &hm, m);
        hexpnt *= 2;
        if hm[(k - 1) * m + (k - 1)].abs() > ep128() {
            for v in &mut hm {
                *v /= ep128();
            }
            hexpnt += E128;
        }
        nn /= 2;
    }
    let mut p = hpwr[(k - 1) * m + (k - 1)];
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < em128() {
            p *= ep128();
            expnt -= E128;
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    clip01(p)
}

fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (ip1div2, ip1mod2) = ((i + 1).div_euclid(2), (i + 1).rem_euclid(2));
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// Python slice bounds `[start:stop]` on a sequence of length `len`.
fn py_slice(len: usize, start: i64, stop: i64) -> (usize, usize) {
    let len_i = len as i64;
    let fix = |v: i64| -> usize {
        let v = if v < 0 {
            (v + len_i).max(0)
        } else {
            v.min(len_i)
        };
        v as usize
    };
    let (a, b) = (fix(start), fix(stop));
    (a, b.max(a))
}

/// `P(D_n <= x)` by Pomeranz's recursion (scipy `_kolmogn_Pomeranz`).
fn kolmogn_pomeranz_cdf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let ni = n as i64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    let mut gpower = vec![1.0; npwrs];
    let mut twogpower = vec![1.0; npwrs];
    let mut onem2gpower = vec![1.0; npwrs];
    let (g_n, two_g_n, one_m2g_n) = (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        gpower[m] = gpower[m - 1] * g_n / m as f64;
        twogpower[m] = twogpower[m - 1] * two_g_n / m as f64;
        onem2gpower[m] = onem2gpower[m - 1] * one_m2g_n / m as f64;
    }
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s): (i64, i64) = (0, 0);
    let mut expnt: i64 = 0;
    let (mut j1, _) = pomeranz_j1j2(0, ni, ll, ceilf, roundf);
    let mut conv = Vec::new();
    for i in 1..(2 * ni + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        let (nj1, j2) = pomeranz_j1j2(i, ni, ll, ceilf, roundf);
        j1 = nj1;
        let pwrs = if i == 1 || i == 2 * ni + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            let (a0, a1) = py_slice(npwrs, k1 - v0s, k1 - v0s + ln2);
            let (b0, b1) = py_slice(npwrs, 0, ln2);
            let (sa, sb) = (&v0[a0..a1], &pwrs[b0..b1]);
            if sa.is_empty() || sb.is_empty() {
                return f64::NAN;
            }
            conv.clear();
            conv.resize(sa.len() + sb.len() - 1, 0.0);
            for (p, &x) in sa.iter().enumerate() {
                for (q, &y) in sb.iter().enumerate() {
                    conv[p + q] += x * y;
                }
            }
            let conv_start = j1 - k1;
            let conv_len = j2 - j1 + 1;
            let (c0, c1) = py_slice(conv.len(), conv_start, conv_start + conv_len);
            let (d0, d1) = py_slice(npwrs, 0, conv_len);
            if c1 - c0 != d1 - d0 {
                return f64::NAN;
            }
            v1[d0..d1].copy_from_slice(&conv[c0..c1]);
            let vmax = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < vmax && vmax < em128() {
                for v in &mut v1 {
                    *v *= ep128();
                }
                expnt -= E128;
            }
            v1s = v0s + j1 - k1;
        }
    }
    let idx = ni - v1s;
    let Some(&start) = usize::try_from(idx).ok().and_then(|i| v1.get(i)) else {
        return f64::NAN;
    };
    let mut ans = start;
    for m in 1..=n {
        if ans.abs() > ep128() {
            ans *= em128();
            expnt += E128;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans = ldexp(ans, expnt);
    }
    clip01(ans)
}

/// Pelz–Good asymptotic approximation to `P(D_n <= x)` (scipy
/// `_kolmogn_PelzGood`).
fn kolmogn_pelz_good_cdf(n: f64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let sqrt2pi = (2.0 * PI).sqrt();
    let z = n.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let qlog = -pi2 / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut k = [0.0_f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for kk in (1..=maxk).rev() {
        let m = (2 * kk - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf(8.0 * kk as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (acc, c) in k.iter_mut().zip(coeffs) {
            *acc = *acc * qpower + c;
        }
    }
    let denoms = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (acc, den) in k.iter_mut().zip(denoms) {
        *acc = *acc * q * sqrt2pi / den;
    }
    let q2 = (-pi2 / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let (mut k2extra, mut k3extra) = (0.0, 0.0);
    for kk in (1..=maxk).rev() {
        let ks = kk as f64;
        let ks2 = ks * ks;
        let qp = q2.powf(ks2);
        k2extra += ks2 * qp;
        let kspi = PI * ks;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ks2 * qp;
    }
    k[2] += k2extra * pi2 * sqrt2pi / (-36.0 * z3);
    k[3] += k3extra * pi2 * sqrt2pi / (216.0 * z6);
    let mut sum = 0.0;
    for (i, acc) in k.iter().enumerate() {
        sum += acc / n.powf(i as f64 / 2.0);
    }
    sum
}

/// `ln Γ(z)` for `z > 0`: Stirling's series after shifting `z` above 10.
fn ln_gamma(z: f64) -> f64 {
    let mut shift = 0.0;
    let mut z = z;
    while z < 10.0 {
        shift += z.ln();
        z += 1.0;
    }
    let zi = 1.0 / z;
    let zi2 = zi * zi;
    let series = zi
        * (1.0 / 12.0
            - zi2 * (1.0 / 360.0 - zi2 * (1.0 / 1260.0 - zi2 * (1.0 / 1680.0 - zi2 / 1188.0))));
    (z - 0.5) * z.ln() - z + 0.5 * (2.0 * std::f64::consts::PI).ln() + series - shift
}

/// `ln C(n, v)`.
fn ln_binomial(n: f64, v: f64) -> f64 {
    ln_gamma(n + 1.0) - ln_gamma(v + 1.0) - ln_gamma(n - v + 1.0)
}

/// scipy `smirnov(n, x)`: the survival function of the one-sided statistic
/// `D_n^+`, by the Birnbaum–Tingey sum of positive terms evaluated in log
/// space (scipy's special cases and its large-n approximation included).
pub(crate) fn smirnov_sf(n: u64, x: f64) -> f64 {
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    let nf = n as f64;
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nx = nf * x;
    let nxfl = nx.floor();
    let alpha = nx - nxfl;
    // x <= 1/n: cdf = x (1 + x)^(n - 1).
    if nxfl == 0.0 || (nxfl == 1.0 && alpha == 0.0) {
        return 1.0 - x * (1.0 + x).powf(nf - 1.0);
    }
    const MINLOG: f64 = -7.083_964_185_322_641e2;
    if -2.0 * nf * x * x < MINLOG {
        return 0.0;
    }
    if nxfl >= nf - 1.0 {
        return (1.0 - x).powf(nf);
    }
    if n > 1_000_000 {
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        // scipy: sf = exp(logp), or 1 - (-expm1(logp)) for larger p.
        let sf = if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 + logp.exp_m1()
        };
        return sf.clamp(0.0, 1.0);
    }
    // sf = x * sum_{v=0}^{floor(n(1-x))} C(n,v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v),
    // the last term dropped when it is 0 (n(1 - x) an integer).
    // Every term is positive, so there is no cancellation to guard against.
    let last = (nf * (1.0 - x)).floor() as u64;
    let mut sum = 0.0;
    for v in 0..=last.min(n) {
        let vf = v as f64;
        let a = vf / nf + x;
        let b = (nf - vf) / nf - x;
        if b <= 0.0 {
            break;
        }
        let ln_term = ln_binomial(nf, vf) + (vf - 1.0) * a.ln() + (nf - vf) * b.ln();
        sum += ln_term.exp();
    }
    (x * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> serde_json::Value {
        let path = format!("{}/tests/fixtures/kstwo.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        serde_json::from_str(&text).expect("fixture parses")
    }

    fn float(v: &serde_json::Value) -> f64 {
        v.as_f64().unwrap_or(f64::NAN)
    }

    #[test]
    fn kstwo_sf_matches_scipy() {
        let fixture = fixture();
        let rows = fixture["kstwo_sf"].as_array().expect("kstwo_sf");
        for row in rows {
            let n = row[0].as_u64().expect("n");
            let (x, expected) = (float(&row[1]), float(&row[2]));
            let got = kolmogn_sf(n, x);
            let err = (got - expected).abs();
            assert!(
                err <= 1e-6,
                "kstwo.sf({x}, {n}): got {got:e}, expected {expected:e}"
            );
            // Tail probabilities are also relatively accurate.
            if expected > 1e-250 {
                let rel = err / expected;
                assert!(rel <= 1e-6, "kstwo.sf({x}, {n}): relative error {rel:e}");
            }
        }
        assert!(rows.len() > 300, "only {} rows", rows.len());
    }

    #[test]
    fn exact_two_sample_matches_scipy() {
        let fixture = fixture();
        let rows = fixture["exact"].as_array().expect("exact");
        for row in rows {
            let n1 = row[0].as_u64().expect("n1");
            let n2 = row[1].as_u64().expect("n2");
            let h = row[2].as_u64().expect("h");
            let ok = row[3].as_bool().expect("success");
            let (d_expected, p_expected) = (float(&row[4]), float(&row[5]));
            let lcm = (n1 / gcd(n1, n2)) * n2;
            let (d, p) = exact_two_sided(n1, n2, h as f64 / lcm as f64);
            assert_eq!(d, d_expected, "{n1} {n2} {h}");
            assert_eq!(p.is_some(), ok, "{n1} {n2} {h}");
            if let Some(p) = p {
                let err = (p - p_expected).abs();
                assert!(
                    err <= 1e-12 || err <= 1e-9 * p_expected,
                    "{n1} {n2} {h}: got {p:e}, expected {p_expected:e}"
                );
            }
        }
        assert!(rows.len() > 50, "only {} rows", rows.len());
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut fact = 1.0_f64;
        for k in 1..30 {
            fact *= f64::from(k);
            let lg = ln_gamma(f64::from(k) + 1.0);
            assert!((lg - fact.ln()).abs() < 1e-12 * fact.ln().max(1.0), "{k}");
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
    }

    #[test]
    fn exact_square_small_case() {
        // n1 = n2 = 2, d = 1: only the two fully separated orderings of the
        // 6 equally likely ones reach D = 1.
        let (d, p) = exact_two_sided(2, 2, 1.0);
        assert_eq!(d, 1.0);
        assert!((p.unwrap() - 2.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn exact_inside_small_case() {
        // n1 = 1, n2 = 2, d = 1: 2 of the 3 orderings put the single value
        // at an end.
        let (d, p) = exact_two_sided(1, 2, 1.0);
        assert_eq!(d, 1.0);
        assert!((p.unwrap() - 2.0 / 3.0).abs() < 1e-15, "{p:?}");
    }

    #[test]
    fn kolmogn_limits() {
        assert!(kolmogn_sf(0, 0.5).is_nan());
        assert_eq!(kolmogn_sf(10, 0.01), 1.0);
        assert_eq!(kolmogn_sf(10, 1.0), 0.0);
        // n = 1: D_1 is uniform on [1/2, 1], so sf(x) = 2 (1 - x).
        assert!((kolmogn_sf(1, 0.75) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn smirnov_small_n_closed_forms() {
        // Birnbaum–Tingey: sf = x * sum_v C(n,v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v).
        // n = 2, x = 0.3 (the x <= 1/n closed form 1 - x (1 + x)^(n-1)):
        let x: f64 = 0.3;
        let direct = x * ((1.0 - x).powi(2) / x + 2.0 * (1.0 - x - 0.5));
        assert!((smirnov_sf(2, x) - direct).abs() < 1e-15);
        assert!((smirnov_sf(2, x) - 0.61).abs() < 1e-15);
        // n = 3, x = 0.4 (the summation path, terms v = 0 and 1):
        let x: f64 = 0.4;
        let direct = x * ((1.0 - x).powi(3) / x + 3.0 * (1.0 - x - 1.0 / 3.0).powi(2));
        assert!(
            (smirnov_sf(3, x) - direct).abs() < 1e-14,
            "{}",
            smirnov_sf(3, x)
        );
        assert_eq!(smirnov_sf(5, 0.0), 1.0);
        assert_eq!(smirnov_sf(5, 1.0), 0.0);
        assert!((smirnov_sf(1, 0.25) - 0.75).abs() < 1e-15);
    }
}
