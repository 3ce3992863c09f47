#!/usr/bin/env bash
# A throwaway Kubernetes 1.20 control plane for integration tests: etcd +
# kube-apiserver + kube-controller-manager (garbage collection, ReplicaSets,
# ServiceAccounts), no kubelet. Recipe: shared/KUBE-TESTING.md; binaries from
# tests/k8s/provision.sh.
#
#   apiserver.sh start <workdir> [MANIFEST...]
#       Start on free loopback ports; return once /readyz answers and the
#       controller-manager has created the `default` ServiceAccount (~7 s). Prints the
#       kubeconfig path. Optional MANIFEST files/dirs (e.g. the project's CRDs) are
#       applied with kubectl before the controller-manager starts, so its garbage
#       collector knows those kinds at once; a CRD created later is only picked up by
#       the GC's discovery resync (every 30 s), until then objects owned by its custom
#       resources are not garbage-collected.
#   apiserver.sh stop <workdir>
#       SIGKILL what `start` started (by PID); idempotent; deletes nothing.
#
# Everything lives in <workdir>:
#   kubeconfig   cluster CA data + bearer token (system:masters), server https://127.0.0.1:PORT
#   pids         one PID per line (controller-manager, apiserver, etcd)
#   env          KEY=VALUE lines: KUBECONFIG, KUBE_APISERVER_URL, KUBE_TOKEN, ETCD_URL, ...
#   *.log        component logs; pki/ certificates and keys; etcd/ data
# The processes run in their own session with stdio on the log files, so a harness that
# captures this script's output (Rust Command::output, Python subprocess.run) does not
# hang, and Ctrl-C in a terminal does not reach them: always call `stop`.
#
# Binaries: $KUBE_BIN_DIR, $ETCD, $KUBECTL if set, else from $TAXIWAY_CACHE/env.sh
# (written by provision.sh), else etcd/kubectl from PATH.
set -euo pipefail

CACHE=${TAXIWAY_CACHE:-$HOME/.cache/taxiway}
READY_TIMEOUT=${APISERVER_READY_TIMEOUT:-60}

