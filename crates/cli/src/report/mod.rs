//! `triad report`: the weekly report a model owner sends on — volume,
//! labelled share, realized and estimated precision, recall, F1 and
//! accuracy per UTC day with the change against the same day a week
//! earlier, the trend, change points and anomalies of the daily series,
//! the alerts that fired, the drift table and the ten most confident
//! mistakes, as Markdown, CSV or one self-contained HTML file.
//!
//! Every number comes from the monitor's own RPCs over the window
//! (`QueryMetrics` with day buckets, for the window and for the same window
//! a week earlier; `Alerts` history; `Drift`; `ListMistakes` most
//! confident first): the report computes nothing the monitor would answer
//! differently. [`Report`] holds what was fetched; [`markdown`], [`csv`]
//! and [`html`] only lay it out, section by section in the order of
//! [`Section::ALL`], so a section is added in one place per format.

pub(crate) mod bench;
mod csv;
mod html;
mod markdown;
mod window;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use triad_proto::v1::list_mistakes_request::Order;
use triad_proto::v1::{
    self, Alert, DriftResponse, MetricPoint, Mistake, QueryMetricsResponse,
    monitor_client::MonitorClient,
};
use triad_series::{ConfusionCounts, ExpectedCounts};

pub(crate) use window::Window;

/// Most confident mistakes listed.
pub(crate) const MISTAKES: u32 = 10;
/// Most alerts listed (the `Alerts` RPC's largest page); more in the
/// window and the report says the list is truncated.
pub(crate) const ALERTS: u32 = 1_000;
/// Longest model or version name sent, in bytes (the monitor's own bound).
const MAX_NAME_BYTES: usize = 512;

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// The model to report on.
    #[arg(long)]
    model: String,
    /// One version only (default: every primary version; shadow versions
    /// are left out).
    #[arg(long)]
    version: Option<String>,
    /// Start of the window: a duration back from --until (`7d`, `24h`; at
    /// most 366 days) or an RFC 3339 time.
    #[arg(long, default_value = "7d")]
    since: String,
    /// End of the window (exclusive): an RFC 3339 time or `now` (default:
    /// the start of the current UTC day, so the report holds whole days).
    #[arg(long)]
    until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Md)]
    format: Format,
    /// Write the report to this file instead of standard output.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// gRPC URL of the monitor.
    #[arg(long, default_value = "http://127.0.0.1:50053")]
    monitor: String,
    /// TLS (`--ca`, `--cert`, `--key`) and token (the monitor's read
    /// token) for an https:// --monitor.
    #[command(flatten)]
    client: triad_server::security::ClientArgs,
}

/// The report's output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Markdown tables.
    Md,
    /// One self-contained HTML file: inline CSS and SVG, no script.
    Html,
    /// One row per day and metric set (docs/monitoring.md lists the
    /// columns).
    Csv,
}

/// The report's sections, in order. Each format lays out every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    /// The window's totals against the week before.
    Summary,
    /// One row per day: volume, labelled share, realized and estimated
    /// metrics, and their week-over-week change.
    Daily,
    /// Trend, change points and anomalies of the daily series.
    Signals,
    /// The alerts that fired at some time in the window.
    Alerts,
    /// Live inputs and scores against the reference profile.
    Drift,
    /// The ten most confident mistakes.
    Mistakes,
}

impl Section {
    /// Every section, in the report's order.
    pub(crate) const ALL: [Section; 6] = [
        Section::Summary,
        Section::Daily,
        Section::Signals,
        Section::Alerts,
        Section::Drift,
        Section::Mistakes,
    ];
}

/// Which metrics: counted from labels, or expected from calibrated scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Set {
    Realized,
    Estimated,
}

impl Set {
    pub(crate) const ALL: [Set; 2] = [Set::Realized, Set::Estimated];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Set::Realized => "realized",
            Set::Estimated => "estimated",
        }
    }
}

/// The four quality metrics of a set, in [`METRICS`] order.
pub(crate) type Quality = [Option<f64>; 4];

/// The quality metrics' names, in [`Quality`] order.
pub(crate) const METRICS: [&str; 4] = ["precision", "recall", "f1", "accuracy"];

