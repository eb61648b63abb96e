//! `triad up`: the embedded default. Starts every service in this process on
//! its default ports — preprocess with its `/metrics` port, one scorer
//! serving every model in the repository with the seed's HTTP contract,
//! and the monitor on a SQLite file with its HTTP dashboard — checks the
//! chain end to end with the seed request, and prints ready-to-paste calls.
//!
//! **Secure by default where it is exposed.** Every port binds loopback
//! (`127.0.0.1`) unless an address flag says otherwise. The services take
//! the same TLS and token flags as their own binaries (`SecurityArgs`,
//! `UpstreamTlsArgs`), or `--secrets DIR` for a set `triad certs` wrote;
//! with TLS or tokens on, every port uses them and so do the services
//! between themselves, the end-to-end check and the printed calls. A
//! non-loopback address whose callers need neither a token nor a client
//! certificate is refused unless `--insecure` says to serve it open anyway
//! (and then warned about); tokens without TLS are warned about.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

/// `println!` that ignores a closed standard output: the services keep
/// running when whoever started them stops reading.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
use clap::Args;
use triad_features::{JsonLimits, parse_request};
use triad_preprocess::PreprocessConfig;
use triad_proto::v1::{self, scorer_client::ScorerClient};
use triad_score::ScoreConfig;
use triad_server::auth::TokenSource;
use triad_server::security::UpstreamTlsArgs;
use triad_server::tls::ClientTls;
use triad_server::{Security, SecurityArgs, Shutdown};

use crate::certs::files;

/// The seed's example request, embedded so the check needs no files.
pub(crate) const SEED_REQUEST: &str = include_str!("../../../tests/fixtures/seed_request.json");

/// Environment variable of `--secrets` (docker-compose.yml reads it too).
pub(crate) const SECRETS_DIR_ENV: &str = "TRIAD_SECRETS_DIR";

/// What `triad up --help` adds about its TLS flags.
pub(crate) const AFTER_HELP: &str = "\
Every port binds 127.0.0.1 unless an address flag says otherwise. A non-loopback \
address is refused unless its callers must present a token (--token-file) or a \
client certificate (--tls-client-ca), or --insecure is given.

With TLS on, the services call each other (and the end-to-end check calls them) \
over TLS: trusting --tls-ca, else --tls-client-ca; presenting --tls-client-cert, \
else, with mutual TLS, --tls-cert. The certificate must name 127.0.0.1 (or the \
address bound), as `triad certs` writes it.";

/// `addr` (a service's default, `0.0.0.0:<port>`) on loopback: `triad up`'s
/// default for that service.
fn loopback(addr: &str) -> SocketAddr {
    let addr: SocketAddr = addr.parse().expect("a service's default address parses");
    (Ipv4Addr::LOCALHOST, addr.port()).into()
}

