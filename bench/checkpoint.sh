#!/usr/bin/env bash
# What Redis checkpoints cost when nothing fails: `wordcount run` on 100
# copies of the KJV Bible (4.3 MB each, from Debian's bible-kjv), 2
# workers, without snapshots and with a snapshot (BGSAVE) every second,
# alternated by hyperfine in the same go. Writes target/bench/checkpoint.csv
# and prints the ratio of median wall times (the target: at most 1.10).
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/kjv.sh

dir=$(kjv_copies 100)
hyperfine -w 1 -r "${RUNS:-10}" --export-csv "$out/checkpoint.csv" \
  "$wc run --input $dir --workers 2" \
  "$wc run --input $dir --workers 2 --snapshot-interval 1s" >&2
read -r none every ratio < <(medians "$out/checkpoint.csv")
echo "100 KJV, median: no snapshots $none s, a snapshot every 1 s $every s, ratio $ratio"