/// One metric set of one point (absent = undefined).
pub(crate) fn quality(p: &MetricPoint, set: Set) -> Quality {
    match set {
        Set::Realized => [p.precision, p.recall, p.f1, p.accuracy],
        Set::Estimated => [
            p.estimated_precision,
            p.estimated_recall,
            p.estimated_f1,
            p.estimated_accuracy,
        ],
    }
}

/// `now - before`, `None` unless both are defined.
pub(crate) fn change(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    Some(now? - before?)
}

/// One UTC day of the window and the same day a week earlier; a day
/// without outcomes is a point with count 0 and every metric undefined.
#[derive(Debug, Clone)]
pub(crate) struct Day {
    pub(crate) start_ms: i64,
    pub(crate) this: MetricPoint,
    pub(crate) previous: MetricPoint,
}

/// A window's totals, from the summed daily cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Totals {
    pub(crate) count: u64,
    pub(crate) predicted_positive: u64,
    pub(crate) labelled: u64,
    pub(crate) realized: Quality,
    pub(crate) estimated: Quality,
}

impl Totals {
    /// The totals of `points`: realized metrics from the summed confusion
    /// cells, estimated ones from the summed expected cells (ratios of
    /// sums, as the monitor computes each point's; never averages of the
    /// days' ratios).
    pub(crate) fn of(points: &[MetricPoint]) -> Self {
        let mut cells = ConfusionCounts::default();
        let mut expected = ExpectedCounts::default();
        let (mut count, mut predicted, mut labelled) = (0, 0, 0);
        for p in points {
            count += p.count;
            predicted += p.predicted_positive;
            labelled += p.labelled;
            cells.true_positives += p.true_positives;
            cells.false_positives += p.false_positives;
            cells.false_negatives += p.false_negatives;
            cells.true_negatives += p.true_negatives;
            expected.add(&ExpectedCounts {
                true_positives: p.expected_true_positives,
                false_positives: p.expected_false_positives,
                false_negatives: p.expected_false_negatives,
                true_negatives: p.expected_true_negatives,
            });
        }
        Self {
            count,
            predicted_positive: predicted,
            labelled,
            realized: [
                cells.precision(),
                cells.recall(),
                cells.f1(),
                cells.accuracy(),
            ],
            estimated: [
                expected.precision(),
                expected.recall(),
                expected.f1(),
                expected.accuracy(),
            ],
        }
    }

    /// Labelled outcomes over all outcomes, `None` without outcomes.
    pub(crate) fn labelled_share(&self) -> Option<f64> {
        (self.count > 0).then(|| self.labelled as f64 / self.count as f64)
    }

    pub(crate) fn quality(&self, set: Set) -> Quality {
        match set {
            Set::Realized => self.realized,
            Set::Estimated => self.estimated,
        }
    }
}

/// What the daily series of one metric did over the window, read off
/// `QueryMetrics`' derived series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Signal {
    /// `precision`, `recall`, `estimated_precision`, `estimated_recall`.
    pub(crate) metric: String,
    /// Slope of `<metric>.trend_line` per day; `None` when it could not
    /// be fitted (fewer than two defined days).
    pub(crate) trend_per_day: Option<f64>,
    /// Slope of `<metric>.robust_trend` per day.
    pub(crate) robust_trend_per_day: Option<f64>,
    /// Days where `<metric>.piecewise_constant` starts a new level, with
    /// the level before and after.
    pub(crate) change_points: Vec<(i64, f64, f64)>,
    /// Days `<metric>.anomaly` flags.
    pub(crate) anomalies: Vec<i64>,
}

/// The columns of the volume table, in Markdown and HTML.
pub(crate) const VOLUME_COLUMNS: &[&str] = &[
    "day",
    "outcomes",
    "week before",
    "change",
    "predicted positive",
    "labelled",
    "labelled share",
];

/// The columns of the alerts table, in Markdown and HTML.
pub(crate) const ALERT_COLUMNS: &[&str] = &[
    "alert",
    "severity",
    "version",
    "subject",
    "value",
    "threshold",
    "since",
    "resolved",
    "link",
];

/// The columns of the drift table, in Markdown and HTML.
pub(crate) const DRIFT_COLUMNS: &[&str] = &[
    "variable",
    "drifted",
    "PSI",
    "KS statistic",
    "KS p-value",
    "normalized Wasserstein",
    "live missing",
    "reference missing",
    "why",
];

