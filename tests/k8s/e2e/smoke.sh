#!/usr/bin/env bash
# Proves the single-node cluster of tests/k8s/cluster.sh runs real workloads:
# a pod from a locally built `FROM scratch` image (imagePullPolicy: Never) becomes
# Running and is reached through a ClusterIP Service, a NodePort on 127.0.0.1, by DNS
# name from a second pod and from itself (hairpin); a ConfigMap update reaches the
# mounted file of the running pod within seconds; `down` leaves nothing behind.
#
#   tests/k8s/e2e/smoke.sh [WORKDIR]     (default: a new temporary directory)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cluster=$here/../cluster.sh
W=${1:-}
own_workdir=0
if [[ -z $W ]]; then W=$(mktemp -d /tmp/taxiway-smoke.XXXXXX) && own_workdir=1; fi
DOCKER=$(command -v /usr/bin/docker || command -v docker)
IMAGE=taxiway-smoke:1
NS=smoke
passed=0 failed=0

log() { printf '[smoke %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
ok() { passed=$((passed + 1)); log "ok: $*"; }
bad() { failed=$((failed + 1)); log "FAILED: $*"; }

finish() {
  local rc=$?
  if ((failed)) || [[ $rc != 0 ]]; then bash "$cluster" debug "$W" "$NS" >&2 || true; fi
  bash "$cluster" down "$W" || true
  leftovers
  printf '%d passed, %d failed\n' "$passed" "$failed"
  ((failed == 0 && rc == 0)) || { log "logs kept in $W"; exit 1; }
  ((own_workdir)) && rm -rf "$W"
  return 0
}

leftovers() {
  local n=0
  if "$DOCKER" version >/dev/null 2>&1; then # else dockerd was ours and is stopped
    n=$("$DOCKER" ps -aq --filter label=io.kubernetes.docker.type | wc -l)
  fi
  if ((n == 0)); then ok "down: no Kubernetes containers left"; else bad "down: $n Kubernetes containers left"; fi
  if iptables-save 2>/dev/null | grep -q KUBE || ip6tables-save 2>/dev/null | grep -q KUBE; then
    bad "down: KUBE iptables rules left"; iptables-save | grep KUBE | head >&2
  else ok "down: no KUBE iptables rules"; fi
  if findmnt -rn -o TARGET | grep -qF "$W/"; then bad "down: mounts left under $W"
  else ok "down: no mounts under $W"; fi
  if ip route show 10.0.0.0/24 | grep -q .; then bad "down: service route left"
  else ok "down: service route removed"; fi
  if pgrep -f -- "$W/" >/dev/null; then bad "down: processes left: $(pgrep -af -- "$W/")"
  else ok "down: no processes left"; fi
}

t0=$SECONDS
trap finish EXIT
kubeconfig=$(bash "$cluster" up "$W")
log "cluster up in $((SECONDS - t0)) s"
# shellcheck disable=SC1091
source "${TAXIWAY_CACHE:-$HOME/.cache/taxiway}/env.sh"
k() { "$KUBECTL" --kubeconfig="$kubeconfig" "$@"; }

# A static binary in an empty image: nothing to pull from anywhere.
build=$(mktemp -d)
gcc -Os -static -o "$build/smoke-httpd" "$here/smoke/smoke-httpd.c" 2>/dev/null
printf 'FROM scratch\nCOPY smoke-httpd /smoke-httpd\nUSER 65534:65534\nENTRYPOINT ["/smoke-httpd"]\n' >"$build/Dockerfile"
DOCKER_BUILDKIT=0 "$DOCKER" build -q -t "$IMAGE" "$build" >/dev/null
rm -rf "$build"

k create namespace "$NS" >/dev/null
until k -n "$NS" get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: msg, namespace: $NS}
data: {msg: "v1"}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: $NS, labels: {app: web}}
spec:
  containers:
  - name: web
    image: $IMAGE
    imagePullPolicy: Never
    args: ["8080", "/etc/smoke/msg"]
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
    securityContext: {readOnlyRootFilesystem: true, runAsNonRoot: true}
    volumeMounts: [{name: msg, mountPath: /etc/smoke}]
  volumes: [{name: msg, configMap: {name: msg}}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $NS}
spec:
  containers:
  - name: client
    image: $IMAGE
    imagePullPolicy: Never
    args: ["8080"]
    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: $NS}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-nodeport, namespace: $NS}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
YAML
t1=$SECONDS
if k -n "$NS" wait --for=condition=Ready pod/web pod/client --timeout=90s >/dev/null; then
  ok "pods Running and Ready in $((SECONDS - t1)) s (image $IMAGE, imagePullPolicy Never)"
else
  bad "pods not Ready"; exit 1
fi

get() { curl -sS --max-time 5 "$@"; }
cluster_ip=$(k -n "$NS" get svc web -o jsonpath='{.spec.clusterIP}')
node_port=$(k -n "$NS" get svc web-nodeport -o jsonpath='{.spec.ports[0].nodePort}')
client_ip=$(k -n "$NS" get pod client -o jsonpath='{.status.podIP}')

# Endpoints and kube-proxy rules follow readiness within a moment.
for ((i = 0; i < 50; i++)); do [[ $(get "http://$cluster_ip/" 2>/dev/null) == "hello from web" ]] && break; sleep 0.1; done
body=$(get "http://$cluster_ip/" || true)
[[ $body == "hello from web" ]] && ok "ClusterIP $cluster_ip:80 from the host" || bad "ClusterIP: got '$body'"
body=$(get "http://127.0.0.1:$node_port/" || true)
[[ $body == "hello from web" ]] && ok "NodePort 127.0.0.1:$node_port" || bad "NodePort: got '$body'"
for name in "web.$NS.svc.cluster.local" web "web.$NS"; do
  body=$(get "http://$client_ip:8080/probe/$name/80/" || true)
  [[ $body == "$cluster_ip hello from web" ]] && ok "DNS from a second pod: $name -> $cluster_ip" \
    || bad "DNS from the client pod, $name: got '$body'"
done
web_ip=$(k -n "$NS" get pod web -o jsonpath='{.status.podIP}')
body=$(get "http://$web_ip:8080/probe/web.$NS.svc.cluster.local/80/" || true)
[[ $body == "$cluster_ip hello from web" ]] && ok "hairpin: the pod reaches itself through its Service" \
  || bad "hairpin: got '$body'"
body=$(get "http://$client_ip:8080/probe/kubernetes.default/443/" || true)
[[ $body == 10.0.0.1* ]] && ok "the kubernetes Service resolves and answers from a pod" \
  || bad "kubernetes.default from a pod: got '$body'"

body=$(get "http://$cluster_ip/file" || true)
[[ $body == v1 ]] || bad "mounted ConfigMap: got '$body'"
new="v2-$RANDOM"
k -n "$NS" patch configmap msg --type merge -p "{\"data\":{\"msg\":\"$new\"}}" >/dev/null
start=$(date +%s.%N)
seen=""
for ((i = 0; i < 150; i++)); do
  [[ $(get "http://$cluster_ip/file" 2>/dev/null) == "$new" ]] && { seen=$(date +%s.%N); break; }
  sleep 0.05
done
if [[ -n $seen ]]; then
  ok "ConfigMap update reached the running pod in $(python3 -c "print(f'{$seen - $start:.2f}')") s (restarts: $(k -n "$NS" get pod web -o jsonpath='{.status.containerStatuses[0].restartCount}'))"
else
  bad "ConfigMap update not seen within 7.5 s"
fi
