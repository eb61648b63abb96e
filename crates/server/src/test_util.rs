//! Test support (feature `test-util`): a throw-away certificate authority
//! with server and client certificates in PEM files ([`TestPki`]), and a
//! minimal HTTPS/1.1 client ([`https_request`]) for tests of TLS ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::tls::{ClientTls, TlsConfig};

/// A certificate authority and certificates signed by it, in PEM files
/// under a temporary directory removed on drop: a server certificate for
/// `localhost` and `127.0.0.1`, a client certificate, and a client
/// certificate of an unrelated authority (which a mutual-TLS server must
/// refuse).
pub struct TestPki {
    dir: PathBuf,
    /// The authority's certificate.
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate the authority did not sign.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl TestPki {
    /// Generates everything (a few milliseconds).
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "triad-pki-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the test PKI directory");
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write a test PEM file");
            path
        };

        let ca = authority("triad test ca");
        let stranger_ca = authority("someone else's ca");
        let server = leaf(
            &ca,
            "triad-test-server",
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = leaf(
            &ca,
            "triad-test-client",
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let stranger = leaf(
            &stranger_ca,
            "stranger",
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            ca: write("ca.pem", ca.pem()),
            server_cert: write("server.pem", server.0),
            server_key: write("server.key", server.1),
            client_cert: write("client.pem", client.0),
            client_key: write("client.key", client.1),
            stranger_cert: write("stranger.pem", stranger.0),
            stranger_key: write("stranger.key", stranger.1),
            dir,
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Server TLS without client certificates.
    pub fn server_tls(&self) -> TlsConfig {
        TlsConfig::new(&self.server_cert, &self.server_key)
    }

    /// Server TLS requiring a client certificate signed by the authority.
    pub fn mutual_tls(&self) -> TlsConfig {
        self.server_tls().with_client_ca(&self.ca)
    }

    /// A client trusting the authority, presenting the client certificate.
    pub fn client_tls(&self) -> ClientTls {
        ClientTls {
            ca: Some(self.ca.clone()),
            cert: Some(self.client_cert.clone()),
            key: Some(self.client_key.clone()),
            domain: None,
        }
    }

    /// A client trusting the authority, presenting no certificate.
    pub fn anonymous_client_tls(&self) -> ClientTls {
        ClientTls {
            ca: Some(self.ca.clone()),
            ..ClientTls::default()
        }
    }

    /// A client trusting the authority, presenting a certificate of another
    /// authority.
    pub fn stranger_client_tls(&self) -> ClientTls {
        ClientTls {
            ca: Some(self.ca.clone()),
            cert: Some(self.stranger_cert.clone()),
            key: Some(self.stranger_key.clone()),
            domain: None,
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("valid CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("generate a CA key"))
        .expect("self-sign the CA")
}

/// (certificate PEM, key PEM) of a leaf signed by `issuer`.
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params = CertificateParams::new(names).expect("valid leaf parameters");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    if params.extended_key_usages[0] == ExtendedKeyUsagePurpose::ServerAuth {
        // A service's certificate is its client identity too (the
        // healthcheck subcommand presents it to its own server).
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    let key = KeyPair::generate().expect("generate a leaf key");
    let cert = params.signed_by(&key, issuer).expect("sign the leaf");
    (cert.pem(), key.serialize_pem())
}

/// One HTTP/1.1 response: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

/// Sends one HTTP/1.1 request over TLS to `addr` (server name
/// `localhost`), trusting and presenting what `tls` names, and reads the
/// whole response (`connection: close`).
pub async fn https_request(
    addr: SocketAddr,
    tls: &ClientTls,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> std::io::Result<HttpResponse> {
    let config = rustls_client(tls).map_err(std::io::Error::other)?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let authorization = token
        .map(|token| format!("authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{authorization}\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    // A server may close without a TLS close_notify; what was read counts.
    if let Err(error) = stream.read_to_end(&mut raw).await
        && raw.is_empty()
    {
        return Err(error);
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {head:?}")))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok(HttpResponse {
        status,
        headers: head.to_owned(),
        body: if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    })
}

/// The payload of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn rustls_client(tls: &ClientTls) -> Result<rustls::ClientConfig, crate::tls::TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &tls.ca {
        for cert in crate::tls::load_certs(ca)? {
            roots.add(cert)?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(crate::tls::load_certs(cert)?, crate::tls::load_key(key)?)?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
