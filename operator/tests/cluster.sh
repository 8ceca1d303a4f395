#!/usr/bin/env bash
# Level-4 tests: WordCountJobs on a kind cluster, where pods really run.
#
# Creates a one-node kind cluster (kind/cluster.yaml) in a private Docker
# (kind/docker/dockerd.sh), from a node image built here
# (kind/node/build.sh: nothing can be pulled on the test machine), builds
# our images from kind/Dockerfile (kind/docker/build.sh), `kind load`s them,
# `helm install`s the chart, then runs each scenario as a user would:
# `kubectl apply` a WordCountJob, wait for its phase, and compare its counts
# with a serial `wordcount count` of the same input. Deletes the cluster and
# checks that no container is left.
#
#   operator/tests/cluster.sh                 # the default scenarios
#   operator/tests/cluster.sh demo partition  # some of them
#   KEEP=1 operator/tests/cluster.sh          # leave the cluster up
#
# On a cluster of your own, made with stock kind and Docker (kind/run.sh
# makes one named "wordcount"):
#
#   KIND_CLUSTER=wordcount operator/tests/cluster.sh
#
# builds the images with `docker build` (more flags in BUILD_FLAGS, as for
# kind/run.sh), loads them, and removes only its own objects at the end.
# The bad-input files go to kind/data/e2e, the node's /data/e2e.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD

# Jobs run where the restricted Pod Security Standard is enforced; a hostPath
# input is not allowed there, so those jobs get a namespace of their own.
NS=wordcount-e2e
HOST_NS=wordcount-e2e-hostpath
OPERATOR_NS=wordcount-system
WC=$REPO/target/release/wordcount
WORK=$(mktemp -d /tmp/wordcount-e2e.XXXXXX)
chmod 0755 "$WORK" # the jobs' pods (not root) read the hostPath inputs under it
# The user's cluster, or ours (made and deleted here).
OWN=0
[[ -n ${KIND_CLUSTER:-} ]] || { KIND_CLUSTER=wordcount-e2e OWN=1; }
kubectl() { command kubectl --context "kind-$KIND_CLUSTER" "$@"; }
helm() { command helm --kube-context "kind-$KIND_CLUSTER" "$@"; }
# The node sees the host's kind/data at /data (kind/cluster.yaml).
INPUTS=$REPO/kind/data/e2e NODE_INPUTS=/data/e2e
SCENARIOS=(demo restricted let_go chaos redis_kill partition crdt bad_input stream autoscale view raft s3)
# kind/docker/build.sh builds it when RedisRaft's module is on this machine
# (docs/src/kubernetes.md: RedisRaft on Kubernetes).
REDISRAFT_IMAGE=wordcount-redisraft:dev
# kind/docker/build.sh builds the in-cluster S3 server (examples/s3-server.yaml).
S3_IMAGE=wordcount-s3:dev
IMAGES=() # the images loaded into the cluster

log() { echo "cluster.sh: $*" >&2; }
fail() {
  log "FAIL: $*"
  diagnose
  exit 1
}

# What a failing scenario needs to be understood.
diagnose() {
  set +e
  local ns pod
  for ns in "$NS" "$HOST_NS"; do
    kubectl get wcj,jobs,pods,pvc,networkpolicy -n "$ns" -o wide
    kubectl get events -n "$ns" --sort-by=.lastTimestamp | tail -n 30
    # RedisRaft replicas: how each joined, and what each says of Raft now.
    kubectl logs -n "$ns" -l app.kubernetes.io/component=redis --prefix --tail=-1 2>/dev/null | grep 'raft\['
    for pod in $(kubectl get pods -n "$ns" -l app.kubernetes.io/component=redis -o name); do
      echo "$pod: $(kubectl exec -n "$ns" "$pod" -- redis-cli INFO raft 2>/dev/null | tr -d '\r' |
        grep -E '^raft_(state|role|leader_id|current_term|num_nodes|num_voting_nodes):' | tr '\n' ' ')"
    done
    kubectl logs -n "$ns" -l app.kubernetes.io/component=worker --prefix --tail=5
  done
  kubectl logs -n "$OPERATOR_NS" deploy/wordcount-operator --tail=40
  set -e
}

cleanup() {
  local rc=$?
  rm -rf "$WORK" "$INPUTS"
  [[ ${KEEP:-0} == 1 ]] && return
  if ((!OWN)); then # the cluster is the user's: only our objects go
    # Before the operator goes: it ends what the jobs started.
    kubectl delete namespace "$NS" "$HOST_NS" --ignore-not-found --timeout=120s >/dev/null || rc=1
    helm uninstall wordcount-operator --namespace "$OPERATOR_NS" >/dev/null 2>&1 || true
    exit "$rc"
  fi
  kind delete cluster --name "$KIND_CLUSTER" || rc=1
  if [[ -n $(docker ps -aq) ]]; then
    log "FAIL: containers left after the cluster was deleted:"
    docker ps -a >&2
    rc=1
  fi
  kind/docker/dockerd.sh stop || rc=1
  exit "$rc"
}

