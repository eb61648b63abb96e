//! The report as one self-contained HTML file, fit to e-mail: CSS in one
//! `<style>` element and on the elements, charts as inline SVG, no script,
//! no image, font or link to anything outside the file. Every value that
//! comes from a caller (model, version, ids, feature names, raw inputs) is
//! escaped, in text and in attributes alike.

use std::fmt::Write as _;

use triad_proto::v1::Mistake;

use super::window::{day, rfc3339};
use super::{
    ALERT_COLUMNS, DRIFT_COLUMNS, METRICS, MISTAKE_COLUMNS, Report, SIGNAL_COLUMNS, Section, Set,
    VOLUME_COLUMNS, alert_number, change, change_text, count_change_text, labelled_share, quality,
    ratio_text, resolved_text,
};

/// `text` safe in HTML text and in quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The columns of a mistake's row, as plain text (escape before use):
/// scored at, kind, score, threshold, version, outcome id, budget id,
/// line item id, vendor, amount, expense type.
pub(crate) fn mistake_fields(m: &Mistake) -> [String; 11] {
    let o = m.outcome.clone().unwrap_or_default();
    let item = o.line_item.clone().unwrap_or_default();
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "—".to_owned());
    [
        rfc3339(o.scored_at_ms),
        m.kind.replace('_', " "),
        format!("{:.3}", o.score),
        format!("{:.3}", o.threshold),
        o.version,
        o.outcome_id,
        o.budget_id,
        o.itemization_id,
        or_dash(item.vendor_name_expense),
        or_dash(item.expensed_amount_itemization),
        or_dash(item.expense_type_name_itemization),
    ]
}

const STYLE: &str = "body{font-family:Helvetica,Arial,sans-serif;color:#222;max-width:960px;margin:16px auto;padding:0 12px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}\
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}\
th{background:#f3f3f3}td.l,th.l{text-align:left}\
.undef{color:#999}.up{color:#1a7f37}.down{color:#c62828}.drift{color:#c62828;font-weight:bold}\
.note{color:#555;font-size:13px}";

fn cell(text: &str) -> String {
    if text == super::UNDEFINED {
        format!("<td class=\"undef\">{text}</td>")
    } else {
        format!("<td>{}</td>", escape(text))
    }
}

fn change_cell(value: Option<f64>) -> String {
    let text = change_text(value);
    match value {
        Some(v) if v > 0.0 => format!("<td class=\"up\">{text}</td>"),
        Some(v) if v < 0.0 => format!("<td class=\"down\">{text}</td>"),
        _ => cell(&text),
    }
}

fn header(out: &mut String, cells: &[&str]) {
    out.push_str("<tr>");
    for (i, c) in cells.iter().enumerate() {
        let class = if i == 0 { " class=\"l\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", escape(c));
    }
    out.push_str("</tr>\n");
}

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    let title = format!("Weekly report: {}", report.model);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n<p class=\"note\">{}, {} to {} (UTC, end exclusive), compared with the same days a week earlier. Generated {}. Shadow versions left out.</p>\n",
        escape(&title),
        escape(&title),
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
    }
    out.push_str("</body></html>\n");
    out
}

fn summary(out: &mut String, r: &Report) {
    let (t, b) = (&r.totals, &r.previous_totals);
    out.push_str("<h2>Summary</h2>\n<table>\n");
    header(out, &["", "this window", "week before", "change"]);
    let _ = writeln!(
        out,
        "<tr><td class=\"l\">outcomes</td><td>{}</td><td>{}</td>{}</tr>",
        t.count,
        b.count,
        cell(&count_change_text(t.count, b.count))
    );
    let _ = writeln!(
        out,
        "<tr><td class=\"l\">labelled share</td>{}{}{}</tr>",
        cell(&ratio_text(t.labelled_share())),
        cell(&ratio_text(b.labelled_share())),
        change_cell(change(t.labelled_share(), b.labelled_share()))
    );
    for set in Set::ALL {
        let (now, before) = (t.quality(set), b.quality(set));
        for (i, metric) in METRICS.iter().enumerate() {
            let _ = writeln!(
                out,
                "<tr><td class=\"l\">{} {metric}</td>{}{}{}</tr>",
                set.name(),
                cell(&ratio_text(now[i])),
                cell(&ratio_text(before[i])),
                change_cell(change(now[i], before[i]))
            );
        }
    }
    out.push_str("</table>\n");
}