#[derive(Args)]
pub(crate) struct UpArgs {
    /// gRPC address of the preprocess service.
    #[arg(long, env = triad_preprocess::config::ADDR_ENV, default_value_t = loopback(triad_preprocess::config::DEFAULT_ADDR))]
    preprocess_addr: SocketAddr,
    /// HTTP address of the preprocess service: its /metrics and /health.
    #[arg(long, env = triad_preprocess::config::HTTP_ADDR_ENV, default_value_t = loopback(triad_preprocess::config::DEFAULT_HTTP_ADDR))]
    preprocess_http_addr: SocketAddr,
    /// gRPC address of the scorer (Scorer and the Open Inference Protocol).
    #[arg(long, env = triad_score::config::env::ADDR, default_value_t = loopback(triad_score::config::DEFAULT_ADDR))]
    score_addr: SocketAddr,
    /// Address of the seed's HTTP contract.
    #[arg(long, env = triad_score::config::env::HTTP_ADDR, default_value_t = loopback(triad_score::config::DEFAULT_HTTP_ADDR))]
    http_addr: SocketAddr,
    /// gRPC address of the monitor.
    #[arg(long, env = triad_monitor::config::ADDR_ENV, default_value_t = loopback(triad_monitor::config::DEFAULT_ADDR))]
    monitor_addr: SocketAddr,
    /// HTTP address of the monitor: its dashboard, /metrics and /health.
    #[arg(long, env = triad_monitor::config::HTTP_ADDR_ENV, default_value_t = loopback(triad_monitor::config::DEFAULT_HTTP_ADDR))]
    monitor_http_addr: SocketAddr,
    /// The monitor's database (SQLite file by default; `postgres://…` for
    /// PostgreSQL).
    #[arg(long, env = triad_monitor::config::DATABASE_URL_ENV, default_value = triad_monitor::config::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Model repository.
    #[arg(long, env = triad_score::config::env::MODELS_DIR, default_value = triad_score::config::DEFAULT_MODELS_DIR)]
    models_dir: PathBuf,
    /// The scorer's outcome spool, where outcomes wait for the monitor.
    /// Default: `spool/score` beside a SQLite database, else
    /// `triad-data/spool/score`.
    #[arg(long, env = triad_score::config::env::SPOOL_DIR)]
    spool_dir: Option<PathBuf>,
    /// The monitor's alert thresholds per model: a `monitor.toml` with
    /// `[defaults]` and `[models.<name>]` tables (docs/monitoring.md,
    /// "Alerts"). Default: the documented thresholds for every model.
    #[arg(long, env = triad_monitor::config::CONFIG_ENV)]
    monitor_config: Option<PathBuf>,
    /// POST the monitor's firing and resolved alerts to this http:// URL,
    /// in Alertmanager's webhook format; their links point at the
    /// monitor's HTTP port.
    #[arg(long, env = triad_monitor::config::ALERT_WEBHOOK_ENV)]
    alert_webhook: Option<String>,
    /// Stop after the end-to-end check instead of serving until ctrl-c.
    #[arg(long)]
    check_only: bool,
    /// A directory `triad certs` wrote: mutual TLS with its certificates on
    /// every port and between the services, and its tokens (one per
    /// service, and the read-only one). Flags given explicitly win.
    #[arg(long, env = SECRETS_DIR_ENV, help_heading = "TLS and tokens")]
    secrets: Option<PathBuf>,
    /// Serve a non-loopback address even though its callers need neither a
    /// token nor a client certificate: anyone who can reach it may score
    /// requests and read and write outcomes.
    #[arg(long, help_heading = "TLS and tokens")]
    insecure: bool,
    #[command(flatten, next_help_heading = "TLS and tokens")]
    security: SecurityArgs,
    #[command(flatten, next_help_heading = "TLS and tokens")]
    upstream_tls: UpstreamTlsArgs,
}

impl UpArgs {
    /// Every address the services bind, in banner order.
    fn addresses(&self) -> [SocketAddr; 6] {
        [
            self.preprocess_addr,
            self.preprocess_http_addr,
            self.score_addr,
            self.http_addr,
            self.monitor_addr,
            self.monitor_http_addr,
        ]
    }
}

/// The TLS and tokens of the three services `triad up` starts, and how
/// they — and its own check, and the printed calls — reach each other.
#[derive(Debug, Clone, Default)]
struct Settings {
    preprocess: Security,
    score: Security,
    monitor: Security,
    /// TLS towards the services; `None`: plain TCP.
    client_tls: Option<ClientTls>,
    /// The token callers of each service send.
    preprocess_token: Option<TokenSource>,
    score_token: Option<TokenSource>,
    monitor_token: Option<TokenSource>,
    /// The read-only token (dashboard, queries, `/metrics`).
    read_token: Option<TokenSource>,
}

