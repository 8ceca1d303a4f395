#!/usr/bin/env bash
# Compares `wordcount count` on one core with the fastest published
# single-core word-frequency counters (benhoyt/countwords: optimized.c and
# the optimized Rust programs), on the KJV Bible x10 from Debian's
# bible-kjv package, and checks that the counts are identical.
#
#   bench/countwords.sh [BASELINE...]     e.g. /path/optimized-c /path/countwords-rust
#
# A baseline is a program that reads text on stdin and prints `word count`
# lines (the countwords convention); build them yourself from that repository.
# Writes target/bench/countwords.csv (hyperfine's export) and prints ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/bench
mkdir -p "$out"
kjv="$out/kjv.txt"
x10="$out/kjv_x10.txt"
if [[ ! -s $x10 ]]; then
  command -v bible >/dev/null || { echo "needs the bible command: apt-get install bible-kjv" >&2; exit 1; }
  bible Gen1:1-Rev22:21 >"$kjv"
  for _ in $(seq 10); do cat "$kjv"; done >"$x10"
fi
command -v hyperfine >/dev/null || { echo "needs hyperfine: apt-get install hyperfine" >&2; exit 1; }
cargo build --release -q -p wordcount
wc=target/release/wordcount

# Same counts: the whitespace tokenizer is the countwords definition.
"$wc" count "$x10" --tokenizer whitespace --top 1000000000 | awk '{print $2, $1}' | sort >"$out/ours.txt"
for b in "$@"; do
  "$b" <"$x10" | sort >"$out/theirs.txt"
  cmp -s "$out/ours.txt" "$out/theirs.txt" || { echo "counts differ from $b" >&2; exit 1; }
  echo "same counts as $b" >&2
done

cmds=("$wc count $x10 --tokenizer whitespace" "$wc count $x10 --tokenizer alnum")
for b in "$@"; do cmds+=("$b < $x10"); done
hyperfine -w 3 -r "${RUNS:-15}" --export-csv "$out/countwords.csv" "${cmds[@]}" >&2
# Ratios of mean user+system time (CPU time is what one core spends; wall
# time on a shared machine is noisier).
awk -F, 'NR > 1 { t[NR-1] = $6 + $7; name[NR-1] = $1 } END {
  for (i = 1; i <= NR - 1; i++) printf "%-70s %8.1f ms CPU  %6.1f MB/s  x%.2f vs whitespace\n",
    substr(name[i], 1, 70), t[i] * 1000, 43.0 / t[i], t[i] / t[1] }' "$out/countwords.csv"