log() { printf '[apiserver.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() { die "usage: $0 start <workdir> [MANIFEST...] | stop <workdir>"; }

# State of a PID: "" if gone, else the ps STAT (Z... for a zombie).
proc_stat() { ps -o stat= -p "$1" 2>/dev/null | tr -d ' ' || true; }
alive() { local s; s=$(proc_stat "$1"); [[ -n $s && $s != Z* ]]; }
# Only touch a PID whose command line mentions our workdir (guards against PID reuse).
ours() { alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$W/"; }

find_binaries() {
  # The caller's environment wins over env.sh.
  local bin_dir=${KUBE_BIN_DIR:-} etcd=${ETCD:-} kubectl=${KUBECTL:-}
  if [[ -f $CACHE/env.sh ]]; then
    # shellcheck disable=SC1091
    source "$CACHE/env.sh"
  fi
  KUBE_BIN_DIR=${bin_dir:-${KUBE_BIN_DIR:-}}
  [[ -n $KUBE_BIN_DIR ]] || die "KUBE_BIN_DIR unset and no $CACHE/env.sh: run tests/k8s/provision.sh"
  APISERVER=$KUBE_BIN_DIR/kube-apiserver
  CONTROLLER_MANAGER=$KUBE_BIN_DIR/kube-controller-manager
  ETCD_BIN=${etcd:-${ETCD:-$(command -v etcd || true)}}
  KUBECTL_BIN=${kubectl:-${KUBECTL:-$(command -v kubectl || true)}}
  local b
  for b in "$APISERVER" "$CONTROLLER_MANAGER" "$ETCD_BIN"; do
    [[ -x $b ]] || die "missing ${b:-etcd}: run tests/k8s/provision.sh"
  done
}

free_ports() { # N -> N distinct free loopback TCP ports, space separated
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

make_pki() {
  local d=$W/pki
  rm -rf "$d" && mkdir -p "$d"
  cat >"$d/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = taxiway-test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
EOF
  (
    cd "$d"
    openssl req -x509 -config openssl.cnf -extensions ca -newkey rsa:2048 -nodes \
      -keyout ca.key -out ca.crt -days 3650 -subj /CN=taxiway-test-ca
    openssl req -new -config openssl.cnf -newkey rsa:2048 -nodes \
      -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -days 3650 -extfile openssl.cnf -extensions serving -out apiserver.crt
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
    openssl rand -hex 32 >token
    printf '%s,admin,admin,system:masters\n' "$(<token)" >tokens.csv
    chmod 600 ./*.key token tokens.csv
  ) >"$W/pki.log" 2>&1 || { cat "$W/pki.log" >&2; die "openssl failed"; }
}

# launch NAME CMD... : run CMD in its own session, stdio on $W/NAME.log, PID recorded
# in $W/pids.
launch() {
  local name=$1 pidfile=$W/$1.pid; shift
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
    </dev/null >"$W/$name.log" 2>&1 &
  disown
  local i
  for ((i = 0; i < 100; i++)); do [[ -s $pidfile ]] && break; sleep 0.05; done
  [[ -s $pidfile ]] || die "$name did not start"
  PIDS=("$(<"$pidfile")" "${PIDS[@]}")
  rm -f "$pidfile"
  printf '%s\n' "${PIDS[@]}" >"$W/pids"
}

fail_start() {
  local f
  for f in etcd kube-apiserver kube-controller-manager; do
    [[ -f $W/$f.log ]] || continue
    printf '\n===== %s (last 40 lines of %s) =====\n' "$f" "$W/$f.log" >&2
    tail -n 40 "$W/$f.log" >&2
  done
  stop_cluster
  die "$*"
}

# wait_for WHAT TIMEOUT CMD... : poll CMD every 0.2 s for TIMEOUT seconds from now (call it
# right after starting the component waited for); fail if a component dies.
wait_for() {
  local what=$1 timeout=$2 deadline=$((SECONDS + $2)) p; shift 2
  until "$@" >/dev/null 2>&1; do
    for p in "${PIDS[@]}"; do alive "$p" || fail_start "a component (pid $p) exited while waiting for $what"; done
    ((SECONDS < deadline)) || fail_start "timed out after $timeout s waiting for $what"
    sleep 0.2
  done
}

api_get() { # PATH -> body; fails unless HTTP 2xx
  curl -sf --max-time 5 --cacert "$W/pki/ca.crt" -H "Authorization: Bearer $TOKEN" \
    "https://127.0.0.1:$API_PORT$1"
}
readyz_ok() { [[ $(api_get /readyz) == ok ]]; }

preload_manifests() {
  ((${#MANIFESTS[@]})) || return 0
  [[ -x $KUBECTL_BIN ]] || fail_start "applying manifests needs kubectl: run tests/k8s/provision.sh"
  local k=("$KUBECTL_BIN" --kubeconfig "$W/kubeconfig") m
  for m in "${MANIFESTS[@]}"; do
    "${k[@]}" apply --server-side -f "$m" >>"$W/manifests.log" 2>&1 \
      || { cat "$W/manifests.log" >&2; fail_start "kubectl apply -f $m failed"; }
  done
  if [[ -n $("${k[@]}" get crd -o name 2>/dev/null) ]]; then
    "${k[@]}" wait --for=condition=Established crd --all --timeout=30s >>"$W/manifests.log" 2>&1 \
      || { cat "$W/manifests.log" >&2; fail_start "CRDs not Established"; }
  fi
}

start_cluster() {
  mkdir -p "$W"
  W=$(cd "$W" && pwd -P)
  if [[ -f $W/pids ]]; then
    local p
    while read -r p; do
      [[ -n $p ]] && ours "$p" && die "a cluster is already running in $W (pid $p): stop it first"
    done <"$W/pids"
    rm -f "$W/pids"
  fi
  find_binaries
  local t0=$SECONDS
  rm -rf "$W/etcd" "$W"/*.log "$W/kubeconfig" "$W/env"
  local m
  for m in "${MANIFESTS[@]}"; do [[ -e $m ]] || die "no such manifest: $m"; done
  make_pki
  TOKEN=$(<"$W/pki/token")
  local ports etcd_port peer_port
  ports=$(free_ports 3)
  read -r etcd_port peer_port API_PORT <<<"$ports"
  PIDS=()

  local etcd_url=http://127.0.0.1:$etcd_port peer_url=http://127.0.0.1:$peer_port
  launch etcd "$ETCD_BIN" --name taxiway-test --data-dir "$W/etcd" --logger zap \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
    --initial-cluster "taxiway-test=$peer_url"
  wait_for "etcd /health" "$READY_TIMEOUT" curl -sf --max-time 2 "$etcd_url/health"

  local pki=$W/pki
  launch kube-apiserver "$APISERVER" \
    --etcd-servers="$etcd_url" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --cert-dir="$W/apiserver-certs" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --token-auth-file="$pki/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true
  wait_for "kube-apiserver /readyz" "$READY_TIMEOUT" readyz_ok

  local ca_data
  ca_data=$(base64 -w0 <"$pki/ca.crt")
  cat >"$W/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: taxiway-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $ca_data
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: taxiway-test
  context:
    cluster: taxiway-test
    user: admin
current-context: taxiway-test
EOF
  chmod 600 "$W/kubeconfig"
  preload_manifests

  # No serving ports: several clusters can run side by side.
  launch kube-controller-manager "$CONTROLLER_MANAGER" \
    --kubeconfig="$W/kubeconfig" --leader-elect=false \
    --port=0 --secure-port=0 --cert-dir="$W/controller-manager-certs" \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt"
  # The serviceaccount controller creating `default` shows the controllers are running.
  wait_for "the controller-manager (default ServiceAccount)" \
    "$READY_TIMEOUT" api_get /api/v1/namespaces/default/serviceaccounts/default

  cat >"$W/env" <<EOF
KUBECONFIG=$W/kubeconfig
KUBE_APISERVER_URL=https://127.0.0.1:$API_PORT
KUBE_APISERVER_PORT=$API_PORT
KUBE_CA_FILE=$pki/ca.crt
KUBE_TOKEN=$TOKEN
ETCD_URL=$etcd_url
EOF
  log "ready in $((SECONDS - t0)) s: https://127.0.0.1:$API_PORT (pids $(tr '\n' ' ' <"$W/pids"))"
  printf '%s\n' "$W/kubeconfig"
}

stop_cluster() {
  [[ -f $W/pids ]] || return 0
  local p pids=() i
  while read -r p; do [[ $p =~ ^[0-9]+$ ]] && pids+=("$p"); done <"$W/pids"
  for p in "${pids[@]}"; do
    if ours "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  # A killed process stays a zombie until its parent reaps it; that counts as gone.
  for p in "${pids[@]}"; do
    for ((i = 0; i < 100; i++)); do alive "$p" || break; sleep 0.05; done
    alive "$p" && log "warning: pid $p still running"
  done
  rm -f "$W/pids"
}

[[ $# -ge 2 ]] || usage
W=$2
MANIFESTS=("${@:3}")
case $1 in
  start) start_cluster ;;
  stop)
    [[ $# -eq 2 ]] || usage
    [[ -d $W ]] || exit 0
    W=$(cd "$W" && pwd -P)
    stop_cluster
    ;;
  *) usage ;;
esac
