//! The model page's "Threshold trade-offs" section: the window's
//! precision-recall curve (`QueryThreshold` over the score histogram) as
//! inline SVG with the current and the F1-best thresholds marked, a small
//! form (`?threshold=0.4`) and a table of precision, recall, F1 and
//! predicted positives at the asked threshold next to the current and the
//! F1-best ones.

use std::fmt::Write;

use triad_proto::v1::{QueryThresholdRequest, QueryThresholdResponse, ThresholdPoint};
use triad_server::quote;

use super::page::{escape, model_href};
use super::svg::{self, WIDTH};
use super::{ModelView, PageError, PageQuery, width_name};
use crate::app::{AppError, Monitor};

/// The threshold of a `threshold` query parameter: a number in `[0, 1]`,
/// at most 16 characters.
pub(crate) fn parse_threshold(value: &str) -> Result<f64, PageError> {
    let trimmed = value.trim();
    trimmed
        .parse::<f64>()
        .ok()
        .filter(|t| trimmed.len() <= 16 && t.is_finite() && (0.0..=1.0).contains(t))
        .ok_or_else(|| PageError {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: format!(
                "threshold is {}: expected a number from 0 to 1, e.g. 0.4",
                quote(value)
            ),
        })
}

/// `QueryThreshold` over the page's window (histogram path), with the
/// asked threshold if any.
pub(crate) async fn load(
    monitor: &Monitor,
    model: &str,
    query: &PageQuery,
    include_shadow: bool,
    (from_ms, to_ms): (i64, i64),
) -> Result<QueryThresholdResponse, AppError> {
    monitor
        .query_threshold(&QueryThresholdRequest {
            model: model.to_owned(),
            version: query.version.clone().unwrap_or_default(),
            from_ms,
            to_ms,
            include_shadow,
            thresholds: query.threshold.into_iter().collect(),
            exact: false,
        })
        .await
}

/// A ratio with three decimals, or a dash when undefined.
fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
}

/// A threshold as people write it (`f32` widened: shortest form).
fn threshold_text(t: f64) -> String {
    format!("{}", t as f32)
}

const PLOT_TOP: f64 = 34.0;
const PLOT_H: f64 = 300.0;
const LEFT: f64 = 56.0;
const PLOT_W: f64 = 420.0;
const BOTTOM: f64 = 44.0;

fn x(recall: f64) -> f64 {
    LEFT + recall.clamp(0.0, 1.0) * PLOT_W
}

fn y(precision: f64) -> f64 {
    PLOT_TOP + (1.0 - precision.clamp(0.0, 1.0)) * PLOT_H
}

