//! The dashboard's HTML: the layout and its stylesheet, the model list,
//! and the model page as one function per section (summary, precision and
//! recall, volume, score histogram, null rates, mistakes, drift). A new
//! section is one more function and one more line in [`model`]. Every
//! value that comes from data goes through [`escape`] (text and
//! attributes) or [`encode`] (URLs).

use std::collections::HashMap;
use std::fmt::Write;

use axum::http::StatusCode;
use triad_features::MISSING_FLAG_FIELDS;
use triad_proto::v1::{EventPoint, FeatureDrift, MetricPoint, Mistake};
use triad_series::ConfusionCounts;

use super::svg::{self, Band, BarChart, Bars, Histogram, LineChart, Series};
use super::{BAND_K, ModelView, PageQuery, width_name};
use crate::app::quality::ANOMALY_SPAN;
use crate::app::{Confusion, ModelSummary};
use crate::buckets::Width;
use crate::fields::{BUDGET_INPUTS, SEED_FIELDS, input_values};

/// `text` safe in HTML text and in double- or single-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) use crate::links::encode;

/// The link to a model's page with `query`.
pub(crate) fn model_href(model: &str, query: &PageQuery) -> String {
    let mut href = crate::links::model_page(
        model,
        i64::from(query.days),
        width_name(query.width),
        query.version.as_deref(),
    );
    if let Some(refresh) = query.refresh {
        href += &format!("&refresh={refresh}");
    }
    href
}

