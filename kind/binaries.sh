#!/usr/bin/env bash
# The release binaries our images carry, into target/image/bin (printed as
# the last line): the operator, and `wordcount` without its `experiments`
# feature, so that the pods' image has no plotting library and no font.
#
#   kind/controlplane/controlplane.sh load "$(kind/binaries.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p wordcount-operator >&2
# A target dir of its own: building the other feature set in target/ would
# replace the `wordcount` that has `experiment`.
cargo build --release --locked -p wordcount --no-default-features --target-dir target/image >&2
mkdir -p target/image/bin
cp target/release/wordcount-operator target/image/release/wordcount target/image/bin/
echo "$PWD/target/image/bin"
