#!/usr/bin/env bash
# Run Taxiway standalone: build, load the sample STIX bundle into the `inbox`
# collection (idempotent: re-importing stores nothing twice), and serve TAXII 2.1 on
# http://127.0.0.1:${TAXIWAY_PORT:-9443}/taxii2/ with probes and metrics on :${TAXIWAY_ADMIN_PORT:-9090}.
#
#   bash examples/standalone/run.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
data="${TAXIWAY_DATA_DIR:-$repo/data}"
port="${TAXIWAY_PORT:-9443}"
admin="${TAXIWAY_ADMIN_PORT:-9090}"

cd "$repo"
cargo build --release -p taxiway-server
bin="$repo/target/release/taxiway-server"
"$bin" check-config --config-dir "$here/config"
"$bin" import --config-dir "$here/config" --data-dir "$data" --collection inbox "$here/sample-bundle.json"
cat <<MSG

Taxiway is serving the example collections. Try:
  curl -s http://127.0.0.1:$port/taxii2/ | python3 -m json.tool
  curl -s http://127.0.0.1:$port/feeds/collections/ | python3 -m json.tool
  curl -s 'http://127.0.0.1:$port/feeds/collections/1032cbac-1483-48ad-b107-b3b6a12c65ad/objects/?limit=5'
  curl -s http://127.0.0.1:$admin/metrics | grep taxiway_collection_entries
Stop with Ctrl-C.

MSG
exec "$bin" serve --config-dir "$here/config" --data-dir "$data" \
    --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin"