/// The columns of the mistakes table, in Markdown and HTML.
pub(crate) const MISTAKE_COLUMNS: &[&str] = &[
    "scored at",
    "kind",
    "score",
    "threshold",
    "version",
    "outcome",
    "budget",
    "line item",
    "vendor",
    "amount",
    "expense type",
];

/// The columns of the trend table, in every format.
pub(crate) const SIGNAL_COLUMNS: &[&str] = &[
    "metric",
    "trend per day",
    "robust trend per day",
    "change points",
    "anomalies",
];

impl Signal {
    /// `day: before → after` per change point, or "none".
    pub(crate) fn change_points_text(&self) -> String {
        if self.change_points.is_empty() {
            return "none".to_owned();
        }
        self.change_points
            .iter()
            .map(|(at, before, after)| format!("{}: {before:.3} → {after:.3}", window::day(*at)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The flagged days, or "none".
    pub(crate) fn anomalies_text(&self) -> String {
        if self.anomalies.is_empty() {
            return "none".to_owned();
        }
        self.anomalies
            .iter()
            .map(|at| window::day(*at))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The metrics whose derived series `QueryMetrics` serves.
const SIGNAL_METRICS: [&str; 4] = [
    "precision",
    "recall",
    "estimated_precision",
    "estimated_recall",
];

fn signals(response: &QueryMetricsResponse) -> Vec<Signal> {
    let series = |name: String| {
        response
            .series
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.values.as_slice())
            .unwrap_or_default()
    };
    let slope = |values: &[f64]| {
        let defined: Vec<(usize, f64)> = values
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .collect();
        match (defined.first(), defined.last()) {
            (Some(&(i, a)), Some(&(j, b))) if j > i => Some((b - a) / (j - i) as f64),
            _ => None,
        }
    };
    SIGNAL_METRICS
        .iter()
        .map(|metric| {
            let levels = series(format!("{metric}.piecewise_constant"));
            let mut change_points = Vec::new();
            let mut last: Option<f64> = None;
            for (i, level) in levels.iter().enumerate() {
                if !level.is_finite() {
                    continue;
                }
                if let Some(before) = last
                    && before != *level
                    && let Some(p) = response.points.get(i)
                {
                    change_points.push((p.bucket_start_ms, before, *level));
                }
                last = Some(*level);
            }
            let anomalies = series(format!("{metric}.anomaly"))
                .iter()
                .enumerate()
                .filter(|(_, flag)| **flag == 1.0)
                .filter_map(|(i, _)| response.points.get(i).map(|p| p.bucket_start_ms))
                .collect();
            Signal {
                metric: (*metric).to_owned(),
                trend_per_day: slope(series(format!("{metric}.trend_line"))),
                robust_trend_per_day: slope(series(format!("{metric}.robust_trend"))),
                change_points,
                anomalies,
            }
        })
        .collect()
}

/// Everything the report shows, as fetched from the monitor.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) model: String,
    /// `None`: every primary version.
    pub(crate) version: Option<String>,
    pub(crate) window: Window,
    pub(crate) generated_at_ms: i64,
    /// One per UTC day the window overlaps, oldest first.
    pub(crate) days: Vec<Day>,
    pub(crate) totals: Totals,
    /// The same window a week earlier.
    pub(crate) previous_totals: Totals,
    pub(crate) signals: Vec<Signal>,
    pub(crate) drift: DriftResponse,
    /// Most confident first, at most [`MISTAKES`].
    pub(crate) mistakes: Vec<Mistake>,
    /// The alerts of the model (of `version` when one is given) that fired
    /// at some time in the window, as the `Alerts` RPC answers, newest
    /// first, at most [`ALERTS`].
    pub(crate) alerts: Vec<Alert>,
    /// More alerts fired in the window than [`ALERTS`].
    pub(crate) alerts_truncated: bool,
}

fn check_name(flag: &str, value: &str) -> anyhow::Result<()> {
    if value.len() > MAX_NAME_BYTES || value.contains('\0') {
        bail!(
            "{flag} is not a name the monitor stores: expected at most {MAX_NAME_BYTES} bytes, no NUL"
        );
    }
    Ok(())
}

/// Fetches the report of `model` over `window` from the monitor behind
/// `client`.
pub(crate) async fn fetch(
    client: &mut MonitorClient<triad_server::client::GrpcChannel>,
    model: &str,
    version: Option<&str>,
    window: Window,
    now_ms: i64,
) -> anyhow::Result<Report> {
    check_name("--model", model)?;
    if model.is_empty() {
        bail!("--model is empty: expected a model name");
    }
    if let Some(version) = version {
        check_name("--version", version)?;
    }
    let metrics = |w: Window| v1::QueryMetricsRequest {
        model: model.to_owned(),
        version: version.unwrap_or_default().to_owned(),
        from_ms: w.from_ms,
        to_ms: w.until_ms,
        bucket: v1::Bucket::Day.into(),
        include_shadow: false,
    };
    // The five calls at once, each on its own clone of the channel: the
    // report takes as long as the slowest.
    let (mut a, mut b, mut c, mut d, mut e) = (
        client.clone(),
        client.clone(),
        client.clone(),
        client.clone(),
        client.clone(),
    );
    let version_text = version.unwrap_or_default().to_owned();
    let (this, previous, drift, mistakes, alerts) = tokio::try_join!(
        async {
            a.query_metrics(metrics(window))
                .await
                .context("QueryMetrics over the window")
        },
        async {
            b.query_metrics(metrics(window.week_before()))
                .await
                .context("QueryMetrics over the week before")
        },
        async {
            c.drift(v1::DriftRequest {
                model: model.to_owned(),
                version: version_text.clone(),
                from_ms: window.from_ms,
                to_ms: window.until_ms,
                max_rows: 0,
            })
            .await
            .context("Drift over the window")
        },
        async {
            d.list_mistakes(v1::ListMistakesRequest {
                model: model.to_owned(),
                version: version_text.clone(),
                from_ms: window.from_ms,
                to_ms: window.until_ms,
                page_size: MISTAKES,
                order: Order::MostConfident.into(),
                ..Default::default()
            })
            .await
            .context("ListMistakes over the window")
        },
        async {
            e.alerts(v1::AlertsRequest {
                model: model.to_owned(),
                history: true,
                since_ms: window.from_ms,
                until_ms: window.until_ms,
                page_size: ALERTS,
            })
            .await
            .context("Alerts over the window")
        },
    )?;
    let alerts = alerts.into_inner();
    let alerts_truncated = alerts.truncated;
    // The RPC selects by model only: one version's report keeps its own.
    let alerts: Vec<Alert> = alerts
        .alerts
        .into_iter()
        .filter(|a| version.is_none_or(|v| a.version == v))
        .collect();
    let (this, previous, drift) = (this.into_inner(), previous.into_inner(), drift.into_inner());
    let mistakes = mistakes.into_inner().mistakes;

    let point = |points: &[MetricPoint], start: i64| {
        points
            .iter()
            .find(|p| p.bucket_start_ms == start)
            .cloned()
            .unwrap_or(MetricPoint {
                bucket_start_ms: start,
                mean_score: f64::NAN,
                ..Default::default()
            })
    };
    let days = window
        .days()
        .into_iter()
        .map(|start| Day {
            start_ms: start,
            this: point(&this.points, start),
            previous: point(&previous.points, start - 7 * window::DAY_MS),
        })
        .collect();
    Ok(Report {
        model: model.to_owned(),
        version: version.map(str::to_owned),
        window,
        generated_at_ms: now_ms,
        days,
        totals: Totals::of(&this.points),
        previous_totals: Totals::of(&previous.points),
        signals: signals(&this),
        drift,
        mistakes,
        alerts,
        alerts_truncated,
    })
}

impl Report {
    /// The report in `format`.
    pub(crate) fn render(&self, format: Format) -> anyhow::Result<String> {
        Ok(match format {
            Format::Md => markdown::render(self),
            Format::Html => html::render(self),
            Format::Csv => csv::render(self)?,
        })
    }
}

pub(crate) async fn run(args: ReportArgs) -> anyhow::Result<()> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let window = Window::parse(&args.since, args.until.as_deref(), now_ms)?;
    let channel = triad_server::client::connect(&args.monitor, &args.client.client_config())
        .with_context(|| format!("cannot connect to the monitor at {}", args.monitor))?;
    let mut client = MonitorClient::new(channel);
    let report = fetch(
        &mut client,
        &args.model,
        args.version.as_deref(),
        window,
        now_ms,
    )
    .await?;
    let text = report.render(args.format)?;
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(text.as_bytes())
                .context("writing the report")?;
        }
    }
    Ok(())
}

