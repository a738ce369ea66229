#!/usr/bin/env bash
# Weights resident, GPU time per model (issue 10's "GPT-Neo-2.7B's GPU time ≤ 15 ms"), for the device machine:
# generate each model with the corpus script in fp16 and without onnxruntime's reference (the large GPT-Neo models
# take minutes less: the point here is time, not error — the other benchmarks check errors), compile it in fp16
# for the device's tensor cores, run it `--preload` RUNS times and report the warm median, the Σ of the per-step
# GPU times (median over the runs), the steps, and where the time went by the ops the steps' labels name; then the
# warm median again without the profile's timestamps.
#
# Here: build and carry as for ab-bench.sh (.device/bin/fmc.xz, fmrun.gz; .device/make_corpus.py).
# There: for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; MODELS=gpt_neo_2_7b bash Benchmarks/resident-bench.sh
# Settings: MODELS (default gpt_neo_2_7b), RUNS (10), FMC_FLAGS (more compile flags), EXPORT (fp16, the default,
# generates fastest; fp32 exports the graph the other benchmarks compile to fp16: GPT-Neo's fp16 export casts Q and K
# up and P down around its attention, which fmc fuses through those Casts only since ca94852). Results: $OUT/resident-*.log,
# $OUT/resident/*.json (profiles).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo/.device"
source "$repo/Benchmarks/unpack-bins.sh"; unpack_bins bin
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/resident"
exec > >(tee -a "$OUT/resident-$(date +%H%M%S).log") 2>&1
MODELS=${MODELS:-gpt_neo_2_7b}; RUNS=${RUNS:-10}; FMC_FLAGS=${FMC_FLAGS:-}; EXPORT=${EXPORT:-fp16}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
./bin/fmrun --list-devices > /dev/null 2>&1 || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
corpus16=${CORPUS:-/tmp/resident-corpus}  # outside the carried tree, which each call replaces
mkdir -p $corpus16 work
for model in $MODELS; do
  echo "=== $model"
  m=$model; [ "$EXPORT" = fp16 ] && m=${model}_fp16  # the corpus script's name for the fp16 export
  [ -f $corpus16/$m.onnx ] || /usr/bin/time -f "generate %e s, peak RSS %M KiB" \
    python3 make_corpus.py --out $corpus16 --only $model --dtype $EXPORT --no-ref --no-bench 2>&1 | tail -2
  [ -f $corpus16/$m.onnx ] || { echo "=== $model FAILED to generate"; continue; }
  inputs=$(python3 "$repo/Benchmarks/corpus_inputs.py" $corpus16 $m)  # made from its description: no reference
  /usr/bin/time -f "compile %e s, peak RSS %M KiB" ./bin/fmc compile $corpus16/$m.onnx -o work/$m.fmb --precision fp16 \
    $FMC_FLAGS 2>&1 | grep -E "rror|^  plan|predicted|tensor|compile "
  rm -f $corpus16/$m.onnx $corpus16/$m.onnx.data  # the bundle is all that is needed now; frees the disk
  ./bin/fmc inspect work/$m.fmb | sed -n '/^Kernels/,/^  bindings/p' | cut -c1-60,121-  # which kernels, how often
  ./bin/fmrun work/$m.fmb $inputs --preload --runs "$RUNS" --output-dir work/out.$m \
    --profile-out "$OUT/resident/$m.json" 2>&1 | grep -E -A6 "^warm latency|^first run|^device memory|^profile|rror" \
    | grep -v "^fmrun: warm run"
  # The same runs without per-step timestamps (two per step, around its barrier and dispatch): the warm latency an
  # app sees; the profiled one above carries the timestamps' own cost.
  ./bin/fmrun work/$m.fmb $inputs --preload --runs "$RUNS" 2>&1 | grep -E "^warm latency" | sed 's/^warm latency:/warm, unprofiled:/'
  python3 - "$OUT/resident/$m.json" <<'PY'
import json, sys, collections
p = json.load(open(sys.argv[1]))
seconds, labels = p["stepSeconds"], p["stepLabels"]
print(f"GPU time {1e3 * sum(seconds):.3f} ms in {len(seconds)} steps (Σ of the per-step medians)")
# By the last ONNX op type in each step's label (a fused step is labelled by its nodes, '+'-joined).
by = collections.defaultdict(lambda: [0, 0.0])
for label, sec in zip(labels, seconds):
    op = label.split("+")[0].rstrip(")").split("/")[-1].split("_")[0] or "?"
    by[op][0] += 1
    by[op][1] += 1e3 * sec
for op, (n, ms) in sorted(by.items(), key=lambda kv: -kv[1][1])[:10]:
    print(f"  {op:28s} {n:5d} steps {ms:8.3f} ms")
PY
  rm -f work/$m.fmb
done
