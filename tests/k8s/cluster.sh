#!/usr/bin/env bash
# A real single-node Kubernetes 1.20 cluster where pods run: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet (built-in dockershim driving Debian's
# Docker), kube-proxy (iptables) and a dnsmasq for cluster.local. Recipe and reasons:
# shared/KUBE-TESTING.md ("A real single-node cluster"); binaries from
# `TAXIWAY_K8S_FULL=1 tests/k8s/provision.sh` (built on first use, then cached).
#
#   cluster.sh up <workdir>      provision (idempotent) and start; ~11 s when cached.
#                                Prints the kubeconfig path on stdout.
#   cluster.sh down <workdir>    stop and remove everything `up` made on the machine
#   cluster.sh status <workdir>  components, node and pods; exit 0 when all is up
#   cluster.sh debug <workdir> [NAMESPACE...]
#                                events, `describe` of non-ready pods, logs of every pod
#                                in NAMESPACEs, the tail of the component logs
#
# One cluster per machine (fixed ports 6443, 10250 and 53 on docker0, global iptables):
# `up` takes a machine-wide lock that a small process holds until `down`. A second `up`
# on the same workdir is a no-op; on another workdir it fails at once, or waits up to
# $TAXIWAY_CLUSTER_WAIT seconds for the lock.
#
# The node is the docker0 bridge (172.17.0.1): the apiserver, the kubelet and dnsmasq
# listen there, pods sit on the bridge (no CNI), Services are 10.0.0.0/24 (routed to
# docker0 so nothing leaves the machine), NodePorts also answer on 127.0.0.1.
# dockerd is started (with --userland-proxy=false) only when /var/run/docker.sock does
# not answer, and `down` stops it only if `up` started it.
#
# <workdir> holds: kubeconfig; env (KEY=VALUE: KUBECONFIG, KUBE_APISERVER_URL, NODE_IP,
# ...); pids ("NAME PID" lines); *.log component logs; pki/; etcd/ and kubelet/ state.
# `down` keeps the logs and pki/ and deletes the state.
set -euo pipefail

CACHE=${TAXIWAY_CACHE:-$HOME/.cache/taxiway}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
READY_TIMEOUT=${CLUSTER_READY_TIMEOUT:-120}
LOCK_WAIT=${TAXIWAY_CLUSTER_WAIT:-0}

NODE_NAME=taxiway-node
SERVICE_CIDR=10.0.0.0/24
SERVICE_IP=10.0.0.1 # the `kubernetes` Service
API_PORT=6443
CLUSTER_DOMAIN=cluster.local
# Any name works: it is never pulled, it only has to exist in the node's Docker.
PAUSE_IMAGE=taxiway/pause:3.2
LOCK_FILE=/run/lock/taxiway-k8s-cluster.lock
OWNER_FILE=/run/lock/taxiway-k8s-cluster.owner
# The in-tree hostpath provisioner's fixed base directory.
HOSTPATH_PV_DIR=/tmp/hostpath_pv
PKGS=(docker.io containerd runc iptables dnsmasq-base socat conntrack iproute2
  util-linux openssl curl etcd-server gcc libc6-dev python3)
# Kernel settings the kubelet, kube-proxy and dockerd change; `down` restores them.
SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables
  net.ipv4.conf.all.route_localnet vm.overcommit_memory vm.panic_on_oom kernel.panic
  kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Start order; `down` stops in reverse.
COMPONENTS=(lock dockerd etcd kube-apiserver kube-controller-manager kube-scheduler
  kubelet kube-proxy dnsmasq node-helper)

