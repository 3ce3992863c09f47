#!/usr/bin/env bash
# SIGTERM with a request in flight (it finishes, new connections are refused, the store
# is closed cleanly, exit 0), and `taxiway-server backup` under load restored into a
# working server. Needs an already built binary (run-all.sh builds it).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TAXIWAY_BIN="${TAXIWAY_BIN:-$repo/target/debug/taxiway-server}" python3 "$repo/tests/reliability/shutdown_test.py"
