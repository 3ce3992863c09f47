#!/usr/bin/env bash
# End to end on a real single-node Kubernetes cluster (issue 10): the images built from
# the project's Dockerfile without a registry, `helm install` of charts/taxiway, the
# examples applied, real TAXII clients from the host, a pod and through Debian's nginx
# as an Ingress controller; hot reload through the kubelet; teardown that leaves nothing.
#
#   bash tests/run.d/60-e2e-cluster.sh
#
# Needs root (Docker, iptables). Provisions idempotently: Debian packages, the
# Kubernetes 1.20 binaries (built once, ~10 min, cached), the Python venv, the base
# image (debootstrap, cached). Warm: ~5 minutes. Always tears the cluster down; on a
# failure prints events, `describe` of what is not ready and the operator and server
# logs. Details: docs/kubernetes-e2e.md.
#
# Release binaries are built in ${CARGO_TARGET_DIR:-$TAXIWAY_CACHE/target-e2e}.
# Environment: TAXIWAY_E2E=0 skips it; TAXIWAY_E2E_KEEP=1 keeps the cluster up after the test (then
# `bash tests/k8s/cluster.sh down <workdir>`); TAXIWAY_CLUSTER_WAIT (s, default 1200)
# is how long to wait for another cluster on this machine to finish; TAXIWAY_E2E_TIMEOUT (s, default 600)
# bounds the test itself; TAXIWAY_IMAGE_TAG (default e2e). The test gets the host's
# taxiway-server of the same build as TAXIWAY_E2E_SERVER_BIN (test 12 restores with it).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
k8s=$repo/tests/k8s
cache=${TAXIWAY_CACHE:-$HOME/.cache/taxiway}
tag=${TAXIWAY_IMAGE_TAG:-e2e}

log() { printf '[60-e2e %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [[ ${TAXIWAY_E2E:-1} == 0 ]]; then
  log "skipped: TAXIWAY_E2E=0"
  exit 0
fi
for need in "$repo/charts/taxiway" "$repo/operator/Cargo.toml" "$repo/examples/k8s"; do
  if [[ ! -e $need ]]; then
    log "skipped: ${need#"$repo"/} is not in this checkout yet"
    exit 0
  fi
done
if [[ $EUID -ne 0 ]]; then
  log "skipped: needs root (Docker, iptables, mounts)"
  exit 0
fi

# Debian's nginx plays the Ingress controller (test 10). Its package would start a
# system nginx on port 80: a policy-rc.d keeps it from starting during the install.
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
  log "apt-get install nginx-light"
  added_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    added_policy=1
  fi
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light \
    >"$cache/nginx-apt.log" 2>&1 || { tail -n 20 "$cache/nginx-apt.log"; exit 1; }
  ((added_policy)) && rm -f /usr/sbin/policy-rc.d
fi

venv=$(bash "$repo/tests/interop/setup-venv.sh")
# One cluster per machine: queue behind another run (a developer's, or CI's) instead
# of failing at once.
export TAXIWAY_CLUSTER_WAIT=${TAXIWAY_CLUSTER_WAIT:-1200}
work=$(mktemp -d /tmp/taxiway-e2e.XXXXXX)
started=$SECONDS
rc=1
finish() {
  local status=$?
  if [[ $rc != 0 || $status != 0 ]]; then
    log "FAILED; debug information follows (workdir $work)"
    bash "$k8s/cluster.sh" debug "$work" taxiway-system threat-intel || true
  fi
  bash "$k8s/host-postgres.sh" down || true
  if [[ ${TAXIWAY_E2E_KEEP:-0} == 1 ]]; then
    log "cluster kept: KUBECONFIG=$work/kubeconfig; stop it with: bash tests/k8s/cluster.sh down $work"
  else
    bash "$k8s/cluster.sh" down "$work" || true
    [[ $rc == 0 ]] && rm -rf "$work"
  fi
  log "finished in $((SECONDS - started)) s"
}
trap finish EXIT

kubeconfig=$(bash "$k8s/cluster.sh" up "$work")
log "cluster up after $((SECONDS - started)) s"
# Release builds in a target directory that outlives the checkout: CI's fresh clones
# then rebuild only the workspace's own crates, not every dependency.
e2e_target=${CARGO_TARGET_DIR:-$cache/target-e2e}
CARGO_TARGET_DIR=$e2e_target bash "$k8s/images.sh" "$tag"
# The same server binary on the host: test 12 restores the pod's backup with it.
bin_dir=$e2e_target/release
[[ ${TAXIWAY_CARGO_PROFILE:-release} == release ]] || bin_dir=$e2e_target/debug
TAXIWAY_E2E_SERVER_BIN=${TAXIWAY_PREBUILT_DIR:-$bin_dir}/taxiway-server
log "images built after $((SECONDS - started)) s"

# shellcheck disable=SC1091
source "$cache/env.sh"
set -a
# shellcheck disable=SC1091
source "$work/env"
set +a
# Test 11: PostgreSQL on the host, reachable from pods on docker0.
pod_cidr=$(ip -4 -o route show dev docker0 proto kernel | awk '{print $1; exit}')
if pg_env=$(bash "$k8s/host-postgres.sh" up "$NODE_IP" "$pod_cidr"); then
  eval "$pg_env"
  export TAXIWAY_E2E_PG_POD_URL TAXIWAY_E2E_PG_HOST_URL
else
  log "host PostgreSQL could not be started; test 11 will fail"
fi
export KUBECONFIG=$kubeconfig KUBECTL HELM TAXIWAY_REPO=$repo TAXIWAY_IMAGE_TAG=$tag \
  TAXIWAY_E2E_WORKDIR=$work TAXIWAY_E2E_SERVER_BIN
set +e
timeout --signal=TERM "${TAXIWAY_E2E_TIMEOUT:-600}" "$venv/bin/python" "$k8s/e2e/test_e2e.py"
rc=$?
set -e
exit $rc
