#!/usr/bin/env bash
# CI subset of the ONNX backend node-test conformance run (issue 3, item 4).
#
# Materializes the node tests of a representative set of operators (the issue-2 slice plus the ops that pass
# today), runs fmc-conformance on the ones onnxruntime passes, and fails when a test fails that is not listed in
# expected_failures.txt. Unsupported tests (dtype, attribute, dynamic shape, op not implemented) do not fail it.
# About 90 s of tests on 2 cores with lavapipe, plus the build.
#
# Usage: Tests/Conformance/run_subset.sh [OUT_DIR]
# Environment:
#   PYTHON           python with onnx and onnxruntime (default /opt/fmvenv/bin/python, else python3)
#   MATERIALIZE      materialize_onnx_node_tests.py (default ../shared/corpus/ next to the repository)
#   FMC_CONFORMANCE  a built fmc-conformance binary (default: swift build --product fmc-conformance)
#   SCRATCH          swift build scratch path when building (default .build)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:-${TMPDIR:-/tmp}/fm-conformance-subset}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x /opt/fmvenv/bin/python ]; then PYTHON=/opt/fmvenv/bin/python; else PYTHON=python3; fi
fi
MATERIALIZE="${MATERIALIZE:-$ROOT/../shared/corpus/materialize_onnx_node_tests.py}"

# The issue-2 slice, then every other operator issue 3 lists (all of their ORT-passing node tests pass today), then
# the ops the paper models of issue 9 added (Einsum's node tests are all float64, so it is tested in EinsumOpTests).
OPS=(
    Conv Gemm MatMul Add Mul Relu MaxPool GlobalAveragePool Flatten Reshape Softmax Identity Constant
    AveragePool BatchNormalization Sub Div Sigmoid Tanh Squeeze Unsqueeze Dropout Clip
    Pow Sqrt Erf Exp Log Neg Abs Reciprocal LeakyRelu PRelu Elu Gelu HardSigmoid HardSwish Min Max Where
    Equal Less LessOrEqual Greater GreaterOrEqual And Or Not Mod Cast
    LayerNormalization GroupNormalization InstanceNormalization LogSoftmax ReduceMean ReduceSum ReduceMax
    ReduceMin ReduceL2 ArgMax CumSum
    Transpose Concat Split Slice Gather Expand Pad Tile Resize Trilu
    ConvTranspose LSTM If Shape Size Range ConstantOfShape
    ScatterND OneHot
)

rm -rf "$OUT"
mkdir -p "$OUT"
echo "materializing the node tests of ${#OPS[@]} operators into $OUT"
"$PYTHON" "$MATERIALIZE" --out "$OUT" --ops "${OPS[@]}"

if [ -z "${FMC_CONFORMANCE:-}" ]; then
    SCRATCH="${SCRATCH:-$ROOT/.build}"
    (cd "$ROOT" && swift build --scratch-path "$SCRATCH" --product fmc-conformance)
    FMC_CONFORMANCE="$SCRATCH/debug/fmc-conformance"
fi

# First the harness itself: a mini suite whose outcome is known (make_selfcheck.py), so that a harness that
# passes everything cannot make this script green.
SELFCHECK="$OUT/selfcheck"
EXPECTED="$("$PYTHON" "$ROOT/Tests/Conformance/make_selfcheck.py" --out "$SELFCHECK")"
GOT="$("$FMC_CONFORMANCE" "$SELFCHECK" --quiet --allow-failures | tail -n 1)"
if [ "$GOT" != "$EXPECTED" ]; then
    echo "fmc-conformance self-check: got '$GOT', expected '$EXPECTED'" >&2
    "$FMC_CONFORMANCE" "$SELFCHECK" --quiet --allow-failures >&2 || true
    exit 1
fi
echo "fmc-conformance self-check: $GOT (as expected)"

OPS_CSV="$(IFS=,; echo "${OPS[*]}")"
exec "$FMC_CONFORMANCE" "$OUT" --ops "$OPS_CSV" --only-ort-passing \
    --expected-failures "$ROOT/Tests/Conformance/expected_failures.txt" --json "$OUT/results.json"