/// The curve (recall across, precision up) with the marked points.
fn chart(
    model: &str,
    r: &QueryThresholdResponse,
    marks: &[(&str, &str, &ThresholdPoint)],
) -> String {
    let curve = r.curve.clone().unwrap_or_default();
    let height = PLOT_TOP + PLOT_H + BOTTOM;
    let title = format!("Precision-recall curve of {model}");
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart pr-curve" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(&title)
    );
    for tick in svg::ticks(0.0, 1.0) {
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x0:.1}" y1="{yt:.1}" x2="{x1:.1}" y2="{yt:.1}"/><text x="{lx:.1}" y="{ly:.1}" text-anchor="end">{tick:.1}</text><line class="grid" x1="{xt:.1}" y1="{y0:.1}" x2="{xt:.1}" y2="{y1:.1}"/><text x="{xt:.1}" y="{bx:.1}" text-anchor="middle">{tick:.1}</text>"#,
            x0 = x(0.0),
            x1 = x(1.0),
            yt = y(tick),
            lx = x(0.0) - 6.0,
            ly = y(tick) + 4.0,
            xt = x(tick),
            y0 = y(0.0),
            y1 = y(1.0),
            bx = y(0.0) + 16.0,
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y0:.1}"/><line class="axis" x1="{x0:.1}" y1="{y0:.1}" x2="{x0:.1}" y2="{y1:.1}"/><text x="{mx:.1}" y="{by:.1}" text-anchor="middle">recall</text><text x="14" y="{my:.1}" transform="rotate(-90 14 {my:.1})" text-anchor="middle">precision</text>"#,
        x0 = x(0.0),
        x1 = x(1.0),
        y0 = y(0.0),
        y1 = y(1.0),
        mx = x(0.5),
        by = y(0.0) + 36.0,
        my = y(0.5),
    );
    let points: Vec<String> = curve
        .recall
        .iter()
        .zip(&curve.precision)
        .map(|(r, p)| format!("{:.1},{:.1}", x(*r), y(*p)))
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="line realized" data-series="curve" points="{}"/>"#,
        points.join(" ")
    );
    // Legend and marks, right of the plot.
    let legend_x = x(1.0) + 40.0;
    let mut legend_y = PLOT_TOP + 10.0;
    let _ = write!(
        out,
        r#"<line class="line realized" x1="{legend_x:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}"/><text class="legend" x="{:.1}" y="{:.1}">curve ({} thresholds)</text>"#,
        legend_x + 22.0,
        legend_x + 28.0,
        legend_y + 4.0,
        curve.thresholds.len()
    );
    for (key, name, point) in marks {
        legend_y += 20.0;
        let (Some(p), Some(rc)) = (point.precision, point.recall) else {
            continue;
        };
        let label = format!(
            "{name} {}: precision {}, recall {}, F1 {}",
            threshold_text(point.threshold),
            ratio(Some(p)),
            ratio(Some(rc)),
            ratio(point.f1)
        );
        // The legend fits the 380 units right of the plot.
        let short = format!(
            "{name} {}: P {} R {} F1 {}",
            threshold_text(point.threshold),
            ratio(Some(p)),
            ratio(Some(rc)),
            ratio(point.f1)
        );
        let _ = write!(
            out,
            r#"<circle class="pt {key}" data-mark="{key}" cx="{:.1}" cy="{:.1}" r="6"><title>{t}</title></circle><circle class="pt {key}" cx="{:.1}" cy="{legend_y:.1}" r="6"/><text class="legend" x="{:.1}" y="{:.1}">{s}<title>{t}</title></text>"#,
            x(rc),
            y(p),
            legend_x + 11.0,
            legend_x + 28.0,
            legend_y + 4.0,
            t = escape(&label),
            s = escape(&short)
        );
    }
    out.push_str("</svg>");
    out
}

/// One row of the table.
fn row(out: &mut String, name: &str, point: &ThresholdPoint) {
    let _ = write!(
        out,
        "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
        escape(name),
        threshold_text(point.threshold),
        point.predicted_positive,
        ratio(point.precision),
        ratio(point.recall),
        ratio(point.f1),
        point.true_positives,
        point.false_positives,
        point.false_negatives,
    );
}

/// The form asking for another threshold, keeping the page's other
/// parameters.
fn form(view: &ModelView) -> String {
    let q = &view.query;
    let mut hidden = format!(
        "<input type=\"hidden\" name=\"days\" value=\"{}\"><input type=\"hidden\" name=\"bucket\" value=\"{}\">",
        q.days,
        width_name(q.width)
    );
    if let Some(version) = &q.version {
        let _ = write!(
            hidden,
            "<input type=\"hidden\" name=\"version\" value=\"{}\">",
            escape(version)
        );
    }
    if let Some(refresh) = q.refresh {
        let _ = write!(
            hidden,
            "<input type=\"hidden\" name=\"refresh\" value=\"{refresh}\">"
        );
    }
    let value = q.threshold.map(threshold_text).unwrap_or_default();
    let base = model_href(
        &view.model,
        &PageQuery {
            threshold: None,
            ..q.clone()
        },
    );
    format!(
        "<form class=\"controls\" method=\"get\" action=\"/models/{}\">{hidden}\
         <label>What if the threshold were <input name=\"threshold\" type=\"number\" \
         min=\"0\" max=\"1\" step=\"0.001\" value=\"{}\" placeholder=\"0.4\"></label>\
         <button type=\"submit\">show</button> <a href=\"{}#threshold\">clear</a></form>",
        super::page::encode(&view.model),
        escape(&value),
        escape(&base)
    )
}

