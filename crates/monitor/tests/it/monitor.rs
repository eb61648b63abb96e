//! The monitor end to end: a real server on an ephemeral loopback port,
//! called over gRPC and checked with plain SQL, on SQLite and (when
//! `TRIAD_TEST_POSTGRES_URL` is set) on PostgreSQL.

use sqlx::Row;
use tonic::Code;
use triad_proto::v1::list_mistakes_request::Kind as MistakeKind;
use triad_proto::v1::{self, Bucket, Label, MetricPoint};

use crate::support::{Ctx, DAY, HOUR, MONDAY, label, labels, outcome, record, scalar, totals};

on_both!(
    resending_an_outcome_stores_it_once,
    a_late_label_moves_exactly_one_count,
    a_flipped_label_moves_the_outcome_between_cells,
    a_label_before_its_outcome_is_counted_when_it_arrives,
    metrics_bucket_by_day_and_week_with_exact_precision_and_recall,
    the_daily_view_agrees_with_query_metrics,
    mistakes_are_listed_newest_first_in_pages,
    events_report_median_and_p90_per_bucket,
    a_bad_outcome_does_not_lose_the_rest_of_its_batch,
    shadow_outcomes_are_excluded_unless_asked,
    anomalies_flag_a_spike_and_find_a_level_shift,
    requests_are_validated_first,
    item_errors_are_stored_once_per_request,
);

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

async fn resending_an_outcome_stores_it_once(ctx: Ctx) {
    let mut client = ctx.client().await;
    let batch = vec![
        outcome("a", MONDAY, ("b1", "i1"), true),
        outcome("b", MONDAY, ("b2", "i2"), false),
        outcome("a", MONDAY, ("b1", "i1"), true),
    ];
    let first = record(&mut client, batch.clone()).await;
    assert_eq!((first.stored, first.duplicates), (2, 1));
    let mut again = batch;
    again.push(outcome("c", MONDAY + HOUR, ("b3", "i3"), true));
    let second = record(&mut client, again).await;
    assert_eq!((second.stored, second.duplicates), (1, 3));

    // The stream: two messages, the second repeating the first.
    let message = v1::RecordOutcomesRequest {
        outcomes: vec![
            outcome("d", MONDAY, ("b4", "i4"), false),
            outcome("a", MONDAY, ("b1", "i1"), true),
        ],
        ..Default::default()
    };
    let streamed = client
        .record_outcomes_stream(tokio_stream::iter(vec![message.clone(), message]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((streamed.stored, streamed.duplicates), (1, 3));

    assert_eq!(totals(&mut client, "m").await, [4, 0, 0, 0, 0, 0]);
    assert_eq!(scalar(&ctx.pool, "SELECT COUNT(*) FROM outcomes").await, 4);
    let predicted = scalar(
        &ctx.pool,
        "SELECT CAST(SUM(predicted_positive) AS BIGINT) FROM confusion_counts",
    )
    .await;
    assert_eq!(predicted, 2);
}

async fn a_late_label_moves_exactly_one_count(ctx: Ctx) {
    let mut client = ctx.client().await;
    record(
        &mut client,
        vec![
            outcome("o1", MONDAY, ("b1", "i1"), true),
            outcome("o2", MONDAY + HOUR, ("b2", "i2"), false),
            outcome("o3", MONDAY + 2 * HOUR, ("b3", "i3"), true),
        ],
    )
    .await;
    assert_eq!(totals(&mut client, "m").await, [3, 0, 0, 0, 0, 0]);

    let answer = labels(&mut client, vec![label(("b1", "i1"), true)]).await;
    assert_eq!((answer.stored, answer.joined), (1, 1));
    assert_eq!(totals(&mut client, "m").await, [3, 1, 1, 0, 0, 0]);

    labels(&mut client, vec![label(("b2", "i2"), true)]).await;
    assert_eq!(totals(&mut client, "m").await, [3, 2, 1, 0, 1, 0]);

    // The same label again changes nothing.
    labels(&mut client, vec![label(("b2", "i2"), true)]).await;
    assert_eq!(totals(&mut client, "m").await, [3, 2, 1, 0, 1, 0]);

    // A label of another model does not touch model m.
    let mut other = label(("b3", "i3"), false);
    other.model = "other".into();
    let answer = labels(&mut client, vec![other]).await;
    assert_eq!((answer.stored, answer.joined), (1, 0));
    assert_eq!(totals(&mut client, "m").await, [3, 2, 1, 0, 1, 0]);

    labels(&mut client, vec![label(("b3", "i3"), false)]).await;
    assert_eq!(totals(&mut client, "m").await, [3, 3, 1, 1, 1, 0]);
}

async fn a_flipped_label_moves_the_outcome_between_cells(ctx: Ctx) {
    let mut client = ctx.client().await;
    record(&mut client, vec![outcome("o1", MONDAY, ("b1", "i1"), true)]).await;
    let mut wrong = label(("b1", "i1"), false);
    wrong.labelled_at_ms = MONDAY + DAY;
    labels(&mut client, vec![wrong]).await;
    assert_eq!(totals(&mut client, "m").await, [1, 1, 0, 1, 0, 0]);

    let mut right = label(("b1", "i1"), true);
    right.labelled_at_ms = MONDAY + 2 * DAY;
    right.source = "finance-review".into();
    labels(&mut client, vec![right]).await;
    assert_eq!(totals(&mut client, "m").await, [1, 1, 1, 0, 0, 0]);

    // An older truth arriving late is kept in the history only.
    let mut stale = label(("b1", "i1"), false);
    stale.labelled_at_ms = MONDAY + DAY + 1;
    labels(&mut client, vec![stale]).await;
    assert_eq!(totals(&mut client, "m").await, [1, 1, 1, 0, 0, 0]);

    assert_eq!(
        scalar(&ctx.pool, "SELECT COUNT(*) FROM label_history").await,
        3
    );
    let current = sqlx::query("SELECT label, source FROM labels")
        .fetch_all(&ctx.pool)
        .await
        .unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].try_get::<i64, _>(0).unwrap(), 1);
    assert_eq!(
        current[0].try_get::<String, _>(1).unwrap(),
        "finance-review"
    );
    assert_eq!(
        scalar(
            &ctx.pool,
            "SELECT label FROM outcomes WHERE outcome_id = 'o1'"
        )
        .await,
        1
    );
}