/// What an undefined value reads as in Markdown and HTML.
pub(crate) const UNDEFINED: &str = "undefined";

/// A ratio to three decimals, or [`UNDEFINED`].
pub(crate) fn ratio_text(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => UNDEFINED.to_owned(),
    }
}

/// A signed change to three decimals, or [`UNDEFINED`].
pub(crate) fn change_text(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:+.3}"),
        _ => UNDEFINED.to_owned(),
    }
}

/// The relative change of a count in percent, or [`UNDEFINED`] when the
/// week before had none.
pub(crate) fn count_change_text(now: u64, before: u64) -> String {
    if before == 0 {
        return UNDEFINED.to_owned();
    }
    format!(
        "{:+.1} %",
        (now as f64 - before as f64) * 100.0 / before as f64
    )
}

/// What the alerts section says before its table.
pub(crate) const ALERTS_NOTE: &str = "Every alert that fired at some time in the window, resolved or not, newest first (the monitor's Alerts history). Value: the last value found breaching. Link: the dashboard view that shows it, relative to the monitor's address.";

/// What the alerts section says when none fired.
pub(crate) const NO_ALERT: &str = "None: no alert fired in the window.";

/// What the alerts section says when the monitor had more.
pub(crate) fn truncated_note() -> String {
    format!("Truncated: more alerts fired in the window than the {ALERTS} newest listed here.")
}

