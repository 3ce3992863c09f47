#!/usr/bin/env bash
# Stop the throwaway PostgreSQL cluster started by tests/pg/provision.sh (if running).
#
#   bash tests/pg/stop.sh            # stops it, keeps the data directory
#   bash tests/pg/stop.sh --purge    # stops it and deletes the data directory
#
# Environment: TAXIWAY_CACHE, TAXIWAY_PG_NAME as for provision.sh.
set -euo pipefail

CACHE=${TAXIWAY_CACHE:-$HOME/.cache/taxiway}
NAME=${TAXIWAY_PG_NAME:-test}
ROOT=$CACHE/pg/$NAME
DATA=$ROOT/data

log() { printf '[pg-stop] %s\n' "$*" >&2; }

BIN=""
if command -v pg_ctl >/dev/null 2>&1; then
  BIN=$(dirname "$(command -v pg_ctl)")
else
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    [[ -x $d/pg_ctl ]] && { BIN=$d; break; }
  done
fi

if [[ -f $DATA/postmaster.pid ]] && kill -0 "$(head -n1 "$DATA/postmaster.pid")" 2>/dev/null; then
  [[ -n $BIN ]] || { log "pg_ctl not found"; exit 1; }
  if [[ $(id -u) == 0 ]]; then
    owner=$(stat -c %U "$DATA")
    runuser -u "$owner" -- "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
  else
    "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
  fi
  log "stopped $DATA"
else
  log "not running ($DATA)"
fi

if [[ ${1:-} == --purge ]]; then
  rm -rf "$ROOT"
  log "removed $ROOT"
fi
