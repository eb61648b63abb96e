//! `triad featurize`: the matrix a data scientist trains on, built by the
//! very library the preprocess service serves with.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use triad_features::{FeatureMatrix, Featurizer, JsonLimits, parse_request};

#[derive(Args)]
pub(crate) struct FeaturizeArgs {
    /// Seed-format JSON request, or JSONL of requests; `-` or nothing for
    /// standard input.
    input: Option<PathBuf>,
    /// Write the CSV here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Write per-item errors as CSV here (they always go to standard error
    /// as well).
    #[arg(long)]
    errors: Option<PathBuf>,
}

/// Requests above this many lines get a progress bar.
const PROGRESS_MIN_REQUESTS: usize = 100;

pub(crate) fn run(args: &FeaturizeArgs) -> anyhow::Result<()> {
    let text = read_input(args.input.as_ref())?;
    let requests = split_requests(&text);
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let mut csv = csv::Writer::from_writer(BufWriter::new(out));
    let mut errors = match &args.errors {
        Some(path) => {
            let mut writer = csv::Writer::from_path(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            writer.write_record([
                "request",
                "item_kind",
                "index",
                "id",
                "field",
                "code",
                "message",
            ])?;
            Some(writer)
        }
        None => None,
    };

    let featurizer = Featurizer::default();
    let mut header = vec!["budget_id".to_owned(), "itemization_id".to_owned()];
    header.extend(featurizer.schema().feature_names.iter().cloned());
    csv.write_record(&header)?;

    let progress = if requests.len() >= PROGRESS_MIN_REQUESTS {
        ProgressBar::new(requests.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} requests, {per_sec}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    let (mut rows, mut item_errors, mut unreadable) = (0usize, 0usize, 0usize);
    let mut cell = String::new();
    for (line, body) in &requests {
        progress.inc(1);
        let parsed = match parse_request(body, &JsonLimits::default()) {
            Ok(parsed) => parsed,
            Err(error) => {
                unreadable += 1;
                progress.suspend(|| eprintln!("request on line {line}: {error}"));
                continue;
            }
        };
        let matrix = featurizer.featurize_with_errors(&parsed.request, parsed.errors);
        for error in &matrix.errors {
            progress.suspend(|| eprintln!("request on line {line}: {error}"));
            if let Some(writer) = errors.as_mut() {
                writer.write_record([
                    line.to_string().as_str(),
                    error.kind.as_str(),
                    error.index.to_string().as_str(),
                    error.id.as_deref().unwrap_or(""),
                    error.field.unwrap_or(""),
                    error.code.as_str(),
                    error.message.as_str(),
                ])?;
            }
        }
        item_errors += matrix.errors.len();
        rows += matrix.n_rows;
        write_rows(&mut csv, &matrix, &mut cell)?;
    }
    progress.finish_and_clear();
    csv.flush()?;
    if let Some(mut writer) = errors {
        writer.flush()?;
    }
    eprintln!(
        "featurized {} request(s) into {rows} row(s); {item_errors} item error(s); {unreadable} unreadable request(s)",
        requests.len() - unreadable
    );
    Ok(())
}

fn read_input(path: Option<&PathBuf>) -> anyhow::Result<String> {
    let mut text = String::new();
    match path {
        Some(path) if path.as_os_str() != "-" => {
            BufReader::new(
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
            )
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {}", path.display()))?;
        }
        _ => {
            io::stdin()
                .lock()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
        }
    }
    Ok(text)
}

/// One JSON document (possibly pretty-printed) is one request; otherwise
/// every non-blank line is one. Each request keeps its 1-based line number.
fn split_requests(text: &str) -> Vec<(usize, &str)> {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        return vec![(1, text)];
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| (index + 1, line))
        .collect()
}

fn write_rows<W: Write>(
    csv: &mut csv::Writer<W>,
    matrix: &FeatureMatrix,
    cell: &mut String,
) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    for ((budget_id, itemization_id), row) in matrix.rows() {
        csv.write_field(budget_id)?;
        csv.write_field(itemization_id)?;
        for value in row {
            cell.clear();
            // Missing values are empty cells, which pandas reads as NaN.
            if !value.is_nan() {
                write!(cell, "{value}")?;
            }
            csv.write_field(cell.as_bytes())?;
        }
        csv.write_record(None::<&[u8]>)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_requests;

    #[test]
    fn pretty_json_is_one_request_and_jsonl_is_one_per_line() {
        assert_eq!(split_requests("{\n \"budgets\": []\n}\n").len(), 1);
        let lines = split_requests("{\"budgets\":[]}\n\n{\"budgets\":[]}\nnot json\n");
        let numbers: Vec<usize> = lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 3, 4]);
    }
}
