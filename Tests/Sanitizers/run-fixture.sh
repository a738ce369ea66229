#!/usr/bin/env bash
# fmrun on the fixtures with the binaries in $1 (a sanitizer's or the debug build), bundles compiled by the fmc in
# $2 (default: $1): the CNN streamed under a 50% budget (ring slots reused, streamed images copied every run) and
# preloaded, 2 warm runs each; then the CNN and the MLP as one pipeline under a budget with room for one model at a
# time, so each pass takes the other's memory back, with cross-model prefetch (a thread copying the next model's
# weights while the first runs). Whatever checker is on (ASan/LSan, TSan, FLASHMEM_VALIDATION=1) fails the process
# with a non-zero status, and so this script.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:?usage: run-fixture.sh BIN_DIR [FMC_DIR]}
fmc_dir=${2:-$bin}
models=Tests/Fixtures/models
out=$(mktemp -d -t flashmem-sanitize-XXXXXX)
trap 'rm -rf "$out"' EXIT
"$fmc_dir/fmc" compile "$models/cnn.onnx" -o "$out/cnn.fmb" --memory-budget 50% >/dev/null 2>&1
"$fmc_dir/fmc" compile "$models/mlp.onnx" -o "$out/mlp.fmb" >/dev/null 2>&1
for flag in "" --preload; do
    "$bin/fmrun" "$out/cnn.fmb" --input "x=$models/cnn.input.npy" --output-dir "$out/y$flag" --runs 2 $flag >/dev/null
    echo "fixture cnn ${flag:-streaming}: ok"
done
run_pipeline() {  # OUT_DIR [fmrun flags…]
    local dir=$1; shift
    "$bin/fmrun" --pipeline "$out/cnn.fmb,$out/mlp.fmb" --input "cnn.x=$models/cnn.input.npy" \
        --input "mlp.x=$models/mlp.input.npy" --runs 3 --output-dir "$dir" --all-outputs "$@"
}
run_pipeline "$out/both" >"$out/both.txt"
echo "fixture pipeline cnn, mlp with room for both: ok"
# A budget one KiB over the larger footprint: each model fits alone, never both, so every pass takes memory back.
budget=$(sed -n 's/^budget: .*footprints (arena + weights): //p' "$out/both.txt" | tr ',' '\n' \
    | awk '$3 == "KiB" { v = $2 * 1024 } $3 == "MiB" { v = $2 * 1048576 } $3 == "B" { v = $2 } v > m { m = v } END { printf "%d", m + 1024 }')
run_pipeline "$out/one" --memory-budget "$budget" >"$out/one.txt"
grep -q "; [1-9][0-9]* times a model's memory was taken back" "$out/one.txt" \
    || { echo "pipeline under $budget bytes took no memory back:"; cat "$out/one.txt"; exit 1; }
for model in cnn mlp; do cmp "$out/both/$model/y.npy" "$out/one/$model/y.npy"; done
echo "fixture pipeline cnn, mlp with room for one ($budget bytes; memory taken back, same outputs): ok"
