//! The one way a Triad service opens a gRPC channel to another (scorer →
//! preprocess, scorer → monitor): deadlines, TCP settings, client-side
//! balancing and the client layers every hop needs live here, so each call
//! site only names the endpoint; and the one retry rule for idempotent
//! calls ([`Retry`]).
//!
//! A [`GrpcChannel`] is a boxed, cloneable tower service, so the layers
//! stacked on it (trace propagation, balancing, TLS) never change the
//! generated clients' types.
//!
//! **Balancing.** An endpoint whose host is a name (`http://preprocess:50051`)
//! is resolved again every [`ClientConfig::dns_refresh`], and calls are
//! spread over every address it resolves to (power of two choices, by
//! in-flight requests), one HTTP/2 connection per address. So a scorer uses
//! every preprocess replica behind a DNS name (a Compose service, a
//! Kubernetes headless Service) instead of pinning all its traffic to the
//! one connection it opened first; replicas that appear are used within one
//! refresh, replicas that go away are dropped. An IP-literal endpoint is one
//! connection.
//!
//! Each address is its own lazily-connecting channel, which connects when a
//! call is sent to it and drives that connection to the end on its own
//! task. (tonic's `balance_channel` starts connecting to every replica but
//! only advances the connections while a call is being routed: a handshake
//! left half-done for longer than the server's handshake deadline was closed
//! by the server, and the next call sent to it failed.)
//!
//! **TLS and tokens.** An `https://` endpoint is reached over TLS: the
//! server's certificate must chain to [`ClientConfig::tls`]'s CA (or the
//! public web roots) and name the endpoint's host; a client certificate is
//! presented when one is configured (mutual TLS). A configured
//! [`ClientConfig::token`] is sent as `authorization: Bearer …` on every
//! call.

use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tonic::body::Body;
use tonic::transport::Endpoint;

/// A replica behind a name appearing or going away.
enum Change<K, V> {
    Insert(K, V),
    Remove(K),
}
use tower::retry::budget::{Budget, TpsBudget};
use tower::util::BoxCloneSyncService;

/// Any error a client layer can raise.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failure of a [`GrpcChannel`] call before a status arrives (connection
/// refused, timed out, …). A concrete type rather than a bare [`BoxError`],
/// which keeps generated clients' futures `Send`-checkable. Its source is
/// the wrapped error, so tonic still maps a refused connection to
/// `UNAVAILABLE`.
#[derive(Debug)]
pub struct ChannelError(BoxError);

impl ChannelError {
    /// Wraps any layer's error.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }
}

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A cloneable gRPC channel with Triad's client layers applied; every
/// generated client (`PreprocessClient<GrpcChannel>`, …) runs over it.
pub type GrpcChannel = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, ChannelError>;

/// Settings of one outgoing gRPC connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Longest a connection attempt may take.
    pub connect_timeout: Duration,
    /// Deadline of every call; sent to the server as `grpc-timeout` unless
    /// the call sets a shorter one.
    pub timeout: Duration,
    /// How often a host name is resolved again to find its replicas.
    pub dns_refresh: Duration,
    /// Whom to trust and who to be on `https://` endpoints.
    pub tls: crate::tls::ClientTls,
    /// Bearer token sent on every call (`None`: none).
    pub token: Option<crate::auth::TokenSource>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            dns_refresh: Duration::from_secs(5),
            tls: crate::tls::ClientTls::default(),
            token: None,
        }
    }
}

/// Failures to set a channel up (the connection itself is lazy: an
/// unreachable server fails the call, not this).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not a URL a channel can be opened to.
    #[error("invalid gRPC endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The client's certificates or trust roots cannot be used.
    #[error("TLS settings for {endpoint:?} are not usable: {source}")]
    Tls {
        /// The endpoint they were for.
        endpoint: String,
        /// What is wrong with them.
        source: crate::tls::TlsError,
    },
    /// The token to send cannot be read.
    #[error(transparent)]
    Token(#[from] crate::auth::AuthError),
}

/// A lazily-connecting channel to `endpoint` (e.g. `http://127.0.0.1:50051`
/// or `http://preprocess:50051`), balanced over every address a host name
/// resolves to in DNS.
pub fn connect(endpoint: &str, config: &ClientConfig) -> Result<GrpcChannel, ClientError> {
    let target = Target::parse(endpoint)?;
    if target.host.parse::<IpAddr>().is_ok() || tokio::runtime::Handle::try_current().is_err() {
        let mut endpoint = target.endpoint(config);
        if let Some(tls) = target.tls(config)? {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|error| target.tls_error(error))?;
        }
        return finish(endpoint.connect_lazy(), config);
    }
    let (host, port) = (target.host.clone(), target.port);
    connect_resolved(target, config, move || {
        let host = host.clone();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    })
}

