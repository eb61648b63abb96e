"""Train the ``out_of_policy`` model and ship it as ONNX for the scorer.

Business question: *is this matched expense out of travel policy?* The model
is a scikit-learn ``HistGradientBoostingClassifier`` (gradient-boosted trees
with native NaN handling) trained on the (budget, line item) pairs whose
``matched`` label is 1, target ``out_of_policy``, on 20 columns of the
``budget_expense_pairs`` v1 feature matrix. It is exported with skl2onnx
(``zipmap=False``: a float32 ``probabilities`` tensor [N, 2]; input ``input``,
float32 [None, 20]) and served by ``triad-score`` through tract.

Reproduce, from the repository root::

    cargo build --release -p triad-cli
    target/release/triad synth --out triad-data/synth --seed 42 --users 500
    target/release/triad featurize triad-data/synth/train.jsonl > triad-data/synth/train_features.csv
    target/release/triad featurize triad-data/synth/test.jsonl > triad-data/synth/test_features.csv
    python3 -m venv /tmp/onnx-venv
    /tmp/onnx-venv/bin/pip install -r models/requirements.txt
    /tmp/onnx-venv/bin/python models/train_out_of_policy.py \\
        --train-features triad-data/synth/train_features.csv \\
        --train-labels triad-data/synth/train_labels.csv \\
        --test-features triad-data/synth/test_features.csv \\
        --test-labels triad-data/synth/test_labels.csv \\
        --test-requests triad-data/synth/test.jsonl \\
        --schema-hash 1bb65f312d0111f9

(the schema hash is the one ``target/release/triad up --check-only
--preprocess-addr 127.0.0.1:0`` prints). It writes:

- ``models/out_of_policy/1/``: ``model.onnx``, ``model.toml`` (metadata the
  scorer reads, with held-out metrics) and the model card ``README.md``;
- ``crates/score/tests/fixtures/out_of_policy_parity.json``: 50 test rows
  (NaN encoded as null) with scikit-learn's and onnxruntime's probability,
  for the Rust parity test;
- ``models/out_of_policy/onnxruntime_timing.json``: onnxruntime's single
  thread throughput on 1, 1 000 and 100 000 rows, for the benchmark
  comparison with tract (``cargo bench -p triad-score --bench models``).

Everything is seeded: a re-run on the same CSVs writes a byte-identical
``model.onnx`` and fixture (``trained_at`` and the timings differ; pass
``--trained-at`` to pin the former).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import platform
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import skl2onnx
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score, precision_score, recall_score
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType

REPO = Path(__file__).resolve().parent.parent

MODEL_NAME = "out_of_policy"
MODEL_VERSION = "1"
DESCRIPTION = "Is this matched expense out of travel policy?"

SCHEMA_NAME = "budget_expense_pairs"
SCHEMA_VERSION = "1"
KEY_COLUMNS = ["budget_id", "itemization_id"]
N_SCHEMA_FEATURES = 35

# The model reads the 20 computed features (vendor similarity, type
# agreement, amounts, dates). Their missing flags are left out: the trees see
# NaN directly, and a flag is set exactly when its features are NaN.
FEATURES = [
    "travel_vendor_jaro_winkler",
    "travel_vendor_levenshtein",
    "travel_vendor_token_jaccard",
    "purchase_vendor_jaro_winkler",
    "purchase_vendor_levenshtein",
    "purchase_vendor_token_jaccard",
    "type_agrees_expense_type_name_itemization",
    "type_agrees_expense_category_itemization",
    "type_agrees_expense_type_name_expense",
    "type_agrees_expense_category_expense",
    "amount_ratio_actual_cost",
    "amount_abs_diff_actual_cost",
    "amount_rel_diff_actual_cost",
    "amount_ratio_budget_price",
    "amount_abs_diff_budget_price",
    "amount_rel_diff_budget_price",
    "days_from_trip_start",
    "days_from_trip_end",
    "in_trip_window",
    "days_since_budget_generated",
]

SEED = 42
THRESHOLD = 0.5
HYPERPARAMETERS = {
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_depth": 3,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 10,
    "l2_regularization": 1.0,
    "early_stopping": False,
    "random_state": SEED,
}

INPUT_NAME = "input"
PROBABILITIES = "probabilities"
ONNX_OPSET = {"": 17, "ai.onnx.ml": 1}

N_FIXTURE_ROWS = 50
PARITY_TOLERANCE = 1e-5
TIMING_SIZES = [1, 1_000, 100_000]


def fail(message: str) -> None:
    """Stops with a one-line error."""
    sys.exit(f"error: {message}")


def schema_hash(name: str, version: str, feature_names: list[str]) -> str:
    """``triad_features::schema::schema_hash``: SHA-256 over the name, the
    version and each feature name, each followed by a newline; the first 16
    hex digits."""
    digest = hashlib.sha256()
    for part in [name, version, *feature_names]:
        digest.update(part.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def read_features(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Reads a ``triad featurize`` CSV; returns it and its feature names."""
    # Read as text and parse with Python's correctly rounded float(), so each
    # value is the exact float32 the featurizer printed (an empty cell is NaN).
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    header = list(frame.columns)
    if header[:2] != KEY_COLUMNS:
        fail(f"{path}: expected a header starting with {KEY_COLUMNS}, got {header[:2]}")
    names = header[2:]
    if len(names) != N_SCHEMA_FEATURES:
        fail(f"{path}: expected {N_SCHEMA_FEATURES} feature columns, got {len(names)}")
    for name in names:
        try:
            frame[name] = [float(cell) if cell != "" else math.nan for cell in frame[name]]
        except ValueError as error:
            fail(f"{path}: expected numbers or empty cells in column {name}, got {error}")
    return frame, names


