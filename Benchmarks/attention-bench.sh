#!/usr/bin/env bash
# The fused attention kernel (attention.comp) alone, for the device machine: for every shape, one attention as an
# ONNX model (Benchmarks/attention/make_attention.py: numpy only), compiled in fp16 with `--fuse-attention on` and
# each workgroup size in INVOCATIONS (`--attention-invocations`), run resident; reports the step's GPU time (median
# of RUNS warm runs), the error against the float64 reference, and whether every size gives the same bits.
#
# Here: build and carry fmc and fmrun as for coopmat-bench.sh (.device/bin). There (carry .gl and .device):
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; bash Benchmarks/attention-bench.sh
# Settings: BIN (.device/bin), SHAPES (a file of "NAME HEADS L D [make_attention flags]" lines; default below),
# INVOCATIONS ("64 256"), RUNS (20), WORK (/tmp/attention-work). Results: $OUT/attention-bench.log.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$repo/.device/bin}; OUT=${OUT:-/tmp/out}; WORK=${WORK:-/tmp/attention-work}
RUNS=${RUNS:-20}; INVOCATIONS=${INVOCATIONS:-"64 256"}
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/attention-bench.log") 2>&1
source "$repo/Benchmarks/unpack-bins.sh"; unpack_bins "$BIN"
fmc=$BIN/fmc; fmrun=$BIN/fmrun
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
"$fmrun" --list-devices > /dev/null 2>&1 || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
shapes=$WORK/shapes.txt
if [ -n "${SHAPES:-}" ]; then cp "$SHAPES" "$shapes"; else
cat > "$shapes" <<'LIST'
neo27b 20 128 128 --causal
neo13b 16 128 128 --causal
neo125m 12 128 64 --causal
vit_b16 12 197 64 --scale 0.125
long1024 16 1024 64 --scale 0.125
LIST
fi
printf '%-10s %6s %10s %10s %s\n' shape wg "GPU ms" error "same bits as the first size"
while read -r name heads len depth flags; do
  [ -z "$name" ] && continue
  python3 "$repo/Benchmarks/attention/make_attention.py" --out "$WORK" "$name" "$heads" "$len" "$depth" $flags > /dev/null \
    || { echo "$name: generation failed"; continue; }
  inputs="--input q=$WORK/$name.in.q.npy --input kt=$WORK/$name.in.kt.npy --input v=$WORK/$name.in.v.npy"
  first=""
  for wg in $INVOCATIONS; do
    b=$WORK/$name.$wg
    "$fmc" compile "$WORK/$name.onnx" -o $b.fmb --precision fp16 --fuse-attention on --attention-invocations $wg \
      > $b.compile.txt 2>&1 || { echo "$name $wg: compile failed: $(tail -1 $b.compile.txt)"; continue; }
    "$fmrun" $b.fmb $inputs --preload --runs "$RUNS" --output-dir $b.out --profile-out $b.json > $b.run.txt 2>&1 \
      || { echo "$name $wg: run failed: $(tail -1 $b.run.txt)"; continue; }
    python3 - "$WORK/$name.ref.y.npy" $b.out/y.npy $b.json "$name" $wg ${first:+$WORK/$name.$first.out/y.npy} <<'PY'
import json, sys
import numpy as np
ref, out, prof, name, wg = sys.argv[1:6]
r, y = np.load(ref), np.load(out).astype(np.float64)
p = json.load(open(prof))
steps = [s for s, l in zip(p["stepSeconds"], p["stepLabels"]) if l.startswith("attention(")]
same = "" if len(sys.argv) < 7 else ("yes" if np.array_equal(np.load(sys.argv[6]), np.load(out)) else "NO")
print(f"{name:10s} {wg:>6s} {1e3 * sum(steps):10.4f} {np.linalg.norm(y - r) / np.linalg.norm(r):10.2e} {same}"
      + ("" if len(steps) == 1 else f"  ({len(steps)} attention steps)"))
PY
    first=${first:-$wg}
  done
done < "$shapes"
