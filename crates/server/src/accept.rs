//! Accepting connections so that idle ones can neither pile up nor crowd
//! out others: the one accept loop of every port, gRPC and HTTP, plain and
//! TLS.
//!
//! - **Accept never waits.** Each new connection gets its own task at
//!   once; the loop goes straight back to `accept`. (It used to wait for
//!   one of 1 024 handshake permits first, so ~1 000 connections that never
//!   spoke stalled every legitimate handshake for seconds.)
//! - **A deadline for the first bytes.** A connection must finish its TLS
//!   handshake (when TLS is on) and send the start of its first request
//!   (the HTTP/2 preface, or an HTTP/1 request line) within
//!   [`ServerLimits::handshake_timeout`](crate::ServerLimits), or it is
//!   closed. Only then is it handed to the HTTP/gRPC server, with what was
//!   read put back in front ([`Conn`]).
//! - **A cap on pending connections per peer and in all.** At most
//!   [`ServerLimits::max_pending_per_peer`](crate::ServerLimits) connections
//!   of one peer address (an IPv6 peer by its /64) wait for their first
//!   bytes at once, and at most
//!   [`ServerLimits::max_pending`](crate::ServerLimits) in all; past either,
//!   the *oldest* pending connection of that peer (or of all) is closed to
//!   make room. A legitimate handshake takes milliseconds, so it is never
//!   the oldest for long; idle connections are.
//!
//! `docs/operations.md` ("Connections and timeouts") defends the design.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::drain::Phase;
use crate::tls::TlsAcceptor;

/// The HTTP/2 connection preface a client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How the accept loop treats new connections (from
/// [`ServerLimits`](crate::ServerLimits)).
#[derive(Debug, Clone)]
pub(crate) struct AcceptLimits {
    pub handshake_timeout: Duration,
    pub max_pending: usize,
    pub max_pending_per_peer: usize,
    pub tcp_keepalive: Option<Duration>,
}

impl From<&crate::ServerLimits> for AcceptLimits {
    fn from(limits: &crate::ServerLimits) -> Self {
        Self {
            handshake_timeout: limits.handshake_timeout,
            max_pending: limits.max_pending.max(1),
            max_pending_per_peer: limits.max_pending_per_peer.max(1),
            tcp_keepalive: limits.tcp_keepalive,
        }
    }
}

/// The transport under a [`Conn`].
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A connection that finished its handshake and sent its first bytes,
/// ready for the HTTP/gRPC server: reads return those bytes first.
pub struct Conn {
    transport: Transport,
    /// Bytes read before the connection was handed over, served first.
    first: Vec<u8>,
    served: usize,
    local: Option<SocketAddr>,
    peer: SocketAddr,
}

