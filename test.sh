#!/usr/bin/env bash
# Every test of the project, in the order of DESIGN.md's levels:
#   1-2. unit tests and local integration (real redis-server, real worker
#        processes, real faults), and the checked-in CRD against crdgen;
#   3.   the operator against a real etcd + kube-apiserver +
#        kube-controller-manager, with real helm (built from the Go module
#        proxy on first use and cached; see kind/controlplane/README.md);
#   4.   WordCountJobs on a single-node cluster where pods really run
#        (containerd, kubelet, kube-proxy, CoreDNS; our images built here
#        from kind/Dockerfile with Docker).
# Needs cargo and go; installs the rest with apt-get when missing (as root):
# redis-server, etcd, openssl, chromium and chromedriver, and for level 4
# containerd, runc, CNI plugins, iptables, conntrack, debootstrap, umoci, jq,
# gcc; docker.io to build kind/Dockerfile.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v openssl >/dev/null || missing+=(openssl)
# The level-4 cluster: containerd, runc, CNI plugins, iptables for
# kube-proxy and the policy enforcer; debootstrap and umoci build images.
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null || missing+=(iptables)
command -v conntrack >/dev/null || missing+=(conntrack)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v umoci >/dev/null || missing+=(umoci)
command -v jq >/dev/null || missing+=(jq)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
# kind/Dockerfile is built with Debian's Docker (kind/docker/build.sh).
{ command -v dockerd >/dev/null && [[ -x /usr/bin/docker ]]; } || missing+=(docker.io)
# The live view's test drives a real headless browser.
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || { echo "test.sh: Go is needed to build the Kubernetes test binaries" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The control-plane tests start etcd, kube-apiserver and friends; Redis
# tests start their own redis-server. A stray Debian service must not be in
# the way of either.
service redis-server stop >/dev/null 2>&1 || true
# Nor a Docker service: its bridge and NAT rules would stand in the level-4
# cluster's way (kind/docker/dockerd.sh runs a private one).
service docker stop >/dev/null 2>&1 || true

step() { printf '\n== %s\n' "$*" >&2; }

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --release -- -D warnings

step "unit and local integration tests"
cargo test --workspace --release

step "control plane: operator, CRD and chart against a real kube-apiserver"
operator/tests/controlplane.sh

step "cluster: WordCountJobs in real pods (helm install, faults, bad input)"
operator/tests/cluster.sh
