//! Outcomes of gated models that were not scored (counted apart, never in
//! precision, recall, labelled counts or mistakes, whenever their labels
//! arrive) and explanations stored with outcomes (read back by
//! `ListMistakes`, shown on the dashboard's mistakes table).

use triad_features::FeatureSchema;
use triad_proto::v1::{self, Bucket, Outcome};
use triad_test_support::get;

use crate::support::{Ctx, DAY, HOUR, MONDAY, label, labels, outcome, record, scalar, totals};

on_both!(
    not_scored_outcomes_are_stored_and_counted_apart,
    explanations_are_stored_and_shown_with_mistakes,
);

fn not_scored(id: &str, at: i64) -> Outcome {
    let mut o = outcome(id, at, (id, id), false);
    o.not_scored = true;
    o.score = 0.0;
    o
}

async fn not_scored_outcomes_are_stored_and_counted_apart(ctx: Ctx) {
    let mut client = ctx.client().await;
    let at = MONDAY + HOUR;
    // A label that arrives before its (not scored) outcome.
    labels(&mut client, vec![label(("e", "e"), true)]).await;
    let outcomes = vec![
        outcome("a", at, ("a", "a"), true),
        outcome("b", at, ("b", "b"), false),
        not_scored("c", at),
        not_scored("d", at),
        not_scored("e", at),
    ];
    assert_eq!(record(&mut client, outcomes.clone()).await.stored, 5);
    assert_eq!(record(&mut client, outcomes).await.duplicates, 5);
    // Labels after: a false positive, a false negative, and labels of rows
    // not scored, which must move nothing.
    labels(
        &mut client,
        vec![
            label(("a", "a"), false),
            label(("b", "b"), true),
            label(("c", "c"), true),
            label(("d", "d"), false),
        ],
    )
    .await;
    // [count, labelled, tp, fp, fn, tn]: the scored rows only.
    assert_eq!(totals(&mut client, "m").await, [2, 2, 0, 1, 1, 0]);
    let points = client
        .query_metrics(v1::QueryMetricsRequest {
            model: "m".into(),
            bucket: Bucket::Day.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(points.iter().map(|p| p.not_scored).sum::<u64>(), 3);
    assert_eq!(points.iter().map(|p| p.count).sum::<u64>(), 2);
    assert_eq!(points[0].precision, Some(0.0));
    assert_eq!(points[0].labelled_share, 1.0);
    // The dashboard's summary says so.
    let (status, page) = get(
        ctx.http,
        &format!(
            "/models/m?days={}",
            (triad_proto::time::now_ms() - MONDAY) / DAY + 2
        ),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Plus 3 outcome(s) <strong>not scored</strong>"),
        "{page}"
    );

    // Plain SQL: every answered pair stored once, marked, never labelled.
    assert_eq!(scalar(&ctx.pool, "SELECT COUNT(*) FROM outcomes").await, 5);
    assert_eq!(
        scalar(&ctx.pool, "SELECT COUNT(*) FROM outcomes WHERE scored = 0").await,
        3
    );
    assert_eq!(
        scalar(
            &ctx.pool,
            "SELECT COUNT(*) FROM outcomes WHERE scored = 0 AND label IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &ctx.pool,
            "SELECT CAST(SUM(not_scored) AS BIGINT) FROM confusion_counts"
        )
        .await,
        3
    );
    // The view agrees with the counters.
    assert_eq!(
        scalar(
            &ctx.pool,
            "SELECT CAST(SUM(outcomes) AS BIGINT) FROM daily_precision_recall"
        )
        .await,
        2
    );
    assert_eq!(
        scalar(
            &ctx.pool,
            "SELECT CAST(SUM(not_scored) AS BIGINT) FROM daily_precision_recall"
        )
        .await,
        3
    );
    assert_eq!(scalar(&ctx.pool, "SELECT COUNT(*) FROM mistakes").await, 2);

    // ListMistakes: the two scored mistakes, never a row not scored.
    let mistakes = client
        .list_mistakes(v1::ListMistakesRequest {
            model: "m".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .mistakes;
    let mut ids: Vec<String> = mistakes
        .iter()
        .map(|m| m.outcome.as_ref().unwrap().outcome_id.clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
}

async fn explanations_are_stored_and_shown_with_mistakes(ctx: Ctx) {
    let mut client = ctx.client().await;
    // Within the dashboard's default window.
    let at = triad_proto::time::now_ms() - HOUR;
    let names = &FeatureSchema::current().feature_names;
    let mut contributions = vec![0.0_f32; names.len()];
    contributions[3] = 2.5;
    contributions[7] = -1.25;
    contributions[9] = 0.75;
    let explanation = v1::Explanation {
        intercept: -1.0,
        logit: 1.0,
        contributions,
    };
    let mut fp = outcome("fp", at, ("fp", "fp"), true);
    fp.explanation = Some(explanation.clone());
    // An ONNX model's outcome carries none.
    let fn_ = outcome("fn", at, ("fn", "fn"), false);
    // An explanation that cannot be stored (too many contributions, or a
    // number that is not finite) never refuses its outcome: stored, without
    // it.
    let mut wide = outcome("wide", at, ("wide", "wide"), true);
    wide.explanation = Some(v1::Explanation {
        contributions: vec![0.0; names.len() + 1],
        ..v1::Explanation::default()
    });
    let mut inf = outcome("inf", at, ("inf", "inf"), true);
    inf.explanation = Some(v1::Explanation {
        intercept: -1.0,
        logit: f32::INFINITY,
        contributions: vec![f32::INFINITY; names.len()],
    });
    let response = record(&mut client, vec![fp, fn_, wide, inf]).await;
    assert_eq!(response.stored, 4, "{response:?}");
    assert!(response.rejected.is_empty(), "{response:?}");
    // Counted (a process-wide counter: at least these two).
    let (status, metrics) = get(ctx.http, "/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    let dropped: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("triad_monitor_explanations_dropped_total "))
        .expect("the counter is served")
        .trim()
        .parse()
        .unwrap();
    assert!(dropped >= 2.0, "{dropped}");
    labels(
        &mut client,
        vec![
            label(("fp", "fp"), false),
            label(("fn", "fn"), true),
            label(("wide", "wide"), false),
            label(("inf", "inf"), false),
        ],
    )
    .await;
    let mistakes = client
        .list_mistakes(v1::ListMistakesRequest {
            model: "m".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .mistakes;
    let by_id = |id: &str| {
        mistakes
            .iter()
            .find_map(|m| m.outcome.as_ref().filter(|o| o.outcome_id == id))
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("fp").explanation, Some(explanation));
    assert_eq!(by_id("fn").explanation, None);
    assert_eq!(by_id("wide").explanation, None);
    assert_eq!(by_id("inf").explanation, None);

    // The dashboard: the false positive's largest positive contributions,
    // first the largest; the false negative says it has no explanation.
    let (status, page) = get(ctx.http, "/models/m").await;
    assert_eq!(status, 200, "{page}");
    let row = page
        .split("<tr data-outcome-id=\"fp\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    let (first, second) = (
        row.find(names[3].as_str()).unwrap(),
        row.find(names[9].as_str()).unwrap(),
    );
    assert!(first < second, "{row}");
    assert!(!row.contains(names[7].as_str()), "{row}");
    let row = page
        .split("<tr data-outcome-id=\"fn\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(row.contains("no explanation available"), "{row}");
}
