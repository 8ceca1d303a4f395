#!/usr/bin/env bash
# For users with Docker and kind: creates a kind cluster (or reuses it),
# builds the images and loads them into it, installs the operator with Helm
# and runs examples/job.yaml to completion. Needs docker, kind, kubectl, helm.
#
#   kind/run.sh              # cluster "wordcount", images tagged "dev"
#   CLUSTER=x TAG=y kind/run.sh
#   kind delete cluster --name wordcount   # to clean up
#
# NODE_IMAGE (kind's --image) and BUILD_FLAGS (more `docker build` flags)
# are for machines that cannot pull, like this project's test machine.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-wordcount}
TAG=${TAG:-dev}
NODE_IMAGE=${NODE_IMAGE:-}
read -ra BUILD_FLAGS <<<"${BUILD_FLAGS:-}"
NAMESPACE=${NAMESPACE:-wordcount-system}
CONTEXT=kind-$CLUSTER
JOB=demo

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed but not found" >&2; exit 1; }
done

# The node mounts kind/data (kind wants the host side as an absolute path);
# the sample books go there for examples/hostpath.yaml.
mkdir -p kind/data/books
cp examples/corpus/*.txt kind/data/books/ 2>/dev/null || true
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  config=$(mktemp)
  trap 'rm -f "$config"' EXIT
  sed "s|hostPath: ./kind/data|hostPath: $PWD/kind/data|" kind/cluster.yaml >"$config"
  kind create cluster --name "$CLUSTER" --config "$config" --wait 120s ${NODE_IMAGE:+--image "$NODE_IMAGE"}
fi

docker build "${BUILD_FLAGS[@]}" -f kind/Dockerfile --target wordcount -t "wordcount:$TAG" .
docker build "${BUILD_FLAGS[@]}" -f kind/Dockerfile --target operator -t "wordcount-operator:$TAG" .
kind load docker-image --name "$CLUSTER" "wordcount:$TAG" "wordcount-operator:$TAG"

# Helm installs the CRD only on first install; apply it so a rerun after a
# CRD change gets the new one.
kubectl --context "$CONTEXT" apply --server-side -f crds/wordcountjob.yaml
helm upgrade --install wordcount-operator charts/wordcount-operator \
  --kube-context "$CONTEXT" --namespace "$NAMESPACE" --create-namespace \
  --set image.tag="$TAG" --set jobImages.wordcount="wordcount:$TAG" \
  --wait --timeout 3m

# A job's spec is immutable: start over from a fresh one.
kubectl --context "$CONTEXT" delete -f examples/job.yaml --ignore-not-found --wait
kubectl --context "$CONTEXT" apply -f examples/job.yaml

deadline=$((SECONDS + 600))
while :; do
  phase=$(kubectl --context "$CONTEXT" get wcj "$JOB" -o jsonpath='{.status.phase}')
  kubectl --context "$CONTEXT" get wcj "$JOB" --no-headers
  case $phase in
    Succeeded) break ;;
    Failed)
      kubectl --context "$CONTEXT" get wcj "$JOB" -o jsonpath='{.status.message}{"\n"}' >&2
      exit 1 ;;
  esac
  ((SECONDS < deadline)) || { echo "run.sh: $JOB did not finish in 10 minutes" >&2; exit 1; }
  sleep 5
done
echo "top words:"
kubectl --context "$CONTEXT" get wcj "$JOB" \
  -o jsonpath='{range .status.topWords[*]}{.count}{"\t"}{.word}{"\n"}{end}'
