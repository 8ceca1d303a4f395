# Sourced by the benchmarks: checks for hyperfine, builds wordcount ($wc),
# and makes $out (target/bench) for their inputs and CSVs.
out=target/bench
mkdir -p "$out"
command -v hyperfine >/dev/null || { echo "needs hyperfine: apt-get install hyperfine" >&2; exit 1; }
cargo build --release -q -p wordcount
wc=target/release/wordcount

# medians CSV: the median wall times of the first two commands in
# hyperfine's CSV, and the second over the first ("A B B/A"). Medians: a
# shared machine's noise skews means.
medians() {
  awk -F, 'NR == 2 { a = $4 } NR == 3 { b = $4 } END { printf "%.3f %.3f %.3f\n", a, b, b / a }' "$1"
}
