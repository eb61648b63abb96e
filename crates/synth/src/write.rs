//! Writers: requests as seed-format JSON Lines, labels as CSV.

use std::io::{self, BufWriter, Write};

use crate::dataset::Dataset;

/// Format of `requested_at` in the labels CSV (the seed's datetime format).
pub const REQUESTED_AT_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Header line of [`write_labels_csv`].
pub const LABELS_CSV_HEADER: &str = "budget_id,itemization_id,matched,out_of_policy,requested_at";

/// Writes one request per line in exactly the seed's JSON shape,
/// `{"budgets":[...],"all_user_expense_lineitems":[...]}`, with the seed's
/// field names and null fields as JSON `null`. Output is buffered and flushed.
pub fn write_requests_jsonl(dataset: &Dataset, writer: impl Write) -> io::Result<()> {
    let mut out = BufWriter::new(writer);
    for synth in &dataset.requests {
        serde_json::to_writer(&mut out, &synth.request)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Writes the labels as CSV with header [`LABELS_CSV_HEADER`]: one row per
/// pair in request order, `matched` and `out_of_policy` as `0`/`1`, and the
/// request's `requested_at` as `YYYY-MM-DD HH:MM:SS`. Ids are digit strings,
/// so no field needs quoting. Output is buffered and flushed.
pub fn write_labels_csv(dataset: &Dataset, writer: impl Write) -> io::Result<()> {
    let mut out = BufWriter::new(writer);
    writeln!(out, "{LABELS_CSV_HEADER}")?;
    for synth in &dataset.requests {
        let requested_at = synth.requested_at.format(REQUESTED_AT_FORMAT).to_string();
        for label in &synth.labels {
            writeln!(
                out,
                "{},{},{},{},{}",
                label.budget_id,
                label.itemization_id,
                u8::from(label.matched),
                u8::from(label.out_of_policy),
                requested_at
            )?;
        }
    }
    out.flush()
}