impl Settings {
    /// The settings the flags, the environment and `--secrets` describe.
    fn from_args(args: &UpArgs) -> anyhow::Result<Self> {
        let mut server = args.security.clone();
        let mut upstream = args.upstream_tls.clone();
        let mut per_service = None;
        if let Some(dir) = &args.secrets {
            anyhow::ensure!(
                dir.join(files::CA).is_file() && dir.join(files::SERVER_CERT).is_file(),
                "--secrets {}: expected a directory `triad certs` wrote, with {} and {}",
                dir.display(),
                files::CA,
                files::SERVER_CERT
            );
            if server.tls_cert.is_none() {
                server.tls_cert = Some(dir.join(files::SERVER_CERT));
                server.tls_key = Some(dir.join(files::SERVER_KEY));
            }
            server
                .tls_client_ca
                .get_or_insert_with(|| dir.join(files::CA));
            upstream.tls_ca.get_or_insert_with(|| dir.join(files::CA));
            if upstream.tls_client_cert.is_none() {
                upstream.tls_client_cert = Some(dir.join(files::CLIENT_CERT));
                upstream.tls_client_key = Some(dir.join(files::CLIENT_KEY));
            }
            if server.read_token_file.is_none()
                && std::env::var_os(triad_server::security::env::READ_TOKEN).is_none()
            {
                server.read_token_file = existing(dir, files::READ_TOKEN);
            }
            per_service = Some(dir.clone());
        }
        let base = server.security();
        let token = |name: &str| match (&base.auth.token, &per_service) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(dir)) => existing(dir, name).map(TokenSource::File),
            (None, None) => None,
        };
        let (preprocess_token, score_token, monitor_token) = (
            token(files::PREPROCESS_TOKEN),
            token(files::SCORE_TOKEN),
            token(files::MONITOR_TOKEN),
        );
        let service = |token: &Option<TokenSource>| {
            let mut security = base.clone();
            security.auth.token = token.clone();
            security
        };
        let client_tls = base.tls.as_ref().map(|tls| {
            let (cert, key) = match (&upstream.tls_client_cert, &upstream.tls_client_key) {
                (Some(cert), Some(key)) => (Some(cert.clone()), Some(key.clone())),
                // With mutual TLS, the services' own certificate (which
                // carries the client usage too, as `triad certs` writes it).
                _ if tls.client_ca.is_some() => (Some(tls.cert.clone()), Some(tls.key.clone())),
                _ => (None, None),
            };
            ClientTls {
                ca: upstream.tls_ca.clone().or_else(|| tls.client_ca.clone()),
                cert,
                key,
                domain: None,
            }
        });
        Ok(Self {
            preprocess: service(&preprocess_token),
            score: service(&score_token),
            monitor: service(&monitor_token),
            client_tls,
            preprocess_token,
            score_token,
            monitor_token,
            read_token: base.auth.read_token.clone(),
        })
    }

    fn services(&self) -> [&Security; 3] {
        [&self.preprocess, &self.score, &self.monitor]
    }

    /// True when every service's callers must prove who they are: a token
    /// or a client certificate.
    fn callers_authenticated(&self) -> bool {
        self.services().iter().all(|security| {
            security.auth.is_enabled()
                || security
                    .tls
                    .as_ref()
                    .is_some_and(|tls| tls.client_ca.is_some())
        })
    }

    fn is_tls(&self) -> bool {
        self.client_tls.is_some()
    }

    fn scheme(&self) -> &'static str {
        if self.is_tls() { "https" } else { "http" }
    }

    /// The URL a client on this machine calls a service bound to `addr` at.
    fn url(&self, addr: SocketAddr) -> String {
        format!("{}://{}", self.scheme(), reach(addr))
    }

    /// One line saying what protects the ports.
    fn describe(&self) -> String {
        let tls = match &self.score.tls {
            Some(tls) if tls.client_ca.is_some() => "mutual TLS",
            Some(_) => "TLS",
            None => "plain TCP",
        };
        let tokens = if self.score.auth.is_enabled() {
            "bearer tokens"
        } else {
            "no tokens"
        };
        format!("{tls}, {tokens}")
    }
}

/// `dir/name` when that file exists.
fn existing(dir: &Path, name: &str) -> Option<PathBuf> {
    let path = dir.join(name);
    path.is_file().then_some(path)
}

