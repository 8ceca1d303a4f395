#!/usr/bin/env bash
# A real Kubernetes control plane for tests: etcd, kube-apiserver,
# kube-controller-manager (garbage collection, namespaces, service accounts,
# ...) and kube-scheduler, on 127.0.0.1. No kubelet, so pods never run.
#
# With --node it is a whole single-node cluster where pods run, every part a
# real component run as a process: the control plane on the host's address,
# containerd and runc, the CNI bridge plugin, kubelet, kube-proxy (iptables),
# CoreDNS, and the hostPath provisioner behind a default StorageClass. Only
# NetworkPolicies are enforced by a small loop of ours, netpol.sh (it says why).
#
#   controlplane.sh up [--node]
#                          start (or reuse) it; prints `export KUBECONFIG=...`
#                          and `export PATH=...` on stdout: eval "$(controlplane.sh up)"
#   controlplane.sh load ARCHIVE
#                          import our images, saved by kind/docker/build.sh,
#                          into the node (like `kind load`)
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
NODE_COMPONENTS=(containerd kubelet kube-proxy coredns netpol pvmode)
NODE_NAME=wordcount-node
NODE_DIR=$STATE/node
SOCK=$NODE_DIR/containerd.sock
POD_CIDR=10.244.0.0/24
BRIDGE=wordcount0
HOSTPATH_PV_DIR=/tmp/hostpath_pv # fixed by kube-controller-manager
# The control plane listens here; --node changes it to the host's address.
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

has_node() { [[ -f $STATE/node.marker ]]; }

components() {
  echo "${COMPONENTS[@]}"
  has_node && echo "${NODE_COMPONENTS[@]}"
  return 0
}

