#!/usr/bin/env bash
# A kind node image built on a machine that reaches no container registry
# (this project's test machine), for `kind create cluster --image`:
#
#   eval "$(kind/docker/dockerd.sh start)"
#   image=$(kind/node/build.sh | tail -n 1)
#   "$(kind/node/build.sh --kind)" create cluster --image "$image" ...
#
# Users pull kindest/node and need none of it. Here everything is built
# from source through the package registries and cached:
#
#   kind          sigs.k8s.io/kind from the Go module proxy (KIND_VERSION)
#   base image    kind's images/base files (from that module) on Debian 12:
#                 systemd, Debian's containerd 1.6, runc and CNI plugins
#   Kubernetes    kubeadm, kubelet, kubectl and the control plane's images
#                 from kind/controlplane/build.sh's binaries
#   other images  exactly the ones `kubeadm config images list` names
#                 (etcd, CoreDNS, pause), built from their sources at those
#                 versions; rancher's local-path-provisioner for the default
#                 StorageClass "standard"
#
# `kind build node-image` is not used: it pulls kindnetd and the storage
# images from their registries inside its build container. This script
# does its steps instead (a build container from the base, the binaries,
# /kind/version, the manifests, the images imported into the node's
# containerd, `docker commit`). kindnetd's source is not on the Go module
# proxy, so the node's default CNI is kind/node/cni.yaml: Debian's bridge
# plugin on the cluster's pod subnet, for one-node clusters. NetworkPolicies,
# which kindnetd would enforce, are enforced by kind/node/netpol.sh,
# run in the node by systemd (wordcount-netpol.service).
#
#   kind/node/build.sh          # builds what is missing; prints the image last
#   kind/node/build.sh --kind   # builds kind if missing; prints its path
#
# Needs a running Docker (DOCKER_HOST) with wordcount-local/debian
# (kind/docker/base-images.sh), Go, and Debian's docker.io client.
# Env: WORDCOUNT_CACHE (default ~/.cache/wordcount), WORDCOUNT_KIND_VERSION.
set -euo pipefail
cd "$(dirname "$0")/../.."
KIND_VERSION=${WORDCOUNT_KIND_VERSION:-v0.33.0}
PROVISIONER_VERSION=v0.0.30 # rancher/local-path-provisioner
CACHE=${WORDCOUNT_CACHE:-$HOME/.cache/wordcount}
DEBIAN_IMAGE=wordcount-local/debian:bookworm-slim
docker() { DOCKER_BUILDKIT=1 /usr/bin/docker "$@"; }
log() { echo "node/build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || die "go not found (install Go >= 1.24)"
export GOTOOLCHAIN=local CGO_ENABLED=0

# go_install NAME MODULE VERSION: the main package at MODULE's root, built
# once into $CACHE/NAME/VERSION/bin/NAME (printed). It is built through a
# throwaway module that requires MODULE, so a module whose go.mod replaces
# its siblings with local paths (etcd) builds too.
go_install() {
  local name=$1 module=$2 version=$3 dir=$CACHE/$1/$3
  if [[ ! -x $dir/bin/$name ]]; then
    log "building $name $version from the Go module proxy"
    rm -rf "$dir/src" "$dir/bin.partial" && mkdir -p "$dir/src" "$dir/bin.partial"
    printf 'module wordcount.local/%s-build\n\ngo 1.24\n\nrequire %s %s\n\ntool %s\n' \
      "$name" "$module" "$version" "$module" >"$dir/src/go.mod"
    (cd "$dir/src" && go mod tidy >&2 &&
      go build -trimpath -ldflags "-s -w" -o "$dir/bin.partial/$name" "$module")
    rm -rf "$dir/bin" && mv "$dir/bin.partial" "$dir/bin"
  fi
  echo "$dir/bin/$name"
}

# The source of MODULE@VERSION, from the module cache.
module_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

KIND=$(go_install kind sigs.k8s.io/kind "$KIND_VERSION")
if [[ ${1:-} == --kind ]]; then echo "$KIND"; exit 0; fi
[[ -n ${DOCKER_HOST:-} ]] || die "DOCKER_HOST is not set: eval \"\$(kind/docker/dockerd.sh start)\""
KIND_SRC=$(module_dir "sigs.k8s.io/kind@$KIND_VERSION")
BIN=$(kind/controlplane/build.sh | tail -n 1)
K8S_VERSION=$("$BIN/kubeadm" version -o short)
have() { docker image inspect "$1" >/dev/null 2>&1; }

# --- the base: kind's images/base on Debian's packages ---------------------
# As kind's images/base/Dockerfile, with Debian's containerd, runc and CNI
# plugins in place of those it builds from source. containerd gets
# restrict_oom_score_adj: this machine's containers lack CAP_SYS_RESOURCE,
# so runc may not lower a pod's OOM score below the node's.
base_dockerfile=$(cat <<DOCKERFILE
FROM $DEBIAN_IMAGE
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      systemd systemd-sysv dbus conntrack iptables nftables iproute2 ethtool \
      util-linux mount kmod libseccomp2 pigz bash ca-certificates curl jq procps \
      containerd runc containernetworking-plugins \
 && rm -rf /var/lib/apt/lists/*
COPY files/usr/local/bin/ /usr/local/bin/
COPY files/kind/ /kind/
COPY files/etc/ /etc/
RUN chmod -R a+rX /kind /etc/containerd /etc/default /etc/sysctl.d /etc/systemd/system /etc/crictl.yaml \
 && chmod 755 /usr/local/bin/* /kind/bin/* \
 && find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete \
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
 && ln -sf /usr/bin/containerd /usr/local/bin/containerd \
 && mkdir -p /opt/cni && ln -s /usr/lib/cni /opt/cni/bin \
 && sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' /etc/containerd/config.toml \
 && ctr oci spec \
      | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
      | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
 && systemctl mask systemd-binfmt.service \
 && mkdir -p /etc/kubernetes/manifests
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]
DOCKERFILE
)
# Tagged by what goes into it, so a change rebuilds it.
base_hash=$(echo "$base_dockerfile" | sha256sum | cut -c1-12)
BASE_IMAGE=wordcount-local/kind-base:$KIND_VERSION-$base_hash
if ! have "$BASE_IMAGE"; then
  log "building $BASE_IMAGE"
  echo "$base_dockerfile" |
    docker build --network host -q -t "$BASE_IMAGE" -f - "$KIND_SRC/images/base" >/dev/null
fi

# --- the images the node starts with ----------------------------------------
# image REF DOCKERFILE_BODY CONTEXT: builds REF FROM debian unless present.
image() {
  have "$1" && return 0
  log "building $1"
  printf 'FROM %s\n%s\n' "$DEBIAN_IMAGE" "$2" |
    docker build --network host -q -t "$1" -f - "$3" >/dev/null
}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$BIN"/kube-{apiserver,controller-manager,scheduler,proxy} "$ctx/"
images=()
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  image "registry.k8s.io/$cmd:$K8S_VERSION" "COPY $cmd /usr/local/bin/" "$ctx"
  images+=("registry.k8s.io/$cmd:$K8S_VERSION")
done
image "registry.k8s.io/kube-proxy:$K8S_VERSION" "RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables conntrack ipset kmod \
 && rm -rf /var/lib/apt/lists/*
COPY kube-proxy /usr/local/bin/" "$ctx"
images+=("registry.k8s.io/kube-proxy:$K8S_VERSION")

# The rest at the versions this kubeadm asks for.
for ref in $("$BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION"); do
  tag=${ref##*:}
  case $ref in
    */kube-*) continue ;;
    */etcd:*)
      version=v${tag%-*} # 3.6.5-0 is etcd v3.6.5, image revision 0
      cp "$(go_install etcd go.etcd.io/etcd/server/v3 "$version")" "$ctx/etcd"
      image "$ref" "COPY etcd /usr/local/bin/" "$ctx" ;;
    */coredns:*)
      cp "$(go_install coredns github.com/coredns/coredns "$tag")" "$ctx/coredns"
      image "$ref" "COPY coredns /coredns
