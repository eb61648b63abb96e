//! The hostile calls of the mixed phase, and the answer each must get.

use super::*;

/// The hostile calls of the mixed phase, and the answer each must get.
#[derive(Debug, Clone, Copy)]
pub(super) enum Hostile {
    /// `occurred_at_ms` a day ahead: INVALID_ARGUMENT.
    FutureTime,
    /// `occurred_at_ms` in 1999: INVALID_ARGUMENT.
    AncientTime,
    /// `occurred_at_ms` = `i64::MAX`: INVALID_ARGUMENT.
    LastTime,
    /// Budgets `a`, `a/b` and items `b/c`, `c`: four pairs, four outcomes.
    CollidingIds,
    /// Ids with slashes, escapes, NUL, emoji, blank, 128 and 129 bytes:
    /// answered, the blank, NUL and 129-byte ones refused per item.
    OddIds,
    /// Two different requests with one `x-request-id`: two ids, both kept.
    ReusedRequestId,
    /// One model named 10 times: run once; 1 000 times: INVALID_ARGUMENT.
    RepeatedModel,
    /// A 1 kB `x-request-id`: answered, not kept as the correlation id.
    LongRequestId,
    /// 65 different model names: INVALID_ARGUMENT.
    TooManyModels,
    /// A 10 kB model name: refused, the message quoting a bounded part.
    LongModelName,
    /// `ScoreMatrix` with the right schema hash and `n_cols` 0, then 1:
    /// INVALID_ARGUMENT, never a panic.
    ShortMatrix,
    /// One budget with a 1 MB text field, over HTTP: answered, kept cut.
    LongField,
    /// One budget and 5 000 items: answered.
    ManyItems,
    /// A body without `budgets`: 400 naming it.
    MissingBudgets,
    /// A body without `all_user_expense_lineitems`: 400 naming it.
    MissingItems,
    /// Nulls, numbers, arrays and objects where strings belong: 200, the
    /// bad items reported.
    WrongTypes,
    /// Not JSON: 400.
    NotJson,
    /// A body announced at 5 MiB: 413 before it is read.
    TooLargeBody,
}

