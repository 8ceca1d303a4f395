#!/usr/bin/env bash
# The operator's tests that need more than `cargo test`:
#  - tests/pod_commands.rs: the pods' commands as the operator builds them,
#    run as local processes (needs redis-server and the wordcount binary);
#  - tests/apiserver.rs: against a real control plane (etcd, kube-apiserver,
#    kube-controller-manager, kube-scheduler from kind/controlplane, built
#    from the Go module proxy and cached), which this script brings up and
#    takes down again.
#
#   operator/tests/controlplane.sh            # from anywhere
#   KEEP=1 operator/tests/controlplane.sh     # leave the control plane up
#
# Extra arguments go to the test binaries (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# Release, like test.sh, so that nothing is compiled twice.
profile=(--profile "${CARGO_PROFILE:-release}")
cargo build "${profile[@]}" -p wordcount
cargo test "${profile[@]}" -p wordcount-operator --test pod_commands -- --ignored "$@"

CP=kind/controlplane/controlplane.sh
# A state dir of our own, so this never stops a control plane someone else
# (another test script) brought up.
export WORDCOUNT_CP_STATE=${WORDCOUNT_CP_STATE:-/tmp/wordcount-cp-operator}
if [[ ${KEEP:-0} != 1 ]]; then
  trap '"$CP" down || true' EXIT
fi
env_lines=$("$CP" up)
eval "$env_lines" # KUBECONFIG, and PATH with kubectl and helm
export WORDCOUNT_KUBECONFIG=$KUBECONFIG
cargo test "${profile[@]}" -p wordcount-operator --test apiserver -- --ignored "$@"
