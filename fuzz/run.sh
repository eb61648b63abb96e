#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, on the stable toolchain.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGETs default to all of them. Builds
# with `cargo fuzz build --sanitizer none` (libFuzzer with SanitizerCoverage
# through stable `-C passes=sancov-module` / `-C llvm-args`; no -Z flag, no
# RUSTC_BOOTSTRAP), writes the seed corpora from tests/fixtures/ into
# fuzz/corpus/<target>/, then runs each target, leaving its log in
# fuzz/logs/<target>.log and any crash in fuzz/artifacts/<target>/.
# Exits non-zero if any target crashed. docs/fuzzing.md says more.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(json_request proto_request records oip_infer)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (from crates.io, built from source)"
    cargo install cargo-fuzz --locked --version 0.13.2
fi

cargo run --quiet --manifest-path fuzz/Cargo.toml -p triad-fuzz-seeds -- tests/fixtures fuzz/corpus
cargo fuzz build --sanitizer none --fuzz-dir fuzz

mkdir -p fuzz/logs
failed=()
for target in "${targets[@]}"; do
    echo "=== $target: ${seconds}s ==="
    mkdir -p "fuzz/corpus/$target"
    # -rss_limit_mb: an input needing 2 GiB is a finding (OOM), not a pass.
    # -timeout: one input taking 10 s is a finding (hang).
    if cargo fuzz run --sanitizer none --fuzz-dir fuzz "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
        -print_final_stats=1 >"fuzz/logs/$target.log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
            "fuzz/logs/$target.log" || true
        grep -E '#[0-9]+\s+DONE' "fuzz/logs/$target.log" | tail -1 || true
    else
        echo "$target FAILED: see fuzz/logs/$target.log and fuzz/artifacts/$target/"
        tail -n 30 "fuzz/logs/$target.log"
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]}"
    exit 1
fi
echo "every target ran ${seconds}s without a crash"