/// Where a client on this machine reaches a socket bound to `addr`: the
/// loopback address of its family for an unspecified ("any") address.
fn reach(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// The exposure rule: `Err` when a non-loopback address would be served to
/// unauthenticated callers without `--insecure`; else what to warn about.
fn exposure(
    addresses: &[SocketAddr],
    settings: &Settings,
    insecure: bool,
) -> anyhow::Result<Option<String>> {
    let exposed: Vec<String> = addresses
        .iter()
        .filter(|addr| !addr.ip().is_loopback())
        .map(ToString::to_string)
        .collect();
    if exposed.is_empty() {
        return Ok(None);
    }
    let exposed = exposed.join(", ");
    if !settings.callers_authenticated() {
        anyhow::ensure!(
            insecure,
            "refusing to serve {exposed} with neither tokens nor client certificates: it is not \
             a loopback address, so anyone who can reach it could score requests and read and \
             write outcomes; run `triad certs --out DIR` and pass --secrets DIR (or --tls-cert, \
             --tls-key, --tls-client-ca, --token-file), or pass --insecure to serve it open anyway"
        );
        return Ok(Some(format!(
            "serving {exposed} with {} and no caller authentication (--insecure): anyone who can \
             reach it can score requests and read and write outcomes",
            settings.describe()
        )));
    }
    if !settings.is_tls() {
        return Ok(Some(format!(
            "tokens travel in clear text on {exposed}: anyone who sees the traffic can replay \
             them; add --tls-cert and --tls-key (or --secrets)"
        )));
    }
    Ok(None)
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.models_dir.is_dir(),
        "no model repository at {}: run from the repository root or pass --models-dir",
        args.models_dir.display()
    );
    let settings = Settings::from_args(&args)?;
    if let Some(warning) = exposure(&args.addresses(), &settings, args.insecure)? {
        tracing::warn!("{warning}");
    }
    // Certificates and tokens first: a bad file fails here, naming it.
    for security in settings.services() {
        security.load(triad_monitor::READ_METHODS)?;
    }
    if let Some(tls) = &settings.client_tls {
        tls.tonic_config()?;
    }
    for token in [
        &settings.preprocess_token,
        &settings.score_token,
        &settings.monitor_token,
    ]
    .into_iter()
    .flatten()
    {
        token.first()?;
    }

    // The scorer stops first, so that its outcome sender flushes into a
    // monitor that is still up; then the back-end services stop.
    let mut front = Shutdown::<anyhow::Error>::new();
    let mut back = Shutdown::<anyhow::Error>::new();

    let listener = triad_server::bind(args.preprocess_addr).await?;
    let preprocess_addr = listener.local_addr()?;
    let preprocess_http = triad_server::bind(args.preprocess_http_addr).await?;
    let preprocess_http_addr = preprocess_http.local_addr()?;
    let preprocess = triad_preprocess::serve(
        listener,
        Some(preprocess_http),
        PreprocessConfig {
            addr: preprocess_addr,
            http_addr: Some(preprocess_http_addr),
            security: settings.preprocess.clone(),
            ..PreprocessConfig::default()
        },
        back.signalled(),
    );
    back.spawn(async { preprocess.await.context("preprocess server failed") });

    let listener = triad_server::bind(args.monitor_addr).await?;
    let monitor_addr = listener.local_addr()?;
    let monitor_http = triad_server::bind(args.monitor_http_addr).await?;
    let monitor_http_addr = monitor_http.local_addr()?;
    let mut monitor_config = triad_monitor::MonitorConfig {
        addr: monitor_addr,
        http_addr: monitor_http_addr,
        models_dir: args.models_dir.clone(),
        security: settings.monitor.clone(),
        ..triad_monitor::MonitorConfig::default()
    };
    monitor_config.store.database_url = args.database_url.clone();
    monitor_config.alerts.config_file = args.monitor_config.clone();
    monitor_config.alerts.webhook =
        args.alert_webhook
            .clone()
            .map(|url| triad_monitor::config::WebhookConfig {
                url,
                external_url: settings.url(monitor_http_addr),
                ..triad_monitor::config::WebhookConfig::default()
            });
    let monitor = triad_monitor::serve(
        listener,
        Some(monitor_http),
        monitor_config,
        back.signalled(),
    );
    back.spawn(async { monitor.await.context("monitor failed") });

    let grpc = triad_server::bind(args.score_addr).await?;
    let http = triad_server::bind(args.http_addr).await?;
    let (score_addr, http_addr) = (grpc.local_addr()?, http.local_addr()?);
    let scorer = triad_score::serve(
        grpc,
        Some(http),
        ScoreConfig {
            addr: score_addr,
            http_addr: Some(http_addr),
            preprocess: settings.url(preprocess_addr),
            models_dir: args.models_dir.clone(),
            monitor: Some(settings.url(monitor_addr)),
            spool: triad_score::config::SpoolConfig {
                dir: Some(
                    args.spool_dir
                        .clone()
                        .unwrap_or_else(|| data_dir(&args.database_url).join("spool/score")),
                ),
                ..triad_score::config::SpoolConfig::default()
            },
            security: settings.score.clone(),
            upstream_tls: settings.client_tls.clone().unwrap_or_default(),
            preprocess_token: settings.preprocess_token.clone(),
            monitor_token: settings.monitor_token.clone(),
            ..ScoreConfig::default()
        },
        front.signalled(),
    );
    front.spawn(async { scorer.await.context("scorer failed") });

    let bound = Bound {
        preprocess: preprocess_addr,
        preprocess_http: preprocess_http_addr,
        score: score_addr,
        http: http_addr,
        monitor: monitor_addr,
        monitor_http: monitor_http_addr,
    };
    let check = check(&bound, &settings).await;
    if check.is_ok() {
        print_banner(&bound, &settings);
        if !args.check_only {
            triad_server::shutdown_signal().await;
        }
    }
    let scorer = front.stop().await;
    back.stop().await?;
    scorer?;
    check
}

