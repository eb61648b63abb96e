//! Small server-rendered SVG charts for the dashboard: a line chart
//! (several series, gaps at NaN, an optional shaded band, ringed markers),
//! a stacked bar chart (with an optional 0–100 % line on a right axis) and
//! a stacked histogram (with vertical marks, e.g. a threshold). No
//! JavaScript: values show as `<title>` tooltips. Colours come from CSS
//! classes (`page.rs` defines them); every text is escaped.
//!
//! Points of the time charts sit at the centres of equal slots, one slot
//! per bucket, so a line chart and a bar chart of the same buckets line up.

use std::fmt::Write;

use super::page::escape;

/// Width of every chart's view box.
pub(crate) const WIDTH: f64 = 900.0;
/// Height of the plot area; the view box adds the legend's rows above
/// and the axis labels below.
pub(crate) const PLOT_H: f64 = 210.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 56.0;
/// Baseline of the first legend row.
const LEGEND_Y: f64 = 16.0;
const LEGEND_ROW: f64 = 18.0;
const BOTTOM: f64 = 40.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
/// Rough width of one character of the 12 px axis font.
const CHAR_W: f64 = 6.8;

/// One line of a [`LineChart`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// CSS class and `data-series` attribute (a fixed identifier).
    pub key: &'a str,
    /// One value per bucket; NaN leaves a gap.
    pub values: &'a [f64],
    pub dashed: bool,
    /// A small dot with a tooltip at every defined value.
    pub markers: bool,
}

/// A shaded band between two series of a [`LineChart`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Band<'a> {
    pub name: &'a str,
    pub lower: &'a [f64],
    pub upper: &'a [f64],
}

/// A line chart over time buckets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineChart<'a> {
    /// Accessible name of the chart.
    pub title: &'a str,
    /// Short axis label per bucket.
    pub x_labels: &'a [String],
    /// Full label per bucket, for tooltips.
    pub x_titles: &'a [String],
    /// Value range of the y axis (values outside are clamped).
    pub y_range: (f64, f64),
    pub series: &'a [Series<'a>],
    pub band: Option<Band<'a>>,
    /// Buckets ringed on the first series (e.g. anomalies).
    pub flags: &'a [usize],
    /// Legend text of the rings.
    pub flag_name: &'a str,
}

/// One stacked part of a bar.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bars<'a> {
    pub name: &'a str,
    pub key: &'a str,
    pub values: &'a [f64],
}

/// Stacked bars over time buckets, with an optional share line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BarChart<'a> {
    pub title: &'a str,
    pub x_labels: &'a [String],
    pub x_titles: &'a [String],
    /// Bottom first.
    pub stacks: &'a [Bars<'a>],
    /// A line of values in `[0, 1]` on a right axis in percent.
    pub share: Option<Series<'a>>,
}

/// Stacked counts in bins of a numeric axis.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Histogram<'a> {
    pub title: &'a str,
    /// `bins + 1` increasing edges.
    pub edges: &'a [f64],
    /// Bottom first, one value per bin.
    pub stacks: &'a [Bars<'a>],
    /// Vertical dashed lines at `x`, with their legend text.
    pub marks: &'a [(f64, String)],
}

/// What a legend entry looks like.
#[derive(Debug, Clone, Copy)]
enum Swatch {
    Line { dashed: bool },
    Box,
    Ring,
}

/// A legend entry: its swatch, CSS class and text.
type Entry<'a> = (Swatch, &'a str, &'a str);

