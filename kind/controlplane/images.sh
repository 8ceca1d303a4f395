#!/usr/bin/env bash
# The sandbox image every pod needs, built without Docker or a registry
# from Kubernetes' pause.c, and imported into containerd's k8s.io
# namespace (our own images are built from kind/Dockerfile by
# kind/docker/build.sh):
#
#   images.sh CONTAINERD_SOCKET
set -euo pipefail

SOCK=${1:?usage: images.sh CONTAINERD_SOCKET}
# Must equal containerd's sandbox_image (controlplane.sh writes it).
PAUSE_REF=registry.k8s.io/pause:3.10.1

log() { echo "images.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in umoci ctr gcc; do
  command -v "$tool" >/dev/null || die "$tool not found: apt-get install umoci containerd gcc"
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Imports the layout's one tag as NAME:TAG.
import() {
  local layout=$1 name=$2
  tar -C "$layout" -cf "$layout.tar" .
  ctr --address "$SOCK" --namespace k8s.io images import --base-name "$name" \
    --digests "$layout.tar" >/dev/null
  rm -f "$layout.tar"
  log "imported $name"
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

command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
pause_image
