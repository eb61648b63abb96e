//! The monitor against hostile or careless writers and the rows they left
//! behind (issue 11), on SQLite and PostgreSQL: event times outside
//! 2000-01-01 .. now + 5 min are rejected per item; rows stored before
//! that check (far in the future, up to `i64::MAX`) never make a query or
//! a dashboard page fail with a 500; the caller's correlation id is kept
//! and returned; a caller's value is quoted at most 64 characters in any
//! message; what one call can make the monitor list or store is bounded;
//! a NUL character (which PostgreSQL cannot store) fails no batch.

use sqlx::Row;
use tonic::Code;
use triad_proto::time::{EARLIEST_MS, MAX_CLOCK_SKEW_MS};
use triad_proto::v1::{self, Bucket};
use triad_test_support::get;

use crate::support::{Ctx, DAY, HOUR, MONDAY, label, labels, outcome, record, scalar};

on_both!(
    times_outside_2000_to_now_are_rejected_per_item,
    rows_dated_far_in_the_future_never_fail_a_query_or_a_page,
    correlation_ids_are_stored_and_returned,
    caller_values_are_quoted_at_most_64_characters,
    what_one_call_makes_the_monitor_list_or_store_is_bounded,
    a_nul_character_never_fails_a_batch_or_a_query,
);

fn now_ms() -> i64 {
    triad_proto::time::now_ms()
}

/// A message that quotes a 10 kB value must stay short.
const SHORT: usize = 400;

async fn times_outside_2000_to_now_are_rejected_per_item(ctx: Ctx) {
    let mut client = ctx.client().await;
    let now = now_ms();
    let pair = ("b", "i");
    let response = record(
        &mut client,
        vec![
            outcome("ok", now - 60_000, pair, true),
            outcome("tomorrow", now + DAY, pair, true),
            outcome("end-of-time", i64::MAX, pair, true),
            outcome("1970", 1, pair, true),
            outcome("before-2000", EARLIEST_MS - 1, pair, true),
            outcome("skew", now + MAX_CLOCK_SKEW_MS / 2, pair, true),
            outcome("now", 0, pair, true),
        ],
    )
    .await;
    assert_eq!(response.stored, 3, "{response:?}");
    let rejected: Vec<(u32, &str)> = response
        .rejected
        .iter()
        .map(|r| (r.index, r.id.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            (1, "tomorrow"),
            (2, "end-of-time"),
            (3, "1970"),
            (4, "before-2000")
        ]
    );
    for r in &response.rejected {
        assert!(r.reason.starts_with("scored_at_ms is "), "{}", r.reason);
    }
    assert!(response.rejected[0].reason.contains("clock skew"));
    assert!(response.rejected[2].reason.contains("2000-01-01"));
    assert_eq!(
        scalar(
            &ctx.pool,
            &format!(
                "SELECT COUNT(*) FROM outcomes WHERE scored_at_ms > {}",
                now_ms() + MAX_CLOCK_SKEW_MS
            )
        )
        .await,
        0
    );

    // Labels: a label dated in the future would win over every later one.
    let mut future = label(pair, false);
    future.labelled_at_ms = now + DAY;
    let mut ancient = label(pair, false);
    ancient.labelled_at_ms = 5;
    let mut good = label(pair, true);
    good.labelled_at_ms = now - 1_000;
    let answer = labels(&mut client, vec![future, ancient, good]).await;
    assert_eq!(answer.stored, 1);
    let indexes: Vec<u32> = answer.rejected.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [0, 1]);
    assert!(answer.rejected[0].reason.starts_with("labelled_at_ms is "));

    // Events.
    let event = |occurred_at_ms| v1::Event {
        name: "e".into(),
        duration_ms: 1.0,
        occurred_at_ms,
        request_id: String::new(),
    };
    let answer = client
        .record_events(v1::RecordEventsRequest {
            events: vec![event(now + DAY), event(0), event(i64::MAX), event(17)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.stored, 1);
    let indexes: Vec<u32> = answer.rejected.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [0, 2, 3]);
    assert!(answer.rejected[0].reason.starts_with("occurred_at_ms is "));
}