/// Finds the addresses behind a name, again at every refresh: DNS by
/// default ([`connect`]); tests and other service discovery supply their
/// own.
pub type Lookup = Box<dyn Fn() -> LookupFuture + Send>;

/// One answer of a [`Lookup`].
pub type LookupFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>;

/// A channel to `endpoint` balanced over the addresses `lookup` returns,
/// asked again every [`ClientConfig::dns_refresh`]. Must be called inside a
/// tokio runtime.
pub fn connect_with_lookup<F>(
    endpoint: &str,
    config: &ClientConfig,
    lookup: F,
) -> Result<GrpcChannel, ClientError>
where
    F: Fn() -> LookupFuture + Send + 'static,
{
    connect_resolved(Target::parse(endpoint)?, config, lookup)
}

fn connect_resolved<F>(
    target: Target,
    config: &ClientConfig,
    lookup: F,
) -> Result<GrpcChannel, ClientError>
where
    F: Fn() -> LookupFuture + Send + 'static,
{
    let (changes, discovered) = mpsc::channel::<Change<SocketAddr, Endpoint>>(64);
    let settings = config.clone();
    let name = target.uri.clone();
    let scheme = target.uri.scheme_str().unwrap_or("http").to_owned();
    // Each replica is dialled by address; its certificate must still name
    // the host the endpoint was given by.
    let tls = target
        .tls(config)?
        .map(|tls| tls.domain_name(target.host.clone()));
    let tls = match &config.tls.domain {
        Some(domain) => tls.map(|tls| tls.domain_name(domain.clone())),
        None => tls,
    };
    let per_address = move |addr: SocketAddr| {
        let endpoint = Endpoint::from_shared(format!("{scheme}://{addr}")).ok()?;
        let endpoint = match &tls {
            Some(tls) => endpoint
                .tls_config(tls.clone())
                .map_err(|error| tracing::warn!(%addr, %error, "cannot set up TLS to a replica"))
                .ok()?,
            None => endpoint,
        };
        Some(configure(endpoint, &settings).origin(name.clone()))
    };
    tokio::spawn(resolve(
        target.host,
        Box::new(lookup),
        per_address,
        changes,
        config.dns_refresh,
    ));
    // Every replica a lazily-connecting channel, chosen by power of two
    // choices over in-flight requests; the buffer makes the balancer
    // cloneable and lets calls wait for the first resolution.
    let discover = tokio_stream::wrappers::ReceiverStream::new(discovered).map(|change| {
        Ok::<_, std::convert::Infallible>(match change {
            Change::Insert(addr, endpoint) => {
                tower::discover::Change::Insert(addr, endpoint.connect_lazy())
            }
            Change::Remove(addr) => tower::discover::Change::Remove(addr),
        })
    });
    let balance = tower::balance::p2c::Balance::new(tower::load::PendingRequestsDiscover::new(
        discover,
        tower::load::CompleteOnResponse::default(),
    ));
    finish(tower::buffer::Buffer::new(balance, 1_024), config)
}

/// The shared layers on top of a (single or balanced) channel.
fn finish<S>(channel: S, config: &ClientConfig) -> Result<GrpcChannel, ClientError>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let timeout = config.timeout;
    let authorization = match &config.token {
        Some(source) => crate::auth::bearer_header(&source.first()?),
        None => None,
    };
    Ok(BoxCloneSyncService::new(
        tower::ServiceBuilder::new()
            .map_err(ChannelError::new)
            .map_request(move |request| with_deadline(request, timeout))
            .map_request(move |request| with_token(request, authorization.as_ref()))
            // W3C trace context of the calling span, unless the call set one.
            .layer(triad_telemetry::trace::InjectTraceContextLayer)
            .service(channel),
    ))
}

/// Adds the bearer token to a request that carries none.
fn with_token(
    mut request: http::Request<Body>,
    authorization: Option<&http::HeaderValue>,
) -> http::Request<Body> {
    if let Some(value) = authorization {
        request
            .headers_mut()
            .entry(http::header::AUTHORIZATION)
            .or_insert_with(|| value.clone());
    }
    request
}

/// A parsed endpoint URL.
struct Target {
    uri: Uri,
    host: String,
    port: u16,
}

