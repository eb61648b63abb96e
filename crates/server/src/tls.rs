//! TLS and mutual TLS (rustls on *ring*) for every port a Triad service
//! opens, gRPC and HTTP alike, from one [`TlsConfig`]: a PEM certificate
//! chain, its PEM private key and, for mutual TLS, the PEM CA whose
//! certificates clients must present.
//!
//! The server side is a [`TlsAcceptor`]: [`crate::accept`] runs each
//! handshake on its own task, within a deadline and a cap on pending
//! connections per peer, so no idle or slow client holds up the others.
//!
//! **Rotation.** The files are read again every
//! [`TlsConfig::reload_interval`]; when they changed and still make a valid
//! configuration, new connections use it (connections already open keep
//! theirs). A bad new file is logged and the previous configuration stays.
//! So a Kubernetes Secret or cert-manager renewal takes effect without a
//! restart.
//!
//! The client side ([`ClientTls`]) turns into tonic's `ClientTlsConfig`;
//! [`local_probe`] is the `healthcheck` subcommand's TLS: it trusts exactly
//! the certificate the server it probes is configured with.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// How a service serves TLS on its ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificate(s) clients must present a certificate signed by
    /// (mutual TLS). `None`: clients are not asked for one.
    pub client_ca: Option<PathBuf>,
    /// How often the three files are read again to pick up a rotated
    /// certificate; zero never reloads. Default 60 s.
    pub reload_interval: Duration,
    /// Longest a TLS handshake alone may take before the connection is
    /// closed. Default 10 s; the server's
    /// [`ServerLimits::handshake_timeout`](crate::ServerLimits) (5 s by
    /// default, handshake and first request together) also applies.
    pub handshake_timeout: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: PathBuf::new(),
            key: PathBuf::new(),
            client_ca: None,
            reload_interval: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl TlsConfig {
    /// TLS with `cert` and `key`, no client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            ..Self::default()
        }
    }

    /// Requires client certificates signed by `client_ca` (mutual TLS).
    pub fn with_client_ca(mut self, client_ca: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(client_ca.into());
        self
    }
}

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        source: io::Error,
    },
    /// The file holds no PEM certificate.
    #[error("{path}: expected PEM certificates, found none")]
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// The file's certificates do not parse.
    #[error("{path}: expected PEM certificates: {reason}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The file holds no usable private key.
    #[error("{path}: expected a PEM private key: {reason}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The client CA's certificates cannot verify clients.
    #[error("client CA {path} is not usable: {reason}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// rustls refused the certificate, key or settings as a whole.
    #[error("TLS settings rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client side (tonic) refused its TLS settings.
    #[error("{0}")]
    Client(String),
}

/// The crypto provider every Triad TLS configuration uses: *ring* (no
/// cmake, links into the static binaries), named explicitly so a second
/// provider pulled in by some dependency never makes the choice ambiguous.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in PEM bytes read from `path`.
fn parse_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadCertificate {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads every PEM certificate in `path`.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    parse_certs(path, &read(path)?)
}

/// Reads the first PEM private key in `path`.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|error| TlsError::BadKey {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

/// Which application protocols a port speaks (ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// gRPC: HTTP/2 only.
    Grpc,
    /// HTTP ports: HTTP/2 or HTTP/1.1.
    Http,
}

