//! Bearer tokens on every gRPC and HTTP port: a request carries
//! `authorization: Bearer <token>`; a missing or unknown token is answered
//! `UNAUTHENTICATED` (gRPC) or 401 (HTTP), a read-only token on a call that
//! writes `PERMISSION_DENIED` or 403.
//!
//! Two kinds of token ([`AuthConfig`]): the service token allows every
//! call; the read-only token allows only the calls a service declares as
//! reads (its read RPCs, `GET`/`HEAD` on HTTP — `/metrics` included —,
//! server reflection). Health checks are always open, and so are the HTTP
//! paths in [`AuthConfig::open_paths`] (only `/health` by default). With no
//! token configured a service is open, as before tokens existed.
//!
//! Tokens come from a file or an environment variable ([`TokenSource`]),
//! never from a command-line literal (it would show in `ps`). A file holds
//! one token a line — the whole line, whitespace trimmed, commas and all;
//! blank lines and `#` comments are skipped — and every token in it is
//! accepted: that is how a token is rotated without refusing anyone (add
//! the new one, move the callers, drop the old one). An environment
//! variable holds exactly one token. A token shorter than
//! [`MIN_TOKEN_BYTES`] refuses start-up. Tokens are compared as SHA-256
//! digests in constant time.

use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

/// A token's value: never printed, compared in constant time.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Keeps `value` as a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.digest().ct_eq(&other.digest()).into()
    }
}

impl Eq for Secret {}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// Shortest token accepted, in bytes: a token must not be guessable (use
/// e.g. `openssl rand -hex 32`).
pub const MIN_TOKEN_BYTES: usize = 16;

/// Where a token is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// A file of tokens, one a line, each line whole (trimmed; commas are
    /// part of the token); blank lines and `#` comments skipped. A caller
    /// sends the first.
    File(PathBuf),
    /// An environment variable holding exactly one token (trimmed).
    Env(String),
    /// A value given in code (tests, embedding).
    Value(Secret),
}

/// A token that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token file cannot be read.
    #[error("cannot read the token file {path}: {source}")]
    Read {
        /// The token file.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// The environment variable (named) is unset or not UTF-8.
    #[error("environment variable {0} is not set or not UTF-8: expected a token")]
    Env(String),
    /// The source (named) holds no token.
    #[error("{0} holds no token: expected one token a line")]
    Empty(String),
    /// A token is shorter than [`MIN_TOKEN_BYTES`].
    #[error(
        "{source_name} holds a token of {len} bytes on line {line}: expected at least {min} bytes (e.g. `openssl rand -hex 32`)"
    )]
    TooShort {
        /// The file or environment variable holding it.
        source_name: String,
        /// Its line, from 1.
        line: usize,
        /// Its length, in bytes.
        len: usize,
        /// The least length accepted, in bytes.
        min: usize,
    },
}

impl TokenSource {
    /// Every token of the source with the line it is on, and the source's
    /// name for messages.
    fn entries(&self) -> Result<(String, Vec<(usize, Secret)>), AuthError> {
        let (lines, name): (Vec<(usize, String)>, String) = match self {
            TokenSource::Value(secret) => {
                return Ok(("a configured token".to_owned(), vec![(1, secret.clone())]));
            }
            TokenSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
                    path: path.clone(),
                    source,
                })?;
                let lines = text
                    .lines()
                    .enumerate()
                    .map(|(i, line)| (i + 1, line.trim().to_owned()))
                    .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
                    .collect();
                (lines, path.display().to_string())
            }
            TokenSource::Env(var) => {
                let value = std::env::var(var).map_err(|_| AuthError::Env(var.clone()))?;
                let value = value.trim();
                let lines = if value.is_empty() {
                    Vec::new()
                } else {
                    vec![(1, value.to_owned())]
                };
                (lines, format!("environment variable {var}"))
            }
        };
        if lines.is_empty() {
            return Err(AuthError::Empty(name));
        }
        let entries = lines
            .into_iter()
            .map(|(line, token)| (line, Secret::new(token)))
            .collect();
        Ok((name, entries))
    }

    /// Every token of the source, in order; at least one.
    pub fn load(&self) -> Result<Vec<Secret>, AuthError> {
        Ok(self
            .entries()?
            .1
            .into_iter()
            .map(|(_, secret)| secret)
            .collect())
    }

    /// What a server accepts: every token of the source, each at least
    /// [`MIN_TOKEN_BYTES`] long (a shorter one is an error naming its line,
    /// never its value).
    pub fn load_accepted(&self) -> Result<Vec<Secret>, AuthError> {
        let (name, entries) = self.entries()?;
        entries
            .into_iter()
            .map(|(line, secret)| {
                check_length(&name, line, secret.expose())?;
                Ok(secret)
            })
            .collect()
    }

    /// The token a client sends: the first of the source.
    pub fn first(&self) -> Result<Secret, AuthError> {
        Ok(self.load()?.remove(0))
    }
}