def read_labels(path: Path) -> pd.DataFrame:
    """Reads a ``triad synth`` label CSV."""
    frame = pd.read_csv(path, dtype={"budget_id": str, "itemization_id": str})
    expected = KEY_COLUMNS + ["matched", "out_of_policy"]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        fail(f"{path}: expected columns {expected}, missing {missing}")
    for column in ["matched", "out_of_policy"]:
        values = set(frame[column].unique())
        if not values <= {0, 1}:
            fail(f"{path}: expected 0/1 in {column}, got {sorted(values)}")
    return frame


def matched_pairs(features: pd.DataFrame, labels: pd.DataFrame, what: str) -> pd.DataFrame:
    """Joins features with labels (one label per pair) and keeps matched pairs."""
    joined = features.merge(labels, on=KEY_COLUMNS, how="left", validate="one_to_one")
    unlabeled = joined["matched"].isna().sum()
    if unlabeled:
        fail(f"{what}: expected a label for every featurized pair, {unlabeled} have none")
    return joined[joined["matched"] == 1].reset_index(drop=True)


def to_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The model's input matrix: float32, as the scorer gets it (NaN = missing)."""
    return np.ascontiguousarray(frame[FEATURES].to_numpy(dtype=np.float32))


def snap_thresholds_to_float32(model: HistGradientBoostingClassifier) -> int:
    """Makes every split threshold a float32 value without changing a single
    prediction on float32 inputs.

    scikit-learn compares ``x <= t`` in float64; ONNX (onnxruntime and tract)
    compares in float32 against ``float32(t)``, which rounds to nearest and may
    land above ``t``: an input ``x`` with ``t < x <= float32(t)`` would then
    take the other branch. For a float32 ``x``, ``x <= t`` holds exactly when
    ``x <= t'`` with ``t'`` the largest float32 not above ``t``, so replacing
    ``t`` by ``t'`` leaves scikit-learn's decisions on float32 inputs (the only
    inputs the scorer has) unchanged, and the float32 export becomes exact.
    Returns how many thresholds moved.
    """
    moved = 0
    for iteration in model._predictors:
        for predictor in iteration:
            nodes = predictor.nodes
            for i in np.flatnonzero(nodes["is_leaf"] == 0):
                t = float(nodes["num_threshold"][i])
                down = np.float32(t)
                if float(down) > t:
                    down = np.nextafter(down, np.float32(-np.inf))
                if float(down) != t:
                    nodes["num_threshold"][i] = float(down)
                    moved += 1
    return moved


def check_thresholds_exact(model: HistGradientBoostingClassifier) -> None:
    """Every split threshold must be exactly representable in float32."""
    for iteration in model._predictors:
        for predictor in iteration:
            nodes = predictor.nodes
            splits = nodes["num_threshold"][nodes["is_leaf"] == 0]
            if not np.array_equal(splits.astype(np.float32).astype(np.float64), splits):
                fail("a split threshold is not a float32 value after snapping")


