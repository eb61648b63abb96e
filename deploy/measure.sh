#!/usr/bin/env bash
# Measures what docs/performance.md reports for the deployable images and
# binaries, and writes it there: each image's size, cold start (process
# start to the first `healthcheck` that exits 0, models loaded), idle RSS,
# and peak RSS under load, for the static binaries that
# deploy/build-images.sh builds (target/static) and the images it makes.
# Loopback ports only; every process it starts it stops.
#
#   deploy/build-images.sh && deploy/measure.sh
#   RUNS=15 deploy/measure.sh            # cold starts per service (default 9)
#   TRIAD_BIN=target/release/triad       # the load generator (triad synth + backfill)
#   deploy/measure.sh --check-sizes      # only compare the images' sizes with the table
#
# The table in docs/performance.md between the two marker lines below is
# this script's output, and the one place these figures are written (other
# documents point to it): measuring rewrites it, and `--check-sizes` fails
# when a built image's size is more than SIZE_TOLERANCE_PCT (default 10) %
# away from it, naming the image and both sizes. tests/compose/run.sh runs
# that check on the images it builds. An image's size moves only with the
# code, its dependencies or the build settings, never with machine load,
# so the tolerance is only there to let small changes through.
#
# Under load: the synthetic data set (500 requests, 9 704 pairs) replayed
# through the scorer by `triad backfill --concurrency 16`, so preprocess,
# the scorer and the monitor (receiving every outcome) all work at once;
# the figure is each process's peak RSS (VmHWM).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DOC="$ROOT/docs/performance.md"
BEGIN_MARK='<!-- begin: written by deploy/measure.sh; edit the script, not the table -->'
END_MARK='<!-- end: written by deploy/measure.sh -->'
TAG="${TAG:-local}"
SERVICES=(triad-preprocess triad-score triad-monitor)

# image_bytes NAME: the size Docker reports for the image NAME:$TAG, in bytes.
image_bytes() {
    docker image inspect -f '{{.Size}}' "$1:$TAG" 2>/dev/null ||
        { echo "missing image $1:$TAG: run deploy/build-images.sh" >&2; return 1; }
}

# documented_mb NAME: the image size of NAME in docs/performance.md's
# table, in MB (empty when the table has no row for it).
documented_mb() {
    awk -F'|' -v begin="$BEGIN_MARK" -v end="$END_MARK" -v name="\`$1\`" '
        $0 == begin { inside = 1; next }
        $0 == end { inside = 0 }
        inside { gsub(/^ +| +$/, "", $2); if ($2 == name) { split($3, size, " "); print size[1]; exit } }
    ' "$DOC"
}

# check_sizes: each image's size against docs/performance.md's table.
check_sizes() {
    local tolerance="${SIZE_TOLERANCE_PCT:-10}" failed=0 name bytes mb
    for name in "${SERVICES[@]}"; do
        bytes=$(image_bytes "$name") || return 1
        mb=$(documented_mb "$name")
        if [[ -z "$mb" ]]; then
            echo "docs/performance.md has no size for $name between its measure.sh markers" >&2
            failed=1
        elif awk -v bytes="$bytes" -v mb="$mb" -v pct="$tolerance" \
            'BEGIN { d = mb * 1e6; exit !((bytes - d) ^ 2 > (d * pct / 100) ^ 2) }'; then
            awk -v n="$name:$TAG" -v bytes="$bytes" -v mb="$mb" -v pct="$tolerance" 'BEGIN {
                printf "image %s is %.1f MB, docs/performance.md says %s MB: more than %s %% apart\n", n, bytes / 1e6, mb, pct }' >&2
            failed=1
        else
            awk -v n="$name:$TAG" -v bytes="$bytes" -v mb="$mb" -v pct="$tolerance" 'BEGIN {
                printf "image %s: %.1f MB, docs/performance.md %s MB (within %s %%)\n", n, bytes / 1e6, mb, pct }'
        fi
    done
    if ((failed)); then
        echo "image sizes differ from docs/performance.md: run deploy/build-images.sh && deploy/measure.sh and commit the table it writes" >&2
        return 1
    fi
}

case "${1:-}" in
    --check-sizes) check_sizes; exit ;;
    "") ;;
    *) echo "usage: deploy/measure.sh [--check-sizes]" >&2; exit 2 ;;
esac
grep -qxF "$BEGIN_MARK" "$DOC" && grep -qxF "$END_MARK" "$DOC" ||
    { echo "docs/performance.md lacks the marker lines of the table this script writes" >&2; exit 1; }

BIN="${TRIAD_STATIC_TARGET_DIR:-$ROOT/target/static}/x86_64-unknown-linux-gnu/release"
TRIAD="${TRIAD_BIN:-$ROOT/target/release/triad}"
[[ -x "$TRIAD" || -n "${TRIAD_BIN:-}" ]] || TRIAD="$ROOT/target/debug/triad"
RUNS="${RUNS:-9}"

declare -A SIZE
for name in "${SERVICES[@]}"; do
    [[ -x "$BIN/$name" ]] || { echo "missing $BIN/$name: run deploy/build-images.sh" >&2; exit 1; }
    SIZE[$name]=$(image_bytes "$name")
done
[[ -x "$TRIAD" ]] || { echo "missing $TRIAD: cargo build --release --bin triad" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

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
# successful healthcheck; prints "pid microseconds".
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

# median: of microseconds, one a line; prints "M ms (MAX)" in milliseconds.
median() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.1f ms (%.1f)", m/1000, a[NR]/1000}'; }

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

# The table docs/performance.md shows, between its markers.
{
    echo '| service | image | cold start, median (max) | idle RSS | peak RSS under load |'
    echo '|---|---|---|---|---|'
    for name in "${SERVICES[@]}"; do
        awk -v n="$name" -v size="${SIZE[$name]}" -v cold="${COLD[$name]}" \
            -v idle="${IDLE[$name]}" -v loaded="${LOADED[$name]}" 'BEGIN {
            printf "| `%s` | %.1f MB | %s | %.1f MiB | %.1f MiB |\n", n, size / 1e6, cold, idle / 1024, loaded / 1024 }'
    done
} >"$WORK/table.md"
echo
cat "$WORK/table.md"
echo "load: 500 requests (9 704 pairs) in $load_ms ms through triad backfill --concurrency 16"

awk -v begin="$BEGIN_MARK" -v end="$END_MARK" -v table="$WORK/table.md" '
    $0 == end { while ((getline line < table) > 0) print line; skip = 0 }
    !skip { print }
    $0 == begin { skip = 1 }
' "$DOC" >"$WORK/performance.md"
cat "$WORK/performance.md" >"$DOC"
echo "written to docs/performance.md (between its measure.sh markers)"
