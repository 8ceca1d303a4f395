#!/usr/bin/env bash
# Every test of the project, in the order of DESIGN.md's levels:
#   1-2. unit tests and local integration (real redis-server, real worker
#        processes, real faults), and the checked-in CRD against crdgen;
#   3.   the operator against a real etcd + kube-apiserver +
#        kube-controller-manager, with real helm (built from the Go module
#        proxy on first use and cached; see kind/controlplane/README.md);
#   4.   WordCountJobs on a single-node cluster where pods really run
#        (containerd, kubelet, kube-proxy, CoreDNS; our images built here).
# Needs: cargo, redis-server, etcd, go, openssl, and for level 4 containerd,
# runc, CNI plugins, iptables, conntrack, debootstrap, umoci, jq, gcc
# (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")"

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