/// The addresses the services listen on.
struct Bound {
    preprocess: SocketAddr,
    preprocess_http: SocketAddr,
    score: SocketAddr,
    http: SocketAddr,
    monitor: SocketAddr,
    monitor_http: SocketAddr,
}

/// Waits for every service and scores the seed request through them, the
/// way a caller would: over TLS and with the scorer's token when they are
/// on.
async fn check(bound: &Bound, settings: &Settings) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(5);
    let hint = if settings.is_tls() {
        " (does the certificate name 127.0.0.1, and do --tls-ca or --tls-client-ca hold the CA that signed it?)"
    } else {
        ""
    };
    for (addr, service, name) in [
        (bound.monitor, triad_monitor::SERVICE_NAME, "monitor"),
        (
            bound.preprocess,
            triad_preprocess::SERVICE_NAME,
            "preprocess",
        ),
        (bound.score, triad_score::SERVICE_NAME, "scorer"),
    ] {
        let endpoint = settings.url(addr);
        let healthy = match &settings.client_tls {
            Some(tls) => {
                triad_server::health::healthcheck_tls(&endpoint, service, timeout, tls).await
            }
            None => triad_server::healthcheck(&endpoint, service, timeout).await,
        };
        healthy.with_context(|| format!("{name} did not become healthy{hint}"))?;
    }
    let request: v1::FeaturizeRequest = parse_request(SEED_REQUEST, &JsonLimits::default())?
        .request
        .into();
    let channel = triad_server::client::connect(
        &settings.url(bound.score),
        &triad_server::ClientConfig {
            tls: settings.client_tls.clone().unwrap_or_default(),
            token: settings.score_token.clone(),
            ..triad_server::ClientConfig::default()
        },
    )?;
    let mut scorer = ScorerClient::new(channel);
    let listed = scorer
        .list_models(v1::ListModelsRequest {})
        .await
        .context("listing the scorer's models")?
        .into_inner();
    for model in listed.models.iter().filter(|m| !m.gate.is_empty()) {
        say!(
            "{} gated on {}: it scores only the pairs {} matched",
            model.name,
            model.gate,
            model.gate
        );
    }
    let response = scorer
        .score(v1::ScoreRequest {
            budgets: request.budgets,
            all_user_expense_lineitems: request.all_user_expense_lineitems,
            ..v1::ScoreRequest::default()
        })
        .await
        .context("scoring the seed request")?
        .into_inner();
    say!(
        "seed request: {} pair(s) featurized once (schema {}), scored by {} model(s):",
        response.keys.len(),
        response.schema_hash,
        response.results.len()
    );
    for result in &response.results {
        for (row, (key, (score, matched))) in response
            .keys
            .iter()
            .zip(result.scores.iter().zip(&result.matched))
            .enumerate()
        {
            if !result.scored.is_empty() && !result.scored.get(row).copied().unwrap_or(false) {
                say!(
                    "  {:<24} v{:<3} budget {} x item {}: not scored ({} did not match it)",
                    result.model,
                    result.version,
                    key.budget_id,
                    key.itemization_id,
                    result.gate
                );
                continue;
            }
            say!(
                "  {:<24} v{:<3} budget {} x item {}: score {score:.4} (threshold {}) matched={matched}",
                result.model,
                result.version,
                key.budget_id,
                key.itemization_id,
                result.threshold
            );
        }
    }
    Ok(())
}

