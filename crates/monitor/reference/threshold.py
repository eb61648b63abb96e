#!/usr/bin/env python3
"""Regenerate crates/monitor/tests/fixtures/threshold_*.json, the reference
of QueryThreshold (docs/monitoring.md, "Threshold trade-offs").

Each fixture holds deterministic outcomes (seeded numpy generators: scores
as single-precision floats, ties included, some outcomes unlabelled) and
what scikit-learn's precision_recall_curve (pinned in requirements.txt)
returns for their labelled part:

- "exact": the curve over the scores themselves (QueryThreshold with
  exact = true);
- "binned": the curve over the scores rounded down to the monitor's bin
  edges, the float32 nearest k/1000 (QueryThreshold's score histogram);
- "best_f1": for each, the curve's threshold with the highest F1 =
  2tp / (2tp + fp + fn), the highest threshold on a tie (the monitor's
  rule; scikit-learn has none), and "at": tp, fp, predicted positives at a
  few requested thresholds, counted with numpy.

The Rust test crates/monitor/tests/it/threshold.rs stores the outcomes and
labels through RecordOutcomes and RecordLabels and compares. CI never runs
Python: the JSON files are committed.

Encoding: floats as Python's shortest round-trip repr; a label is 1, 0 or
null (not labelled).

Usage:
    python3 -m venv /tmp/thr-venv
    /tmp/thr-venv/bin/pip install -r crates/monitor/reference/requirements.txt
    /tmp/thr-venv/bin/python crates/monitor/reference/threshold.py
"""

import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.metrics import precision_recall_curve

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
EDGES = np.arange(1001, dtype=np.float32) / np.float32(1000)
REQUESTED = [0.0, 0.25, 0.4, 0.5, 0.8125, 1.0]


def rounded_down(scores):
    """Each score's bin lower edge: the largest edge <= score."""
    index = np.searchsorted(EDGES, scores, side="right") - 1
    return EDGES[np.clip(index, 0, len(EDGES) - 1)]


def counts_at(scores, labels, t):
    """tp, fp and predicted positives (labelled or not) at threshold t."""
    t = np.float32(t)
    up = scores >= t
    labelled = labels >= 0
    return {
        "threshold": float(t),
        "true_positives": int(np.sum(up & (labels == 1))),
        "false_positives": int(np.sum(up & (labels == 0))),
        "predicted_positive": int(np.sum(up)),
    }


def curve(scores, labels):
    labelled = labels >= 0
    if not labelled.any():
        return {"thresholds": [], "precision": [], "recall": [], "best_f1": None}
    y, s = labels[labelled], scores[labelled]
    precision, recall, thresholds = precision_recall_curve(y, s)
    positives = int(np.sum(y == 1))
    best, best_f1 = None, None
    if positives > 0:
        for t in thresholds:
            tp = int(np.sum((s >= t) & (y == 1)))
            fp = int(np.sum((s >= t) & (y == 0)))
            f1 = 2 * tp / (2 * tp + fp + (positives - tp))
            if best_f1 is None or f1 >= best_f1:
                best, best_f1 = float(t), f1
    return {
        "thresholds": [float(t) for t in thresholds],
        "precision": [float(p) for p in precision],
        "recall": [float(r) for r in recall],
        "best_f1": best,
    }


def fixture(name, scores, labels):
    scores = np.asarray(scores, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)  # -1: not labelled
    binned = rounded_down(scores)
    data = {
        "name": name,
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "scores": [float(s) for s in scores],
        "labels": [None if l < 0 else int(l) for l in labels],
        "exact": curve(scores, labels),
        "binned": curve(binned, labels),
        "exact_at": [counts_at(scores, labels, t) for t in REQUESTED],
        "binned_at": [counts_at(binned, labels, t) for t in REQUESTED],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"threshold_{name}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(path, len(scores))


def main():
    rng = np.random.default_rng(20261205)
    # 1 500 outcomes: positives score higher; a fifth rounded to two
    # decimals (ties); one in eight unlabelled; a few at 0 and 1.
    n = 1500
    truth = rng.random(n) < 0.35
    scores = np.where(truth, rng.beta(5, 2, n), rng.beta(2, 5, n)).astype(np.float32)
    ties = rng.random(n) < 0.2
    scores[ties] = np.round(scores[ties], 2)
    scores[:5] = [0.0, 1.0, 1.0, 0.0, 0.5]
    labels = np.where(truth, 1, 0)
    labels[rng.random(n) < 0.125] = -1
    fixture("seeded", scores, labels)

    # Only bin edges (three decimals): the histogram is exact.
    m = 400
    edge_scores = EDGES[rng.integers(0, 1001, m)]
    edge_labels = (rng.random(m) < edge_scores).astype(np.int64)
    edge_labels[rng.random(m) < 0.1] = -1
    fixture("edges", edge_scores, edge_labels)

    # Heavy ties: five distinct scores.
    k = 60
    tie_scores = np.array([0.1, 0.4, 0.4, 0.7, 0.95], dtype=np.float32)[rng.integers(0, 5, k)]
    fixture("ties", tie_scores, (rng.random(k) < tie_scores).astype(np.int64))

    fixture("all_negative", rng.random(30).astype(np.float32), np.zeros(30, dtype=np.int64))
    fixture("all_positive", rng.random(30).astype(np.float32), np.ones(30, dtype=np.int64))
    fixture("unlabelled", rng.random(12).astype(np.float32), np.full(12, -1, dtype=np.int64))


if __name__ == "__main__":
    main()
