#!/usr/bin/env bash
# What synchronous replication costs: `wordcount run --workers 2` on one
# Redis against RedisRaft with 3 replicas, alternated by hyperfine in the
# same go, on files from `wordcount generate`:
#   small  2,000 files of 2 KiB (commit-bound: each file waits for a
#          majority's fsync)
#   large  16 files of 32 MiB, and
#   huge   8 files of 128 MiB (count-bound; the target: RedisRaft at most
#          1.3x one Redis)
# Needs the RedisRaft module (docs/src/modes/redisraft.md): --redisraft-module's
# default, $WORDCOUNT_REDISRAFT or ~/.cache/wordcount/redisraft.so. Writes
# target/bench/raft-NAME.csv and prints the ratios of median wall times.
set -euo pipefail
cd "$(dirname "$0")/.."

module=${WORDCOUNT_REDISRAFT:-$HOME/.cache/wordcount/redisraft.so}
[[ -s $module ]] || { echo "needs the RedisRaft module at $module (docs/src/modes/redisraft.md)" >&2; exit 1; }
source bench/common.sh

bench() { # NAME FILES BYTES
  local dir=$out/raft-$1
  [[ -d $dir ]] || $wc generate --out "$dir" --files "$2" --bytes "$3" >&2
  hyperfine -w 1 -r "${RUNS:-5}" --export-csv "$out/raft-$1.csv" \
    "$wc run --input $dir --workers 2" \
    "$wc run --input $dir --workers 2 --redis raft --replicas 3 --redisraft-module $module" >&2
  local one raft ratio
  read -r one raft ratio < <(medians "$out/raft-$1.csv")
  printf "%-22s median: one Redis %s s, RedisRaft (3 replicas) %s s, ratio %.2f\n" "$1 ($2 x $3)" "$one" "$raft" "$ratio"
}
bench small 2000 2KiB
bench large 16 32MiB
bench huge 8 128MiB