/// Where each legend entry goes, left to right, wrapping into rows.
fn legend_positions(legend: &[Entry<'_>]) -> Vec<(f64, f64)> {
    let (mut x, mut y) = (LEFT, LEGEND_Y);
    legend
        .iter()
        .map(|(_, _, name)| {
            let width = 30.0 + name.chars().count() as f64 * CHAR_W + 18.0;
            if x + width > WIDTH - RIGHT && x > LEFT {
                x = LEFT;
                y += LEGEND_ROW;
            }
            let at = (x, y);
            x += width;
            at
        })
        .collect()
}

/// The top of the plot under `legend`: below its last row.
fn plot_top(legend: &[Entry<'_>]) -> f64 {
    let last = legend_positions(legend)
        .last()
        .map_or(LEGEND_Y, |(_, y)| *y);
    last + 24.0
}

/// The svg element (sized to the legend's rows), its accessible title,
/// the legend, then `body`.
fn frame(class: &str, title: &str, legend: &[Entry<'_>], body: &str) -> String {
    let height = plot_top(legend) + PLOT_H + BOTTOM;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart {class}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
    for ((swatch, key, name), (x, y)) in legend.iter().zip(legend_positions(legend)) {
        let _ = match swatch {
            Swatch::Line { dashed } => write!(
                out,
                r#"<line class="line {key}{d}" x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#,
                x + 22.0,
                d = if *dashed { " dashed" } else { "" }
            ),
            Swatch::Box => write!(
                out,
                r#"<rect class="{key}" x="{x:.1}" y="{:.1}" width="22" height="10"/>"#,
                y - 5.0
            ),
            Swatch::Ring => write!(
                out,
                r#"<circle class="{key}" cx="{:.1}" cy="{y:.1}" r="6"/>"#,
                x + 11.0
            ),
        };
        let _ = write!(
            out,
            r#"<text class="legend" x="{:.1}" y="{:.1}">{}</text>"#,
            x + 28.0,
            y + 4.0,
            escape(name)
        );
    }
    out.push_str(body);
    out.push_str("</svg>");
    out
}

/// "Nice" tick values covering `[lo, hi]`: about five, at 1, 2 or 5
/// times a power of ten.
pub(crate) fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / 5.0;
    let power = 10_f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// The top of a count axis: the first nice tick at or above `max`.
pub(crate) fn nice_max(max: f64) -> f64 {
    if max.is_nan() || max <= 0.0 {
        return 1.0;
    }
    let power = 10_f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|top| *top >= max)
        .unwrap_or(10.0 * power)
}

/// Labels of `ticks`, all with the decimals the finest one needs
/// (`0.0 … 1.0`, `0.00 0.25 …`); whole thousands from 10 000 as `k`.
fn tick_labels(ticks: &[f64]) -> Vec<String> {
    let decimals = (0..=3)
        .find(|d| {
            let scale = 10_f64.powi(*d);
            ticks
                .iter()
                .all(|t| ((t * scale).round() - t * scale).abs() < 1e-6)
        })
        .unwrap_or(3) as usize;
    ticks
        .iter()
        .map(|t| {
            if decimals == 0 && t.abs() >= 10_000.0 && t % 1000.0 == 0.0 {
                format!("{}k", t / 1000.0)
            } else {
                format!("{t:.decimals$}")
            }
        })
        .collect()
}

/// A value in a tooltip.
fn value_label(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

/// Positions of the time charts: `n` slots across the plot.
struct Slots {
    n: usize,
}

impl Slots {
    fn step(&self) -> f64 {
        PLOT_W / self.n.max(1) as f64
    }

    fn x(&self, i: usize) -> f64 {
        LEFT + self.step() * (i as f64 + 0.5)
    }
}

/// Maps values of `[lo, hi]` to the plot's height below `top`, clamping.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    top: f64,
}

impl Scale {
    fn y(&self, v: f64) -> f64 {
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        self.top + (1.0 - t) * PLOT_H
    }

    fn bottom(&self) -> f64 {
        self.top + PLOT_H
    }
}

/// Horizontal grid lines with their labels on the left (or right) axis.
fn y_axis(out: &mut String, scale: Scale, right: bool, percent: bool) {
    let values = ticks(scale.lo, scale.hi);
    let labels = if percent {
        values
            .iter()
            .map(|v| format!("{:.0}%", v * 100.0))
            .collect()
    } else {
        tick_labels(&values)
    };
    for (tick, label) in values.into_iter().zip(labels) {
        let y = scale.y(tick);
        if !right {
            let _ = write!(
                out,
                r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#,
                WIDTH - RIGHT
            );
        }
        let (x, anchor) = if right {
            (WIDTH - RIGHT + 6.0, "start")
        } else {
            (LEFT - 6.0, "end")
        };
        let _ = write!(
            out,
            r#"<text class="tick" x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            y + 4.0,
            escape(&label)
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{b:.1}" x2="{:.1}" y2="{b:.1}"/>"#,
        WIDTH - RIGHT,
        b = scale.bottom()
    );
}

/// Bucket labels under the plot, thinned so they never overlap.
fn x_axis(out: &mut String, slots: &Slots, bottom: f64, labels: &[String]) {
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
    let room = (widest * CHAR_W + 14.0).max(1.0);
    let fit = ((PLOT_W / room).floor() as usize).max(1);
    let every = labels.len().div_ceil(fit).max(1);
    for (i, label) in labels.iter().enumerate().step_by(every) {
        let x = slots.x(i);
        let _ = write!(
            out,
            r#"<line class="axis" x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            bottom + 4.0,
            bottom + 18.0,
            escape(label),
        );
    }
}

/// Index runs of consecutive finite values of `values`.
fn runs(values: &[f64]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, v) in values.iter().enumerate() {
        match (v.is_finite(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..values.len());
    }
    out
}

/// One series as polylines between gaps (a lone point as a dot), plus
/// optional markers.
fn polyline(out: &mut String, slots: &Slots, scale: Scale, s: &Series<'_>, titles: &[String]) {
    let dashed = if s.dashed { " dashed" } else { "" };
    let key = escape(s.key);
    for run in runs(s.values) {
        if run.len() == 1 {
            let i = run.start;
            let _ = write!(
                out,
                r#"<circle class="dot {key}" data-series="{key}" cx="{:.1}" cy="{:.1}" r="3"/>"#,
                slots.x(i),
                scale.y(s.values[i])
            );
            continue;
        }
        let points: Vec<String> = run
            .map(|i| format!("{:.1},{:.1}", slots.x(i), scale.y(s.values[i])))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="line {key}{dashed}" data-series="{key}" points="{}"/>"#,
            points.join(" ")
        );
    }
    if s.markers {
        for (i, v) in s.values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            let _ = write!(
                out,
                r#"<circle class="pt {key}" cx="{:.1}" cy="{:.1}" r="2.5"><title>{} — {}: {}</title></circle>"#,
                slots.x(i),
                scale.y(*v),
                escape(titles.get(i).map_or("", String::as_str)),
                escape(s.name),
                value_label(*v)
            );
        }
    }
}

/// A line chart; see [`LineChart`].
pub(crate) fn line_chart(chart: &LineChart<'_>) -> String {
    let mut legend: Vec<Entry<'_>> = chart
        .series
        .iter()
        .map(|s| (Swatch::Line { dashed: s.dashed }, s.key, s.name))
        .collect();
    if let Some(band) = &chart.band {
        legend.push((Swatch::Box, "band", band.name));
    }
    if !chart.flags.is_empty() && !chart.series.is_empty() {
        legend.push((Swatch::Ring, "anomaly", chart.flag_name));
    }
    let slots = Slots {
        n: chart.x_labels.len(),
    };
    let scale = Scale {
        lo: chart.y_range.0,
        hi: chart.y_range.1,
        top: plot_top(&legend),
    };
    let mut body = String::new();
    y_axis(&mut body, scale, false, false);
    x_axis(&mut body, &slots, scale.bottom(), chart.x_labels);
    if let Some(band) = &chart.band {
        let both: Vec<f64> = band
            .lower
            .iter()
            .zip(band.upper)
            .map(|(l, u)| {
                if l.is_finite() && u.is_finite() {
                    *l
                } else {
                    f64::NAN
                }
            })
            .collect();
        for run in runs(&both) {
            let upper = run
                .clone()
                .map(|i| format!("{:.1},{:.1}", slots.x(i), scale.y(band.upper[i])));
            let lower = run
                .clone()
                .rev()
                .map(|i| format!("{:.1},{:.1}", slots.x(i), scale.y(band.lower[i])));
            let points: Vec<String> = upper.chain(lower).collect();
            let _ = write!(
                body,
                r#"<polygon class="band" points="{}"/>"#,
                points.join(" ")
            );
        }
    }
    for s in chart.series {
        polyline(&mut body, &slots, scale, s, chart.x_titles);
    }
    if let Some(first) = chart.series.first() {
        for &i in chart.flags {
            let Some(v) = first.values.get(i).filter(|v| v.is_finite()) else {
                continue;
            };
            let _ = write!(
                body,
                r#"<circle class="anomaly" cx="{:.1}" cy="{:.1}" r="7"><title>{} — {}: {} ({})</title></circle>"#,
                slots.x(i),
                scale.y(*v),
                escape(chart.x_titles.get(i).map_or("", String::as_str)),
                escape(first.name),
                value_label(*v),
                escape(chart.flag_name)
            );
        }
    }
    frame("line-chart", chart.title, &legend, &body)
}

/// Bar totals per slot of stacked `stacks`.
fn totals(stacks: &[Bars<'_>], n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            stacks
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect()
}

/// A stacked bar chart; see [`BarChart`].
pub(crate) fn bar_chart(chart: &BarChart<'_>) -> String {
    let mut legend: Vec<Entry<'_>> = chart
        .stacks
        .iter()
        .map(|s| (Swatch::Box, s.key, s.name))
        .collect();
    if let Some(share) = &chart.share {
        legend.push((Swatch::Line { dashed: false }, share.key, share.name));
    }
    let n = chart.x_labels.len();
    let slots = Slots { n };
    let scale = Scale {
        lo: 0.0,
        hi: nice_max(totals(chart.stacks, n).into_iter().fold(0.0, f64::max)),
        top: plot_top(&legend),
    };
    let mut body = String::new();
    y_axis(&mut body, scale, false, false);
    x_axis(&mut body, &slots, scale.bottom(), chart.x_labels);
    let width = (slots.step() * 0.8).max(1.0);
    for i in 0..n {
        let mut base = 0.0;
        let title = chart.x_titles.get(i).map_or("", String::as_str);
        for s in chart.stacks {
            let v = s.values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let (top, bottom) = (scale.y(base + v), scale.y(base));
            let _ = write!(
                body,
                r#"<rect class="bar {key}" data-count="{}" x="{:.1}" y="{top:.1}" width="{width:.1}" height="{:.1}"><title>{} — {}: {}</title></rect>"#,
                value_label(v),
                slots.x(i) - width / 2.0,
                (bottom - top).max(0.5),
                escape(title),
                escape(s.name),
                value_label(v),
                key = escape(s.key)
            );
            base += v;
        }
    }
    if let Some(share) = &chart.share {
        let percent = Scale {
            lo: 0.0,
            hi: 1.0,
            top: scale.top,
        };
        y_axis(&mut body, percent, true, true);
        polyline(&mut body, &slots, percent, share, chart.x_titles);
    }
    frame("bar-chart", chart.title, &legend, &body)
}

/// A stacked histogram; see [`Histogram`].
pub(crate) fn histogram(chart: &Histogram<'_>) -> String {
    let mut legend: Vec<Entry<'_>> = chart
        .stacks
        .iter()
        .map(|s| (Swatch::Box, s.key, s.name))
        .collect();
    legend.extend(
        chart
            .marks
            .iter()
            .map(|(_, name)| (Swatch::Line { dashed: true }, "mark", name.as_str())),
    );
    let bins = chart.edges.len().saturating_sub(1);
    let (Some(&lo), Some(&hi)) = (chart.edges.first(), chart.edges.last()) else {
        return frame("histogram", chart.title, &legend, "");
    };
    let x = |v: f64| LEFT + ((v - lo) / (hi - lo)).clamp(0.0, 1.0) * PLOT_W;
    let scale = Scale {
        lo: 0.0,
        hi: nice_max(totals(chart.stacks, bins).into_iter().fold(0.0, f64::max)),
        top: plot_top(&legend),
    };
    let bottom = scale.bottom();
    let mut body = String::new();
    y_axis(&mut body, scale, false, false);
    let x_ticks = ticks(lo, hi);
    for (tick, label) in x_ticks.iter().zip(tick_labels(&x_ticks)) {
        let _ = write!(
            body,
            r#"<line class="axis" x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            bottom + 4.0,
            bottom + 18.0,
            escape(&label),
            x = x(*tick),
        );
    }
    for i in 0..bins {
        let (left, right) = (x(chart.edges[i]), x(chart.edges[i + 1]));
        let mut base = 0.0;
        for s in chart.stacks {
            let v = s.values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let (top, bar_bottom) = (scale.y(base + v), scale.y(base));
            let _ = write!(
                body,
                r#"<rect class="bar {key}" data-bin="{i}" data-count="{}" x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}"><title>[{}, {}) — {}: {}</title></rect>"#,
                value_label(v),
                left + 0.5,
                (right - left - 1.0).max(0.5),
                (bar_bottom - top).max(0.5),
                value_label(chart.edges[i]),
                value_label(chart.edges[i + 1]),
                escape(s.name),
                value_label(v),
                key = escape(s.key)
            );
            base += v;
        }
    }
    for (at, name) in chart.marks {
        let _ = write!(
            body,
            r#"<line class="line mark dashed" x1="{mx:.1}" y1="{:.1}" x2="{mx:.1}" y2="{bottom:.1}"><title>{}</title></line>"#,
            scale.top,
            escape(name),
            mx = x(*at),
        );
    }
    frame("histogram", chart.title, &legend, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("d{i}")).collect()
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            ticks(0.0, 1.0),
            [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(ticks(0.0, 100.0), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(120.0), 200.0);
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(
            tick_labels(&ticks(0.0, 1.0)),
            ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
        );
        assert_eq!(tick_labels(&[0.0, 0.25, 0.5]), ["0.00", "0.25", "0.50"]);
        assert_eq!(tick_labels(&[0.0, 10_000.0, 20_000.0]), ["0", "10k", "20k"]);
        assert_eq!(tick_labels(&[0.0, 5.0, 10.0]), ["0", "5", "10"]);
    }

    #[test]
    fn gaps_split_lines_and_lone_points_become_dots() {
        let values = [0.5, 0.6, f64::NAN, 0.7, f64::NAN, 0.1, 0.2, 0.3];
        let x = labels(values.len());
        let svg = line_chart(&LineChart {
            title: "p <x>",
            x_labels: &x,
            x_titles: &x,
            y_range: (0.0, 1.0),
            series: &[Series {
                name: "precision",
                key: "realized",
                values: &values,
                dashed: false,
                markers: false,
            }],
            band: None,
            flags: &[5],
            flag_name: "anomaly",
        });
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches(r#"<circle class="dot realized""#).count(), 1);
        // One ring on the chart (with a tooltip), one in the legend.
        assert_eq!(svg.matches(r#"<circle class="anomaly""#).count(), 2);
        assert_eq!(svg.matches(r#"r="7"><title>"#).count(), 1);
        assert!(svg.contains("p &lt;x&gt;"));
        assert!(!svg.contains("<x>"));
    }

    #[test]
    fn bands_skip_undefined_points() {
        let x = labels(4);
        let lower = [f64::NAN, 0.1, 0.2, 0.3];
        let upper = [f64::NAN, 0.5, 0.6, 0.7];
        let svg = line_chart(&LineChart {
            title: "t",
            x_labels: &x,
            x_titles: &x,
            y_range: (0.0, 1.0),
            series: &[],
            band: Some(Band {
                name: "band",
                lower: &lower,
                upper: &upper,
            }),
            flags: &[],
            flag_name: "",
        });
        let polygon = svg.split("<polygon").nth(1).unwrap();
        let points = polygon.split('"').nth(3).unwrap();
        assert_eq!(points.split(' ').count(), 6);
    }

    #[test]
    fn bars_stack_and_skip_zeros() {
        let x = labels(3);
        let svg = bar_chart(&BarChart {
            title: "volume",
            x_labels: &x,
            x_titles: &x,
            stacks: &[
                Bars {
                    name: "labelled",
                    key: "labelled",
                    values: &[1.0, 0.0, 2.0],
                },
                Bars {
                    name: "unlabelled",
                    key: "unlabelled",
                    values: &[3.0, 0.0, 0.0],
                },
            ],
            share: None,
        });
        assert_eq!(svg.matches("<rect class=\"bar ").count(), 3);
        let histogram = histogram(&Histogram {
            title: "scores",
            edges: &[0.0, 0.5, 1.0],
            stacks: &[Bars {
                name: "all",
                key: "all",
                values: &[4.0, 1.0],
            }],
            marks: &[(0.5, "threshold 0.5".into())],
        });
        assert_eq!(histogram.matches("data-bin=").count(), 2);
        assert!(histogram.contains("threshold 0.5"));
    }

    #[test]
    fn crowded_axes_are_thinned() {
        let x = labels(200);
        let svg = bar_chart(&BarChart {
            title: "t",
            x_labels: &x,
            x_titles: &x,
            stacks: &[],
            share: None,
        });
        let shown = svg.matches(r#"text-anchor="middle""#).count();
        assert!(shown > 5 && shown <= 40, "{shown}");
    }
}
