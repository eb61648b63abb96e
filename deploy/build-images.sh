#!/usr/bin/env bash
# Builds the three Triad service images FROM scratch, offline.
#
#   deploy/build-images.sh            # build binaries + images (tag :local)
#   TAG=dev deploy/build-images.sh    # another tag
#   SKIP_CARGO=1 deploy/build-images.sh   # reuse binaries already in target/static
#
# The binaries are linked statically (glibc, -C target-feature=+crt-static)
# into target/static, so the normal target/ build is left untouched. Each
# image's build context is a small staging directory (target/static/images/<svc>),
# never the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TARGET=x86_64-unknown-linux-gnu
TARGET_DIR="${TRIAD_STATIC_TARGET_DIR:-$ROOT/target/static}"
TAG="${TAG:-local}"
SERVICES=(triad-preprocess triad-score triad-monitor)

if [[ -z "${SKIP_CARGO:-}" ]]; then
    echo "==> cargo build (static, release, fat LTO) into $TARGET_DIR"
    # Fat LTO and one codegen unit (set here, not in Cargo.toml, so day-to-day
    # release builds stay fast): 32.0 -> 28.6 MB off the scorer's stripped binary,
    # which is mostly tract's generic ONNX code. Crates off the request's hot
    # path are optimized for size: telemetry export at "s"; tract (load-time
    # graph analysis; the shipped tree model runs Triad's own kernel),
    # command-line parsing, configuration, log filtering and TLS handshakes
    # at "z" (ONNX rows/s in docs/performance.md). No debug info: it is
    # stripped anyway.
    size_opt=()
    for crate in opentelemetry opentelemetry_sdk opentelemetry-otlp opentelemetry-proto tracing-opentelemetry ring; do
        size_opt+=(--config "profile.release.package.$crate.opt-level=\"s\"")
    done
    for crate in tract-core tract-data tract-extra tract-hir tract-linalg tract-nnef tract-onnx tract-onnx-opl \
        clap_builder regex-automata regex-syntax rustls rustls-webpki winnow toml toml_parser tracing-subscriber; do
        size_opt+=(--config "profile.release.package.$crate.opt-level=\"z\"")
    done
    CARGO_PROFILE_RELEASE_LTO="${CARGO_PROFILE_RELEASE_LTO:-fat}" \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS="${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-1}" \
    CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-0}" \
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked --target "$TARGET" --target-dir "$TARGET_DIR" "${size_opt[@]}" \
        -p triad-preprocess -p triad-score -p triad-monitor
fi

BIN_DIR="$TARGET_DIR/$TARGET/release"
STAGE="$TARGET_DIR/images"
rm -rf "$STAGE"
mkdir -p "$STAGE"

for svc in "${SERVICES[@]}"; do
    ctx="$STAGE/$svc"
    mkdir -p "$ctx"
    cp "$BIN_DIR/$svc" "$ctx/$svc"
    strip "$ctx/$svc"
    # ldd says "not a dynamic executable" (static) or "statically linked"
    # (static-pie, what rustc makes with crt-static on gnu).
    if ldd "$ctx/$svc" 2>&1 | grep -Eq 'not a dynamic executable|statically linked'; then :; else
        echo "error: $svc is dynamically linked:" >&2
        ldd "$ctx/$svc" >&2 || true
        exit 1
    fi
    cp "deploy/docker/$svc.Dockerfile" "$ctx/Dockerfile"
done

# The model repository, minus training scripts, caches and timing notes.
# Both the scorer (models) and the monitor (reference profiles) read it.
stage_models() {
    local dest="$1/models"
    mkdir -p "$dest"
    (cd models && find . -type f \
        ! -name '*.py' ! -name '*.pyc' ! -name '*timing*.json' \
        ! -name 'requirements.txt' ! -path '*/__pycache__/*' -print0 |
        while IFS= read -r -d '' f; do
            mkdir -p "$dest/$(dirname "$f")"
            cp "$f" "$dest/$f"
        done)
}
stage_models "$STAGE/triad-score"
stage_models "$STAGE/triad-monitor"

# A scratch image has no mkdir: the monitor's writable data directory is an
# empty directory in the context, COPY'd with --chown=65532:65532.
mkdir -p "$STAGE/triad-monitor/data" "$STAGE/triad-score/data"
# /tmp for anything that wants a temp dir (SQLite may).
for svc in "${SERVICES[@]}"; do mkdir -p "$STAGE/$svc/tmp"; chmod 1777 "$STAGE/$svc/tmp"; done

for svc in "${SERVICES[@]}"; do
    echo "==> docker build $svc:$TAG ($(du -sh "$STAGE/$svc" | cut -f1) context)"
    docker build -q -t "$svc:$TAG" "$STAGE/$svc" >/dev/null
done

echo "==> image sizes"
for svc in "${SERVICES[@]}"; do
    bytes=$(docker image inspect -f '{{.Size}}' "$svc:$TAG")
    printf '%-18s %6.1f MB  (%s bytes)\n' "$svc:$TAG" "$(echo "$bytes" | awk '{print $1/1000000}')" "$bytes"
done