fn daily(out: &mut String, r: &Report) {
    let labels: Vec<String> = r.days.iter().map(|d| day(d.start_ms)).collect();
    out.push_str("<h2>Volume per day</h2>\n");
    out.push_str(&bars(
        &labels,
        &r.days.iter().map(|d| d.this.count).collect::<Vec<_>>(),
        &r.days.iter().map(|d| d.previous.count).collect::<Vec<_>>(),
    ));
    out.push_str("<table>\n");
    header(out, VOLUME_COLUMNS);
    for d in &r.days {
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td>{}<td>{}</td><td>{}</td>{}</tr>",
            day(d.start_ms),
            d.this.count,
            d.previous.count,
            cell(&count_change_text(d.this.count, d.previous.count)),
            d.this.predicted_positive,
            d.this.labelled,
            cell(&ratio_text(labelled_share(&d.this)))
        );
    }
    out.push_str("</table>\n");
    for set in Set::ALL {
        let _ = writeln!(
            out,
            "<h2>{} quality per day</h2>",
            match set {
                Set::Realized => "Realized (from labels)",
                Set::Estimated => "Estimated (from calibrated scores)",
            }
        );
        let series: Vec<(&str, &str, bool, Vec<Option<f64>>)> = [
            ("precision", "#1f77b4", false, 0),
            ("recall", "#d62728", false, 1),
            ("precision, week before", "#1f77b4", true, 0),
            ("recall, week before", "#d62728", true, 1),
        ]
        .into_iter()
        .map(|(name, color, dashed, i)| {
            let values = r
                .days
                .iter()
                .map(|d| quality(if dashed { &d.previous } else { &d.this }, set)[i])
                .collect();
            (name, color, dashed, values)
        })
        .collect();
        out.push_str(&lines(&labels, &series));
        out.push_str("<table>\n");
        let mut columns = vec!["day"];
        for metric in METRICS {
            columns.push(metric);
            columns.push("change");
        }
        header(out, &columns);
        for d in &r.days {
            let (now, before) = (quality(&d.this, set), quality(&d.previous, set));
            let _ = write!(out, "<tr><td class=\"l\">{}</td>", day(d.start_ms));
            for i in 0..METRICS.len() {
                out.push_str(&cell(&ratio_text(now[i])));
                out.push_str(&change_cell(change(now[i], before[i])));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
}

fn signals(out: &mut String, r: &Report) {
    out.push_str("<h2>Trend, change points and anomalies</h2>\n<p class=\"note\">From the daily series: the least-squares and robust trend slopes per day, the days where the piecewise-constant fit starts a new level, and the days outside the EWMA band.</p>\n<table>\n");
    header(out, SIGNAL_COLUMNS);
    for s in &r.signals {
        let (changes, anomalies) = (s.change_points_text(), s.anomalies_text());
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td>{}{}<td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            escape(&s.metric),
            change_cell(s.trend_per_day),
            change_cell(s.robust_trend_per_day),
            escape(&changes),
            escape(&anomalies)
        );
    }
    out.push_str("</table>\n");
}

fn alerts(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "<h2>Alerts that fired</h2>\n<p class=\"note\">{}</p>",
        escape(super::ALERTS_NOTE)
    );
    if r.alerts.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", escape(super::NO_ALERT));
        return;
    }
    if r.alerts_truncated {
        let _ = writeln!(
            out,
            "<p class=\"drift\">{}</p>",
            escape(&super::truncated_note())
        );
    }
    out.push_str("<table>\n");
    header(out, ALERT_COLUMNS);
    for a in &r.alerts {
        // The link is text, not an anchor: the file links to nothing.
        let severity = if a.severity == "critical" {
            " class=\"drift\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td{severity}>{}</td><td>{}</td><td class=\"l\">{}</td>{}{}<td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            escape(&a.name),
            escape(&a.severity),
            escape(&a.version),
            escape(&a.subject),
            cell(&alert_number(a.value)),
            cell(&alert_number(a.threshold)),
            rfc3339(a.since_ms),
            escape(&resolved_text(a)),
            escape(&a.link),
        );
    }
    out.push_str("</table>\n");
}

fn drift(out: &mut String, r: &Report) {
    out.push_str("<h2>Drift against the reference profile</h2>\n");
    let d = &r.drift;
    if !d.available {
        let _ = writeln!(
            out,
            "<p>Not available: {}.</p>",
            escape(&d.unavailable_reason)
        );
        return;
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">Version {}: {} outcomes compared (newest first), {} left out for another feature schema.</p>\n<table>",
        escape(&d.version),
        d.live_rows,
        d.excluded_rows
    );
    header(out, DRIFT_COLUMNS);
    for f in d.score.iter().chain(&d.features) {
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td>{}{}{}{}{}{}{}<td class=\"l\">{}</td></tr>",
            escape(&f.name),
            if f.drifted {
                "<td class=\"drift\">yes</td>"
            } else {
                "<td>no</td>"
            },
            cell(&ratio_text(Some(f.psi))),
            cell(&ratio_text(Some(f.ks_statistic))),
            cell(&ratio_text(Some(f.ks_p_value))),
            cell(&ratio_text(Some(f.normalized_wasserstein))),
            cell(&ratio_text(Some(f.live_missing_rate))),
            cell(&ratio_text(Some(f.reference_missing_rate))),
            escape(&f.reasons.join("; "))
        );
    }
    out.push_str("</table>\n");
}

