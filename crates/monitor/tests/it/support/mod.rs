//! Test support for the monitor: a real monitor server on an ephemeral
//! loopback port over a fresh database — a SQLite file in a temporary
//! directory, or a PostgreSQL database of its own created on the server
//! named by `TRIAD_TEST_POSTGRES_URL` and dropped afterwards — plus data
//! builders. Every scenario runs on both backends through [`on_both!`].

pub(crate) mod rng;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::watch;
use tonic::transport::Channel;
use triad_monitor::{MonitorConfig, StoreConfig};
use triad_proto::v1::monitor_client::MonitorClient;
use triad_proto::v1::{self, Budget, ExpenseLineItem, Label, Outcome};

/// Environment variable naming a PostgreSQL server for the tests.
const POSTGRES_URL_ENV: &str = "TRIAD_TEST_POSTGRES_URL";

/// Monday 2025-11-24T00:00:00Z: in the past, as every accepted time is.
pub(crate) const MONDAY: i64 = 1_763_942_400_000;
pub(crate) const HOUR: i64 = 3_600_000;
pub(crate) const DAY: i64 = 24 * HOUR;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

/// What a scenario gets: a client of the running monitor, its HTTP port
/// (the dashboard) and a pool on its database for plain SQL.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub kind: Kind,
    pub endpoint: String,
    pub http: std::net::SocketAddr,
    pub pool: AnyPool,
    /// The monitor's model repository, empty at start: a scenario writes
    /// `<models_dir>/<model>/<version>/profile.json` before the outcomes
    /// that should use it (profiles are read lazily).
    pub models_dir: std::path::PathBuf,
    /// The database's URL, for a second [`triad_monitor::Store`] on it.
    pub database_url: String,
}

impl Ctx {
    pub(crate) async fn client(&self) -> MonitorClient<Channel> {
        MonitorClient::connect(self.endpoint.clone()).await.unwrap()
    }
}

/// Runs one scenario as two tests, `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                $crate::support::run($crate::support::Kind::Sqlite, super::$name).await;
            }
            #[tokio::test]
            async fn postgres() {
                $crate::support::run($crate::support::Kind::Postgres, super::$name).await;
            }
        }
    )*};
}

/// The PostgreSQL server to test against, or `None` (printing why) when
/// none is configured; with `CI=true` a missing server is a failure.
pub(crate) fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if triad_test_support::tools::under_ci() {
                panic!(
                    "{POSTGRES_URL_ENV} must be set when CI=true (bash .ci/postgres.sh prints one)"
                );
            }
            // Straight to stderr, past libtest's capture, once per binary.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "postgres tests SKIPPED: {POSTGRES_URL_ENV} not set"
                );
            });
            None
        }
    }
}

/// `url` with its database name replaced by `database`.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

static DATABASES: AtomicUsize = AtomicUsize::new(0);

enum Db {
    /// Kept until the monitor stops.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin: String,
        name: String,
    },
}

