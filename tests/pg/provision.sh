#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL cluster for the tests.
#
#   eval "$(bash tests/pg/provision.sh)"      # exports TAXIWAY_TEST_POSTGRES_URL
#   bash tests/pg/stop.sh                      # stops it again
#
# Idempotent:
#   - installs the Debian `postgresql` package when `initdb`/`pg_ctl` are missing
#     (also looked for in /usr/lib/postgresql/*/bin), with sudo only when not root;
#   - `initdb` in $TAXIWAY_CACHE/pg/<name> (trust authentication on loopback only);
#   - picks a free loopback port and starts it with `pg_ctl start -w`, or reuses the
#     cluster when its postmaster.pid names a live process;
#   - PostgreSQL refuses to run as root: when the caller is root the cluster runs as
#     the `postgres` OS user (created by the package; a `taxiway-pg` user is created
#     when it does not exist) and the data directory belongs to it.
#
# stdout: `export NAME=value` lines only (TAXIWAY_TEST_POSTGRES_URL, TAXIWAY_PG_BIN,
# TAXIWAY_PG_DATA, and TAXIWAY_TEST_POSTGRES_CA when the cluster serves TLS with a test
# CA made here by openssl); progress goes to stderr.
#
# Environment:
#   TAXIWAY_CACHE     cache root (default ~/.cache/taxiway)
#   TAXIWAY_PG_NAME   cluster name (default `test`); several names = several clusters
#   TAXIWAY_PG_SETTINGS  extra server settings as space-separated name=value pairs
#                     (e.g. "shared_buffers=2GB wal_compression=lz4"), applied when
#                     the cluster starts (a running cluster is reused as it is)
set -euo pipefail

CACHE=${TAXIWAY_CACHE:-$HOME/.cache/taxiway}
NAME=${TAXIWAY_PG_NAME:-test}
ROOT=$CACHE/pg/$NAME
DATA=$ROOT/data

log() { printf '[pg-provision %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

find_bin_dir() {
  local d
  # Debian's versioned directories first (newest major), then PATH; PATH entries are
  # often symlinks, so resolve them (pg_isready must come from the same directory).
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
      echo "$d"
      return 0
    fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  return 1
}

as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi
}

BIN=$(find_bin_dir || true)
if [[ -z $BIN ]]; then
  log "PostgreSQL not found; installing the Debian package"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >&2
  BIN=$(find_bin_dir) || die "postgresql installed but initdb/pg_ctl not found"
fi
log "using $BIN"

# Who runs the cluster.
RUN_AS=()
OWNER=$(id -un)
if [[ $(id -u) == 0 ]]; then
  OWNER=postgres
  if ! getent passwd "$OWNER" >/dev/null; then
    OWNER=taxiway-pg
    getent passwd "$OWNER" >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin "$OWNER"
  fi
  RUN_AS=(runuser -u "$OWNER" --)
fi
run() { "${RUN_AS[@]}" "$@"; }

mkdir -p "$ROOT"
if [[ $(id -u) == 0 ]]; then
  chown "$OWNER" "$ROOT"
  # The owner must be able to reach the directory through its parents.
  d=$ROOT
  while d=$(dirname "$d"); [[ $d != / ]]; do
    if ! runuser -u "$OWNER" -- test -x "$d"; then chmod o+x "$d"; fi
  done
fi

if [[ ! -s $DATA/PG_VERSION ]]; then
  log "initdb in $DATA"
  rm -rf "$DATA"
  run "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2 \
    || run "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >&2
  cat >"$DATA/pg_hba.conf" <<'EOF'
# Throwaway test cluster: trust on loopback only.
local   all all                trust
host    all all 127.0.0.1/32   trust
host    all all ::1/128        trust
EOF
  [[ $(id -u) == 0 ]] && chown "$OWNER" "$DATA/pg_hba.conf"
fi

# TLS: a throwaway CA and a server certificate for 127.0.0.1 / localhost, so the
# tests can check `tls = "require"` and `"verify-full"` (plain connections still work).
TLS_DIR=$ROOT/tls
SSL_OPTS=""
if command -v openssl >/dev/null 2>&1; then
  if [[ ! -s $TLS_DIR/server.crt ]]; then
    log "making a test CA and server certificate in $TLS_DIR"
    mkdir -p "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=taxiway test CA" \
      -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
      >"$TLS_DIR/server.ext"
    openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
      -CAcreateserial -days 3650 -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.crt" >/dev/null 2>&1
  fi
  chmod 600 "$TLS_DIR/server.key"
  if [[ $(id -u) == 0 ]]; then chown -R "$OWNER" "$TLS_DIR"; fi
  SSL_OPTS="-c ssl=on -c ssl_cert_file=$TLS_DIR/server.crt -c ssl_key_file=$TLS_DIR/server.key"
fi

# Extra settings: each name=value becomes a `-c` after the defaults (the last wins).
EXTRA_OPTS=""
for setting in ${TAXIWAY_PG_SETTINGS:-}; do
  [[ $setting =~ ^[a-z_]+=[A-Za-z0-9._]+$ ]] \
    || die "TAXIWAY_PG_SETTINGS: '$setting' is not name=value (letters, digits, . and _)"
  EXTRA_OPTS+=" -c $setting"
done

alive() {
  local pid
  [[ -f $DATA/postmaster.pid ]] || return 1
  pid=$(head -n1 "$DATA/postmaster.pid")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

free_port() {
  python3 - <<'EOF' 2>/dev/null || echo $(( 20000 + RANDOM % 20000 ))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

if alive; then
  # Line 4 of postmaster.pid is the port.
  PORT=$(sed -n 4p "$DATA/postmaster.pid")
  log "reusing the running cluster on port $PORT"
else
  rm -f "$DATA/postmaster.pid"
  # The port of the previous run when it is still free (URLs stay valid across restarts).
  PORT=$(cat "$ROOT/port" 2>/dev/null || true)
  if [[ -z $PORT ]] || (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    PORT=$(free_port)
  fi
  log "starting on 127.0.0.1:$PORT"
  run "$BIN/pg_ctl" -D "$DATA" -l "$ROOT/server.log" -w -t 60 \
    -o "-p $PORT -c listen_addresses=127.0.0.1 -k $ROOT -c max_connections=300 -c shared_buffers=64MB$EXTRA_OPTS $SSL_OPTS" \
    start >&2 || { tail -n 30 "$ROOT/server.log" >&2 || true; die "pg_ctl start failed"; }
fi
echo "$PORT" >"$ROOT/port"

URL="postgres://postgres@127.0.0.1:$PORT/postgres"
ready() {
  if [[ -x $BIN/pg_isready ]]; then
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
  fi
}
for _ in $(seq 1 50); do
  if ready; then break; fi
  sleep 0.2
done
ready || die "the cluster does not accept connections on port $PORT"

echo "export TAXIWAY_TEST_POSTGRES_URL=$URL"
echo "export TAXIWAY_PG_BIN=$BIN"
echo "export TAXIWAY_PG_DATA=$DATA"
# The CA of the server certificate, when the running cluster serves TLS.
if grep -q 'ssl=on' "$DATA/postmaster.opts" 2>/dev/null && [[ -s $TLS_DIR/ca.crt ]]; then
  echo "export TAXIWAY_TEST_POSTGRES_CA=$TLS_DIR/ca.crt"
fi
