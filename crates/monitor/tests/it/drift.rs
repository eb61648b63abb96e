//! Drift and estimated performance end to end: a real monitor with a
//! temporary model repository holding a hand-made reference profile, on
//! SQLite and (when `TRIAD_TEST_POSTGRES_URL` is set) on PostgreSQL.

use std::collections::BTreeSet;

use tonic::Code;
use triad_proto::v1::{self, Bucket, DriftRequest, DriftResponse, Outcome};
use triad_series::{CalibrationBin, Distribution, ReferenceProfile, calibrate};

use crate::support::rng::Rng;
use crate::support::{Ctx, DAY, HOUR, MONDAY, outcome, record};

on_both!(
    live_data_like_the_reference_is_not_flagged_and_shifted_features_are,
    drift_picks_the_busiest_version_and_says_when_it_is_not_available,
    drift_requests_are_validated_first,
    estimates_use_the_calibration_of_the_outcomes_version,
);

/// The features of the hand-made model, in schema order.
const FEATURES: [&str; 4] = ["amount", "ratio", "flag", "days"];

/// One draw: `amount` ~ N(100 + shift, 20), `ratio` ~ U(0, 1), `flag` ~
/// Bernoulli(`flag_rate`), `days` ~ Exp(mean 10); `score` ~ U(0, 1)².
fn draw(rng: &mut Rng, shift: f64, flag_rate: f64) -> ([f64; 4], f64) {
    let features = [
        100.0 + shift + 20.0 * rng.normal(),
        rng.uniform(),
        f64::from(u8::from(rng.uniform() < flag_rate)),
        -10.0 * (1.0 - rng.uniform()).ln(),
    ];
    (features, rng.uniform().powi(2))
}

/// Ten calibration bins whose positive rate is not the score: `0.1 +
/// 0.8 × low`.
fn calibration() -> Vec<CalibrationBin> {
    (0..10)
        .map(|i| CalibrationBin {
            low: f64::from(i) / 10.0,
            high: f64::from(i + 1) / 10.0,
            count: 100,
            positive_rate: 0.1 + 0.08 * f64::from(i),
        })
        .collect()
}

/// The reference profile of model `m` (schema "hash"): 20 000 draws, 5 %
/// of `ratio` missing. Distributions are summarized as `triad train`
/// writes them.
fn reference_profile(version: &str) -> ReferenceProfile {
    let mut rng = Rng(7);
    let rows: Vec<([f64; 4], f64)> = (0..20_000).map(|_| draw(&mut rng, 0.0, 0.3)).collect();
    let features = FEATURES
        .iter()
        .enumerate()
        .map(|(column, name)| {
            let values = rows.iter().enumerate().map(|(i, (f, _))| {
                if column == 1 && i % 20 == 0 {
                    f64::NAN
                } else {
                    f[column]
                }
            });
            ((*name).to_owned(), Distribution::of(values))
        })
        .collect();
    ReferenceProfile {
        model: "m".into(),
        version: version.into(),
        schema_hash: "hash".into(),
        rows: rows.len() as u64,
        features,
        score: Distribution::of(rows.iter().map(|(_, s)| *s)),
        calibration: calibration(),
    }
}

fn write_profile(ctx: &Ctx, profile: &ReferenceProfile) {
    let dir = ctx.models_dir.join(&profile.model).join(&profile.version);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("profile.json"),
        serde_json::to_string(profile).unwrap(),
    )
    .unwrap();
}

/// `n` outcomes of model `m` `version`, one every 30 s from `start`, drawn
/// with `shift` and `flag_rate`; `ratio` is missing in the rows `i % 10 <
/// missing_tenths`. Threshold 0.5.
fn outcomes(
    prefix: &str,
    version: &str,
    start: i64,
    n: usize,
    seed: u64,
    (shift, flag_rate, missing_tenths): (f64, f64, usize),
) -> Vec<Outcome> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let (features, score) = draw(&mut rng, shift, flag_rate);
            let id = format!("{prefix}-{i}");
            let mut o = outcome(
                &id,
                start + i as i64 * 30_000,
                (&format!("b-{id}"), &format!("i-{id}")),
                score >= 0.5,
            );
            o.version = version.into();
            o.score = score as f32;
            o.features = features.iter().map(|&v| v as f32).collect();
            if i % 10 < missing_tenths {
                o.features[1] = f32::NAN;
            }
            o
        })
        .collect()
}

async fn record_all(ctx: &Ctx, all: Vec<Outcome>) {
    let mut client = ctx.client().await;
    for chunk in all.chunks(1_000) {
        let answer = record(&mut client, chunk.to_vec()).await;
        assert_eq!(answer.stored, chunk.len() as u64);
    }
}

async fn drift(ctx: &Ctx, request: DriftRequest) -> DriftResponse {
    ctx.client()
        .await
        .drift(request)
        .await
        .unwrap()
        .into_inner()
}

fn range(model: &str, from_ms: i64, to_ms: i64) -> DriftRequest {
    DriftRequest {
        model: model.into(),
        from_ms,
        to_ms,
        ..DriftRequest::default()
    }
}

