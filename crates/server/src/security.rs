//! One service's security settings ([`Security`]: TLS and tokens, part of
//! each service's typed configuration), the command-line flags that fill
//! them in ([`SecurityArgs`], flattened into every binary so each flag is
//! defined once), and the client-side flags ([`UpstreamTlsArgs`] for a
//! service calling others, [`ClientArgs`] for the `triad` command).
//!
//! Without flags nothing changes: plain TCP and no tokens, as before.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ServerError;
use crate::auth::{AuthConfig, Authorizer, TokenSource};
use crate::tls::{Alpn, ClientTls, TlsAcceptor, TlsConfig};

/// Environment variable names of the shared flags.
pub mod env {
    /// `--tls-cert`.
    pub const TLS_CERT: &str = "TRIAD_TLS_CERT";
    /// `--tls-key`.
    pub const TLS_KEY: &str = "TRIAD_TLS_KEY";
    /// `--tls-client-ca`.
    pub const TLS_CLIENT_CA: &str = "TRIAD_TLS_CLIENT_CA";
    /// `--tls-reload-secs`.
    pub const TLS_RELOAD_SECS: &str = "TRIAD_TLS_RELOAD_SECS";
    /// `--token-file`.
    pub const TOKEN_FILE: &str = "TRIAD_TOKEN_FILE";
    /// The service token itself, when no file is given.
    pub const TOKEN: &str = "TRIAD_TOKEN";
    /// `--read-token-file`.
    pub const READ_TOKEN_FILE: &str = "TRIAD_READ_TOKEN_FILE";
    /// The read-only token itself, when no file is given.
    pub const READ_TOKEN: &str = "TRIAD_READ_TOKEN";
    /// `--tls-ca`.
    pub const TLS_CA: &str = "TRIAD_TLS_CA";
    /// `--tls-client-cert`.
    pub const TLS_CLIENT_CERT: &str = "TRIAD_TLS_CLIENT_CERT";
    /// `--tls-client-key`.
    pub const TLS_CLIENT_KEY: &str = "TRIAD_TLS_CLIENT_KEY";
    /// The `triad` command's token, when no `--token-file` is given.
    pub const CLIENT_TOKEN: &str = "TRIAD_CLIENT_TOKEN";
}

/// A service's TLS and token settings, for every port it serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Security {
    /// TLS on every port (`None`: plain TCP).
    pub tls: Option<TlsConfig>,
    /// Bearer tokens (none configured: every call is open).
    pub auth: AuthConfig,
}

impl Security {
    /// Reads the certificates and tokens now, so a bad file fails start-up
    /// with a message naming it. `read_methods` are the gRPC paths a
    /// read-only token may call.
    pub fn load(&self, read_methods: &[&str]) -> Result<Secured, ServerError> {
        let (grpc_tls, http_tls) = match &self.tls {
            Some(tls) => (
                Some(TlsAcceptor::new(tls, Alpn::Grpc)?),
                Some(TlsAcceptor::new(tls, Alpn::Http)?),
            ),
            None => (None, None),
        };
        Ok(Secured {
            grpc_tls,
            http_tls,
            authorizer: Authorizer::new(&self.auth, read_methods)?,
        })
    }
}

/// [`Security`] loaded and ready: what [`crate::serve_secured`] and
/// [`crate::serve_http_secured`] take. The default is plain and open.
#[derive(Debug, Clone, Default)]
pub struct Secured {
    pub(crate) grpc_tls: Option<TlsAcceptor>,
    pub(crate) http_tls: Option<TlsAcceptor>,
    pub(crate) authorizer: Option<Authorizer>,
}

impl Secured {
    /// True when the ports speak TLS.
    pub fn is_tls(&self) -> bool {
        self.grpc_tls.is_some()
    }

    /// True when calls need a token.
    pub fn is_authenticated(&self) -> bool {
        self.authorizer.is_some()
    }
}

