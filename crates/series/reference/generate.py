#!/usr/bin/env python3
"""Regenerate the reference fixtures in crates/series/tests/fixtures/.

Each fixture pairs deterministic inputs (seeded numpy generators) with the
outputs of the Python reference libraries pinned in requirements.txt:
pandas (EWMA, rolling median), numpy (polyfit, PSI arithmetic), statsmodels
(Huber RLM), ruptures (PELT) and scipy (KS, Wasserstein). The Rust tests in
crates/series/tests/it/reference.rs (and two unit tests in src/) read them; CI
never runs Python, so the JSON files are committed.

Encoding: a float is a JSON number; NaN is null; +/-infinity are the strings
"inf" and "-inf". Floats are written with Python's shortest round-trip repr.

Usage (see docs/monitoring.md):
    python3 -m venv /tmp/series-venv
    /tmp/series-venv/bin/pip install -r crates/series/reference/requirements.txt
    /tmp/series-venv/bin/python crates/series/reference/generate.py
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import ruptures as rpt
import scipy
import scipy.stats as st
import statsmodels
import statsmodels.api as sm
from scipy.stats import _stats_py
from scipy.stats._stats_pythran import _compute_outer_prob_inside_method

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"

SPANS = [1, 3, 5, 10, 20]
WINDOWS = [1, 3, 5, 7, 9]
PSI_EPSILON = 1e-4
MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = math.sqrt(math.pi / 2)


def enc(v):
    """One float for JSON."""
    v = float(v)
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def encs(values):
    return [enc(v) for v in values]


def versions():
    return {
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "statsmodels": statsmodels.__version__,
        "ruptures": rpt.__version__,
    }


def write(name, payload):
    """Top-level keys one per line, each list item compact on its own line."""
    payload = {"generated_by": "crates/series/reference/generate.py", "versions": versions(), **payload}
    compact = {"separators": (",", ":"), "allow_nan": False}
    lines = []
    for key, value in payload.items():
        if isinstance(value, list):
            items = ",\n  ".join(json.dumps(item, **compact) for item in value)
            body = f"[\n  {items}\n ]" if value else "[]"
        else:
            body = json.dumps(value, **compact)
        lines.append(f" {json.dumps(key)}: {body}")
    path = OUT / name
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {path}")


# ----------------------------------------------------------------------------
# Input series.


def series_catalogue():
    """Named univariate series covering the shapes the monitor sees."""
    out = {}
    rng = np.random.default_rng(20240101)
    out["noisy"] = 100.0 + rng.normal(0.0, 2.5, 200)
    rng = np.random.default_rng(20240102)
    out["level_shift"] = np.concatenate([rng.normal(10.0, 1.0, 80), rng.normal(16.0, 1.0, 70)])
    rng = np.random.default_rng(20240103)
    x = rng.normal(0.0, 1.0, 120)
    idx = rng.choice(120, size=8, replace=False)
    x[idx] += rng.choice([-1.0, 1.0], size=8) * rng.uniform(8.0, 20.0, size=8)
    out["outliers"] = x
    rng = np.random.default_rng(20240104)
    out["trend_noise"] = 0.3 * np.arange(150) + rng.normal(0.0, 1.5, 150)
    out["short_1"] = np.array([4.25])
    out["short_2"] = np.array([4.25, -1.5])
    out["short_3"] = np.array([4.25, -1.5, 9.0])
    out["constant"] = np.full(30, 7.5)
    rng = np.random.default_rng(20240105)
    x = rng.normal(50.0, 5.0, 60)
    x[[0, 1, 10, 11, 12, 30, 59]] = np.nan
    x[20] = np.inf
    x[40] = -np.inf
    out["with_missing"] = x
    rng = np.random.default_rng(20240106)
    out["integers"] = rng.integers(0, 4, 80).astype(float)
    out["empty"] = np.array([], dtype=float)
    return out


# ----------------------------------------------------------------------------
# Smoothing: pandas.


def gen_smoothing(catalogue):
    cases = []
    for name, x in catalogue.items():
        s = pd.Series(x, dtype=float)
        cases.append(
            {
                "name": name,
                "values": encs(x),
                "ewma": {str(span): encs(s.ewm(span=span, adjust=False).mean()) for span in SPANS},
                "rolling_median": {
                    str(w): encs(s.rolling(w, min_periods=1).median()) for w in WINDOWS
                },
            }
        )
    write(
        "smoothing.json",
        {
            "reference": "pandas Series.ewm(span=N, adjust=False).mean(); "
            "Series.rolling(N, min_periods=1).median()",
            "cases": cases,
        },
    )


# ----------------------------------------------------------------------------
# Trend lines: numpy.polyfit and statsmodels RLM(HuberT).


def gen_trend():
    cases = []

    def add(name, x, y, rlm=True):
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        slope, intercept = np.polyfit(x, y, 1)
        case = {
            "name": name,
            "x": encs(x),
            "y": encs(y),
            "polyfit": {"slope": enc(slope), "intercept": enc(intercept)},
            "fitted": encs(np.polyval([slope, intercept], x)),
        }
        if rlm:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sm.RLM(y, sm.add_constant(x, has_constant="add"), M=sm.robust.norms.HuberT(t=1.345)).fit()
            case["rlm"] = {
                "intercept": enc(res.params[0]),
                "slope": enc(res.params[1]),
                "scale": enc(res.scale),
                "iterations": int(res.fit_history["iteration"]),
            }
        cases.append(case)

    rng = np.random.default_rng(7001)
    x = np.arange(100, dtype=float)
    add("noisy_line", x, 2.0 + 0.75 * x + rng.normal(0.0, 3.0, 100))
    rng = np.random.default_rng(7002)
    x = np.sort(rng.uniform(0.0, 50.0, 60))
    y = -4.0 + 1.5 * x + rng.normal(0.0, 1.0, 60)
    bad = rng.choice(60, size=7, replace=False)
    y[bad] += rng.uniform(20.0, 60.0, size=7)
    add("gross_outliers", x, y)
    rng = np.random.default_rng(7003)
    x = np.arange(80, dtype=float)
    y = np.where(x < 50, 5.0, 12.0) + rng.normal(0.0, 0.8, 80)
    add("level_shift", x, y)
    rng = np.random.default_rng(7004)
    x = np.arange(40, dtype=float)
    add("heavy_tails", x, 0.2 * x + rng.standard_t(1.5, 40))
    add("three_points", [0.0, 1.0, 2.0], [1.0, 3.5, 4.0])
    add("constant_y", np.arange(12, dtype=float), np.full(12, 3.25))
    add("exact_line", np.arange(10, dtype=float), 3.0 - 0.5 * np.arange(10, dtype=float))
    rng = np.random.default_rng(7005)
    x = 1_700_000_000.0 + 3600.0 * np.arange(48)
    add("epoch_seconds", x, 1e-4 * (x - x[0]) + rng.normal(0.0, 0.5, 48), rlm=False)
    add("two_points", [1.0, 3.0], [2.0, 7.0], rlm=False)
    write(
        "trend.json",
        {
            "reference": "numpy.polyfit(x, y, 1); statsmodels RLM(y, add_constant(x), "
            "M=HuberT(t=1.345)).fit() defaults",
            "cases": cases,
        },
    )


# ----------------------------------------------------------------------------
# Change points: ruptures Pelt(model="l2", min_size=2, jump=1).


def robust_sigma(v):
    v = np.asarray(v, dtype=float)
    if v.size == 0:
        return 0.0
    dev = np.abs(v - np.median(v))
    mad = np.median(dev)
    if mad > 0:
        return MAD_TO_SIGMA * mad
    return MEAN_AD_TO_SIGMA * np.mean(dev)


def default_penalty(x):
    x = np.asarray(x, dtype=float)
    n = x.size
    if n < 2:
        return 0.0
    sigma = robust_sigma(np.diff(x)) / math.sqrt(2.0)
    if sigma == 0 or not math.isfinite(sigma):
        sigma = float(np.std(x))
    return 2.0 * sigma * sigma * math.log(n)


def gen_changepoints():
    cases = []

    def add(name, x, penalties):
        x = np.asarray(x, dtype=float)
        dp = default_penalty(x)
        results = []
        for pen in list(penalties) + [dp]:
            bkps = rpt.Pelt(model="l2", min_size=2, jump=1).fit(x).predict(pen=pen)
            results.append({"penalty": enc(pen), "breakpoints": [int(b) for b in bkps]})
        cost = rpt.costs.CostL2().fit(x)
        n = x.size
        rng = np.random.default_rng(n)
        pairs = {(0, n)}
        for _ in range(40):
            s = int(rng.integers(0, n - 1))
            e = int(rng.integers(s + 2, n + 1)) if s + 2 <= n else n
            if e - s >= 2:
                pairs.add((s, e))
        costs = [[s, e, enc(cost.error(s, e))] for (s, e) in sorted(pairs)]
        cases.append(
            {
                "name": name,
                "values": encs(x),
                "default_penalty": enc(dp),
                "results": results,
                "costs": costs,
            }
        )

    pens = [0.0, 0.5, 2.0, 10.0, 50.0, 1000.0]
    rng = np.random.default_rng(9001)
    add(
        "three_levels",
        np.concatenate([rng.normal(0.0, 1.0, 70), rng.normal(4.0, 1.0, 60), rng.normal(1.5, 1.0, 70)]),
        pens,
    )
    rng = np.random.default_rng(9002)
    add("noise_only", rng.normal(20.0, 3.0, 150), pens)
    rng = np.random.default_rng(9003)
    add(
        "small_shifts",
        np.concatenate([rng.normal(0.0, 1.0, 40), rng.normal(1.2, 1.0, 40), rng.normal(-0.8, 1.0, 40)]),
        pens,
    )
    add("step_integers", [0, 0, 0, 5, 5, 5, 5, 1, 1, 1, 1, 1, 9, 9], pens)
    rng = np.random.default_rng(9004)
    add("random_integers", rng.integers(0, 3, 60).astype(float), pens + [1.0, 3.0])
    add("alternating", [0.0, 1.0] * 10, pens + [0.25, 1.0])
    add("constant", np.full(25, 3.0), pens)
    add("length_2", [1.0, 4.0], pens)
    add("length_3", [1.0, 4.0, 2.0], pens)
    add("length_4", [1.0, 1.0, 8.0, 8.0], pens)
    add("length_5", [1.0, 1.0, 8.0, 8.0, 8.0], pens)
    rng = np.random.default_rng(9005)
    add("offset_1e6", 1e6 + np.concatenate([rng.normal(0.0, 1.0, 50), rng.normal(3.0, 1.0, 50)]), pens)
    rng = np.random.default_rng(9006)
    add(
        "long_many_levels",
        np.concatenate([rng.normal(level, 1.0, 100) for level in [0.0, 3.0, -2.0, 5.0, 5.5, 0.0]]),
        [2.0, 10.0, 30.0, 100.0],
    )
    write(
        "changepoints.json",
        {
            "reference": 'ruptures.Pelt(model="l2", min_size=2, jump=1).fit(x).predict(pen); '
            "costs are CostL2().error(start, end)",
            "cases": cases,
        },
    )


# ----------------------------------------------------------------------------
# Drift: PSI (numpy), KS (scipy), Wasserstein (scipy).


def psi(ref, live):
    edges = np.quantile(ref, np.arange(1, 10) / 10)
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=10) / ref.size
    q = np.bincount(np.searchsorted(edges, live, side="right"), minlength=10) / live.size
    p = np.maximum(p, PSI_EPSILON)
    q = np.maximum(q, PSI_EPSILON)
    return edges, float(np.sum((q - p) * np.log(q / p)))


def gen_drift():
    cases = []

    def add(name, ref, live):
        ref = np.asarray(ref, dtype=float)
        live = np.asarray(live, dtype=float)
        r = ref[np.isfinite(ref)]
        l = live[np.isfinite(live)]
        edges, psi_value = psi(r, l)
        auto = st.ks_2samp(r, l)
        n1, n2 = r.size, l.size
        auto_method = "exact" if max(n1, n2) <= 10000 else "asymp"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            st.ks_2samp(r, l, method="exact" if auto_method == "exact" else "asymp")
            if auto_method == "exact" and any("Switching" in str(w.message) for w in caught):
                auto_method = "asymp"
        with warnings.catch_warnings():
            # n1 = n2 = 1 rounds scipy's n to 0: a NaN p-value, with a warning.
            warnings.simplefilter("ignore")
            asymp = st.ks_2samp(r, l, method="asymp")
        w = st.wasserstein_distance(r, l)
        sd = float(np.std(r))
        norm = w / sd if sd > 0 else (0.0 if w == 0 else math.inf)
        cases.append(
            {
                "name": name,
                "reference": encs(ref),
                "live": encs(live),
                "deciles": encs(edges),
                "psi": enc(psi_value),
                "ks_auto": {"statistic": enc(auto.statistic), "p_value": enc(auto.pvalue), "method": auto_method},
                "ks_asymp": {"statistic": enc(asymp.statistic), "p_value": enc(asymp.pvalue)},
                "wasserstein": enc(w),
                "normalized_wasserstein": enc(norm),
            }
        )

    rng = np.random.default_rng(5001)
    add("same_distribution", rng.normal(0, 1, 500), rng.normal(0, 1, 300))
    rng = np.random.default_rng(5002)
    add("mean_shift", rng.normal(0, 1, 400), rng.normal(0.4, 1, 400))
    rng = np.random.default_rng(5003)
    add("scale_change", rng.normal(10, 2, 250), rng.normal(10, 3.5, 180))
    rng = np.random.default_rng(5004)
    add("lognormal_vs_shifted", rng.lognormal(0, 0.8, 1000), rng.lognormal(0.15, 0.8, 700))
    rng = np.random.default_rng(5005)
    add("tiny_samples", rng.normal(0, 1, 5), rng.normal(1, 1, 7))
    add("single_each", [1.0], [2.0])
    add("three_each", [1.0, 2.0, 3.0], [2.5, 3.5, 4.5])
    rng = np.random.default_rng(5006)
    add("integer_ties", rng.integers(0, 6, 300).astype(float), rng.integers(1, 7, 260).astype(float))
    rng = np.random.default_rng(5007)
    ref = np.where(rng.uniform(size=400) < 0.7, 0.0, rng.exponential(3.0, 400))
    live = np.where(rng.uniform(size=350) < 0.5, 0.0, rng.exponential(3.0, 350))
    add("zero_inflated", ref, live)
    rng = np.random.default_rng(5008)
    ref = rng.normal(0, 1, 200)
    live = rng.normal(0.2, 1, 150)
    ref[[3, 50, 199]] = np.nan
    live[[0, 7]] = np.nan
    live[9] = np.inf
    add("with_missing", ref, live)
    rng = np.random.default_rng(5009)
    # Rounded to 2 decimals to keep the fixture small; ties are fine for KS.
    add("large_asymptotic", np.round(rng.normal(0, 1, 12000), 2), np.round(rng.normal(0.03, 1, 11000), 2))
    rng = np.random.default_rng(5010)
    add("unbalanced", rng.normal(0, 1, 2000), rng.normal(0.3, 1, 40))
    rng = np.random.default_rng(5011)
    add("disjoint", rng.uniform(0, 1, 60), rng.uniform(2, 3, 45))
    add("constant_reference", np.full(50, 2.0), [2.0, 2.0, 3.0])
    rng = np.random.default_rng(5012)
    add("equal_sizes", rng.normal(0, 1, 150), rng.normal(0.25, 1, 150))
    write(
        "drift.json",
        {
            "reference": "PSI: numpy (np.quantile deciles, searchsorted right, shares floored at 1e-4); "
            "scipy.stats.ks_2samp (auto and asymp); scipy.stats.wasserstein_distance / np.std(reference)",
            "cases": cases,
        },
    )


# ----------------------------------------------------------------------------
# KS distributions: scipy kstwo.sf and the exact two-sample kernels.


def gen_ks_distributions():
    kstwo = []
    ns = [1, 2, 3, 5, 10, 25, 60, 100, 140, 141, 300, 1000, 5000, 30000, 100000, 100001, 400000, 2000000]
    for n in ns:
        xs = set()
        for z in [0.2, 0.35, 0.5, 0.6, 0.8, 0.95, 1.1, 1.3, 1.5, 1.8, 2.2, 3.0, 4.5, 8.0, 20.0]:
            x = z / math.sqrt(n)
            if 0 < x < 1:
                xs.add(x)
        for x in [0.3 / n, 0.7 / n, 1.0 / n, 1.5 / n, 0.45, 0.5, 0.55, 0.75, 0.9, 1 - 1.0 / n, 0.999]:
            if 0 < x < 1:
                xs.add(x)
        for x in sorted(xs):
            kstwo.append([n, enc(x), enc(st.kstwo.sf(x, n))])
    exact = []
    for n1, n2 in [(3, 3), (5, 5), (10, 10), (40, 40), (300, 300), (4, 6), (7, 5), (13, 29), (60, 45), (100, 250), (999, 1000)]:
        g = math.gcd(n1, n2)
        lcm = (n1 // g) * n2
        for frac in [0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 1.0]:
            h = max(1, int(round(frac * lcm / max(1, int(math.sqrt(min(n1, n2)))))))
            h = min(h, lcm)
            for hh in sorted({h, max(1, lcm // 3), lcm}):
                ok, d, p = _stats_py._attempt_exact_2kssamp(n1, n2, g, hh / lcm, "two-sided")
                exact.append([n1, n2, hh, bool(ok), enc(d), enc(p)])
    write(
        "kstwo.json",
        {
            "reference": "scipy.stats.kstwo.sf(x, n) as [n, x, sf]; "
            "scipy.stats._stats_py._attempt_exact_2kssamp(n1, n2, g, h/lcm, 'two-sided') "
            "as [n1, n2, h, success, d, p]",
            "kstwo_sf": kstwo,
            "exact": exact,
        },
    )


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    gen_smoothing(series_catalogue())
    gen_trend()
    gen_changepoints()
    gen_drift()
    gen_ks_distributions()


if __name__ == "__main__":
    main()
