#!/usr/bin/env bash
# What coordination costs as the vocabulary grows: `wordcount run --workers
# 2` against a serial `wordcount count` on the same files, for
#   gen64  64 files of 1 MiB from `wordcount generate` (50,000-word Zipf vocabulary)
#   gcide  Debian's dict-gcide (about 40 MB, over 600,000 distinct words with
#          the whitespace tokenizer) split into 1 MiB files.
# Writes target/bench/vocabulary-NAME.csv and prints the ratios of mean wall
# time. RUNS (default 5) sets the runs per command; BASELINE=PATH adds the
# same run by another wordcount binary (an older build), for a ratio
# measured in the same go.
set -euo pipefail
cd "$(dirname "$0")/.."

dict=/usr/share/dictd/gcide.dict.dz
[[ -s $dict ]] || { echo "needs $dict: apt-get install dict-gcide" >&2; exit 1; }
source bench/common.sh

[[ -d $out/gen64 ]] || $wc generate --out "$out/gen64" --files 64 --bytes 1MiB
if [[ ! -d $out/gcide ]]; then
  mkdir -p "$out/gcide"
  zcat "$dict" | split -b 1M -d -a 3 - "$out/gcide/part-"
fi

bench() { # NAME TOKENIZER
  local name=$1 tok=$2 dir=$out/$1
  local cmds=("$wc count $dir --tokenizer $tok" "$wc run --input $dir --workers 2 --tokenizer $tok")
  [[ -z ${BASELINE:-} ]] || cmds+=("$BASELINE run --input $dir --workers 2 --tokenizer $tok")
  hyperfine -w 1 -r "${RUNS:-5}" --export-csv "$out/vocabulary-$name.csv" "${cmds[@]}" >&2
  awk -F, -v n="$name" 'NR == 2 { c = $2 } NR == 3 { r = $2 } NR == 4 { b = $2 } END {
    printf "%-6s count (serial) %.3f s, run --workers 2 %.3f s, run/count = %.2f", n, c, r, r / c
    if (b) printf "; baseline run %.3f s, baseline/count = %.2f", b, b / c
    printf "\n" }' "$out/vocabulary-$name.csv"
}
bench gen64 alnum
bench gcide whitespace
