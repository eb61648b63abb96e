//! Small helpers for portable SQL: numbered placeholders (`$1`, which both
//! SQLite and PostgreSQL accept) and lenient decoding of `sqlx::Any` rows.

use std::fmt::Write;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, StorageError};

/// `($1,$2),($3,$4)` for `rows` rows of `cols` values, numbered from
/// `first`; on SQLite `(?,?),(?,?)` (see [`Backend::sql`]).
pub(crate) fn values(backend: Backend, rows: usize, cols: usize, first: usize) -> String {
    let mut out = String::with_capacity(rows * (cols * 6 + 3));
    let mut n = first;
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push(',');
            }
            placeholder(&mut out, backend, n);
            n += 1;
        }
        out.push(')');
    }
    out
}

/// `$first,…` (or `?,…` on SQLite) for `n` values, for an `IN (…)` list.
pub(crate) fn list(backend: Backend, n: usize, first: usize) -> String {
    let mut out = String::with_capacity(n * 6);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        placeholder(&mut out, backend, first + i);
    }
    out
}

fn placeholder(out: &mut String, backend: Backend, n: usize) {
    match backend {
        Backend::Sqlite => out.push('?'),
        Backend::Postgres => {
            let _ = write!(out, "${n}");
        }
    }
}

fn corrupt(index: usize, error: sqlx::Error) -> StorageError {
    StorageError::Corrupt(format!("column {index}: {error}"))
}

/// An integer column (any width).
pub(crate) fn int(row: &AnyRow, index: usize) -> Result<i64, StorageError> {
    row.try_get::<i64, _>(index).map_err(|e| corrupt(index, e))
}

/// A nullable integer column.
pub(crate) fn opt_int(row: &AnyRow, index: usize) -> Result<Option<i64>, StorageError> {
    row.try_get::<Option<i64>, _>(index)
        .map_err(|e| corrupt(index, e))
}

/// A float column; SQLite may hand back an integer for a computed value.
pub(crate) fn float(row: &AnyRow, index: usize) -> Result<f64, StorageError> {
    match row.try_get::<Option<f64>, _>(index) {
        Ok(value) => Ok(value.unwrap_or(0.0)),
        Err(_) => Ok(opt_int(row, index)?.unwrap_or(0) as f64),
    }
}

/// A text column.
pub(crate) fn text(row: &AnyRow, index: usize) -> Result<String, StorageError> {
    row.try_get::<String, _>(index)
        .map_err(|e| corrupt(index, e))
}

/// A nullable text column.
pub(crate) fn opt_text(row: &AnyRow, index: usize) -> Result<Option<String>, StorageError> {
    row.try_get::<Option<String>, _>(index)
        .map_err(|e| corrupt(index, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_across_rows() {
        let pg = Backend::Postgres;
        assert_eq!(values(pg, 2, 3, 1), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(values(pg, 1, 2, 4), "($4,$5)");
        assert_eq!(list(pg, 3, 2), "$2,$3,$4");
        assert_eq!(values(Backend::Sqlite, 2, 2, 1), "(?,?),(?,?)");
        assert_eq!(list(Backend::Sqlite, 2, 2), "?,?");
    }
}
