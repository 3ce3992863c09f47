#!/usr/bin/env bash
# Build the Taxiway container images without a registry, straight into the local Docker
# (the node's Docker when tests/k8s/cluster.sh runs the cluster; pods then use
# imagePullPolicy Never or IfNotPresent).
#
#   tests/k8s/images.sh [TAG]          -> taxiway/server:TAG, taxiway/operator:TAG
#
# How: the binaries are compiled on the host (`cargo build --release`, incremental, so
# a warm rebuild takes seconds instead of a full compile inside Docker); then the
# project's own Dockerfile builds the images, with its build stage changed in two lines
# only: `COPY . .` copies just the prebuilt binaries and `RUN cargo build ...` is
# dropped. Its root-filesystem assembly (the libraries `ldd` lists, certificates, the
# 65532 user) and its runtime stages are used as they are, so the images are the ones
# users build: non-root, nothing but the binary and its libraries. Until the
# repository has a Dockerfile, tests/k8s/e2e/Dockerfile.prebuilt (same shape) is used.
#
# The build stage runs on a locally made Debian base, `taxiway-base:bookworm`:
# `debootstrap --variant=minbase bookworm` from the machine's own Debian mirror, imported
# with `docker import`; its tarball is cached under $TAXIWAY_CACHE/images.
#
# Environment:
#   TAXIWAY_IMAGE_TAG      tag (default: e2e; the first argument wins)
#   TAXIWAY_IMAGES         which images (default: "server operator", the ones whose
#                          crate exists)
#   TAXIWAY_BUILDER_IMAGE  base of the build stage (default: taxiway-base:bookworm)
#   TAXIWAY_RUNTIME_IMAGE  base of the final images (default: the Dockerfile's, scratch)
#   TAXIWAY_DOCKERFILE     the Dockerfile (default: <repo>/Dockerfile, else the fallback)
#   TAXIWAY_CARGO_PROFILE  release (default) or dev
#   CARGO_TARGET_DIR       as for cargo (default: <repo>/target)
#   TAXIWAY_PREBUILT_DIR   take taxiway-server / taxiway-operator from this directory
#                          instead of running cargo (e.g. binaries CI already built)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${TAXIWAY_CACHE:-$HOME/.cache/taxiway}
TAG=${1:-${TAXIWAY_IMAGE_TAG:-e2e}}
BUILDER_IMAGE=${TAXIWAY_BUILDER_IMAGE:-taxiway-base:bookworm}
RUNTIME_IMAGE=${TAXIWAY_RUNTIME_IMAGE:-}
PROFILE=${TAXIWAY_CARGO_PROFILE:-release}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BASE_TARBALL=$CACHE/images/debian-bookworm-minbase.tar