/// Refuses a token shorter than [`MIN_TOKEN_BYTES`] (without printing it).
fn check_length(source_name: &str, line: usize, token: &str) -> Result<(), AuthError> {
    if token.len() < MIN_TOKEN_BYTES {
        return Err(AuthError::TooShort {
            source_name: source_name.to_owned(),
            line,
            len: token.len(),
            min: MIN_TOKEN_BYTES,
        });
    }
    Ok(())
}

/// Which tokens a server accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Tokens allowed every call. `None` (and no read token): no token is
    /// asked for.
    pub token: Option<TokenSource>,
    /// Tokens allowed only the calls the service declares as reads.
    pub read_token: Option<TokenSource>,
    /// HTTP paths open without a token. Default only `/health`:
    /// `/metrics` needs the read token (Prometheus sends it with its
    /// `authorization` scrape setting, docs/operations.md).
    pub open_paths: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token: None,
            read_token: None,
            open_paths: vec!["/health".to_owned()],
        }
    }
}

impl AuthConfig {
    /// True when any token is configured.
    pub fn is_enabled(&self) -> bool {
        self.token.is_some() || self.read_token.is_some()
    }
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing (health checks, open paths).
    Open,
    /// The read-only token or the service token.
    Read,
    /// The service token.
    Write,
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token, or not one this server knows.
    Unauthenticated,
    /// A read-only token on a call that writes.
    PermissionDenied,
}

/// gRPC paths never asking for a token.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";
/// gRPC paths a read-only token may call on every service.
const REFLECTION_PREFIX: &str = "/grpc.reflection.";

/// A server's loaded tokens and rules.
#[derive(Clone)]
pub struct Authorizer {
    full: Arc<[[u8; 32]]>,
    read: Arc<[[u8; 32]]>,
    read_methods: Arc<[String]>,
    open_paths: Arc<[String]>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("tokens", &self.full.len())
            .field("read_tokens", &self.read.len())
            .field("read_methods", &self.read_methods)
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// Reads `config`'s tokens; `None` when it names none (everything is
    /// open). `read_methods` are the gRPC paths (`/pkg.Service/Method`) a
    /// read-only token may call.
    pub fn new(config: &AuthConfig, read_methods: &[&str]) -> Result<Option<Self>, AuthError> {
        if !config.is_enabled() {
            return Ok(None);
        }
        let digests = |source: &Option<TokenSource>| -> Result<Arc<[[u8; 32]]>, AuthError> {
            Ok(match source {
                Some(source) => source.load_accepted()?.iter().map(Secret::digest).collect(),
                None => Arc::from([]),
            })
        };
        let full = digests(&config.token)?;
        if full.is_empty() {
            tracing::warn!(
                "only a read-only token is configured: every call that writes is refused"
            );
        }
        Ok(Some(Self {
            full,
            read: digests(&config.read_token)?,
            read_methods: read_methods.iter().map(|m| (*m).to_owned()).collect(),
            open_paths: config.open_paths.iter().cloned().collect(),
        }))
    }

    /// What a gRPC call to `path` needs.
    pub fn grpc_access(&self, path: &str) -> Access {
        if path.starts_with(HEALTH_PREFIX) {
            Access::Open
        } else if path.starts_with(REFLECTION_PREFIX) || self.read_methods.iter().any(|m| m == path)
        {
            Access::Read
        } else {
            Access::Write
        }
    }

    /// What an HTTP request needs: open paths nothing, `GET` and `HEAD` a
    /// read token, anything else the service token.
    pub fn http_access(&self, method: &Method, path: &str) -> Access {
        if self.open_paths.iter().any(|open| open == path) {
            Access::Open
        } else if method == Method::GET || method == Method::HEAD {
            Access::Read
        } else {
            Access::Write
        }
    }

