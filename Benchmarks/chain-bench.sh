#!/usr/bin/env bash
# Issue 11's benchmark, for the device machine: several paper models in turn under one memory budget
# (`fmrun --pipeline`), their weights together well above it. Each model is compiled once in fp16, run
# `--preload --profile-out` for its kernel times, and re-planned for PER_MODEL bytes (`fmc replan`), so that two
# models fit the budget side by side and the next one can be prefetched while the current one runs. Rows:
#   streamed + prefetch     fmrun --pipeline … --memory-budget BUDGET            (what FlashMem does)
#   streamed, no prefetch   the same bundles back to back, --no-prefetch
#   preload each in turn    --preload --memory-budget BUDGET (each model loaded whole before it runs; the budget
#                           takes the previous one's memory back)
#   preload all at once     --preload, no budget (every model resident: what an app preloading its models holds)
# Each row is one fmrun process: cold latency (process start → first pass's outputs, bundles in the page cache),
# the first pass with its bound (max(Σ kernels, bytes copied / copy bandwidth measured in that pass)), the warm
# median, peak and time-averaged device memory (own accounting) and the VK_EXT_memory_budget increase. Outputs of
# every model are compared with onnxruntime's references and the streamed ones with preload's bit for bit.
#
# Run from the repository root there, after unpacking the Vulkan loader debs (Benchmarks/README.md); .device/
# holds bin/fmc.gz, bin/fmrun.gz and make_corpus.py (+ pylib/ wheels unpacked by paper-bench.sh, or .whl/).
# Settings: MODELS, BUDGET (context budget), PER_MODEL (each bundle's plan), PRELOAD_BUDGET (preload each in turn:
# at least the largest model whole; default BUDGET), RUNS, VALIDATE=1 (the streamed pipeline once more
# under the validation layer, which must be installed), TRACE=1 (a trace of the prefetch row's first and last pass,
# $OUT/chain-prefetch-trace.json), TRUSTED=1 (the prefetch row again with --trust-bundle: no checksums on first use),
# PER_CHUNK=1 (the prefetch row again with --copy-per-chunk: one copy command per chunk, not per region).
# Results: $OUT/chain-*.log.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo/.device"
source "$repo/Benchmarks/unpack-bins.sh"; unpack_bins bin
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
log=$OUT/chain-$(date +%H%M%S).log
exec > >(tee -a "$log") 2>&1
MODELS=${MODELS:-"depth_anything_s vit_1024_12 deepvit gpt_neo_125m"}
BUDGET=${BUDGET:-512MiB}; PER_MODEL=${PER_MODEL:-256MiB}; RUNS=${RUNS:-5}
if ls "$repo"/.whl/*.whl > /dev/null 2>&1 && [ ! -d pylib/vit_pytorch ]; then
  for w in "$repo"/.whl/*.whl; do python3 -m zipfile -e "$w" "$PWD/pylib"; done
fi
[ -d pylib ] && export PYTHONPATH=$PWD/pylib${PYTHONPATH:+:$PYTHONPATH}
./bin/fmrun --list-devices > /dev/null 2>&1 || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
mkdir -p corpus chain
missing=$(for m in $MODELS; do [ -f corpus/$m.onnx ] || echo $m; done)
[ -n "$missing" ] && python3 make_corpus.py --out corpus --only $missing --no-bench 2>&1 | tail -2
bundles=(); inputs=""; weights=0
for m in $MODELS; do
  for flag in $(python3 "$repo/Benchmarks/corpus_inputs.py" corpus $m | sed 's/--input //g'); do
    inputs="$inputs --input $m.$flag"
  done
  echo "=== $m"
  ./bin/fmc compile corpus/$m.onnx -o chain/$m.all.fmb --precision fp16 2>&1 | grep -v "^fmc:" | grep -E "rror|wrote"
  ./bin/fmrun chain/$m.all.fmb $(python3 "$repo/Benchmarks/corpus_inputs.py" corpus $m) --preload --runs 3 \
      --profile-out chain/$m.profile.json 2>&1 | grep -E "^warm|^device memory|rror"
  ./bin/fmc replan chain/$m.all.fmb -o chain/$m.fmb --memory-budget $PER_MODEL --profile chain/$m.profile.json 2>&1 \
      | grep -v "^fmc:" | tail -3
  bundles+=(chain/$m.fmb)
  weights=$(( weights + $(stat -c %s chain/$m.all.fmb) ))
done
list=$(IFS=,; echo "${bundles[*]}")
echo "=== chain: $list; bundles $((weights >> 20)) MiB in all, budget $BUDGET, $PER_MODEL per model plan"
row() {  # row TAG [fmrun flags]
  local tag=$1; shift
  echo "--- $tag"
  ./bin/fmrun --pipeline "$list" $inputs --runs "$RUNS" --profile --all-outputs --output-dir "chain/out.$tag" "$@" 2>&1 \
      | grep -v "^fmrun:"
}
row prefetch --memory-budget $BUDGET ${TRACE:+--trace $OUT/chain-prefetch-trace.json}
# Where the first pass's prefetch goes: the same row trusting the bundle (no chunk checksums on first use).
[ "${TRUSTED:-0}" = 1 ] && row prefetch-trusted --memory-budget $BUDGET --trust-bundle
# The prefetch row with one copy command per chunk, as before copies were merged into regions.
[ "${PER_CHUNK:-0}" = 1 ] && row prefetch-per-chunk --memory-budget $BUDGET --copy-per-chunk
row no-prefetch --memory-budget $BUDGET --no-prefetch
row preload-each --memory-budget ${PRELOAD_BUDGET:-$BUDGET} --preload
row preload-all --preload
if [ "${VALIDATE:-0}" = 1 ]; then  # the streamed pipeline once more under VK_LAYER_KHRONOS_validation (+ sync validation)
  echo "--- prefetch under the validation layer"
  FLASHMEM_VALIDATION=1 ./bin/fmrun --pipeline "$list" $inputs --runs 1 --memory-budget $BUDGET 2>&1 \
      | grep -E "alidation|rror|first pass|UNASSIGNED|VUID|SYNC" | head -20
  echo "validation exit status: ${PIPESTATUS[0]}"
fi
for tag in prefetch no-prefetch preload-each $([ "${PER_CHUNK:-0}" = 1 ] && echo prefetch-per-chunk); do
  if diff -r -q chain/out.$tag chain/out.preload-all > /dev/null; then echo "BITEQ $tag preload-all identical"
  else echo "BITEQ $tag preload-all DIFFER"; fi
done
python3 - $MODELS <<'PY'
import os, sys
import numpy as np
for m in sys.argv[1:]:
    z = np.load(f"corpus/{m}.ref.npz")
    for i, n in enumerate(z["__output_names__"]):
        path = f"chain/out.prefetch/{m}/{str(n).replace('/', '_')}.npy"
        if not os.path.exists(path):
            print(f"CHECK {m} {n}: missing"); continue
        ref = z[f"out.{i}"].astype(np.float64); got = np.load(path).astype(np.float64)
        print(f"CHECK {m} {n}: rel error {np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30):.3e}")
PY
