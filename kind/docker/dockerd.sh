#!/usr/bin/env bash
# A private Docker engine for this project's test machine only: Debian's
# dockerd (apt-get install docker.io) started by hand, with its own data
# root, exec root and socket, beside anything else on the machine. Users'
# Docker (Docker Desktop, a distribution's docker service) needs none of it.
#
# Why: the test machine has no systemd, drops CAP_SYS_RESOURCE from every
# process's bounding set (runc-nosysresource, the default runtime here,
# works around it for --privileged containers), and must keep its network
# as the level-4 tests find it: no docker0 bridge, no iptables rules, so
# containers and builds use --network host.
#
#   eval "$(kind/docker/dockerd.sh start)"   # exports DOCKER_HOST
#   kind/docker/base-images.sh                # the FROM images, once
#   DOCKER_BUILDKIT=1 /usr/bin/docker build --network host \
#     --build-arg RUST_IMAGE=wordcount-local/rust:VERSION-bookworm \
#     --build-arg DEBIAN_IMAGE=wordcount-local/debian:bookworm-slim \
#     -f kind/Dockerfile --target wordcount -t wordcount:dev .
#   kind/docker/dockerd.sh stop               # the daemon and its containerd
#
# kind/docker/build.sh does all of it, and checks the images.
#
# /usr/bin/docker is Debian's 20.10 client, which has BuildKit built in (the
# Dockerfile's RUN --mount needs it); a newer client without the buildx
# plugin falls back to the legacy builder. A docker0 bridge with iptables
# NAT would set FORWARD's policy to DROP under the level-4 cluster's pods.
#
# Env: WORDCOUNT_DOCKER (data, default ~/.cache/wordcount/docker),
#      WORDCOUNT_DOCKER_RUN (socket, pid, exec root; /tmp/wordcount-docker).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA=${WORDCOUNT_DOCKER:-$HOME/.cache/wordcount/docker}
RUN=${WORDCOUNT_DOCKER_RUN:-/tmp/wordcount-docker}
SOCK=$RUN/docker.sock PID=$RUN/dockerd.pid

log() { echo "dockerd.sh: $*" >&2; }
running() { [[ -f $PID ]] && kill -0 "$(cat "$PID")" 2>/dev/null; }

start() {
  command -v dockerd >/dev/null || { log "dockerd not found: apt-get install docker.io"; exit 1; }
  mkdir -p "$DATA/data-root" "$RUN"
  if ! running; then
    dockerd --data-root "$DATA/data-root" --exec-root "$RUN/exec" --pidfile "$PID" \
      -H "unix://$SOCK" --bridge none --iptables=false --ip-masq=false \
      --add-runtime "wc-runc=$HERE/runc-nosysresource" --default-runtime wc-runc \
      >>"$DATA/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 60); do
      DOCKER_HOST=unix://$SOCK docker version >/dev/null 2>&1 && break
      sleep 0.5
    done
    DOCKER_HOST=unix://$SOCK docker version >/dev/null || { tail -n 20 "$DATA/dockerd.log" >&2; exit 1; }
  fi
  echo "export DOCKER_HOST=unix://$SOCK"
}

stop() {
  if running; then
    local pid
    pid=$(cat "$PID")
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { log "dockerd $pid still running after 30s"; exit 1; }
  fi
  # dockerd leaves its default network namespace mounted; anything else
  # left is a bug.
  if mountpoint -q "$RUN/exec/netns/default"; then umount "$RUN/exec/netns/default"; fi
  if findmnt -rn -o TARGET | grep -E "^($DATA|$RUN)/"; then
    log "mounts left (above)"; exit 1
  fi
  log "stopped; $(du -sh "$DATA" 2>/dev/null | cut -f1) in $DATA"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: dockerd.sh start|stop" >&2; exit 2 ;;
esac
