# Sourced by the benchmarks on the KJV Bible (4.3 MB, from Debian's
# bible-kjv): bench/common.sh, and kjv_copies N, which prints a directory
# of N copies, made once under target/bench.
source bench/common.sh
if [[ ! -s $out/kjv.txt ]]; then
  command -v bible >/dev/null || { echo "needs the bible command: apt-get install bible-kjv" >&2; exit 1; }
  bible Gen1:1-Rev22:21 >"$out/kjv.txt"
fi

kjv_copies() {
  local dir=$out/kjv$1
  if [[ ! -d $dir ]]; then
    mkdir -p "$dir"
    for i in $(seq -w 1 "$1"); do cp "$out/kjv.txt" "$dir/kjv$i.txt"; done
  fi
  echo "$dir"
}
