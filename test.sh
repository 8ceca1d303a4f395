#!/usr/bin/env bash
# Every test of the project, in the order of the test levels of
# docs/src/architecture.md:
#   1-2. unit tests and local integration (real redis-server, real worker
#        processes, real faults), and the checked-in CRD against crdgen;
#   3.   the operator against a real etcd + kube-apiserver +
#        kube-controller-manager, with real helm (built from the Go module
#        proxy on first use and cached; see kind/controlplane/README.md);
#   4.   WordCountJobs on a kind cluster where pods really run (its node
#        image and our images from kind/Dockerfile built here with Docker).
# Needs cargo and go; installs the rest with apt-get when missing (as root):
# redis-server, etcd, openssl, chromium and chromedriver, and for level 4
# docker.io, debootstrap, jq and gcc.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v openssl >/dev/null || missing+=(openssl)
# Level 4: Debian's Docker runs kind and builds the images
# (kind/docker/dockerd.sh), on a Debian base made by debootstrap; gcc builds
# the pause image; jq reads JSON in the scripts.
{ command -v dockerd >/dev/null && [[ -x /usr/bin/docker ]]; } || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v jq >/dev/null || missing+=(jq)
# The object-store scenario uploads and downloads with a common S3 client.
command -v s3cmd >/dev/null || missing+=(s3cmd)
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
# Nor a Docker service: kind/docker/dockerd.sh runs a private one, without
# the bridge and NAT rules a Docker service would add to the machine.
service docker stop >/dev/null 2>&1 || true

step() { printf '\n== %s\n' "$*" >&2; }

# The store crate's tests run a real S3 server, versitygw, built from the Go
# module proxy on first use and cached (store/versitygw.sh).
WORDCOUNT_VERSITYGW=$(store/versitygw.sh | tail -1)
export WORDCOUNT_VERSITYGW

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --release -- -D warnings

step "unit and local integration tests"
cargo test --workspace --release

step "the README's five-minute tour, its local commands as written"
cargo build --release -q -p wordcount
bash docs/tour.sh

step "control plane: operator, CRD and chart against a real kube-apiserver"
operator/tests/controlplane.sh

step "cluster: WordCountJobs in real pods on kind (helm install, faults, bad input)"
operator/tests/cluster.sh
