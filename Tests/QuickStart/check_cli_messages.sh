#!/usr/bin/env bash
# What a newcomer meets in fmc and fmrun when something is off (issue 11, item 7): every unsupported operator at
# once, "is a directory", a path named once, the compile usage for a bad compile flag, --output-dir and -o made
# with their parents, fmrun saying it wrote no outputs, the --target hint, fmc plan-pipeline and its manifest. Part of `make quickstart`.
#
#     bash Tests/QuickStart/check_cli_messages.sh .build/release
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-.build/release}
python=${PYTHON:-.venv/bin/python}
models=Tests/Fixtures/models
tmp=$(mktemp -d -t flashmem-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect NAME STATUS PATTERN COMMAND...: run COMMAND (stdout and stderr together), check its exit status
# (ok / fail) and that its output matches the extended regex PATTERN.
expect() {
    local name=$1 status=$2 pattern=$3; shift 3
    local rc=0
    "$@" > "$tmp/out.txt" 2>&1 || rc=$?
    if { [ "$status" = ok ] && [ $rc -ne 0 ]; } || { [ "$status" = fail ] && [ $rc -eq 0 ]; } \
        || ! grep -Eq -- "$pattern" "$tmp/out.txt"; then
        echo "FAIL $name (exit $rc, wanted $status and /$pattern/):"; sed 's/^/    /' "$tmp/out.txt"
        failures=$((failures + 1))
    else
        echo "ok   $name"
    fi
}
# once PATH NAME: the error line of the last command names PATH exactly once.
once() {
    local n
    n=$(grep "Error" "$tmp/out.txt" | grep -o -F -- "$1" | wc -l)
    [ "$n" -eq 1 ] && echo "ok   $2 names $1 once" || { echo "FAIL $2 names $1 $n times"; failures=$((failures + 1)); }
}

# A model with four nodes of three operators fmc does not have (two Frobnicate), one behind another.
"$python" - "$tmp/unsupported.onnx" <<'EOF'
import sys
from onnx import TensorProto, helper, save
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
nodes = [helper.make_node("Frobnicate", ["x"], ["a"], name="frob_1"),
         helper.make_node("Relu", ["a"], ["b"], name="relu"),
         helper.make_node("Twiddle", ["b"], ["c"], name="twiddle"),
         helper.make_node("Frobnicate", ["c"], ["d"], name="frob_2"),
         helper.make_node("Det", ["d"], ["y"], name="det")]
model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
save(model, sys.argv[1])
EOF

expect "fmc: every unsupported op at once, with counts and first nodes" fail \
    "4 nodes of 3 unsupported operators: Frobnicate ×2 \(first: node 'frob_1'\), Twiddle ×1 \(node 'twiddle'\), Det ×1 \(node 'det'\)" \
    "$bin/fmc" compile "$tmp/unsupported.onnx" -o "$tmp/u.fmb"
expect "fmc: a directory as the model" fail "$tmp: .*is a directory" "$bin/fmc" compile "$tmp" -o "$tmp/d.fmb"
once "$tmp:" "fmc compile DIR"
expect "fmc: a missing model" fail "no-such.onnx: .*No such file" "$bin/fmc" compile "$tmp/no-such.onnx" -o "$tmp/m.fmb"
once "$tmp/no-such.onnx" "fmc compile MISSING"
expect "fmc: a bad compile flag shows the compile usage" fail "Usage: fmc compile (\[<options>\] )?<model>" \
    "$bin/fmc" compile "$models/cnn.onnx" -o "$tmp/c.fmb" --bogus
expect "fmc: -o into folders that do not exist yet" ok "wrote $tmp/new/deeper/cnn.fmb" \
    "$bin/fmc" compile "$models/cnn.onnx" -o "$tmp/new/deeper/cnn.fmb"
expect "fmc: -o naming a directory" fail "is a directory" "$bin/fmc" compile "$models/cnn.onnx" -o "$tmp"
if [ ! -d /proc/driver/nvidia ] && ! ls /dev/dri/renderD* >/dev/null 2>&1; then
    expect "fmc: says which --target fits this GPU-less machine" ok "note: planned for --target h200 .*--target lavapipe" \
        "$bin/fmc" compile "$models/cnn.onnx" -o "$tmp/c.fmb"
    expect "fmc: no hint when --target is given" ok "^wrote " "$bin/fmc" compile "$models/cnn.onnx" -o "$tmp/c.fmb" --target lavapipe
    grep -q "note: planned" "$tmp/out.txt" && { echo "FAIL hint printed despite --target"; failures=$((failures + 1)); }
fi

bundle=$tmp/new/deeper/cnn.fmb
expect "fmrun: --output-dir made with its parents" ok "wrote $tmp/o/p/q/" \
    "$bin/fmrun" "$bundle" --input "x=$models/cnn.input.npy" --output-dir "$tmp/o/p/q" --runs 0
expect "fmrun: says it wrote no outputs without --output-dir" ok "wrote no outputs \(no --output-dir\)" \
    "$bin/fmrun" "$bundle" --input "x=$models/cnn.input.npy" --runs 0
expect "fmrun: --output-dir through a file" fail "$tmp/new/deeper/cnn.fmb: is not a directory" \
    "$bin/fmrun" "$bundle" --input "x=$models/cnn.input.npy" --output-dir "$bundle/out" --runs 0
expect "fmrun: a directory as the bundle" fail "$tmp/o: is a directory" "$bin/fmrun" "$tmp/o" --runs 0
once "$tmp/o" "fmrun DIR"
# fmc plan-pipeline: a budget below a model's smallest names the model and that budget; a plan's table and
# manifest, which fmrun --pipeline runs; a broken manifest names the file and the field.
expect "fmc plan-pipeline: a budget too small names the model" fail \
    "cnn: cannot run under a pipeline budget of 1024 bytes: its smallest feasible budget is [0-9]+ bytes" \
    "$bin/fmc" plan-pipeline "$bundle" "$bundle" --memory-budget 1KiB -o "$tmp/plan" --target lavapipe
expect "fmc plan-pipeline: a table with the predicted total, and the manifest" ok \
    "wrote 2 bundles and $tmp/plan/pipeline.json" \
    "$bin/fmc" plan-pipeline "$bundle" "$bundle" --memory-budget 1MiB -o "$tmp/plan" --target lavapipe
grep -Eq "^total +budget 1.00 MiB" "$tmp/out.txt" || { echo "FAIL plan-pipeline prints no total line"; failures=$((failures + 1)); }
expect "fmrun --pipeline DIR/pipeline.json" ok "pipeline: +0-cnn → 1-cnn" \
    "$bin/fmrun" --pipeline "$tmp/plan/pipeline.json" --input "0-cnn.x=$models/cnn.input.npy" \
    --input "1-cnn.x=$models/cnn.input.npy" --runs 0
"$bin/fmrun" "$bundle" --input "x=$models/cnn.input.npy" --runs 1 --profile-out "$tmp/cnn.profile.json" > /dev/null 2>&1
expect "fmc plan-pipeline --profile INDEX=profile.json" ok "wrote 2 bundles" \
    "$bin/fmc" plan-pipeline "$bundle" "$bundle" --memory-budget 1MiB -o "$tmp/plan" --profile "1=$tmp/cnn.profile.json"
expect "fmc plan-pipeline --profile naming no bundle" fail "--profile x=$tmp/cnn.profile.json: no bundle 'x'; the bundles: cnn, cnn" \
    "$bin/fmc" plan-pipeline "$bundle" "$bundle" --memory-budget 1MiB -o "$tmp/plan" --profile "x=$tmp/cnn.profile.json"
echo '{"version": 1, "budgetBytes": 10}' > "$tmp/bad.json"
expect "fmrun --pipeline: a broken manifest names the file and the field" fail "$tmp/bad.json: predictedSeconds: missing" \
    "$bin/fmrun" --pipeline "$tmp/bad.json" --runs 0

[ $failures -eq 0 ] || { echo "check_cli_messages.sh: $failures checks failed" >&2; exit 1; }
echo "cli messages: all checks passed"