fn mistakes(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "<h2>The {} most confident mistakes</h2>\n<p class=\"note\">Labelled outcomes the model got wrong, largest |score − threshold| first.</p>",
        super::MISTAKES
    );
    if r.mistakes.is_empty() {
        out.push_str("<p>No labelled mistake in the window.</p>\n");
        return;
    }
    out.push_str("<table>\n");
    header(out, MISTAKE_COLUMNS);
    for m in &r.mistakes {
        out.push_str("<tr>");
        for field in mistake_fields(m) {
            let _ = write!(out, "<td class=\"l\">{}</td>", escape(&field));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

// Charts: inline SVG, one x position per day, no script, no external
// resource. Undefined values break a line rather than drop to 0.

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 36.0;

fn x(i: usize, n: usize) -> f64 {
    let span = WIDTH - LEFT - RIGHT;
    if n <= 1 {
        LEFT + span / 2.0
    } else {
        LEFT + span * i as f64 / (n - 1) as f64
    }
}

fn y(value: f64, max: f64) -> f64 {
    let span = HEIGHT - TOP - BOTTOM;
    TOP + span * (1.0 - (value / max).clamp(0.0, 1.0))
}

fn frame(out: &mut String, labels: &[String], max: f64, ticks: &[f64], integer: bool) {
    let _ = write!(
        out,
        "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" font-family=\"Helvetica,Arial,sans-serif\" font-size=\"10\">"
    );
    for t in ticks {
        let ty = y(*t, max);
        let text = if integer {
            format!("{t:.0}")
        } else {
            format!("{t:.1}")
        };
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#e5e5e5\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{text}</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            ty + 3.0
        );
    }
    let n = labels.len();
    let every = n.div_ceil(10).max(1);
    for (i, label) in labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(i, n),
            HEIGHT - BOTTOM + 14.0,
            escape(label.get(5..).unwrap_or(label))
        );
    }
}

/// A line chart of ratios (0..1), one polyline per run of defined values;
/// `dashed` series are the week before.
fn lines(labels: &[String], series: &[(&str, &str, bool, Vec<Option<f64>>)]) -> String {
    let mut out = String::new();
    frame(&mut out, labels, 1.0, &[0.0, 0.25, 0.5, 0.75, 1.0], false);
    let n = labels.len();
    for (_, color, dashed, values) in series {
        let dash = if *dashed {
            " stroke-dasharray=\"4 3\" opacity=\"0.6\""
        } else {
            ""
        };
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, out: &mut String| {
            if run.len() > 1 {
                let _ = write!(
                    out,
                    "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
                    run.join(" ")
                );
            }
            run.clear();
        };
        for (i, v) in values.iter().enumerate() {
            match v.filter(|v| v.is_finite()) {
                Some(v) => {
                    let (px, py) = (x(i, n), y(v, 1.0));
                    run.push(format!("{px:.1},{py:.1}"));
                    if !dashed {
                        let _ = write!(
                            out,
                            "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"2.5\" fill=\"{color}\"/>"
                        );
                    }
                }
                None => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
    }
    // The legend.
    for (k, (name, color, dashed, _)) in series.iter().enumerate() {
        let lx = LEFT + 150.0 * k as f64;
        let ly = HEIGHT - 8.0;
        let dash = if *dashed {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<line x1=\"{lx}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{ly}\">{}</text>",
            lx + 18.0,
            ly - 3.0,
            ly - 3.0,
            lx + 22.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Outcomes per day, this window's bars beside the week before's.
fn bars(labels: &[String], this: &[u64], before: &[u64]) -> String {
    let mut out = String::new();
    let max = this.iter().chain(before).copied().max().unwrap_or(0).max(1) as f64;
    frame(&mut out, labels, max, &[0.0, max / 2.0, max], true);
    let n = labels.len();
    let slot = (WIDTH - LEFT - RIGHT) / n.max(1) as f64;
    let width = (slot * 0.35).min(24.0);
    for i in 0..n {
        let center = if n <= 1 {
            x(0, 1)
        } else {
            LEFT + slot * (i as f64 + 0.5)
        };
        for (value, dx, color) in [
            (before.get(i), -width, "#bbbbbb"),
            (this.get(i), 0.0, "#1f77b4"),
        ] {
            let v = value.copied().unwrap_or(0) as f64;
            let top = y(v, max);
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{color}\"/>",
                center + dx,
                HEIGHT - BOTTOM - top
            );
        }
    }
    let ly = HEIGHT - 8.0;
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{}\" width=\"12\" height=\"8\" fill=\"#1f77b4\"/><text x=\"{}\" y=\"{ly}\">outcomes</text><rect x=\"{}\" y=\"{}\" width=\"12\" height=\"8\" fill=\"#bbbbbb\"/><text x=\"{}\" y=\"{ly}\">week before</text></svg>",
        ly - 8.0,
        LEFT + 16.0,
        LEFT + 110.0,
        ly - 8.0,
        LEFT + 126.0
    );
    out
}
