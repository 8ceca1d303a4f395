#!/usr/bin/env bash
# A real Kubernetes control plane for tests: etcd, kube-apiserver,
# kube-controller-manager (garbage collection, namespaces, service accounts,
# ...) and kube-scheduler, on 127.0.0.1. No kubelet, so pods never run
# (level 3; pods run on kind at level 4: kind/node/build.sh).
#
#   controlplane.sh up     start (or reuse) it; prints `export KUBECONFIG=...`
#                          and `export PATH=...` on stdout: eval "$(controlplane.sh up)"
#   controlplane.sh env    print those exports again (fails if it is not up)
#   controlplane.sh status exit 0 if it is up and ready
#   controlplane.sh down   stop what `up` started and remove the state dir
#   controlplane.sh restart-controllers
#                          restart kube-controller-manager so that its garbage
#                          collector knows CRDs installed since (else 30-45 s)
#
# Env: WORDCOUNT_CP_STATE (default /tmp/wordcount-cp) holds certs, etcd data,
# logs (*.log), pid files and the admin kubeconfig; WORDCOUNT_CACHE as in build.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${WORDCOUNT_CP_STATE:-/tmp/wordcount-cp}
KUBECONFIG_FILE=$STATE/kubeconfig
MARKER=$STATE/.wordcount-cp # only a dir with this marker is ever rm -rf'd
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)
ADDRESS=127.0.0.1
READY_TIMEOUT=${WORDCOUNT_CP_TIMEOUT:-120}

log() { echo "controlplane: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Fails with the tail of a component's log, the usual reason for a failure;
# stops the components but keeps $STATE (logs) for a look.
fail_with_log() {
  local name=$1 msg=$2
  log "error: $msg; last lines of $STATE/$name.log:"
  tail -n 30 "$STATE/$name.log" >&2 2>/dev/null || true
  kill_all
  log "logs kept in $STATE/*.log ($0 down removes them)"
  exit 1
}

# Running and ours: every component's command line names $STATE. This also
# skips zombies (empty cmdline) and pids reused after a reboot.
alive() {
  local pid
  pid=$(cat "$STATE/$1.pid" 2>/dev/null) || return 1
  [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *"$STATE/"* ]]
}

all_alive() {
  local c
  [[ -f $MARKER ]] || return 1
  for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
}

kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" --request-timeout=5s "$@"; }

ready() { all_alive && [[ $(kc get --raw /readyz 2>/dev/null) == ok ]]; }