impl Conn {
    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.served < this.first.len() {
            let rest = &this.first[this.served..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.served += n;
            if this.served == this.first.len() {
                this.first = Vec::new();
                this.served = 0;
            }
            return Poll::Ready(Ok(()));
        }
        match &mut this.transport {
            Transport::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().transport {
            Transport::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().transport {
            Transport::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.transport {
            Transport::Plain(stream) => stream.is_write_vectored(),
            Transport::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        TcpConnectInfo {
            local_addr: self.local,
            remote_addr: Some(self.peer),
        }
    }
}

/// Starts accepting on `listener` (inside a tokio runtime): ready
/// connections come out of the returned channel until `phase` reaches
/// [`Phase::Stopped`] or the receiver is dropped; then the listener is
/// closed.
pub(crate) fn spawn(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: AcceptLimits,
    phase: watch::Receiver<Phase>,
) -> mpsc::Receiver<Conn> {
    let (ready, accepted) = mpsc::channel(64);
    tokio::spawn(accept_loop(listener, tls, limits, ready, phase));
    accepted
}

/// Whose pending connections count together: an IPv4 address, or an IPv6
/// address's /64 (one host usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PeerKey {
    V4(u32),
    V6(u64),
}

impl PeerKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.into()),
                None => Self::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// The connections still waiting for their first bytes, oldest first.
struct Pending {
    limits: AcceptLimits,
    next_id: u64,
    all: BTreeMap<u64, (PeerKey, AbortHandle)>,
    by_peer: HashMap<PeerKey, VecDeque<u64>>,
}

impl Pending {
    fn new(limits: AcceptLimits) -> Self {
        Self {
            limits,
            next_id: 0,
            all: BTreeMap::new(),
            by_peer: HashMap::new(),
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Forgets `id` (its task finished).
    fn remove(&mut self, id: u64) {
        if let Some((peer, _)) = self.all.remove(&id)
            && let Some(ids) = self.by_peer.get_mut(&peer)
        {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.by_peer.remove(&peer);
            }
        }
    }

    /// Closes the pending connection `id`.
    fn evict(&mut self, id: u64, why: &'static str) {
        if let Some((_, task)) = self.all.get(&id) {
            task.abort();
            tracing::debug!(why, "closed a connection still waiting for its first bytes");
        }
        self.remove(id);
    }

    /// Makes room for one more connection of `peer`.
    fn make_room(&mut self, peer: PeerKey) {
        let oldest_of_peer = self
            .by_peer
            .get(&peer)
            .filter(|ids| ids.len() >= self.limits.max_pending_per_peer)
            .and_then(|ids| ids.front().copied());
        if let Some(id) = oldest_of_peer {
            self.evict(id, "too many pending connections from one peer");
        }
        if self.all.len() >= self.limits.max_pending
            && let Some(id) = self.all.keys().next().copied()
        {
            self.evict(id, "too many pending connections");
        }
    }

    fn insert(&mut self, id: u64, peer: PeerKey, task: AbortHandle) {
        self.all.insert(id, (peer, task));
        self.by_peer.entry(peer).or_default().push_back(id);
    }
}

/// Tells the accept loop a pending connection is done, however its task
/// ends (handed over, failed, timed out or aborted).
struct Done {
    id: u64,
    done: mpsc::UnboundedSender<u64>,
}

impl Drop for Done {
    fn drop(&mut self) {
        let _ = self.done.send(self.id);
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: AcceptLimits,
    ready: mpsc::Sender<Conn>,
    mut phase: watch::Receiver<Phase>,
) {
    let (done_sender, mut done) = mpsc::unbounded_channel();
    let mut pending = Pending::new(limits.clone());
    let stopped = async move {
        let _ = phase.wait_for(|phase| *phase == Phase::Stopped).await;
    };
    tokio::pin!(stopped);
    loop {
        let accepted = tokio::select! {
            () = ready.closed() => return,
            () = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        while let Ok(id) = done.try_recv() {
            pending.remove(id);
        }
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off a little
                // rather than spin.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        configure(&stream, limits.tcp_keepalive);
        let key = PeerKey::of(peer.ip());
        pending.make_room(key);
        let id = pending.next_id();
        let guard = Done {
            id,
            done: done_sender.clone(),
        };
        let task = tokio::spawn(first_bytes(
            stream,
            peer,
            tls.clone(),
            limits.handshake_timeout,
            ready.clone(),
            guard,
        ));
        pending.insert(id, key, task.abort_handle());
    }
}

/// No delay on small writes, and TCP keepalive so a peer that vanished is
/// noticed.
fn configure(stream: &TcpStream, keepalive: Option<Duration>) {
    let _ = stream.set_nodelay(true);
    if let Some(time) = keepalive {
        let socket = socket2::SockRef::from(stream);
        let _ = socket.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(time));
    }
}

/// Performs the TLS handshake (if any) and reads the start of the first
/// request within `deadline`, then hands the connection over.
async fn first_bytes(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    deadline: Duration,
    ready: mpsc::Sender<Conn>,
    done: Done,
) {
    let local = stream.local_addr().ok();
    let opened = tokio::time::timeout(deadline, async {
        let mut transport = match tls {
            None => Transport::Plain(stream),
            Some(acceptor) => Transport::Tls(Box::new(acceptor.accept(stream).await?)),
        };
        let first = read_first(&mut transport).await?;
        Ok::<_, io::Error>((transport, first))
    })
    .await;
    drop(done);
    match opened {
        Ok(Ok((transport, first))) => {
            let _ = ready
                .send(Conn {
                    transport,
                    first,
                    served: 0,
                    local,
                    peer,
                })
                .await;
        }
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "connection closed before its first request")
        }
        Err(_) => tracing::debug!(
            %peer,
            ?deadline,
            "connection closed: no request within the handshake timeout"
        ),
    }
}

/// Reads until the bytes are either the whole HTTP/2 preface or not a
/// prefix of it (an HTTP/1 request), so the server that takes over never
/// waits on the client to tell which protocol it speaks.
async fn read_first(transport: &mut Transport) -> io::Result<Vec<u8>> {
    let mut first = Vec::with_capacity(H2_PREFACE.len());
    let mut chunk = [0_u8; 1024];
    loop {
        let n = match transport {
            Transport::Plain(stream) => stream.read(&mut chunk).await?,
            Transport::Tls(stream) => stream.read(&mut chunk).await?,
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        first.extend_from_slice(&chunk[..n]);
        let decided = first.len() >= H2_PREFACE.len() || !H2_PREFACE.starts_with(&first);
        if decided {
            return Ok(first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_peer: usize, all: usize) -> AcceptLimits {
        AcceptLimits {
            handshake_timeout: Duration::from_secs(1),
            max_pending: all,
            max_pending_per_peer: per_peer,
            tcp_keepalive: None,
        }
    }

    #[test]
    fn ipv6_peers_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(PeerKey::of(a), PeerKey::of(b));
        assert_ne!(PeerKey::of(a), PeerKey::of(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(PeerKey::of(mapped), PeerKey::of(v4));
    }

    #[tokio::test]
    async fn a_peer_past_its_cap_loses_its_oldest_pending_connection() {
        let mut pending = Pending::new(limits(2, 100));
        let one = PeerKey::of("10.0.0.1".parse().unwrap());
        let other = PeerKey::of("10.0.0.2".parse().unwrap());
        let mut tasks = Vec::new();
        for peer in [one, one, other, one] {
            pending.make_room(peer);
            let id = pending.next_id();
            let task = tokio::spawn(std::future::pending::<()>());
            pending.insert(id, peer, task.abort_handle());
            tasks.push(task);
        }
        // The first connection of `one` was closed for the third.
        assert!(tasks.remove(0).await.unwrap_err().is_cancelled());
        assert_eq!(pending.all.len(), 3);
        assert_eq!(pending.by_peer[&one].len(), 2);
        assert_eq!(pending.by_peer[&other].len(), 1);
        for task in &tasks {
            assert!(!task.is_finished());
            task.abort();
        }
    }

    #[tokio::test]
    async fn past_the_global_cap_the_oldest_of_all_is_closed() {
        let mut pending = Pending::new(limits(10, 2));
        let mut tasks = Vec::new();
        for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            let peer = PeerKey::of(ip.parse().unwrap());
            pending.make_room(peer);
            let id = pending.next_id();
            let task = tokio::spawn(std::future::pending::<()>());
            pending.insert(id, peer, task.abort_handle());
            tasks.push(task);
        }
        assert!(tasks.remove(0).await.unwrap_err().is_cancelled());
        assert_eq!(pending.all.len(), 2);
        for task in tasks {
            task.abort();
        }
    }
}
