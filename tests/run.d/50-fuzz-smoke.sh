#!/usr/bin/env bash
# Fuzz smoke run: every libFuzzer target in server/fuzz/ for a few seconds each.
# Any crash, panic, failed check, timeout or out-of-memory fails the test command.
# Longer runs, crash triage and regression tests: docs/fuzzing.md.
#
#   bash tests/run.d/50-fuzz-smoke.sh                  # all targets, 15 s each
#   FUZZ_SECONDS=60 bash tests/run.d/50-fuzz-smoke.sh fuzz_query fuzz_pattern
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address); the machine has
# only a stable toolchain, so RUSTC_BOOTSTRAP=1 unlocks them. FUZZ_SANITIZER=none
# builds without AddressSanitizer. The build is cached outside
# the repository under ${TAXIWAY_CACHE:-~/.cache/taxiway}/fuzz-target.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${TAXIWAY_CACHE:-$HOME/.cache/taxiway}"
fuzz_dir="$repo/server/fuzz"
seconds="${FUZZ_SECONDS:-15}"
sanitizer="${FUZZ_SANITIZER:-address}"

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$cache/fuzz-target"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (once; takes a few minutes)"
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version

all_targets=(fuzz_query fuzz_pattern fuzz_params_cursor fuzz_envelope fuzz_config fuzz_media)
targets=("${@:-${all_targets[@]}}")

# Dictionaries for targets whose inputs are a language with keywords.
dict_for() {
    case "$1" in
        fuzz_query) echo "$fuzz_dir/query.dict" ;;
        fuzz_pattern) echo "$fuzz_dir/pattern.dict" ;;
        fuzz_config) echo "$fuzz_dir/config.dict" ;;
        fuzz_media) echo "$fuzz_dir/media.dict" ;;
    esac
}

cd "$repo/server"
build_started=$(date +%s)
cargo fuzz build --fuzz-dir "$fuzz_dir" -s "$sanitizer"
echo "fuzz targets built in $(( $(date +%s) - build_started ))s"

passed=0
failed=0
for target in "${targets[@]}"; do
    # New inputs go to a scratch corpus in the cache (kept between runs, so coverage
    # grows); the committed seeds (and past crash inputs) are read-only here.
    scratch="$cache/fuzz-corpus/$target"
    mkdir -p "$scratch" "$fuzz_dir/artifacts/$target"
    args=(
        -max_total_time="$seconds"
        -rss_limit_mb=2048
        -timeout=10
        -max_len=65536
        -print_final_stats=1
    )
    dict="$(dict_for "$target")"
    if [[ -n "$dict" ]]; then args+=(-dict="$dict"); fi
    log="$cache/fuzz-logs/$target.log"
    mkdir -p "$(dirname "$log")"
    echo "--- $target: ${seconds}s"
    if cargo fuzz run --fuzz-dir "$fuzz_dir" -s "$sanitizer" "$target" \
        "$scratch" "$fuzz_dir/corpus/$target" -- "${args[@]}" >"$log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" | tail -n 2 || true
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $target (last lines of $log below; crash inputs in $fuzz_dir/artifacts/$target/)"
        tail -n 60 "$log"
    fi
done

echo "fuzz-smoke: $passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