all_alive() {
  local c
  [[ -f $MARKER ]] || return 1
  for c in $(components); do alive "$c" || return 1; done
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
  sign_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "extendedKeyUsage=clientAuth"
  sign_cert kube-proxy /CN=system:kube-proxy "extendedKeyUsage=clientAuth"
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
# (nothing routes anyway). With a node, pods reach it through that service.
start_apiserver() {
  local port=$1 etcd_port=$2 d=$STATE/pki reconciler=none
  has_node && reconciler=lease
  start kube-apiserver "$BIN/kube-apiserver" \
    --bind-address "$ADDRESS" --advertise-address "$ADDRESS" --secure-port "$port" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" \
    --client-ca-file "$d/ca.crt" --authorization-mode Node,RBAC \
    --kubelet-client-certificate "$d/admin.crt" --kubelet-client-key "$d/admin.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type "$reconciler" \
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
    --enable-hostpath-provisioner --profiling=false
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
  for c in $(components); do alive "$c" && kill "$(cat "$STATE/$c.pid")" 2>/dev/null; done
  for _ in {1..50}; do
    left=()
    for c in $(components); do alive "$c" && left+=("$c"); done
    ((${#left[@]})) || return 0
    sleep 0.1
  done
  log "killing ${left[*]}"
  for c in "${left[@]}"; do kill -9 "$(cat "$STATE/$c.pid")" 2>/dev/null || true; done
}

# ---- the node -------------------------------------------------------------

# The address pods reach the host on: the source of the default route.
host_address() {
  ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p'
}

write_node_configs() {
  local n=$NODE_DIR kubelet_port=$1 proxy_health=$2 proxy_metrics=$3
  mkdir -p "$n/cni/net.d" "$n/kubelet"
  cat >"$n/containerd.toml" <<CONF
version = 2
root = "$n/containerd/root"
state = "$n/containerd/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.1"
  # No CAP_SYS_RESOURCE in a container host: never below our own OOM score.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$n/cni/net.d"
CONF
  cat >"$n/cni/net.d/10-wordcount.conflist" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "wordcount",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$n/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CONF
  # Image GC off (nothing could pull an image back); eviction thresholds
  # low, as on a shared test machine's disk.
  cat >"$n/kubelet.yaml" <<CONF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ADDRESS
port: $kubelet_port
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$SOCK
clusterDNS: [$ADDRESS]
clusterDomain: cluster.local
failSwapOn: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
CONF
  cat >"$n/kube-proxy.yaml" <<CONF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $n/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
conntrack: {maxPerCore: 0}
healthzBindAddress: 127.0.0.1:$proxy_health
metricsBindAddress: 127.0.0.1:$proxy_metrics
CONF
  cat >"$n/Corefile" <<CONF
.:53 {
    bind $ADDRESS
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_FILE wordcount
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
CONF
}

node_ready() {
  [[ $(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

# Pods resolve names through CoreDNS on the host's address (clusterDNS).
dns_ready() { grep -q "CoreDNS-" "$STATE/coredns.log"; }

start_node() {
  local server=$1 n=$NODE_DIR kubelet_port proxy_health proxy_metrics tool
  for tool in containerd runc ctr iptables conntrack; do
    command -v "$tool" >/dev/null || die "$tool not found: apt-get install containerd runc iptables conntrack"
  done
  [[ -x /usr/lib/cni/bridge ]] || die "CNI plugins not found: apt-get install containernetworking-plugins"
  read -r kubelet_port proxy_health proxy_metrics <<<"$(free_ports 3)"
  write_node_configs "$kubelet_port" "$proxy_health" "$proxy_metrics"
  write_kubeconfig "$n/kubelet.kubeconfig" "$server" kubelet
  write_kubeconfig "$n/kube-proxy.kubeconfig" "$server" kube-proxy
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  start containerd containerd --config "$n/containerd.toml"
  wait_for "containerd" containerd ctr --address "$SOCK" version
  "$HERE/images.sh" "$SOCK" || fail_with_log containerd "could not build the pause image"
  start kubelet "$BIN/kubelet" --config "$n/kubelet.yaml" --kubeconfig "$n/kubelet.kubeconfig" \
    --root-dir "$n/kubelet" --cert-dir "$n/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$ADDRESS"
  start kube-proxy "$BIN/kube-proxy" --config "$n/kube-proxy.yaml"
  start coredns "$BIN/coredns" -conf "$n/Corefile"
  PATH=$BIN:$PATH start netpol "$HERE/netpol.sh" "$KUBECONFIG_FILE"
  # kube-controller-manager's hostPath provisioner makes each volume's
  # directory 0750 root:root (and hostPath volumes ignore fsGroup), but the
  # jobs' pods run as a non-root user (restricted Pod Security). Open each
  # new one as kind's local-path provisioner makes them: 0777. Volumes are
  # bound and mounted well after the 0.2 s this takes.
  mkdir -p "$HOSTPATH_PV_DIR"
  # shellcheck disable=SC2016 # expanded by the inner bash
  start pvmode bash -c 'while :; do
      find "$0" -mindepth 1 -maxdepth 1 -type d ! -perm 0777 -exec chmod 0777 {} + 2>/dev/null
      sleep 0.2
    done' "$HOSTPATH_PV_DIR"
  wait_for "CoreDNS" coredns dns_ready
  kc apply -f - >/dev/null <<CONF || die "could not create the default StorageClass"
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
CONF
  wait_for "node $NODE_NAME Ready" kubelet node_ready
}

# The rules of kube-proxy, kubelet, the CNI plugins and netpol.sh: every
# CNI-*, KUBE-* and WC-* chain, and the rules that jump to them.
clean_iptables() {
  local table chain chains
  for table in nat filter mangle; do
    iptables -t "$table" -S | sed -n 's/^-A \(.*-j \(CNI\|KUBE\|WC\)-.*\)/-D \1/p' |
      while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null || true; done
    chains=$(iptables -t "$table" -S | sed -n 's/^-N \(\(CNI\|KUBE\|WC\)-.*\)/\1/p')
    for chain in $chains; do iptables -t "$table" -F "$chain" || true; done
    for chain in $chains; do iptables -t "$table" -X "$chain" || true; done
  done
}

# What the node leaves behind once its processes are gone: containers (their
# processes and shims), mounts, network namespaces, the bridge, and the
# iptables rules of kube-proxy and the CNI plugins.
clean_node() {
  local pid t
  if alive containerd; then
    for t in $(ctr --address "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$SOCK" -n k8s.io tasks kill -a -s SIGKILL "$t" 2>/dev/null || true
    done
  fi
  kill_all
  for pid in $(pgrep -f "containerd-shim.* -address $SOCK" || true); do kill -9 "$pid" 2>/dev/null || true; done
  findmnt -rn -o TARGET | grep "^$STATE/" | sort -r | xargs -r umount -l 2>/dev/null || true
  for t in /var/run/netns/cni-*; do
    if [[ -e $t ]]; then ip netns delete "${t##*/}" 2>/dev/null || true; fi
  done
  ip link delete "$BRIDGE" 2>/dev/null || true
  clean_iptables
  rm -rf "$HOSTPATH_PV_DIR"
}

down() {
  if has_node; then clean_node; else kill_all; fi
  [[ -d $STATE ]] || return 0
  [[ -f $MARKER ]] || die "$STATE was not made by controlplane.sh; not removing it"
  rm -rf "$STATE"
}

up() {
  local node=$1
  if all_alive && [[ $node == "$(has_node && echo 1 || echo 0)" ]]; then
    # Reuse it; a busy apiserver is waited for, not restarted.
    wait_for "apiserver /readyz" kube-apiserver kc get --raw /readyz
    log "already up"
    print_env
    return
  fi
  down # leftovers of a dead or half-started one, or one of the other kind
  command -v etcd >/dev/null || die "etcd not found: apt-get install etcd-server"
  mkdir -p "$STATE" && touch "$MARKER"
  if ((node)); then
    ADDRESS=$(host_address)
    [[ -n $ADDRESS ]] || die "no default route, so no address for pods to reach the host on"
    touch "$STATE/node.marker"
  fi
  make_certs
  local etcd_port etcd_peer_port api_port server
  read -r etcd_port etcd_peer_port api_port <<<"$(free_ports 3)"
  server=https://$ADDRESS:$api_port
  write_kubeconfig "$KUBECONFIG_FILE" "$server" admin
  start_etcd "$etcd_port" "$etcd_peer_port"
  start_apiserver "$api_port" "$etcd_port"
  start_controllers
  if ((node)); then start_node "$server"; fi
  log "up: $server"
  print_env
}

# Our images (an archive of `docker save`) into the node's containerd, as
# `kind load` does for kind.
load() {
  if ! has_node || ! alive containerd; then die "no node up (run: $0 up --node)"; fi
  local archive=${1:?usage: $0 load ARCHIVE (kind/docker/build.sh prints it)}
  ctr --address "$SOCK" --namespace k8s.io images import "$archive" >/dev/null
  log "loaded $(tar -xOf "$archive" manifest.json | jq -r '[.[].RepoTags[]] | join(", ")')"
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
    up)
      case ${2:-} in
        --node) bin_dir; lock; up 1 ;;
        "") bin_dir; lock; up 0 ;;
        *) die "usage: $0 up [--node]" ;;
      esac ;;
    load) shift; lock; load "$@" ;;
    down) lock; down ;;
    env) bin_dir; ready || die "not up (run: $0 up)"; print_env ;;
    status) bin_dir; ready ;;
    restart-controllers) bin_dir; lock; restart_controllers ;;
    *) die "usage: $0 up [--node]|load ARCHIVE|down|env|status|restart-controllers" ;;
  esac
}

main "$@"