def export_onnx(model: HistGradientBoostingClassifier) -> onnx.ModelProto:
    """skl2onnx export: float32 input [None, n_features], probabilities [N, 2]."""
    proto = to_onnx(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, len(FEATURES)]))],
        options={id(model): {"zipmap": False}},
        target_opset=ONNX_OPSET,
    )
    onnx.checker.check_model(proto)
    outputs = [o.name for o in proto.graph.output]
    if outputs != ["label", PROBABILITIES]:
        fail(f"expected ONNX outputs ['label', '{PROBABILITIES}'], got {outputs}")
    ops = sorted({(n.domain or "ai.onnx", n.op_type) for n in proto.graph.node})
    print(f"onnx graph ops: {ops}")
    return proto


def fold_base_value(proto: onnx.ModelProto) -> float:
    """Moves the ensemble's base value (the boosting's initial log-odds) into
    the leaves of the first tree and drops ``base_values``; returns it.

    skl2onnx writes a binary classifier as one score per leaf (class 0) plus a
    single ``base_values`` entry. onnxruntime accepts that, but tract sizes
    ``base_values`` by the number of class labels (2) and refuses the graph.
    Every row ends in exactly one leaf of the first tree, so adding the base
    value to each of that tree's leaves computes the same sum with no base
    value at all, a layout both runtimes read the same way.
    """
    (node,) = [n for n in proto.graph.node if n.op_type == "TreeEnsembleClassifier"]
    attrs = {a.name: a for a in node.attribute}
    base = list(attrs["base_values"].floats)
    if len(base) != 1:
        fail(f"expected one base value in the binary tree ensemble, got {len(base)}")
    if set(attrs["class_ids"].ints) != {0}:
        fail("expected the binary layout (every leaf weight on class 0)")
    weights = attrs["class_weights"].floats
    for i, tree in enumerate(attrs["class_treeids"].ints):
        if tree == 0:
            weights[i] = float(np.float32(float(weights[i]) + base[0]))
    node.attribute.remove(attrs["base_values"])
    onnx.checker.check_model(proto)
    return base[0]


def ort_session(proto_bytes: bytes) -> ort.InferenceSession:
    """A single-threaded onnxruntime session."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(proto_bytes, options, providers=["CPUExecutionProvider"])


def ort_positive(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    """onnxruntime's probability of the positive class per row."""
    (probabilities,) = session.run([PROBABILITIES], {INPUT_NAME: x})
    return probabilities[:, 1]


def metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 and support at the threshold."""
    predicted = (score >= THRESHOLD).astype(int)
    return {
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "support": float(y.sum()),
    }


def spend_caught(test: pd.DataFrame, score: np.ndarray, requests: Path) -> float | None:
    """Share of out-of-policy spend (expensed amount) the model flags, on the
    test split; None when no out-of-policy pair has an amount."""
    amounts: dict[str, float] = {}
    with requests.open() as lines:
        for line in lines:
            if not line.strip():
                continue
            for item in json.loads(line).get("all_user_expense_lineitems", []):
                try:
                    amounts[str(item["itemization_id"])] = float(item["expensed_amount_itemization"])
                except (KeyError, TypeError, ValueError):
                    pass
    amount = test["itemization_id"].map(amounts).to_numpy(dtype=np.float64)
    positive = (test["out_of_policy"].to_numpy() == 1) & np.isfinite(amount)
    total = amount[positive].sum()
    if total <= 0:
        return None
    caught = amount[positive & (score >= THRESHOLD)].sum()
    return float(caught / total)


def pick_fixture_rows(test: pd.DataFrame, x: np.ndarray) -> np.ndarray:
    """50 test rows, seeded: 20 with a missing input, 15 out of policy, the
    rest at random."""
    rng = np.random.default_rng(SEED)
    has_nan = np.isnan(x).any(axis=1)
    positive = test["out_of_policy"].to_numpy() == 1
    chosen: list[int] = []

    def take(pool: np.ndarray, n: int) -> None:
        pool = np.setdiff1d(pool, np.array(chosen, dtype=np.int64))
        chosen.extend(rng.choice(pool, size=min(n, len(pool)), replace=False).tolist())

    take(np.flatnonzero(has_nan), 20)
    take(np.flatnonzero(positive & ~has_nan), 15)
    take(np.arange(len(x)), N_FIXTURE_ROWS - len(chosen))
    return np.sort(np.array(chosen, dtype=np.int64))


def json_float(value: float) -> float | None:
    """A float32 value as JSON: the exact decimal of the float32, or None for NaN."""
    return None if math.isnan(value) else float(np.float32(value))


def fixture_json(fixture: dict) -> str:
    """The fixture as JSON with one line per row, so a diff shows which rows
    changed."""
    head = {key: value for key, value in fixture.items() if key != "rows"}
    text = json.dumps(head, indent=1)[:-2]
    rows = ",\n".join("  " + json.dumps(row) for row in fixture["rows"])
    return f'{text},\n "rows": [\n{rows}\n ]\n}}\n'


def time_onnxruntime(session: ort.InferenceSession, rows: np.ndarray) -> list[dict]:
    """Rows per second of a single-threaded session on batches built from
    ``rows`` repeated (as the Rust benchmark builds them)."""
    results = []
    for n in TIMING_SIZES:
        x = np.ascontiguousarray(np.resize(rows, (n, rows.shape[1])))
        ort_positive(session, x)  # warm-up
        samples = []
        for _ in range(7):
            calls, start = 0, time.perf_counter()
            while True:
                ort_positive(session, x)
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= 0.2 and calls >= 3:
                    break
            samples.append(elapsed / calls)
        per_call = float(np.median(samples))
        results.append(
            {
                "rows": n,
                "seconds_per_call": per_call,
                "rows_per_second": n / per_call,
            }
        )
        print(f"onnxruntime, 1 thread, {n} rows: {n / per_call:,.0f} rows/s ({per_call * 1e6:.1f} us/call)")
    return results


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML for these values)."""
    return json.dumps(value)


def write_model_toml(path: Path, trained_at: str, hash_: str, metric_values: dict[str, float]) -> None:
    """Writes ``model.toml`` (what ``triad_score::model::ModelMeta`` reads)."""
    lines = [
        'kind = "onnx"',
        f"description = {toml_string(DESCRIPTION)}",
        f"threshold = {THRESHOLD}",
        f"trained_at = {toml_string(trained_at)}",
        "features = [",
        *[f"    {toml_string(name)}," for name in FEATURES],
        "]",
        "",
        "[schema]",
        f"name = {toml_string(SCHEMA_NAME)}",
        f"version = {toml_string(SCHEMA_VERSION)}",
        f"hash = {toml_string(hash_)}",
        "",
        "[metrics]",
        *[f"{key} = {round(value, 6)!r}" for key, value in sorted(metric_values.items())],
        "",
    ]
    text = "\n".join(lines)
    parsed = tomllib.loads(text)
    if parsed["features"] != FEATURES or parsed["schema"]["hash"] != hash_:
        fail(f"{path}: the written TOML does not read back as written")
    path.write_text(text)


