#!/usr/bin/env bash
# What coordination through Redis costs: the whole `wordcount run` (Redis
# start included) against `wordcount count --processes 2` on the same
# files, 10 and 100 copies of the KJV Bible (4.3 MB, from Debian's
# bible-kjv), 2 workers. Writes target/bench/coordination-N.csv and prints
# the ratios of mean wall time (both use both cores). BASELINE=PATH adds
# the same run by another wordcount binary (an older build), for a ratio
# measured in the same go.
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/kjv.sh

for n in 10 100; do
  dir=$(kjv_copies "$n")
  cmds=("$wc count $dir --processes 2" "$wc run --input $dir --workers 2")
  [[ -z ${BASELINE:-} ]] || cmds+=("$BASELINE run --input $dir --workers 2")
  hyperfine -w 2 -r "${RUNS:-10}" --export-csv "$out/coordination-$n.csv" "${cmds[@]}" >&2
  awk -F, -v n="$n" 'NR == 2 { c = $2 } NR == 3 { r = $2 } NR == 4 { b = $2 } END {
    printf "%3d files: count --processes 2 %.3f s, run --workers 2 %.3f s, run/count = %.2f", n, c, r, r / c
    if (b) printf "; baseline run %.3f s, baseline/count = %.2f", b, b / c
    printf "\n" }' "$out/coordination-$n.csv"
done