async fn a_label_before_its_outcome_is_counted_when_it_arrives(ctx: Ctx) {
    let mut client = ctx.client().await;
    let by_request = Label {
        request_id: "r-x".into(),
        ..label(("b9", "i9"), false)
    };
    let answer = labels(
        &mut client,
        vec![
            label(("b1", "i1"), true),
            label(("b9", "i9"), true),
            by_request,
        ],
    )
    .await;
    assert_eq!((answer.stored, answer.joined), (3, 0));
    assert_eq!(totals(&mut client, "m").await, [0, 0, 0, 0, 0, 0]);

    record(&mut client, vec![outcome("o1", MONDAY, ("b1", "i1"), true)]).await;
    assert_eq!(totals(&mut client, "m").await, [1, 1, 1, 0, 0, 0]);

    // The request's own label wins over the pair's: x is a false positive,
    // y (pair label true) a true positive, z (unmatched) a false negative.
    record(
        &mut client,
        vec![
            outcome("x", MONDAY, ("b9", "i9"), true),
            outcome("y", MONDAY, ("b9", "i9"), true),
            outcome("z", MONDAY, ("b9", "i9"), false),
        ],
    )
    .await;
    assert_eq!(totals(&mut client, "m").await, [4, 4, 2, 1, 1, 0]);

    // Replacing the pair label moves y and z but not x.
    labels(&mut client, vec![label(("b9", "i9"), false)]).await;
    assert_eq!(totals(&mut client, "m").await, [4, 4, 1, 2, 0, 1]);
}