ENTRYPOINT [\"/coredns\"]" "$ctx" ;;
    */pause:*)
      if ! have "$ref"; then
        src=$(module_dir "k8s.io/kubernetes@$K8S_VERSION")
        gcc -Os -Wall -static -DVERSION="v$tag" -o "$ctx/pause" "$src/build/pause/linux/pause.c"
        printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' |
          docker build -q -t "$ref" -f - "$ctx" >/dev/null
      fi
      # kind's containerd config names its own pause; one version: kubeadm's.
      pause=$ref ;;
    *) die "kubeadm needs $ref, which this script cannot build" ;;
  esac
  images+=("$ref")
done
PROVISIONER=wordcount-local/local-path-provisioner:$PROVISIONER_VERSION
cp "$(go_install local-path-provisioner github.com/rancher/local-path-provisioner "$PROVISIONER_VERSION")" "$ctx/"
image "$PROVISIONER" "COPY local-path-provisioner /usr/bin/" "$ctx"
images+=("$PROVISIONER" "$DEBIAN_IMAGE")

# The default StorageClass as kind's: rancher's own manifest, its class
# renamed "standard" and made the default, our images in it.
provisioner_src=$(module_dir "github.com/rancher/local-path-provisioner@$PROVISIONER_VERSION")
sed -e "s|image: rancher/local-path-provisioner:.*|image: $PROVISIONER|" \
  -e "s|image: busybox|image: $DEBIAN_IMAGE|" \
  -e "s|^  name: local-path$|  name: standard\n  annotations:\n    storageclass.kubernetes.io/is-default-class: \"true\"|" \
  "$provisioner_src/deploy/local-path-storage.yaml" >"$ctx/default-storage.yaml"