    /// Whether the bearer token in `headers` allows `access`.
    pub fn check(&self, headers: &HeaderMap, access: Access) -> Result<(), Denied> {
        if access == Access::Open {
            return Ok(());
        }
        let Some(token) = bearer(headers) else {
            return Err(Denied::Unauthenticated);
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let matches = |set: &[[u8; 32]]| -> bool {
            set.iter()
                .fold(subtle::Choice::from(0), |found, known| {
                    found | known.ct_eq(&digest)
                })
                .into()
        };
        let (full, read) = (matches(&self.full), matches(&self.read));
        match access {
            _ if full => Ok(()),
            Access::Read if read => Ok(()),
            Access::Write if read => Err(Denied::PermissionDenied),
            _ => Err(Denied::Unauthenticated),
        }
    }
}

/// The token of an `authorization: Bearer <token>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The gRPC answer to a refused call; an unauthenticated one is marked so
/// the metrics count it without its path.
fn grpc_denied<B: Default>(denied: Denied) -> Response<B> {
    let mut response = match denied {
        Denied::Unauthenticated => tonic::Status::unauthenticated(
            "missing or unknown bearer token: expected metadata `authorization: Bearer <token>`",
        ),
        Denied::PermissionDenied => {
            tonic::Status::permission_denied("this token may only read: the call writes")
        }
    }
    .into_http();
    if denied == Denied::Unauthenticated {
        response
            .extensions_mut()
            .insert(triad_telemetry::metrics::Unauthenticated);
    }
    response
}

/// Checks tokens on gRPC calls; a server without tokens passes every call
/// through.
#[derive(Debug, Clone, Default)]
pub struct GrpcAuthLayer {
    authorizer: Option<Authorizer>,
}

impl GrpcAuthLayer {
    /// Checks calls against `authorizer`; `None` lets every call through.
    pub fn new(authorizer: Option<Authorizer>) -> Self {
        Self { authorizer }
    }
}

impl<S> Layer<S> for GrpcAuthLayer {
    type Service = GrpcAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcAuth {
            inner,
            authorizer: self.authorizer.clone(),
        }
    }
}

/// The service [`GrpcAuthLayer`] wraps.
#[derive(Debug, Clone)]
pub struct GrpcAuth<S> {
    inner: S,
    authorizer: Option<Authorizer>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<ResBody>, S::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if let Some(authorizer) = &self.authorizer {
            let access = authorizer.grpc_access(request.uri().path());
            if let Err(denied) = authorizer.check(request.headers(), access) {
                tracing::debug!(path = %crate::quote(request.uri().path()), ?denied, "call refused");
                return Box::pin(std::future::ready(Ok(grpc_denied(denied))));
            }
        }
        Box::pin(self.inner.call(request))
    }
}

/// Adds token checks to an HTTP router (no-op without an authorizer).
pub fn http_layer(router: axum::Router, authorizer: Option<Authorizer>) -> axum::Router {
    match authorizer {
        Some(authorizer) => {
            router.layer(axum::middleware::from_fn_with_state(authorizer, http_auth))
        }
        None => router,
    }
}

async fn http_auth(
    axum::extract::State(authorizer): axum::extract::State<Authorizer>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let access = authorizer.http_access(request.method(), request.uri().path());
    match authorizer.check(request.headers(), access) {
        Ok(()) => next.run(request).await,
        Err(denied) => {
            let (status, message) = match denied {
                Denied::Unauthenticated => (
                    StatusCode::UNAUTHORIZED,
                    "missing or unknown bearer token: expected `authorization: Bearer <token>`\n",
                ),
                Denied::PermissionDenied => (
                    StatusCode::FORBIDDEN,
                    "this token may only read: the request writes\n",
                ),
            };
            let mut response = axum::response::IntoResponse::into_response((status, message));
            if denied == Denied::Unauthenticated {
                response.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer"),
                );
            }
            response
        }
    }
}

