//! The monitor's integration tests, in one binary: real monitors on
//! ephemeral loopback ports over SQLite and (when configured) PostgreSQL,
//! started by [`support`].

#[macro_use]
mod support;

mod alert_days;
mod alerts;
mod auth;
mod dashboard;
mod drift;
mod gated;
mod hostile;
mod monitor;
mod report_queries;
mod synthetic;
mod threshold;