/// Starts a monitor on a fresh database, runs `scenario`, stops the
/// monitor and drops the database, then re-raises the scenario's panic.
pub(crate) async fn run<F, Fut>(kind: Kind, scenario: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    sqlx::any::install_default_drivers();
    let (db, url) = match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/data/monitor.db", dir.path().display());
            (Db::Sqlite { _dir: dir }, url)
        }
        Kind::Postgres => {
            let Some(admin) = postgres_url() else {
                return;
            };
            let name = format!(
                "triad_monitor_test_{}_{}_{}",
                std::process::id(),
                DATABASES.fetch_add(1, Ordering::Relaxed),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos()
            );
            let pool = AnyPool::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            let url = with_database(&admin, &name);
            (Db::Postgres { admin, name }, url)
        }
    };

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap();
    let models = tempfile::tempdir().unwrap();
    let config = MonitorConfig {
        addr,
        models_dir: models.path().to_owned(),
        store: StoreConfig {
            database_url: url.clone(),
            max_connections: 4,
            ..StoreConfig::default()
        },
        ..MonitorConfig::default()
    };
    let (stop, mut stopped) = watch::channel(false);
    let server = tokio::spawn(async move {
        triad_monitor::serve(listener, Some(http), config, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await
        .unwrap();
    });
    let endpoint = format!("http://{addr}");
    triad_test_support::wait_healthy(&endpoint).await;
    let pool = AnyPool::connect(&url).await.unwrap();
    let ctx = Ctx {
        kind,
        endpoint,
        http: http_addr,
        pool: pool.clone(),
        models_dir: models.path().to_owned(),
        database_url: url.clone(),
    };

    let outcome = tokio::spawn(scenario(ctx)).await;

    pool.close().await;
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the monitor stops")
        .unwrap();
    if let Db::Postgres { admin, name } = &db {
        let pool = AnyPool::connect(admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    drop(db);
    drop(models);
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// An outcome of model `m` version `1` for pair `(b, i)` from request
/// `r-<id>`, scored at `at`: score 0.8 when matched, 0.2 otherwise.
pub(crate) fn outcome(id: &str, at: i64, pair: (&str, &str), matched: bool) -> Outcome {
    Outcome {
        outcome_id: id.to_owned(),
        request_id: format!("r-{id}"),
        scored_at_ms: at,
        model: "m".into(),
        version: "1".into(),
        schema_hash: "hash".into(),
        budget_id: pair.0.to_owned(),
        itemization_id: pair.1.to_owned(),
        score: if matched { 0.8 } else { 0.2 },
        threshold: 0.5,
        matched,
        latency_ms: 3.5,
        shadow: false,
        budget: Some(Budget {
            budget_id: Some(pair.0.to_owned()),
            budget_price_budget: Some("1200.50".into()),
            travel_vendor_receipts: None,
            purchase_vendor_receipts: Some(String::new()),
            budget_type_budget: Some("travel".into()),
            generated_at_budget: Some("2026-11-01T00:00:00Z".into()),
            start_datetime_trips: Some("2026-11-10".into()),
            end_datetime_trips: Some("2026-11-12".into()),
            actual_cost_budget: Some("1100".into()),
        }),
        line_item: Some(ExpenseLineItem {
            itemization_id: Some(pair.1.to_owned()),
            expensed_amount_itemization: Some("24.00".into()),
            expense_type_name_itemization: Some("Taxi".into()),
            transaction_date_itemization: Some("2026-11-11".into()),
            expense_category_itemization: Some("Ground".into()),
            vendor_name_expense: Some(format!("vendor {id}")),
            expense_type_name_expense: None,
            expense_category_expense: Some("Travel".into()),
        }),
        features: vec![0.25, f32::NAN, 1.5e-3],
        correlation_id: String::new(),
        not_scored: false,
        explanation: None,
    }
}

/// A pair-wide label of model `m`.
pub(crate) fn label(pair: (&str, &str), value: bool) -> Label {
    Label {
        model: "m".into(),
        budget_id: pair.0.to_owned(),
        itemization_id: pair.1.to_owned(),
        request_id: String::new(),
        label: value,
        labelled_at_ms: 0,
        source: "test".into(),
    }
}

pub(crate) async fn record(
    client: &mut MonitorClient<Channel>,
    outcomes: Vec<Outcome>,
) -> v1::RecordOutcomesResponse {
    client
        .record_outcomes(v1::RecordOutcomesRequest {
            outcomes,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

pub(crate) async fn labels(
    client: &mut MonitorClient<Channel>,
    labels: Vec<Label>,
) -> v1::RecordLabelsResponse {
    client
        .record_labels(v1::RecordLabelsRequest { labels })
        .await
        .unwrap()
        .into_inner()
}

/// Totals over every point of model `model`:
/// `[count, labelled, tp, fp, fn, tn]`.
pub(crate) async fn totals(client: &mut MonitorClient<Channel>, model: &str) -> [u64; 6] {
    let points = client
        .query_metrics(v1::QueryMetricsRequest {
            model: model.into(),
            bucket: v1::Bucket::Hour.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    points.iter().fold([0; 6], |mut t, p| {
        t[0] += p.count;
        t[1] += p.labelled;
        t[2] += p.true_positives;
        t[3] += p.false_positives;
        t[4] += p.false_negatives;
        t[5] += p.true_negatives;
        t
    })
}

/// One integer from plain SQL.
pub(crate) async fn scalar(pool: &AnyPool, sql: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}
