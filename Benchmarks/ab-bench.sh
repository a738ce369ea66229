#!/usr/bin/env bash
# A compiler change, A against B on the device machine: the same models compiled by two fmc binaries (A: before
# the change, B: after), both run by the same fmrun in one call, so the figures compare on one card. Per model and
# compiler: steps, GPU time (Σ of the per-step timestamps, median of the warm runs), warm latency (median), the
# relative error of every output against onnxruntime's reference; for B also a run streamed at STREAM_BUDGET that
# must equal B's preload run bit for bit. STEP_MATCH (default "attention") names the steps whose GPU time is
# summed separately (the changed kernels).
#
# Here: build B as for core-bench.sh (Benchmarks/README.md) into .device/bin/fmc.gz, and keep the earlier release
# fmc as .device/bin/fmc-a.gz. There: for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig;
#   MODELS="gpt2 vit_b_16" bash Benchmarks/ab-bench.sh
# Settings: MODELS, PRECISION (fp16), RUNS (20), STREAM_BUDGET (25%), DEADLINE (seconds; later models skipped),
# A_FLAGS / B_FLAGS (more fmc compile flags for A / B; with A_FLAGS set and no fmc-a, A is fmc with them: an A/B of
# a compile option, e.g. A_FLAGS="--split-attention off").
# Results: $OUT/ab-*.log and $OUT/ab/*.json (the cost profiles).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo/.device"
source "$repo/Benchmarks/unpack-bins.sh"; unpack_bins bin
A_FLAGS=${A_FLAGS:-}; B_FLAGS=${B_FLAGS:-}
fmc_a=./bin/fmc-a; [ -x bin/fmc-a ] || { [ -n "$A_FLAGS" ] && fmc_a=./bin/fmc; }
[ -x $fmc_a ] && [ -x bin/fmc ] || { echo "ab-bench: needs .device/bin/fmc-a (or A_FLAGS) and .device/bin/fmc" >&2; exit 2; }
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/ab"
log=$OUT/ab-$(date +%H%M%S).log
exec > >(tee -a "$log") 2>&1
start=$(date +%s)
MODELS=${MODELS:-"gpt2 vit_b_16 gpt_neo_125m"}; PRECISION=${PRECISION:-fp16}; RUNS=${RUNS:-20}
STREAM_BUDGET=${STREAM_BUDGET:-25%}; DEADLINE=${DEADLINE:-100000}; STEP_MATCH=${STEP_MATCH:-attention}
if ls "$repo"/.whl/*.whl > /dev/null 2>&1; then
  for w in "$repo"/.whl/*.whl; do python3 -m zipfile -e "$w" "$PWD/pylib"; done
  export PYTHONPATH=$PWD/pylib${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
./bin/fmrun --list-devices > /dev/null 2>&1 || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
mkdir -p corpus work
summary() {  # summary MODEL TAG PROFILE OUTDIR: one line of GPU time, matched steps and errors
  python3 - "$@" <<'PY'
import json, os, sys
import numpy as np
m, tag, prof, out = sys.argv[1:]
p = json.load(open(prof))
labels, secs = p["stepLabels"], p["stepSeconds"]
match = os.environ.get("STEP_MATCH", "attention")
hit = [s for l, s in zip(labels, secs) if match in l]
z = np.load(f"corpus/{m}.ref.npz")
errs = []
for i, n in enumerate(z["__output_names__"]):
    ref = z[f"out.{i}"].astype(np.float64)
    got = np.load(os.path.join(out, str(n).replace("/", "_") + ".npy")).astype(np.float64)
    errs.append(f"{n} {np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30):.2e}")
print(f"AB {m} {tag}: {len(secs)} steps, GPU {sum(secs)*1e3:.3f} ms, {len(hit)} '{match}' steps "
      f"{sum(hit)*1e3:.3f} ms; errors: {', '.join(errs)}")
PY
}
for m in $MODELS; do
  if [ $(( $(date +%s) - start )) -gt "$DEADLINE" ]; then echo "=== $m SKIPPED (past DEADLINE=${DEADLINE}s)"; continue; fi
  echo "=== $m"
  [ -f corpus/$m.onnx ] || /usr/bin/time -f "generate %e s" python3 make_corpus.py --out corpus --only $m --no-bench 2>&1 | tail -2
  [ -f corpus/$m.onnx ] || { echo "=== $m FAILED to generate"; continue; }
  inputs=$(python3 "$repo/Benchmarks/corpus_inputs.py" corpus $m)
  for v in a b; do
    fmc=./bin/fmc flags=$B_FLAGS; [ $v = a ] && fmc=$fmc_a flags=$A_FLAGS
    $fmc compile corpus/$m.onnx -o work/$m.$v.fmb --precision $PRECISION $flags 2>&1 | grep -E "rror|^  arena" \
      | tee /dev/stderr | grep -q rror && continue
    ./bin/fmrun work/$m.$v.fmb $inputs --runs 0 --preload > /dev/null 2>&1   # pipelines into the cache
    ./bin/fmrun work/$m.$v.fmb $inputs --preload --runs $RUNS --output-dir work/out.$m.$v \
        --profile-out "$OUT/ab/$m.$v.json" 2>&1 | grep -E "^warm latency|^profile|^device memory|rror"
    summary $m $v "$OUT/ab/$m.$v.json" work/out.$m.$v
    # The warm median again without per-step timestamps (what an app sees; the profiled runs carry their cost).
    ./bin/fmrun work/$m.$v.fmb $inputs --preload --runs $RUNS 2>&1 | grep -E "^warm latency" | sed "s/^warm latency:/warm $v, unprofiled:/"
  done
  diff -r -q work/out.$m.a work/out.$m.b > /dev/null 2>&1 && echo "BITEQ $m a == b" || echo "BITEQ $m a differs from b"
  if ./bin/fmc replan work/$m.b.fmb -o work/$m.bs.fmb --memory-budget $STREAM_BUDGET 2>&1 | grep -E "rror|INFEAS"; then :; else
    ./bin/fmrun work/$m.bs.fmb $inputs --runs $RUNS --output-dir work/out.$m.bs 2>&1 | grep -E "^warm latency|rror"
    diff -r -q work/out.$m.b work/out.$m.bs > /dev/null && echo "BITEQ $m b streamed-$STREAM_BUDGET == preload" \
      || echo "BITEQ $m b streamed-$STREAM_BUDGET DIFFERS from preload"
  fi
  rm -rf work/$m.*.fmb work/out.$m.*
  echo "=== $m done at $(( $(date +%s) - start )) s"
done
