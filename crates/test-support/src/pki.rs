//! A throw-away certificate authority with server and client certificates
//! in PEM files ([`TestPki`]), for tests of TLS and mutual-TLS ports.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use triad_server::tls::{ClientTls, TlsConfig};

/// A certificate authority and certificates signed by it, in PEM files
/// under a temporary directory removed on drop: a server certificate for
/// `localhost` and `127.0.0.1`, a client certificate, and a client
/// certificate of an unrelated authority (which a mutual-TLS server must
/// refuse).
pub struct TestPki {
    dir: PathBuf,
    /// The authority's certificate.
    pub ca: PathBuf,
    /// The server's certificate, for `localhost` and `127.0.0.1`.
    pub server_cert: PathBuf,
    /// The server certificate's private key.
    pub server_key: PathBuf,
    /// A client certificate signed by the authority.
    pub client_cert: PathBuf,
    /// The client certificate's private key.
    pub client_key: PathBuf,
    /// A client certificate the authority did not sign.
    pub stranger_cert: PathBuf,
    /// The stranger certificate's private key.
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