fn datetime(ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

/// `ms` as `YYYY-MM-DD HH:MM UTC`.
pub(crate) fn utc(ms: i64) -> String {
    datetime(ms, "%Y-%m-%d %H:%M UTC")
}

/// A ratio to three decimals, `—` when undefined.
fn ratio(value: Option<f64>) -> String {
    value
        .filter(|v| v.is_finite())
        .map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
}

/// A share in percent.
fn percent(value: f64) -> String {
    if value.is_finite() {
        format!("{:.1}%", value * 100.0)
    } else {
        "—".to_owned()
    }
}

const STYLE: &str = r#"
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}
header.top{background:#1d2a3a;color:#fff;padding:10px 24px;font-size:15px}
header.top a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:1120px;margin:0 auto;padding:8px 24px 48px}
h1{font-size:24px;margin:18px 0 4px}
h2{font-size:18px;margin:0 0 8px}
h3{font-size:15px;margin:14px 0 4px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:14px 18px;margin:14px 0}
p.meta,p.caption,p.legend{color:#555;font-size:13px;margin:4px 0}
p.notice{background:#fff4e5;border:1px solid #f5c08a;border-radius:4px;padding:6px 10px;font-size:13px}
p.empty{color:#666;font-style:italic;margin:6px 0}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceef1;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.fields{font-size:12px;line-height:1.45}
td.fields .k{color:#666}
td.fields .missing{color:#a33}
td.nowrap{white-space:nowrap}
td.fields summary{cursor:pointer;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:260px}
div.scroll{overflow-x:auto}
td.fields details[open] summary{margin-bottom:4px}
.drifted td{color:#b3261e;font-weight:600}
.fp{color:#b42318;font-weight:600}
.fn{color:#b54708;font-weight:600}
form.controls{display:flex;gap:14px;align-items:center;flex-wrap:wrap;font-size:14px;margin:8px 0}
form.controls input{width:5em}
code{font-size:12px;background:#f3f4f6;padding:1px 4px;border-radius:3px}
svg.chart{width:100%;height:auto;display:block}
svg.nullbar{display:block}
.chart text{font-size:12px;fill:#333}
.chart .grid{stroke:#eceef1}
.chart .axis{stroke:#9aa0a6}
.realized{stroke:#1f77b4;fill:#1f77b4}
.estimated{stroke:#8c564b;fill:#8c564b}
.ewma{stroke:#ff7f0e;fill:#ff7f0e}
.band{fill:#ff7f0e;fill-opacity:.16;stroke:none}
.labelled{fill:#1f77b4}
.unlabelled{fill:#c6dbef}
.share{stroke:#2ca02c;fill:#2ca02c}
.positive{fill:#2ca02c}
.negative{fill:#d62728}
.unknown{fill:#c7c7c7}
.mark{stroke:#222}
.nullrate{fill:#d62728}
.nulltrack{fill:#f0f0f0}
.chart polyline.line,.chart line.line{fill:none;stroke-width:2.2}
.chart .dashed{stroke-dasharray:7 4}
.chart .anomaly{fill:none;stroke:#d62728;stroke-width:2.5}
"#;

/// A whole HTML document, reloading itself every `refresh` seconds if
/// asked to.
pub(crate) fn layout(title: &str, refresh: Option<u32>, body: &str) -> String {
    let refresh = refresh
        .map(|seconds| format!("<meta http-equiv=\"refresh\" content=\"{seconds}\">"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{} — Triad monitor</title><style>{STYLE}</style></head>\
         <body><header class=\"top\"><a href=\"/\">Triad monitor</a></header><main>{body}</main></body></html>\n",
        escape(title)
    )
}

/// The page of a failed request.
pub(crate) fn error_page(status: StatusCode, message: &str) -> String {
    layout(
        status.canonical_reason().unwrap_or("error"),
        None,
        &format!(
            "<section class=\"error\"><h1>{} {}</h1><p>{}</p><p><a href=\"/\">all models</a></p></section>",
            status.as_u16(),
            escape(status.canonical_reason().unwrap_or("")),
            escape(message)
        ),
    )
}

/// `GET /`: the models with outcomes.
pub(crate) fn index(
    models: &[ModelSummary],
    recent: &HashMap<String, Confusion>,
    now_ms: i64,
    refresh: Option<u32>,
) -> String {
    let mut body = String::from("<h1>Models</h1>");
    if models.is_empty() {
        body += "<section id=\"models\"><p class=\"empty\">no data yet: the monitor has not \
                 stored any outcome. Outcomes arrive from the scorer (or \
                 <code>RecordOutcomes</code>); their models appear here.</p></section>";
        return layout("Models", refresh, &body);
    }
    let _ = write!(
        body,
        "<section id=\"models\"><p class=\"meta\">As of {}. Precision and recall: primary \
         versions, outcomes scored in the last 7 days.</p><table><thead><tr><th>model</th>\
         <th>versions</th><th class=\"num\">outcomes</th><th class=\"num\">labelled</th>\
         <th class=\"num\">precision (7 d)</th><th class=\"num\">recall (7 d)</th>\
         <th>latest hour with outcomes</th></tr></thead><tbody>",
        utc(now_ms)
    );
    for m in models {
        let versions: Vec<String> = m
            .versions
            .iter()
            .map(|v| {
                let query = PageQuery {
                    version: Some(v.version.clone()),
                    refresh,
                    ..PageQuery::default()
                };
                format!(
                    "<a href=\"{}\">{}</a>{}",
                    escape(&model_href(&m.model, &query)),
                    escape(&v.version),
                    if v.shadow { " (shadow)" } else { "" }
                )
            })
            .collect();
        let confusion = recent.get(&m.model).copied().unwrap_or_default();
        let outcomes = m.outcomes();
        let _ = write!(
            body,
            "<tr data-model=\"{}\"><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"num\">{outcomes}</td>\
             <td class=\"num\">{} ({})</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&m.model),
            escape(&model_href(
                &m.model,
                &PageQuery {
                    refresh,
                    ..PageQuery::default()
                }
            )),
            escape(&m.model),
            versions.join(", "),
            m.labelled(),
            percent(if outcomes > 0 {
                m.labelled() as f64 / outcomes as f64
            } else {
                f64::NAN
            }),
            ratio(confusion.precision()),
            ratio(confusion.recall()),
            m.last_hour_ms()
                .map(|ms| {
                    let hour = match datetime(ms, "%Y-%m-%d %H:00 UTC") {
                        date if date.is_empty() => format!("{ms} ms since the epoch"),
                        date => date,
                    };
                    if ms > now_ms {
                        format!("{hour} (in the future)")
                    } else {
                        hour
                    }
                })
                .unwrap_or_default()
        );
    }
    body += "</tbody></table></section>";
    layout("Models", refresh, &body)
}

/// `GET /models/{name}`: every section in order.
pub(crate) fn model(view: &ModelView) -> String {
    let sections = [
        header(view),
        summary(view),
        precision_recall(view),
        super::threshold::section(view),
        business_events(view),
        volume(view),
        score_histogram(view),
        null_rates(view),
        mistakes(view),
        drift(view),
    ];
    layout(&view.model, view.query.refresh, &sections.concat())
}

/// A section with an id, a heading and `content`.
fn section(id: &str, heading: &str, content: &str) -> String {
    format!("<section id=\"{id}\"><h2>{heading}</h2>{content}</section>")
}

/// The "nothing to show" paragraph.
fn empty(message: &str) -> String {
    format!("<p class=\"empty\">{}</p>", escape(message))
}

fn no_outcomes(view: &ModelView) -> String {
    empty(&format!(
        "no data yet: no outcome of this {} since {}.",
        if view.query.version.is_some() {
            "version"
        } else {
            "model's primary versions"
        },
        utc(view.from_ms)
    ))
}

/// Short axis labels and full tooltip labels of the buckets.
fn bucket_labels(view: &ModelView) -> (Vec<String>, Vec<String>) {
    let (short, long) = match view.query.width {
        Width::Hour => ("%m-%d %Hh", "%Y-%m-%d %H:00 UTC"),
        Width::Day => ("%m-%d", "%Y-%m-%d"),
        Width::Week => ("%m-%d", "week of %Y-%m-%d"),
    };
    view.points
        .iter()
        .map(|p| {
            (
                datetime(p.bucket_start_ms, short),
                datetime(p.bucket_start_ms, long),
            )
        })
        .unzip()
}

/// Title, range and the form that changes them.
fn header(view: &ModelView) -> String {
    let q = &view.query;
    let mut versions = format!(
        "<option value=\"\"{}>every primary version</option>",
        if q.version.is_none() { " selected" } else { "" }
    );
    for v in &view.summary.versions {
        let selected = q.version.as_deref() == Some(v.version.as_str());
        let _ = write!(
            versions,
            "<option value=\"{0}\"{1}>{0}{2}</option>",
            escape(&v.version),
            if selected { " selected" } else { "" },
            if v.shadow { " (shadow)" } else { "" }
        );
    }
    let buckets: String = [Width::Hour, Width::Day, Width::Week]
        .iter()
        .map(|w| {
            let name = width_name(*w);
            format!(
                "<option value=\"{name}\"{}>{name}</option>",
                if *w == q.width { " selected" } else { "" }
            )
        })
        .collect();
    format!(
        "<h1 id=\"model-name\">{model}</h1>\
         <p class=\"meta\">{version}, outcomes scored from {from} to now ({days} days), in {bucket} \
         buckets (UTC){shadow}. Page rendered {now}.</p>{future}\
         <form class=\"controls\" method=\"get\" action=\"/models/{href}\">\
         <label>last <input type=\"number\" name=\"days\" min=\"1\" max=\"{max}\" value=\"{days}\"> days</label>\
         <label>bucket <select name=\"bucket\">{buckets}</select></label>\
         <label>version <select name=\"version\">{versions}</select></label>{refresh}\
         <button type=\"submit\">show</button></form>",
        refresh = q
            .refresh
            .map(|s| format!("<input type=\"hidden\" name=\"refresh\" value=\"{s}\">"))
            .unwrap_or_default(),
        model = escape(&view.model),
        version = match &q.version {
            Some(v) => format!("Version {}", escape(v)),
            None => "Every primary version".to_owned(),
        },
        from = utc(view.from_ms),
        days = q.days,
        bucket = width_name(q.width),
        shadow = if view.include_shadow {
            ", shadow outcomes included"
        } else {
            ""
        },
        now = utc(view.now_ms),
        future = future_notice(view),
        href = escape(&encode(&view.model)),
        max = super::MAX_DAYS,
    )
}

/// What the page leaves out: outcomes dated after now, stored before the
/// monitor refused times in the future, with the SQL that finds them.
fn future_notice(view: &ModelView) -> String {
    let Some((count, last_hour_ms)) = view.future else {
        return String::new();
    };
    let latest = match datetime(last_hour_ms, "%Y-%m-%d %H:00 UTC") {
        date if date.is_empty() => format!("{last_hour_ms} ms since the epoch"),
        date => date,
    };
    format!(
        "<p class=\"notice\" id=\"future-outcomes\">{count} outcome{s} of this model \
         (any version) {are} dated after now, as late as {latest}: stored before the monitor \
         refused times in the future, they are left out of this page. Find them with \
         <code>SELECT * FROM outcomes WHERE model = '{model}' AND scored_at_ms &gt;= {end}</code>.</p>",
        s = if count == 1 { "" } else { "s" },
        are = if count == 1 { "is" } else { "are" },
        model = escape(&view.model.replace('\'', "''")),
        end = view.to_ms,
    )
}

/// Totals over the whole range.
fn summary(view: &ModelView) -> String {
    if view.points.is_empty() {
        return section("summary", "Summary", &no_outcomes(view));
    }
    let sum = |f: fn(&MetricPoint) -> u64| view.points.iter().map(f).sum::<u64>();
    let (count, labelled) = (sum(|p| p.count), sum(|p| p.labelled));
    let (tp, fp, fn_, tn) = (
        sum(|p| p.true_positives),
        sum(|p| p.false_positives),
        sum(|p| p.false_negatives),
        sum(|p| p.true_negatives),
    );
    let confusion = ConfusionCounts {
        true_positives: tp,
        false_positives: fp,
        false_negatives: fn_,
        true_negatives: tn,
    };
    let content = format!(
        "<table class=\"summary\"><thead><tr><th class=\"num\">outcomes</th>\
         <th class=\"num\">predicted positive</th><th class=\"num\">labelled</th>\
         <th class=\"num\">TP</th><th class=\"num\">FP</th><th class=\"num\">FN</th>\
         <th class=\"num\">TN</th><th class=\"num\">precision</th><th class=\"num\">recall</th>\
         </tr></thead><tbody><tr><td class=\"num\">{count}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{labelled} ({})</td><td class=\"num\">{tp}</td><td class=\"num\">{fp}</td>\
         <td class=\"num\">{fn_}</td><td class=\"num\">{tn}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td></tr></tbody></table>",
        sum(|p| p.predicted_positive),
        percent(if count > 0 {
            labelled as f64 / count as f64
        } else {
            f64::NAN
        }),
        ratio(confusion.precision()),
        ratio(confusion.recall()),
    ) + &super::explain::not_scored_note(&view.points);
    section("summary", "Summary", &content)
}

/// Precision and recall charts: realized, estimated when given, EWMA and
/// its band, anomalies.
/// The window's most frequent business events: median and 90th
/// percentile of their duration per bucket, on the buckets of the
/// precision and recall charts.
fn business_events(view: &ModelView) -> String {
    let heading = "Business events";
    if view.events.is_empty() {
        return section(
            "events",
            heading,
            &empty(
                "no business event in this range: send them with <code>RecordEvents</code> \
                 or <code>POST /events</code>.",
            ),
        );
    }
    if view.points.is_empty() {
        return section("events", heading, &no_outcomes(view));
    }
    let (x_labels, x_titles) = bucket_labels(view);
    let mut content = String::new();
    for (name, points) in &view.events {
        let by_bucket: HashMap<i64, &EventPoint> =
            points.iter().map(|p| (p.bucket_start_ms, p)).collect();
        let at = |value: fn(&EventPoint) -> f64| -> Vec<f64> {
            view.points
                .iter()
                .map(|p| {
                    by_bucket
                        .get(&p.bucket_start_ms)
                        .map_or(f64::NAN, |e| value(e))
                })
                .collect()
        };
        let median = at(|e| e.median_ms);
        let p90 = at(|e| e.p90_ms);
        let top = p90
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let count: u64 = points.iter().map(|p| p.count).sum();
        let series = [
            Series {
                name: "median duration (ms)",
                key: "median",
                values: &median,
                dashed: false,
                markers: true,
            },
            Series {
                name: "90th percentile (ms)",
                key: "p90",
                values: &p90,
                dashed: true,
                markers: true,
            },
        ];
        let _ = write!(
            content,
            "<h3 class=\"event\" data-event=\"{0}\">{0}</h3>",
            escape(name)
        );
        content += &svg::line_chart(&LineChart {
            title: &format!(
                "Duration of {name} per {} bucket",
                width_name(view.query.width)
            ),
            x_labels: &x_labels,
            x_titles: &x_titles,
            y_range: (0.0, svg::nice_max(top)),
            series: &series,
            band: None,
            flags: &[],
            flag_name: "",
        });
        let _ = write!(
            content,
            "<p class=\"caption\">{count} events in this range, every model's; \
             <code>QueryEvents</code> gives the same figures.</p>"
        );
    }
    section("events", heading, &content)
}

fn precision_recall(view: &ModelView) -> String {
    let heading = "Precision and recall";
    if view.points.is_empty() {
        return section("precision-recall", heading, &no_outcomes(view));
    }
    let mut content = String::new();
    for (metric, title) in [("precision", "Precision"), ("recall", "Recall")] {
        let realized: Vec<f64> = view
            .points
            .iter()
            .map(|p| match metric {
                "precision" => p.precision,
                _ => p.recall,
            })
            .map(|v| v.unwrap_or(f64::NAN))
            .collect();
        let estimated: Vec<Option<f64>> = view
            .points
            .iter()
            .map(|p| match metric {
                "precision" => p.estimated_precision,
                _ => p.estimated_recall,
            })
            .collect();
        let has_estimated = estimated.iter().any(Option::is_some);
        let estimated: Vec<f64> = estimated
            .into_iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect();
        let _ = write!(content, "<h3 id=\"{metric}\">{title}</h3>");
        if !realized.iter().any(|v| v.is_finite()) && !has_estimated {
            content += &empty(&format!(
                "no labels yet: {metric} needs labelled outcomes ({}).",
                if metric == "precision" {
                    "labelled outcomes the model predicted positive"
                } else {
                    "outcomes labelled positive"
                }
            ));
            continue;
        }
        let ewma = view.ewma(metric, &realized);
        let (lower, upper) = triad_series::ewma_band(&realized, &ewma, ANOMALY_SPAN, BAND_K);
        let flags = view.anomalies(metric);
        let (x_labels, x_titles) = bucket_labels(view);
        let realized_name = format!("{metric} (realized, from labels)");
        let estimated_name = format!("{metric} (estimated, from scores)");
        let ewma_name = format!("EWMA, span {ANOMALY_SPAN}");
        let band_name = format!("expected band (±{BAND_K} robust σ)");
        let mut series = vec![Series {
            name: &realized_name,
            key: "realized",
            values: &realized,
            dashed: false,
            markers: true,
        }];
        if has_estimated {
            series.push(Series {
                name: &estimated_name,
                key: "estimated",
                values: &estimated,
                dashed: true,
                markers: true,
            });
        }
        series.push(Series {
            name: &ewma_name,
            key: "ewma",
            values: &ewma,
            dashed: false,
            markers: false,
        });
        let has_band = lower.iter().any(|v| v.is_finite());
        content += &svg::line_chart(&LineChart {
            title: &format!(
                "{title} of {} per {} bucket",
                view.model,
                width_name(view.query.width)
            ),
            x_labels: &x_labels,
            x_titles: &x_titles,
            y_range: (0.0, 1.0),
            series: &series,
            band: has_band.then_some(Band {
                name: &band_name,
                lower: &lower,
                upper: &upper,
            }),
            flags: &flags,
            flag_name: "anomaly",
        });
        let defined = realized.iter().filter(|v| v.is_finite()).count();
        if defined == 0 {
            content += &empty(&format!(
                "no labels yet: the realized {metric} appears once outcomes are labelled; \
                 the estimated line needs no label."
            ));
        }
        let _ = write!(
            content,
            "<p class=\"caption\">{defined} of {} buckets have a realized {metric}; \
             {} flagged as anomalies.{}</p>",
            realized.len(),
            flags.len(),
            if has_band {
                ""
            } else {
                " The band needs more buckets with labels (and some variation) to be drawn."
            }
        );
    }
    let _ = write!(
        content,
        "<p class=\"legend\"><b>Legend.</b> Realized: TP / (TP + FP) for precision, TP / (TP + FN) \
         for recall, over the bucket's labelled outcomes (no point where undefined; gaps are not \
         interpolated). Estimated (dashed, when the monitor provides it): expected from \
         calibrated scores alone, before any label. EWMA: exponentially weighted moving average \
         of the realized values, span {ANOMALY_SPAN} (α = 1/3). Band: at each bucket, the EWMA \
         of the buckets before it plus the median residual, ± {BAND_K} robust standard \
         deviations of the residuals (residual = value − EWMA before it; σ = 1.4826 × median \
         absolute deviation); it starts after {ANOMALY_SPAN} warm-up buckets. A realized value \
         outside its band is an anomaly (red ring), as <code>QueryMetrics</code>' \
         <code>.anomaly</code> series and <code>Anomalies</code> flag it.</p>"
    );
    section("precision-recall", heading, &content)
}

/// Outcomes per bucket, labelled and not, with the labelled share.
fn volume(view: &ModelView) -> String {
    let heading = "Outcome volume";
    if view.points.is_empty() {
        return section("volume", heading, &no_outcomes(view));
    }
    let (x_labels, x_titles) = bucket_labels(view);
    let labelled: Vec<f64> = view.points.iter().map(|p| p.labelled as f64).collect();
    let unlabelled: Vec<f64> = view
        .points
        .iter()
        .map(|p| p.count.saturating_sub(p.labelled) as f64)
        .collect();
    let share: Vec<f64> = view
        .points
        .iter()
        .map(|p| {
            if p.count > 0 {
                p.labelled_share
            } else {
                f64::NAN
            }
        })
        .collect();
    let total: u64 = view.points.iter().map(|p| p.count).sum();
    let labelled_total: u64 = view.points.iter().map(|p| p.labelled).sum();
    let chart = svg::bar_chart(&BarChart {
        title: &format!(
            "Outcomes of {} per {} bucket",
            view.model,
            width_name(view.query.width)
        ),
        x_labels: &x_labels,
        x_titles: &x_titles,
        stacks: &[
            Bars {
                name: "labelled outcomes",
                key: "labelled",
                values: &labelled,
            },
            Bars {
                name: "not labelled yet",
                key: "unlabelled",
                values: &unlabelled,
            },
        ],
        share: Some(Series {
            name: "labelled share (right axis)",
            key: "share",
            values: &share,
            dashed: false,
            markers: true,
        }),
    });
    let caption = format!(
        "<p class=\"caption\">{total} outcomes in {} buckets, {labelled_total} labelled ({}). \
         Bars: outcomes per bucket (left axis), dark = labelled. Line: labelled share per \
         bucket (right axis).</p>",
        view.points.len(),
        percent(if total > 0 {
            labelled_total as f64 / total as f64
        } else {
            f64::NAN
        })
    );
    section("volume", heading, &(chart + &caption))
}

/// Scores of the stored outcomes in the range, by label.
fn score_histogram(view: &ModelView) -> String {
    let heading = "Score distribution";
    let h = &view.histogram;
    if h.total() == 0 {
        return section("scores", heading, &no_outcomes(view));
    }
    let as_f64 = |v: &[u64]| v.iter().map(|n| *n as f64).collect::<Vec<f64>>();
    let (positive, negative, unknown) = (
        as_f64(&h.positive),
        as_f64(&h.negative),
        as_f64(&h.unlabelled),
    );
    let marks: Vec<(f64, String)> = match h.thresholds {
        Some((lo, hi)) if lo == hi => vec![(lo, format!("threshold {lo}"))],
        Some((lo, hi)) => vec![
            (lo, format!("lowest threshold {lo}")),
            (hi, format!("highest threshold {hi}")),
        ],
        None => Vec::new(),
    };
    let bins = h.edges.len().saturating_sub(1);
    let chart = svg::histogram(&Histogram {
        title: &format!("Scores of {}", view.model),
        edges: &h.edges,
        stacks: &[
            Bars {
                name: "labelled positive",
                key: "positive",
                values: &positive,
            },
            Bars {
                name: "labelled negative",
                key: "negative",
                values: &negative,
            },
            Bars {
                name: "not labelled yet",
                key: "unknown",
                values: &unknown,
            },
        ],
        marks: &marks,
    });
    let caption = format!(
        "<p class=\"caption\">{} scores in {bins} equal bins over [{}, {}], stacked by label; \
         the dashed line is the decision threshold (a score at or above it is predicted \
         positive).</p>",
        h.total(),
        h.edges.first().copied().unwrap_or(0.0),
        h.edges.last().copied().unwrap_or(1.0),
    );
    section("scores", heading, &(chart + &caption))
}

/// Share of outcomes whose raw input field was missing, per field.
fn null_rates(view: &ModelView) -> String {
    let heading = "Missing inputs";
    let total: u64 = view.points.iter().map(|p| p.count).sum();
    if total == 0 {
        return section("null-rates", heading, &no_outcomes(view));
    }
    let mut fields: Vec<&str> = SEED_FIELDS.to_vec();
    let mut extra: Vec<&str> = view
        .points
        .iter()
        .flat_map(|p| p.null_rate.keys())
        .map(String::as_str)
        .filter(|f| !SEED_FIELDS.contains(f))
        .collect();
    extra.sort_unstable();
    extra.dedup();
    fields.extend(extra);
    let last = view.points.iter().rev().find(|p| p.count > 0);
    let mut rows = String::new();
    for field in fields {
        let missing: f64 = view
            .points
            .iter()
            .map(|p| p.null_rate.get(field).copied().unwrap_or(0.0) * p.count as f64)
            .sum();
        let rate = missing / total as f64;
        let latest = last.and_then(|p| p.null_rate.get(field).copied());
        let side = if field == "budget_id" {
            "budget (id)"
        } else if field == "itemization_id" {
            "line item (id)"
        } else {
            match MISSING_FLAG_FIELDS.iter().position(|f| *f == field) {
                Some(i) if i < BUDGET_INPUTS => "budget",
                Some(_) => "line item",
                None => "",
            }
        };
        let _ = write!(
            rows,
            "<tr data-field=\"{f}\"><td><code>{f}</code></td><td>{side}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>\
             <svg class=\"nullbar\" xmlns=\"http://www.w3.org/2000/svg\" width=\"160\" height=\"12\" viewBox=\"0 0 160 12\">\
             <rect class=\"nulltrack\" width=\"160\" height=\"12\"/>\
             <rect class=\"nullrate\" width=\"{:.1}\" height=\"12\"/></svg></td></tr>",
            percent(rate),
            latest.map_or_else(|| "—".to_owned(), percent),
            (rate.clamp(0.0, 1.0) * 160.0),
            f = escape(field),
        );
    }
    let content = format!(
        "<table class=\"null-rates\"><thead><tr><th>field</th><th>side</th>\
         <th class=\"num\">missing, whole range</th><th class=\"num\">missing, last bucket</th>\
         <th>share</th></tr></thead><tbody>{rows}</tbody></table>\
         <p class=\"caption\">Share of outcomes whose raw input value was absent or blank \
         (the seed's field names), weighted by outcomes; the last bucket is the latest one \
         holding outcomes.</p>"
    );
    section("null-rates", heading, &content)
}

/// One side's raw inputs, folded (native `<details>`, no script): the
/// summary line holds the id and the `headline` fields' values, the
/// unfolded part every field as `name: value`, missing ones last.
fn input_cell(
    names: &[&str],
    values: &[Option<&str>],
    id: (&str, &str),
    headline: &[&str],
) -> String {
    let present = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values[i])
            .filter(|v| !v.trim().is_empty())
    };
    let mut summary = vec![escape(id.1)];
    summary.extend(
        headline
            .iter()
            .map(|name| present(name).map_or_else(|| "—".to_owned(), escape)),
    );
    let mut out = format!(
        "<details><summary>{}</summary><span class=\"k\">{}:</span> {}<br>",
        summary.join(" · "),
        id.0,
        escape(id.1)
    );
    let mut missing = Vec::new();
    for name in names {
        match present(name) {
            Some(v) => {
                let _ = write!(out, "<span class=\"k\">{name}:</span> {}<br>", escape(v));
            }
            None => missing.push(*name),
        }
    }
    if !missing.is_empty() {
        let _ = write!(
            out,
            "<span class=\"missing\">missing: {}</span>",
            missing.join(", ")
        );
    }
    out + "</details>"
}

/// The ids an outcome's tooltip names: the scorer's request id and the
/// caller's own (its `x-request-id`) when it sent one.
fn request_title(outcome: &triad_proto::v1::Outcome) -> String {
    if outcome.correlation_id.is_empty() {
        format!("request {}", outcome.request_id)
    } else {
        format!(
            "request {}, caller's id {}",
            outcome.request_id, outcome.correlation_id
        )
    }
}

/// The latest false positives and negatives with their inputs.
fn mistakes(view: &ModelView) -> String {
    let heading = "Latest mistakes";
    if view.mistakes.is_empty() {
        let labelled: u64 = view.points.iter().map(|p| p.labelled).sum();
        let message = if labelled == 0 {
            "no labels yet: mistakes appear once outcomes are labelled."
        } else {
            "no mistakes: every labelled outcome in this range was predicted right."
        };
        return section("mistakes", heading, &empty(message));
    }
    let mut rows = String::new();
    for Mistake {
        outcome,
        label,
        kind,
    } in &view.mistakes
    {
        let Some(o) = outcome else { continue };
        let values = input_values(o);
        let (kind_class, kind_text) = match kind.as_str() {
            "false_positive" => ("fp", "false positive"),
            "false_negative" => ("fn", "false negative"),
            other => ("", other),
        };
        let _ = write!(
            rows,
            "<tr data-outcome-id=\"{id}\"><td class=\"nowrap\">{}</td>\
             <td class=\"{kind_class} nowrap\" title=\"label {}\">{}</td>\
             <td class=\"nowrap\"><code title=\"{}\">{id}</code> <span class=\"k\">v{}</span></td>\
             <td class=\"num nowrap\">{:.4} <span class=\"k\">/ {}</span></td>\
             {}<td class=\"fields\">{}</td><td class=\"fields\">{}</td></tr>",
            datetime(o.scored_at_ms, "%Y-%m-%d %H:%M"),
            u8::from(*label),
            escape(kind_text),
            escape(&request_title(o)),
            escape(&o.version),
            o.score,
            o.threshold,
            super::explain::wrong_way_cell(o),
            input_cell(
                &MISSING_FLAG_FIELDS[..BUDGET_INPUTS],
                &values[..BUDGET_INPUTS],
                ("budget_id", &o.budget_id),
                &["budget_type_budget", "budget_price_budget"],
            ),
            input_cell(
                &MISSING_FLAG_FIELDS[BUDGET_INPUTS..],
                &values[BUDGET_INPUTS..],
                ("itemization_id", &o.itemization_id),
                &[
                    "vendor_name_expense",
                    "expensed_amount_itemization",
                    "expense_type_name_itemization",
                ],
            ),
            id = escape(&o.outcome_id),
        );
    }
    let content = format!(
        "<div class=\"scroll\"><table class=\"mistakes\"><thead><tr><th>scored (UTC)</th><th>kind</th>\
         <th>outcome, version</th><th class=\"num\">score / threshold</th>\
         <th>pushed it the wrong way</th><th>budget</th><th>line item</th></tr></thead>\
         <tbody>{rows}</tbody></table></div><p class=\"caption\">Newest first{}; unfold a budget or \
         line item for every input field. A false positive \
         was predicted positive and labelled 0; a false negative predicted negative and \
         labelled 1. \"Pushed it the wrong way\": the features whose contributions to the \
         logit (weight times distance from the training mean) pushed it most toward the wrong \
         answer. All of them: <code>ListMistakes</code> or the <code>mistakes</code> \
         SQL view.</p>",
        if view.more_mistakes {
            format!("; the latest {} are shown", view.mistakes.len())
        } else {
            String::new()
        }
    );
    section("mistakes", heading, &content)
}

/// Drift of every feature and of the score against the reference profile:
/// drifted rows first, then by PSI.
fn drift(view: &ModelView) -> String {
    let drift = &view.drift;
    if !drift.available {
        let why = if drift.unavailable_reason.is_empty() {
            "no reference profile or no outcome in range".to_owned()
        } else {
            drift.unavailable_reason.clone()
        };
        return section(
            "drift",
            "Drift",
            &format!(
                "<p class=\"empty\">drift not available: {}</p>",
                escape(&why)
            ),
        );
    }
    let mut rows: Vec<&FeatureDrift> = drift.features.iter().chain(drift.score.as_ref()).collect();
    rows.sort_by(|a, b| {
        b.drifted.cmp(&a.drifted).then(
            b.psi
                .partial_cmp(&a.psi)
                .unwrap_or(std::cmp::Ordering::Equal),
        )
    });
    let number = |v: f64, digits: usize| {
        if v.is_finite() {
            format!("{v:.digits$}")
        } else {
            "–".to_owned()
        }
    };
    let body: String = rows
        .iter()
        .map(|f| {
            format!(
                "<tr{}><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} / {}</td><td>{}</td></tr>",
                if f.drifted { " class=\"drifted\"" } else { "" },
                escape(&f.name),
                number(f.psi, 3),
                number(f.ks_p_value, 4),
                number(f.normalized_wasserstein, 3),
                f.live_count,
                number(f.live_missing_rate * 100.0, 1),
                number(f.reference_missing_rate * 100.0, 1),
                if f.drifted {
                    escape(&f.reasons.join("; "))
                } else {
                    "ok".to_owned()
                },
            )
        })
        .collect();
    let drifted = rows.iter().filter(|f| f.drifted).count();
    let content = format!(
        "<p>{drifted} of {} variables drifted, over the newest {} outcomes of version {} \
         ({} left out: other feature schema).</p>\
         <div class=\"scroll\"><table class=\"drift\"><thead><tr><th>variable</th>\
         <th class=\"num\">PSI</th><th class=\"num\">KS p</th>\
         <th class=\"num\">Wasserstein / σ</th><th class=\"num\">live n</th>\
         <th class=\"num\">missing % live / ref</th><th>flag</th></tr></thead>\
         <tbody>{body}</tbody></table></div>\
         <p class=\"caption\">Against the training profile (<code>profile.json</code>): \
         drifted when PSI &gt; 0.2, KS p &lt; 0.05 or Wasserstein &gt; 0.1 reference σ. \
         Missing values are left out of the tests and shown as rates.</p>",
        rows.len(),
        drift.live_rows,
        escape(&drift.version),
        drift.excluded_rows,
    );
    section("drift", "Drift", &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(encode("a b/ç?&#"), "a%20b%2F%C3%A7%3F%26%23");
        assert_eq!(
            model_href("m/1", &PageQuery::default()),
            "/models/m%2F1?days=30&bucket=day"
        );
    }

    #[test]
    fn the_stylesheet_styles_drifted_rows_and_stays_out_of_the_body() {
        assert!(STYLE.contains(".drifted td{"));
        let page = index(&[], &HashMap::new(), 0, None);
        let body = page
            .split("</style>")
            .nth(1)
            .expect("a stylesheet, then the body");
        assert!(body.contains("no data yet"), "{body}");
        assert!(!body.contains('{'), "CSS in the body: {body}");
    }

    #[test]
    fn a_day_is_a_day() {
        assert_eq!(utc(crate::buckets::DAY_MS), "1970-01-02 00:00 UTC");
    }
}
