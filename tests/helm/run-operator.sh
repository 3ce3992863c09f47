#!/usr/bin/env bash
# Run the real operator binary as the chart's ServiceAccount (its token, nothing else)
# with the arguments of the chart's Deployment, against the test apiserver, and check
# that it reconciles a TaxiiService and every TaxiiCollection naming it without a
# single Forbidden.
#
#   run-operator.sh KUBE_DIR WORK_DIR RELEASE_NAMESPACE RELEASE SERVICE_ACCOUNT FEED_NAMESPACE FEED
#
# FEED is an existing TaxiiService in FEED_NAMESPACE. The leader-election Lease must
# appear in RELEASE_NAMESPACE. Called by tests/run.d/40-helm.sh; stops the operator
# on exit.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
kube_dir=$1 work=$2 ns=$3 release=$4 sa=$5 feed_ns=$6 feed=$7
log=$work/operator-$sa.log

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  if [[ -f $log ]]; then
    if grep -qi forbidden "$log"; then echo "--- Forbidden in $log:" >&2; grep -i forbidden "$log" | head -n 10 >&2; fi
    echo "--- last 30 lines of $log" >&2; tail -n 30 "$log" >&2
  fi
  exit 1
}
k() { "$KUBECTL" --kubeconfig "$kube_dir/kubeconfig" "$@"; }
# shellcheck disable=SC1090
source <(sed 's/^/export /' "$kube_dir/env")

operator_pid=
stop_operator() {
  if [[ -n $operator_pid ]]; then
    kill "$operator_pid" 2>/dev/null || true
    wait "$operator_pid" 2>/dev/null || true
    operator_pid=
  fi
}
trap stop_operator EXIT

# The binary, built the way the test runner builds everything else.
(cd "$repo" && cargo build --quiet -p taxiway-operator) || fail "cargo build -p taxiway-operator"
target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target_dir/debug/taxiway-operator
[[ -x $bin ]] || fail "no $bin"
"$bin" run --help >/dev/null 2>&1 || fail "taxiway-operator has no \`run\` command (the chart runs \`taxiway-operator run\`)"

# A token of the chart's ServiceAccount: TokenRequest, else the 1.20 token Secret.
token=$(k -n "$ns" create token "$sa" --duration=1h 2>/dev/null || true)
if [[ -z $token ]]; then
  for _ in $(seq 1 50); do
    secret=$(k -n "$ns" get serviceaccount "$sa" -o jsonpath='{.secrets[0].name}' 2>/dev/null || true)
    [[ -n $secret ]] && break
    sleep 0.2
  done
  [[ -n ${secret:-} ]] || fail "no token for ServiceAccount $ns/$sa"
  token=$(k -n "$ns" get secret "$secret" -o jsonpath='{.data.token}' | base64 -d)
fi
sa_kubeconfig=$work/operator.kubeconfig
cat >"$sa_kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: $KUBE_APISERVER_URL
    certificate-authority-data: $(base64 -w0 <"$KUBE_CA_FILE")
users:
- name: $sa
  user:
    token: $token
contexts:
- name: test
  context: {cluster: test, user: $sa, namespace: $ns}
current-context: test
EOF
chmod 600 "$sa_kubeconfig"
# The token really is the ServiceAccount's (an admin token would hide missing rules).
sa_can() { "$KUBECTL" --kubeconfig "$sa_kubeconfig" auth can-i "$@" 2>/dev/null || true; }
[[ $(sa_can -n "$feed_ns" watch taxiiservices.taxiway.dev) == yes ]] || fail "the token cannot watch TaxiiServices in $feed_ns"
[[ $(sa_can -n "$ns" create pods) == no ]] || fail "the token is not limited to the ServiceAccount's rights"

# The container's arguments, exactly as the chart renders them, with the admin
# listener moved to a free loopback port.
admin_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$HELM" get manifest "$release" -n "$ns" --kubeconfig "$kube_dir/kubeconfig" >"$work/release-manifest.yaml"
mapfile -t args < <("${TAXIWAY_PYTHON:-python3}" - "$work/release-manifest.yaml" "$admin_port" <<'EOF'
import sys, yaml
path, port = sys.argv[1], sys.argv[2]
for doc in yaml.safe_load_all(open(path)):
    if doc and doc["kind"] == "Deployment":
        for arg in doc["spec"]["template"]["spec"]["containers"][0]["args"]:
            print(f"--admin-listen=127.0.0.1:{port}" if arg.startswith("--admin-listen=") else arg)
EOF
)
((${#args[@]})) || fail "no operator Deployment in the release"
echo "running: taxiway-operator ${args[*]} (as system:serviceaccount:$ns:$sa)"

leases() { k -n "$ns" get leases -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}'; }
leases_before=$(leases)

# Out of a pod: no in-cluster environment, so the client reads KUBECONFIG.
env -u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT \
  KUBECONFIG="$sa_kubeconfig" POD_NAMESPACE="$ns" POD_NAME=taxiway-operator-test \
  TAXIWAY_LOG=info,taxiway_operator=debug TAXIWAY_LOG_JSON=false \
  "$bin" "${args[@]}" >"$log" 2>&1 &
operator_pid=$!

wait_for() { # WHAT SECONDS CMD...
  local what=$1 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$operator_pid" 2>/dev/null || fail "the operator exited while waiting for $what"
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.5
  done
}
ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/readyz") == 200 ]]; }
wait_for "/readyz" 60 ready
curl -sf "http://127.0.0.1:$admin_port/metrics" >/dev/null || fail "no /metrics on the admin port"

reconciled() {
  local gen observed c
  gen=$(k -n "$feed_ns" get taxiiservice "$feed" -o jsonpath='{.metadata.generation}')
  observed=$(k -n "$feed_ns" get taxiiservice "$feed" -o jsonpath='{.status.observedGeneration}')
  [[ -n $observed && $observed == "$gen" ]] || return 1
  k -n "$feed_ns" get configmap/"$feed"-config secret/"$feed"-credentials deployment/"$feed" \
    service/"$feed" persistentvolumeclaim/"$feed"-data || return 1
  for c in "${collections[@]}"; do
    [[ -n $(k -n "$feed_ns" get taxiicollection "$c" -o jsonpath='{.status.id}') ]] || return 1
  done
}
mapfile -t collections < <(k -n "$feed_ns" get taxiicollections \
  -o jsonpath="{range .items[?(@.spec.service==\"$feed\")]}{.metadata.name}{'\\n'}{end}")
((${#collections[@]})) || fail "no TaxiiCollection names $feed_ns/$feed"
wait_for "$feed_ns/$feed and its ${#collections[@]} collections to be reconciled" 60 reconciled
[[ $(leases) != "$leases_before" ]] || fail "no leader-election Lease taken or renewed in $ns"

# Let it settle: a late Forbidden (a watch of an owned kind, an Event) shows up here.
sleep 3
kill -0 "$operator_pid" 2>/dev/null || fail "the operator exited"
# The API server's refusal is a 403 with reason Forbidden, and kube logs it as such.
if grep -qi 'forbidden' "$log"; then
  fail "the operator was refused something with the chart's RBAC"
fi
stop_operator
echo "ok: the operator reconciled $feed_ns/$feed (config, credentials, Deployment, Service, PVC, ${#collections[@]} collections) as $sa, with no Forbidden"
