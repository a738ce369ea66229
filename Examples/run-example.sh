#!/usr/bin/env bash
# The bundled example: compile the small CNN in Tests/Fixtures with fmc, run it with fmrun streaming and
# preloaded, check both against onnxruntime's reference output. The examples that embed the runtime in an app
# are Examples/run-examples.sh's (`make examples`).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release}
python=${PYTHON:-.venv/bin/python}
models=Tests/Fixtures/models
out=$(mktemp -d -t flashmem-example-XXXXXX)
trap 'rm -rf "$out"' EXIT

echo "== fmc compile $models/cnn.onnx"
"$bin/fmc" compile "$models/cnn.onnx" -o "$out/cnn.fmb"
"$bin/fmc" inspect "$out/cnn.fmb" | head -n 20

for mode in streaming preload; do
    flag=""
    [ "$mode" = preload ] && flag="--preload"
    echo "== fmrun ($mode)"
    "$bin/fmrun" "$out/cnn.fmb" --input "x=$models/cnn.input.npy" --output-dir "$out/$mode" --runs 5 $flag
done

"$python" - "$out" "$models/cnn.ref.npy" <<'EOF'
import glob, sys
import numpy as np
out, ref_path = sys.argv[1], sys.argv[2]
ref = np.load(ref_path)
for mode in ("streaming", "preload"):
    (path,) = glob.glob(f"{out}/{mode}/*.npy")
    got = np.load(path)
    err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    print(f"{mode}: output {got.shape} rel error vs onnxruntime {err:.2e}")
    assert got.shape == ref.shape and err < 1e-4, f"{mode} output does not match onnxruntime"
EOF