# N distinct ports nobody listens on (connecting to them is refused).
free_ports() {
  local n=$1 port ports=" "
  while ((n > 0)); do
    port=$((10000 + RANDOM % 20000)) # below the ephemeral range (32768+)
    [[ $ports == *" $port "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    ports+="$port " && n=$((n - 1))
  done
  echo "${ports# }"
}

# Runs a component detached (own session, so it outlives the calling shell),
# its output in $STATE/<name>.log, its pid in $STATE/<name>.pid.
start() {
  local name=$1; shift
  log "starting $name"
  # The pid is written from inside: setsid may fork, so $! can be wrong.
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$STATE/$name.pid" "$@" \
    </dev/null >"$STATE/$name.log" 2>&1 8>&- & # 8>&-: don't inherit the lock
  for _ in {1..50}; do [[ -s $STATE/$name.pid ]] && return; sleep 0.1; done
  die "could not start $name"
}

# Polls a check until it passes; fails with the log of the component blamed.
wait_for() {
  local what=$1 blame=$2 deadline=$((SECONDS + READY_TIMEOUT)); shift 2
  until "$@" >/dev/null 2>&1; do
    alive "$blame" || fail_with_log "$blame" "$blame exited while waiting for $what"
    ((SECONDS < deadline)) || fail_with_log "$blame" "timed out after ${READY_TIMEOUT}s waiting for $what"
    sleep 0.5
  done
}

# A CA, the apiserver's serving cert, an admin client cert (system:masters)
# and the service-account signing key pair, all self-signed with openssl.
make_certs() {
  local d=$STATE/pki
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=wordcount-ca \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  sign_cert apiserver /CN=kube-apiserver \
    "subjectAltName=IP:$ADDRESS,IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign_cert admin /O=system:masters/CN=admin "extendedKeyUsage=clientAuth"
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

sign_cert() {
  local d=$STATE/pki name=$1 subj=$2 ext=$3
  openssl req -newkey rsa:2048 -nodes -subj "$subj" \
    -keyout "$d/$name.key" -out "$d/$name.csr" 2>/dev/null
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
    -CAcreateserial -days 3650 -extfile <(echo "$ext") -out "$d/$name.crt" 2>/dev/null
}

# FILE SERVER USER: a kubeconfig with the client cert pki/USER.crt.
write_kubeconfig() {
  local server=$2 user=$3 d=$STATE/pki k=("$BIN/kubectl" --kubeconfig "$1")
  "${k[@]}" config set-cluster wordcount --server "$server" \
    --certificate-authority "$d/ca.crt" --embed-certs >/dev/null
  "${k[@]}" config set-credentials "$user" --client-certificate "$d/$user.crt" \
    --client-key "$d/$user.key" --embed-certs >/dev/null
  "${k[@]}" config set-context wordcount --cluster wordcount --user "$user" >/dev/null
  "${k[@]}" config use-context wordcount >/dev/null
}

start_etcd() {
  local client=$1 peer=$2
  start etcd etcd --name wordcount --data-dir "$STATE/etcd" --logger zap \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "wordcount=http://127.0.0.1:$peer"
  wait_for "etcd health" etcd curl -fsS "http://127.0.0.1:$client/health"
}

# On loopback, --endpoint-reconciler-type=none: Endpoints may not hold a
# loopback address, so the `kubernetes` service stays without endpoints
# (nothing routes anyway).
start_apiserver() {
  local port=$1 etcd_port=$2 d=$STATE/pki
  start kube-apiserver "$BIN/kube-apiserver" \
    --bind-address "$ADDRESS" --advertise-address "$ADDRESS" --secure-port "$port" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" \
    --client-ca-file "$d/ca.crt" --authorization-mode Node,RBAC \
    --kubelet-client-certificate "$d/admin.crt" --kubelet-client-key "$d/admin.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
    --profiling=false
  wait_for "apiserver /readyz" kube-apiserver kc get --raw /readyz
}

# All default controllers run under the admin identity; the garbage collector
# is the one tests rely on (deleting an owner removes its children).
start_kcm() {
  local d=$STATE/pki
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG_FILE" --bind-address 127.0.0.1 --secure-port 0 \
    --leader-elect=false --controllers '*' \
    --service-account-private-key-file "$d/sa.key" --root-ca-file "$d/ca.crt" \
    --cluster-signing-cert-file "$d/ca.crt" --cluster-signing-key-file "$d/ca.key" \
    --profiling=false
}

start_controllers() {
  start_kcm
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$KUBECONFIG_FILE" --bind-address 127.0.0.1 --secure-port 0 \
    --leader-elect=false --profiling=false
  wait_for "the default service account" kube-controller-manager \
    kc get serviceaccount default --namespace default
}

# The garbage collector re-reads discovery only every 30 s (fixed), so
# children of a custom resource whose CRD is new may take 30-45 s to go.
# A restarted controller manager knows every CRD at once.
restart_controllers() {
  alive kube-controller-manager || die "not up (run: $0 up)"
  local pid
  pid=$(cat "$STATE/kube-controller-manager.pid")
  kill "$pid"
  for _ in {1..50}; do alive kube-controller-manager || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  start_kcm
  wait_for "the garbage collector's caches" kube-controller-manager \
    grep -q "all resource monitors have synced" "$STATE/kube-controller-manager.log"
}

print_env() {
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
  echo "export PATH=$BIN:\$PATH"
}

# SIGTERM to all at once, then SIGKILL whatever is left after 5 s.
kill_all() {
  local c left
  for c in "${COMPONENTS[@]}"; do alive "$c" && kill "$(cat "$STATE/$c.pid")" 2>/dev/null; done
  for _ in {1..50}; do
    left=()
    for c in "${COMPONENTS[@]}"; do alive "$c" && left+=("$c"); done
    ((${#left[@]})) || return 0
    sleep 0.1
  done
  log "killing ${left[*]}"
  for c in "${left[@]}"; do kill -9 "$(cat "$STATE/$c.pid")" 2>/dev/null || true; done
}

down() {
  kill_all
  [[ -d $STATE ]] || return 0
  [[ -f $MARKER ]] || die "$STATE was not made by controlplane.sh; not removing it"
  rm -rf "$STATE"
}

up() {
  if all_alive; then
    # Reuse it; a busy apiserver is waited for, not restarted.
    wait_for "apiserver /readyz" kube-apiserver kc get --raw /readyz
    log "already up"
    print_env
    return
  fi
  down # leftovers of a dead or half-started one
  command -v etcd >/dev/null || die "etcd not found: apt-get install etcd-server"
  mkdir -p "$STATE" && touch "$MARKER"
  make_certs
  local etcd_port etcd_peer_port api_port server
  read -r etcd_port etcd_peer_port api_port <<<"$(free_ports 3)"
  server=https://$ADDRESS:$api_port
  write_kubeconfig "$KUBECONFIG_FILE" "$server" admin
  start_etcd "$etcd_port" "$etcd_peer_port"
  start_apiserver "$api_port" "$etcd_port"
  start_controllers
  log "up: $server"
  print_env
}

# One up or down at a time (parallel test jobs); the lock lives beside $STATE.
lock() {
  mkdir -p "$(dirname "$STATE")"
  exec 8>"$STATE.lock"
  flock 8
}

# The binaries' dir; build.sh returns at once when they are cached.
bin_dir() { BIN=$("$HERE/build.sh" | tail -n 1); }

main() {
  case ${1:-} in
    up) bin_dir; lock; up ;;
    down) lock; down ;;
    env) bin_dir; ready || die "not up (run: $0 up)"; print_env ;;
    status) bin_dir; ready ;;
    restart-controllers) bin_dir; lock; restart_controllers ;;
    *) die "usage: $0 up|down|env|status|restart-controllers" ;;
  esac
}

main "$@"
