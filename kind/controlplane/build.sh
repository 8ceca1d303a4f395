#!/usr/bin/env bash
# Builds a pinned Kubernetes (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl; kubeadm, kubelet and kube-proxy for the kind node
# image of kind/node/build.sh) and helm from source, through the Go module
# proxy, into a cache. No prebuilt binaries.
#
# Prints the bin dir as its last line of stdout; progress goes to stderr.
# A second run finds the binaries and returns at once.
#
# Env: WORDCOUNT_CACHE (default ~/.cache/wordcount),
#      WORDCOUNT_K8S_VERSION, WORDCOUNT_HELM_VERSION (override the pins).
set -euo pipefail

K8S_VERSION=${WORDCOUNT_K8S_VERSION:-v1.34.10}
HELM_VERSION=${WORDCOUNT_HELM_VERSION:-v3.19.5} # the Helm line built on k8s 1.34 libraries
CACHE=${WORDCOUNT_CACHE:-$HOME/.cache/wordcount}
K8S_ROOT=$CACHE/k8s/$K8S_VERSION
BIN=$K8S_ROOT/bin
HELM_BIN=$CACHE/helm/$HELM_VERSION/bin
K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy kubeadm)

log() { echo "build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# True when every binary is in place; helm is a symlink into its own versioned dir.
built() {
  local cmd
  for cmd in "${K8S_CMDS[@]}"; do [[ -x $BIN/$cmd ]] || return 1; done
  [[ -x $HELM_BIN/helm && $(readlink "$BIN/helm" 2>/dev/null) == "$HELM_BIN/helm" ]]
}

setup_go() {
  command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
  command -v go >/dev/null || die "go not found (install Go >= 1.24)"
  # Never let go fetch a prebuilt toolchain; static binaries like upstream's.
  export GOTOOLCHAIN=local CGO_ENABLED=0
}

# Version stamps the way upstream's hack/lib/version.sh sets them, so that
# `kubectl version` and the apiserver's /version report the real release
# (helm reads it for .Capabilities.KubeVersion and chart kubeVersion checks).
k8s_ldflags() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local pkg flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

# k8s.io/kubernetes replaces its k8s.io/* modules with ./staging, so
# `go install k8s.io/kubernetes/cmd/...@v` is refused. A throwaway module
# requires it and points every staging module at its published v0.Y.Z.
write_wrapper_module() {
  local dir=$1 gomod staging=v0.${K8S_VERSION#v1.}
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
  mkdir -p "$dir"
  {
    echo "module wordcount.local/k8s-build"
    echo
    sed -n '/^go /p; /^godebug /p' "$gomod" # same Go semantics as upstream
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "tool ("
    printf '\tk8s.io/kubernetes/cmd/%s\n' "${K8S_CMDS[@]}"
    echo ")"
    echo
    echo "replace ("
    sed -n "s#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\t\1 => \1 $staging#p" "$gomod"
    echo ")"
  } >"$dir/go.mod"
}

build_k8s() {
  local src=$K8S_ROOT/src out=$K8S_ROOT/bin.partial
  log "building ${K8S_CMDS[*]} $K8S_VERSION (cold: 10-25 min on 2 cores; with warm Go caches: ~2 min)"
  write_wrapper_module "$src"
  (cd "$src" && go mod tidy)
  rm -rf "$out" && mkdir -p "$out"
  (cd "$src" && go build -trimpath -ldflags "$(k8s_ldflags)" -o "$out/" tool)
  mkdir -p "$BIN"
  mv -f "$out"/* "$BIN/" && rmdir "$out"
}

# The Kubernetes version stamps are those of upstream's Makefile: without
# them `helm template` assumes Kubernetes 1.20 and refuses our chart.
build_helm() {
  log "building helm $HELM_VERSION"
  local minor=${K8S_VERSION#v1.} pkg flags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  minor=${minor%%.*}
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    flags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  mkdir -p "$HELM_BIN.partial"
  GOBIN=$HELM_BIN.partial go install -trimpath -ldflags "$flags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  rm -rf "$HELM_BIN" && mv "$HELM_BIN.partial" "$HELM_BIN"
}

main() {
  if ! built; then
    mkdir -p "$K8S_ROOT"
    exec 9>"$K8S_ROOT/.lock" # serialize concurrent builds (parallel test jobs)
    flock 9
    if ! built; then
      setup_go
      local cmd
      for cmd in "${K8S_CMDS[@]}"; do
        [[ -x $BIN/$cmd ]] || { build_k8s; break; }
      done
      [[ -x $HELM_BIN/helm ]] || build_helm
      ln -sfn "$HELM_BIN/helm" "$BIN/helm"
      built || die "binaries missing after build"
      log "done"
    fi
  fi
  echo "$BIN"
}

main "$@"