/// Moves the stored outcome `id` (alone in its counters row) to
/// `scored_at_ms`, as a monitor that did not check times would have stored
/// it.
async fn backdate(ctx: &Ctx, id: &str, hour_before: i64, scored_at_ms: i64) {
    let hour = scored_at_ms / HOUR * HOUR;
    let day = chrono::DateTime::from_timestamp_millis(scored_at_ms)
        .map(|t| t.date_naive().to_string())
        .unwrap_or_default();
    for statement in [
        format!(
            "UPDATE outcomes SET scored_at_ms = {scored_at_ms}, scored_hour_ms = {hour}, \
             scored_day = '{day}' WHERE outcome_id = '{id}'"
        ),
        format!("UPDATE confusion_counts SET hour_ms = {hour} WHERE hour_ms = {hour_before}"),
    ] {
        let done = sqlx::query(&statement).execute(&ctx.pool).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{statement}");
    }
}

/// 2099-12-31T00:00:00Z.
const YEAR_2099: i64 = 4_102_358_400_000;

async fn rows_dated_far_in_the_future_never_fail_a_query_or_a_page(ctx: Ctx) {
    let mut client = ctx.client().await;
    // A normal week of model m, one outcome per day, every one a false
    // positive; then two outcomes each in an hour of its own, moved to
    // 2099 and to the last hour before i64::MAX.
    let mut outcomes: Vec<v1::Outcome> = (0..7)
        .map(|d| outcome(&format!("d{d}"), MONDAY + d * DAY, ("b", "i"), true))
        .collect();
    outcomes.push(outcome("far", MONDAY + 7 * DAY + HOUR, ("b", "i"), true));
    outcomes.push(outcome(
        "end",
        MONDAY + 7 * DAY + 2 * HOUR,
        ("b", "i"),
        true,
    ));
    for o in &mut outcomes {
        o.correlation_id = format!("c-{}", o.outcome_id);
    }
    assert_eq!(record(&mut client, outcomes).await.stored, 9);
    assert_eq!(
        labels(&mut client, vec![label(("b", "i"), false)])
            .await
            .joined,
        1
    );
    let end = i64::MAX / HOUR * HOUR + 1;
    backdate(&ctx, "far", MONDAY + 7 * DAY + HOUR, YEAR_2099).await;
    backdate(&ctx, "end", MONDAY + 7 * DAY + 2 * HOUR, end).await;
    // And a business event at the end of time.
    sqlx::query(&format!(
        "INSERT INTO events (name, duration_ms, occurred_at_ms, request_id, received_at_ms) \
         VALUES ('e', 2.0, {}, '', 0), ('e', 1.0, {MONDAY}, '', 0)",
        i64::MAX
    ))
    .execute(&ctx.pool)
    .await
    .unwrap();

    // Every RPC answers: the points, or a 400 that says which range to ask.
    for bucket in [Bucket::Hour, Bucket::Day, Bucket::Week] {
        let unbounded = client
            .query_metrics(v1::QueryMetricsRequest {
                model: "m".into(),
                bucket: bucket.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(unbounded.code(), Code::InvalidArgument, "{unbounded:?}");
        assert!(
            unbounded.message().contains("from 2025-11-24 to ")
                && unbounded.message().contains("narrower range"),
            "{}",
            unbounded.message()
        );
        let anomalies = client
            .anomalies(v1::AnomaliesRequest {
                model: "m".into(),
                metric: "count".into(),
                bucket: bucket.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(anomalies.code(), Code::InvalidArgument, "{anomalies:?}");

        // The normal week, asked for by its range.
        let week = client
            .query_metrics(v1::QueryMetricsRequest {
                model: "m".into(),
                bucket: bucket.into(),
                from_ms: MONDAY,
                to_ms: MONDAY + 7 * DAY,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(week.points.iter().map(|p| p.count).sum::<u64>(), 7);
        assert_eq!(week.points[0].bucket_start_ms, MONDAY);

        // Only the rows at the end of time: one point, holding them.
        for from_ms in [end - HOUR, i64::MAX - 1] {
            let last = client
                .query_metrics(v1::QueryMetricsRequest {
                    model: "m".into(),
                    bucket: bucket.into(),
                    from_ms,
                    to_ms: i64::MAX,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(last.points.len(), 1, "{bucket:?} {from_ms}");
            let point = &last.points[0];
            assert_eq!(point.count, 1);
            assert_eq!(point.false_positives, 1);
            assert!(point.bucket_start_ms <= end && end - point.bucket_start_ms < 7 * DAY);
        }
        let events = client
            .query_events(v1::QueryEventsRequest {
                name: "e".into(),
                bucket: bucket.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(events.points.len(), 2);
        assert!(events.points[1].bucket_start_ms > i64::MAX - 7 * DAY);
    }

    // Mistakes newest first, the page token through the end of time.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_mistakes(v1::ListMistakesRequest {
                model: "m".into(),
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.mistakes.into_iter().map(|m| m.outcome.unwrap()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 9);
    assert_eq!(
        (seen[0].outcome_id.as_str(), seen[0].scored_at_ms),
        ("end", end)
    );
    assert_eq!(seen[1].outcome_id, "far");
    let drift = client
        .drift(v1::DriftRequest {
            model: "m".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(drift.live_rows, 9);

    // Plain SQL over the views.
    assert_eq!(
        scalar(
            &ctx.pool,
            "SELECT CAST(SUM(outcomes) AS BIGINT) FROM daily_precision_recall"
        )
        .await,
        9
    );
    assert_eq!(scalar(&ctx.pool, "SELECT COUNT(*) FROM mistakes").await, 9);

    // Every dashboard page: the window ends now, and says what it leaves
    // out.
    let (status, index) = get(ctx.http, "/").await;
    assert_eq!(status, 200, "{index}");
    assert!(index.contains("(in the future)"), "{index}");
    // (The normal week was a year ago.)
    for query in [
        "?days=400",
        "?days=400&bucket=hour",
        "?days=400&bucket=day",
        "?days=400&bucket=week",
        "?days=3660&bucket=day",
        "?days=3660&bucket=week",
        "?version=1&days=400&bucket=week",
    ] {
        let (status, page) = get(ctx.http, &format!("/models/m{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
        let notice = page
            .split("id=\"future-outcomes\">")
            .nth(1)
            .unwrap_or_else(|| panic!("{query}: no notice in {page}"));
        assert!(
            notice.starts_with("2 outcomes of this model (any version) are dated after now"),
            "{notice}"
        );
        assert!(
            page.contains("<tbody><tr><td class=\"num\">7</td>"),
            "{query}: the week's 7 outcomes in the summary"
        );
        assert!(!page.contains("data-outcome-id=\"far\""), "{query}");
        assert!(!page.contains("data-outcome-id=\"end\""), "{query}");
    }
}

async fn correlation_ids_are_stored_and_returned(ctx: Ctx) {
    let mut client = ctx.client().await;
    let at = now_ms() - HOUR;
    let mut with = outcome("with", at, ("b1", "i1"), true);
    with.correlation_id = "caller-7".into();
    let without = outcome("without", at - 1, ("b2", "i2"), true);
    let mut long = outcome("long", at, ("b3", "i3"), true);
    long.correlation_id = "c".repeat(513);
    let response = record(&mut client, vec![with, without, long]).await;
    assert_eq!(response.stored, 2);
    assert_eq!(response.rejected.len(), 1);
    assert!(
        response.rejected[0]
            .reason
            .starts_with("correlation_id is \"ccc")
    );
    labels(
        &mut client,
        vec![label(("b1", "i1"), false), label(("b2", "i2"), false)],
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
    let ids: Vec<(&str, &str, &str)> = mistakes
        .iter()
        .map(|m| {
            let o = m.outcome.as_ref().unwrap();
            (
                o.outcome_id.as_str(),
                o.request_id.as_str(),
                o.correlation_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [("with", "r-with", "caller-7"), ("without", "r-without", "")]
    );

    // Plain SQL: the column, its index, and the views that show it.
    for (sql, expected) in [
        (
            "SELECT outcome_id FROM outcomes WHERE correlation_id = 'caller-7'",
            "with",
        ),
        (
            "SELECT correlation_id FROM mistakes WHERE outcome_id = 'with'",
            "caller-7",
        ),
        (
            "SELECT correlation_id FROM labelled_outcomes WHERE outcome_id = 'without'",
            "",
        ),
    ] {
        let value: String = sqlx::query(sql).fetch_one(&ctx.pool).await.unwrap().get(0);
        assert_eq!(value, expected, "{sql}");
    }

    let (status, page) = get(ctx.http, "/models/m?days=2").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("title=\"request r-with, caller&#39;s id caller-7\""),
        "{page}"
    );
    assert!(page.contains("title=\"request r-without\""));
}

async fn caller_values_are_quoted_at_most_64_characters(ctx: Ctx) {
    let mut client = ctx.client().await;
    let long = "x".repeat(10_000);
    let short_invalid = |status: tonic::Status| {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().len() < SHORT, "{}", status.message());
        assert!(
            status.message().contains("(10000 bytes)"),
            "{}",
            status.message()
        );
    };
    short_invalid(
        client
            .query_metrics(v1::QueryMetricsRequest {
                model: long.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    short_invalid(
        client
            .query_metrics(v1::QueryMetricsRequest {
                model: "m".into(),
                version: long.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    short_invalid(
        client
            .anomalies(v1::AnomaliesRequest {
                model: "m".into(),
                metric: long.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    short_invalid(
        client
            .list_mistakes(v1::ListMistakesRequest {
                model: "m".into(),
                page_token: long.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    short_invalid(
        client
            .list_mistakes(v1::ListMistakesRequest {
                model: long.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    short_invalid(
        client
            .query_events(v1::QueryEventsRequest {
                name: long.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    short_invalid(
        client
            .drift(v1::DriftRequest {
                model: long.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    short_invalid(
        client
            .record_outcomes(v1::RecordOutcomesRequest {
                errors: vec![v1::ItemError::default()],
                request_id: long.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    // A metric name of ordinary length is quoted whole.
    let status = client
        .anomalies(v1::AnomaliesRequest {
            model: "m".into(),
            metric: "balanced_accuracy".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        status
            .message()
            .starts_with("metric is \"balanced_accuracy\": expected")
    );

    // A rejection's reason and id.
    let mut bad = outcome(&long, MONDAY, ("b", "i"), true);
    bad.model = long.clone();
    let mut long_model = outcome("ok-id", MONDAY, ("b", "i"), true);
    long_model.model = long.clone();
    let response = record(&mut client, vec![bad, long_model]).await;
    assert_eq!(response.rejected.len(), 2);
    for r in &response.rejected {
        assert!(r.reason.len() < SHORT, "{}", r.reason);
        assert!(r.reason.contains("(10000 bytes)"), "{}", r.reason);
        assert!(r.id.len() < SHORT, "{}", r.id);
    }
    assert!(response.rejected[0].id.starts_with("\"xxx"));
    assert!(response.rejected[0].id.ends_with("…\" (10000 bytes)"));
    assert_eq!(response.rejected[1].id, "ok-id");
    assert!(response.rejected[1].reason.starts_with("model is \"xxx"));

    // The dashboard: a model name, a version, parameters.
    record(
        &mut client,
        vec![outcome("o", now_ms() - HOUR, ("b", "i"), true)],
    )
    .await;
    for path in [
        format!("/models/{long}"),
        format!("/models/m?version={long}"),
        format!("/models/m?bucket={long}"),
        format!("/models/m?days={long}"),
        format!("/models/m?{long}=1"),
    ] {
        let (status, page) = get(ctx.http, &path).await;
        assert!(status == 400 || status == 404, "{status}");
        assert!(page.len() < 8_000, "{} bytes", page.len());
        assert!(page.contains("(10000 bytes)"), "{page}");
    }
}

async fn what_one_call_makes_the_monitor_list_or_store_is_bounded(ctx: Ctx) {
    let mut client = ctx.client().await;
    // Rejections: at most 1 000 listed, in one call or across a stream.
    let empty = vec![v1::Outcome::default(); 1_500];
    let response = record(&mut client, empty.clone()).await;
    assert_eq!(response.rejected.len(), 1_000);
    assert_eq!(response.rejected[999].index, 999);
    let messages = (0..3).map(|_| v1::RecordOutcomesRequest {
        outcomes: empty.clone(),
        ..Default::default()
    });
    let mut with_one_good: Vec<v1::RecordOutcomesRequest> = messages.collect();
    with_one_good[2].outcomes[7] = outcome("good", MONDAY, ("b", "i"), true);
    let streamed = client
        .record_outcomes_stream(tokio_stream::iter(with_one_good))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(streamed.stored, 1);
    assert_eq!(streamed.rejected.len(), 1_000);
    assert_eq!(streamed.rejected[999].index, 999);

    // Item errors: stored, their texts cut.
    let response = client
        .record_outcomes(v1::RecordOutcomesRequest {
            errors: vec![v1::ItemError {
                message: "m".repeat(100_000),
                field: "f".repeat(10_000),
                item_kind: "budget".into(),
                ..Default::default()
            }],
            request_id: "req".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.errors_stored, 1);
    assert!(
        scalar(
            &ctx.pool,
            "SELECT CAST(LENGTH(message) AS BIGINT) FROM item_errors"
        )
        .await
            <= 2_048
    );
    assert!(
        scalar(
            &ctx.pool,
            "SELECT CAST(LENGTH(field) AS BIGINT) FROM item_errors"
        )
        .await
            <= 512
    );

    // A label's source is an id like the others.
    let mut sourced = label(("b", "i"), true);
    sourced.source = "s".repeat(100_000);
    let answer = labels(&mut client, vec![sourced]).await;
    assert_eq!(answer.stored, 0);
    assert!(answer.rejected[0].reason.starts_with("source is \"sss"));
}

async fn a_nul_character_never_fails_a_batch_or_a_query(ctx: Ctx) {
    let mut client = ctx.client().await;
    let at = now_ms() - HOUR;
    let good = outcome("good", at, ("b1", "i1"), true);
    let mut in_input = outcome("in-input", at, ("b2", "i2"), true);
    if let Some(item) = in_input.line_item.as_mut() {
        item.vendor_name_expense = Some("Acme\0 Ltd".into());
    }
    let nul_id = outcome("in-id", at, ("b\0", "i3"), true);
    let response = client
        .record_outcomes(v1::RecordOutcomesRequest {
            outcomes: vec![good, in_input, nul_id],
            errors: vec![v1::ItemError {
                message: "bad \0 value".into(),
                item_kind: "budget".into(),
                ..Default::default()
            }],
            request_id: "req".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((response.stored, response.errors_stored), (2, 1));
    assert_eq!(response.rejected.len(), 1);
    assert_eq!(response.rejected[0].index, 2);
    assert_eq!(
        response.rejected[0].reason,
        "budget_id is \"b\\0\": expected no NUL character"
    );
    let vendor: String =
        sqlx::query("SELECT vendor_name_expense FROM outcomes WHERE outcome_id = 'in-input'")
            .fetch_one(&ctx.pool)
            .await
            .unwrap()
            .get(0);
    assert_eq!(vendor, "Acme\u{FFFD} Ltd");

    let mut nul_label = label(("b1", "i1"), false);
    nul_label.source = "\0".into();
    let answer = labels(&mut client, vec![nul_label, label(("b1", "i1"), false)]).await;
    assert_eq!((answer.stored, answer.rejected.len()), (1, 1));

    let status = client
        .query_metrics(v1::QueryMetricsRequest {
            model: "m\0".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // "m1:" + hex of "1:\0".
    let status = client
        .list_mistakes(v1::ListMistakesRequest {
            model: "m".into(),
            page_token: "m1:313a00".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let (status, _) = get(ctx.http, "/models/m%00").await;
    assert_eq!(status, 404);
    let (status, page) = get(ctx.http, "/models/m?days=2").await;
    assert_eq!(status, 200, "{page}");
}