fn flagged(response: &DriftResponse) -> BTreeSet<&str> {
    response
        .features
        .iter()
        .filter(|f| f.drifted)
        .map(|f| f.name.as_str())
        .collect()
}

async fn live_data_like_the_reference_is_not_flagged_and_shifted_features_are(ctx: Ctx) {
    write_profile(&ctx, &reference_profile("1"));
    // Monday: 2 000 rows from the reference distributions (other draws).
    // Tuesday: 2 000 rows with amount shifted by half a standard
    // deviation, the flag set twice as often, and ratio missing 30 % of
    // the time (but its finite values unchanged).
    let like = outcomes("like", "1", MONDAY, 2_000, 11, (0.0, 0.3, 0));
    let shifted = outcomes("shifted", "1", MONDAY + DAY, 2_000, 12, (10.0, 0.6, 3));
    record_all(&ctx, like.into_iter().chain(shifted).collect()).await;

    let monday = drift(&ctx, range("m", MONDAY, MONDAY + DAY)).await;
    assert!(monday.available, "{}", monday.unavailable_reason);
    assert_eq!((monday.version.as_str(), monday.live_rows), ("1", 2_000));
    let names: Vec<&str> = monday.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, FEATURES);
    assert_eq!(flagged(&monday), BTreeSet::new(), "{:#?}", monday.features);
    let score = monday.score.as_ref().unwrap();
    assert_eq!(score.name, "score");
    assert!(!score.drifted, "{score:?}");
    for f in &monday.features {
        assert!(f.reasons.is_empty(), "{f:?}");
        assert_eq!((f.reference_count, f.live_count), (20_000, 2_000));
        assert!(f.psi < 0.05, "{f:?}");
        assert!(f.ks_p_value > 0.05, "{f:?}");
        assert!(f.normalized_wasserstein < 0.05, "{f:?}");
    }
    let ratio = &monday.features[1];
    assert_eq!(ratio.reference_missing_rate, 0.05);
    assert_eq!(ratio.live_missing_rate, 0.0);

    let tuesday = drift(&ctx, range("m", MONDAY + DAY, MONDAY + 2 * DAY)).await;
    assert_eq!(tuesday.live_rows, 2_000);
    assert_eq!(
        flagged(&tuesday),
        BTreeSet::from(["amount", "flag"]),
        "{:#?}",
        tuesday.features
    );
    let amount = &tuesday.features[0];
    // Half a standard deviation: KS and Wasserstein flag it.
    assert!(
        (amount.normalized_wasserstein - 0.5).abs() < 0.1,
        "{amount:?}"
    );
    assert!((amount.wasserstein - 10.0).abs() < 2.0, "{amount:?}");
    assert!(amount.ks_p_value < 1e-10, "{amount:?}");
    assert!(
        amount.reasons.iter().any(|r| r.starts_with("ks p-value"))
            && amount
                .reasons
                .iter()
                .any(|r| r.starts_with("normalized wasserstein")),
        "{:?}",
        amount.reasons
    );
    // The flag: 30 % → 60 % set.
    let flag = &tuesday.features[2];
    assert!((flag.ks_statistic - 0.3).abs() < 0.05, "{flag:?}");
    assert!(flag.psi > 0.2, "{flag:?}");
    // Ratio: missing 30 % of the time, reported but not a drift test.
    let ratio = &tuesday.features[1];
    assert!(!ratio.drifted, "{ratio:?}");
    assert_eq!(ratio.live_missing_rate, 0.3);
    assert_eq!(ratio.live_count, 2_000);
    assert!(!tuesday.score.as_ref().unwrap().drifted);

    // Unbounded, newest first: the 2 000 newest rows are Tuesday's.
    let newest = drift(
        &ctx,
        DriftRequest {
            max_rows: 2_000,
            ..range("m", 0, 0)
        },
    )
    .await;
    assert_eq!(newest.live_rows, 2_000);
    assert_eq!(newest.features[0].psi, tuesday.features[0].psi);
    assert_eq!(newest.features[1].live_missing_rate, 0.3);
    // The default takes up to 5 000: both days.
    let both = drift(&ctx, range("m", 0, 0)).await;
    assert_eq!(both.live_rows, 4_000);
    assert_eq!(both.features[1].live_missing_rate, 0.15);
}