/// Model `m`, pair labels; returns nothing. Per UTC day (Monday first):
/// day 0: tp tp fp fn + 1 unlabelled; day 1: tp fp fp tn; day 3: tp tp tp
/// fn; day 7 (next Monday): fp tn.
async fn hand_built(ctx: &Ctx) {
    /// (predicted match, label if any)
    type Row = (bool, Option<bool>);
    let mut client = ctx.client().await;
    let days: [(i64, &[Row]); 4] = [
        (
            0,
            &[
                (true, Some(true)),
                (true, Some(true)),
                (true, Some(false)),
                (false, Some(true)),
                (false, None),
            ],
        ),
        (
            1,
            &[
                (true, Some(true)),
                (true, Some(false)),
                (true, Some(false)),
                (false, Some(false)),
            ],
        ),
        (
            3,
            &[
                (true, Some(true)),
                (true, Some(true)),
                (true, Some(true)),
                (false, Some(true)),
            ],
        ),
        (7, &[(true, Some(false)), (false, Some(false))]),
    ];
    let mut outcomes = Vec::new();
    let mut truth = Vec::new();
    for (day, rows) in days {
        for (n, (matched, label_value)) in rows.iter().enumerate() {
            let id = format!("d{day}-{n}");
            let pair = (format!("b-{id}"), format!("i-{id}"));
            // Spread over the day's hours, the last one at 23:59.
            let at = MONDAY + day * DAY + (n as i64 * 5 % 24) * HOUR + 59 * 60_000;
            outcomes.push(outcome(&id, at, (&pair.0, &pair.1), *matched));
            if let Some(value) = label_value {
                truth.push(label((&pair.0, &pair.1), *value));
            }
        }
    }
    // Half the labels before, half after their outcomes.
    let late = truth.split_off(truth.len() / 2);
    labels(&mut client, truth).await;
    record(&mut client, outcomes).await;
    labels(&mut client, late).await;
}

fn cells(p: &MetricPoint) -> [u64; 6] {
    [
        p.count,
        p.labelled,
        p.true_positives,
        p.false_positives,
        p.false_negatives,
        p.true_negatives,
    ]
}

async fn query(ctx: &Ctx, request: v1::QueryMetricsRequest) -> v1::QueryMetricsResponse {
    ctx.client()
        .await
        .query_metrics(request)
        .await
        .unwrap()
        .into_inner()
}

