//! A minimal HTTP/1.1 client over one TCP connection, for `triad bench`
//! and `triad soak`: both need to own the connection itself (keep-alive,
//! one per caller, fresh ones on purpose), which a pooled client hides.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// Largest answer read; a longer one is an error, not an allocation.
const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// One HTTP/1.1 connection: send a request, read its whole answer.
pub(crate) struct HttpConnection {
    stream: BufReader<TcpStream>,
    host: String,
    body: Vec<u8>,
}

impl HttpConnection {
    pub(crate) async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
            host: addr.to_string(),
            body: Vec::new(),
        })
    }

    /// POSTs `body` as JSON and reads the whole answer; its status code.
    pub(crate) async fn post(&mut self, path: &str, body: &[u8]) -> anyhow::Result<u16> {
        self.send("POST", path, &[("content-type", "application/json")], body)
            .await
    }

    /// Sends one request with `headers` (besides `host` and
    /// `content-length`) and reads the whole answer; its status code. The
    /// answer's body is then [`Self::body`].
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<u16> {
        use std::fmt::Write as _;
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.host);
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let _ = write!(head, "content-length: {}\r\n\r\n", body.len());
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        self.read_response().await
    }

    /// The body of the last answer.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    async fn read_response(&mut self) -> anyhow::Result<u16> {
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .context("not an HTTP status line")?;
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                anyhow::bail!("connection closed inside the answer's headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse::<usize>()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        self.body.clear();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).await?;
                let size = line.trim_end().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size, 16).context("not a chunk size")?;
                if size == 0 {
                    line.clear();
                    self.stream.read_line(&mut line).await?;
                    break;
                }
                self.read_body(size).await?;
                let mut crlf = [0; 2];
                self.stream.read_exact(&mut crlf).await?;
            }
        } else if let Some(length) = length {
            self.read_body(length).await?;
        } else if !(100..200).contains(&status) && status != 204 && status != 304 {
            // No length: the body runs to the end of the connection.
            (&mut self.stream)
                .take(MAX_RESPONSE_BYTES as u64)
                .read_to_end(&mut self.body)
                .await?;
        }
        Ok(status)
    }

    async fn read_body(&mut self, length: usize) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.body.len() + length <= MAX_RESPONSE_BYTES,
            "an answer longer than {MAX_RESPONSE_BYTES} bytes"
        );
        let start = self.body.len();
        self.body.resize(start + length, 0);
        self.stream.read_exact(&mut self.body[start..]).await?;
        Ok(())
    }
}