/// The data directory of `triad up`: the SQLite database file's directory,
/// or `triad-data` for another database.
fn data_dir(database_url: &str) -> PathBuf {
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .or_else(|| (!database_url.contains("://")).then_some(database_url))
        .map(|rest| rest.split('?').next().unwrap_or_default());
    match path
        .map(std::path::Path::new)
        .and_then(std::path::Path::parent)
    {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("triad-data"),
    }
}

fn print_banner(bound: &Bound, settings: &Settings) {
    say!();
    say!("triad is up (ctrl-c to stop)");
    say!("  preprocess  grpc  {}", bound.preprocess);
    say!(
        "  preprocess  http  {}    (GET /metrics)",
        bound.preprocess_http
    );
    say!(
        "  score       grpc  {}   (triad.v1.Scorer, inference.GRPCInferenceService)",
        bound.score
    );
    say!(
        "  score       http  {}    (POST /budget_expense_matcher/, GET /metrics)",
        bound.http
    );
    say!(
        "  monitor     grpc  {}   (triad.v1.Monitor; every outcome is stored)",
        bound.monitor
    );
    say!(
        "  monitor     http  {}    (dashboard, GET /metrics)",
        bound.monitor_http
    );
    say!("security: {} on every port", settings.describe());
    say!();
    let calls = Calls(settings);
    say!("dashboard: {}/", settings.url(bound.monitor_http));
    if settings.read_token.is_some() {
        say!(
            "  (it asks for the read token: curl -s {}{}{}/)",
            calls.curl_tls(),
            calls.bearer(settings.read_token.as_ref()),
            settings.url(bound.monitor_http)
        );
    }
    say!();
    say!("try:");
    say!(
        "  curl -s {}{}-d @tests/fixtures/seed_request.json {}/budget_expense_matcher/",
        calls.curl_tls(),
        calls.bearer(settings.score_token.as_ref()),
        settings.url(bound.http)
    );
    say!(
        "  grpcurl {}{}-d @ {} triad.v1.Scorer/Score < tests/fixtures/seed_request.json",
        calls.grpcurl_tls(),
        calls.bearer(settings.score_token.as_ref()),
        reach(bound.score)
    );
    say!(
        "  grpcurl {}{}-d @ {} triad.v1.Preprocess/Featurize < tests/fixtures/seed_request.json",
        calls.grpcurl_tls(),
        calls.bearer(settings.preprocess_token.as_ref()),
        reach(bound.preprocess)
    );
}

/// The flags of the printed calls: whom curl and grpcurl trust, what they
/// present, which token they send.
struct Calls<'a>(&'a Settings);

impl Calls<'_> {
    fn curl_tls(&self) -> String {
        let Some(tls) = &self.0.client_tls else {
            return String::new();
        };
        let mut flags = String::new();
        if let Some(ca) = &tls.ca {
            flags += &format!("--cacert {} ", shell_word(ca));
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            flags += &format!("--cert {} --key {} ", shell_word(cert), shell_word(key));
        }
        flags
    }

    fn grpcurl_tls(&self) -> String {
        let Some(tls) = &self.0.client_tls else {
            return "-plaintext ".to_owned();
        };
        let mut flags = String::new();
        if let Some(ca) = &tls.ca {
            flags += &format!("-cacert {} ", shell_word(ca));
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            flags += &format!("-cert {} -key {} ", shell_word(cert), shell_word(key));
        }
        flags
    }

    /// The `authorization` header, reading the token where it is kept
    /// (never printing it).
    fn bearer(&self, token: Option<&TokenSource>) -> String {
        match token {
            Some(TokenSource::File(path)) => {
                format!("-H \"authorization: Bearer $(cat {})\" ", shell_word(path))
            }
            Some(TokenSource::Env(var)) => format!("-H \"authorization: Bearer ${var}\" "),
            Some(TokenSource::Value(_)) => "-H \"authorization: Bearer <token>\" ".to_owned(),
            None => String::new(),
        }
    }
}