def write_card(
    path: Path,
    hash_: str,
    test_metrics: dict[str, float],
    train_metrics: dict[str, float],
    n_train: int,
    n_test: int,
    spend: float | None,
    onnx_bytes: int,
    n_trees: int,
    base: float,
) -> None:
    """Writes the model card ``README.md``."""
    spend_line = (
        f"On the held-out split the model flags **{spend:.1%}** of the out-of-policy spend (expensed amount of the out-of-policy pairs)."
        if spend is not None
        else "The share of out-of-policy spend caught was not computed (run with `--test-requests`)."
    )
    features = "\n".join(f"- `{name}`" for name in FEATURES)
    params = ", ".join(f"`{k}={v!r}`" for k, v in HYPERPARAMETERS.items())
    text = f"""# {MODEL_NAME} v{MODEL_VERSION}

{DESCRIPTION}

## Business question

Once an expense line item is matched to the travel budget it pays for, does it break the travel policy: an overrun of the budgeted price beyond the allowed margin, a hotel or car charge dated outside the trip, or a premium purchase (first class, upgrade, minibar, luxury car)? Flagging these automatically sends the few expenses that need a reviewer to one, instead of every expense to everyone.

Its score only means something for pairs that the matcher (`budget_expense_matcher`) matched, since it was trained on matched pairs only; so it ships gated on the matcher (`gate = "budget_expense_matcher"` in `../serving.toml`): it scores only the pairs the matcher matched, in the same request, and answers the others "not scored" (never 0).

## Model

scikit-learn `HistGradientBoostingClassifier` ({n_trees} trees, depth at most {HYPERPARAMETERS['max_depth']}, {params}), exported with skl2onnx to ONNX (`kind = "onnx"`, `model.onnx`, {onnx_bytes:,} bytes: one `ai.onnx.ml` `TreeEnsembleClassifier` node; input `{INPUT_NAME}` float32 [N, {len(FEATURES)}], outputs `label` and `{PROBABILITIES}` float32 [N, 2] (`zipmap=False`)). The scorer runs it with tract (pure Rust) and uses column 1 of `{PROBABILITIES}`; threshold {THRESHOLD}.

Missing inputs (NaN) are handled by the trees themselves: each split learned which side missing values go to, and the export keeps that (`nodes_missing_value_tracks_true`). Split thresholds are snapped to float32 before export (which changes no prediction on float32 inputs), so scikit-learn, onnxruntime and tract take the same branch for every input. The ensemble's base value (the initial log-odds, {base:+.6f}) is folded into the leaves of the first tree, since tract refuses the single `base_values` entry skl2onnx writes for a binary classifier; every row ends in exactly one leaf of that tree, so the sum is the same. `crates/score/tests/it/onnx_parity.rs` checks tract against scikit-learn and onnxruntime on {N_FIXTURE_ROWS} held-out rows (within {PARITY_TOLERANCE:g}).

It reads {len(FEATURES)} of the {N_SCHEMA_FEATURES} columns of feature schema `{SCHEMA_NAME}` v{SCHEMA_VERSION} (hash `{hash_}`), in this order:

{features}

## Data

Synthetic and reproducible, from the repository root:

```sh
cargo build --release -p triad-cli
target/release/triad synth --out triad-data/synth --seed 42 --users 500
target/release/triad featurize triad-data/synth/train.jsonl > triad-data/synth/train_features.csv
target/release/triad featurize triad-data/synth/test.jsonl > triad-data/synth/test_features.csv
python3 -m venv /tmp/onnx-venv && /tmp/onnx-venv/bin/pip install -r models/requirements.txt
/tmp/onnx-venv/bin/python models/train_out_of_policy.py \\
    --train-features triad-data/synth/train_features.csv --train-labels triad-data/synth/train_labels.csv \\
    --test-features triad-data/synth/test_features.csv --test-labels triad-data/synth/test_labels.csv \\
    --test-requests triad-data/synth/test.jsonl --schema-hash {hash_}
```

`triad synth` splits by user (25% held out). Training uses the pairs labeled `matched = 1` ({n_train} train pairs, {n_test} test pairs); the target is their `out_of_policy` label, which follows the synthetic travel policy (`crates/synth/src/policy.rs`) with 2% of labels flipped as noise. The premium-purchase rule depends on words in vendor and expense type names that no feature of the schema captures, which caps the recall this feature set can reach.

## Metrics

At threshold {THRESHOLD}:

| split | pairs | precision | recall | F1 | out of policy |
|---|---|---|---|---|---|
| held-out test | {n_test} | {test_metrics['precision']:.4f} | {test_metrics['recall']:.4f} | {test_metrics['f1']:.4f} | {int(test_metrics['support'])} |
| train | {n_train} | {train_metrics['precision']:.4f} | {train_metrics['recall']:.4f} | {train_metrics['f1']:.4f} | {int(train_metrics['support'])} |

The test split has few positives, so these figures move by several points between seeds.

Metrics of interest: **precision** (a false flag sends an in-policy expense to a reviewer and wastes their time and the traveller's goodwill) and **recall** (a missed flag lets an out-of-policy charge be reimbursed unreviewed).

Business metrics: the **share of out-of-policy spend caught** (expensed amount of flagged out-of-policy expenses over that of all out-of-policy expenses; it weighs a missed luxury hotel above a missed taxi) and the **median time to review** an out-of-policy expense (from filing to a reviewer's decision), which flagging should bring down. {spend_line}

## How to monitor it

- Every answered pair goes to the monitor, the ones the gate held back marked not scored and counted apart (`not_scored`); labels arriving later are joined by `(budget_id, itemization_id)` to the scored ones only, so precision and recall per day (with their EWMA and anomaly flags) are over the pairs the matcher matched.
- In SQL: `SELECT * FROM daily_precision_recall WHERE model = '{MODEL_NAME}' ORDER BY day;` and `SELECT * FROM mistakes WHERE model = '{MODEL_NAME}' ORDER BY scored_at DESC LIMIT 50;` for the latest false flags and misses with their inputs.
- Watch the drift of its input features against the training profile (PSI, KS, Wasserstein per feature), above all the amount ratios and differences and the trip-window dates, and the null rate of the fields they come from: a field that starts arriving empty upstream sends more rows down the trees' missing-value branches and shows there first.
- Watch the flag rate (share of matched pairs scored at or above the threshold) against the training rate of out-of-policy labels ({train_metrics['support'] / n_train:.1%}): a policy change shows there before labels arrive.

## Versioning

Drop a new version directory next to this one and the scorer serves it within a poll; pin or roll back with `version = "N"` in `../serving.toml`, or try a candidate in the shadow of the serving version with `shadow = "N"`.
"""
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-features", type=Path, required=True, help="`triad featurize` CSV of train.jsonl")
    parser.add_argument("--train-labels", type=Path, required=True, help="train_labels.csv of `triad synth`")
    parser.add_argument("--test-features", type=Path, required=True, help="`triad featurize` CSV of test.jsonl")
    parser.add_argument("--test-labels", type=Path, required=True, help="test_labels.csv of `triad synth`")
    parser.add_argument("--test-requests", type=Path, help="test.jsonl, for the share of out-of-policy spend caught")
    parser.add_argument("--schema-hash", help="expected feature schema hash (as `triad up --check-only` prints)")
    parser.add_argument("--trained-at", help="RFC 3339 training time (default: now, UTC)")
    parser.add_argument("--out", type=Path, default=REPO / "models" / MODEL_NAME / MODEL_VERSION, help="model version directory")
    parser.add_argument(
        "--fixture",
        type=Path,
        default=REPO / "crates" / "score" / "tests" / "fixtures" / f"{MODEL_NAME}_parity.json",
        help="parity fixture to write",
    )
    parser.add_argument("--timing", type=Path, default=REPO / "models" / MODEL_NAME / "onnxruntime_timing.json", help="onnxruntime timing file to write")
    parser.add_argument("--skip-timing", action="store_true", help="do not time onnxruntime")
    args = parser.parse_args()

    trained_at = args.trained_at or dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    try:
        dt.datetime.fromisoformat(trained_at.replace("Z", "+00:00"))
    except ValueError:
        fail(f"expected an RFC 3339 --trained-at, got {trained_at!r}")

    train_features, train_names = read_features(args.train_features)
    test_features, test_names = read_features(args.test_features)
    if test_names != train_names:
        fail(f"{args.test_features}: expected the same feature columns as {args.train_features}")
    hash_ = schema_hash(SCHEMA_NAME, SCHEMA_VERSION, train_names)
    if args.schema_hash is not None and args.schema_hash != hash_:
        fail(f"expected feature schema hash {args.schema_hash}, the CSV header gives {hash_}")
    unknown = [name for name in FEATURES if name not in train_names]
    if unknown:
        fail(f"expected the CSV to have the model's features, missing {unknown}")
    print(f"feature schema {SCHEMA_NAME} v{SCHEMA_VERSION}, hash {hash_}")

    train = matched_pairs(train_features, read_labels(args.train_labels), "train")
    test = matched_pairs(test_features, read_labels(args.test_labels), "test")
    x_train, y_train = to_matrix(train), train["out_of_policy"].to_numpy(dtype=int)
    x_test, y_test = to_matrix(test), test["out_of_policy"].to_numpy(dtype=int)
    print(f"matched pairs: {len(train)} train ({y_train.sum()} out of policy), {len(test)} test ({y_test.sum()} out of policy)")

    model = HistGradientBoostingClassifier(**HYPERPARAMETERS)
    model.fit(x_train, y_train)
    before = model.predict_proba(x_test)[:, 1], model.predict_proba(x_train)[:, 1]
    moved = snap_thresholds_to_float32(model)
    check_thresholds_exact(model)
    after = model.predict_proba(x_test)[:, 1], model.predict_proba(x_train)[:, 1]
    if not all(np.array_equal(b, a) for b, a in zip(before, after)):
        fail("snapping thresholds to float32 changed a prediction on float32 inputs")
    print(f"snapped {moved} split thresholds to float32; predictions unchanged")
    n_trees = sum(len(iteration) for iteration in model._predictors)

    skl_test = after[0]
    test_metrics = metrics(y_test, skl_test)
    train_metrics = metrics(y_train, after[1])
    spend = spend_caught(test, skl_test, args.test_requests) if args.test_requests else None
    print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in test_metrics.items()))

    proto = export_onnx(model)
    exported = ort_session(proto.SerializeToString())
    base = fold_base_value(proto)
    proto_bytes = proto.SerializeToString()
    session = ort_session(proto_bytes)

    # Parity over the whole test featurization (matched or not), not only the fixture.
    x_all = np.ascontiguousarray(test_features[FEATURES].to_numpy(dtype=np.float32))
    worst = float(np.max(np.abs(ort_positive(session, x_all) - model.predict_proba(x_all)[:, 1])))
    print(f"onnxruntime vs scikit-learn on all {len(x_all)} test pairs: max |diff| {worst:.3g}")
    if worst > PARITY_TOLERANCE:
        fail(f"expected onnxruntime within {PARITY_TOLERANCE} of scikit-learn, got {worst}")
    folded = float(np.max(np.abs(ort_positive(session, x_all) - ort_positive(exported, x_all))))
    print(f"folded base value {base:.6f} into the first tree: max |diff| vs skl2onnx's graph {folded:.3g}")
    if folded > PARITY_TOLERANCE:
        fail(f"expected folding the base value to change scores by at most {PARITY_TOLERANCE}, got {folded}")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model.onnx").write_bytes(proto_bytes)
    metric_values = dict(test_metrics)
    metric_values["test_rows"] = float(len(test))
    metric_values["train_rows"] = float(len(train))
    if spend is not None:
        metric_values["out_of_policy_spend_caught"] = spend
    write_model_toml(args.out / "model.toml", trained_at, hash_, metric_values)
    write_card(args.out / "README.md", hash_, test_metrics, train_metrics, len(train), len(test), spend, len(proto_bytes), n_trees, base)
    print(f"wrote {args.out} (model.onnx: {len(proto_bytes):,} bytes, {n_trees} trees)")

    rows = pick_fixture_rows(test, x_test)
    x_fix = x_test[rows]
    skl_fix = model.predict_proba(x_fix)[:, 1]
    ort_fix = ort_positive(session, x_fix)
    fixture = {
        "description": f"{MODEL_NAME} v{MODEL_VERSION} parity rows: held-out matched test pairs in the model's input order (null = NaN), with scikit-learn's predict_proba[:, 1] and onnxruntime's probabilities[:, 1]. Written by models/train_out_of_policy.py.",
        "model": MODEL_NAME,
        "version": MODEL_VERSION,
        "features": FEATURES,
        "versions": {"scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__, "onnxruntime": ort.__version__},
        "rows": [
            {
                "budget_id": test["budget_id"][i],
                "itemization_id": test["itemization_id"][i],
                "input": [json_float(v) for v in x_test[i]],
                "sklearn": float(s),
                "onnxruntime": float(o),
            }
            for i, s, o in zip(rows, skl_fix, ort_fix)
        ],
    }
    args.fixture.parent.mkdir(parents=True, exist_ok=True)
    args.fixture.write_text(fixture_json(fixture))
    print(f"wrote {args.fixture} ({len(rows)} rows, {int(np.isnan(x_fix).any(axis=1).sum())} with NaN)")

    if not args.skip_timing:
        timing = {
            "description": "onnxruntime single-thread throughput of model.onnx on batches built from the parity fixture rows repeated; compare with `cargo bench -p triad-score --bench models`.",
            "onnxruntime": ort.__version__,
            "intra_op_num_threads": 1,
            "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
            "results": time_onnxruntime(session, x_fix),
        }
        args.timing.parent.mkdir(parents=True, exist_ok=True)
        args.timing.write_text(json.dumps(timing, indent=1) + "\n")
        print(f"wrote {args.timing}")


if __name__ == "__main__":
    main()