grep -q 'is-default-class' "$ctx/default-storage.yaml" || die "local-path-storage.yaml: no StorageClass local-path"

# --- the node ---------------------------------------------------------------
node_hash=$( (echo "$base_hash ${images[*]}"
  cat kind/node/cni.yaml kind/node/netpol.sh "$ctx/default-storage.yaml"
  sha256sum "$BIN"/{kubeadm,kubelet,kubectl}) | sha256sum | cut -c1-12)
NODE_IMAGE=wordcount-local/kind-node:$K8S_VERSION-$node_hash
if ! have "$NODE_IMAGE"; then
  log "building $NODE_IMAGE"
  id=$(docker run -d --entrypoint=sleep --security-opt seccomp=unconfined --network none \
    "$BASE_IMAGE" infinity)
  trap 'docker rm -f -v "$id" >/dev/null; rm -rf "$ctx"' EXIT
  on_node() { docker exec -i "$id" "$@"; }
  for cmd in kubeadm kubelet kubectl; do docker cp "$BIN/$cmd" "$id:/usr/bin/$cmd"; done
  echo "$K8S_VERSION" | on_node tee /kind/version >/dev/null
  on_node mkdir -p /kind/manifests
  on_node tee /kind/manifests/default-cni.yaml <kind/node/cni.yaml >/dev/null
  on_node tee /kind/manifests/default-storage.yaml <"$ctx/default-storage.yaml" >/dev/null
  docker cp kind/node/netpol.sh "$id:/usr/local/bin/wordcount-netpol"
  on_node tee /etc/systemd/system/wordcount-netpol.service >/dev/null <<'UNIT'
[Unit]
Description=NetworkPolicy enforcer (wordcount's netpol.sh, in place of kindnetd's)
After=kubelet.service
[Service]
ExecStart=/usr/local/bin/wordcount-netpol /etc/kubernetes/admin.conf
Restart=always
RestartSec=2
[Install]
WantedBy=multi-user.target
UNIT
  on_node systemctl enable wordcount-netpol.service
  on_node sed -i "s|sandbox_image = .*|sandbox_image = \"$pause\"|" /etc/containerd/config.toml
  # The images go into the node's containerd as kind's build puts them.
  on_node bash -c 'nohup containerd >/dev/null 2>&1 &'
  on_node bash -c 'for i in $(seq 30); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.5; done; ctr version >/dev/null'
  docker save "${images[@]}" | on_node ctr --namespace=k8s.io images import \
    --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - >/dev/null
  on_node ctr --namespace=k8s.io images list -q | grep -v '^sha256:' >&2
  on_node pkill containerd
  docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
    "$id" "$NODE_IMAGE" >/dev/null
  log "built $NODE_IMAGE"
  # Older builds go, but not one a node still runs.
  docker image ls --format '{{.Repository}}:{{.Tag}}' 'wordcount-local/kind-*' |
    grep -vxF -e "$NODE_IMAGE" -e "$BASE_IMAGE" | xargs -r docker rmi >/dev/null 2>&1 || true
fi
echo "$NODE_IMAGE"