impl Target {
    fn parse(endpoint: &str) -> Result<Self, ClientError> {
        let invalid = |reason: String| ClientError::Endpoint {
            endpoint: endpoint.to_owned(),
            reason,
        };
        let uri: Uri = endpoint
            .parse()
            .map_err(|error: http::uri::InvalidUri| invalid(error.to_string()))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(invalid("expected an http:// or https:// URL".to_owned())),
        }
        let host = uri
            .host()
            .ok_or_else(|| invalid("no host".to_owned()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        Ok(Self { uri, host, port })
    }

    fn endpoint(&self, config: &ClientConfig) -> Endpoint {
        configure(Endpoint::from(self.uri.clone()), config)
    }

    /// tonic's TLS settings for an `https://` endpoint; `None` for
    /// `http://`.
    fn tls(
        &self,
        config: &ClientConfig,
    ) -> Result<Option<tonic::transport::ClientTlsConfig>, ClientError> {
        if self.uri.scheme_str() != Some("https") {
            if config.tls.is_set() {
                tracing::warn!(endpoint = %self.uri, "TLS settings ignored: the endpoint is http://, not https://");
            }
            return Ok(None);
        }
        config
            .tls
            .tonic_config()
            .map(Some)
            .map_err(|source| ClientError::Tls {
                endpoint: self.uri.to_string(),
                source,
            })
    }

    fn tls_error(&self, error: tonic::transport::Error) -> ClientError {
        ClientError::Tls {
            endpoint: self.uri.to_string(),
            source: crate::tls::TlsError::Client(error.to_string()),
        }
    }
}

/// Triad's settings on one endpoint.
fn configure(endpoint: Endpoint, config: &ClientConfig) -> Endpoint {
    endpoint
        .connect_timeout(config.connect_timeout)
        .timeout(config.timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
}

/// Adds `grpc-timeout` (the channel's deadline) to a request that has none,
/// so the server stops working on a call its caller has given up on.
fn with_deadline(mut request: http::Request<Body>, timeout: Duration) -> http::Request<Body> {
    if !request.headers().contains_key("grpc-timeout") {
        let millis = timeout.as_millis().clamp(1, 99_999_999);
        if let Ok(value) = http::HeaderValue::from_str(&format!("{millis}m")) {
            request.headers_mut().insert("grpc-timeout", value);
        }
    }
    request
}

/// Looks `host` up now and every `refresh`, telling the balancer which
/// addresses appeared and which went away, until the channel is dropped. A
/// failed or empty lookup keeps the addresses already known.
async fn resolve(
    host: String,
    lookup: Lookup,
    endpoint: impl Fn(SocketAddr) -> Option<Endpoint>,
    changes: mpsc::Sender<Change<SocketAddr, Endpoint>>,
    refresh: Duration,
) {
    let mut known: HashSet<SocketAddr> = HashSet::new();
    loop {
        match lookup().await {
            Ok(addrs) => {
                let fresh: HashSet<SocketAddr> = addrs.into_iter().collect();
                if fresh.is_empty() {
                    tracing::warn!(%host, "name resolved to no address; keeping the known ones");
                } else {
                    for addr in fresh.difference(&known) {
                        let Some(endpoint) = endpoint(*addr) else {
                            continue;
                        };
                        tracing::debug!(%host, %addr, "replica added");
                        if changes.send(Change::Insert(*addr, endpoint)).await.is_err() {
                            return;
                        }
                    }
                    for addr in known.difference(&fresh) {
                        tracing::debug!(%host, %addr, "replica removed");
                        if changes.send(Change::Remove(*addr)).await.is_err() {
                            return;
                        }
                    }
                    known = fresh;
                }
            }
            Err(error) => {
                tracing::warn!(%host, %error, "cannot resolve; keeping the known addresses");
            }
        }
        tokio::select! {
            () = changes.closed() => return,
            () = tokio::time::sleep(refresh) => {}
        }
    }
}

/// Retries of idempotent calls: only on `UNAVAILABLE` (the server never
/// ran the call: connection refused or reset, replica draining) or a
/// connection that broke below gRPC (no status came back), at most
/// [`Retry::max_retries`] times per call, and only while the budget allows
/// — retries may add at most a fifth to the call rate (plus ten a second),
/// so a struggling server is not buried under retries.
#[derive(Debug, Clone)]
pub struct Retry {
    budget: Arc<TpsBudget>,
    max_retries: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Self::new(2, 0.2)
    }
}

impl Retry {
    /// Up to `max_retries` per call, retries at most `share` of calls.
    pub fn new(max_retries: u32, share: f32) -> Self {
        Self {
            budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 10, share)),
            max_retries,
        }
    }

    /// Runs `call` (which must be idempotent), again while it fails with
    /// `UNAVAILABLE` and the budget allows.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        self.budget.deposit();
        let mut retries = 0;
        loop {
            match call().await {
                Err(status)
                    if (status.code() == tonic::Code::Unavailable || broke_below_grpc(&status))
                        && retries < self.max_retries
                        && self.budget.withdraw() =>
                {
                    retries += 1;
                    tracing::debug!(retries, %status, "retrying an idempotent call");
                }
                result => return result,
            }
        }
    }
}

/// A call that failed in the transport (a connection that broke before any
/// gRPC status came back), not a status the server sent: as safe to retry
/// for an idempotent call as `UNAVAILABLE`.
fn broke_below_grpc(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    if status.code() != tonic::Code::Unknown {
        return false;
    }
    let mut source = status.source();
    while let Some(error) = source {
        if error.is::<tonic::transport::Error>() {
            return true;
        }
        source = error.source();
    }
    false
}