async fn drift_picks_the_busiest_version_and_says_when_it_is_not_available(ctx: Ctx) {
    write_profile(&ctx, &reference_profile("1"));
    let day2 = MONDAY + 2 * DAY;
    let mut all = outcomes("v1", "1", MONDAY, 30, 1, (0.0, 0.3, 0));
    // Day 2: 5 outcomes of version 2 (no profile), 8 of shadow version 3.
    all.extend(outcomes("v2", "2", day2, 5, 2, (0.0, 0.3, 0)));
    all.extend(
        outcomes("v3", "3", day2, 8, 3, (0.0, 0.3, 0))
            .into_iter()
            .map(|o| Outcome { shadow: true, ..o }),
    );
    // Day 4: version 1 outcomes on another feature schema.
    all.extend(
        outcomes("other", "1", MONDAY + 4 * DAY, 6, 4, (0.0, 0.3, 0))
            .into_iter()
            .map(|o| Outcome {
                schema_hash: "other".into(),
                ..o
            }),
    );
    record_all(&ctx, all).await;

    let busiest = drift(&ctx, range("m", MONDAY, day2 + DAY)).await;
    assert_eq!((busiest.version.as_str(), busiest.live_rows), ("1", 30));
    assert!(busiest.available);
    assert_eq!(busiest.excluded_rows, 0);

    // Primary before shadow, though the shadow version has more outcomes.
    let primary = drift(&ctx, range("m", day2, day2 + DAY)).await;
    assert_eq!((primary.version.as_str(), primary.live_rows), ("2", 5));
    assert!(!primary.available);
    assert!(primary.features.is_empty() && primary.score.is_none());
    assert!(
        primary.unavailable_reason.contains("no reference profile")
            && primary.unavailable_reason.contains("not available"),
        "{}",
        primary.unavailable_reason
    );
    let shadow = drift(
        &ctx,
        DriftRequest {
            version: "3".into(),
            ..range("m", day2, day2 + DAY)
        },
    )
    .await;
    assert_eq!((shadow.version.as_str(), shadow.live_rows), ("3", 8));

    let other_schema = drift(&ctx, range("m", MONDAY + 4 * DAY, MONDAY + 5 * DAY)).await;
    assert!(!other_schema.available);
    assert_eq!(other_schema.excluded_rows, 6);
    assert!(
        other_schema.unavailable_reason.contains("feature schema"),
        "{}",
        other_schema.unavailable_reason
    );

    let nothing = drift(&ctx, range("unknown", 0, 0)).await;
    assert_eq!((nothing.version.as_str(), nothing.live_rows), ("", 0));
    assert!(!nothing.available);
    assert!(nothing.unavailable_reason.contains("no outcome"));
}

async fn drift_requests_are_validated_first(ctx: Ctx) {
    let mut client = ctx.client().await;
    let bad = [
        (range("", 0, 0), "model is empty"),
        (range("m", 5, 4), "expected from_ms <= to_ms"),
        (range("m", -1, 0), "from_ms is -1"),
        (
            DriftRequest {
                max_rows: 100_001,
                ..range("m", 0, 0)
            },
            "max_rows is 100001",
        ),
    ];
    for (request, message) in bad {
        let status = client.drift(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(message), "{status:?}");
    }
    let largest = client
        .drift(DriftRequest {
            max_rows: 100_000,
            ..range("m", 0, 0)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!largest.available);
}

async fn estimates_use_the_calibration_of_the_outcomes_version(ctx: Ctx) {
    write_profile(&ctx, &reference_profile("1"));
    let v1 = outcomes("v1", "1", MONDAY, 200, 21, (0.0, 0.3, 0));
    // Version 2 has no profile: its raw scores are the probabilities.
    let v2 = outcomes("v2", "2", MONDAY + HOUR, 100, 22, (0.0, 0.3, 0));
    let expected = |outcomes: &[Outcome], calibrated: bool| {
        let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
        for o in outcomes {
            let score = f64::from(o.score);
            let p = if calibrated {
                calibrate(&calibration(), score)
            } else {
                score
            };
            if o.matched {
                tp += p;
                fp += 1.0 - p;
            } else {
                fn_ += p;
            }
        }
        (tp / (tp + fp), tp / (tp + fn_))
    };
    let (v1_precision, v1_recall) = expected(&v1, true);
    let (v2_precision, v2_recall) = expected(&v2, false);
    record_all(&ctx, v1.into_iter().chain(v2).collect()).await;

    let mut client = ctx.client().await;
    for (version, precision, recall) in [
        ("1", v1_precision, v1_recall),
        ("2", v2_precision, v2_recall),
    ] {
        let points = client
            .query_metrics(v1::QueryMetricsRequest {
                model: "m".into(),
                version: version.into(),
                bucket: Bucket::Day.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .points;
        assert_eq!(points.len(), 1);
        let p = &points[0];
        // No label yet: nothing realized, everything estimated.
        assert_eq!((p.labelled, p.precision, p.recall), (0, None, None));
        let (got_precision, got_recall) =
            (p.estimated_precision.unwrap(), p.estimated_recall.unwrap());
        assert!(
            (got_precision - precision).abs() < 1e-9,
            "{version}: {got_precision} vs {precision}"
        );
        assert!(
            (got_recall - recall).abs() < 1e-9,
            "{version}: {got_recall} vs {recall}"
        );
    }
    // The two calibrations give different answers.
    assert!((v1_precision - v2_precision).abs() > 0.05);

    // The derived series of the estimates come with the others.
    let response = client
        .query_metrics(v1::QueryMetricsRequest {
            model: "m".into(),
            bucket: Bucket::Hour.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ewma = response
        .series
        .iter()
        .find(|s| s.name == "estimated_precision.ewma_3")
        .unwrap();
    assert_eq!(ewma.values.len(), response.points.len());
    assert!(ewma.values[0].is_finite());
}
