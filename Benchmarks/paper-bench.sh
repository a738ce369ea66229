#!/usr/bin/env bash
# Issue 9, part 4: the FlashMem paper's table on our GPU, for the device machine. For each of the paper's models
# (make_corpus.py --paper [--all]): generate it there, compile it in fp16 (all weights resident), then run
#   preload   fmrun --preload                       (every weight loaded before the first kernel: today's engines)
#   auto      fmc replan --memory-budget auto       (the smallest budget predicted within 5% of all-resident)
#   500MB     fmc replan --memory-budget 500MB      (the paper's M_peak)
# each with the bundle in the page cache (cold = process start → first output; first run; warm median), once
# more evicted from the page cache (cold only), and with the device memory it holds (own allocations, the
# VK_EXT_memory_budget increase) and occupies on time average (fmrun's "occupied average", the paper's average
# memory); outputs against onnxruntime's reference, streamed against preload bit for bit. Beside them torch eager
# fp16 on the same GPU, weights loaded from a file (Benchmarks/paper/torch_eager.py). FP32_MODELS are also
# compiled and checked in fp32 (streamed at 25% and preloaded): the ones lavapipe cannot run.
#
# Here (build and carry as for core-bench.sh, Benchmarks/README.md), plus the corpus script's extra wheels:
#   pip download --no-deps -d .whl vit-pytorch==1.26.11 einops diffusers==0.42.1
# There: for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; MODELS="resnet50 deepvit" bash Benchmarks/paper-bench.sh
# Settings: MODELS (default the 8 that are not large), RUNS (10), COLD_RUNS (4: more cached process starts per row,
# the table's cold is their median), FIXED (500MB), BUDGETS (default "auto FIXED"; e.g. "12.5% 25%"), SPLIT_BLOCK (32MiB:
# --split-attention of the budget rows, SPLIT=0: none), FP32_MODELS, TORCH (1: run torch eager; TORCH_MODELS: only for
# these), DEADLINE (seconds;
# models not started by then are listed as skipped). Results: $OUT/paper-*.log,
# $OUT/paper-table.md, $OUT/paper/*.json.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo/.device"
source "$repo/Benchmarks/unpack-bins.sh"; unpack_bins bin
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/paper"
log=$OUT/paper-$(date +%H%M%S).log
exec > >(tee -a "$log") 2>&1
start=$(date +%s)
MODELS=${MODELS:-"resnet50 gpt_neo_125m vit_1024_12 deepvit depth_anything_s depth_anything_l whisper_medium sam2"}
FP32_MODELS=${FP32_MODELS-"depth_anything_l whisper_medium sam2"}  # set and empty: none
RUNS=${RUNS:-10}; COLD_RUNS=${COLD_RUNS:-4}; FIXED=${FIXED:-500MB}; DEADLINE=${DEADLINE:-100000}
SPLIT_BLOCK=${SPLIT_BLOCK:-32MiB}
# The corpus script's extra packages (vit-pytorch, einops, diffusers) from carried wheels, never from a network.
if ls "$repo"/.whl/*.whl > /dev/null 2>&1; then
  for w in "$repo"/.whl/*.whl; do python3 -m zipfile -e "$w" "$PWD/pylib"; done  # pure-Python wheels: unpacking installs
  export PYTHONPATH=$PWD/pylib${PYTHONPATH:+:$PYTHONPATH}
fi
export CORPUS_SCRIPTS=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
./bin/fmrun --list-devices > /dev/null 2>&1 || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
./bin/fmrun --list-devices
mkdir -p corpus work
check() {  # check NAME MODE OUTDIR: every output against the reference, as one JSON line
  python3 - "$1" "$2" "$3" <<'PY'
import glob, json, os, sys
import numpy as np
m, mode, out = sys.argv[1:]
z = np.load(f"corpus/{m}.ref.npz")
errs = {}
for i, n in enumerate(z["__output_names__"]):
    ref = z[f"out.{i}"].astype(np.float64)
    path = os.path.join(out, str(n).replace("/", "_") + ".npy")
    if not os.path.exists(path):
        errs[str(n)] = None; continue
    got = np.load(path).astype(np.float64)
    errs[str(n)] = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)) if got.shape == ref.shape else "shape"
print("CHECK " + json.dumps(dict(model=m, mode=mode, errors=errs)))
PY
}
same() {  # same NAME A B: outputs of two runs bit for bit
  if diff -r -q "$2" "$3" > /dev/null 2>&1; then echo "BITEQ $1 $(basename $2) $(basename $3) identical";
  else echo "BITEQ $1 $(basename $2) $(basename $3) DIFFER"; fi
}
run() {  # run NAME TAG BUNDLE [fmrun flags]: cached (with profile) and evicted runs
  local m=$1 tag=$2 b=$3; shift 3
  echo "--- $m $tag (page cache)"
  cat "$b" > /dev/null  # fmc lets the pages it wrote go (its RSS stays small): read them back in
  # Every mode's cold figure with the pipelines already in fmrun's cache (the first process of a bundle compiles
  # them: that is the first-process start-up, not a property of a mode).
  ./bin/fmrun "$b" $inputs --runs 0 "$@" > /dev/null 2>&1
  ./bin/fmrun "$b" $inputs --output-dir "work/out.$m.$tag" --runs "$RUNS" --profile "$@" 2>&1 | grep -v "^fmrun:" | grep -v "^  step"
  # Process start-up (instance and device creation: 150-250 ms on the H200) varies more between processes than
  # the modes differ: the table takes the median cold latency over this process and COLD_RUNS more.
  echo "--- $m $tag (cold repeats)"
  for _ in $(seq "$COLD_RUNS"); do
    ./bin/fmrun "$b" $inputs --runs 0 "$@" 2>&1 | grep -E "^cold latency|rror"
  done
  echo "--- $m $tag (evicted)"
  ./bin/fmrun "$b" $inputs --output-dir "work/ev.$m.$tag" --runs 0 --evict-cache "$@" 2>&1 | grep -E "^cold latency|rror"
  check "$m" "$tag" "work/out.$m.$tag"
}
for m in $MODELS; do
  if [ $(( $(date +%s) - start )) -gt "$DEADLINE" ]; then echo "=== $m SKIPPED (past DEADLINE=${DEADLINE}s)"; continue; fi
  echo "=== $m"
  [ -f corpus/$m.onnx ] || /usr/bin/time -f "generate %e s" python3 make_corpus.py --out corpus --only $m --no-bench 2>&1 | tail -2
  [ -f corpus/$m.onnx ] || { echo "=== $m FAILED to generate"; continue; }
  inputs=$(python3 "$repo/Benchmarks/corpus_inputs.py" corpus $m)
  echo "--- $m compile fp16"
  /usr/bin/time -f "fmc %e s, peak RSS %M KiB" ./bin/fmc compile corpus/$m.onnx -o work/$m.fmb --precision fp16 2>&1 \
      | grep -v "^fmc:" | grep -v "^  split" | tee work/$m.compile.txt || { echo "=== $m FAILED to compile"; continue; }
  run $m preload work/$m.fmb --preload --profile-out work/$m.profile.json
  # Budget rows (not auto) replan a bundle compiled with long attentions split into blocks of rows (what fmc compile
  # --memory-budget does by itself): the same bundle when the model has none.
  split=work/$m.fmb
  if [ "${SPLIT:-1}" = 1 ]; then
    ./bin/fmc compile corpus/$m.onnx -o work/$m.split.fmb --precision fp16 --split-attention "$SPLIT_BLOCK" 2>&1 \
        | grep -E "rror|^  nodes|^  arena" > work/$m.split.txt
    steps() { grep -o 'steps [0-9]*' "$1" | head -1; }
    if ! grep -q rror work/$m.split.txt && [ "$(steps work/$m.split.txt)" != "$(steps work/$m.compile.txt)" ]; then
      echo "--- $m split attention: $(tr '\n' ' ' < work/$m.split.txt)"
      ./bin/fmrun work/$m.split.fmb $inputs --preload --runs 3 --profile-out work/$m.split.profile.json > /dev/null 2>&1
      split=work/$m.split.fmb
    fi
  fi
  for budget in ${BUDGETS:-auto $FIXED}; do
    tag=$budget
    src=$split profile=work/$m.split.profile.json
    [ $budget = auto ] || [ $split = work/$m.fmb ] && src=work/$m.fmb profile=work/$m.profile.json
    if ./bin/fmc replan $src -o work/$m.$tag.fmb --memory-budget $budget --profile $profile 2>&1 | grep -v "^fmc:"; then
      run $m $tag work/$m.$tag.fmb
      same $m work/out.$m.preload work/out.$m.$tag
      rm -f work/$m.$tag.fmb
    else
      echo "=== $m $budget INFEASIBLE"
    fi
  done
  rm -f work/$m.fmb work/$m.split.fmb
  case " $FP32_MODELS " in *" $m "*)
    echo "--- $m compile fp32"
    if ./bin/fmc compile corpus/$m.onnx -o work/$m.fp32.fmb --precision fp32 --memory-budget 25% 2>&1 | grep -E "rror|budget"; then
      for mode in preload streamed; do
        flag=; [ $mode = preload ] && flag=--preload
        ./bin/fmrun work/$m.fp32.fmb $inputs --output-dir work/out.$m.fp32.$mode --runs 1 $flag 2>&1 | grep -E "warm|rror"
        check $m fp32-$mode work/out.$m.fp32.$mode
      done
      same $m work/out.$m.fp32.preload work/out.$m.fp32.streamed
      rm -f work/$m.fp32.fmb
    fi ;;
  esac
  if [ "${TORCH:-1}" = 1 ] && [[ " ${TORCH_MODELS:-$m} " == *" $m "* ]]; then
    echo "--- $m torch eager"
    python3 "$repo/Benchmarks/paper/torch_eager.py" save $m corpus work/$m.pt 2>&1 | tail -1
    python3 "$repo/Benchmarks/paper/torch_eager.py" run work/$m.pt --runs $RUNS --dtype fp16 --json "$OUT/paper/$m.torch.json" \
        --ref corpus/$m.ref.npz 2>&1 | tail -1
    rm -f work/$m.pt
  fi
  rm -rf work/out.$m.* work/ev.$m.*
  echo "=== $m done at $(( $(date +%s) - start )) s"
done
python3 "$repo/Benchmarks/paper/paper_table.py" "$log" "$OUT/paper" | tee "$OUT/paper-table.md"
