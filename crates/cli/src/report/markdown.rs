//! The report as Markdown: a title, then one heading and table per
//! [`Section`], in order. Every value that comes from a caller (model,
//! version, ids, feature names, raw inputs) is escaped so it cannot end a
//! table cell, start a link or inject HTML into a renderer.

use std::fmt::Write as _;

use super::window::{day, rfc3339};
use super::{
    ALERT_COLUMNS, DRIFT_COLUMNS, METRICS, MISTAKE_COLUMNS, Report, SIGNAL_COLUMNS, Section, Set,
    VOLUME_COLUMNS, alert_number, change, change_text, count_change_text, labelled_share, quality,
    ratio_text, resolved_text,
};

/// `text` as literal Markdown inline text: punctuation Markdown or HTML
/// reads is backslash-escaped (`<` and `>` as entities), line breaks
/// become spaces.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

fn header(out: &mut String, cells: &[&str]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(cells.len()));
}

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Weekly report: {}\n\n{}, {} to {} (UTC, end exclusive), compared with the same days a week earlier. Generated {}. Shadow versions left out.\n",
        escape(&report.model),
        escape(&report.version_text()),
        rfc3339(report.window.from_ms),
        rfc3339(report.window.until_ms),
        rfc3339(report.generated_at_ms),
    );
    for section in Section::ALL {
        match section {
            Section::Summary => summary(&mut out, report),
            Section::Daily => daily(&mut out, report),
            Section::Signals => signals(&mut out, report),
            Section::Alerts => alerts(&mut out, report),
            Section::Drift => drift(&mut out, report),
            Section::Mistakes => mistakes(&mut out, report),
        }
        out.push('\n');
    }
    out
}

fn summary(out: &mut String, r: &Report) {
    let (t, b) = (&r.totals, &r.previous_totals);
    out.push_str("## Summary\n\n");
    header(out, &["", "this window", "week before", "change"]);
    row(
        out,
        &[
            "outcomes".into(),
            t.count.to_string(),
            b.count.to_string(),
            count_change_text(t.count, b.count),
        ],
    );
    row(
        out,
        &[
            "labelled share".into(),
            ratio_text(t.labelled_share()),
            ratio_text(b.labelled_share()),
            change_text(change(t.labelled_share(), b.labelled_share())),
        ],
    );
    for set in Set::ALL {
        let (now, before) = (t.quality(set), b.quality(set));
        for (i, metric) in METRICS.iter().enumerate() {
            row(
                out,
                &[
                    format!("{} {metric}", set.name()),
                    ratio_text(now[i]),
                    ratio_text(before[i]),
                    change_text(change(now[i], before[i])),
                ],
            );
        }
    }
}

fn daily(out: &mut String, r: &Report) {
    out.push_str("## Volume per day\n\n");
    header(out, VOLUME_COLUMNS);
    for d in &r.days {
        row(
            out,
            &[
                day(d.start_ms),
                d.this.count.to_string(),
                d.previous.count.to_string(),
                count_change_text(d.this.count, d.previous.count),
                d.this.predicted_positive.to_string(),
                d.this.labelled.to_string(),
                ratio_text(labelled_share(&d.this)),
            ],
        );
    }
    for set in Set::ALL {
        let _ = writeln!(
            out,
            "\n## {} quality per day\n\nEach cell: the day's value (its change against the same day a week earlier).\n",
            match set {
                Set::Realized => "Realized (from labels)",
                Set::Estimated => "Estimated (from calibrated scores)",
            }
        );
        let mut columns = vec!["day"];
        columns.extend(METRICS);
        header(out, &columns);
        for d in &r.days {
            let (now, before) = (quality(&d.this, set), quality(&d.previous, set));
            let mut cells = vec![day(d.start_ms)];
            cells.extend((0..METRICS.len()).map(|i| {
                format!(
                    "{} ({})",
                    ratio_text(now[i]),
                    change_text(change(now[i], before[i]))
                )
            }));
            row(out, &cells);
        }
    }
}

fn signals(out: &mut String, r: &Report) {
    out.push_str("## Trend, change points and anomalies\n\n");
    out.push_str("From the daily series: the least-squares and robust trend slopes per day, the days where the piecewise-constant fit starts a new level, and the days outside the EWMA band.\n\n");
    header(out, SIGNAL_COLUMNS);
    for s in &r.signals {
        let (changes, anomalies) = (s.change_points_text(), s.anomalies_text());
        row(
            out,
            &[
                escape(&s.metric),
                change_text(s.trend_per_day),
                change_text(s.robust_trend_per_day),
                changes,
                anomalies,
            ],
        );
    }
}

fn alerts(out: &mut String, r: &Report) {
    out.push_str("## Alerts that fired\n\n");
    out.push_str(super::ALERTS_NOTE);
    out.push_str("\n\n");
    if r.alerts.is_empty() {
        out.push_str(super::NO_ALERT);
        out.push('\n');
        return;
    }
    if r.alerts_truncated {
        let _ = writeln!(out, "{}\n", super::truncated_note());
    }
    header(out, ALERT_COLUMNS);
    for a in &r.alerts {
        row(
            out,
            &[
                escape(&a.name),
                escape(&a.severity),
                escape(&a.version),
                escape(&a.subject),
                alert_number(a.value),
                alert_number(a.threshold),
                rfc3339(a.since_ms),
                resolved_text(a),
                escape(&a.link),
            ],
        );
    }
}

fn drift(out: &mut String, r: &Report) {
    out.push_str("## Drift against the reference profile\n\n");
    let d = &r.drift;
    if !d.available {
        let _ = writeln!(out, "Not available: {}.", escape(&d.unavailable_reason));
        return;
    }
    let _ = writeln!(
        out,
        "Version {}: {} outcomes compared (newest first), {} left out for another feature schema.\n",
        escape(&d.version),
        d.live_rows,
        d.excluded_rows
    );
    header(out, DRIFT_COLUMNS);
    for f in d.score.iter().chain(&d.features) {
        row(
            out,
            &[
                escape(&f.name),
                if f.drifted { "**yes**" } else { "no" }.into(),
                ratio_text(Some(f.psi)),
                ratio_text(Some(f.ks_statistic)),
                ratio_text(Some(f.ks_p_value)),
                ratio_text(Some(f.normalized_wasserstein)),
                ratio_text(Some(f.live_missing_rate)),
                ratio_text(Some(f.reference_missing_rate)),
                escape(&f.reasons.join("; ")),
            ],
        );
    }
}

fn mistakes(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "## The {} most confident mistakes\n\nLabelled outcomes the model got wrong, largest |score − threshold| first.\n",
        super::MISTAKES
    );
    if r.mistakes.is_empty() {
        out.push_str("No labelled mistake in the window.\n");
        return;
    }
    header(out, MISTAKE_COLUMNS);
    for m in &r.mistakes {
        let fields = super::html::mistake_fields(m);
        row(out, &fields.map(|f| escape(&f)));
    }
}
