# One RedisRaft replica (the container of the job's Redis StatefulSet):
# starts redis-server with the module, and in the background brings this
# replica into the cluster, idempotently across restarts:
#
# - with its Raft log (the same volume): it rejoins on its own;
# - without one, if a live cluster answers: the node this replica was before
#   it lost its log (same address) is removed, and it joins again under a
#   new id;
# - without one, and no cluster anywhere: the first replica (pod 0)
#   initialises a new cluster once a majority of the replicas answer, all
#   of them uninitialised; the others wait for it and join.
#
# Env (set by the operator, src/resources/redis_raft.rs): RAFT_SELF (this
# replica's stable name, host:port), RAFT_PEERS (every replica's, pod 0
# first, space-separated), RAFT_MODULE (the module's path in the image),
# RAFT_DIR (the volume). Arguments: more redis-server settings, after
# these (so they win: the tests bind each replica to its own address).
set -u

self=$RAFT_SELF
port=${self##*:}
me="raft[${self%%.*}]"

[ -r "$RAFT_MODULE" ] || {
  echo "$me: no RedisRaft module at $RAFT_MODULE in this image: give the job an image that has it (spec.redis.image or the operator's --redisraft-image)" >&2
  exit 1
}

# redis-cli to a replica (host:port), never waiting long for a dead one.
at() {
  peer=$1
  shift
  timeout 3 redis-cli -h "${peer%:*}" -p "${peer##*:}" "$@" 2>/dev/null
}
# A field of INFO's output.
field() { tr -d '\r' | sed -n "s/^$1://p"; }

# A live member's view of the cluster: the id of any node listed at this
# replica's own address (the node it was before it lost its log).
stale_ids() {
  tr -d '\r' | sed -n "s/^raft_node[0-9]*:id=\([0-9]*\),.*addr=${self%:*},port=$port,.*/\1/p"
}

# Removes node $2, through the leader; $1 is a live member (a follower
# answers MOVED with the leader's address).
remove() {
  out=$(at "$1" RAFT.NODE REMOVE "$2")
  case $out in
  MOVED*) out=$(at "$(echo "$out" | awk '{print $3}')" RAFT.NODE REMOVE "$2") ;;
  esac
  echo "$me: removed node $2, which had this replica's address before it lost its log: $out"
}

# Whether redis-server (this shell, once exec'd) still runs. Not `kill -0`:
# in a pod it is PID 1, which takes no signal it has no handler for.
alive() { [ -d "/proc/$$" ]; }

form() {
  until [ "$(at "$self" PING)" = PONG ]; do
    alive || return
    sleep 0.2
  done
  state=$(at "$self" INFO raft | field raft_state)
  if [ "$state" != uninitialized ]; then
    echo "$me: $state from its Raft log: it rejoins on its own"
    return
  fi
  first=${RAFT_PEERS%% *}
  set -- $RAFT_PEERS
  replicas=$#
  while :; do
    answered=1 # itself
    for peer in $RAFT_PEERS; do
      [ "$peer" = "$self" ] && continue
      info=$(at "$peer" INFO raft) || continue
      answered=$((answered + 1))
      [ "$(echo "$info" | field raft_state)" = up ] || continue
      for id in $(echo "$info" | stale_ids); do remove "$peer" "$id"; done
      out=$(at "$self" RAFT.CLUSTER JOIN "$peer")
      case $out in
      OK*)
        echo "$me: joined the cluster through $peer: $out"
        return
        ;;
      esac
      echo "$me: joining through $peer: $out"
    done
    if [ "$self" = "$first" ] && [ $((answered * 2)) -gt "$replicas" ]; then
      out=$(at "$self" RAFT.CLUSTER INIT)
      case $out in
      OK*)
        echo "$me: initialised a new cluster ($answered of $replicas replicas answered, none in a cluster): $out"
        return
        ;;
      esac
      echo "$me: init: $out"
    fi
    alive || return
    sleep 1
  done
}

form &
exec redis-server \
  --port "$port" --bind 0.0.0.0 --dir "$RAFT_DIR" \
  --save "" --appendonly no --databases 1 --protected-mode no \
  --loadmodule "$RAFT_MODULE" \
  --raft.addr "$self" --raft.log-filename raftlog.db --raft.log-fsync yes \
  "$@"
