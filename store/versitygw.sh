#!/usr/bin/env bash
# Builds Versity's S3 gateway, versitygw (Apache-2.0), from source through
# the Go module proxy into a cache: a real S3 server for the store crate's
# tests (store::server::LocalS3 runs `versitygw posix DIR`). No prebuilt
# binaries.
#
# Prints the binary's path as its last line of stdout; progress goes to
# stderr. A second run finds the binary and returns at once.
#
# Env: WORDCOUNT_CACHE (default ~/.cache/wordcount),
#      WORDCOUNT_VERSITYGW_VERSION (overrides the pin).
set -euo pipefail

VERSION=${WORDCOUNT_VERSITYGW_VERSION:-v1.8.0}
CACHE=${WORDCOUNT_CACHE:-$HOME/.cache/wordcount}
ROOT=$CACHE/versitygw/$VERSION
BIN=$ROOT/versitygw
# The module's main package (the module root itself is a library).
PKG=github.com/versity/versitygw/cmd/versitygw

log() { echo "versitygw.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

setup_go() {
  command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
  command -v go >/dev/null || die "go not found (install Go >= 1.25)"
  # Never let go fetch a prebuilt toolchain; a static binary.
  export GOTOOLCHAIN=local CGO_ENABLED=0
}

build() {
  log "building versitygw $VERSION (cold: a few minutes on 2 cores)"
  # Into a .partial dir then renamed, so an interrupted build never leaves
  # a binary that `[[ -x $BIN ]]` would take for a finished one. The
  # version stamps are those upstream's Makefile sets (`versitygw --version`).
  rm -rf "$ROOT.partial" && mkdir -p "$ROOT.partial"
  GOBIN=$ROOT.partial go install -trimpath \
    -ldflags "-s -w -X=main.Version=$VERSION -X=main.Build=$VERSION -X=main.BuildTime=none" \
    "$PKG@$VERSION"
  mv -f "$ROOT.partial/versitygw" "$BIN"
  rmdir "$ROOT.partial"
}

main() {
  if [[ ! -x $BIN ]]; then
    mkdir -p "$ROOT"
    exec 9>"$ROOT/.lock" # serialize concurrent builds (parallel test jobs)
    flock 9
    if [[ ! -x $BIN ]]; then
      setup_go
      build
      [[ -x $BIN ]] || die "$BIN missing after build"
      log "done"
    fi
  fi
  echo "$BIN"
}

main "$@"
