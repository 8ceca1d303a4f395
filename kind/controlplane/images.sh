#!/usr/bin/env bash
# Builds the images a local cluster runs, without a registry or a Docker
# engine, and imports them into containerd's k8s.io namespace:
#
#   wordcount:dev           Debian (debootstrap) + redis-server + our `wordcount`
#   wordcount-operator:dev  the same base + `wordcount-operator`
#   wordcount-redisraft:dev wordcount:dev + the RedisRaft module, only when
#                           the module is on this machine (see below)
#   registry.k8s.io/pause   the sandbox image, built from Kubernetes' pause.c
#
#   images.sh CONTAINERD_SOCKET pause              # what every pod needs
#   images.sh CONTAINERD_SOCKET apps [TARGET_DIR]  # ours, like `kind load`
#
# TARGET_DIR holds the release binaries (default target/release;
# kind/binaries.sh makes the ones without the experiments). The Debian
# base is cached as an OCI layout keyed by suite and package list, so only
# the first run calls debootstrap (about a minute).
#
# RedisRaft is in no package registry: its module is built by hand
# (README: RedisRaft on Kubernetes) and found at WORDCOUNT_REDISRAFT
# (default $WORDCOUNT_CACHE/redisraft.so); it goes into the image where the
# operator looks for it (REDISRAFT_MODULE in operator/src/resources/redis_raft.rs).
#
# Env: WORDCOUNT_CACHE (default ~/.cache/wordcount), WORDCOUNT_TAG (dev),
#      WORDCOUNT_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#      WORDCOUNT_REDISRAFT.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
USAGE="usage: images.sh CONTAINERD_SOCKET pause|apps [TARGET_DIR]"
SOCK=${1:?$USAGE}
WHAT=${2:?$USAGE}
TARGET=${3:-$HERE/../../target/release}
TAG=${WORDCOUNT_TAG:-dev}
CACHE=${WORDCOUNT_CACHE:-$HOME/.cache/wordcount}
SUITE=bookworm
PACKAGES=redis-server,ca-certificates
MIRROR=${WORDCOUNT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=$CACHE/images/debian-$SUITE-$(echo "$PACKAGES" | sha256sum | cut -c1-12)
# Must equal containerd's sandbox_image (controlplane.sh writes it).
PAUSE_REF=registry.k8s.io/pause:3.10.1

log() { echo "images.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in debootstrap umoci ctr gcc; do
  command -v "$tool" >/dev/null || die "$tool not found: apt-get install debootstrap umoci containerd gcc"
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Debian with redis-server, as one layer, tagged "base".
build_base() {
  log "debootstrap $SUITE with $PACKAGES (once; cached in $BASE)"
  local root=$WORK/rootfs
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$root"/usr/share/{doc,man,locale,info}/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*
  umoci init --layout "$WORK/base"
  umoci new --image "$WORK/base:base"
  umoci insert --image "$WORK/base:base" "$root" /
  umoci config --image "$WORK/base:base" \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  mkdir -p "$(dirname "$BASE")"
  rm -rf "$BASE.partial" && mv "$WORK/base" "$BASE.partial" && mv "$BASE.partial" "$BASE"
  rm -rf "$root"
}

# Imports the layout's one tag as NAME:TAG.
import() {
  local layout=$1 name=$2
  tar -C "$layout" -cf "$layout.tar" .
  ctr --address "$SOCK" --namespace k8s.io images import --base-name "$name" \
    --digests "$layout.tar" >/dev/null
  rm -f "$layout.tar"
  log "imported $name"
}

# NAME BINARY [umoci config flags]: the base plus one binary in /usr/local/bin.
app_image() {
  local name=$1 bin=$2 layout=$WORK/$1
  shift 2
  cp -a "$BASE" "$layout"
  umoci insert --image "$layout:base" --tag "$TAG" "$TARGET/$bin" "/usr/local/bin/$bin"
  umoci config --image "$layout:$TAG" "$@"
  umoci rm --image "$layout:base"
  import "$layout" "docker.io/library/$name"
}

# The wordcount image plus the RedisRaft module at the operator's path.
redisraft_image() {
  local module=$1 layout=$WORK/wordcount-redisraft path
  path=$(sed -n 's/^pub const REDISRAFT_MODULE: &str = "\(.*\)";$/\1/p' \
    "$HERE/../../operator/src/resources/redis_raft.rs")
  [[ -n $path ]] || die "REDISRAFT_MODULE not found in operator/src/resources/redis_raft.rs"
  cp -a "$BASE" "$layout"
  umoci insert --image "$layout:base" "$TARGET/wordcount" /usr/local/bin/wordcount
  umoci insert --image "$layout:base" --tag "$TAG" "$module" "$path"
  umoci config --image "$layout:$TAG" --config.cmd wordcount --config.cmd --help \
    --config.user 65532:65532
  umoci rm --image "$layout:base"
  import "$layout" docker.io/library/wordcount-redisraft
}

pause_image() {
  local src layout=$WORK/pause tag=${PAUSE_REF##*:}
  src=$(go mod download -json "k8s.io/kubernetes@${WORDCOUNT_K8S_VERSION:-v1.34.10}" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -f $src/build/pause/linux/pause.c ]] || die "pause.c not found in the Kubernetes module"
  gcc -Os -Wall -static -DVERSION="v$tag" -o "$WORK/pause-bin" "$src/build/pause/linux/pause.c"
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci insert --image "$layout:$tag" "$WORK/pause-bin" /pause
  umoci config --image "$layout:$tag" --config.entrypoint /pause --config.user 65535:65535
  import "$layout" "${PAUSE_REF%:*}"
}

case $WHAT in
  pause)
    command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
    pause_image ;;
  apps)
    for bin in wordcount wordcount-operator; do
      [[ -x $TARGET/$bin ]] || die "$TARGET/$bin not found: cargo build --release first"
    done
    [[ -f $BASE/index.json ]] || build_base
    # Not root, like the jobs' pods (runAsUser), which the restricted Pod
    # Security Standard requires; every file they run is world-readable.
    app_image wordcount wordcount --config.cmd wordcount --config.cmd --help \
      --config.user 65532:65532
    app_image wordcount-operator wordcount-operator \
      --config.entrypoint /usr/local/bin/wordcount-operator --config.user 65532:65532
    module=${WORDCOUNT_REDISRAFT:-$CACHE/redisraft.so}
    if [[ -f $module ]]; then
      redisraft_image "$module"
    else
      log "no RedisRaft module at $module: wordcount-redisraft:$TAG not built"
    fi ;;
  *) die "$USAGE" ;;
esac
