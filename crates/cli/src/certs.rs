//! `triad certs --out DIR`: a development set of secrets for mutual TLS
//! and bearer tokens — a fresh certificate authority, one server
//! certificate every service serves (named for `triad up`, the Compose
//! services and the Kubernetes Services), one client certificate for
//! callers and the scorer, and one random token per role. What `triad up
//! --secrets DIR`, `docker-compose.yml` and `deploy/k8s/` read.
//!
//! The authority's private key is not kept: the directory is mounted into
//! every container, and a key there could mint certificates every service
//! trusts. To add a name or renew, run the command again (a new authority,
//! new certificates, new tokens) and restart whatever uses them.
//!
//! For production, issue certificates from your own authority (e.g.
//! cert-manager) with the same usages; `docs/deploy.md` says which.

use std::fs::{OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Datelike as _, Days, Utc};
use clap::Args;
use rand::TryRngCore as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The files `triad certs` writes, by name inside its directory.
pub(crate) mod files {
    /// The authority's certificate: what clients trust and what servers
    /// check client certificates against.
    pub(crate) const CA: &str = "ca.pem";
    /// The certificate every service serves (server and client usages:
    /// a service's `healthcheck` presents it to its own port).
    pub(crate) const SERVER_CERT: &str = "server.pem";
    pub(crate) const SERVER_KEY: &str = "server-key.pem";
    /// The certificate callers present: the `triad` command, curl,
    /// grpcurl, and the scorer towards preprocess and the monitor.
    pub(crate) const CLIENT_CERT: &str = "client.pem";
    pub(crate) const CLIENT_KEY: &str = "client-key.pem";
    /// The scorer's service token: what its callers send.
    pub(crate) const SCORE_TOKEN: &str = "score.token";
    /// The preprocess service's token: what the scorer sends it.
    pub(crate) const PREPROCESS_TOKEN: &str = "preprocess.token";
    /// The monitor's service token: what the scorer (outcomes) and
    /// `triad labels` send; it may write.
    pub(crate) const MONITOR_TOKEN: &str = "monitor.token";
    /// The read-only token of every service: the dashboard, the monitor's
    /// queries, `/metrics`.
    pub(crate) const READ_TOKEN: &str = "read.token";
    /// The token files, in the order they are written.
    pub(crate) const TOKENS: [&str; 4] = [SCORE_TOKEN, PREPROCESS_TOKEN, MONITOR_TOKEN, READ_TOKEN];
}

/// The names the server certificate carries by default: loopback (`triad
/// up`, a container's own `healthcheck`), the services of
/// `docker-compose.yml`, and the Services of `deploy/k8s/` (namespace
/// `triad`), short and fully qualified.
pub(crate) const DEFAULT_NAMES: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "preprocess",
    "monitor",
    "score-matcher",
    "score-oop",
    "triad-preprocess",
    "triad-preprocess.triad",
    "triad-preprocess.triad.svc",
    "triad-preprocess.triad.svc.cluster.local",
    "triad-score",
    "triad-score.triad",
    "triad-score.triad.svc",
    "triad-score.triad.svc.cluster.local",
    "triad-monitor",
    "triad-monitor.triad",
    "triad-monitor.triad.svc",
    "triad-monitor.triad.svc.cluster.local",
];

/// Random bytes in each token (written as twice as many hex digits); the
/// services refuse tokens shorter than 16 bytes.
const TOKEN_BYTES: usize = 32;

#[derive(Args)]
pub(crate) struct CertsArgs {
    /// Directory to write into (created, mode 0700, when missing).
    #[arg(long)]
    out: PathBuf,
    /// Another name (DNS name or IP address) the server certificate must
    /// carry, besides localhost, 127.0.0.1, ::1 and the Compose and
    /// Kubernetes service names; repeat or separate with commas.
    #[arg(long = "name", value_delimiter = ',')]
    names: Vec<String>,
    /// Days the certificates are valid.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Write no tokens, only certificates.
    #[arg(long)]
    no_tokens: bool,
    /// Let the files' group read the private keys and tokens as well
    /// (mode 0640, directory 0750; default 0600 and 0700): for containers
    /// that read them through a supplementary group, as
    /// docker-compose.yml's `group_add` does.
    #[arg(long)]
    group_readable: bool,
    /// Replace files already in the directory (default: refuse).
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(args: &CertsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=3650).contains(&args.days),
        "--days must be 1 to 3650, got {}",
        args.days
    );
    let secret_mode = if args.group_readable { 0o640 } else { 0o600 };
    let mut names: Vec<String> = DEFAULT_NAMES
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    for name in &args.names {
        let name = name.trim();
        if !name.is_empty() && !names.iter().any(|known| known == name) {
            check_name(name)?;
            names.push(name.to_owned());
        }
    }
    let set = generate(&names, args.days)?;

    let mut written = vec![
        (files::CA, set.ca, 0o644),
        (files::SERVER_CERT, set.server.cert, 0o644),
        (files::SERVER_KEY, set.server.key, secret_mode),
        (files::CLIENT_CERT, set.client.cert, 0o644),
        (files::CLIENT_KEY, set.client.key, secret_mode),
    ];
    if !args.no_tokens {
        for name in files::TOKENS {
            written.push((name, format!("{}\n", token()), secret_mode));
        }
    }

    if !args.out.exists() {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        let mode = if args.group_readable { 0o750 } else { 0o700 };
        std::fs::set_permissions(&args.out, Permissions::from_mode(mode))
            .with_context(|| format!("cannot restrict {}", args.out.display()))?;
    }
    if !args.force
        && let Some((name, ..)) = written
            .iter()
            .find(|(name, ..)| args.out.join(name).exists())
    {
        anyhow::bail!(
            "{} already exists: pass --force to replace every file of the set, or choose another --out",
            args.out.join(name).display()
        );
    }
    for (name, contents, mode) in &written {
        write(&args.out.join(name), contents, *mode)?;
    }

    println!(
        "wrote to {}: {}",
        args.out.display(),
        written
            .iter()
            .map(|(name, ..)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "server certificate names: {}; valid {} days",
        names.join(", "),
        args.days
    );
    println!(
        "use it: triad up --secrets {}   (mutual TLS and tokens on every port)",
        args.out.display()
    );
    Ok(())
}

