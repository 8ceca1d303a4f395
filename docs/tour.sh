#!/usr/bin/env bash
# Runs the local commands of the README's five-minute tour, as written: the
# lines of the fenced sh block between <!-- tour:start --> and
# <!-- tour:end --> in README.md, with `set -euo pipefail`, in a temporary
# directory, with target/release/wordcount first on PATH.
#
#   cargo build --release -p wordcount && docs/tour.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$root/target/release
[[ -x $bin/wordcount ]] || { echo "tour.sh: no $bin/wordcount; build it first (cargo build --release -p wordcount)" >&2; exit 1; }
# The pod image's build (--no-default-features) has no `run`: the tour needs the lab.
"$bin/wordcount" run --help >/dev/null 2>&1 ||
  { echo "tour.sh: $bin/wordcount has no \`run\` (built without the lab feature?); build it with: cargo build --release -p wordcount" >&2; exit 1; }

# The sh lines inside the markers, fences left out.
script=$(awk '
  /<!-- tour:start -->/ { inside = 1; next }
  /<!-- tour:end -->/   { inside = 0; next }
  inside && /^```/      { fenced = !fenced; next }
  inside && fenced      { print }
' "$root/README.md")
[[ -n $script ]] || { echo "tour.sh: README.md has no commands between <!-- tour:start --> and <!-- tour:end -->" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/wordcount-tour.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
printf '%s\n' "$script" | sed 's/^/tour.sh: /' >&2
PATH=$bin:$PATH bash -c "set -euo pipefail
$script"
echo "tour.sh: the tour ran as written" >&2
