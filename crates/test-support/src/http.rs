//! A minimal HTTP/1.1 client, plain ([`http_request`], [`get`], [`post`])
//! and over TLS ([`https_request`]): one request per connection
//! (`connection: close`), the whole response read and parsed, a chunked
//! body de-chunked. Enough to call the seed contract, the dashboard and
//! `/metrics` of a server under test without an HTTP client dependency.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use triad_server::tls::{self, ClientTls, TlsError};

/// One HTTP/1.1 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The status line and headers, as sent.
    pub headers: String,
    /// The body, de-chunked if it was sent chunked.
    pub body: String,
}

/// `GET path` on `addr`: the status code and body. Panics if the server
/// does not answer with a well-formed response.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = http_request(addr, "GET", path, &[], "")
        .await
        .unwrap_or_else(|error| panic!("GET {path} on {addr}: {error}"));
    (response.status, response.body)
}

/// `POST path` on `addr` with a JSON `body`: the status code and body.
/// Panics if the server does not answer with a well-formed response.
pub async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let response = http_request(addr, "POST", path, &[], body)
        .await
        .unwrap_or_else(|error| panic!("POST {path} on {addr}: {error}"));
    (response.status, response.body)
}

/// Sends one HTTP/1.1 request with a JSON `body` and the extra `headers`
/// to `addr` over plain TCP, and reads the whole response.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> io::Result<HttpResponse> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = request_text(&addr.to_string(), method, path, headers, body);
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse_response(raw)
}

/// Sends one HTTP/1.1 request with a JSON `body` over TLS to `addr` (server
/// name `localhost`), trusting and presenting what `tls` names, with a
/// bearer `token` if given, and reads the whole response.
pub async fn https_request(
    addr: SocketAddr,
    tls: &ClientTls,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> io::Result<HttpResponse> {
    let config = rustls_client(tls).map_err(io::Error::other)?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let authorization = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|value| ("authorization", value.as_str()))
        .collect();
    let request = request_text("localhost", method, path, &headers, body);
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    // A server may close without a TLS close_notify; what was read counts.
    if let Err(error) = stream.read_to_end(&mut raw).await
        && raw.is_empty()
    {
        return Err(error);
    }
    parse_response(raw)
}

fn request_text(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn parse_response(raw: Vec<u8>) -> io::Result<HttpResponse> {
    let text = String::from_utf8(raw).map_err(|error| {
        io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8: {error}"))
    })?;
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| invalid(format!("not an HTTP response: {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("no status line: {head:?}")))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok(HttpResponse {
        status,
        headers: head.to_owned(),
        body: if chunked {
            dechunk(body).ok_or_else(|| invalid(format!("a broken chunked body: {body:?}")))?
        } else {
            body.to_owned()
        },
    })
}

/// The payload of a chunked body; `None` if the chunks are malformed or
/// the body ends before its last (empty) chunk.
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

fn rustls_client(tls: &ClientTls) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &tls.ca {
        for cert in tls::load_certs(ca)? {
            roots.add(cert)?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(tls::load_certs(cert)?, tls::load_key(key)?)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_is_joined_and_a_truncated_one_refused() {
        assert_eq!(
            dechunk("5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n").as_deref(),
            Some("hello, world")
        );
        assert_eq!(dechunk("5\r\nhel"), None);
        assert_eq!(dechunk("5\r\nhello\r\n"), None);
        assert_eq!(dechunk("zz\r\nhello\r\n0\r\n\r\n"), None);
    }

    #[test]
    fn a_response_gives_its_status_head_and_body() {
        let response =
            parse_response(b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope".to_vec())
                .unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(
            response.headers,
            "HTTP/1.1 404 Not Found\r\ncontent-length: 4"
        );
        assert_eq!(response.body, "nope");
    }
}
