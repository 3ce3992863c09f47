#!/usr/bin/env bash
# A short soak: 45 s of mixed concurrent reads, writes and config reloads against the
# real binary on loopback; zero errors, memory and file descriptors stable.
# The full run (5 minutes; results in docs/operations.md):
#
#   SOAK_SECONDS=300 TAXIWAY_BIN=target/release/taxiway-server python3 tests/reliability/soak.py
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SOAK_SECONDS="${SOAK_SECONDS:-45}" \
TAXIWAY_BIN="${TAXIWAY_BIN:-$repo/target/debug/taxiway-server}" \
    python3 "$repo/tests/reliability/soak.py"
