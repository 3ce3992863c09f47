#!/usr/bin/env bash
# The operator against a real Kubernetes 1.20 control plane (operator/tests/kube/):
# CRDs, rendering, statuses, users, leader election, and the data path through the
# real taxiway-server binary and taxii2-client. Provisions what it needs (cached under
# ${TAXIWAY_CACHE:-~/.cache/taxiway}); the test starts and stops its own apiserver on
# free ports, so runs on one machine do not collide.
#
#   bash tests/run.d/20-operator-kube.sh [SCENARIO-FILTER]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

# When the end-to-end cluster test will run too (root, not switched off), build all
# five Kubernetes binaries now: one Go build instead of two on a fresh machine (the
# second would rebuild the apiserver and controller-manager, ~8 minutes).
if [[ $EUID -eq 0 && ${TAXIWAY_E2E:-1} != 0 ]]; then
    export TAXIWAY_K8S_FULL=1
fi
eval "$(tests/k8s/provision.sh)"
venv="$(tests/interop/setup-venv.sh)"

# The data path runs the real server binary on the files the operator rendered.
cargo build -p taxiway-server
target="${CARGO_TARGET_DIR:-$repo/target}"

TAXIWAY_KUBE_TESTS=1 TAXIWAY_VENV="$venv" TAXIWAY_SERVER_BIN="$target/debug/taxiway-server" \
    timeout 1500 cargo test -p taxiway-operator --test kube -- "$@"
