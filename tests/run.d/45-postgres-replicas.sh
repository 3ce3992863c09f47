#!/usr/bin/env bash
# Three server replicas on one PostgreSQL database (tests/reliability/replicas_test.py):
# write on one and read on another, `next` across replicas, concurrent writers and
# incremental pollers, SIGKILL mid-ingest, a query change rebuilt once (also when the
# rebuilding replica is killed), and a database outage (on a dedicated cluster) answered
# with 503s and recovered from.
# PostgreSQL comes from tests/pg/provision.sh; this creates a fresh database for the
# run and drops it afterwards. Needs an already built binary (run-all.sh builds it).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
eval "$(bash "$repo/tests/pg/provision.sh")"
: "${TAXIWAY_TEST_POSTGRES_URL:?tests/pg/provision.sh did not export TAXIWAY_TEST_POSTGRES_URL}"

psql=psql
[[ -x "${TAXIWAY_PG_BIN:-}/psql" ]] && psql="$TAXIWAY_PG_BIN/psql"

db="taxiway_replicas_$(date +%s)_$$"
"$psql" -X -q -v ON_ERROR_STOP=1 "$TAXIWAY_TEST_POSTGRES_URL" -c "CREATE DATABASE $db"
drop() {
    "$psql" -X -q "$TAXIWAY_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap drop EXIT
url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit((p.scheme, p.netloc, "/" + sys.argv[2], p.query, p.fragment)))' \
    "$TAXIWAY_TEST_POSTGRES_URL" "$db")"

REPLICAS_DATABASE_URL="$url" \
TAXIWAY_BIN="${TAXIWAY_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/taxiway-server}" \
    python3 "$repo/tests/reliability/replicas_test.py"
