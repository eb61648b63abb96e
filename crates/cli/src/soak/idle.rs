//! Connections that never finish a request, and the check that the
//! server closed every one.

use super::*;

/// Connections that never finish a request: silent ones on every port,
/// HTTP requests whose headers or body never end, HTTP/2 prefaces cut
/// short. The server must close every one.
pub(super) struct IdleConnections {
    pub(super) streams: Vec<TcpStream>,
    pub(super) opened: Instant,
}

impl IdleConnections {
    pub(super) async fn open(fleet: &Fleet) -> anyhow::Result<Self> {
        let mut streams = Vec::new();
        // More silent ones on the scorer's gRPC port than one peer may hold
        // pending (256): the oldest are closed to make room.
        for (addr, count) in [
            (fleet.score_grpc, 300),
            (fleet.score_http, 150),
            (fleet.monitor_grpc, 50),
            (fleet.monitor_http, 50),
        ] {
            for _ in 0..count {
                streams.push(TcpStream::connect(addr).await?);
            }
        }
        let half_sent: [(SocketAddr, &[u8]); 3] = [
            (
                fleet.score_http,
                b"POST /budget_expense_matcher/ HTTP/1.1\r\nhost: soak\r\n",
            ),
            (
                fleet.score_http,
                b"POST /health HTTP/1.1\r\nhost: soak\r\ncontent-length: 1000\r\n\r\n{",
            ),
            (fleet.score_grpc, b"PRI * HTTP/2.0\r\n"),
        ];
        for (addr, bytes) in half_sent {
            for _ in 0..10 {
                let mut stream = TcpStream::connect(addr).await?;
                stream.write_all(bytes).await?;
                streams.push(stream);
            }
        }
        Ok(Self {
            streams,
            opened: Instant::now(),
        })
    }

    pub(super) fn len(&self) -> usize {
        self.streams.len()
    }

    /// How many the server closed within 45 s of their opening (the
    /// longest limit, the 30 s request timeout, with room), and how many
    /// are still open.
    pub(super) async fn closed(self) -> (usize, usize) {
        let deadline = tokio::time::Instant::from_std(self.opened + Duration::from_secs(45));
        let mut tasks = tokio::task::JoinSet::new();
        for mut stream in self.streams {
            tasks.spawn(async move {
                let mut buffer = [0; 1024];
                loop {
                    match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
                        Ok(Ok(0) | Err(_)) => return true,
                        Ok(Ok(_)) => {}
                        Err(_) => return false,
                    }
                }
            });
        }
        let (mut closed, mut open) = (0, 0);
        while let Some(result) = tasks.join_next().await {
            if result.unwrap_or(false) {
                closed += 1;
            } else {
                open += 1;
            }
        }
        (closed, open)
    }
}
