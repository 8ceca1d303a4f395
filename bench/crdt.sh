#!/usr/bin/env bash
# What three sites cost: `wordcount run` on one Redis with 3 workers
# against the CRDT mode's 3 sites of one worker each (the same workers in
# all), alternated by hyperfine in the same go, on 100 copies of the KJV
# (the issue's target: the CRDT at most 2x one Redis). Writes
# target/bench/crdt-kjv100.csv and prints the ratio of median wall times.
# Read repair's own speed: cargo bench -p wordcount-lab --bench crdt_repair.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/kjv.sh
dir=$(kjv_copies 100)
hyperfine -w 1 -r "${RUNS:-5}" --export-csv "$out/crdt-kjv100.csv" \
  "$wc run --input $dir --workers 3" \
  "$wc run --input $dir --redis crdt --sites 3 --workers 1" >&2
read -r one crdt ratio < <(medians "$out/crdt-kjv100.csv")
printf "KJV x 100 median: one Redis %s s, CRDT (3 sites) %s s, ratio %.2f\n" "$one" "$crdt" "$ratio"