/// The section.
pub(crate) fn section(view: &ModelView) -> String {
    let r = &view.threshold;
    let mut content = String::new();
    if r.outcomes == 0 {
        content += "<p class=\"empty\">no data yet: no outcome in this window.</p>";
        return wrap(&content);
    }
    content += &form(view);
    let labelled = r.labelled_positive + r.labelled_negative;
    if labelled == 0 {
        let _ = write!(
            content,
            "<p class=\"empty\">no labels yet: the curve needs labelled outcomes ({} outcomes, \
             none labelled).</p>",
            r.outcomes
        );
        return wrap(&content);
    }
    let mut marks: Vec<(&str, &str, &ThresholdPoint)> = Vec::new();
    if let Some(current) = &r.current {
        marks.push(("ewma", "current", current));
    }
    if let Some(best) = &r.best_f1 {
        marks.push(("share", "best F1", best));
    }
    if let Some(asked) = r.requested.first() {
        marks.push(("estimated", "asked", asked));
    }
    content += &chart(&view.model, r, &marks);
    content += "<div class=\"scroll\"><table id=\"threshold-table\"><thead><tr><th></th><th class=\"num\">threshold</th>\
                <th class=\"num\">predicted positive</th><th class=\"num\">precision</th>\
                <th class=\"num\">recall</th><th class=\"num\">F1</th><th class=\"num\">TP</th>\
                <th class=\"num\">FP</th><th class=\"num\">FN</th></tr></thead><tbody>";
    if let Some(asked) = r.requested.first() {
        row(&mut content, "asked", asked);
    }
    if let Some(current) = &r.current {
        row(&mut content, "current", current);
    }
    if let Some(best) = &r.best_f1 {
        row(&mut content, "best F1", best);
    }
    content += "</tbody></table></div>";
    let mut caption = format!(
        "Over the hours of this window: {} outcomes, {} labelled positive, {} labelled negative, \
         {} not labelled yet (counted in predicted positive, never in precision or recall). \
         Scores are counted in bins of {} (a threshold with at most three decimals is exact).",
        r.outcomes, r.labelled_positive, r.labelled_negative, r.unlabelled, r.resolution
    );
    if let Some(asked) = r.requested.first().filter(|p| p.uncertain > 0) {
        let _ = write!(
            caption,
            " The asked threshold lies inside a bin: {} outcomes of that bin are counted below it.",
            asked.uncertain
        );
    }
    if r.thresholds_in_use.len() > 1 {
        let list: Vec<String> = r
            .thresholds_in_use
            .iter()
            .map(|u| format!("{} ({} outcomes)", threshold_text(u.threshold), u.outcomes))
            .collect();
        let _ = write!(
            caption,
            " The window's outcomes were scored with several thresholds: {}; the current one is the newest.",
            list.join(", ")
        );
    }
    let _ = write!(content, "<p class=\"caption\">{}</p>", escape(&caption));
    wrap(&content)
}

fn wrap(content: &str) -> String {
    format!("<section id=\"threshold\"><h2>Threshold trade-offs</h2>{content}</section>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_within_zero_and_one() {
        assert_eq!(parse_threshold("0.4").unwrap(), 0.4);
        assert_eq!(parse_threshold(" 1 ").unwrap(), 1.0);
        for bad in [
            "",
            "x",
            "-0.1",
            "1.01",
            "NaN",
            "inf",
            "0.10000000000000000001",
        ] {
            let error = parse_threshold(bad).unwrap_err();
            assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
            assert!(
                error.message.starts_with("threshold is "),
                "{}",
                error.message
            );
        }
    }
}