/// An alert's value or threshold: an integer as such, a very small
/// number in scientific notation, anything else to four decimals.
pub(crate) fn alert_number(value: f64) -> String {
    if !value.is_finite() {
        UNDEFINED.to_owned()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value != 0.0 && value.abs() < 1e-3 {
        format!("{value:.2e}")
    } else {
        format!("{value:.4}")
    }
}

/// When an alert stopped firing, or that it still fires.
pub(crate) fn resolved_text(alert: &Alert) -> String {
    if alert.resolved_ms > 0 {
        window::rfc3339(alert.resolved_ms)
    } else {
        "still firing".to_owned()
    }
}

/// Whether `alert` fired at some time in `[from_ms, until_ms)`.
pub(crate) fn fired_between(alert: &Alert, from_ms: i64, until_ms: i64) -> bool {
    alert.since_ms < until_ms && (alert.resolved_ms == 0 || alert.resolved_ms > from_ms)
}

/// A day's labelled share, `None` without outcomes.
pub(crate) fn labelled_share(p: &MetricPoint) -> Option<f64> {
    (p.count > 0).then_some(p.labelled_share)
}

/// The version the report covers, as a reader sees it.
impl Report {
    pub(crate) fn version_text(&self) -> String {
        match &self.version {
            Some(v) => format!("version {v}"),
            None => "every primary version".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point from expected cells as the monitor computes it.
    fn point(count: u64, pp: u64, etp: f64, efp: f64, efn: f64, etn: f64) -> MetricPoint {
        MetricPoint {
            count,
            predicted_positive: pp,
            estimated_precision: Some(etp / (etp + efp)),
            estimated_recall: (etp + efn > 0.0).then(|| etp / (etp + efn)),
            estimated_accuracy: Some((etp + etn) / (etp + efp + efn + etn)),
            expected_true_positives: etp,
            expected_false_positives: efp,
            expected_false_negatives: efn,
            expected_true_negatives: etn,
            ..Default::default()
        }
    }

    #[test]
    fn a_day_that_stopped_matching_weighs_in_the_window_s_estimated_recall() {
        // The review's case: a day with 10 predicted positives (E[TP] 9,
        // E[FN] 1), then a day with none (estimated precision undefined,
        // recall 0) but 50 expected positives it missed.
        let points = [
            point(100, 10, 9.0, 1.0, 1.0, 89.0),
            point(100, 0, 0.0, 0.0, 50.0, 50.0),
        ];
        let t = Totals::of(&points);
        assert_eq!(t.estimated[0], Some(0.9));
        assert_eq!(t.estimated[1], Some(9.0 / 60.0));
        assert_eq!(t.estimated[2], Some(18.0 / 70.0));
    }

    #[test]
    fn totals_recover_the_summed_expected_cells() {
        // Day 1: E[TP] 2.1, E[FP] 0.9, E[FN] 0.4, E[TN] 2.6 (3 predicted
        // positives of 6). Day 2: E[TP] 0.5, E[FP] 1.5, E[FN] 1.0, E[TN]
        // 1.0 (2 of 4).
        let points = [
            point(6, 3, 2.1, 0.9, 0.4, 2.6),
            point(4, 2, 0.5, 1.5, 1.0, 1.0),
        ];
        let t = Totals::of(&points);
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-12);
        let (etp, efp, efn, etn) = (2.6, 2.4, 1.4, 3.6);
        assert!(close(t.estimated[0], etp / (etp + efp)));
        assert!(close(t.estimated[1], etp / (etp + efn)));
        assert!(close(t.estimated[2], 2.0 * etp / (2.0 * etp + efp + efn)));
        assert!(close(t.estimated[3], (etp + etn) / 10.0));
        assert_eq!(t.count, 10);
        assert_eq!(t.realized, [None; 4], "nothing labelled");
        assert_eq!(t.labelled_share(), Some(0.0));
        let empty = Totals::of(&[]);
        assert_eq!((empty.estimated, empty.labelled_share()), ([None; 4], None));
    }

    #[test]
    fn changes_and_texts_never_show_undefined_as_a_number() {
        assert_eq!(change(Some(0.5), None), None);
        assert_eq!(change(Some(0.75), Some(0.5)), Some(0.25));
        assert_eq!(ratio_text(None), "undefined");
        assert_eq!(ratio_text(Some(f64::NAN)), "undefined");
        assert_eq!(change_text(Some(-0.0125)), "-0.013");
        assert_eq!(count_change_text(5, 0), "undefined");
        assert_eq!(count_change_text(15, 10), "+50.0 %");
    }

    #[test]
    fn hostile_alerts_stay_text_in_every_format() {
        let hostile = "<img src=x onerror=alert(1)> | [a](javascript:x) \"'\n# h";
        let alert = Alert {
            name: hostile.into(),
            severity: hostile.into(),
            model: "m".into(),
            version: hostile.into(),
            subject: hostile.into(),
            value: 0.25,
            threshold: 0.5,
            since_ms: 1_794_096_000_000,
            resolved_ms: 0,
            link: format!("/models/m?x=1&y=2#{hostile}"),
            summary: hostile.into(),
        };
        let report = Report {
            model: "m".into(),
            version: None,
            window: Window {
                from_ms: 1_793_577_600_000,
                until_ms: 1_794_182_400_000,
            },
            generated_at_ms: 1_794_182_400_000,
            days: Vec::new(),
            totals: Totals::default(),
            previous_totals: Totals::default(),
            signals: Vec::new(),
            drift: DriftResponse::default(),
            mistakes: Vec::new(),
            alerts: vec![alert],
            alerts_truncated: true,
        };
        let html = report.render(Format::Html).unwrap();
        assert!(!html.contains("<img") && !html.contains("href"), "{html}");
        assert!(html.contains("still firing") && html.contains("Truncated"));
        let md = report.render(Format::Md).unwrap();
        assert!(!md.contains("<img") && !md.contains("[a]("), "{md}");
        let row = md.lines().find(|l| l.contains("still firing")).unwrap();
        assert_eq!(row.matches(" | ").count(), 8, "9 cells: {row}");
        let csv = report.render(Format::Csv).unwrap();
        assert!(
            csv.lines().skip(1).all(|l| l.ends_with(',')),
            "truncated: empty count"
        );
    }

    #[test]
    fn escaping_leaves_no_markup() {
        let hostile = "<script>x</script> | [a](https://e) & \"'\n# h";
        let html = html::escape(hostile);
        assert!(!html.contains('<') && !html.contains('"') && !html.contains('\''));
        let md = markdown::escape(hostile);
        assert!(!md.contains('<') && !md.contains('\n'));
        assert!(md.contains("\\|") && md.contains("\\[a\\]") && md.contains("\\#"));
    }
}
