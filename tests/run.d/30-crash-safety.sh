#!/usr/bin/env bash
# SIGKILL during concurrent ingest, repeatedly: nothing acknowledged is lost or duplicated.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TAXIWAY_BIN="${TAXIWAY_BIN:-$repo/target/debug/taxiway-server}" python3 "$repo/tests/reliability/crash_test.py"
