#!/usr/bin/env bash
# A soak: RUNS seeded runs (default 10) of every Redis mode under combined
# faults, on a corpus of 8 files of 4 MB drawn from a million-word
# vocabulary (over 500,000 distinct words). Each run must end exact
# (`--verify`) or stop with a `no progress:` verdict; anything else, or a
# process left behind, fails the soak. Modes: one Redis snapshotted and
# killed (always); RedisRaft with a replica killed every second (when the
# module is found: $WORDCOUNT_REDISRAFT or ~/.cache/wordcount/redisraft.so);
# three CRDT sites with partitions (as root, with ip and iptables).
# Writes target/bench/soak.csv (mode, seed, outcome, seconds) and prints a
# line per mode. The test suite runs a few of these (cli/tests/fault_schedules.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

runs=${RUNS:-${1:-10}}
corpus=$out/soak-corpus
[[ -d $corpus ]] || $wc generate --out "$corpus" --files 8 --bytes 4MB --vocabulary 1000000 --zipf 0.8 --seed 7 >&2
csv=$out/soak.csv
echo "mode,seed,outcome,seconds" >"$csv"

workers=(--workers 3 --claim-timeout 300
  --fault worker=0,crash=mid-stage --fault worker=1,crash=after-commit
  --fault worker=2,crash=after-read,file=2 --fault worker=2,slow=30
  --fault worker=0,slow=10 --fault worker=1,slow=10 --kill-every 300ms)
declare -A modes=(
  [snapshot]="--snapshot-interval 200ms --redis-kill-every 700ms --redis-down 200ms"
)
module=${WORDCOUNT_REDISRAFT:-$HOME/.cache/wordcount/redisraft.so}
[[ -f $module ]] && modes[raft]="--redis raft --replicas 3 --redisraft-module $module --redis-kill-every 1s --redis-down 300ms"
if [[ $(id -u) == 0 ]] && command -v iptables >/dev/null && command -v ip >/dev/null; then
  modes[crdt]="--redis crdt --partition-every 1s,for=500ms --redis-kill-every 2s --snapshot-interval 200ms"
fi

failed=0
for mode in "${!modes[@]}"; do
  exact=0 verdicts=0
  for seed in $(seq 1 "$runs"); do
    start=$(date +%s.%N)
    # shellcheck disable=SC2086 # the mode's flags are words
    if $wc run --input "$corpus" --verify --seed "$seed" "${workers[@]}" ${modes[$mode]} \
      >/dev/null 2>"$out/soak-$mode-$seed.log"; then
      outcome=exact exact=$((exact + 1))
    elif grep -q "no progress:" "$out/soak-$mode-$seed.log"; then
      outcome=verdict verdicts=$((verdicts + 1))
    else
      outcome=failed failed=$((failed + 1))
      echo "soak: $mode seed $seed failed; see $out/soak-$mode-$seed.log" >&2
    fi
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    echo "$mode,$seed,$outcome,$secs" >>"$csv"
    if pgrep -f "wordcount worker|redis-server .*wordcount-redis" >/dev/null; then
      echo "soak: $mode seed $seed left processes behind" >&2
      failed=$((failed + 1))
    fi
  done
  echo "$mode: $runs runs, $exact exact, $verdicts verdicts"
done
exit $((failed > 0))
