//! `QueryThreshold` against scikit-learn: the fixtures of
//! `crates/monitor/reference/threshold.py` stored through `RecordOutcomes`
//! and `RecordLabels` (labels before and after their outcomes, changed
//! labels, request labels over pair labels), then the exact path compared
//! with `precision_recall_curve` over the scores and the histogram with it
//! over the scores rounded down to the bin edges; the backfill of
//! migration `0005` equal to the rows kept incrementally.

use std::path::Path;

use serde_json::Value;
use sqlx::Row;
use triad_proto::v1::{Label, QueryThresholdRequest, QueryThresholdResponse};

use crate::support::{Ctx, DAY, HOUR, MONDAY, label, outcome, record};

const FIXTURES: [&str; 6] = [
    "seeded",
    "edges",
    "ties",
    "all_negative",
    "all_positive",
    "unlabelled",
];

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("threshold_{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// serde_json may read a float one ulp off (its fast path is not
/// correctly rounded); the fixture's scores and thresholds are `f32`s,
/// which narrowing recovers exactly.
fn single(value: &Value) -> f64 {
    f64::from(value.as_f64().unwrap() as f32)
}

fn singles(value: &Value) -> Vec<f64> {
    value.as_array().unwrap().iter().map(single).collect()
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// The thresholds every fixture evaluates (`REQUESTED` in the script).
fn requested(fx: &Value) -> Vec<f64> {
    fx["exact_at"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| single(&p["threshold"]))
        .collect()
}

/// Stores fixture `name` as model `t-<name>`, one outcome a minute from
/// Monday, each its own pair. Labels take every road: a third arrive
/// before their outcome, a third first wrong then corrected (newer
/// `labelled_at_ms`), a third as a wrong pair label overridden by the
/// request's own.
async fn store_fixture(ctx: &Ctx, name: &str, fx: &Value) -> String {
    let model = format!("t-{name}");
    let scores = singles(&fx["scores"]);
    let truth: Vec<Option<bool>> = fx["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_i64().map(|l| l == 1))
        .collect();
    let pair = |i: usize| (format!("b{i}"), format!("i{i}"));
    let labelled = |i: usize, value: bool, at: i64, request: &str| Label {
        model: model.clone(),
        request_id: request.to_owned(),
        labelled_at_ms: at,
        ..label((&pair(i).0, &pair(i).1), value)
    };
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut corrections = Vec::new();
    for (i, t) in truth.iter().enumerate() {
        let Some(t) = *t else { continue };
        match i % 3 {
            0 => before.push(labelled(i, t, MONDAY, "")),
            1 => {
                after.push(labelled(i, !t, MONDAY, ""));
                corrections.push(labelled(i, t, MONDAY + 1, ""));
            }
            _ => {
                after.push(labelled(i, !t, MONDAY, ""));
                corrections.push(labelled(i, t, MONDAY, &format!("r-{model}-{i}")));
            }
        }
    }
    let mut client = ctx.client().await;
    let response = client
        .record_labels(triad_proto::v1::RecordLabelsRequest { labels: before })
        .await
        .unwrap()
        .into_inner();
    assert!(response.rejected.is_empty(), "{response:?}");
    let outcomes: Vec<_> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (b, it) = pair(i);
            let score = *s as f32;
            let mut o = outcome(
                &format!("{model}-{i}"),
                MONDAY + i as i64 * 60_000,
                (&b, &it),
                score >= 0.5,
            );
            o.model = model.clone();
            o.score = score;
            o
        })
        .collect();
    for chunk in outcomes.chunks(500) {
        let response = record(&mut client, chunk.to_vec()).await;
        assert_eq!(response.stored as usize, chunk.len());
    }
    for batch in [after, corrections] {
        let response = client
            .record_labels(triad_proto::v1::RecordLabelsRequest { labels: batch })
            .await
            .unwrap()
            .into_inner();
        assert!(response.rejected.is_empty(), "{response:?}");
    }
    model
}

async fn query(
    ctx: &Ctx,
    model: &str,
    thresholds: Vec<f64>,
    exact: bool,
) -> QueryThresholdResponse {
    ctx.client()
        .await
        .query_threshold(QueryThresholdRequest {
            model: model.to_owned(),
            thresholds,
            exact,
            ..QueryThresholdRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
}

fn assert_close(got: &[f64], expected: &[f64], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: lengths");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!((g - e).abs() <= 1e-12, "{what}[{i}]: got {g}, expected {e}");
    }
}

/// The response's curve and points against the fixture's `key` part
/// (`exact` or `binned`).
fn compare(name: &str, fx: &Value, response: &QueryThresholdResponse, key: &str) {
    let what = format!("{name} {key}");
    let expected = &fx[key];
    let curve = response.curve.clone().unwrap_or_default();
    // Thresholds are scores: exactly equal.
    assert_eq!(curve.thresholds, singles(&expected["thresholds"]), "{what}");
    assert_close(&curve.precision, &floats(&expected["precision"]), &what);
    assert_close(&curve.recall, &floats(&expected["recall"]), &what);
    assert_eq!(
        response.best_f1.as_ref().map(|p| p.threshold),
        (!expected["best_f1"].is_null()).then(|| single(&expected["best_f1"])),
        "{what}: best F1"
    );
    let at = fx[format!("{key}_at")].as_array().unwrap();
    assert_eq!(response.requested.len(), at.len());
    for (point, e) in response.requested.iter().zip(at) {
        assert_eq!(point.threshold, single(&e["threshold"]), "{what}");
        assert_eq!(
            (
                point.true_positives,
                point.false_positives,
                point.predicted_positive
            ),
            (
                e["true_positives"].as_u64().unwrap(),
                e["false_positives"].as_u64().unwrap(),
                e["predicted_positive"].as_u64().unwrap()
            ),
            "{what} at {}",
            point.threshold
        );
    }
    let labels = fx["labels"].as_array().unwrap();
    let count = |v: Option<i64>| labels.iter().filter(|l| l.as_i64() == v).count() as u64;
    assert_eq!(
        (
            response.outcomes,
            response.labelled_positive,
            response.labelled_negative,
            response.unlabelled
        ),
        (
            labels.len() as u64,
            count(Some(1)),
            count(Some(0)),
            count(None)
        ),
        "{what}: totals"
    );
}

async fn curves_equal_scikit_learn(ctx: Ctx) {
    for name in FIXTURES {
        let fx = fixture(name);
        let model = store_fixture(&ctx, name, &fx).await;
        let exact = query(&ctx, &model, requested(&fx), true).await;
        assert!(exact.exact);
        compare(name, &fx, &exact, "exact");
        let binned = query(&ctx, &model, requested(&fx), false).await;
        assert!(!binned.exact);
        assert_eq!(binned.resolution, 0.001);
        compare(name, &fx, &binned, "binned");
        // Thresholds with at most three decimals are bin edges; 0.8125
        // lies inside the bin [0.812, 0.813): its outcomes are uncertain.
        for p in &binned.requested {
            let inside = p.threshold == 0.8125;
            let bin = fx["binned_at"]
                .as_array()
                .unwrap()
                .iter()
                .zip(fx["exact_at"].as_array().unwrap())
                .find(|(b, _)| single(&b["threshold"]) == p.threshold)
                .map(|(b, e)| {
                    e["predicted_positive"].as_u64().unwrap()
                        - b["predicted_positive"].as_u64().unwrap()
                })
                .unwrap();
            if !inside {
                assert_eq!(p.uncertain, 0, "{name} {p:?}");
            }
            // The exact answer lies within the uncertain outcomes.
            assert!(bin <= p.uncertain, "{name} {p:?}");
        }
        assert_eq!(binned.current_threshold, Some(0.5));
        if name == "edges" {
            // Scores on bin edges: the histogram is the exact answer.
            assert_eq!(binned.curve, exact.curve);
            assert_eq!(binned.requested, exact.requested);
            assert_eq!(binned.best_f1, exact.best_f1);
        }
        if name == "seeded" {
            // Hour-aligned windows over the 25 hours of outcomes (one a
            // minute from Monday 00:00): whole days read from the daily
            // rows, the hours around them from the hourly ones. The counts
            // are exact at every bin edge.
            for (from_ms, to_ms) in [
                (MONDAY + HOUR, MONDAY + 5 * HOUR),
                (MONDAY - 3 * HOUR, MONDAY + DAY + HOUR),
                (MONDAY + 2 * HOUR, MONDAY + DAY + HOUR),
                (0, MONDAY + 23 * HOUR),
                (MONDAY + HOUR, 0),
            ] {
                let ask = |exact: bool| QueryThresholdRequest {
                    model: model.clone(),
                    from_ms,
                    to_ms,
                    exact,
                    thresholds: vec![0.0, 0.25, 0.4, 0.5, 1.0],
                    ..QueryThresholdRequest::default()
                };
                let mut client = ctx.client().await;
                let e = client
                    .query_threshold(ask(true))
                    .await
                    .unwrap()
                    .into_inner();
                let b = client
                    .query_threshold(ask(false))
                    .await
                    .unwrap()
                    .into_inner();
                assert!(e.outcomes > 0, "{from_ms}..{to_ms}");
                let totals = |r: &QueryThresholdResponse| {
                    (
                        r.outcomes,
                        r.labelled_positive,
                        r.labelled_negative,
                        r.unlabelled,
                    )
                };
                assert_eq!(totals(&b), totals(&e), "{from_ms}..{to_ms}");
                assert_eq!(b.requested, e.requested, "{from_ms}..{to_ms}");
            }
        }
    }
    backfill_equals_the_kept_rows(&ctx).await;
}

/// A `score_bins` row: model, version, shadow, hour, bin, positive,
/// negative, unlabelled.
type BinRow = (String, String, i64, i64, i64, i64, i64, i64);

/// The backfill statement of migration `0005`, run again over the stored
/// outcomes, gives exactly the rows ingestion and labelling kept.
async fn backfill_equals_the_kept_rows(ctx: &Ctx) {
    let migration = include_str!("../../migrations/0005_score_bins.sql");
    // The SELECT of the INSERT into `table`, to its semicolon.
    let backfill = |table: &str| {
        let insert = migration
            .find(&format!("INSERT INTO {table} (model"))
            .expect("the backfill");
        let select = insert + migration[insert..].find("SELECT").unwrap();
        let end = select + migration[select..].find(';').unwrap();
        migration[select..end].to_owned()
    };
    let rows = |sql: String| async move {
        let mut out: Vec<BinRow> = sqlx::query(&sql)
            .fetch_all(&ctx.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.try_get(0).unwrap(),
                    r.try_get(1).unwrap(),
                    r.try_get(2).unwrap(),
                    r.try_get(3).unwrap(),
                    r.try_get(4).unwrap(),
                    r.try_get(5).unwrap(),
                    r.try_get(6).unwrap(),
                    r.try_get(7).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let kept = rows(
        "SELECT model, version, shadow, hour_ms, bin, positive, negative, unlabelled FROM score_bins"
            .to_owned(),
    )
    .await;
    let rebuilt = rows(backfill("score_bins")).await;
    assert!(kept.len() > 1_000, "{}", kept.len());
    assert_eq!(kept, rebuilt);
    // The days: the migration's roll-up of the hours (cast: PostgreSQL's
    // SUM of BIGINT is NUMERIC).
    let kept_days = rows(
        "SELECT model, version, shadow, day_ms, bin, positive, negative, unlabelled FROM score_bins_daily"
            .to_owned(),
    )
    .await;
    let rolled = rows(
        backfill("score_bins_daily")
            .replace("SUM(positive)", "CAST(SUM(positive) AS BIGINT)")
            .replace("SUM(negative)", "CAST(SUM(negative) AS BIGINT)")
            .replace("SUM(unlabelled)", "CAST(SUM(unlabelled) AS BIGINT)"),
    )
    .await;
    assert!(kept_days.len() < kept.len());
    assert_eq!(kept_days, rolled);
    // Both databases hold the very edges the code bins with.
    let edges = sqlx::query("SELECT bin, lower_edge FROM score_bin_edges ORDER BY bin")
        .fetch_all(&ctx.pool)
        .await
        .unwrap();
    assert_eq!(edges.len(), 1_001);
    for row in edges {
        let k: i64 = row.try_get(0).unwrap();
        let edge: f64 = row.try_get(1).unwrap();
        assert_eq!(
            edge.to_bits(),
            f64::from(k as f32 / 1000.0).to_bits(),
            "{k}"
        );
    }
}

async fn the_current_threshold_is_the_newest_and_requests_are_checked(ctx: Ctx) {
    let mut client = ctx.client().await;
    let mut old = outcome("c-1", MONDAY, ("b", "1"), true);
    old.model = "cur".into();
    let mut newer = outcome("c-2", MONDAY + 3 * 3_600_000, ("b", "2"), true);
    newer.model = "cur".into();
    newer.threshold = 0.375;
    newer.score = 0.3751;
    record(&mut client, vec![old, newer]).await;
    let response = query(&ctx, "cur", vec![0.3755], false).await;
    assert_eq!(response.current_threshold, Some(0.375));
    let in_use: Vec<(f64, u64)> = response
        .thresholds_in_use
        .iter()
        .map(|u| (u.threshold, u.outcomes))
        .collect();
    assert_eq!(in_use, [(0.375, 1), (0.5, 1)]);
    let current = response.current.unwrap();
    assert_eq!(current.predicted_positive, 2);
    // 0.3755 lies inside the bin [0.375, 0.376) that holds 0.3751: counted
    // below it, and said so.
    let inside = &response.requested[0];
    assert_eq!((inside.predicted_positive, inside.uncertain), (1, 1));
    let exact = query(&ctx, "cur", vec![0.3755], true).await;
    assert_eq!(exact.requested[0].predicted_positive, 1);
    assert_eq!(exact.requested[0].uncertain, 0);

    for (thresholds, expected) in [
        (vec![f64::NAN], "threshold is NaN"),
        (vec![1.5], "threshold is 1.5"),
        (vec![-0.0001], "threshold is -0.0001"),
        (vec![0.5; 101], "thresholds has 101 values"),
    ] {
        let status = client
            .query_threshold(QueryThresholdRequest {
                model: "cur".into(),
                thresholds,
                ..QueryThresholdRequest::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().starts_with(expected),
            "{}",
            status.message()
        );
    }
    let status = client
        .query_threshold(QueryThresholdRequest {
            model: "cur".into(),
            from_ms: 5,
            to_ms: 4,
            ..QueryThresholdRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    // A model without outcomes: an empty answer, not an error.
    let none = query(&ctx, "nobody", vec![0.5], false).await;
    assert_eq!((none.outcomes, none.current_threshold), (0, None));
    assert_eq!(none.requested[0].precision, None);
}

on_both!(
    curves_equal_scikit_learn,
    the_current_threshold_is_the_newest_and_requests_are_checked
);
