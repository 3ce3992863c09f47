#!/usr/bin/env bash
# Every test of the project, in the order a failure is cheapest to find:
# formatting and lints, Rust unit + in-process HTTP tests, then tests against real
# parts (the real binary with real TAXII clients from PyPI, a real kube-apiserver).
#
#   bash tests/run-all.sh
#
# It provisions what it needs (Python venv, Debian packages, kube-apiserver build,
# helm/kubectl) idempotently and caches heavy things under ${TAXIWAY_CACHE:-~/.cache/taxiway}.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

step() { printf '\n=== %s ===\n' "$*"; }
started=$(date +%s)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "PostgreSQL: a throwaway cluster for the store tests (tests/pg/provision.sh)"
# Exports TAXIWAY_TEST_POSTGRES_URL: the store suite then runs on both backends.
eval "$(bash tests/pg/provision.sh)"
export TAXIWAY_TEST_POSTGRES_URL

step "cargo test (unit, in-process HTTP, store on SQLite and PostgreSQL, reload)"
cargo test --workspace

step "interop: real taxii2-client / stix2 / stix2-validator against the real binary"
cargo build -p taxiway-server
export TAXIWAY_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/taxiway-server"
bash tests/interop/run.sh

for extra in tests/run.d/*.sh; do
    [[ -e "$extra" ]] || continue
    step "$(basename "$extra")"
    bash "$extra"
done

step "all tests passed in $(( $(date +%s) - started ))s"
