#!/usr/bin/env bash
# Issue 10, part 1: the tensor-core (cooperative-matrix) matmul kernels against the plain ones, for the device
# machine. For every shape: build a single-MatMul / Gemm ONNX model with its input and a numpy reference
# (Benchmarks/coopmat/make_matmul.py: numpy only, no onnx package), compile it in fp16 with
# `--tensor-cores off` and `--tensor-cores on`, run both resident (`fmrun --preload --profile-out`), and report
# the GPU time per product (sum of per-step medians over RUNS warm runs: the product plus any split-K
# reduction) and TFLOP/s side by side, each output's relative error against the reference and the two paths
# against each other. Then `coopmat-peak` measures what the cooperative-matrix units give (fragments in
# registers only), so the table can state each product as a share of it.
#
# Here (build and carry, as for core-bench.sh; Benchmarks/README.md):
#   swift build -c release --static-swift-stdlib --product fmc && swift build -c release --static-swift-stdlib --product fmrun
#   mkdir -p .device/bin && cp .build/release/fmc .build/release/fmrun .device/bin/ && strip .device/bin/*
#   sh Benchmarks/coopmat/build-peak.sh .device/bin/coopmat-peak && gzip -f .device/bin/*
# There (device tool, carry .gl and .device; run from the repository root):
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
#   bash Benchmarks/coopmat-bench.sh
#
# Settings: BIN (folder with fmc, fmrun, coopmat-peak, gzipped or not; default .device/bin, else PATH),
# SHAPES (a file of "NAME M K N [make_matmul flags]" lines; default: the list below), MODES ("off on"),
# RUNS (warm runs, default 20), WORK (scratch, default /tmp/coopmat-work), KEEP=1 keeps WORK, TILES (tensor-core
# tiles to sweep besides the rule's, `fmc compile --coopmat-tile` syntax, e.g. "128x128/2x2/32/db"; each
# is run as mode t.<tile with / as _>, and the sweep table lists every mode's TFLOP/s and error per shape).
# Results: $OUT/coopmat-bench.log, $OUT/coopmat-table.md, $OUT/coopmat-peak.json, per-shape profiles.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$repo/.device/bin}
OUT=${OUT:-/tmp/coopmat-out}
WORK=${WORK:-/tmp/coopmat-work}
RUNS=${RUNS:-20}
MODES=${MODES:-"off on"}
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/coopmat-bench.log") 2>&1

source "$(dirname "$0")/unpack-bins.sh"; unpack_bins "$BIN"
tool() {  # the carried binary, else one on PATH
  if [ -x "$BIN/$1" ]; then echo "$BIN/$1"; elif [ -f "$BIN/$1" ]; then chmod +x "$BIN/$1"; echo "$BIN/$1";
  else command -v "$1"; fi
}
fmc=$(tool fmc) || { echo "no fmc in $BIN or on PATH"; exit 1; }
fmrun=$(tool fmrun) || { echo "no fmrun in $BIN or on PATH"; exit 1; }
peak=$(tool coopmat-peak || true)
py=${PYTHON:-python3}
$py -c "import numpy" || { echo "coopmat-bench needs python3 with numpy"; exit 1; }

date -u
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null || true
"$fmrun" --list-devices >/dev/null 2>&1 || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
"$fmrun" --list-devices

shapes=$WORK/shapes.txt
if [ -n "${SHAPES:-}" ]; then cp "$SHAPES" "$shapes"; else
cat > "$shapes" <<'EOF'
square4096 4096 4096 4096
neo27b_fc 128 2560 10240 --op gemm --bias
neo27b_proj 128 10240 2560 --op gemm --bias
neo27b_lm_head 128 2560 50257
vit_fc1 197 768 3072 --op gemm --bias --relu
odd_edges 300 777 555 --op gemm --bias --relu
neo125m_proj 128 768 768 --op gemm --bias
mid_256 256 256 512 --op gemm --bias
minilm_proj 128 384 384 --op gemm --bias
gemm_c 200 256 160 --op gemm --c
EOF
fi
cat "$shapes"

while read -r name m k n flags; do
  [ -z "$name" ] || [ "${name#\#}" != "$name" ] && continue
  echo "=== $name: M=$m K=$k N=$n $flags"
  $py "$repo/Benchmarks/coopmat/make_matmul.py" --out "$WORK" "$name" "$m" "$k" "$n" $flags || continue
  inputs="--input A=$WORK/$name.in.A.npy"
  [ -f "$WORK/$name.in.C.npy" ] && inputs="$inputs --input C=$WORK/$name.in.C.npy"
  for mode in $MODES $(for t in ${TILES:-}; do echo "t.${t//\//_}"; done); do
    echo "--- $name tensor cores $mode"
    case $mode in
      t.*) tile=${mode#t.}; flags="--tensor-cores on --coopmat-tile ${tile//_//}" ;;
      *) flags="--tensor-cores $mode" ;;
    esac
    "$fmc" compile "$WORK/$name.onnx" -o "$WORK/$name.$mode.fmb" --precision fp16 $flags 2>&1 \
      | grep -v "^fmc:" || { echo "compile failed"; continue; }
    "$fmc" inspect "$WORK/$name.$mode.fmb" | sed -n '/^Kernels/,/^  bindings/p' | grep -v bindings
    "$fmrun" "$WORK/$name.$mode.fmb" $inputs --preload --runs "$RUNS" --output-dir "$WORK/out.$name.$mode" \
      --profile-out "$WORK/$name.$mode.json" 2>&1 | grep -v "^fmrun: warm run" | grep -E "warm latency|profile:|^  |rror" \
      || echo "run failed"
    [ -f "$WORK/$name.$mode.json" ] && cp "$WORK/$name.$mode.json" "$OUT/"
    rm -f "$WORK/$name.$mode.fmb"
  done
done < "$shapes"

if [ -n "$peak" ]; then
  echo "=== coopmat-peak"
  "$peak" --json "$OUT/coopmat-peak.json" || echo "coopmat-peak failed"
  "$peak" --iterations 4096 --json "$OUT/coopmat-peak-4096.json" || true
fi

echo "=== table"
$py "$repo/Benchmarks/coopmat/coopmat_table.py" "$WORK" "$shapes" "$OUT/coopmat-peak.json" | tee "$OUT/coopmat-table.md"
if [ -n "${TILES:-}" ]; then
  $py "$repo/Benchmarks/coopmat/coopmat_table.py" --sweep "$WORK" "$shapes" "$OUT/coopmat-peak.json" | tee "$OUT/coopmat-sweep.md"
fi
[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