async fn metrics_bucket_by_day_and_week_with_exact_precision_and_recall(ctx: Ctx) {
    hand_built(&ctx).await;
    let days = query(
        &ctx,
        v1::QueryMetricsRequest {
            model: "m".into(),
            bucket: Bucket::Day.into(),
            ..Default::default()
        },
    )
    .await;
    let starts: Vec<i64> = days.points.iter().map(|p| p.bucket_start_ms).collect();
    assert_eq!(starts, (0..8).map(|d| MONDAY + d * DAY).collect::<Vec<_>>());
    let p = &days.points;
    assert_eq!(cells(&p[0]), [5, 4, 2, 1, 1, 0]);
    assert_eq!(cells(&p[1]), [4, 4, 1, 2, 0, 1]);
    assert_eq!(cells(&p[2]), [0, 0, 0, 0, 0, 0]);
    assert_eq!(cells(&p[3]), [4, 4, 3, 0, 1, 0]);
    assert_eq!(cells(&p[7]), [2, 2, 0, 1, 0, 1]);
    assert_eq!(p[0].predicted_positive, 3);
    assert!(close(p[0].labelled_share, 0.8));
    assert!(close(p[0].precision.unwrap(), 2.0 / 3.0));
    assert!(close(p[0].recall.unwrap(), 2.0 / 3.0));
    assert!(close(p[0].f1.unwrap(), 2.0 / 3.0));
    assert!(close(p[1].precision.unwrap(), 1.0 / 3.0));
    assert_eq!(p[1].recall, Some(1.0));
    assert_eq!((p[3].precision, p[3].recall), (Some(1.0), Some(0.75)));
    assert_eq!(
        (p[7].precision, p[7].recall, p[7].f1),
        (Some(0.0), None, None)
    );
    assert_eq!((p[2].precision, p[2].recall), (None, None));
    assert!(p[2].mean_score.is_nan());
    // Day 0: scores 0.8, 0.8, 0.8, 0.2, 0.2 (as f32).
    let expected = (3.0 * f64::from(0.8_f32) + 2.0 * f64::from(0.2_f32)) / 5.0;
    assert!(close(p[0].mean_score, expected), "{}", p[0].mean_score);
    assert_eq!(p[0].null_rate["travel_vendor_receipts"], 1.0);
    assert_eq!(p[0].null_rate["purchase_vendor_receipts"], 1.0);
    assert_eq!(p[0].null_rate["vendor_name_expense"], 0.0);
    assert_eq!(p[0].null_rate["budget_id"], 0.0);
    // No reference profile for model m: the raw scores stand in for
    // probabilities. E[TP] = 3 × 0.8 of 3 predicted positives, E[FN] =
    // 2 × 0.2.
    let (high, low) = (f64::from(0.8_f32), f64::from(0.2_f32));
    assert!(close(p[0].estimated_precision.unwrap(), high));
    let recall = 3.0 * high / (3.0 * high + 2.0 * low);
    assert!(close(p[0].estimated_recall.unwrap(), recall));
    assert_eq!(p[2].estimated_precision, None);

    // Derived series: one value per point; EWMA span 3 (alpha 1/2, pandas'
    // adjust=False) of precision [2/3, 1/3, NaN, 1, ...] is
    // [2/3, 1/2, 1/2, 7/8, ...]: after one missing point the old average
    // weighs (1/2)^2 and the new value 3/4.
    assert_eq!(days.series.len(), 48);
    let ewma = days
        .series
        .iter()
        .find(|s| s.name == "precision.ewma_3")
        .unwrap();
    assert_eq!(ewma.values.len(), 8);
    assert!(close(ewma.values[0], 2.0 / 3.0));
    assert!(close(ewma.values[1], 0.5));
    assert!(close(ewma.values[2], 0.5));
    assert!(close(ewma.values[3], 0.875));
    let median = days
        .series
        .iter()
        .find(|s| s.name == "recall.median_3")
        .unwrap();
    // recall [2/3, 1, NaN, 3/4]: the window at day 3 holds 1 and 3/4.
    assert!(close(median.values[3], 0.875));
    for name in [
        "precision.trend_line",
        "precision.robust_trend",
        "precision.piecewise_constant",
        "recall.anomaly",
        "recall.ewma_20",
        "precision.median_9",
    ] {
        assert!(days.series.iter().any(|s| s.name == name), "{name}");
    }

    let weeks = query(
        &ctx,
        v1::QueryMetricsRequest {
            model: "m".into(),
            bucket: Bucket::Week.into(),
            ..Default::default()
        },
    )
    .await;
    let starts: Vec<i64> = weeks.points.iter().map(|p| p.bucket_start_ms).collect();
    assert_eq!(starts, [MONDAY, MONDAY + 7 * DAY]);
    assert_eq!(cells(&weeks.points[0]), [13, 12, 6, 3, 2, 1]);
    assert!(close(weeks.points[0].precision.unwrap(), 6.0 / 9.0));
    assert!(close(weeks.points[0].recall.unwrap(), 6.0 / 8.0));
    assert_eq!(cells(&weeks.points[1]), [2, 2, 0, 1, 0, 1]);

    // A range keeps the hours it overlaps: Tuesday to Thursday.
    let range = query(
        &ctx,
        v1::QueryMetricsRequest {
            model: "m".into(),
            bucket: Bucket::Unspecified.into(),
            from_ms: MONDAY + DAY,
            to_ms: MONDAY + 4 * DAY,
            ..Default::default()
        },
    )
    .await;
    let counts: Vec<u64> = range.points.iter().map(|p| p.count).collect();
    assert_eq!(counts, [4, 0, 4]);
    assert_eq!(range.points[0].bucket_start_ms, MONDAY + DAY);

    // Hourly buckets from the first outcome's hour to the last one's.
    let hours = query(
        &ctx,
        v1::QueryMetricsRequest {
            model: "m".into(),
            bucket: Bucket::Hour.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(hours.points.len(), 7 * 24 + 5 + 1);
    assert_eq!(hours.points.iter().map(|p| p.count).sum::<u64>(), 15);
}

async fn the_daily_view_agrees_with_query_metrics(ctx: Ctx) {
    hand_built(&ctx).await;
    let days = query(
        &ctx,
        v1::QueryMetricsRequest {
            model: "m".into(),
            bucket: Bucket::Day.into(),
            ..Default::default()
        },
    )
    .await;
    let rows = sqlx::query(
        "SELECT day, day_start_ms, outcomes, labelled, tp, fp, fn, tn, precision, recall \
         FROM daily_precision_recall WHERE model = 'm' AND shadow = 0 ORDER BY day",
    )
    .fetch_all(&ctx.pool)
    .await
    .unwrap();
    let non_empty: Vec<&MetricPoint> = days.points.iter().filter(|p| p.count > 0).collect();
    assert_eq!(rows.len(), non_empty.len());
    assert_eq!(rows.len(), 4);
    for (row, point) in rows.iter().zip(non_empty) {
        let int = |i: usize| row.try_get::<i64, _>(i).unwrap() as u64;
        assert_eq!(row.try_get::<i64, _>(1).unwrap(), point.bucket_start_ms);
        assert_eq!(
            [int(2), int(3), int(4), int(5), int(6), int(7)],
            cells(point)
        );
        let precision = row.try_get::<Option<f64>, _>(8).unwrap();
        let recall = row.try_get::<Option<f64>, _>(9).unwrap();
        assert_eq!(precision.is_some(), point.precision.is_some());
        assert_eq!(recall.is_some(), point.recall.is_some());
        if let (Some(a), Some(b)) = (precision, point.precision) {
            assert!(close(a, b));
        }
        if let (Some(a), Some(b)) = (recall, point.recall) {
            assert!(close(a, b));
        }
    }
    let first_day: String = rows[0].try_get(0).unwrap();
    assert_eq!(first_day, "2025-11-24");

    // The mistakes view lists what ListMistakes lists.
    let listed = ctx
        .client()
        .await
        .list_mistakes(v1::ListMistakesRequest {
            model: "m".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .mistakes;
    assert_eq!(listed.len(), 6);
    assert_eq!(
        scalar(&ctx.pool, "SELECT COUNT(*) FROM mistakes WHERE model = 'm'").await,
        6
    );
    assert_eq!(
        scalar(
            &ctx.pool,
            "SELECT COUNT(*) FROM mistakes WHERE kind = 'false_positive'"
        )
        .await,
        4
    );
}

async fn mistakes_are_listed_newest_first_in_pages(ctx: Ctx) {
    let mut client = ctx.client().await;
    // Seven mistakes (m0, m2, m4, m6 false positives; m1, m3, m5 false
    // negatives), m5 and m6 at the same time; two correct outcomes.
    let mut outcomes = Vec::new();
    let mut truth = Vec::new();
    for n in 0..7_i64 {
        let id = format!("m{n}");
        let at = MONDAY + n.min(5) * HOUR;
        let matched = n % 2 == 0;
        outcomes.push(outcome(
            &id,
            at,
            (&format!("b{n}"), &format!("i{n}")),
            matched,
        ));
        truth.push(label((&format!("b{n}"), &format!("i{n}")), !matched));
    }
    outcomes.push(outcome("ok1", MONDAY + 9 * HOUR, ("bok", "iok"), true));
    truth.push(label(("bok", "iok"), true));
    record(&mut client, outcomes).await;
    labels(&mut client, truth).await;

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_mistakes(v1::ListMistakesRequest {
                model: "m".into(),
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.mistakes.len() <= 3);
        seen.extend(page.mistakes);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    let ids: Vec<&str> = seen
        .iter()
        .map(|m| m.outcome.as_ref().unwrap().outcome_id.as_str())
        .collect();
    assert_eq!(ids, ["m6", "m5", "m4", "m3", "m2", "m1", "m0"]);
    let first = &seen[0];
    assert_eq!(first.kind, "false_positive");
    assert!(!first.label);
    let o = first.outcome.as_ref().unwrap();
    assert_eq!(o.scored_at_ms, MONDAY + 5 * HOUR);
    assert_eq!(o.score, 0.8);
    assert_eq!(o.threshold, 0.5);
    assert_eq!(o.features.len(), 3);
    assert_eq!(o.features[0], 0.25);
    assert!(o.features[1].is_nan());
    assert_eq!(o.features[2], 1.5e-3);
    let budget = o.budget.as_ref().unwrap();
    assert_eq!(budget.budget_id.as_deref(), Some("b6"));
    assert_eq!(budget.budget_price_budget.as_deref(), Some("1200.50"));
    assert_eq!(budget.travel_vendor_receipts, None);
    assert_eq!(budget.purchase_vendor_receipts.as_deref(), Some(""));
    let item = o.line_item.as_ref().unwrap();
    assert_eq!(item.vendor_name_expense.as_deref(), Some("vendor m6"));
    assert_eq!(seen[1].kind, "false_negative");
    assert!(seen[1].label);

    let negatives = client
        .list_mistakes(v1::ListMistakesRequest {
            model: "m".into(),
            kind: MistakeKind::FalseNegative.into(),
            from_ms: MONDAY + HOUR,
            to_ms: MONDAY + 5 * HOUR,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = negatives
        .mistakes
        .iter()
        .map(|m| m.outcome.as_ref().unwrap().outcome_id.as_str())
        .collect();
    assert_eq!(ids, ["m3", "m1"]);
    assert!(negatives.next_page_token.is_empty());
}

async fn events_report_median_and_p90_per_bucket(ctx: Ctx) {
    let mut client = ctx.client().await;
    let event = |duration_ms: f64, at: i64| v1::Event {
        name: "expense_matched".into(),
        duration_ms,
        occurred_at_ms: at,
        request_id: "r".into(),
    };
    let mut events: Vec<v1::Event> = [4.0, 1.0, 10.0, 3.0, 2.0]
        .iter()
        .enumerate()
        .map(|(n, &d)| event(d, MONDAY + n as i64 * HOUR))
        .collect();
    events.push(event(5.0, MONDAY + DAY + HOUR));
    events.push(v1::Event {
        name: String::new(),
        ..event(1.0, MONDAY)
    });
    events.push(v1::Event {
        name: "other".into(),
        ..event(100.0, MONDAY)
    });
    let stored = client
        .record_events(v1::RecordEventsRequest { events })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.stored, 7);
    assert_eq!(stored.rejected.len(), 1);
    assert_eq!(stored.rejected[0].index, 6);
    assert!(stored.rejected[0].reason.contains("name is empty"));

    let points = client
        .query_events(v1::QueryEventsRequest {
            name: "expense_matched".into(),
            bucket: Bucket::Day.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].bucket_start_ms, MONDAY);
    assert_eq!(points[0].count, 5);
    assert_eq!(points[0].median_ms, 3.0);
    // numpy.quantile([1, 2, 3, 4, 10], 0.9) == 7.6
    assert!(close(points[0].p90_ms, 7.6));
    assert_eq!(
        (points[1].count, points[1].median_ms, points[1].p90_ms),
        (1, 5.0, 5.0)
    );

    let hours = client
        .query_events(v1::QueryEventsRequest {
            name: "expense_matched".into(),
            bucket: Bucket::Hour.into(),
            from_ms: MONDAY + HOUR,
            to_ms: MONDAY + 3 * HOUR,
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    let medians: Vec<f64> = hours.iter().map(|p| p.median_ms).collect();
    assert_eq!(medians, [1.0, 10.0]);
}

async fn a_bad_outcome_does_not_lose_the_rest_of_its_batch(ctx: Ctx) {
    let mut client = ctx.client().await;
    let good = |id: &str| outcome(id, MONDAY, (&format!("b{id}"), "i"), true);
    let mut no_id = good("x");
    no_id.outcome_id = String::new();
    let mut no_model = good("y");
    no_model.model = String::new();
    let mut nan_score = good("z");
    nan_score.score = f32::NAN;
    let response = record(
        &mut client,
        vec![good("a"), no_id, good("b"), no_model, good("c"), nan_score],
    )
    .await;
    assert_eq!((response.stored, response.duplicates), (3, 0));
    let rejected: Vec<(u32, &str)> = response
        .rejected
        .iter()
        .map(|r| (r.index, r.id.as_str()))
        .collect();
    assert_eq!(rejected, [(1, ""), (3, "y"), (5, "z")]);
    assert!(response.rejected[0].reason.contains("outcome_id is empty"));
    assert!(response.rejected[1].reason.contains("model is empty"));
    assert!(response.rejected[2].reason.contains("score is NaN"));
    assert_eq!(totals(&mut client, "m").await, [3, 0, 0, 0, 0, 0]);
    assert_eq!(scalar(&ctx.pool, "SELECT COUNT(*) FROM outcomes").await, 3);

    // A bad label is refused the same way.
    let mut no_pair = label(("", "i"), true);
    no_pair.budget_id = String::new();
    let answer = labels(&mut client, vec![label(("ba", "i"), true), no_pair]).await;
    assert_eq!((answer.stored, answer.joined), (1, 1));
    assert_eq!(answer.rejected[0].index, 1);
    assert!(answer.rejected[0].reason.contains("budget_id is empty"));
}

async fn shadow_outcomes_are_excluded_unless_asked(ctx: Ctx) {
    let mut client = ctx.client().await;
    let mut outcomes = vec![
        outcome("p1", MONDAY, ("b1", "i1"), true),
        outcome("p2", MONDAY, ("b2", "i2"), false),
    ];
    for (id, pair, matched) in [("s1", ("b1", "i1"), false), ("s2", ("b2", "i2"), true)] {
        let mut shadow = outcome(id, MONDAY, pair, matched);
        shadow.version = "2".into();
        shadow.shadow = true;
        outcomes.push(shadow);
    }
    record(&mut client, outcomes).await;
    // b1/i1 is a match, b2/i2 is not: v1 is right twice, v2 wrong twice.
    labels(
        &mut client,
        vec![label(("b1", "i1"), true), label(("b2", "i2"), false)],
    )
    .await;

    let request = |version: &str, include_shadow: bool| v1::QueryMetricsRequest {
        model: "m".into(),
        version: version.into(),
        include_shadow,
        bucket: Bucket::Day.into(),
        ..Default::default()
    };
    let primary = query(&ctx, request("", false)).await;
    assert_eq!(cells(&primary.points[0]), [2, 2, 1, 0, 0, 1]);
    let all = query(&ctx, request("", true)).await;
    assert_eq!(cells(&all.points[0]), [4, 4, 1, 1, 1, 1]);
    assert!(query(&ctx, request("2", false)).await.points.is_empty());
    let shadow = query(&ctx, request("2", true)).await;
    assert_eq!(cells(&shadow.points[0]), [2, 2, 0, 1, 1, 0]);

    let mistakes = |include_shadow| v1::ListMistakesRequest {
        model: "m".into(),
        include_shadow,
        ..Default::default()
    };
    let none = client.list_mistakes(mistakes(false)).await.unwrap();
    assert!(none.into_inner().mistakes.is_empty());
    let two = client.list_mistakes(mistakes(true)).await.unwrap();
    assert_eq!(two.into_inner().mistakes.len(), 2);
}

async fn anomalies_flag_a_spike_and_find_a_level_shift(ctx: Ctx) {
    let mut client = ctx.client().await;
    // Model "spike": 10 or 11 outcomes a day, 40 on day 10. Model "shift":
    // 10 or 11 a day, then 20 or 21 from day 10 on.
    let mut outcomes = Vec::new();
    for day in 0..20_i64 {
        let wiggle = day % 2;
        let spike = if day == 10 { 40 } else { 10 + wiggle };
        let shift = if day >= 10 { 20 + wiggle } else { 10 + wiggle };
        for (model, n) in [("spike", spike), ("shift", shift)] {
            for k in 0..n {
                let id = format!("{model}-{day}-{k}");
                let mut o = outcome(&id, MONDAY + day * DAY + k * 60_000, ("b", "i"), true);
                o.model = model.into();
                outcomes.push(o);
            }
        }
    }
    record(&mut client, outcomes).await;
    let ask = |model: &str| v1::AnomaliesRequest {
        model: model.into(),
        metric: "count".into(),
        bucket: Bucket::Day.into(),
        ..Default::default()
    };
    let spike = client.anomalies(ask("spike")).await.unwrap().into_inner();
    let first = &spike.anomalies[0];
    assert_eq!(first.bucket_start_ms, MONDAY + 10 * DAY);
    assert_eq!(first.value, 40.0);
    assert!(first.expected > 10.0 && first.expected < 11.0, "{first:?}");
    assert!(first.score > 3.0);
    let shift = client.anomalies(ask("shift")).await.unwrap().into_inner();
    assert_eq!(shift.change_points_ms, [MONDAY + 10 * DAY]);

    // The same flags as the `anomaly` series of QueryMetrics, for counts
    // of precision: model "spike" has no labels, so nothing is flagged.
    let precision = client
        .anomalies(v1::AnomaliesRequest {
            metric: "precision".into(),
            ..ask("spike")
        })
        .await
        .unwrap()
        .into_inner();
    assert!(precision.anomalies.is_empty());
    assert!(precision.change_points_ms.is_empty());
}

async fn requests_are_validated_first(ctx: Ctx) {
    let mut client = ctx.client().await;
    let metrics = |change: fn(&mut v1::QueryMetricsRequest)| {
        let mut request = v1::QueryMetricsRequest {
            model: "m".into(),
            ..Default::default()
        };
        change(&mut request);
        request
    };
    let cases: Vec<(v1::QueryMetricsRequest, &str)> = vec![
        (metrics(|r| r.model.clear()), "model is empty"),
        (
            metrics(|r| {
                r.from_ms = 10;
                r.to_ms = 5;
            }),
            "expected from_ms <= to_ms",
        ),
        (metrics(|r| r.from_ms = -1), "from_ms is -1"),
        (metrics(|r| r.bucket = 9), "bucket is 9"),
    ];
    for (request, message) in cases {
        let status = client.query_metrics(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(message), "{}", status.message());
    }

    let mistakes = |page_size, page_token: &str| v1::ListMistakesRequest {
        model: "m".into(),
        page_size,
        page_token: page_token.into(),
        ..Default::default()
    };
    let status = client.list_mistakes(mistakes(1001, "")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("page_size is 1001: expected at most 1000")
    );
    let status = client
        .list_mistakes(mistakes(10, "garbage"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("page_token"));
    assert!(client.list_mistakes(mistakes(1000, "")).await.is_ok());

    let status = client
        .anomalies(v1::AnomaliesRequest {
            model: "m".into(),
            metric: "balanced_accuracy".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("metric is \"balanced_accuracy\""));
    let status = client
        .anomalies(v1::AnomaliesRequest {
            model: "m".into(),
            metric: "precision".into(),
            k: -1.0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(status.message().contains("k is -1"));

    let status = client
        .query_events(v1::QueryEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("name is empty"));

    let status = client
        .record_outcomes(v1::RecordOutcomesRequest {
            errors: vec![v1::ItemError::default()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("request_id"));
}

async fn item_errors_are_stored_once_per_request(ctx: Ctx) {
    let mut client = ctx.client().await;
    let request = v1::RecordOutcomesRequest {
        outcomes: vec![outcome("a", MONDAY, ("b1", "i1"), true)],
        errors: vec![
            v1::ItemError {
                itemization_id: "i7".into(),
                field: "expensed_amount_itemization".into(),
                code: v1::ItemErrorCode::InvalidValue.into(),
                message: "not a number".into(),
                index: 3,
                item_kind: "expense_line_item".into(),
                ..Default::default()
            },
            v1::ItemError {
                code: v1::ItemErrorCode::MissingId.into(),
                message: "no id".into(),
                dropped: true,
                index: 0,
                item_kind: "budget".into(),
                ..Default::default()
            },
        ],
        request_id: "req-1".into(),
    };
    let first = client
        .record_outcomes(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.stored, first.errors_stored), (1, 2));
    let again = client.record_outcomes(request).await.unwrap().into_inner();
    assert_eq!(
        (again.stored, again.duplicates, again.errors_stored),
        (0, 1, 0)
    );
    assert_eq!(
        scalar(&ctx.pool, "SELECT COUNT(*) FROM item_errors").await,
        2
    );
    let code: String = sqlx::query("SELECT code FROM item_errors WHERE item_kind = 'budget'")
        .fetch_one(&ctx.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(code, "ITEM_ERROR_CODE_MISSING_ID");
}