impl Alpn {
    fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Alpn::Grpc => vec![b"h2".to_vec()],
            Alpn::Http => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

/// The bytes of the three files, to notice a change.
#[derive(PartialEq, Eq)]
struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Files {
    fn read(config: &TlsConfig) -> Result<Self, TlsError> {
        Ok(Self {
            cert: read(&config.cert)?,
            key: read(&config.key)?,
            client_ca: config.client_ca.as_deref().map(read).transpose()?,
        })
    }
}

/// Builds the rustls server configuration `files` describe.
fn server_config(
    config: &TlsConfig,
    files: &Files,
    alpn: Alpn,
) -> Result<rustls::ServerConfig, TlsError> {
    let certs = parse_certs(&config.cert, &files.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|error| TlsError::BadKey {
        path: config.key.clone(),
        reason: error.to_string(),
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = match (&config.client_ca, &files.client_ca) {
        (Some(path), Some(pem)) => {
            let mut roots = RootCertStore::empty();
            for cert in parse_certs(path, pem)? {
                roots.add(cert).map_err(|error| TlsError::ClientCa {
                    path: path.clone(),
                    reason: error.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|error| TlsError::ClientCa {
                    path: path.clone(),
                    reason: error.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut server = builder.with_single_cert(certs, key)?;
    server.alpn_protocols = alpn.protocols();
    Ok(server)
}

/// A server's TLS configuration, reloaded from its files while in use.
#[derive(Clone)]
pub struct TlsAcceptor {
    current: Arc<ArcSwap<rustls::ServerConfig>>,
    handshake_timeout: Duration,
    mutual: bool,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("mutual", &self.mutual)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Reads `config`'s files now (failing on a bad one) and, inside a tokio
    /// runtime and with a non-zero reload interval, again every interval
    /// for as long as the acceptor is in use.
    pub fn new(config: &TlsConfig, alpn: Alpn) -> Result<Self, TlsError> {
        let files = Files::read(config)?;
        let current = Arc::new(ArcSwap::from_pointee(server_config(config, &files, alpn)?));
        if !config.reload_interval.is_zero() && tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(reload(
                config.clone(),
                alpn,
                files,
                Arc::downgrade(&current),
            ));
        }
        Ok(Self {
            current,
            handshake_timeout: config.handshake_timeout,
            mutual: config.client_ca.is_some(),
        })
    }

    /// True when clients must present a certificate.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// Performs the server side of a handshake on `stream`, within the
    /// handshake timeout.
    pub async fn accept(&self, stream: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.current.load_full());
        tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
    }
}

/// Reads the files every interval and swaps in a configuration that
/// changed and is valid, until the acceptor is dropped.
async fn reload(
    config: TlsConfig,
    alpn: Alpn,
    mut files: Files,
    current: Weak<ArcSwap<rustls::ServerConfig>>,
) {
    loop {
        tokio::time::sleep(config.reload_interval).await;
        let Some(current) = current.upgrade() else {
            return;
        };
        let fresh = match Files::read(&config) {
            Ok(fresh) => fresh,
            Err(error) => {
                tracing::warn!(%error, "cannot read the TLS files; keeping the loaded certificate");
                continue;
            }
        };
        if fresh == files {
            continue;
        }
        match server_config(&config, &fresh, alpn) {
            Ok(server) => {
                current.store(Arc::new(server));
                files = fresh;
                tracing::info!(cert = %config.cert.display(), "reloaded the TLS certificate");
            }
            Err(error) => {
                tracing::error!(%error, "new TLS files are not usable; keeping the loaded certificate");
            }
        }
    }
}

/// TLS settings of a client: whom it trusts and who it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientTls {
    /// PEM CA certificate(s) the servers' certificates must chain to.
    /// `None`: the public web PKI roots (Mozilla's list).
    pub ca: Option<PathBuf>,
    /// PEM certificate chain presented to servers that require client
    /// certificates (mutual TLS); needs [`ClientTls::key`].
    pub cert: Option<PathBuf>,
    /// PEM private key of [`ClientTls::cert`].
    pub key: Option<PathBuf>,
    /// Name the server's certificate must carry, when it is not the
    /// endpoint's host.
    pub domain: Option<String>,
}

impl ClientTls {
    /// True when any setting is given.
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.domain.is_some()
    }

    /// tonic's client TLS settings, files read now.
    pub fn tonic_config(&self) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
        let mut tls = tonic::transport::ClientTlsConfig::new();
        tls = match &self.ca {
            Some(ca) => tls.ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?)),
            None => tls.with_webpki_roots(),
        };
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                // Parse now so a bad file is reported here, not at the
                // first call.
                load_certs(cert)?;
                load_key(key)?;
                tls = tls.identity(tonic::transport::Identity::from_pem(
                    read(cert)?,
                    read(key)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(TlsError::Client(
                    "a client certificate needs both a certificate and a key file".to_owned(),
                ));
            }
        }
        if let Some(domain) = &self.domain {
            tls = tls.domain_name(domain.clone());
        }
        Ok(tls)
    }
}

/// The TLS of a probe of this process's own server on loopback (the
/// `healthcheck` subcommand): the server's certificate must be exactly
/// the one in `config.cert` (the loopback address is not a name the
/// certificate carries), and when the server requires client certificates
/// the probe presents that same certificate and key (so a service's
/// certificate needs the client-auth usage too when mutual TLS is on).
pub fn local_probe(
    config: &TlsConfig,
) -> Result<(tonic::transport::ClientTlsConfig, Arc<PinnedServerCert>), TlsError> {
    let pinned = load_certs(&config.cert)?
        .into_iter()
        .next()
        .ok_or_else(|| TlsError::NoCertificates {
            path: config.cert.clone(),
        })?;
    let mut tls = tonic::transport::ClientTlsConfig::new().domain_name("localhost");
    if config.client_ca.is_some() {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            read(&config.cert)?,
            read(&config.key)?,
        ));
    }
    Ok((
        tls,
        Arc::new(PinnedServerCert {
            cert: pinned,
            provider: provider(),
        }),
    ))
}

/// Accepts exactly one server certificate (byte for byte), whatever name
/// it carries; signatures are still verified.
#[derive(Debug)]
pub struct PinnedServerCert {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
