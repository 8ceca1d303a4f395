#!/usr/bin/env bash
# What coordination through Redis costs: the whole `wordcount run` (Redis
# start included) against `wordcount count --processes 2` on the same
# files, 10 and 100 copies of the KJV Bible (4.3 MB, from Debian's
# bible-kjv), 2 workers. Writes target/bench/coordination-N.csv and prints
# the ratios of mean wall time (both use both cores).
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/bench
mkdir -p "$out"
command -v hyperfine >/dev/null || { echo "needs hyperfine: apt-get install hyperfine" >&2; exit 1; }
if [[ ! -s $out/kjv.txt ]]; then
  command -v bible >/dev/null || { echo "needs the bible command: apt-get install bible-kjv" >&2; exit 1; }
  bible Gen1:1-Rev22:21 >"$out/kjv.txt"
fi
cargo build --release -q -p wordcount
wc=target/release/wordcount

for n in 10 100; do
  dir=$out/kjv$n
  if [[ ! -d $dir ]]; then
    mkdir -p "$dir"
    for i in $(seq -w 1 "$n"); do cp "$out/kjv.txt" "$dir/kjv$i.txt"; done
  fi
  hyperfine -w 2 -r "${RUNS:-10}" --export-csv "$out/coordination-$n.csv" \
    "$wc count $dir --processes 2" "$wc run --input $dir --workers 2" >&2
  awk -F, -v n="$n" 'NR == 2 { c = $2 } NR == 3 { r = $2 } END {
    printf "%3d files: count --processes 2 %.3f s, run --workers 2 %.3f s, run/count = %.2f\n", n, c, r, r / c }' \
    "$out/coordination-$n.csv"
done
