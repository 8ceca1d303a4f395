#!/usr/bin/env bash
# The FROM images of kind/Dockerfile, built on a machine that reaches no
# container registry (this project's test machine), for
#
#   docker build --network host \
#     --build-arg DEBIAN_IMAGE=wordcount-local/debian:bookworm-slim \
#     --build-arg RUST_IMAGE=wordcount-local/rust:VERSION-bookworm ...
#
#   wordcount-local/debian:bookworm-slim  debootstrap --variant=minbase from
#                                          Debian's mirror, `docker import`ed
#   wordcount-local/rust:VERSION-bookworm that + gcc + this host's Rust
#                                          toolchain (rustc --print sysroot)
#                                          + the host's own CAs (the test
#                                          machine reaches crates.io through
#                                          an HTTPS proxy with its own CA)
#
# Users pull the public debian and rust images instead and need none of it.
# Needs debootstrap and a running Docker (kind/docker/dockerd.sh start).
# Env: WORDCOUNT_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
SUITE=bookworm
MIRROR=${WORDCOUNT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_IMAGE=wordcount-local/debian:$SUITE-slim
# One image per host toolchain: a new rustc makes a new image.
RUST_IMAGE=wordcount-local/rust:$(rustc --version | cut -d' ' -f2)-$SUITE
WORK=$(mktemp -d /tmp/wordcount-base.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
log() { echo "base-images.sh: $*" >&2; }

if ! docker image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then
  log "debootstrap $SUITE into $WORK/root"
  debootstrap --variant=minbase "$SUITE" "$WORK/root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 20 "$WORK/debootstrap.log" >&2; exit 1; }
  # Like the public image: the mirror's three suites, no lists, no docs.
  rm -f "$WORK/root/etc/apt/sources.list"
  cat >"$WORK/root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  # And the public image's apt and dpkg settings: no package caches, no
  # translations, no docs in later installs.
  printf '%s\n' 'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' \
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };' \
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };' \
    >"$WORK/root/etc/apt/apt.conf.d/docker-clean"
  echo 'Acquire::Languages "none";' >"$WORK/root/etc/apt/apt.conf.d/docker-no-languages"
  printf 'path-exclude %s\n' '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' \
    '/usr/share/locale/*' >"$WORK/root/etc/dpkg/dpkg.cfg.d/docker"
  rm -rf "$WORK"/root/var/lib/apt/lists/* "$WORK"/root/var/cache/apt/*.bin \
    "$WORK"/root/var/cache/apt/archives/*.deb "$WORK"/root/usr/share/{doc,man,info}/*
  tar -C "$WORK/root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$WORK/root"
  log "built $DEBIAN_IMAGE"
fi

if ! docker image inspect "$RUST_IMAGE" >/dev/null 2>&1; then
  # The host's toolchain without its docs, as hard links (no copy).
  sysroot=$(rustc --print sysroot)
  mkdir -p "$WORK/ctx/rust" "$WORK/ctx/ca"
  cp -al "$sysroot/bin" "$sysroot/lib" "$sysroot/libexec" "$WORK/ctx/rust/"
  cp /usr/local/share/ca-certificates/*.crt "$WORK/ctx/ca/" 2>/dev/null || true
  # The public image's layout: CARGO_HOME=/usr/local/cargo (the Dockerfile's
  # registry cache mount), its tools in /usr/local/cargo/bin.
  docker build --network host -t "$RUST_IMAGE" -f - "$WORK/ctx" >&2 <<DOCKERFILE
FROM $DEBIAN_IMAGE
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY rust/ /usr/local/rust/
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin \
 && ln -s /usr/local/rust/bin/* /usr/local/cargo/bin/ \
 && cargo --version && rustc --version
DOCKERFILE
  log "built $RUST_IMAGE ($(rustc --version))"
fi