/// Refuses what no TLS client could match: a name must be a DNS name or
/// an IP address.
fn check_name(name: &str) -> anyhow::Result<()> {
    rustls::pki_types::ServerName::try_from(name)
        .map(drop)
        .map_err(|_| {
            anyhow::anyhow!(
                "--name {}: expected a DNS name or an IP address",
                triad_server::quote(name)
            )
        })
}

/// A certificate and its private key, PEM.
pub(crate) struct Pem {
    pub cert: String,
    pub key: String,
}

/// A development authority's certificate and the two certificates it
/// signed.
pub(crate) struct DevSet {
    /// The authority's certificate (its key is dropped).
    pub ca: String,
    /// Serves every name in `names`, and may be presented as a client.
    pub server: Pem,
    /// A client certificate.
    pub client: Pem,
}

/// Generates a fresh authority and its server and client certificates,
/// valid from yesterday (clock skew) for `days` days.
pub(crate) fn generate(names: &[String], days: u32) -> anyhow::Result<DevSet> {
    let today = Utc::now().date_naive();
    let not_before = today - Days::new(1);
    let not_after = today + Days::new(u64::from(days));
    let validity = |params: &mut CertificateParams| {
        params.not_before = rcgen::date_time_ymd(
            not_before.year(),
            not_before.month() as u8,
            not_before.day() as u8,
        );
        params.not_after = rcgen::date_time_ymd(
            not_after.year(),
            not_after.month() as u8,
            not_after.day() as u8,
        );
    };

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "triad development CA");
    // Signs end-entity certificates only.
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)
        .context("cannot sign the development CA")?;

    let leaf = |common_name: &str,
                names: &[String],
                usages: Vec<ExtendedKeyUsagePurpose>|
     -> anyhow::Result<Pem> {
        let mut params = CertificateParams::new(names.to_vec())
            .with_context(|| format!("not a valid certificate name in {names:?}"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        // ECDSA keys sign; they never encipher.
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages;
        params.use_authority_key_identifier_extension = true;
        validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params
            .signed_by(&key, &ca)
            .with_context(|| format!("cannot sign the {common_name} certificate"))?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    };
    let server = leaf(
        "triad service",
        names,
        // Client auth too: with mutual TLS, a service's `healthcheck`
        // subcommand presents the service's own certificate.
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    )?;
    let client = leaf(
        "triad client",
        &[],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    )?;
    Ok(DevSet {
        ca: ca.pem(),
        server,
        client,
    })
}

/// A random token: [`TOKEN_BYTES`] bytes from the operating system's
/// generator, as hex.
pub(crate) fn token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator works");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Writes `contents` to `path` with exactly `mode` (whatever the umask),
/// replacing a file already there.
fn write(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_hex() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 2 * TOKEN_BYTES);
        assert!(a.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn certificates_are_pem_with_the_names_asked_for() {
        let names = vec!["localhost".to_owned(), "10.1.2.3".to_owned()];
        let set = generate(&names, 30).unwrap();
        assert!(set.ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(set.server.cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(set.server.key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(set.client.key.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn names_must_be_dns_names_or_addresses() {
        assert!(check_name("triad.example.com").is_ok());
        assert!(check_name("10.1.2.3").is_ok());
        assert!(check_name("fd00::1").is_ok());
        let error = check_name("not a name!").unwrap_err().to_string();
        assert!(
            error.contains("expected a DNS name or an IP address"),
            "{error}"
        );
    }
}
