#!/usr/bin/env bash
# Measures what docs/performance.md reports for the deployable binaries:
# cold start (process start to the first `healthcheck` that exits 0, models
# loaded), idle RSS, and peak RSS under load, for the static binaries that
# deploy/build-images.sh builds (target/static). Loopback ports only; every
# process it starts it stops.
#
#   deploy/build-images.sh && deploy/measure.sh
#   RUNS=15 deploy/measure.sh            # cold starts per service (default 9)
#   TRIAD_BIN=target/release/triad       # the load generator (triad synth + backfill)
#
# Under load: the synthetic data set (500 requests, 9 704 pairs) replayed
# through the scorer by `triad backfill --concurrency 16`, so preprocess,
# the scorer and the monitor (receiving every outcome) all work at once;
# the figure is each process's peak RSS (VmHWM).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${TRIAD_STATIC_TARGET_DIR:-$ROOT/target/static}/x86_64-unknown-linux-gnu/release"
TRIAD="${TRIAD_BIN:-$ROOT/target/release/triad}"
[[ -x "$TRIAD" || -n "${TRIAD_BIN:-}" ]] || TRIAD="$ROOT/target/debug/triad"
RUNS="${RUNS:-9}"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for b in triad-preprocess triad-score triad-monitor; do
    [[ -x "$BIN/$b" ]] || { echo "missing $BIN/$b: run deploy/build-images.sh" >&2; exit 1; }
done
[[ -x "$TRIAD" ]] || { echo "missing $TRIAD: cargo build --release --bin triad" >&2; exit 1; }

export RUST_LOG=warn
# As the images set it (deploy/docker/*.Dockerfile).
export MIMALLOC_ARENA_EAGER_COMMIT=0
export TRIAD_PREPROCESS_ADDR=127.0.0.1:51051 TRIAD_PREPROCESS_HTTP_ADDR=127.0.0.1:51082
export TRIAD_MONITOR_ADDR=127.0.0.1:51053 TRIAD_MONITOR_HTTP_ADDR=127.0.0.1:51081
export TRIAD_MONITOR_DATABASE_URL="sqlite://$WORK/monitor.db" TRIAD_MODELS_DIR="$ROOT/models"
export TRIAD_SCORE_ADDR=127.0.0.1:51052 TRIAD_SCORE_HTTP_ADDR=127.0.0.1:51080
export TRIAD_PREPROCESS_URL=http://127.0.0.1:51051 TRIAD_MONITOR_URL=http://127.0.0.1:51053
export TRIAD_SCORE_SPOOL_DIR="$WORK/spool"

now_ns() { date +%s%N; }
rss_kib() { awk '/^'"$2"':/ {print $2}' "/proc/$1/status"; }

# start NAME: starts $BIN/NAME in the background, waits for its first
# successful healthcheck; prints "pid milliseconds".
start() {
    local name=$1 t0 pid
    t0=$(now_ns)
    "$BIN/$name" >"$WORK/$name.log" 2>&1 &
    pid=$!
    until "$BIN/$name" healthcheck >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { echo "$name exited:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
    done
    echo "$pid $(( ($(now_ns) - t0) / 1000 ))"
}

median() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.1f (max %.1f)", m/1000, a[NR]/1000}'; }

echo "cold start: process start to first healthy healthcheck, $RUNS runs each"
declare -A COLD
for name in triad-preprocess triad-monitor triad-score; do
    times=()
    for _ in $(seq "$RUNS"); do
        read -r pid us < <(start "$name")
        times+=("$us")
        kill "$pid"; wait "$pid" 2>/dev/null || true
    done
    COLD[$name]=$(printf '%s\n' "${times[@]}" | median)
done

# The whole chain, for idle and loaded memory.
for name in triad-preprocess triad-monitor triad-score; do
    read -r pid _ < <(start "$name")
    PIDS+=("$pid")
    declare "PID_${name//-/_}=$pid"
done
sleep 2   # idle: let start-up allocations settle
declare -A IDLE LOADED
for name in triad-preprocess triad-monitor triad-score; do
    var="PID_${name//-/_}"
    IDLE[$name]=$(rss_kib "${!var}" VmRSS)
done

"$TRIAD" synth --out "$WORK/synth" >/dev/null
t0=$(now_ns)
"$TRIAD" backfill "$WORK/synth/requests.jsonl" --times "$WORK/synth/labels.csv" \
    --scorer http://127.0.0.1:51052 --concurrency 16 >/dev/null 2>&1
load_ms=$(( ($(now_ns) - t0) / 1000000 ))
sleep 1   # the last outcome batches reach the monitor
for name in triad-preprocess triad-monitor triad-score; do
    var="PID_${name//-/_}"
    LOADED[$name]=$(rss_kib "${!var}" VmHWM)
done

printf '\n%-18s %10s %28s %12s %22s\n' service image "cold start ms, median (max)" "idle RSS" "peak RSS under load"
for name in triad-preprocess triad-score triad-monitor; do
    size=$(docker image inspect -f '{{.Size}}' "$name:local" 2>/dev/null || echo 0)
    printf '%-18s %7.1f MB %28s %8.1f MiB %18.1f MiB\n' "$name" "$(echo "$size / 1000000" | bc -l)" \
        "${COLD[$name]}" "$(echo "${IDLE[$name]} / 1024" | bc -l)" "$(echo "${LOADED[$name]} / 1024" | bc -l)"
done
echo "load: 500 requests (9 704 pairs) in $load_ms ms through triad backfill --concurrency 16"
