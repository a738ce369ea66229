#!/usr/bin/env bash
# Issue 8's benchmark, for the device machine (Benchmarks/README.md, "The FlashMem core"): for each model,
# generate it with the corpus script, compile it once in fp16, then for every budget re-plan it (`fmc replan`,
# same kernels and pieces) and run it; plus `--preload`. Each row: cold latency (process start → first output,
# bundle in the page cache), first run, warm median, bytes streamed per warm run, device memory (own accounting
# and the VK_EXT_memory_budget increase), predicted vs measured makespan, the bound, and the error against
# onnxruntime; streamed outputs are compared with preload bit for bit.
#
# Run from the folder that holds .device/ (the Vulkan loader debs unpacked first, see README), which holds bin/fmc.gz, bin/fmrun.gz, make_corpus.py and
# core_table.py. Settings: MODELS, BUDGETS, RUNS (warm runs), IMAGE (--max-image-size), EVICT_BUDGET (the
# budget that also gets a run with the bundle evicted from the page cache), TRACE=1 (also trace every budget's
# runs and print where their GPU time went, trace_gaps.py). Results: $OUT/core-*.log and $OUT/core-table.md.
set -uo pipefail
cd .device
source ../Benchmarks/unpack-bins.sh; unpack_bins bin
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
log=$OUT/core-$(date +%H%M%S).log
exec > >(tee -a "$log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
./bin/fmrun --list-devices >/dev/null 2>&1 || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
./bin/fmrun --list-devices
[ -x vkprobe ] && ./vkprobe --threads 16 --no-matmul --json "$OUT/vkprobe.json" > "$OUT/vkprobe.txt" 2>&1

MODELS=${MODELS:-"resnet50 vit_b_16 gpt_neo_125m gpt_neo_1_3b gpt_neo_2_7b"}
BUDGETS=${BUDGETS:-"100% 50% 25% 12.5% auto"}
RUNS=${RUNS:-10}
IMAGE=${IMAGE:-32MiB}
mkdir -p corpus
for m in $MODELS; do
  [ -f corpus/$m.onnx ] || python3 make_corpus.py --out corpus --only $m --no-bench 2>&1 | tail -1
  inputs=$(python3 ../Benchmarks/corpus_inputs.py corpus $m)
  echo "=== $m compile fp16"
  /usr/bin/time -f "fmc %e s, peak RSS %M KiB" ./bin/fmc compile corpus/$m.onnx -o $m.fmb --precision fp16 \
      --max-image-size $IMAGE 2>&1 | grep -v "^fmc:" | grep -v "^  split"
  echo "=== $m preload"
  ./bin/fmrun $m.fmb $inputs --preload --output-dir out.$m.preload --runs $RUNS --profile-out $m.profile.json 2>&1 \
      | grep -v "^fmrun:" | grep -v "^  step"
  # The streaming bandwidth to plan with: measured by a short streamed run (copy engine and host decode).
  ./bin/fmc replan $m.fmb -o $m.probe.fmb --memory-budget 25% --profile $m.profile.json > /dev/null
  ./bin/fmrun $m.probe.fmb $inputs --runs 3 --profile-out $m.stream.json > /dev/null 2>&1
  bw=$(python3 -c "import json; p=json.load(open('$m.stream.json')); r=[v for v in (p.get('transferBandwidth'), p.get('decodeBandwidth')) if v]; print(min(r)/1e9 if r else '')")
  rm -f $m.probe.fmb
  echo "=== $m measured streaming bandwidth: ${bw:-unknown} GB/s"
  for b in $BUDGETS; do
    tag=$(echo $b | tr -d '%')
    echo "=== $m budget $b"
    # Planned with the kernel times the preload run measured (a profile) and the measured streaming bandwidth.
    ./bin/fmc replan $m.fmb -o $m.$tag.fmb --memory-budget $b --profile $m.profile.json ${bw:+--bandwidth $bw} || continue
    ./bin/fmrun $m.$tag.fmb $inputs --output-dir out.$m.$tag --runs $RUNS --profile 2>&1 | grep -v "^fmrun:" \
      | grep -v "^  step"
    if [ "${TRACE:-0}" = 1 ]; then
      ./bin/fmrun $m.$tag.fmb $inputs --runs 3 --trace "$OUT/trace.$m.$tag.json" > /dev/null 2>&1
      python3 trace_gaps.py "$OUT/trace.$m.$tag.json"
    fi
    same=yes; for f in out.$m.preload/*.npy; do cmp -s $f out.$m.$tag/$(basename $f) || same=no; done
    echo "bit-identical to preload: $same"
    if [ "$b" = "${EVICT_BUDGET:-25%}" ]; then
      echo "=== $m budget $b host-read pread"
      ./bin/fmrun $m.$tag.fmb $inputs --runs $RUNS --host-read pread 2>&1 | grep -E "first run|warm latency|decode"
      echo "=== $m budget $b evicted"
      ./bin/fmrun $m.$tag.fmb $inputs --runs 0 --evict-cache 2>&1 | grep -E "cold latency|first run"
    fi
    rm -f $m.$tag.fmb
  done
  python3 - $m <<'PY'
import numpy as np, sys, glob, os
m = sys.argv[1]
z = np.load(f"corpus/{m}.ref.npz")
for i, n in enumerate(z["__output_names__"]):
    ref = z[f"out.{i}"].astype(np.float64)
    out = np.load(f"out.{m}.preload/{n.replace('/', '_')}.npy").astype(np.float64)
    print(f"=== {m} error {n}: rel {np.linalg.norm(out - ref) / np.linalg.norm(ref):.3e}")
PY
  [ "${KEEP:-0}" = 1 ] || { rm -f $m.fmb corpus/$m.onnx* corpus/$m.*.npy; rm -rf out.$m.*; }
done
python3 core_table.py "$log" > "$OUT/core-table.md"
cat "$OUT/core-table.md"