log() { printf '[cluster.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { die "usage: $0 up|down|status|debug <workdir> [NAMESPACE...]"; }

[[ $EUID -eq 0 ]] || die "must run as root (Docker, iptables, mounts)"

# ---------------------------------------------------------------- processes

# State of a PID: "" if gone, else the ps STAT (Z... for a zombie, which still
# answers `kill -0`).
proc_stat() { ps -o stat= -p "$1" 2>/dev/null | tr -d ' ' || true; }
alive() { local s; s=$(proc_stat "$1"); [[ -n $s && $s != Z* ]]; }
# Only touch a PID whose command line mentions our workdir (guards against PID reuse).
ours() { alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$W/"; }

pid_of() { # NAME -> PID recorded in $W/pids, or nothing
  [[ -f $W/pids ]] || return 0
  awk -v n="$1" '$1 == n {print $2}' "$W/pids" | tail -n1
}
running() { local p; p=$(pid_of "$1"); [[ -n $p ]] && ours "$p"; }

# launch NAME CMD... : run CMD in its own session (Ctrl-C and a harness capturing our
# output do not reach it), stdio on $W/NAME.log, "NAME PID" appended to $W/pids.
launch() {
  local name=$1 pidfile=$W/run/$1.pid i; shift
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
    </dev/null >"$W/$name.log" 2>&1 &
  disown
  for ((i = 0; i < 100; i++)); do [[ -s $pidfile ]] && break; sleep 0.05; done
  [[ -s $pidfile ]] || die "$name did not start"
  printf '%s %s\n' "$name" "$(<"$pidfile")" >>"$W/pids"
}

stop_pid() { # NAME PID SIGNAL TIMEOUT_S
  local name=$1 p=$2 sig=$3 t=$4 i
  ours "$p" || return 0
  kill "-$sig" "$p" 2>/dev/null || true
  for ((i = 0; i < t * 20; i++)); do alive "$p" || return 0; sleep 0.05; done
  log "$name (pid $p) did not stop on SIG$sig; killing it"
  kill -KILL "$p" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$p" || return 0; sleep 0.05; done
  log "warning: $name (pid $p) still running"
}

# ---------------------------------------------------------------- provisioning

missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
      || printf '%s\n' "$p"
  done
}

ensure_packages() {
  local missing
  missing=$(missing_pkgs "${PKGS[@]}")
  [[ -z $missing ]] && return
  # shellcheck disable=SC2086
  log "apt-get install" $missing
  mkdir -p "$CACHE"
  apt-get update -qq >"$CACHE/cluster-apt.log" 2>&1 || { cat "$CACHE/cluster-apt.log" >&2; die "apt-get update failed"; }
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing \
    >>"$CACHE/cluster-apt.log" 2>&1 || { tail -n 30 "$CACHE/cluster-apt.log" >&2; die "apt-get install failed"; }
}

find_binaries() {
  local env_out
  # provision.sh is a no-op (0.1 s) when everything is cached; the first time it
  # builds the five binaries (~10 min on 2 cores).
  env_out=$(TAXIWAY_K8S_FULL=1 bash "$HERE/provision.sh") || die "provision.sh failed"
  eval "$env_out"
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    [[ -x $KUBE_BIN_DIR/$b ]] || die "missing $KUBE_BIN_DIR/$b"
  done
  [[ -x $ETCD ]] || die "missing etcd ($ETCD)"
  [[ -x $KUBECTL ]] || die "missing kubectl ($KUBECTL)"
  DOCKER=$(command -v /usr/bin/docker || command -v docker) || die "no docker client"
}

docker_answers() { timeout 10 "$DOCKER" version >/dev/null 2>&1; }

ensure_dockerd() {
  if docker_answers; then return; fi
  [[ -S /var/run/docker.sock ]] && log "/var/run/docker.sock does not answer; starting dockerd"
  log "starting dockerd"
  # What dockerd changes on the host (iptables chains and policy, the docker0 bridge,
  # cgroups) is put back by `down` when it stops the dockerd started here.
  iptables-save >"$W/run/iptables.before"
  ip6tables-save >"$W/run/ip6tables.before" 2>/dev/null || true
  ip link show docker0 >/dev/null 2>&1 || : >"$W/run/docker0.ours"
  # --userland-proxy=false: hairpin NAT on the bridge, so a pod reaches itself through
  # its own Service. --pidfile under $W marks the process as ours.
  launch dockerd /usr/sbin/dockerd --userland-proxy=false --storage-driver=overlay2 \
    --exec-opt native.cgroupdriver=cgroupfs --pidfile="$W/run/dockerd.pidfile"
  local i
  for ((i = 0; i < 300; i++)); do
    docker_answers && return
    running dockerd || { tail -n 30 "$W/dockerd.log" >&2; die "dockerd exited"; }
    sleep 0.1
  done
  die "dockerd did not answer within 30 s"
}

# The pod sandbox ("pause") image, made without a registry: Kubernetes' own pause.c,
# compiled statically, imported as a one-file image.
ensure_pause_image() {
  "$DOCKER" image inspect "$PAUSE_IMAGE" >/dev/null 2>&1 && return
  local dir=$CACHE/k8s/pause tarball
  if [[ ! -x $dir/pause ]]; then
    tarball=$(compgen -G "$CACHE/k8s/src/kubernetes_*.orig.tar.gz" | head -n1 || true)
    if [[ -z $tarball ]]; then
      log "fetching Debian's kubernetes source for pause.c"
      mkdir -p "$CACHE/k8s/src"
      (cd "$CACHE/k8s/src" && apt-get source --download-only -qq kubernetes) >&2
      tarball=$(compgen -G "$CACHE/k8s/src/kubernetes_*.orig.tar.gz" | head -n1) || die "no kubernetes source"
    fi
    rm -rf "$dir" && mkdir -p "$dir"
    tar xzf "$tarball" -C "$dir" --strip-components=4 --wildcards '*/build/pause/linux/pause.c'
    gcc -Os -static -DVERSION=3.2-taxiway -o "$dir/pause.tmp" "$dir/pause.c"
    strip "$dir/pause.tmp" && mv "$dir/pause.tmp" "$dir/pause"
  fi
  log "importing $PAUSE_IMAGE"
  tar -C "$dir" -c pause | "$DOCKER" import -c 'ENTRYPOINT ["/pause"]' - "$PAUSE_IMAGE" >/dev/null
}

node_ip() { ip -4 -o addr show dev docker0 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}'; }
node_cidr() { ip -4 -o route show dev docker0 proto kernel 2>/dev/null | awk '{print $1; exit}'; }

save_sysctls() {
  [[ -f $W/run/sysctls ]] && return # a failed `up` already saved the originals
  local k v
  for k in "${SYSCTLS[@]}"; do
    v=$(sysctl -n "$k" 2>/dev/null) && printf '%s=%s\n' "$k" "$v"
  done >"$W/run/sysctls"
}

restore_sysctls() {
  [[ -f $W/run/sysctls ]] || return 0
  local line
  while IFS= read -r line; do
    [[ $(sysctl -n "${line%%=*}" 2>/dev/null) == "${line#*=}" ]] || sysctl -q -w "$line" >/dev/null 2>&1 || true
  done <"$W/run/sysctls"
  rm -f "$W/run/sysctls"
}

# The certificates and keys are made once per node address and cached (they are for a
# throwaway cluster on this machine only); each workdir gets a copy.
make_pki() {
  local d=$W/pki cached=$CACHE/k8s/cluster-pki/$NODE_IP
  if [[ -f $d/ca.crt && -f $d/node-ip && $(<"$d/node-ip") == "$NODE_IP" ]]; then return; fi
  if [[ -f $cached/node-ip ]]; then
    rm -rf "$d" && cp -a "$cached" "$d"
    return
  fi
  rm -rf "$d" && mkdir -p "$d"
  cat >"$d/openssl.cnf" <<EOF
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
subjectAltName = IP:$NODE_IP, IP:$SERVICE_IP, IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.$CLUSTER_DOMAIN
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
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
    # The apiserver's client certificate towards the kubelet (logs, exec,
    # port-forward); the kubelet trusts the CA and authorizes it by webhook.
    openssl req -new -config openssl.cnf -newkey rsa:2048 -nodes \
      -keyout kubelet-client.key -out kubelet-client.csr \
      -subj "/O=system:masters/CN=kube-apiserver-kubelet-client"
    openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -days 3650 -extfile openssl.cnf -extensions client -out kubelet-client.crt
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
    openssl rand -hex 32 >token
    printf '%s,admin,admin,system:masters\n' "$(<token)" >tokens.csv
    chmod 600 ./*.key token tokens.csv
    printf '%s\n' "$NODE_IP" >node-ip
  ) >"$W/pki.log" 2>&1 || { cat "$W/pki.log" >&2; die "openssl failed"; }
  mkdir -p "$(dirname "$cached")"
  rm -rf "$cached.tmp" && cp -a "$d" "$cached.tmp" && chmod 700 "$cached.tmp"
  rm -rf "$cached" && mv "$cached.tmp" "$cached"
}

write_configs() {
  local ca_data
  ca_data=$(base64 -w0 <"$W/pki/ca.crt")
  cat >"$W/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: taxiway-e2e
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority-data: $ca_data
users:
- name: admin
  user:
    token: $(<"$W/pki/token")
contexts:
- name: taxiway-e2e
  context:
    cluster: taxiway-e2e
    user: admin
current-context: taxiway-e2e
EOF
  chmod 600 "$W/kubeconfig"
  # Pods resolve through our dnsmasq only, never the host's outside resolver.
  printf 'nameserver %s\n' "$NODE_IP" >"$W/resolv.conf"
  cat >"$W/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $W/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
oomScoreAdj: 0
# Mounted ConfigMap/Secret changes reach a running pod in 0.7-1.9 s.
syncFrequency: 1s
# Ready is reported within a second of being true (the default is 10 s); the full
# status is still only re-sent when it changes or after a minute.
nodeStatusUpdateFrequency: 1s
nodeStatusReportFrequency: 1m
clusterDNS: [$NODE_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $W/resolv.conf
volumePluginDir: $W/kubelet-plugins
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
EOF
  cat >"$W/storageclass.yaml" <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF
}

# One Python process for two node chores: keep dnsmasq's hosts file equal to the
# Services (and headless Services' endpoints), and open up the hostpath provisioner's
# volumes (created 0750 root; pods run as non-root users, as on clusters whose
# provisioner or fsGroup makes volumes writable).
write_node_helper() {
  cat >"$W/bin/node-helper.py" <<'EOF'
import json, os, signal, ssl, sys, time, urllib.request

api, token, ca, hosts, dnsmasq_pidfile, pv_dir, domain = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)

def get(path):
    req = urllib.request.Request(api + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return json.load(r)

def records():
    lines = []
    headless = set()
    for s in get("/api/v1/services")["items"]:
        name, ns = s["metadata"]["name"], s["metadata"]["namespace"]
        ip = s["spec"].get("clusterIP")
        if ip == "None":
            headless.add((ns, name))
        elif ip:
            lines.append(f"{ip} {name}.{ns}.svc.{domain}")
    for e in get("/api/v1/endpoints")["items"]:
        name, ns = e["metadata"]["name"], e["metadata"]["namespace"]
        for sub in e.get("subsets") or []:
            for a in sub.get("addresses") or []:
                # Headless Services resolve to their ready endpoints.
                if (ns, name) in headless:
                    lines.append(f"{a['ip']} {name}.{ns}.svc.{domain}")
                if a.get("hostname"):
                    lines.append(f"{a['ip']} {a['hostname']}.{name}.{ns}.svc.{domain}")
    return lines

last = None
while True:
    try:
        text = "\n".join(sorted(set(records()))) + "\n"
        if text != last:
            with open(hosts + ".tmp", "w") as f:
                f.write(text)
            os.replace(hosts + ".tmp", hosts)
            try:
                with open(dnsmasq_pidfile) as f:
                    os.kill(int(f.read().split()[0]), signal.SIGHUP)
                last = text
            except (OSError, ValueError):
                pass
    except Exception as e:  # the apiserver may be briefly away; keep going
        print(f"node-helper: {e}", flush=True)
    for _ in range(4):
        try:
            for d in os.listdir(pv_dir):
                p = os.path.join(pv_dir, d)
                if os.path.isdir(p) and os.stat(p).st_mode & 0o777 != 0o777:
                    os.chmod(p, 0o777)
        except FileNotFoundError:
            pass
        time.sleep(0.125)
EOF
}

# ---------------------------------------------------------------- waiting

fail_up() {
  local c
  for c in "${COMPONENTS[@]}"; do
    [[ -f $W/$c.log ]] || continue
    printf '\n===== %s (last 30 lines of %s) =====\n' "$c" "$W/$c.log" >&2
    tail -n 30 "$W/$c.log" >&2
  done
  log "ERROR: $*"
  exit 1 # the EXIT trap tears down
}

# wait_for WHAT SINCE CMD... : poll CMD every 0.1 s for up to READY_TIMEOUT seconds
# counted from SINCE (a $SECONDS value: when the component waited for was started, or
# when what it needs became ready). Provisioning (packages, binaries, images) happens
# before any SINCE, so it never eats into a wait. Fails if a started component dies.
wait_for() {
  local what=$1 since=$2 c; shift 2
  local deadline=$((since + READY_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    for c in "${STARTED[@]}"; do
      running "$c" || fail_up "$c exited while waiting for $what"
    done
    ((SECONDS < deadline)) || fail_up "timed out after $READY_TIMEOUT s waiting for $what ($((SECONDS - since)) s since it started)"
    sleep 0.1
  done
  log "$what after $((SECONDS - since)) s ($((SECONDS - T0)) s since up began)"
}

api_get() { # PATH -> body; fails unless HTTP 2xx
  curl -sf --max-time 5 --cacert "$W/pki/ca.crt" -H "Authorization: Bearer $(<"$W/pki/token")" \
    "https://$NODE_IP:$API_PORT$1"
}
readyz_ok() { [[ $(api_get /readyz) == ok ]]; }
node_ready() {
  api_get "/api/v1/nodes/$NODE_NAME" | python3 -c '
import json, sys
n = json.load(sys.stdin)
sys.exit(0 if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]) else 1)'
}
proxy_ready() { iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep -q -- "$SERVICE_IP/32"; }
dns_ready() { [[ $(dig_a "kubernetes.default.svc.$CLUSTER_DOMAIN") == "$SERVICE_IP" ]]; }
# A minimal A-record lookup against our dnsmasq (no dnsutils needed).
dig_a() {
  python3 - "$NODE_IP" "$1" <<'EOF'
import socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(q, (server, 53))
r = s.recv(512)
an = struct.unpack(">H", r[6:8])[0]
i = len(q)
for _ in range(an):
    i += 2 if r[i] & 0xC0 == 0xC0 else r.index(b"\0", i) + 1 - i
    typ, _, _, ln = struct.unpack(">HHIH", r[i:i + 10])
    i += 10
    if typ == 1:
        print(socket.inet_ntoa(r[i:i + ln]))
        break
    i += ln
EOF
}

# ---------------------------------------------------------------- up

# The machine-wide lock, held by a process that lives until `down`.
take_lock() {
  mkdir -p "$(dirname "$LOCK_FILE")"
  rm -f "$W/run/lock.acquired"
  # shellcheck disable=SC2016
  launch lock bash -c 'exec 9>>"$1"; flock -w "$2" 9 || exit 3; : >"$3"; exec -a "taxiway-cluster-lock $4/" sleep infinity' \
    lock "$LOCK_FILE" "$LOCK_WAIT" "$W/run/lock.acquired" "$W"
  local i
  for ((i = 0; ; i++)); do
    [[ -f $W/run/lock.acquired ]] && break
    if ! alive "$(pid_of lock)"; then
      sed -i '/^lock /d' "$W/pids"
      die "another cluster is running on this machine ($(cat "$OWNER_FILE" 2>/dev/null || echo 'owner unknown')): stop it with tests/k8s/cluster.sh down <its workdir>"
    fi
    ((i == 40)) && log "waiting up to $LOCK_WAIT s for the cluster in $(cat "$OWNER_FILE" 2>/dev/null || echo '?') to go"
    sleep 0.05
  done
  printf '%s\n' "$W" >"$OWNER_FILE"
}

all_running() { local c; for c in "$@"; do running "$c" || return 1; done; }

up_cluster() {
  mkdir -p "$W"
  W=$(cd "$W" && pwd -P)
  # The kubelet's dockershim socket lives in the workdir: a unix socket path has 107 bytes.
  ((${#W} <= 80)) || die "workdir path too long for a unix socket (max 80 characters): $W"
  if [[ -f $W/pids ]]; then
    if all_running lock etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy dnsmasq node-helper; then
      log "already up in $W"
      printf '%s\n' "$W/kubeconfig"
      return
    fi
    log "a previous cluster in $W is partly running; tearing it down first"
    down_cluster
  fi
  mkdir -p "$W/run" "$W/bin"
  : >"$W/pids"
  take_lock
  # Timed from here: waiting for another cluster's lock does not count.
  local t0=$SECONDS
  T0=$SECONDS
  # Whatever stops `up` half-way (a failed command, Ctrl-C) undoes what it did.
  UP_DONE=0
  trap 'if [[ $UP_DONE == 0 ]]; then log "up did not finish; tearing down"; down_cluster; fi' EXIT
  trap 'exit 130' INT TERM
  STARTED=()
  ensure_packages
  find_binaries
  save_sysctls
  ensure_dockerd
  running dockerd && STARTED+=(dockerd)
  ensure_pause_image
  NODE_IP=$(node_ip)
  [[ -n $NODE_IP ]] || fail_up "docker0 has no IPv4 address"
  NODE_CIDR=$(node_cidr)
  [[ $NODE_IP == 172.17.0.1 ]] || log "note: docker0 is $NODE_IP, not the usual 172.17.0.1"
  log "node $NODE_NAME on docker0 $NODE_IP ($NODE_CIDR); provisioned in $((SECONDS - t0)) s"

  sysctl -q -w net.bridge.bridge-nf-call-iptables=1
  # An unassigned ClusterIP must not leave the machine.
  ip route replace "$SERVICE_CIDR" dev docker0 src "$NODE_IP"
  : >"$W/run/route"
  # The kubelet's fixed paths (pod logs; device plugins sit in /var/lib/kubelet
  # whatever --root-dir says).
  for d in /var/log/pods /var/log/containers /var/lib/kubelet; do [[ -e $d ]] || printf '%s\n' "$d" >>"$W/run/created-dirs"; done
  [[ -e $HOSTPATH_PV_DIR ]] || printf '%s\n' "$HOSTPATH_PV_DIR" >>"$W/run/created-dirs"
  make_pki
  write_configs
  write_node_helper
  rm -rf "$W/etcd" "$W/kubelet" "$W/dockershim" "$W/dns"
  mkdir -p "$W/dns" "$HOSTPATH_PV_DIR"
  : >"$W/dns/hosts"

  local pki=$W/pki port etcd_url peer_url
  read -r port peer_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
  etcd_url=http://127.0.0.1:$port peer_url=http://127.0.0.1:$peer_port
  launch etcd "$ETCD" --name taxiway-e2e --data-dir "$W/etcd" --logger zap \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
    --initial-cluster "taxiway-e2e=$peer_url"
  STARTED+=(etcd)
  local etcd_started=$SECONDS
  wait_for "etcd" "$etcd_started" curl -sf --max-time 2 "$etcd_url/health"

  local apiserver_started=$SECONDS
  launch kube-apiserver "$KUBE_BIN_DIR/kube-apiserver" \
    --etcd-servers="$etcd_url" \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port=$API_PORT \
    --cert-dir="$W/apiserver-certs" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --token-auth-file="$pki/tokens.csv" \
    --kubelet-client-certificate="$pki/kubelet-client.crt" \
    --kubelet-client-key="$pki/kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=$SERVICE_CIDR \
    --allow-privileged=true
  STARTED+=(kube-apiserver)

  # The other components start while the apiserver does (they retry until it answers):
  # that overlaps their own few seconds of start-up with the apiserver's.
  local kc=$W/kubeconfig
  launch kube-controller-manager "$KUBE_BIN_DIR/kube-controller-manager" \
    --kubeconfig="$kc" --leader-elect=false \
    --port=0 --bind-address=127.0.0.1 --cert-dir="$W/controller-manager-certs" \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --use-service-account-credentials \
    --enable-hostpath-provisioner \
    --flex-volume-plugin-dir="$W/kubelet-plugins"
  STARTED+=(kube-controller-manager)
  launch kube-scheduler "$KUBE_BIN_DIR/kube-scheduler" \
    --kubeconfig="$kc" --leader-elect=false \
    --port=0 --bind-address=127.0.0.1 --cert-dir="$W/scheduler-certs"
  STARTED+=(kube-scheduler)
  launch kubelet "$KUBE_BIN_DIR/kubelet" \
    --config="$W/kubelet.yaml" --kubeconfig="$kc" \
    --root-dir="$W/kubelet" --cert-dir="$W/kubelet-pki" \
    --experimental-dockershim-root-directory="$W/dockershim" \
    --container-runtime-endpoint="unix://$W/run/dockershim.sock" \
    --container-runtime=docker --pod-infra-container-image=$PAUSE_IMAGE \
    --node-ip="$NODE_IP" --hostname-override=$NODE_NAME
  STARTED+=(kubelet)
  launch kube-proxy "$KUBE_BIN_DIR/kube-proxy" \
    --kubeconfig="$kc" --hostname-override=$NODE_NAME \
    --proxy-mode=iptables --cluster-cidr="$NODE_CIDR" --bind-address="$NODE_IP" \
    --nodeport-addresses="127.0.0.0/8,$NODE_CIDR" --oom-score-adj=0 \
    --conntrack-max-per-core=0 --conntrack-min=0 \
    --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
    --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249
  STARTED+=(kube-proxy)
  # Answers cluster.local only (--no-resolv, no upstream): nothing else is forwarded.
  launch dnsmasq /usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null \
    --user=root --group=root --pid-file="$W/run/dnsmasq.pidfile" \
    --listen-address="$NODE_IP" --bind-interfaces --port=53 \
    --no-resolv --no-hosts --no-poll --local="/$CLUSTER_DOMAIN/" --domain-needed \
    --addn-hosts="$W/dns/hosts" --log-facility=-
  STARTED+=(dnsmasq)
  launch node-helper python3 -u "$W/bin/node-helper.py" "https://$NODE_IP:$API_PORT" \
    "$(<"$pki/token")" "$pki/ca.crt" "$W/dns/hosts" "$W/run/dnsmasq.pidfile" \
    "$HOSTPATH_PV_DIR" "$CLUSTER_DOMAIN"
  STARTED+=(node-helper)

  wait_for "kube-apiserver /readyz" "$apiserver_started" readyz_ok
  # The node, the controllers, kube-proxy and DNS all need the apiserver: their waits
  # count from the moment it answered.
  local api_ready=$SECONDS
  "$KUBECTL" --kubeconfig="$kc" apply -f "$W/storageclass.yaml" >"$W/bootstrap.log" 2>&1 \
    || fail_up "could not create the default StorageClass: $(cat "$W/bootstrap.log")"
  wait_for "node $NODE_NAME Ready" "$api_ready" node_ready
  wait_for "the default ServiceAccount" "$api_ready" api_get /api/v1/namespaces/default/serviceaccounts/default
  wait_for "kube-proxy rules" "$api_ready" proxy_ready
  wait_for "cluster DNS" "$api_ready" dns_ready

  cat >"$W/env" <<EOF
KUBECONFIG=$kc
KUBE_APISERVER_URL=https://$NODE_IP:$API_PORT
KUBE_CA_FILE=$pki/ca.crt
KUBE_TOKEN=$(<"$pki/token")
NODE_IP=$NODE_IP
NODE_NAME=$NODE_NAME
CLUSTER_DOMAIN=$CLUSTER_DOMAIN
ETCD_URL=$etcd_url
EOF
  UP_DONE=1
  log "up in $((SECONDS - t0)) s: https://$NODE_IP:$API_PORT, node $NODE_NAME Ready (logs and state in $W)"
  printf '%s\n' "$kc"
}

# ---------------------------------------------------------------- down

# remove_chains IPTABLES PREFIX RULE_REGEX: delete the rules of the other chains that
# match RULE_REGEX (those jumping to our chains), then the PREFIX* chains themselves,
# in every table.
remove_chains() {
  local ipt=$1 prefix=$2 match=$3 table rule chains c
  for table in filter nat mangle raw; do
    "$ipt" -t "$table" -S >/dev/null 2>&1 || continue
    while IFS= read -r rule; do
      # The rule is in iptables -S syntax: word-split on purpose, -A becomes -D.
      eval "\"$ipt\" -t $table ${rule/-A /-D }" 2>/dev/null || true
    done < <("$ipt" -t "$table" -S | grep -E '^-A ' | grep -vE "^-A $prefix" | grep -E -- "$match" || true)
    chains=$("$ipt" -t "$table" -S | awk -v p="^$prefix" '$1 == "-N" && $2 ~ p {print $2}')
    for c in $chains; do "$ipt" -t "$table" -F "$c" 2>/dev/null || true; done
    for c in $chains; do "$ipt" -t "$table" -X "$c" 2>/dev/null || true; done
  done
}
# The kubelet and kube-proxy make KUBE-* chains in filter, nat and mangle.
flush_kube_chains() { remove_chains "$1" KUBE- '-j KUBE-'; }

# After stopping the dockerd that `up` started: its iptables chains, the bridge and
# its cgroups go too.
undo_dockerd() {
  [[ -f $W/run/iptables.before ]] || return 0
  if [[ -f $W/run/iptables.before ]]; then
    iptables-restore <"$W/run/iptables.before" || log "warning: iptables-restore failed"
    rm -f "$W/run/iptables.before"
  fi
  if [[ -f $W/run/ip6tables.before ]]; then
    ip6tables-restore <"$W/run/ip6tables.before" 2>/dev/null || true
    rm -f "$W/run/ip6tables.before"
  fi
  # Tables that did not exist before (so are not in the snapshot) keep Docker's rules.
  remove_chains iptables DOCKER '-j DOCKER|docker0'
  remove_chains ip6tables DOCKER '-j DOCKER|docker0' 2>/dev/null || true
  if [[ -f $W/run/docker0.ours ]]; then
    ip link del docker0 2>/dev/null || true
    rm -f "$W/run/docker0.ours"
  fi
  local g
  for g in /sys/fs/cgroup/*/docker; do [[ -d $g ]] && rmdir "$g" 2>/dev/null || true; done
}

down_cluster() {
  local i c p
  if [[ -f $W/pids ]]; then
    # kubelet first (it would restart containers), the lock last.
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
      c=${COMPONENTS[i]}
      case $c in lock | dockerd) continue ;; esac
      for p in $(awk -v n="$c" '$1 == n {print $2}' "$W/pids"); do
        # SIGKILL: SIGTERM can hang the apiserver; nothing here needs a clean exit.
        stop_pid "$c" "$p" KILL 5
      done
    done
  fi
  DOCKER=$(command -v /usr/bin/docker || command -v docker || true)
  if [[ -n $DOCKER ]] && docker_answers; then
    local ids
    ids=$("$DOCKER" ps -aq --filter label=io.kubernetes.docker.type 2>/dev/null || true)
    if [[ -n $ids ]]; then
      # shellcheck disable=SC2086
      "$DOCKER" rm -f -v $ids >/dev/null 2>&1 || true
    fi
  fi
  # Mounts under the kubelet root (Secret/ConfigMap tmpfs, bind mounts), deepest first.
  local m
  if [[ -d $W/kubelet ]]; then
    while IFS= read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
    done < <(findmnt -rn -o TARGET | grep -E "^$W/kubelet(/|$)" | sort -r || true)
  fi
  if [[ -n ${KUBE_BIN_DIR:-} || -f $CACHE/env.sh ]]; then
    # shellcheck disable=SC1091
    [[ -n ${KUBE_BIN_DIR:-} ]] || source "$CACHE/env.sh"
    [[ -x $KUBE_BIN_DIR/kube-proxy ]] && "$KUBE_BIN_DIR/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  flush_kube_chains iptables
  command -v ip6tables >/dev/null && flush_kube_chains ip6tables
  if [[ -f $W/run/route ]]; then
    ip route del "$SERVICE_CIDR" dev docker0 2>/dev/null || true
    rm -f "$W/run/route"
  fi
  # dockerd last among processes: only if this workdir started it.
  for p in $(awk '$1 == "dockerd" {print $2}' "$W/pids" 2>/dev/null); do
    stop_pid dockerd "$p" TERM 20
  done
  undo_dockerd
  restore_sysctls
  if [[ -f $W/run/created-dirs ]]; then
    while IFS= read -r d; do [[ -n $d ]] && rm -rf "$d"; done <"$W/run/created-dirs"
    rm -f "$W/run/created-dirs"
  fi
  rm -rf "$HOSTPATH_PV_DIR" "$W/etcd" "$W/kubelet" "$W/dockershim" "$W/dns" \
    "$W"/*-certs "$W/kubelet-pki" "$W/kubelet-plugins"
  for p in $(awk '$1 == "lock" {print $2}' "$W/pids" 2>/dev/null); do
    if ours "$p"; then
      [[ $(cat "$OWNER_FILE" 2>/dev/null) == "$W" ]] && rm -f "$OWNER_FILE"
      stop_pid lock "$p" KILL 5
    fi
  done
  rm -f "$W/pids" "$W/env"
}

# ---------------------------------------------------------------- status, debug

kubectl_w() { "$KUBECTL" --kubeconfig="$W/kubeconfig" --request-timeout=10s "$@"; }

status_cluster() {
  local c ok=0 p
  for c in "${COMPONENTS[@]}"; do
    p=$(pid_of "$c")
    if [[ -z $p ]]; then
      [[ $c == dockerd ]] && { printf '%-24s %s\n' dockerd "not started by us"; continue; }
      printf '%-24s %s\n' "$c" "not started"; ok=1
    elif running "$c"; then printf '%-24s pid %s running\n' "$c" "$p"
    else printf '%-24s pid %s GONE (see %s)\n' "$c" "$p" "$W/$c.log"; ok=1
    fi
  done
  [[ $ok == 0 ]] || return 1
  kubectl_w get nodes -o wide && kubectl_w get pods -A -o wide
}

debug_cluster() {
  local ns
  printf '\n===== cluster components =====\n'
  status_cluster || true
  printf '\n===== events (all namespaces) =====\n'
  kubectl_w get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 80 || true
  printf '\n===== pods that are not Ready =====\n'
  local line
  while read -r ns name; do
    [[ -n $name ]] || continue
    printf '\n----- describe pod %s/%s -----\n' "$ns" "$name"
    kubectl_w describe pod -n "$ns" "$name" 2>&1 | tail -n 60 || true
  done < <(kubectl_w get pods -A -o json 2>/dev/null | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    conds = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
    if conds.get("Ready") != "True" and p["status"].get("phase") != "Succeeded":
        print(p["metadata"]["namespace"], p["metadata"]["name"])' || true)
  for ns in "$@"; do
    printf '\n===== namespace %s: objects =====\n' "$ns"
    kubectl_w get all,cm,secret,pvc,ingress -n "$ns" -o wide 2>&1 || true
    for line in $(kubectl_w get pods -n "$ns" -o name 2>/dev/null); do
      printf '\n----- logs %s/%s (all containers, last 200 lines) -----\n' "$ns" "$line"
      kubectl_w logs -n "$ns" "$line" --all-containers --tail=200 --timestamps 2>&1 || true
      if kubectl_w logs -n "$ns" "$line" --all-containers --previous --tail=1 >/dev/null 2>&1; then
        printf '\n----- previous logs %s/%s -----\n' "$ns" "$line"
        kubectl_w logs -n "$ns" "$line" --all-containers --previous --tail=100 2>&1 || true
      fi
    done
  done
  for c in kubelet kube-controller-manager kube-scheduler kube-proxy kube-apiserver; do
    [[ -f $W/$c.log ]] || continue
    printf '\n===== %s: last warnings/errors =====\n' "$c"
    grep -E '^[EW][0-9]{4}' "$W/$c.log" | tail -n 25 || true
  done
}

# ---------------------------------------------------------------- main

[[ $# -ge 2 ]] || usage
cmd=$1 W=$2
shift 2
case $cmd in
  up)
    [[ $# -eq 0 ]] || usage
    up_cluster
    ;;
  down)
    [[ -d $W ]] || exit 0
    W=$(cd "$W" && pwd -P)
    t0=$SECONDS
    down_cluster
    log "down in $((SECONDS - t0)) s"
    ;;
  status | debug)
    [[ -d $W ]] || die "no such workdir: $W"
    W=$(cd "$W" && pwd -P)
    KUBECTL=${KUBECTL:-}
    if [[ -z $KUBECTL && -f $CACHE/env.sh ]]; then
      # shellcheck disable=SC1091
      source "$CACHE/env.sh"
    fi
    if [[ $cmd == status ]]; then status_cluster; else debug_cluster "$@"; fi
    ;;
  *) usage ;;
esac
