//! What the soak's callers share ([`Ctx`]: clients, tokens, the ledger
//! of answered requests and the check of what the monitor stored), and
//! the valid and unauthenticated callers.

use super::*;

/// What every traffic task shares: clients, tokens and the ledger of
/// answered requests.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) scorer: ScorerClient<Channel>,
    pub(super) score_channel: Channel,
    pub(super) monitor_channel: Channel,
    pub(super) score_http: SocketAddr,
    pub(super) monitor_http: SocketAddr,
    pub(super) token: Arc<str>,
    pub(super) read_token: Arc<str>,
    pub(super) ledger: Arc<Mutex<Ledger>>,
    /// Realistic requests (`triad synth`) the valid callers draw from.
    pub(super) pool: Arc<Vec<RawRequest>>,
    pub(super) database: sqlx::SqlitePool,
}

/// The outcomes every answered request must have stored.
#[derive(Default)]
pub(super) struct Ledger {
    /// Server request id of each answered gRPC request → its outcomes.
    pub(super) by_request: HashMap<String, u64>,
    /// Caller's correlation id of answered HTTP requests → their outcomes
    /// (HTTP answers do not carry the server's id).
    pub(super) by_correlation: HashMap<String, u64>,
    /// Server request ids answered more than once: must never happen.
    pub(super) repeated_ids: Vec<String>,
}

impl Ledger {
    pub(super) fn total(&self) -> u64 {
        self.by_request.values().sum::<u64>() + self.by_correlation.values().sum::<u64>()
    }
}

