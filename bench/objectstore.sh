#!/usr/bin/env bash
# The object store and byte ranges, each against its baseline in the same
# go (docs/src/object-store.md quotes the ratios):
#   read    the KJV Bible x100 (100 files, 430 MB) read from a local S3
#           server (versitygw, store/versitygw.sh) against the same files
#           read from disk: `wordcount run --workers 2`;
#   split   one 1 GiB file counted in 64 MiB ranges (`--split 64MiB`)
#           against the same file whole (`--split 0`), 2 workers;
#   output  `--output FILE` against no output, on Debian's dict-gcide
#           (over 600,000 distinct words with the whitespace tokenizer).
# Writes target/bench/objectstore-NAME.csv and prints "NAME base new
# new/base" lines (medians). RUNS (default 5) sets the runs per command.
# Needs hyperfine, s3cmd (to upload), bible-kjv, dict-gcide and Go.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/kjv.sh
command -v s3cmd >/dev/null || { echo "needs s3cmd: apt-get install s3cmd" >&2; exit 1; }
dict=/usr/share/dictd/gcide.dict.dz
[[ -s $dict ]] || { echo "needs $dict: apt-get install dict-gcide" >&2; exit 1; }
runs=${RUNS:-5}

gw=$(store/versitygw.sh | tail -1)
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/data/corpus"
"$gw" --port "127.0.0.1:$port" --access bench --secret bench-secret-0 --quiet posix "$tmp/data" &
gw_pid=$!
trap 'kill $gw_pid; rm -rf "$tmp"' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-0 AWS_REGION=us-east-1 \
  AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ALLOW_HTTP=true
s3() {
  s3cmd -q --access_key=bench --secret_key=bench-secret-0 --host="127.0.0.1:$port" \
    --host-bucket="127.0.0.1:$port" --no-ssl "$@"
}
until s3 ls >/dev/null 2>&1; do sleep 0.2; done

pair() { # NAME BASE NEW
  hyperfine -w 1 -r "$runs" --export-csv "$out/objectstore-$1.csv" "$2" "$3" >&2
  echo "$1 $(medians "$out/objectstore-$1.csv")"
}

kjv=$(kjv_copies 100)
s3 sync "$kjv/" s3://corpus/kjv100/
pair read "$wc run --input $kjv --workers 2" "$wc run --input s3://corpus/kjv100/ --workers 2"

[[ -d $out/one-gib ]] || $wc generate --out "$out/one-gib" --files 1 --bytes 1GiB
pair split "$wc run --input $out/one-gib --workers 2 --split 0" \
  "$wc run --input $out/one-gib --workers 2 --split 64MiB"

if [[ ! -d $out/gcide ]]; then
  mkdir -p "$out/gcide"
  zcat "$dict" | split -b 1M -d -a 3 - "$out/gcide/part-"
fi
pair output "$wc run --input $out/gcide --workers 2 --tokenizer whitespace" \
  "$wc run --input $out/gcide --workers 2 --tokenizer whitespace --output $tmp/words.txt"
