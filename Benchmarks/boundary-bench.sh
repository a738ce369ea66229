#!/usr/bin/env bash
# Compute-submission boundaries, for the device machine. A streamed run cuts its steps into submissions wherever
# copies are issued or a step waits for copied images, and each cut costs the GPU ~23 us (CostModel.submissionSeconds).
#  1. `boundaries` (Benchmarks/boundaries/boundaries.c, built here and carried as .device/boundaries): what one
#     boundary costs, without semaphores, with signals, with waits already satisfied, and with waits submitted
#     before the transfer queue's signals (what fmrun's streamer thread does).
#  2. The load plan A/B: each model compiled once in fp16 by A, its kernels timed resident (the profile), then
#     re-planned at every budget by A (.device/bin/fmc-a: before wait steps) and B (.device/bin/fmc: wait steps
#     merge boundaries, format 1.4), both run by the same fmrun (B's): warm median, first run, submissions, GPU
#     time; streamed outputs equal to preload bit for bit. B runs twice: as usual, and with
#     --signals-before-waits (no semaphore wait submitted before its signal). TRACE=1 adds where GPU time went.
#
# Here: build B and fmrun as for core-bench.sh into .device/bin (fmc.xz, fmrun.gz), keep the earlier fmc as
# .device/bin/fmc-a.xz, `cc -O2 -o .device/boundaries Benchmarks/boundaries/boundaries.c -lvulkan`, copy
# Benchmarks/trace_gaps.py into .device. There (carry .gl and .device):
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; bash Benchmarks/boundary-bench.sh
# Settings: MODELS, BUDGETS, RUNS (warm runs, 20), TRACE, SIDES ("a b"; "b" alone needs no fmc-a, compiles with B).
# Results: $OUT/boundary-*.log.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo/.device"
source "$repo/Benchmarks/unpack-bins.sh"; unpack_bins bin
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
log=$OUT/boundary-$(date +%H%M%S).log
exec > >(tee -a "$log") 2>&1
MODELS=${MODELS:-"vit_b_16 gpt_neo_125m"}; BUDGETS=${BUDGETS:-"100% 50% 25%"}; RUNS=${RUNS:-20}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
./bin/fmrun --list-devices > /dev/null 2>&1 || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -x ./boundaries ] && ./boundaries --count 64 --repeats 5
SIDES=${SIDES:-"a b"}
compiler=./bin/fmc-a
if [[ " $SIDES " == *" a "* ]]; then
  [ -x bin/fmc-a ] || { echo "boundary-bench: needs .device/bin/fmc-a (or SIDES=b)" >&2; exit 2; }
else
  compiler=./bin/fmc
fi
mkdir -p corpus
for m in $MODELS; do
  [ -f corpus/$m.onnx ] || python3 make_corpus.py --out corpus --only $m --no-bench 2>&1 | tail -1
  inputs=$(python3 "$repo/Benchmarks/corpus_inputs.py" corpus $m)
  $compiler compile corpus/$m.onnx -o $m.fmb --precision fp16 2>&1 | grep -E "^wrote|steps"
  echo "=== $m preload"
  ./bin/fmrun $m.fmb $inputs --preload --runs $RUNS --output-dir out.$m.preload --profile-out $m.profile.json 2>&1 \
    | grep -E "first run|warm latency|profile:"
  for b in $BUDGETS; do
    tag=$(echo $b | tr -d '%')
    for side in $SIDES; do
      fmc=./bin/fmc; [ $side = a ] && fmc=./bin/fmc-a
      echo "=== $m budget $b plan $side"
      $fmc replan $m.fmb -o $m.$tag.$side.fmb --memory-budget $b --profile $m.profile.json | grep -E "predicted|submissions"
      ./bin/fmc inspect $m.$tag.$side.fmb | grep -E "^  submissions"
      for flags in "" $([ $side = b ] && echo --signals-before-waits); do
        echo "--- run $side $flags"
        ./bin/fmrun $m.$tag.$side.fmb $inputs --runs $RUNS --output-dir out.$m.$tag.$side --profile $flags 2>&1 \
          | grep -E "cold latency|first run|warm latency|host waits|profile:"
        same=yes; for f in out.$m.preload/*.npy; do cmp -s $f out.$m.$tag.$side/$(basename $f) || same=no; done
        echo "bit-identical to preload: $same"
        if [ "${TRACE:-0}" = 1 ]; then
          ./bin/fmrun $m.$tag.$side.fmb $inputs --runs 3 --trace "$OUT/trace.$m.$tag.$side.json" $flags > /dev/null 2>&1
          python3 trace_gaps.py "$OUT/trace.$m.$tag.$side.json"
          rm -f "$OUT/trace.$m.$tag.$side.json"
        fi
      done
    done
  done
  rm -rf out.$m.* $m.*.fmb
done
