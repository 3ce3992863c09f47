#!/usr/bin/env bash
# Run the TAXII 2.1 interop test, then the compression interop test
# (test_compression.py: taxii2-client and curl, compressed and not) and the feeds test
# against medallion (test_feeds_medallion.py), against an
# already built taxiway-server binary.
#
#   cargo build -p taxiway-server && tests/interop/run.sh
#
# Environment (all optional): TAXIWAY_BIN (default target/debug/taxiway-server),
# TAXIWAY_CACHE (venv location), TAXII_USER / TAXII_PASSWORD, TAXII_CA,
# TAXIWAY_CREDENTIALS_DIR, TAXIWAY_TLS_DIR; see test_taxii21.py.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

venv="$("$here/setup-venv.sh")"
cd "$repo"
status=0
"$venv/bin/python" "$here/test_taxii21.py" "$@" || status=$?
"$venv/bin/python" "$here/test_compression.py" || status=$((status ? status : 1))
# Feeds: Taxiway pulling a collection of medallion (a third-party TAXII 2.1 server).
"$venv/bin/python" "$here/test_feeds_medallion.py" || status=$((status ? status : 1))
exit "$status"
