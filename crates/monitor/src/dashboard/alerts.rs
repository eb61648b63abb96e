//! The alert banner of the dashboard: the alerts firing now (all models on
//! the index, the model's own on its page), critical first, each with its
//! value, threshold, since-when and a link to the section that shows it.
//! Nothing is shown while nothing fires. The banner goes first in the
//! page's `<main>` ([`with_banner`]), so the pages' renderers need not
//! know about it.

use std::fmt::Write;

use triad_proto::v1::Alert;

use super::page::{escape, utc};

/// Most alerts listed; the banner says how many more fire.
pub(crate) const ALERTS_SHOWN: usize = 20;

/// `value` as the banner shows it: a share as a percentage, a count as a
/// whole number.
fn number(name: &str, value: f64) -> String {
    if !value.is_finite() {
        return "–".to_owned();
    }
    if name == "volume_drop" {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// The banner of `firing` (the first alerts firing, critical first, as
/// the store reads them) out of `count` firing in all, empty when nothing
/// fires.
pub(crate) fn banner(firing: &[Alert], count: u64) -> String {
    if firing.is_empty() {
        return String::new();
    }
    let mut sorted: Vec<&Alert> = firing.iter().collect();
    sorted.sort_by_key(|a| (a.severity != "critical", a.model.clone(), a.name.clone()));
    // An alert resolved or started between the two reads: at least the
    // alerts listed.
    let count = count.max(firing.len() as u64);
    let mut out = format!(
        "<section id=\"alerts\" style=\"border:2px solid #d62728;padding:0.5em 1em;margin:1em 0\">\
         <h2>{count} alert{} firing</h2><ul>",
        if count == 1 { "" } else { "s" }
    );
    for alert in sorted.iter().take(ALERTS_SHOWN) {
        let subject = if alert.subject.is_empty() {
            String::new()
        } else {
            format!(" ({})", escape(&alert.subject))
        };
        let _ = write!(
            out,
            "<li class=\"alert {severity}\" data-alert=\"{name}\"><strong>{severity}</strong> \
             <a href=\"{link}\">{model} {version}: {name}{subject}</a> — {summary}; value {value}, \
             threshold {threshold}, since {since}</li>",
            severity = escape(&alert.severity),
            name = escape(&alert.name),
            link = escape(&alert.link),
            model = escape(&alert.model),
            version = escape(&alert.version),
            summary = escape(&alert.summary),
            value = number(&alert.name, alert.value),
            threshold = number(&alert.name, alert.threshold),
            since = utc(alert.since_ms),
        );
    }
    out += "</ul>";
    let shown = firing.len().min(ALERTS_SHOWN) as u64;
    if count > shown {
        out += "<p class=\"meta\">More alerts fire than are listed: the <code>Alerts</code> RPC lists them all.</p>";
    }
    out += "</section>";
    out
}

/// `page` with `banner` first in its `<main>`.
pub(crate) fn with_banner(page: String, banner: &str) -> String {
    if banner.is_empty() {
        return page;
    }
    page.replacen("<main>", &format!("<main>{banner}"), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_lists_critical_alerts_first_escaped_and_links_them() {
        assert_eq!(banner(&[], 0), "");
        let alert = |name: &str, severity: &str| Alert {
            name: name.into(),
            severity: severity.into(),
            model: "<m>".into(),
            version: "1".into(),
            value: 75.0,
            threshold: 80.0,
            since_ms: 0,
            link: "/models/%3Cm%3E?days=28&bucket=day&version=1#volume".into(),
            summary: "few".into(),
            ..Alert::default()
        };
        let html = banner(
            &[
                alert("precision_anomalous", "warning"),
                alert("volume_drop", "critical"),
            ],
            2,
        );
        assert!(html.contains("2 alerts firing"));
        assert!(!html.contains("More alerts fire"));
        assert!(!html.contains("<m>"));
        assert!(html.contains("&lt;m&gt; 1: volume_drop"));
        assert!(html.find("volume_drop").unwrap() < html.find("precision_anomalous").unwrap());
        assert!(
            html.contains("href=\"/models/%3Cm%3E?days=28&amp;bucket=day&amp;version=1#volume\"")
        );
        assert!(html.contains("value 75, threshold 80"));
        let page = with_banner("<body><main><h1>x</h1></main></body>".into(), &html);
        assert!(page.starts_with("<body><main><section id=\"alerts\""));
        // The header counts every alert firing, not the ones listed.
        let html = banner(&[alert("volume_drop", "critical")], 30);
        assert!(html.contains("30 alerts firing"), "{html}");
        assert!(html.contains("More alerts fire than are listed"));
    }
}
