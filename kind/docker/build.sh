#!/usr/bin/env bash
# Builds the project's two images with Docker from kind/Dockerfile, the
# file users build, on this test machine (a private dockerd, local FROM
# images: see dockerd.sh and base-images.sh), and checks that they run:
# `wordcount count` in the image gives the host binary's counts, Redis and
# the operator start.
#
#   kind/docker/build.sh [TAG]        # wordcount:TAG, wordcount-operator:TAG (dev)
#
# With the RedisRaft module on this machine (WORDCOUNT_REDISRAFT, default
# ~/.cache/wordcount/redisraft.so; docs/src/kubernetes.md: RedisRaft on Kubernetes), also
# wordcount-redisraft:TAG: wordcount:TAG plus the module where the operator
# looks for it. And wordcount-s3:TAG, the S3 server of examples/s3-server.yaml
# (versitygw, built from source by store/versitygw.sh). Prints the images built, one a line, for `kind load
# docker-image` (operator/tests/cluster.sh).
#
# A daemon it starts is stopped at the end; its data (images, cargo's
# caches) stay under ~/.cache/wordcount/docker, so a second build takes
# seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${1:-dev}
HERE=kind/docker
# Debian's client: it has BuildKit built in, which RUN --mount needs.
docker() { DOCKER_BUILDKIT=1 /usr/bin/docker "$@"; }
log() { echo "build.sh: $*" >&2; }

command -v dockerd >/dev/null && [[ -x /usr/bin/docker ]] ||
  { log "needs Debian's Docker: apt-get install docker.io"; exit 1; }
# With DOCKER_HOST set, that Docker is used and left running (kind's nodes
# may be in it); without, the private one is started, and stopped at the end.
if [[ -z ${DOCKER_HOST:-} ]]; then
  eval "$("$HERE/dockerd.sh" start)"
  trap '"$HERE/dockerd.sh" stop' EXIT
fi
"$HERE/base-images.sh"

for target in wordcount operator; do
  name=wordcount-$target
  [[ $target == wordcount ]] && name=wordcount
  log "docker build --target $target -t $name:$TAG"
  start=$SECONDS
  docker build --network host -q -f kind/Dockerfile --target "$target" -t "$name:$TAG" \
    --build-arg RUST_IMAGE="wordcount-local/rust:$(rustc --version | cut -d' ' -f2)-bookworm" \
    --build-arg DEBIAN_IMAGE=wordcount-local/debian:bookworm-slim . >/dev/null
  log "$name:$TAG built in $((SECONDS - start)) s"
done

run() { docker run --rm --network none "$@"; }
want=$(target/release/wordcount count examples/corpus --top 5)
got=$(run -v "$PWD/examples/corpus:/corpus:ro" "wordcount:$TAG" wordcount count /corpus --top 5)
[[ $got == "$want" ]] || { log "the image counts differently:"; diff <(echo "$want") <(echo "$got") >&2; exit 1; }
run "wordcount:$TAG" redis-server --version | grep -q 'v=7' || { log "no redis-server 7 in wordcount:$TAG"; exit 1; }
run "wordcount-operator:$TAG" --version | grep -q '^wordcount-operator ' ||
  { log "wordcount-operator:$TAG does not start"; exit 1; }
images=("wordcount:$TAG" "wordcount-operator:$TAG")
module=${WORDCOUNT_REDISRAFT:-${WORDCOUNT_CACHE:-$HOME/.cache/wordcount}/redisraft.so}
if [[ -f $module ]]; then
  path=$(sed -n 's/^pub const REDISRAFT_MODULE: &str = "\(.*\)";$/\1/p' operator/src/resources/redis_raft.rs)
  [[ -n $path ]] || { log "REDISRAFT_MODULE not found in operator/src/resources/redis_raft.rs"; exit 1; }
  ctx=$(mktemp -d)
  cp "$module" "$ctx/redisraft.so"
  printf 'FROM wordcount:%s\nCOPY --chmod=0755 redisraft.so %s\n' "$TAG" "$path" |
    docker build --network host -q -t "wordcount-redisraft:$TAG" -f - "$ctx" >/dev/null
  rm -rf "$ctx"
  images+=("wordcount-redisraft:$TAG")
else
  log "no RedisRaft module at $module: wordcount-redisraft:$TAG not built"
fi
# The in-cluster S3 server of examples/s3-server.yaml: the versitygw that
# store/versitygw.sh built from source here, on the Debian image.
gw=${WORDCOUNT_VERSITYGW:-$(store/versitygw.sh | tail -1)}
ctx=$(mktemp -d)
cp "$gw" "$ctx/versitygw"
printf 'FROM %s\nCOPY --chmod=0755 versitygw /usr/local/bin/versitygw\nUSER 65532:65532\nENTRYPOINT ["versitygw"]\n' \
  wordcount-local/debian:bookworm-slim |
  docker build --network host -q -t "wordcount-s3:$TAG" -f - "$ctx" >/dev/null
rm -rf "$ctx"
run --entrypoint versitygw "wordcount-s3:$TAG" --version | grep -q 'v1\.' ||
  { log "wordcount-s3:$TAG does not start"; exit 1; }
images+=("wordcount-s3:$TAG")
log "images build and run ($(docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep ":$TAG " | tr '\n' ' '))"
printf '%s\n' "${images[@]}"