impl Hostile {
    pub(super) const ALL: [Self; 18] = [
        Self::FutureTime,
        Self::AncientTime,
        Self::LastTime,
        Self::CollidingIds,
        Self::OddIds,
        Self::ReusedRequestId,
        Self::RepeatedModel,
        Self::LongRequestId,
        Self::TooManyModels,
        Self::LongModelName,
        Self::ShortMatrix,
        Self::LongField,
        Self::ManyItems,
        Self::MissingBudgets,
        Self::MissingItems,
        Self::WrongTypes,
        Self::NotJson,
        Self::TooLargeBody,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::FutureTime => "hostile: occurred_at a day ahead",
            Self::AncientTime => "hostile: occurred_at in 1999",
            Self::LastTime => "hostile: occurred_at i64::MAX",
            Self::CollidingIds => "hostile: ids a, a/b x b/c, c",
            Self::OddIds => "hostile: odd ids",
            Self::ReusedRequestId => "hostile: one x-request-id, two requests",
            Self::RepeatedModel => "hostile: one model named 10 and 1 000 times",
            Self::LongRequestId => "hostile: 1 kB x-request-id",
            Self::TooManyModels => "hostile: 65 model names",
            Self::LongModelName => "hostile: 10 kB model name",
            Self::ShortMatrix => "hostile: ScoreMatrix n_cols 0 and 1",
            Self::LongField => "hostile: 1 MB text field (HTTP)",
            Self::ManyItems => "hostile: 5 000 items",
            Self::MissingBudgets => "hostile: no budgets key (HTTP)",
            Self::MissingItems => "hostile: no line items key (HTTP)",
            Self::WrongTypes => "hostile: wrong JSON types (HTTP)",
            Self::NotJson => "hostile: not JSON (HTTP)",
            Self::TooLargeBody => "hostile: 5 MiB body (HTTP)",
        }
    }

    pub(super) async fn run(self, ctx: &Ctx, n: usize) -> Result<(), String> {
        let template = &ctx.pool[n % ctx.pool.len()];
        let one_pair = || RawRequest {
            budgets: vec![template_budget(ctx, 0)],
            all_user_expense_lineitems: vec![template_item(ctx, 0)],
        };
        let at = |occurred_at_ms: i64| {
            let mut request = score_request(&one_pair(), &[MODEL]);
            request.occurred_at_ms = occurred_at_ms;
            request
        };
        let scored =
            |result: Result<v1::ScoreResponse, tonic::Status>, rows: Option<usize>| match result {
                Ok(response) if rows.is_none_or(|rows| response.keys.len() == rows) => Ok(response),
                Ok(response) => Err(format!("{} rows, not {rows:?}", response.keys.len())),
                Err(status) => Err(describe(&status)),
            };
        match self {
            Self::FutureTime => expect_code(
                ctx.score(at(triad_proto::time::now_ms() + 86_400_000), None)
                    .await,
                Code::InvalidArgument,
            ),
            Self::AncientTime => expect_code(
                ctx.score(at(946_684_799_000), None).await,
                Code::InvalidArgument,
            ),
            Self::LastTime => {
                expect_code(ctx.score(at(i64::MAX), None).await, Code::InvalidArgument)
            }
            Self::CollidingIds => {
                let mut request = RawRequest {
                    budgets: vec![template_budget(ctx, 0), template_budget(ctx, 1)],
                    all_user_expense_lineitems: vec![template_item(ctx, 0), template_item(ctx, 1)],
                };
                request.budgets[0].budget_id = Some("a".into());
                request.budgets[1].budget_id = Some("a/b".into());
                request.all_user_expense_lineitems[0].itemization_id = Some("b/c".into());
                request.all_user_expense_lineitems[1].itemization_id = Some("c".into());
                let caller = format!("{MARK}-collide");
                scored(
                    ctx.score(score_request(&request, &[MODEL]), Some(&caller))
                        .await,
                    Some(4),
                )
                .map(|_| ())
            }
            Self::OddIds => {
                let ids = [
                    "a/b".to_owned(),
                    "a%2Fb".to_owned(),
                    "../../etc/passwd".to_owned(),
                    "nul\0inside".to_owned(),
                    "🙂 é".to_owned(),
                    " ".to_owned(),
                    "x".repeat(128),
                    "y".repeat(129),
                ];
                let request = RawRequest {
                    budgets: ids
                        .iter()
                        .enumerate()
                        .map(|(i, id)| RawBudget {
                            budget_id: Some(id.clone()),
                            ..template_budget(ctx, i)
                        })
                        .collect(),
                    all_user_expense_lineitems: ids
                        .iter()
                        .enumerate()
                        .map(|(i, id)| RawLineItem {
                            itemization_id: Some(id.clone()),
                            ..template_item(ctx, i)
                        })
                        .collect(),
                };
                // Refused per item: the blank, NUL and 129-byte ids (the
                // monitor could not store a NUL): 5 x 5 pairs.
                scored(
                    ctx.score(score_request(&request, &[MODEL, SECOND_MODEL]), None)
                        .await,
                    Some(25),
                )
                .map(|_| ())
            }
            Self::ReusedRequestId => {
                let caller = format!("{MARK}-reused");
                let first = scored(
                    ctx.score(score_request(template, &[MODEL]), Some(&caller))
                        .await,
                    None,
                )?;
                let second = scored(
                    ctx.score(score_request(&one_pair(), &[MODEL]), Some(&caller))
                        .await,
                    None,
                )?;
                if first.request_id == second.request_id {
                    return Err(format!("both answered as request {}", first.request_id));
                }
                Ok(())
            }
            Self::RepeatedModel => {
                let mut request = score_request(&one_pair(), &[MODEL]);
                request.models = vec![MODEL.to_owned(); 10];
                let response = scored(ctx.score(request.clone(), None).await, Some(1))?;
                if response.results.len() != 1 {
                    return Err(format!("{} results", response.results.len()));
                }
                request.models = vec![MODEL.to_owned(); 1000];
                expect_code(ctx.score(request, None).await, Code::InvalidArgument)
            }
            Self::LongRequestId => {
                let caller = format!("{MARK}{}", "r".repeat(1000));
                let response = scored(
                    ctx.score(score_request(&one_pair(), &[MODEL]), Some(&caller))
                        .await,
                    Some(1),
                )?;
                if response.correlation_id.len() > 128 {
                    return Err(format!(
                        "kept a {} byte correlation id",
                        response.correlation_id.len()
                    ));
                }
                Ok(())
            }
            Self::TooManyModels => {
                let mut request = score_request(&one_pair(), &[MODEL]);
                request.models = (0..65).map(|i| format!("{MARK}{i}")).collect();
                expect_code(ctx.score(request, None).await, Code::InvalidArgument)
            }
            Self::LongModelName => {
                let mut request = score_request(&one_pair(), &[MODEL]);
                request.models = vec![format!("{MARK}{}", "m".repeat(10_000))];
                match ctx.score(request, None).await {
                    Err(status) if status.message().len() > 512 => {
                        Err(format!("a {} byte message", status.message().len()))
                    }
                    Err(status)
                        if matches!(status.code(), Code::NotFound | Code::InvalidArgument) =>
                    {
                        Ok(())
                    }
                    other => expect_code(other, Code::NotFound),
                }
            }
            Self::ShortMatrix => {
                let schema = triad_features::FeatureSchema::current();
                for n_cols in [0, 1] {
                    let matrix = v1::FeatureMatrix {
                        schema: Some(v1::FeatureSchema {
                            name: schema.name.clone(),
                            version: schema.version.clone(),
                            feature_names: schema.feature_names.clone(),
                            hash: schema.hash.clone(),
                        }),
                        n_rows: 1,
                        n_cols,
                        values: vec![0.5; n_cols as usize],
                        keys: vec![v1::PairKey {
                            budget_id: "b".into(),
                            itemization_id: "i".into(),
                        }],
                        ..v1::FeatureMatrix::default()
                    };
                    let call = grpc_call(
                        v1::ScoreMatrixRequest {
                            matrix: Some(matrix),
                            models: vec![MODEL.to_owned()],
                            ..v1::ScoreMatrixRequest::default()
                        },
                        Some(&ctx.token),
                        None,
                    );
                    expect_code(
                        ctx.scorer.clone().score_matrix(call).await,
                        Code::InvalidArgument,
                    )?;
                }
                Ok(())
            }
            Self::LongField => {
                let mut request = one_pair();
                request.budgets[0].travel_vendor_receipts = Some("r".repeat(1_000_000));
                let mut connection = HttpConnection::open(ctx.score_http)
                    .await
                    .map_err(|e| e.to_string())?;
                let correlation = format!("{MARK}-long-field");
                match ctx
                    .http_score(&mut connection, &seed_json(&request), &correlation)
                    .await
                {
                    Ok((200, 1)) => Ok(()),
                    Ok((status, outcomes)) => Err(format!("HTTP {status}, {outcomes} outcomes")),
                    Err(error) => Err(format!("{error:#}")),
                }
            }
            Self::ManyItems => {
                let request = RawRequest {
                    budgets: vec![template_budget(ctx, 0)],
                    all_user_expense_lineitems: (0..5000).map(|i| template_item(ctx, i)).collect(),
                };
                scored(
                    ctx.score(score_request(&request, &[MODEL]), None).await,
                    Some(5000),
                )
                .map(|_| ())
            }
            Self::MissingBudgets | Self::MissingItems | Self::WrongTypes | Self::NotJson => {
                let (body, want, names) = match self {
                    Self::MissingBudgets => (r#"{"all_user_expense_lineitems": []}"#.to_owned(), 400, "budgets"),
                    Self::MissingItems => (r#"{"budgets": []}"#.to_owned(), 400, "all_user_expense_lineitems"),
                    Self::WrongTypes => (
                        r#"{"budgets": [{"budget_id": "b", "budget_price_budget": null, "travel_vendor_receipts": ["x"]},
                            {"budget_id": 7, "actual_cost_budget": {"a": 1}}],
                           "all_user_expense_lineitems": [{"itemization_id": null}, {"itemization_id": "i",
                            "expensed_amount_itemization": true}]}"#
                            .to_owned(),
                        200,
                        "",
                    ),
                    _ => ("{\"budgets\": [".to_owned(), 400, ""),
                };
                let auth = format!("Bearer {}", ctx.token);
                let correlation = format!("{MARK}-bad-body");
                let headers = [
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                    (triad_telemetry::REQUEST_ID_HEADER, correlation.as_str()),
                ];
                let result = if want == 200 {
                    // Answered: its outcomes go in the ledger.
                    let mut connection = HttpConnection::open(ctx.score_http)
                        .await
                        .map_err(|e| e.to_string())?;
                    ctx.http_score(&mut connection, body.as_bytes(), &correlation)
                        .await
                        .map(|(status, _)| (status, String::new()))
                } else {
                    http_status(ctx.score_http, "POST", HTTP_PATH, &headers, body.as_bytes()).await
                };
                match result {
                    Ok((status, text)) if status == want && text.contains(names) => Ok(()),
                    other => expect_status(
                        other.map(|(s, t)| (s, format!("{t} (wanted {want} naming {names:?})"))),
                        want,
                    ),
                }
            }
            Self::TooLargeBody => {
                let auth = format!("Bearer {}", ctx.token);
                let result = async {
                    let mut stream = TcpStream::connect(ctx.score_http).await?;
                    let head = format!(
                        "POST {HTTP_PATH} HTTP/1.1\r\nhost: soak\r\nauthorization: {auth}\r\n\
                         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        5 << 20
                    );
                    stream.write_all(head.as_bytes()).await?;
                    let mut answer = vec![0; 12];
                    tokio::time::timeout(CALL_TIMEOUT, stream.read_exact(&mut answer)).await??;
                    anyhow::Ok(String::from_utf8_lossy(&answer).into_owned())
                }
                .await;
                match result {
                    Ok(line) if line == "HTTP/1.1 413" => Ok(()),
                    Ok(line) => Err(format!("answered {line:?}")),
                    Err(error) => Err(format!("{error:#}")),
                }
            }
        }
    }
}

/// A realistic budget (from the pool) with id `b<i>`.
pub(super) fn template_budget(ctx: &Ctx, i: usize) -> RawBudget {
    let budget = ctx
        .pool
        .iter()
        .flat_map(|r| &r.budgets)
        .nth(i % 64)
        .cloned()
        .unwrap_or_default();
    RawBudget {
        budget_id: Some(format!("b{i}")),
        ..budget
    }
}

/// A realistic line item (from the pool) with id `i<i>`.
pub(super) fn template_item(ctx: &Ctx, i: usize) -> RawLineItem {
    let item = ctx
        .pool
        .iter()
        .flat_map(|r| &r.all_user_expense_lineitems)
        .nth(i % 64)
        .cloned()
        .unwrap_or_default();
    RawLineItem {
        itemization_id: Some(format!("i{i}")),
        ..item
    }
}