# A cluster with our images in it: ours, or the user's kind.
setup() {
  if ((OWN)); then
    PATH=$(kind/controlplane/build.sh | tail -n 1):$PATH # kubectl and helm
    eval "$(kind/docker/dockerd.sh start)"
    mapfile -t IMAGES < <(kind/docker/build.sh)
    local node config
    node=$(kind/node/build.sh | tail -n 1)
    PATH=$(dirname "$(kind/node/build.sh --kind)"):$PATH
    kind delete cluster --name "$KIND_CLUSTER" 2>/dev/null # a stale one
    config=$WORK/cluster.yaml
    sed "s|hostPath: ./kind/data|hostPath: $REPO/kind/data|" kind/cluster.yaml >"$config"
    kind create cluster --name "$KIND_CLUSTER" --config "$config" --image "$node" --wait 180s
  else
    local flags
    read -ra flags <<<"${BUILD_FLAGS:-}" # as kind/run.sh's
    docker build "${flags[@]}" -f kind/Dockerfile --target wordcount -t wordcount:dev .
    docker build "${flags[@]}" -f kind/Dockerfile --target operator -t wordcount-operator:dev .
    IMAGES=(wordcount:dev wordcount-operator:dev)
  fi
  kind load docker-image --name "$KIND_CLUSTER" "${IMAGES[@]}"
}

# Polls until `phase` is Succeeded or Failed; prints it.
wait_done() {
  local name=$1 timeout=${2:-180} phase deadline=$((SECONDS + ${2:-180}))
  while :; do
    phase=$(kubectl get wcj "$name" -n "$NS" -o jsonpath='{.status.phase}')
    [[ $phase == Succeeded || $phase == Failed ]] && { echo "$phase"; return; }
    ((SECONDS < deadline)) || fail "$name: no end after ${timeout}s (phase '${phase:-none}')"
    sleep 1
  done
}

status() { kubectl get wcj "$1" -n "$NS" -o jsonpath="{.status.$2}"; }

apply() { kubectl apply -n "$NS" -f - >/dev/null; }

# A job's spec is immutable and its name reused: delete it and wait until
# the pods it made are gone.
delete_job() {
  kubectl delete wcj "$1" -n "$NS" --ignore-not-found --wait >/dev/null
  kubectl wait pods -n "$NS" -l "wordcount.dev/job=$1" --for=delete --timeout=120s >/dev/null 2>&1 || true
}

# The input of a synthetic job, generated here with the generator's exact
# arguments from the pod spec, then counted serially: the words, the
# distinct words and the top words must equal the job's status.
check_counts() {
  local name=$1 want got
  want=$(serial_count "$name")
  got=$(kubectl get wcj "$name" -n "$NS" -o json |
    jq -S -c '.status | {words, distinct: .distinctWords, top: .topWords}')
  [[ $got == "$want" ]] || fail "$name: counts differ from a serial count
  job:    $got
  serial: $want"
  log "$name: counts equal a serial count ($(jq .words <<<"$want") words)"
}

# The words, distinct words and top words of a serial count of a
# synthetic job's input, generated here (once) with the generator's exact
# arguments from the driver's pod spec.
serial_count() {
  local name=$1 dir=$WORK/$1 args tokenizer top driver
  if [[ ! -d $dir ]]; then
    # One driver, or a Crdt job's site 0 (every site generates the same corpus).
    driver=$(kubectl get jobs -n "$NS" -l "wordcount.dev/job=$name,app.kubernetes.io/component=driver" \
      -o jsonpath='{.items[0].metadata.name}')
    args=$(kubectl get job "$driver" -n "$NS" -o json |
      jq -r '.spec.template.spec.initContainers[0].args[3:][]' | sed -E "s|^/input/corpus(-[0-9]+)?$|$dir|")
    # shellcheck disable=SC2086 # one argument per line, none with spaces
    "$WC" $args >/dev/null
  fi
  tokenizer=$(kubectl get wcj "$name" -n "$NS" -o jsonpath='{.spec.tokenizer}')
  top=$(kubectl get wcj "$name" -n "$NS" -o jsonpath='{.spec.topN}')
  "$WC" count --json --top "$top" --tokenizer "${tokenizer:-alnum}" "$dir" |
    jq -S -c '{words, distinct, top}'
}

expect_phase() {
  local name=$1 want=$2 got
  got=$(wait_done "$name" "${3:-180}")
  [[ $got == "$want" ]] || fail "$name: phase $got, expected $want: $(status "$name" message)"
  log "$name: $got: $(status "$name" message)"
}

# ---- scenarios ------------------------------------------------------------

# The README's first job, as it is.
demo() {
  kubectl apply -n "$NS" -f examples/job.yaml >/dev/null
  expect_phase demo Succeeded
  check_counts demo
  delete_job demo
}

# The pods of a job that still run or wait.
live_pods() {
  kubectl get pods -n "$NS" -l "wordcount.dev/job=$1" -o json |
    jq -r '.items[] | select(.status.phase == "Running" or .status.phase == "Pending") | .metadata.name'
}

# A finished job leaves no pod running or waiting (it suspends its batch
# Jobs and scales Redis to zero as it ends).
no_pods_left() {
  local name=$1 left deadline=$((SECONDS + 60))
  while left=$(live_pods "$name") && [[ -n $left ]]; do
    ((SECONDS < deadline)) || fail "$name: pods still running or waiting after it ended: $left"
    sleep 1
  done
  log "$name: no pod left running or waiting"
}