/// `path` as one shell word: as is when it needs no quoting, else in
/// single quotes.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        up: UpArgs,
    }

    fn parse(args: &[&str]) -> UpArgs {
        Cli::try_parse_from(std::iter::once("triad").chain(args.iter().copied()))
            .unwrap()
            .up
    }

    #[test]
    fn every_port_binds_loopback_by_default() {
        let args = parse(&[]);
        assert_eq!(
            args.addresses().map(|addr| addr.to_string()),
            [
                "127.0.0.1:50051",
                "127.0.0.1:8082",
                "127.0.0.1:50052",
                "127.0.0.1:8080",
                "127.0.0.1:50053",
                "127.0.0.1:8081"
            ]
        );
        let settings = Settings::from_args(&args).unwrap();
        assert!(!settings.is_tls() && !settings.callers_authenticated());
        assert_eq!(exposure(&args.addresses(), &settings, false).unwrap(), None);
    }

    #[test]
    fn an_exposed_address_needs_tokens_or_client_certificates_or_insecure() {
        let exposed = parse(&["--http-addr", "0.0.0.0:8080"]);
        let plain = Settings::from_args(&exposed).unwrap();
        let refused = exposure(&exposed.addresses(), &plain, false)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("refusing to serve 0.0.0.0:8080") && refused.contains("--insecure"),
            "{refused}"
        );
        let warning = exposure(&exposed.addresses(), &plain, true)
            .unwrap()
            .unwrap();
        assert!(warning.contains("--insecure"), "{warning}");

        let tokens_only = parse(&["--http-addr", "0.0.0.0:8080", "--token-file", "t"]);
        let settings = Settings::from_args(&tokens_only).unwrap();
        let warning = exposure(&tokens_only.addresses(), &settings, false)
            .unwrap()
            .unwrap();
        assert!(warning.contains("clear text"), "{warning}");

        let mutual = parse(&[
            "--http-addr",
            "0.0.0.0:8080",
            "--tls-cert",
            "s.pem",
            "--tls-key",
            "s.key",
            "--tls-client-ca",
            "ca.pem",
        ]);
        let settings = Settings::from_args(&mutual).unwrap();
        assert_eq!(
            exposure(&mutual.addresses(), &settings, false).unwrap(),
            None
        );
        // TLS alone says nothing about who calls.
        let server_tls = parse(&[
            "--http-addr",
            "0.0.0.0:8080",
            "--tls-cert",
            "s.pem",
            "--tls-key",
            "s.key",
        ]);
        let settings = Settings::from_args(&server_tls).unwrap();
        assert!(exposure(&server_tls.addresses(), &settings, false).is_err());
    }

    #[test]
    fn with_mutual_tls_the_services_call_each_other_with_the_ca_and_a_certificate() {
        let args = parse(&[
            "--tls-cert",
            "s.pem",
            "--tls-key",
            "s.key",
            "--tls-client-ca",
            "ca.pem",
            "--token-file",
            "t",
        ]);
        let settings = Settings::from_args(&args).unwrap();
        let tls = settings.client_tls.clone().unwrap();
        assert_eq!(tls.ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(tls.cert, Some(PathBuf::from("s.pem")));
        assert_eq!(tls.key, Some(PathBuf::from("s.key")));
        assert_eq!(
            settings.url("0.0.0.0:50051".parse().unwrap()),
            "https://127.0.0.1:50051"
        );
        for token in [
            &settings.preprocess_token,
            &settings.score_token,
            &settings.monitor_token,
        ] {
            assert_eq!(token, &Some(TokenSource::File("t".into())));
        }
        assert_eq!(settings.describe(), "mutual TLS, bearer tokens");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word(Path::new("a/b-c.pem")), "a/b-c.pem");
        assert_eq!(shell_word(Path::new("my dir/it's")), r"'my dir/it'\''s'");
    }
}
