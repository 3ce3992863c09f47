#!/usr/bin/env bash
# PostgreSQL on the host for the cluster end-to-end test (test 11: several server
# replicas on one database): reachable from pods at the node's docker0 address.
#
#   bash tests/k8s/host-postgres.sh up <node-ip> <pod-cidr>   # prints `export ...` lines
#   bash tests/k8s/host-postgres.sh down
#
# `up` provisions the `e2e` throwaway cluster with tests/pg/provision.sh (installing
# PostgreSQL from Debian when missing), restarts it listening on 127.0.0.1 and
# <node-ip>, lets <pod-cidr> in with a password (scram-sha-256) for one role, and
# creates a fresh role and database for this run. Exports TAXIWAY_E2E_PG_POD_URL (for
# pods) and TAXIWAY_E2E_PG_HOST_URL (for the test on the host).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export TAXIWAY_PG_NAME=e2e
log() { printf '[host-postgres %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

case ${1:-} in
up)
  node_ip=${2:?node ip}
  pod_cidr=${3:?pod cidr}
  eval "$(bash "$repo/tests/pg/provision.sh")"
  data=$TAXIWAY_PG_DATA
  bin=$TAXIWAY_PG_BIN
  root=$(dirname "$data")
  owner=$(stat -c %U "$data")
  as_owner=()
  [[ $(id -un) == "$owner" ]] || as_owner=(runuser -u "$owner" --)
  port=$(cat "$root/port")
  admin=$TAXIWAY_TEST_POSTGRES_URL
  rule="host all taxiway_e2e $pod_cidr scram-sha-256"
  if ! grep -qxF "$rule" "$data/pg_hba.conf"; then
    echo "$rule" >>"$data/pg_hba.conf"
  fi
  "${as_owner[@]}" "$bin/pg_ctl" -D "$data" -m fast -w stop >&2 || true
  "${as_owner[@]}" "$bin/pg_ctl" -D "$data" -l "$root/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1,$node_ip -k $root -c max_connections=300 -c password_encryption=scram-sha-256" \
    start >&2
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  "$bin/psql" -q -v ON_ERROR_STOP=1 "$admin" >&2 <<SQL
DROP DATABASE IF EXISTS taxiway_e2e WITH (FORCE);
DROP ROLE IF EXISTS taxiway_e2e;
CREATE ROLE taxiway_e2e LOGIN PASSWORD '$password';
CREATE DATABASE taxiway_e2e OWNER taxiway_e2e;
SQL
  log "PostgreSQL for pods on $node_ip:$port (database taxiway_e2e)"
  echo "export TAXIWAY_E2E_PG_POD_URL=postgres://taxiway_e2e:$password@$node_ip:$port/taxiway_e2e"
  echo "export TAXIWAY_E2E_PG_HOST_URL=postgres://taxiway_e2e:$password@127.0.0.1:$port/taxiway_e2e"
  ;;
down)
  bash "$repo/tests/pg/stop.sh" >&2 || true
  ;;
*)
  echo "usage: $0 up <node-ip> <pod-cidr> | down" >&2
  exit 2
  ;;
esac