# A pod in the job's namespace (restricted-compliant, so admitted) that
# tries to open a connection to a job's Redis port, without the password:
# any reply (NOAUTH) means the connection was made. Prints what it saw.
probe_redis() {
  local job=$1 pod=$2 labels=$3 image
  image=$(kubectl get deploy "$job-redis" -n "$NS" -o jsonpath='{.spec.template.spec.containers[0].image}')
  kubectl apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $pod, labels: {$labels}}
spec:
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: probe
      image: $image
      imagePullPolicy: IfNotPresent
      command: [sh, -c, 'timeout 5 redis-cli -h $job-redis -p 6379 ping 2>&1; true']
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
EOF
  kubectl wait pod "$pod" -n "$NS" --for=jsonpath='{.status.phase}'=Succeeded --timeout=60s >/dev/null ||
    fail "probe $pod did not run"
  kubectl logs "$pod" -n "$NS"
  kubectl delete pod "$pod" -n "$NS" --wait=false >/dev/null
}

# examples/job.yaml in a namespace enforcing the restricted Pod Security
# Standard, to exact counts; and, beside it, a job that runs longer, whose
# Redis a pod outside the job cannot even open a connection to, while the
# same probe labelled as one of the job's pods can (so the probe can tell).
# The longer job is a stream of a file a second, so that it lasts 40 s on
# any machine (stragglers, a multiple of the counting time, did not: they
# finished in 11 s here, before the probes ran).
restricted() {
  [[ $(kubectl get namespace "$NS" -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}') == restricted ]] ||
    fail "restricted: $NS does not enforce the restricted standard"
  kubectl apply -n "$NS" -f examples/job.yaml >/dev/null
  apply <<'EOF'
apiVersion: wordcount.dev/v1alpha1
kind: WordCountJob
metadata: {name: fenced}
spec:
  input: {synthetic: {files: 40, bytesPerFile: 4096, seed: 5}}
  workers: 2
  claimTimeout: 60s
  stream: {rate: 1}
EOF
  local deadline=$((SECONDS + 180)) foreign own
  until [[ $(status fenced phase) == Running && -n $(redis_pod fenced) ]]; do
    ((SECONDS < deadline)) || fail "restricted: the fenced job never ran"
    sleep 1
  done
  sleep 2 # the enforcer polls every second
  foreign=$(probe_redis fenced foreign-probe "app: probe")
  own=$(probe_redis fenced own-probe "wordcount.dev/job: fenced")
  [[ $own == *NOAUTH* ]] || fail "restricted: a pod with the job's labels could not connect: $own"
  [[ $foreign != *NOAUTH* && $foreign != *PONG* ]] ||
    fail "restricted: a pod outside the job opened a connection to Redis: $foreign"
  log "restricted: outside the job: '${foreign//$'\n'/ }'; with its labels: '${own//$'\n'/ }'"
  [[ $(status fenced 'conditions[?(@.type=="Ready")].status') == True ]] ||
    fail "restricted: the operator cannot read the fenced job's Redis"
  expect_phase demo Succeeded
  check_counts demo
  delete_job demo
  delete_job fenced
}

# A finished job lets go: no pod of it runs or waits, Redis included, while
# its status, Events and Redis volume stay; ttlSecondsAfterFinished deletes
# a job that long after it finished.
let_go() {
  kubectl apply -n "$NS" -f examples/podkill.yaml >/dev/null
  apply <<'EOF'
apiVersion: wordcount.dev/v1alpha1
kind: WordCountJob
metadata: {name: brief}
spec:
  input: {synthetic: {files: 4, bytesPerFile: 4096, seed: 1}}
  workers: 1
  ttlSecondsAfterFinished: 5
EOF
  expect_phase podkill Succeeded 300
  no_pods_left podkill
  [[ $(kubectl get deploy podkill-redis -n "$NS" -o jsonpath='{.spec.replicas}') == 0 ]] ||
    fail "podkill: Redis is not scaled to zero"
  kubectl get pvc podkill-redis-data -n "$NS" >/dev/null || fail "podkill: the Redis volume is gone"
  [[ $(status podkill phase) == Succeeded && -n $(status podkill words) ]] || fail "podkill: the status is gone"
  check_counts podkill
  local deadline=$((SECONDS + 120))
  while kubectl get wcj brief -n "$NS" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "brief: not deleted after its ttlSecondsAfterFinished"
    sleep 1
  done
  log "brief: deleted after its ttlSecondsAfterFinished"
  delete_job podkill
  delete_job brief
}

# A job named $1 with a crash, stragglers that make it last long enough
# (about 15 s) for the rest, and $2 worker pods deleted, every 3 s.
apply_chaos_job() {
  apply <<EOF
apiVersion: wordcount.dev/v1alpha1
kind: WordCountJob
metadata: {name: $1}
spec:
  input: {synthetic: {files: 40, bytesPerFile: 262144, seed: 9}}
  workers: 3
  claimTimeout: 2s
  faults:
    crashes: [{worker: 1, point: after-count, file: 1}]
    stragglers: [{worker: 0, slowFactor: 400}, {worker: 1, slowFactor: 400}, {worker: 2, slowFactor: 400}]
    podKills: {target: worker, after: 3s, every: 3s, maxKills: $2}
EOF
}

# A worker crashing after counting, stragglers, and worker pods deleted.
chaos() {
  apply_chaos_job chaos 3
  expect_phase chaos Succeeded 300
  local faults
  faults=$(status chaos faultsInjected)
  ((faults >= 4)) || fail "chaos: $faults faults injected, expected the crash and 3 pod kills"
  log "chaos: $faults faults injected"
  check_counts chaos
  delete_job chaos
}

# The running Redis pod of a job.
redis_pod() {
  kubectl get pods -n "$NS" -l "wordcount.dev/job=$1,app.kubernetes.io/component=redis" \
    --field-selector=status.phase=Running -o name
}

# redis-cli in a job's Redis pod, with the job's password (from Redis' own
# config file: the pod has it nowhere else).
redis_cli() {
  local pod=$1
  shift
  # shellcheck disable=SC2016 # expanded in the pod
  kubectl exec -n "$NS" "$pod" -- sh -c \
    'REDISCLI_AUTH=$(sed -n "s/^requirepass //p" /etc/wordcount-redis/redis.conf) redis-cli "$@"' sh "$@" 2>/dev/null
}

# examples/redis-kill.yaml: Redis checkpoints every second; the operator
# deletes its pod 6 s in, and Redis exits without saving. The new pod must
# load the checkpoint from its volume (keys loaded, files done > 0: not an
# empty Redis), the files committed after the checkpoint are redone, and
# the counts come out exact.
redis_kill() {
  kubectl apply -n "$NS" -f examples/redis-kill.yaml >/dev/null
  local first second deadline=$((SECONDS + 180)) seen=0 v info restored fcalls
  until first=$(redis_pod redis-kill) && [[ -n $first ]]; do
    ((SECONDS < deadline)) || fail "redis-kill: no Redis pod"
    sleep 1
  done
  # The last count of files done that the first Redis gave before it died
  # (it exits at once on SIGTERM, without saving).
  while :; do
    if v=$(redis_cli "$first" HGET wc:stats files_done); then
      [[ $v =~ ^[0-9]+$ ]] && seen=$v
    elif [[ -n $(kubectl get "$first" -n "$NS" -o jsonpath='{.metadata.deletionTimestamp}' 2>/dev/null || echo gone) ]]; then
      break
    fi
    ((SECONDS < deadline)) || fail "redis-kill: the Redis pod $first was never deleted"
    sleep 0.2
  done
  until second=$(redis_pod redis-kill) && [[ -n $second && $second != *"$first"* ]]; do
    ((SECONDS < deadline)) || fail "redis-kill: no new Redis pod"
    sleep 0.5
  done
  until info=$(redis_cli "$second" INFO persistence) && [[ $info == *"loading:0"* ]]; do
    ((SECONDS < deadline)) || fail "redis-kill: the new Redis $second never answered"
    sleep 0.2
  done
  restored=$(redis_cli "$second" HGET wc:stats files_done)
  fcalls=$(redis_cli "$second" INFO commandstats | sed -n 's/^cmdstat_fcall:calls=\([0-9]*\).*/\1/p')
  [[ $(sed -n 's/^rdb_last_load_keys_loaded:\([0-9]*\).*/\1/p' <<<"$info" | tr -d '\r') -gt 0 ]] ||
    fail "redis-kill: the new Redis did not load the checkpoint"
  ((${restored:-0} > 0)) || fail "redis-kill: the new Redis came back empty"
  if [[ -z $fcalls ]]; then # nothing committed to the new Redis yet: this is the checkpoint
    log "redis-kill: $first replaced by $second; its checkpoint had $restored files done, $seen were seen done before"
  else
    log "redis-kill: $first replaced by $second, loaded from its checkpoint (workers already committing: $restored files done)"
  fi
  expect_phase redis-kill Succeeded 300
  check_counts redis-kill
  delete_job redis-kill
}

# The partition narrowing a job's standing NetworkPolicy (of Crdt instance
# $2), if any.
cut_by() {
  kubectl get networkpolicy "$1-redis-ingress${2:+-$2}" -n "$NS" \
    -o jsonpath='{.metadata.annotations.wordcount\.dev/partition}' 2>/dev/null || true
}

# PING from inside a pod, with the job's password; PONG when it gets through.
ping_redis() {
  # shellcheck disable=SC2016 # expanded in the pod
  kubectl exec -n "$NS" "$1" -- sh -c \
    'REDISCLI_AUTH=$REDIS_PASSWORD timeout 3 redis-cli -h partition-redis ping' 2>&1 || true
}

# examples/partition.yaml: the workers are cut off from Redis from 4 s to
# 19 s. During the cut no file is committed, and a worker pod cannot even
# open a connection to Redis; after it, it can, and the job finishes with
# exact counts.
partition() {
  kubectl apply -n "$NS" -f examples/partition.yaml >/dev/null
  local deadline=$((SECONDS + 120)) before after worker probe redis events
  until [[ -n $(cut_by partition) ]]; do
    ((SECONDS < deadline)) || fail "partition: the NetworkPolicy not narrowed after 120s"
    sleep 0.5
  done
  log "partition: NetworkPolicy narrowed at $(status partition progress)"
  redis=$(redis_pod partition)
  # No `| head`: under pipefail, kubectl killed by SIGPIPE fails the script.
  worker=pod/$(kubectl get pods -n "$NS" -l wordcount.dev/job=partition,app.kubernetes.io/component=worker \
    --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}')
  # The enforcer takes a moment: from then on a new connection from a worker
  # pod must not get through.
  until probe=$(ping_redis "$worker") && [[ $probe != *PONG* ]]; do
    ((SECONDS < deadline)) || fail "partition: $worker still reaches Redis during the cut"
    sleep 0.5
  done
  # A connection made before the enforcer acted is ended by the operator's
  # next round (every second); after that nothing is committed.
  sleep 1.5
  before=$(redis_cli "$redis" HGET wc:stats files_done)
  sleep 4
  after=$(redis_cli "$redis" HGET wc:stats files_done)
  [[ $before == "$after" ]] || fail "partition: files were committed during the cut ($before, then $after)"
  events=$(kubectl get events -n "$NS" --field-selector reason=Partitioned -o jsonpath='{.items[*].message}')
  [[ $events =~ ended\ [1-9] ]] || fail "partition: no worker connection was ended at the cut"
  log "partition: stalled at $before files done; $worker could not connect"
  deadline=$((SECONDS + 60))
  while [[ -n $(cut_by partition) ]]; do
    ((SECONDS < deadline)) || fail "partition: the NetworkPolicy was not lifted"
    sleep 0.5
  done
  sleep 2 # the enforcer polls every second
  # The same probe gets through once the cut is lifted: it can tell.
  probe=$(ping_redis "$worker")
  [[ $probe == *PONG* ]] || fail "partition: $worker cannot reach Redis after the cut: $probe"
  expect_phase partition Succeeded 300
  [[ -z $(cut_by partition) ]] || fail "partition: the cut outlived the partition"
  check_counts partition
  delete_job partition
}

# examples/stream.yaml, shortened: no duration, so each of the 60 files is
# injected once, 3 a second (about 20 s), while worker 1 crashes and worker
# pods are deleted every 5 s. The counts equal a serial count of the files;
# the status has the stream's latency and throughput, and every file
# injected was committed.
stream() {
  apply <<'EOF'
apiVersion: wordcount.dev/v1alpha1
kind: WordCountJob
metadata: {name: stream}
spec:
  input: {synthetic: {files: 60, bytesPerFile: 16384, vocabulary: 2000, seed: 11}}
  workers: 3
  claimTimeout: 3s
  stream: {rate: 3, tick: 500ms, backpressure: Pause, maxLag: 30}
  faults:
    crashes: [{worker: 1, point: after-count, file: 2}]
    podKills: {target: worker, after: 5s, every: 5s, maxKills: 3}
EOF
  local deadline=$((SECONDS + 180)) p50 phase
  # While it runs, the operator reads P:stream: a latency appears.
  until p50=$(status stream latency.p50) && [[ -n $p50 ]]; do
    phase=$(status stream phase)
    [[ $phase != Succeeded && $phase != Failed ]] || fail "stream: $phase without a latency in its status"
    ((SECONDS < deadline)) || fail "stream: no latency in the status after 180s"
    sleep 1
  done
  log "stream: running, p50 ${p50} ms, $(status stream throughput) files/s"
  expect_phase stream Succeeded 300
  [[ $(status stream stream.injected) == 60 && $(status stream stream.committed) == 60 ]] ||
    fail "stream: injected $(status stream stream.injected), committed $(status stream stream.committed), expected 60 and 60"
  [[ $(status stream latency.p50) =~ ^[0-9]+$ && $(status stream latency.p99) =~ ^[0-9]+$ ]] ||
    fail "stream: no latency at the end: $(status stream latency)"
  [[ -n $(status stream throughput) ]] || fail "stream: no throughput"
  local kills faults
  kills=$(status stream 'faults[?(@.kind=="PodKill")].target' | wc -w)
  faults=$(status stream faultsInjected)
  ((kills == 3)) || fail "stream: $kills worker pods deleted, expected 3"
  ((faults >= 4)) || fail "stream: $faults faults injected, expected the crash and 3 pod kills"
  log "stream: latency $(status stream latency), $kills pods deleted, $faults faults"
  check_counts stream
  delete_job stream
}

# A stream whose one worker cannot keep up (a straggler: 1000 times its
# counting time per file) and may grow to three: the operator scales the
# workers' Indexed Job up (a ScaledUp Event, parallelism and completions
# moved together, which the API server accepts), and the counts stay exact.
# The 30 s cool-down outlasts the job (about 15 s): one step up, none down.
autoscale() {
  apply <<'EOF'
apiVersion: wordcount.dev/v1alpha1
kind: WordCountJob
metadata: {name: autoscale}
spec:
  input: {synthetic: {files: 48, bytesPerFile: 131072, seed: 13}}
  workers: 1
  claimTimeout: 5s
  stream: {rate: 4, autoscale: {minWorkers: 1, maxWorkers: 3, targetLag: 4, cooldown: 30s}}
  faults:
    stragglers: [{worker: 0, slowFactor: 1000}]
EOF
  expect_phase autoscale Succeeded 300
  local scaled events parallelism completions
  scaled=$(status autoscale autoscale.workers)
  ((scaled > 1)) || fail "autoscale: still $scaled worker(s) at the end"
  read -r parallelism completions <<<"$(kubectl get job autoscale-workers -n "$NS" \
    -o jsonpath='{.spec.parallelism} {.spec.completions}')"
  [[ $parallelism == "$scaled" && $completions == "$scaled" ]] ||
    fail "autoscale: the workers' Job runs $parallelism of $completions, the status says $scaled"
  events=$(kubectl get events -n "$NS" --field-selector involvedObject.name=autoscale,reason=ScaledUp \
    -o jsonpath='{.items[*].message}')
  [[ $events == *"above the target 4: 1 -> 2 workers"* ]] || fail "autoscale: no ScaledUp Event: '$events'"
  log "autoscale: $scaled workers; $events"
  check_counts autoscale
  delete_job autoscale
}

# The operator's live view in headless Chromium, through `kubectl
# port-forward` to the port `view` of its Service: a job like chaos's (a
# crash, stragglers, worker pods deleted), watched from the
# index of jobs to its page (cli/tests/live_view.rs, an ignored test run
# here): the crash, a stolen file and a killed pod show, and the final top
# words equal a serial count's. A screenshot is left in target/tmp.
view() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null ||
    fail "view: chromium and chromedriver are needed (apt install chromium chromium-driver)"
  cargo test --release -p wordcount --test live_view --no-run 2>/dev/null
  apply_chaos_job view 2
  local deadline=$((SECONDS + 60)) port pf top
  until kubectl get job view-driver -n "$NS" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "view: no driver Job"
    sleep 0.5
  done
  top=$(serial_count view | jq -c .top)
  kubectl port-forward -n "$OPERATOR_NS" svc/wordcount-operator-metrics :view >"$WORK/port-forward" 2>&1 &
  pf=$!
  until port=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/port-forward") && [[ -n $port ]]; do
    ((SECONDS < deadline)) || { kill "$pf"; fail "view: no port-forward: $(cat "$WORK/port-forward")"; }
    sleep 0.2
  done
  log "view: the operator's live view at http://127.0.0.1:$port/"
  if ! WORDCOUNT_VIEW_URL=http://127.0.0.1:$port/ WORDCOUNT_VIEW_JOB=$NS/view WORDCOUNT_VIEW_TOP=$top \
    cargo test --release -p wordcount --test live_view -- --ignored --exact \
    the_operators_live_view_shows_a_crash_a_stolen_file_a_kill_and_the_right_top_words >"$WORK/view-test" 2>&1; then
    kill "$pf"
    tail -n 30 "$WORK/view-test" >&2
    fail "view: the page did not show the job as expected"
  fi
  grep -h '^screenshot: ' "$WORK/view-test" >&2 || true
  kill "$pf"
  expect_phase view Succeeded 300
  check_counts view
  delete_job view
}

# A RedisRaft job (3 replicas) while a replica pod is deleted every 3 s:
# the cluster forms, the status shows the replicas, the leader and the
# term, files done never go back (nothing committed is lost, so nothing
# is redone), and the job completes with exact counts.
raft() {
  if [[ " ${IMAGES[*]} " != *" $REDISRAFT_IMAGE "* ]]; then
    log "raft: skipped: no $REDISRAFT_IMAGE, as no RedisRaft module was found (docs/src/kubernetes.md: RedisRaft on Kubernetes)"
    return
  fi
  apply <<'EOF'
apiVersion: wordcount.dev/v1alpha1
kind: WordCountJob
metadata: {name: raft}
spec:
  input: {synthetic: {files: 40, bytesPerFile: 131072, seed: 17}}
  workers: 3
  claimTimeout: 5s
  redis: {mode: RedisRaft, replicas: 3}
  faults:
    stragglers: [{worker: 0, slowFactor: 1000}, {worker: 1, slowFactor: 1000}, {worker: 2, slowFactor: 1000}]
    podKills: {target: redis, after: 3s, every: 3s, maxKills: 4}
EOF
  local deadline=$((SECONDS + 300)) phase done_now most=0 leader term seen_leader=
  while :; do
    phase=$(status raft phase)
    done_now=$(status raft filesDone)
    if [[ $done_now =~ ^[0-9]+$ ]]; then
      ((done_now >= most)) || fail "raft: files done went back from $most to $done_now: a commit was lost"
      most=$done_now
    fi
    leader=$(status raft redis.leader)
    [[ -n $leader ]] && seen_leader=$leader
    [[ $phase == Succeeded || $phase == Failed ]] && break
    ((SECONDS < deadline)) || fail "raft: no end after 300s (phase '${phase:-none}')"
    sleep 0.5
  done
  [[ $phase == Succeeded ]] || fail "raft: $phase: $(status raft message)"
  log "raft: $phase: $(status raft message)"
  [[ -n $seen_leader ]] || fail "raft: the status never named a leader"
  term=$(status raft redis.term)
  [[ $term =~ ^[0-9]+$ ]] && ((term >= 1)) || fail "raft: no Raft term in the status: '$term'"
  [[ $(status raft filesDone) == 40 && $(status raft filesTotal) == 40 ]] ||
    fail "raft: $(status raft filesDone) of $(status raft filesTotal) files done, expected 40 of 40"
  local kills
  kills=$(status raft 'faults[?(@.kind=="PodKill")].target' | wc -w)
  # The job lasts over 20 s: time for every kill (the last at 12 s).
  ((kills == 4)) || fail "raft: $kills replica pods deleted, expected 4"
  [[ $(kubectl get statefulset raft-redis -n "$NS" -o jsonpath='{.spec.replicas}') == 0 ]] ||
    fail "raft: the replicas are not scaled to zero"
  log "raft: $kills replicas deleted, last leader $seen_leader, term $term, files done never went back"
  check_counts raft
  delete_job raft
}

# examples/crdt-partition.yaml: three sites, three Redis. While sites 0
# and 1 are cut off from Redis 2, it falls behind the others (it learns
# only its own site's files); after the heal read repair brings it back,
# and the job Completes with the three instances holding every file, and
# a serial count's counts.
crdt() {
  kubectl apply -n "$NS" -f examples/crdt-partition.yaml >/dev/null
  local name=crdt-partition deadline=$((SECONDS + 180)) known lag=0 most=0 k
  until [[ -n $(cut_by "$name" 2) ]]; do
    ((SECONDS < deadline)) || fail "crdt: Redis 2's NetworkPolicy not narrowed after 180s"
    sleep 0.5
  done
  log "crdt: sites 0 and 1 cut off from Redis 2 at $(status $name progress)"
  # Redis 2 falls behind during the cut: the others know files it does not.
  while [[ -n $(cut_by "$name" 2) ]]; do
    known=$(status $name 'instances[*].filesKnown')
    read -r -a k <<<"$known"
    if ((${#k[@]} == 3)); then
      most=$((k[0] > k[1] ? k[0] : k[1]))
      ((most - k[2] > lag)) && lag=$((most - k[2]))
    fi
    ((SECONDS < deadline)) || fail "crdt: the cut was not lifted"
    sleep 1
  done
  ((lag > 0)) || fail "crdt: Redis 2 never fell behind during the cut (files known: $known)"
  log "crdt: during the cut Redis 2 fell up to $lag files behind the others"
  expect_phase $name Succeeded 300
  local total converged repaired
  total=$(status $name filesTotal)
  [[ $(status $name filesDone) == "$total" && $total == 90 ]] ||
    fail "crdt: $(status $name filesDone) of $total files done, expected 90 of 90"
  known=$(status $name 'instances[*].filesKnown')
  [[ $known == "90 90 90" ]] || fail "crdt: the instances know $known files, expected 90 each"
  converged=$(status $name 'instances[*].converged')
  [[ $converged == "true true true" ]] || fail "crdt: converged: $converged"
  repaired=$(status $name 'instances[2].filesRepaired')
  ((repaired > 0)) || fail "crdt: Redis 2 repaired no file"
  # Converged: the same files on each, so the same counts (the status's
  # words are the drivers', which all wrote the same summary).
  log "crdt: 90 files on each instance, all converged, Redis 2 repaired $repaired files"
  check_counts $name
  delete_job $name
}

# A missing input path fails with a message naming it, and leaves no pod
# waiting for its mount; an empty input and a binary file both end, with a
# message; a file the pods cannot read fails the job naming it, with the
# other files' counts (or, skipped, leaves it Succeeded with a Warning).
bad_input() {
  local dir=$INPUTS node=$NODE_INPUTS NS=$HOST_NS # hostPath: not in the restricted namespace
  mkdir -p "$dir/empty" "$dir/binary" "$dir/unreadable"
  head -c 65536 /dev/urandom >"$dir/binary/random.bin"
  echo "one two two" >"$dir/unreadable/a.txt"
  echo "three" >"$dir/unreadable/secret.txt"
  chmod -R a+rX "$dir"
  chmod 0000 "$dir/unreadable/secret.txt" # the pods run as a user that is not root
  for case in missing:"$node/missing" empty:"$node/empty" binary:"$node/binary" \
    unreadable:"$node/unreadable" skipped:"$node/unreadable"; do
    apply <<EOF
apiVersion: wordcount.dev/v1alpha1
kind: WordCountJob
metadata: {name: input-${case%%:*}}
spec:
  input: {hostPath: {path: "${case#*:}"}}
  workers: 2
  onUnreadable: $([[ ${case%%:*} == skipped ]] && echo Skip || echo Fail)
EOF
  done
  expect_phase input-missing Failed 180
  [[ $(status input-missing message) == *"$node/missing"* ]] ||
    fail "input-missing: the message does not name the path"
  no_pods_left input-missing
  expect_phase input-unreadable Failed 120
  [[ $(status input-unreadable message) == *"secret.txt"* ]] ||
    fail "input-unreadable: the message does not name the file: $(status input-unreadable message)"
  [[ $(status input-unreadable words) == 3 && $(status input-unreadable filesFailed) == 1 ]] ||
    fail "input-unreadable: expected 3 words counted and 1 file failed"
  [[ $(status input-unreadable 'conditions[?(@.type=="Failed")].reason') == UnreadableFiles ]] ||
    fail "input-unreadable: not failed for UnreadableFiles"
  expect_phase input-skipped Succeeded 120
  [[ $(status input-skipped words) == 3 ]] || fail "input-skipped: words is not 3"
  [[ $(kubectl get events -n "$NS" --field-selector involvedObject.name=input-skipped,type=Warning \
    -o jsonpath='{.items[*].message}') == *secret.txt* ]] || fail "input-skipped: no Warning naming the file"
  # The phase never flips: still Failed once the driver's Job has failed too.
  sleep 5
  [[ $(status input-unreadable phase) == Failed ]] || fail "input-unreadable: the phase flipped"
  expect_phase input-empty Succeeded 120
  [[ $(status input-empty words) == 0 ]] || fail "input-empty: words is not 0"
  expect_phase input-binary Succeeded 120
  local want
  want=$("$WC" count --json "$dir/binary" | jq .words)
  [[ $(status input-binary words) == "$want" ]] || fail "input-binary: words differ from a serial count"
  for case in missing empty binary unreadable skipped; do delete_job "input-$case"; done
}

# The object-store examples as they are (examples/s3-*.yaml), in the test
# namespace: a real S3 server in the cluster, a corpus uploaded to it with
# s3cmd through a port-forward, a job that reads it there and writes its
# whole result there, and that result downloaded and compared, line for
# line, with `wordcount count` of the same files.
s3() {
  [[ " ${IMAGES[*]} " == *" $S3_IMAGE "* ]] || { log "s3: skipped: no $S3_IMAGE (kind/docker/build.sh)"; return; }
  command -v s3cmd >/dev/null || fail "s3: needs s3cmd (apt-get install s3cmd)"
  kubectl apply -n "$NS" -f examples/s3-credentials.yaml -f examples/s3-server.yaml >/dev/null
  kubectl rollout status -n "$NS" deployment/s3 --timeout=120s >/dev/null || fail "s3: the server did not start"
  local port pf deadline=$((SECONDS + 60))
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  kubectl port-forward -n "$NS" svc/s3 "$port:7070" >/dev/null 2>&1 &
  pf=$!
  s3c() {
    s3cmd -q --access_key=wordcount-test --secret_key=wordcount-test-secret-3f9a --no-ssl \
      --host="127.0.0.1:$port" --host-bucket="127.0.0.1:$port" "$@"
  }
  until s3c ls >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "s3: no answer through the port-forward"
    sleep 1
  done
  s3c sync examples/corpus/ s3://corpus/books/
  sed "s|s3.default.svc|s3.$NS.svc|g" examples/s3-job.yaml | apply
  expect_phase s3-books Succeeded
  s3c get s3://results/s3-books.txt "$WORK/s3-books.txt"
  kill "$pf"
  "$WC" count examples/corpus --top 100000000 >"$WORK/s3-serial.txt"
  cmp -s "$WORK/s3-serial.txt" "$WORK/s3-books.txt" ||
    fail "s3: the output differs from a serial count: $(diff "$WORK/s3-serial.txt" "$WORK/s3-books.txt" | head -5)"
  local words
  words=$(status s3-books output.words)
  [[ $words == $(wc -l <"$WORK/s3-serial.txt") ]] || fail "s3: status.output.words is '$words'"
  log "s3: the output at $(status s3-books output.location) equals a serial count ($words words)"
  delete_job s3-books
  kubectl delete -n "$NS" -f examples/s3-server.yaml -f examples/s3-credentials.yaml --wait >/dev/null
}

# ---- main -----------------------------------------------------------------

main() {
  local scenarios=("$@") s
  ((${#scenarios[@]})) || scenarios=("${SCENARIOS[@]}")
  for s in "${scenarios[@]}"; do
    [[ " ${SCENARIOS[*]} " == *" $s "* ]] || { log "unknown scenario $s (${SCENARIOS[*]})"; exit 2; }
  done
  for tool in jq cargo; do command -v "$tool" >/dev/null || { log "$tool not found"; exit 1; }; done

  cargo build --release -p wordcount -p wordcount-operator
  trap cleanup EXIT
  setup
  local images=()
  [[ " ${IMAGES[*]} " == *" $REDISRAFT_IMAGE "* ]] && images=(--set "jobImages.redisraft=$REDISRAFT_IMAGE")
  helm install wordcount-operator charts/wordcount-operator --namespace "$OPERATOR_NS" \
    --create-namespace --wait --timeout 3m "${images[@]}" >/dev/null
  kubectl create namespace "$NS" >/dev/null
  kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null
  kubectl create namespace "$HOST_NS" >/dev/null
  for s in "${scenarios[@]}"; do
    log "--- $s"
    local t0=$SECONDS
    "$s"
    log "--- $s passed in $((SECONDS - t0))s"
  done
  kubectl delete namespace "$NS" "$HOST_NS" --wait --timeout=120s >/dev/null
  helm uninstall wordcount-operator --namespace "$OPERATOR_NS" --wait >/dev/null
  # The jobs' volumes are deleted (reclaim policy Delete) once their claims go.
  local left deadline=$((SECONDS + 60))
  while left=$(kubectl get pods -n "$OPERATOR_NS" -o name
    kubectl get pv -o json | jq -r --arg ns "$NS" --arg host "$HOST_NS" \
      '.items[] | select(.spec.claimRef.namespace == $ns or .spec.claimRef.namespace == $host) | .metadata.name') &&
    [[ -n $left ]]; do
    ((SECONDS < deadline)) || fail "left after the tests: $left"
    sleep 1
  done
  log "all passed: ${scenarios[*]}"
}

main "$@"
