//! What the weekly report (`triad report`) asks of the monitor besides the
//! counts it already had: realized and estimated accuracy and F1 per
//! bucket, and the mistakes the model was surest of, most confident first,
//! in pages whose token only continues that order.

use tonic::Code;
use triad_proto::v1::list_mistakes_request::Order;
use triad_proto::v1::{self, Bucket};

use crate::support::{Ctx, HOUR, MONDAY, label, labels, outcome, record};

on_both!(
    metrics_carry_accuracy_and_estimated_f1_and_accuracy,
    mistakes_are_listed_most_confident_first_in_pages,
);

async fn metrics_carry_accuracy_and_estimated_f1_and_accuracy(ctx: Ctx) {
    let mut client = ctx.client().await;
    // tp, fp, fn, tn, tn and one unlabelled outcome.
    let cases = [
        ("a", true, Some(true)),
        ("b", true, Some(false)),
        ("c", false, Some(true)),
        ("d", false, Some(false)),
        ("e", false, Some(false)),
        ("f", true, None),
    ];
    let outcomes = cases
        .iter()
        .map(|(id, matched, _)| outcome(id, MONDAY + HOUR, (id, id), *matched))
        .collect();
    record(&mut client, outcomes).await;
    let truth = cases
        .iter()
        .filter_map(|(id, _, l)| l.map(|l| label((id, id), l)))
        .collect();
    labels(&mut client, truth).await;
    let response = client
        .query_metrics(v1::QueryMetricsRequest {
            model: "m".into(),
            bucket: Bucket::Day.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let [p] = response.points.as_slice() else {
        panic!("one point expected, got {:?}", response.points);
    };
    assert_eq!(p.labelled, 5);
    assert_eq!(p.accuracy, Some(3.0 / 5.0));
    // Expected cells from the scores (0.8 when matched, 0.2 otherwise):
    // E[TP] 2.4, E[FP] 0.6, E[FN] 0.6, E[TN] 2.4.
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-6);
    assert!(close(p.estimated_f1, 4.8 / 6.0), "{:?}", p.estimated_f1);
    assert!(
        close(p.estimated_accuracy, 4.8 / 6.0),
        "{:?}",
        p.estimated_accuracy
    );
    // An empty bucket has neither: absent, never 0.
    let response = client
        .query_metrics(v1::QueryMetricsRequest {
            model: "nobody".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(response.points.is_empty());

    for metric in ["accuracy", "estimated_f1", "estimated_accuracy"] {
        let answer = client
            .anomalies(v1::AnomaliesRequest {
                model: "m".into(),
                metric: metric.into(),
                ..Default::default()
            })
            .await;
        assert!(answer.is_ok(), "{metric}: {answer:?}");
    }
}

async fn mistakes_are_listed_most_confident_first_in_pages(ctx: Ctx) {
    let mut client = ctx.client().await;
    // Nine mistakes with known margins |score - 0.5|, two sharing one
    // exactly (w3, w4: 0.25, ties go to the larger id), and correct
    // outcomes more confident than any of them.
    let scores = [0.55_f32, 0.95, 0.1, 0.25, 0.75, 0.02, 0.51, 0.6, 0.45];
    let mut outcomes = Vec::new();
    let mut truth = Vec::new();
    for (n, score) in scores.iter().enumerate() {
        let id = format!("w{n}");
        let matched = *score >= 0.5;
        let mut o = outcome(&id, MONDAY + n as i64 * HOUR, (&id, &id), matched);
        o.score = *score;
        outcomes.push(o);
        truth.push(label((&id, &id), !matched));
    }
    for n in 0..3 {
        let id = format!("ok{n}");
        let mut o = outcome(&id, MONDAY, (&id, &id), true);
        o.score = 0.999;
        outcomes.push(o);
        truth.push(label((&id, &id), true));
    }
    record(&mut client, outcomes).await;
    labels(&mut client, truth).await;

    let mut expected: Vec<(f64, String)> = scores
        .iter()
        .enumerate()
        .map(|(n, s)| ((f64::from(*s) - 0.5).abs(), format!("w{n}")))
        .collect();
    expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let request = |page_token: String| v1::ListMistakesRequest {
        model: "m".into(),
        page_size: 4,
        page_token,
        order: Order::MostConfident.into(),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_mistakes(request(token))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(
            page.mistakes
                .into_iter()
                .map(|m| m.outcome.unwrap().outcome_id),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);
    assert_eq!(&seen[..2], ["w5", "w1"]);

    // The range bounds the candidates, as for newest first.
    let ranged = client
        .list_mistakes(v1::ListMistakesRequest {
            from_ms: MONDAY + 3 * HOUR,
            to_ms: MONDAY + 5 * HOUR,
            ..request(String::new())
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<String> = ranged
        .mistakes
        .into_iter()
        .map(|m| m.outcome.unwrap().outcome_id)
        .collect();
    assert_eq!(ids, ["w4", "w3"]);

    // A newest-first token does not continue the confident order, and an
    // unknown order is refused.
    let newest = client
        .list_mistakes(v1::ListMistakesRequest {
            model: "m".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let status = client
        .list_mistakes(request(newest.next_page_token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("page_token"),
        "{}",
        status.message()
    );
    let status = client
        .list_mistakes(v1::ListMistakesRequest {
            order: 7,
            ..request(String::new())
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("order is 7"),
        "{}",
        status.message()
    );
}