impl Ctx {
    pub(super) async fn connect(fleet: &Fleet) -> anyhow::Result<Self> {
        let channel = |addr: SocketAddr| {
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .map(|endpoint| endpoint.tcp_nodelay(true).connect_lazy())
        };
        let score_channel = channel(fleet.score_grpc)?;
        let scorer = ScorerClient::new(score_channel.clone())
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        let dataset = triad_synth::generate(&triad_synth::SynthConfig {
            users: 40,
            ..triad_synth::SynthConfig::default()
        });
        let database = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&fleet.database)
                .read_only(true),
        )
        .await
        .context("cannot open the monitor's database")?;
        Ok(Self {
            scorer,
            score_channel,
            monitor_channel: channel(fleet.monitor_grpc)?,
            score_http: fleet.score_http,
            monitor_http: fleet.monitor_http,
            token: fleet.score_token.as_str().into(),
            read_token: fleet.read_token.as_str().into(),
            ledger: Arc::default(),
            pool: Arc::new(dataset.requests.into_iter().map(|r| r.request).collect()),
            database,
        })
    }

    /// `Score` with the scorer's token; an answer goes in the ledger.
    pub(super) async fn score(
        &self,
        request: v1::ScoreRequest,
        caller_id: Option<&str>,
    ) -> Result<v1::ScoreResponse, tonic::Status> {
        let call = grpc_call(request, Some(&self.token), caller_id);
        let response = self.scorer.clone().score(call).await?.into_inner();
        self.record(&response).await;
        Ok(response)
    }

    /// `Score` with a body already encoded (`bytes`, sent as they are);
    /// an answer goes in the ledger.
    pub(super) async fn score_encoded(
        &self,
        bytes: Vec<u8>,
        caller_id: &str,
    ) -> Result<v1::ScoreResponse, tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(self.score_channel.clone())
            .max_decoding_message_size(256 << 20);
        grpc.ready()
            .await
            .map_err(|error| tonic::Status::unknown(error.to_string()))?;
        let call = grpc_call(
            triad_proto::shared::Encoded(bytes),
            Some(&self.token),
            Some(caller_id),
        );
        let codec =
            tonic_prost::ProstCodec::<triad_proto::shared::Encoded, v1::ScoreResponse>::default();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/triad.v1.Scorer/Score");
        let response = grpc.unary(call, path, codec).await?.into_inner();
        self.record(&response).await;
        Ok(response)
    }

    /// Puts an answered `Score` in the ledger.
    async fn record(&self, response: &v1::ScoreResponse) {
        let outcomes = response.results.iter().map(|r| r.scores.len() as u64).sum();
        let mut ledger = self.ledger.lock().await;
        if ledger
            .by_request
            .insert(response.request_id.clone(), outcomes)
            .is_some()
        {
            ledger.repeated_ids.push(response.request_id.clone());
        }
    }

    /// The seed's HTTP contract with the scorer's token and `correlation`
    /// as `x-request-id`; a 200 goes in the ledger. The status and the
    /// outcomes the answer lists.
    pub(super) async fn http_score(
        &self,
        connection: &mut HttpConnection,
        body: &[u8],
        correlation: &str,
    ) -> anyhow::Result<(u16, u64)> {
        let auth = format!("Bearer {}", self.token);
        let headers = [
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
            (triad_telemetry::REQUEST_ID_HEADER, correlation),
        ];
        let status = connection.send("POST", HTTP_PATH, &headers, body).await?;
        if status != 200 {
            return Ok((status, 0));
        }
        let entries: Vec<serde_json::Value> =
            serde_json::from_slice(connection.body()).context("a 200 that is not a JSON list")?;
        let outcomes = entries.iter().filter(|e| e.get("score").is_some()).count() as u64;
        *self
            .ledger
            .lock()
            .await
            .by_correlation
            .entry(correlation.to_owned())
            .or_default() += outcomes;
        Ok((status, outcomes))
    }

    /// `GET /metrics` with the read token.
    pub(super) async fn metrics(&self, addr: SocketAddr) -> anyhow::Result<String> {
        let mut connection = HttpConnection::open(addr).await?;
        let auth = format!("Bearer {}", self.read_token);
        let status = connection
            .send("GET", "/metrics", &[("authorization", &auth)], b"")
            .await?;
        anyhow::ensure!(
            status == 200,
            "GET /metrics with the read token answered {status}"
        );
        Ok(String::from_utf8_lossy(connection.body()).into_owned())
    }

    /// Sends `shape` alone and measures the scorer's peak RSS growth (KiB)
    /// until the monitor holds its outcomes.
    pub(super) async fn measure(
        &self,
        fleet: &Fleet,
        shape: &Shape,
    ) -> anyhow::Result<(Answer, u64)> {
        let pid = fleet.score.pid();
        let correlation = format!("{MARK}-alone-{}", shape.name.replace(' ', "-"));
        let body = match &shape.raw_body {
            Some(body) => body.clone(),
            None => seed_json(&shape.request),
        };
        let request = score_request(&shape.request, shape.models);
        anyhow::ensure!(
            body.len() <= triad_features::JsonLimits::default().max_body_bytes,
            "{}: a {} byte body is over 4 MiB",
            shape.name,
            body.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        reset_peak(pid)?;
        let before = proc_status_kib(pid, "VmRSS")?;
        let (label, outcomes, stored) = if shape.models == [MODEL] && !shape.grpc {
            let mut connection = HttpConnection::open(self.score_http).await?;
            let (status, outcomes) = tokio::time::timeout(
                CALL_TIMEOUT,
                self.http_score(&mut connection, &body, &correlation),
            )
            .await
            .context("no answer in time")??;
            (
                format!("HTTP {status}"),
                outcomes,
                Stored::Correlation(correlation),
            )
        } else {
            let call = async {
                match &shape.raw_body {
                    Some(body) => self.score_encoded(body.clone(), &correlation).await,
                    None => self.score(request, Some(&correlation)).await,
                }
            };
            match tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .context("no answer in time")?
            {
                Ok(response) => {
                    let outcomes = response.results.iter().map(|r| r.scores.len() as u64).sum();
                    (
                        "OK".to_owned(),
                        outcomes,
                        Stored::Request(response.request_id),
                    )
                }
                Err(status) => (
                    format!("{:?}", status.code()),
                    0,
                    Stored::Request(String::new()),
                ),
            }
        };
        let stored = if outcomes > 0 {
            self.wait_stored(&stored, outcomes).await?
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            0
        };
        let peak = proc_status_kib(pid, "VmHWM")?;
        let answered = outcomes > 0 || label == "HTTP 200" || label == "OK";
        let expected = stored == outcomes
            && match shape.expect {
                Expect::Answered => answered,
                Expect::Refused => !answered,
                Expect::Either => true,
            };
        Ok((
            Answer {
                label,
                outcomes,
                expected,
            },
            peak.saturating_sub(before),
        ))
    }

    /// Waits until the monitor holds `outcomes` outcomes of `stored`, or
    /// 60 s pass without progress.
    pub(super) async fn wait_stored(&self, stored: &Stored, outcomes: u64) -> anyhow::Result<u64> {
        let (sql, id) = match stored {
            Stored::Request(id) => ("SELECT count(*) FROM outcomes WHERE request_id = ?", id),
            Stored::Correlation(id) => {
                ("SELECT count(*) FROM outcomes WHERE correlation_id = ?", id)
            }
        };
        let (mut last, mut progress_at) = (0, Instant::now());
        loop {
            let count: i64 = sqlx::query_scalar(sql)
                .bind(id)
                .fetch_one(&self.database)
                .await?;
            let count = count as u64;
            if count >= outcomes || progress_at.elapsed() > Duration::from_secs(60) {
                return Ok(count);
            }
            if count != last {
                (last, progress_at) = (count, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Compares what the monitor stored with the ledger.
    pub(super) async fn check_outcomes(&self, report: &mut Report) -> anyhow::Result<()> {
        let ledger = self.ledger.lock().await;
        let expected = ledger.total();
        let (mut last, mut progress_at) = (0, Instant::now());
        loop {
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM outcomes")
                .fetch_one(&self.database)
                .await?;
            let count = count as u64;
            if count >= expected || progress_at.elapsed() > Duration::from_secs(60) {
                break;
            }
            if count != last {
                (last, progress_at) = (count, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT request_id, correlation_id, count(*) FROM outcomes \
             GROUP BY request_id, correlation_id",
        )
        .fetch_all(&self.database)
        .await?;
        let (mut by_request, mut by_correlation) = (HashMap::new(), HashMap::<&str, u64>::new());
        let mut stored = 0;
        for (request_id, correlation_id, count) in &rows {
            stored += *count as u64;
            if ledger.by_request.contains_key(request_id) {
                by_request.insert(request_id.as_str(), *count as u64);
            } else {
                *by_correlation.entry(correlation_id.as_str()).or_default() += *count as u64;
            }
        }
        let mut wrong: Vec<String> = Vec::new();
        for (id, want) in &ledger.by_request {
            let got = by_request.get(id.as_str()).copied().unwrap_or(0);
            if got != *want {
                wrong.push(format!("request {id}: {got} stored, {want} answered"));
            }
        }
        for (id, want) in &ledger.by_correlation {
            let got = by_correlation.remove(id.as_str()).unwrap_or(0);
            if got != *want {
                wrong.push(format!("HTTP requests {id}: {got} stored, {want} answered"));
            }
        }
        for (id, got) in by_correlation {
            wrong.push(format!(
                "{got} outcomes stored for unanswered requests (correlation {id:?})"
            ));
        }
        println!(
            "\noutcomes: {} answered requests, {expected} outcomes answered, {stored} stored",
            ledger.by_request.len() + ledger.by_correlation.len()
        );
        report.check(
            ledger.repeated_ids.is_empty(),
            format!(
                "every answer has its own request id ({} repeated)",
                ledger.repeated_ids.len()
            ),
        );
        report.check(
            wrong.is_empty() && stored == expected,
            format!(
                "every answered request's outcomes stored exactly once ({} wrong{})",
                wrong.len(),
                wrong
                    .first()
                    .map(|w| format!("; first: {w}"))
                    .unwrap_or_default()
            ),
        );
        Ok(())
    }
}

/// Where a request's outcomes are found in the monitor.
pub(super) enum Stored {
    Request(String),
    Correlation(String),
}

/// A gRPC request with `token` and the caller's `x-request-id`.
pub(super) fn grpc_call<T>(
    message: T,
    token: Option<&str>,
    caller_id: Option<&str>,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    if let Some(value) = token.and_then(|t| format!("Bearer {t}").parse().ok()) {
        request.metadata_mut().insert("authorization", value);
    }
    if let Some(value) = caller_id.and_then(|id| id.parse().ok()) {
        request
            .metadata_mut()
            .insert(triad_telemetry::REQUEST_ID_HEADER, value);
    }
    request
}

/// `request` as a `Score` call of `models`.
pub(super) fn score_request(request: &RawRequest, models: &[&str]) -> v1::ScoreRequest {
    let featurize: v1::FeaturizeRequest = request.clone().into();
    v1::ScoreRequest {
        budgets: featurize.budgets,
        all_user_expense_lineitems: featurize.all_user_expense_lineitems,
        models: models.iter().map(|m| (*m).to_owned()).collect(),
        ..v1::ScoreRequest::default()
    }
}

/// `request` as the seed's JSON, absent fields left out.
pub(super) fn seed_json(request: &RawRequest) -> Vec<u8> {
    let mut value = serde_json::to_value(request).unwrap_or_default();
    for list in ["budgets", "all_user_expense_lineitems"] {
        if let Some(entries) = value.get_mut(list).and_then(|l| l.as_array_mut()) {
            for entry in entries {
                if let Some(fields) = entry.as_object_mut() {
                    fields.retain(|_, v| !v.is_null());
                }
            }
        }
    }
    serde_json::to_vec(&value).unwrap_or_default()
}

pub(super) fn describe(status: &tonic::Status) -> String {
    let message: String = status.message().chars().take(120).collect();
    format!("{:?}: {message}", status.code())
}

/// Valid `Score` calls: realistic requests, one or both models, some
/// backfilled, a third sharing one of three `x-request-id`s.
pub(super) async fn valid_grpc(ctx: Ctx, tally: Tally, end: Instant, caller: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(caller);
    let mut n = 0;
    let mut pace = pacer(VALID_PACE);
    while Instant::now() < end {
        pace.tick().await;
        n += 1;
        let base = &ctx.pool[rng.random_range(0..ctx.pool.len())];
        let models: &[&str] = match rng.random_range(0..3) {
            0 => &[MODEL],
            1 => &[SECOND_MODEL],
            _ => &[MODEL, SECOND_MODEL],
        };
        let mut request = score_request(base, models);
        if rng.random_bool(0.25) {
            request.occurred_at_ms =
                triad_proto::time::now_ms() - rng.random_range(0..7 * 86_400_000);
        }
        let caller_id = match rng.random_range(0..3) {
            0 => None,
            1 => Some(format!("{MARK}-shared-{}", rng.random_range(0..3))),
            _ => Some(format!("{MARK}-grpc-{caller}-{n}")),
        };
        let result = match ctx.score(request, caller_id.as_deref()).await {
            Ok(response) if response.correlation_id == caller_id.clone().unwrap_or_default() => {
                Ok(())
            }
            Ok(response) => Err(format!(
                "x-request-id {caller_id:?} echoed as {:?}",
                response.correlation_id
            )),
            Err(status) => Err(describe(&status)),
        };
        tally.record("valid Score (gRPC)", result).await;
    }
}

/// Valid calls of the seed's HTTP contract on one keep-alive connection:
/// the seed request and realistic ones, a fifth sharing an `x-request-id`.
pub(super) async fn valid_http(ctx: Ctx, tally: Tally, end: Instant, caller: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(100 + caller);
    let mut connection = None;
    let mut n = 0;
    let mut pace = pacer(VALID_PACE);
    while Instant::now() < end {
        pace.tick().await;
        n += 1;
        let body = if rng.random_bool(0.2) {
            crate::up::SEED_REQUEST.as_bytes().to_vec()
        } else {
            seed_json(&ctx.pool[rng.random_range(0..ctx.pool.len())])
        };
        let correlation = if rng.random_bool(0.2) {
            format!("{MARK}-http-shared")
        } else {
            format!("{MARK}-http-{caller}-{n}")
        };
        let result = async {
            if connection.is_none() {
                connection = Some(HttpConnection::open(ctx.score_http).await?);
            }
            let connection = connection.as_mut().context("no connection")?;
            tokio::time::timeout(
                CALL_TIMEOUT,
                ctx.http_score(connection, &body, &correlation),
            )
            .await
            .context("no answer in time")?
        }
        .await;
        let result = match result {
            Ok((200, _)) => Ok(()),
            Ok((status, _)) => Err(format!("HTTP {status}")),
            Err(error) => {
                connection = None;
                Err(format!("{error:#}"))
            }
        };
        tally.record("valid seed request (HTTP)", result).await;
    }
}

/// Hostile calls, each kind in turn.
pub(super) async fn hostile(ctx: Ctx, tally: Tally, end: Instant, caller: usize) {
    let mut i = caller;
    let mut pace = pacer(HOSTILE_PACE);
    while Instant::now() < end {
        pace.tick().await;
        let kind = Hostile::ALL[i % Hostile::ALL.len()];
        i += 1;
        let result = kind.run(&ctx, i).await;
        tally.record(kind.name(), result).await;
    }
}

/// Calls without a usable token, each to a path never seen before.
pub(super) async fn unauthenticated(ctx: Ctx, tally: Tally, end: Instant) {
    let mut n = 0;
    let mut pace = pacer(HOSTILE_PACE);
    while Instant::now() < end {
        pace.tick().await;
        n += 1;
        let path = format!("/{MARK}/{n}");
        for (kind, addr) in [
            ("no token, new HTTP path (scorer)", ctx.score_http),
            ("no token, new HTTP path (monitor)", ctx.monitor_http),
        ] {
            let result = http_status(addr, "GET", &path, &[], b"").await;
            tally.record(kind, expect_status(result, 401)).await;
        }
        let auth = format!("Bearer {}", ctx.read_token);
        let result = http_status(
            ctx.score_http,
            "POST",
            HTTP_PATH,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            crate::up::SEED_REQUEST.as_bytes(),
        )
        .await;
        tally
            .record(
                "read-only token on the seed contract",
                expect_status(result, 403),
            )
            .await;
        for (kind, channel, path) in [
            (
                "no token, new gRPC method (scorer)",
                &ctx.score_channel,
                format!("/triad.v1.Scorer/{MARK}{n}"),
            ),
            (
                "no token, new gRPC service (monitor)",
                &ctx.monitor_channel,
                format!("/{MARK}.v{n}.Nope/Call"),
            ),
        ] {
            let result = unknown_method(channel.clone(), &path).await;
            tally
                .record(kind, expect_code(result, Code::Unauthenticated))
                .await;
        }
        let call = grpc_call(
            score_request(&ctx.pool[n % ctx.pool.len()], &[MODEL]),
            Some(&format!("{MARK}-wrong-token-{n:0>16}")),
            None,
        );
        let result = ctx.scorer.clone().score(call).await.map(|_| ());
        tally
            .record(
                "wrong token on Score",
                expect_code(result, Code::Unauthenticated),
            )
            .await;
    }
}

/// A tick every `period`, late ticks delayed rather than bunched.
pub(super) fn pacer(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// One HTTP request on a connection of its own; its status.
pub(super) async fn http_status(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    let mut connection = HttpConnection::open(addr).await?;
    let status = tokio::time::timeout(CALL_TIMEOUT, connection.send(method, path, headers, body))
        .await
        .context("no answer in time")??;
    Ok((
        status,
        String::from_utf8_lossy(connection.body()).into_owned(),
    ))
}

pub(super) fn expect_status(
    result: anyhow::Result<(u16, String)>,
    want: u16,
) -> Result<(), String> {
    match result {
        Ok((status, _)) if status == want => Ok(()),
        Ok((status, body)) => Err(format!(
            "HTTP {status} {}",
            body.chars().take(120).collect::<String>()
        )),
        Err(error) => Err(format!("{error:#}")),
    }
}

pub(super) fn expect_code<T>(result: Result<T, tonic::Status>, want: Code) -> Result<(), String> {
    match result {
        Err(status) if status.code() == want => Ok(()),
        Err(status) => Err(describe(&status)),
        Ok(_) => Err("answered OK".to_owned()),
    }
}

/// A call of `path` (a method no server has) on `channel`, without a token.
pub(super) async fn unknown_method(channel: Channel, path: &str) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| tonic::Status::unknown(error.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(path)
        .map_err(|error| tonic::Status::internal(error.to_string()))?;
    let codec = tonic_prost::ProstCodec::<v1::ListModelsRequest, v1::ListModelsResponse>::default();
    let mut request = tonic::Request::new(v1::ListModelsRequest {});
    request.set_timeout(CALL_TIMEOUT);
    grpc.unary(request, path, codec).await.map(|_| ())
}