/// The `authorization` header value for `token`, marked sensitive so no
/// layer logs it.
pub fn bearer_header(token: &Secret) -> Option<http::HeaderValue> {
    let mut value = http::HeaderValue::from_str(&format!("Bearer {}", token.expose())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorizer() -> Authorizer {
        Authorizer::new(
            &AuthConfig {
                token: Some(TokenSource::Value(Secret::new("write-token-0123456789"))),
                read_token: Some(TokenSource::Value(Secret::new("read-token-0123456789"))),
                ..AuthConfig::default()
            },
            &["/triad.v1.Monitor/QueryMetrics"],
        )
        .unwrap()
        .expect("tokens are configured")
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn tokens_are_checked_by_kind_of_call() {
        let auth = authorizer();
        let write = auth.grpc_access("/triad.v1.Monitor/RecordLabels");
        let read = auth.grpc_access("/triad.v1.Monitor/QueryMetrics");
        assert_eq!(write, Access::Write);
        assert_eq!(read, Access::Read);
        assert_eq!(
            auth.grpc_access("/grpc.health.v1.Health/Check"),
            Access::Open
        );

        assert_eq!(
            auth.check(&headers("Bearer write-token-0123456789"), write),
            Ok(())
        );
        assert_eq!(
            auth.check(&headers("bearer write-token-0123456789"), read),
            Ok(())
        );
        assert_eq!(
            auth.check(&headers("Bearer read-token-0123456789"), read),
            Ok(())
        );
        assert_eq!(
            auth.check(&headers("Bearer read-token-0123456789"), write),
            Err(Denied::PermissionDenied)
        );
        assert_eq!(
            auth.check(&headers("Bearer wrong"), read),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            auth.check(&headers("Basic write-token-0123456789"), write),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            auth.check(&HeaderMap::new(), read),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(auth.check(&HeaderMap::new(), Access::Open), Ok(()));
    }

    #[test]
    fn http_reads_are_gets_and_open_paths_need_nothing() {
        let auth = authorizer();
        assert_eq!(auth.http_access(&Method::GET, "/health"), Access::Open);
        assert_eq!(auth.http_access(&Method::GET, "/metrics"), Access::Read);
        assert_eq!(auth.http_access(&Method::GET, "/"), Access::Read);
        assert_eq!(
            auth.http_access(&Method::POST, "/budget_expense_matcher/"),
            Access::Write
        );
    }

    #[test]
    fn token_files_hold_one_token_a_line_and_secrets_never_print() {
        let dir = std::env::temp_dir().join(format!("triad-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        std::fs::write(
            &path,
            "# rotated 2024-05\nnew-token-0123456789\n\n  old-token-0123456789 \n",
        )
        .unwrap();
        let tokens = TokenSource::File(path.clone()).load().unwrap();
        assert_eq!(
            tokens,
            vec![
                Secret::new("new-token-0123456789"),
                Secret::new("old-token-0123456789")
            ]
        );
        assert_eq!(format!("{:?}", tokens[0]), "[redacted]");
        std::fs::write(&path, "\n# nothing\n").unwrap();
        assert!(matches!(
            TokenSource::File(path).load(),
            Err(AuthError::Empty(_))
        ));
        assert!(matches!(
            TokenSource::Env("TRIAD_TEST_NO_SUCH_TOKEN_VARIABLE".into()).load(),
            Err(AuthError::Env(_))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_token_line_is_one_token_commas_included_and_short_tokens_refuse_start_up() {
        let dir = std::env::temp_dir().join(format!("triad-auth-commas-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        let token = "Xk9,q-0123456789abcdef";
        std::fs::write(&path, format!("{token}\n")).unwrap();
        let tokens = TokenSource::File(path.clone()).load().unwrap();
        assert_eq!(tokens, vec![Secret::new(token)], "one token, not split");
        let auth = Authorizer::new(
            &AuthConfig {
                token: Some(TokenSource::File(path.clone())),
                ..AuthConfig::default()
            },
            &[],
        )
        .unwrap()
        .unwrap();
        let write = Access::Write;
        assert_eq!(
            auth.check(&headers(&format!("Bearer {token}")), write),
            Ok(())
        );
        for part in ["Bearer Xk9", "Bearer q-0123456789abcdef"] {
            assert_eq!(
                auth.check(&headers(part), write),
                Err(Denied::Unauthenticated),
                "{part}"
            );
        }

        std::fs::write(&path, "# comment\nlong-enough-token-0001\nk\n").unwrap();
        let error = TokenSource::File(path.clone()).load_accepted().unwrap_err();
        assert!(
            matches!(
                error,
                AuthError::TooShort {
                    line: 3,
                    len: 1,
                    ..
                }
            ),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("line 3") && message.contains("at least 16 bytes"),
            "{message}"
        );
        assert!(
            !message.contains("long-enough"),
            "never prints a token: {message}"
        );
        let short = AuthConfig {
            token: Some(TokenSource::Value(Secret::new("short"))),
            ..AuthConfig::default()
        };
        assert!(matches!(
            Authorizer::new(&short, &[]),
            Err(AuthError::TooShort { .. })
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn no_token_configured_means_open() {
        assert!(
            Authorizer::new(&AuthConfig::default(), &[])
                .unwrap()
                .is_none()
        );
    }
}
