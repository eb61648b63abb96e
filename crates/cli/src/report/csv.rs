//! The report as CSV (RFC 4180: comma-separated, fields with a comma, a
//! quote or a line break quoted, quotes doubled): one row per UTC day and
//! metric set (`realized`, `estimated`), then one `total` row per set for
//! the whole window. Numbers are written in full (the shortest text that
//! reads back as the same double), so they compare equal to `QueryMetrics`;
//! an undefined value is an empty field. Columns, in order, are
//! [`COLUMNS`]; docs/monitoring.md ("The weekly report") explains each.
//! The alerts that fired are counted, not listed (a CSV holds one kind of
//! row): `alerts_fired` is, on a day's rows, the number of listed alerts
//! firing at some time that day and, on the total rows, the number listed;
//! empty when the monitor's list was truncated (the count would be a lower
//! bound).

use anyhow::Context;

use super::{Report, Set, Totals, change, fired_between, labelled_share, quality};

/// The header row.
pub(crate) const COLUMNS: [&str; 25] = [
    "model",
    "version",
    "day",
    "set",
    "count",
    "predicted_positive",
    "labelled",
    "labelled_share",
    "true_positives",
    "false_positives",
    "false_negatives",
    "true_negatives",
    "precision",
    "recall",
    "f1",
    "accuracy",
    "previous_precision",
    "previous_recall",
    "previous_f1",
    "previous_accuracy",
    "precision_change",
    "recall_change",
    "f1_change",
    "accuracy_change",
    "alerts_fired",
];

fn number(value: Option<f64>) -> String {
    value
        .filter(|v| v.is_finite())
        .map_or_else(String::new, |v| v.to_string())
}

pub(super) fn render(report: &Report) -> anyhow::Result<String> {
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(COLUMNS)?;
    let version = report.version.clone().unwrap_or_default();
    let alerts_fired = |from_ms: i64, until_ms: i64| {
        if report.alerts_truncated {
            return String::new();
        }
        report
            .alerts
            .iter()
            .filter(|a| fired_between(a, from_ms, until_ms))
            .count()
            .to_string()
    };
    for day in &report.days {
        let fired = alerts_fired(
            day.start_ms.max(report.window.from_ms),
            (day.start_ms + super::window::DAY_MS).min(report.window.until_ms),
        );
        for set in Set::ALL {
            let (p, q) = (&day.this, &day.previous);
            let now = quality(p, set);
            let before = quality(q, set);
            let cells = [
                p.true_positives,
                p.false_positives,
                p.false_negatives,
                p.true_negatives,
            ]
            .map(|n| match set {
                Set::Realized => n.to_string(),
                Set::Estimated => String::new(),
            });
            let mut row = vec![
                report.model.clone(),
                version.clone(),
                super::window::day(day.start_ms),
                set.name().to_owned(),
                p.count.to_string(),
                p.predicted_positive.to_string(),
                p.labelled.to_string(),
                number(labelled_share(p)),
            ];
            row.extend(cells);
            row.extend(now.map(number));
            row.extend(before.map(number));
            row.extend((0..now.len()).map(|i| number(change(now[i], before[i]))));
            row.push(fired.clone());
            writer.write_record(&row)?;
        }
    }
    let fired = alerts_fired(report.window.from_ms, report.window.until_ms);
    for set in Set::ALL {
        let (t, b): (&Totals, &Totals) = (&report.totals, &report.previous_totals);
        let now = t.quality(set);
        let before = b.quality(set);
        let mut row = vec![
            report.model.clone(),
            version.clone(),
            "total".to_owned(),
            set.name().to_owned(),
            t.count.to_string(),
            t.predicted_positive.to_string(),
            t.labelled.to_string(),
            number(t.labelled_share()),
        ];
        row.extend(std::iter::repeat_n(String::new(), 4));
        row.extend(now.map(number));
        row.extend(before.map(number));
        row.extend((0..now.len()).map(|i| number(change(now[i], before[i]))));
        row.push(fired.clone());
        writer.write_record(&row)?;
    }
    let bytes = writer.into_inner().context("writing the CSV")?;
    String::from_utf8(bytes).context("the CSV is not UTF-8")
}