/// The server-side security flags every binary shares.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SecurityArgs {
    /// PEM certificate chain served on every port (gRPC and HTTP); with
    /// --tls-key, turns TLS on.
    #[arg(long, env = env::TLS_CERT, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = env::TLS_KEY, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): clients must present a certificate it signed
    /// (mutual TLS).
    #[arg(long, env = env::TLS_CLIENT_CA, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// How often the TLS files are read again to pick up a rotated
    /// certificate, in seconds (0: never).
    #[arg(long, env = env::TLS_RELOAD_SECS, default_value_t = 60)]
    pub tls_reload_secs: u64,
    /// File of bearer tokens (one a line) allowed every call; or set
    /// TRIAD_TOKEN. Without either, no token is asked for.
    #[arg(long, env = env::TOKEN_FILE)]
    pub token_file: Option<PathBuf>,
    /// File of read-only bearer tokens (one a line): allowed only the
    /// calls that read; or set TRIAD_READ_TOKEN.
    #[arg(long, env = env::READ_TOKEN_FILE)]
    pub read_token_file: Option<PathBuf>,
}

impl SecurityArgs {
    /// The settings these flags (and the token variables) describe.
    pub fn security(&self) -> Security {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
                reload_interval: Duration::from_secs(self.tls_reload_secs),
                ..TlsConfig::default()
            }),
            _ => None,
        };
        Security {
            tls,
            auth: AuthConfig {
                token: token_source(&self.token_file, env::TOKEN),
                read_token: token_source(&self.read_token_file, env::READ_TOKEN),
                ..AuthConfig::default()
            },
        }
    }
}

/// A file when given, else the environment variable when set.
pub fn token_source(file: &Option<PathBuf>, var: &str) -> Option<TokenSource> {
    match file {
        Some(path) => Some(TokenSource::File(path.clone())),
        None => std::env::var_os(var).map(|_| TokenSource::Env(var.to_owned())),
    }
}

/// TLS flags of a service that calls other services (the scorer calling
/// preprocess and the monitor over `https://` URLs).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct UpstreamTlsArgs {
    /// PEM CA certificate(s) the called services' certificates must chain
    /// to (default: the public web PKI roots).
    #[arg(long, env = env::TLS_CA)]
    pub tls_ca: Option<PathBuf>,
    /// PEM certificate presented to called services that require client
    /// certificates (mutual TLS).
    #[arg(long, env = env::TLS_CLIENT_CERT, requires = "tls_client_key")]
    pub tls_client_cert: Option<PathBuf>,
    /// PEM private key of --tls-client-cert.
    #[arg(long, env = env::TLS_CLIENT_KEY, requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,
}

impl UpstreamTlsArgs {
    /// The client TLS settings the flags describe.
    pub fn client_tls(&self) -> ClientTls {
        ClientTls {
            ca: self.tls_ca.clone(),
            cert: self.tls_client_cert.clone(),
            key: self.tls_client_key.clone(),
            domain: None,
        }
    }
}

/// Connection flags of the `triad` command's clients (`triad score`,
/// `triad labels`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClientArgs {
    /// PEM CA certificate(s) to trust for an https:// URL (default: the
    /// public web PKI roots).
    #[arg(long, env = env::TLS_CA)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for a server that requires one.
    #[arg(long, env = env::TLS_CLIENT_CERT, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, env = env::TLS_CLIENT_KEY, requires = "cert")]
    pub key: Option<PathBuf>,
    /// File whose first line is the bearer token to send; or set
    /// TRIAD_CLIENT_TOKEN.
    #[arg(long = "token-file", env = "TRIAD_CLIENT_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

impl ClientArgs {
    /// A [`crate::ClientConfig`] with these settings and default timeouts.
    pub fn client_config(&self) -> crate::ClientConfig {
        crate::ClientConfig {
            tls: ClientTls {
                ca: self.ca.clone(),
                cert: self.cert.clone(),
                key: self.key.clone(),
                domain: None,
            },
            token: token_source(&self.token_file, env::CLIENT_TOKEN),
            ..crate::ClientConfig::default()
        }
    }
}
