#!/usr/bin/env python3
"""Write a tiny node-test directory that checks fmc-conformance itself: each test's expected result is known,
so a harness that passes everything (or fails everything) is caught. Layout as materialize_onnx_node_tests.py
writes it: OUT/node/test_*/model.onnx + test_data_set_0/{input,output}_<i>.pb (no ort_baseline.json).

    python make_selfcheck.py --out DIR
    fmc-conformance DIR   →  last line "4 passed, 3 failed, 1 skipped"

Expected: passed  relu_ok, relu_within_tolerance, reshape_shape_input (shape operand pinned), conv_weight_input
                  (weights pinned into images);
          failed  relu_wrong_value (one element 1e-2 off), relu_wrong_shape, flatten_int64_off_by_one (integers
                  compare exactly, though numpy's rtol would let 1001 pass for 1000);
          skipped relu_double (dtype double).
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

EXPECTED_LAST_LINE = "4 passed, 3 failed, 1 skipped"


def write(out, name, node, inputs, outputs, opset=13):
    """inputs/outputs: lists of (name, array, declared elem type, declared shape)."""
    d = os.path.join(out, "node", "test_" + name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info(n, t, s) for n, _, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, _, t, s in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="selfcheck")
    onnx.save(model, os.path.join(d, "model.onnx"))
    for kind, values in (("input", inputs), ("output", outputs)):
        for i, (n, a, _, _) in enumerate(values):
            with open(os.path.join(d, "test_data_set_0", f"{kind}_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(a, n).SerializeToString())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    y = np.maximum(x, 0)
    F = TensorProto.FLOAT
    relu = helper.make_node("Relu", ["x"], ["y"])

    write(a.out, "relu_ok", relu, [("x", x, F, [3, 5])], [("y", y, F, [3, 5])])
    near = y * (1 + 5e-4 * np.sign(rng.standard_normal(y.shape))).astype(np.float32)
    write(a.out, "relu_within_tolerance", relu, [("x", x, F, [3, 5])], [("y", near.astype(np.float32), F, [3, 5])])
    wrong = y.copy()
    wrong[1, 2] += 1e-2
    write(a.out, "relu_wrong_value", relu, [("x", x, F, [3, 5])], [("y", wrong, F, [3, 5])])
    # The output is declared without a shape, so that the compiler accepts the model and the harness must
    # notice the shape itself.
    write(a.out, "relu_wrong_shape", relu, [("x", x, F, [3, 5])], [("y", y.reshape(5, 3), F, None)])

    # Integers compare exactly: element 0 is 1001 where 1000 is right, inside numpy's rtol 1e-3.
    xi = np.array([[1000, -7, 3], [4, 5, 6]], dtype=np.int64)
    off = xi.reshape(1, 6).copy()
    off[0, 0] = 1001
    I64 = TensorProto.INT64
    write(a.out, "flatten_int64_off_by_one", helper.make_node("Flatten", ["a"], ["b"], axis=0),
          [("a", xi, I64, [2, 3])], [("b", off, I64, [1, 6])])

    xd = x.astype(np.float64)
    D = TensorProto.DOUBLE
    write(a.out, "relu_double", relu, [("x", xd, D, [3, 5])], [("y", np.maximum(xd, 0), D, [3, 5])])

    shape = np.array([5, 3], dtype=np.int64)
    write(a.out, "reshape_shape_input", helper.make_node("Reshape", ["x", "shape"], ["y"]),
          [("x", x, F, [3, 5]), ("shape", shape, I64, [2])], [("y", x.reshape(5, 3), F, [5, 3])])

    img = rng.standard_normal((1, 2, 6, 7)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    conv = np.zeros((1, 3, 4, 5), dtype=np.float32)
    for o in range(3):
        for i in range(4):
            for j in range(5):
                conv[0, o, i, j] = np.sum(img[0, :, i:i + 3, j:j + 3] * w[o])
    write(a.out, "conv_weight_input", helper.make_node("Conv", ["x", "w"], ["y"]),
          [("x", img, F, [1, 2, 6, 7]), ("w", w, F, [3, 2, 3, 3])], [("y", conv, F, [1, 3, 4, 5])])
    print(EXPECTED_LAST_LINE)


if __name__ == "__main__":
    main()