log() { printf '[images.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

DOCKER=$(command -v /usr/bin/docker || command -v docker) || die "no docker client"
timeout 10 "$DOCKER" version >/dev/null 2>&1 \
  || die "Docker does not answer: start the cluster first (tests/k8s/cluster.sh up DIR) or dockerd"
# The classic builder: no BuildKit/buildx needed, and it reads local images only.
export DOCKER_BUILDKIT=0

if [[ -n ${TAXIWAY_IMAGES:-} ]]; then
  read -r -a IMAGES <<<"$TAXIWAY_IMAGES"
else
  IMAGES=()
  [[ -f $REPO/server/Cargo.toml ]] && IMAGES+=(server)
  [[ -f $REPO/operator/Cargo.toml ]] && IMAGES+=(operator)
fi
((${#IMAGES[@]})) || die "nothing to build"

# ------------------------------------------------------------ the build-stage base

ensure_base_image() {
  [[ $BUILDER_IMAGE == taxiway-base:bookworm ]] || return 0
  "$DOCKER" image inspect "$BUILDER_IMAGE" >/dev/null 2>&1 && return
  if [[ ! -f $BASE_TARBALL ]]; then
    command -v debootstrap >/dev/null || {
      log "apt-get install debootstrap"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null
    }
    local mirror root t0=$SECONDS
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [[ -n $mirror ]] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [[ -n $mirror ]] || die "no Debian mirror found in the apt sources"
    root=$(mktemp -d "$CACHE/images.rootfs.XXXXXX")
    mkdir -p "$CACHE/images"
    log "debootstrap --variant=minbase bookworm (once; ~30 s)"
    if ! nice debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" \
        >"$CACHE/images/debootstrap.log" 2>&1; then
      tail -n 20 "$CACHE/images/debootstrap.log" >&2
      rm -rf "$root"
      die "debootstrap failed (log: $CACHE/images/debootstrap.log)"
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" --numeric-owner -cf "$BASE_TARBALL.tmp" .
    mv "$BASE_TARBALL.tmp" "$BASE_TARBALL"
    rm -rf "$root"
    log "base rootfs cached in $BASE_TARBALL ($((SECONDS - t0)) s)"
  fi
  log "docker import $BUILDER_IMAGE"
  "$DOCKER" import "$BASE_TARBALL" "$BUILDER_IMAGE" >/dev/null
}

# ------------------------------------------------------------ the Dockerfile

# The project's Dockerfile with its build stage taking prebuilt binaries: `COPY . .`
# becomes a copy of target/release/, and the `RUN cargo build` instruction goes.
prebuilt_dockerfile() {
  local src=$1
  awk '
    /^[[:space:]]*COPY[[:space:]]+\.[[:space:]]+\.[[:space:]]*$/ {
      print "COPY target/release/ target/release/"; copied++; next }
    skipping { if ($0 !~ /\\[[:space:]]*$/) skipping = 0; next }
    /^[[:space:]]*RUN[[:space:]].*cargo[[:space:]]+build/ {
      dropped++; if ($0 ~ /\\[[:space:]]*$/) skipping = 1; next }
    { print }
    END { if (copied != 1 || dropped != 1) exit 3 }
  ' "$src"
}

# ------------------------------------------------------------ main

t0=$SECONDS
ensure_base_image
if [[ -n ${TAXIWAY_PREBUILT_DIR:-} ]]; then
  out_dir=$TAXIWAY_PREBUILT_DIR
  log "binaries from $out_dir"
else
  bins=()
  for i in "${IMAGES[@]}"; do bins+=(-p "taxiway-$i"); done
  log "cargo build --$PROFILE ${bins[*]}"
  profile_flag=--release
  [[ $PROFILE == release ]] || profile_flag="--profile=$PROFILE"
  (cd "$REPO" && nice cargo build "$profile_flag" --locked "${bins[@]}") >&2
  out_dir=$TARGET_DIR/$PROFILE
  [[ $PROFILE == dev ]] && out_dir=$TARGET_DIR/debug
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/target/release"
for i in "${IMAGES[@]}"; do
  # A hard link when possible: the binaries are tens of MB.
  ln "$out_dir/taxiway-$i" "$ctx/target/release/" 2>/dev/null || cp "$out_dir/taxiway-$i" "$ctx/target/release/"
done

dockerfile=${TAXIWAY_DOCKERFILE:-}
if [[ -z $dockerfile ]]; then
  if [[ -f $REPO/Dockerfile ]]; then dockerfile=$REPO/Dockerfile
  else dockerfile=$HERE/e2e/Dockerfile.prebuilt
  fi
fi
if [[ $dockerfile == "$HERE/e2e/Dockerfile.prebuilt" ]]; then
  cp "$dockerfile" "$ctx/Dockerfile"
else
  prebuilt_dockerfile "$dockerfile" >"$ctx/Dockerfile" \
    || die "$dockerfile: expected one 'COPY . .' and one 'RUN cargo build' in its build stage; set TAXIWAY_DOCKERFILE to a Dockerfile whose build stage takes target/release/"
fi
log "Dockerfile: $dockerfile"

args=(--build-arg "BUILDER_IMAGE=$BUILDER_IMAGE")
[[ -n $RUNTIME_IMAGE ]] && args+=(--build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE")
# The build stage gets a tag of its own, so it is not left dangling; images that a
# rebuild replaces are removed.
replaced=()
for i in build-stage "${IMAGES[@]}"; do
  replaced+=("$("$DOCKER" image inspect -f '{{.Id}}' "taxiway/$i:$TAG" 2>/dev/null || true)")
done
"$DOCKER" build -q "${args[@]}" --target build -t taxiway/build-stage:"$TAG" "$ctx" >"$ctx/build-stage.log" 2>&1 \
  || { cat "$ctx/build-stage.log" >&2; die "docker build --target build failed"; }
for i in "${IMAGES[@]}"; do
  log "docker build --target $i -t taxiway/$i:$TAG"
  "$DOCKER" build -q "${args[@]}" --target "$i" -t "taxiway/$i:$TAG" "$ctx" >"$ctx/build-$i.log" 2>&1 \
    || { cat "$ctx/build-$i.log" >&2; die "docker build --target $i failed"; }
  printf 'taxiway/%s:%s %s\n' "$i" "$TAG" \
    "$("$DOCKER" image inspect -f '{{.Id}} {{.Size}} bytes, user {{.Config.User}}' "taxiway/$i:$TAG")"
done
for id in "${replaced[@]}"; do
  # Only images left without a tag; "in use" ones (a running container) stay.
  [[ -n $id && -z $("$DOCKER" image inspect -f '{{join .RepoTags ","}}' "$id" 2>/dev/null) ]] \
    && "$DOCKER" rmi "$id" >/dev/null 2>&1 || true
done
log "images built in $((SECONDS - t0)) s"
