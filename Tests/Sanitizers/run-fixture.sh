#!/usr/bin/env bash
# fmc + fmrun on the CNN fixture, streamed under a 50% budget (ring slots reused, streamed images copied every run)
# and preloaded, 2 warm runs each, with the binaries in $1 (a sanitizer's or the debug build). Whatever checker is on
# (ASan/LSan, TSan, FLASHMEM_VALIDATION=1) fails the process with a non-zero status, and so this script.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:?usage: run-fixture.sh BIN_DIR}
models=Tests/Fixtures/models
out=$(mktemp -d -t flashmem-sanitize-XXXXXX)
trap 'rm -rf "$out"' EXIT
"$bin/fmc" compile "$models/cnn.onnx" -o "$out/cnn.fmb" --memory-budget 50% >/dev/null 2>&1
for flag in "" --preload; do
    "$bin/fmrun" "$out/cnn.fmb" --input "x=$models/cnn.input.npy" --output-dir "$out/y$flag" --runs 2 $flag >/dev/null
    echo "fixture cnn ${flag:-streaming}: ok"
done
