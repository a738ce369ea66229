#!/usr/bin/env python3
"""Writes the ONNX fixtures of the run-time If tests (RuntimeIfTests.swift) into Tests/Fixtures/models/, with
onnxruntime references. Needs the project venv (.venv/bin/python: onnx, onnxruntime, numpy). Deterministic.

Models:
  runtime_if.onnx   input x float[3,37]; h = Tanh(x); cond = Greater(ReduceSum(x), 0) (computed at run time);
                    If(cond):
                      then: out0 = Relu(MatMul(h, W_then) + b_then)   (W_then an outer initializer: a weight
                                                                        image; b_then a Constant of the branch)
                            out1 = Identity(h)                         (an outer value: copied)
                      else: out0 = Sigmoid(MatMul(x, W_else))          (W_else an initializer of the branch)
                            out1 = Reshape(Mul(h, x))                  (a view: copied)
                    z = out0 * 3 (a node after the If), outputs z float[3,29] and w = out1 float[3,37].
                    runtime_if.then.x.npy takes the then branch, runtime_if.else.x.npy the else branch;
                    runtime_if.<branch>.z.npy / .w.npy are onnxruntime's outputs.
  bad_if_shapes.onnx   an If on a run-time condition whose branches return float[2] and float[3].
  bad_if_nested.onnx   an If on a run-time condition whose then branch holds another such If.
"""

import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
OPSET = [helper.make_opsetid("", 17)]


def save(model, name):
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(OUT, name)
    onnx.save(model, path)
    return path


def condition_nodes():
    """cond = ReduceSum(x) > 0, a bool scalar computed at run time."""
    return [
        helper.make_node("ReduceSum", ["x"], ["total"], name="total", keepdims=0),
        helper.make_node("Constant", [], ["zero"], name="zero",
                         value=helper.make_tensor("zero_value", TensorProto.FLOAT, [], [0.0])),
        helper.make_node("Greater", ["total", "zero"], ["cond"], name="positive"),
    ]


def runtime_if():
    rng = np.random.default_rng(7)
    w_then = (rng.standard_normal((37, 29)) * 0.2).astype(np.float32)
    b_then = rng.standard_normal(29).astype(np.float32)
    w_else = (rng.standard_normal((37, 29)) * 0.2).astype(np.float32)
    then_branch = helper.make_graph(
        [
            helper.make_node("MatMul", ["h", "W_then"], ["then_mm"], name="then_matmul"),
            helper.make_node("Constant", [], ["b_then"], name="then_bias",
                             value=numpy_helper.from_array(b_then, "b_then_value")),
            helper.make_node("Add", ["then_mm", "b_then"], ["then_sum"], name="then_add"),
            helper.make_node("Relu", ["then_sum"], ["then_out0"], name="then_relu"),
            helper.make_node("Identity", ["h"], ["then_out1"], name="then_identity"),
        ],
        "then_branch", [],
        [helper.make_tensor_value_info("then_out0", TensorProto.FLOAT, [3, 29]),
         helper.make_tensor_value_info("then_out1", TensorProto.FLOAT, [3, 37])])
    else_branch = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W_else"], ["else_mm"], name="else_matmul"),
            helper.make_node("Sigmoid", ["else_mm"], ["else_out0"], name="else_sigmoid"),
            helper.make_node("Mul", ["h", "x"], ["else_prod"], name="else_mul"),
            helper.make_node("Reshape", ["else_prod", "else_shape"], ["else_out1"], name="else_reshape"),
        ],
        "else_branch", [],
        [helper.make_tensor_value_info("else_out0", TensorProto.FLOAT, [3, 29]),
         helper.make_tensor_value_info("else_out1", TensorProto.FLOAT, [3, 37])],
        initializer=[numpy_helper.from_array(w_else, "W_else"),
                     numpy_helper.from_array(np.array([3, 37], dtype=np.int64), "else_shape")])
    nodes = [helper.make_node("Tanh", ["x"], ["h"], name="tanh")] + condition_nodes() + [
        helper.make_node("If", ["cond"], ["out0", "w"], name="choose",
                         then_branch=then_branch, else_branch=else_branch),
        helper.make_node("Mul", ["out0", "three"], ["z"], name="scale"),
    ]
    graph = helper.make_graph(
        nodes, "runtime_if",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 37])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [3, 29]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 37])],
        initializer=[numpy_helper.from_array(w_then, "W_then"),
                     numpy_helper.from_array(np.array(3.0, dtype=np.float32), "three")])
    path = save(helper.make_model(graph, opset_imports=OPSET, producer_name="make_if_fixture"), "runtime_if.onnx")

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((3, 37)).astype(np.float32)
    for branch, sign in (("then", 1.0), ("else", -1.0)):
        xb = (x + sign * 0.5).astype(np.float32)
        assert (xb.sum() > 0) == (branch == "then")
        z, w = session.run(None, {"x": xb})
        np.save(os.path.join(OUT, f"runtime_if.{branch}.x.npy"), xb)
        np.save(os.path.join(OUT, f"runtime_if.{branch}.z.npy"), z)
        np.save(os.path.join(OUT, f"runtime_if.{branch}.w.npy"), w)


def bad_if_shapes():
    def branch(name, n):
        return helper.make_graph(
            [helper.make_node("Constant", [], [f"{name}_out"], name=f"{name}_const",
                              value=numpy_helper.from_array(np.ones(n, dtype=np.float32), f"{name}_value"))],
            name, [], [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [n])])
    nodes = condition_nodes() + [
        helper.make_node("If", ["cond"], ["y"], name="uneven", then_branch=branch("then", 2),
                         else_branch=branch("else", 3)),
    ]
    graph = helper.make_graph(nodes, "bad_if_shapes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
    save(helper.make_model(graph, opset_imports=OPSET, producer_name="make_if_fixture"), "bad_if_shapes.onnx")


def bad_if_nested():
    inner_then = helper.make_graph([helper.make_node("Neg", ["x"], ["inner_neg"], name="inner_neg")], "inner_then", [],
                                   [helper.make_tensor_value_info("inner_neg", TensorProto.FLOAT, [4])])
    inner_else = helper.make_graph([helper.make_node("Abs", ["x"], ["inner_abs"], name="inner_abs")], "inner_else", [],
                                   [helper.make_tensor_value_info("inner_abs", TensorProto.FLOAT, [4])])
    outer_then = helper.make_graph(
        [helper.make_node("If", ["cond"], ["inner_y"], name="inner_if", then_branch=inner_then,
                          else_branch=inner_else)],
        "outer_then", [], [helper.make_tensor_value_info("inner_y", TensorProto.FLOAT, [4])])
    outer_else = helper.make_graph([helper.make_node("Relu", ["x"], ["outer_relu"], name="outer_relu")], "outer_else",
                                   [], [helper.make_tensor_value_info("outer_relu", TensorProto.FLOAT, [4])])
    nodes = condition_nodes() + [
        helper.make_node("If", ["cond"], ["y"], name="outer_if", then_branch=outer_then, else_branch=outer_else),
    ]
    graph = helper.make_graph(nodes, "bad_if_nested", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    save(helper.make_model(graph, opset_imports=OPSET, producer_name="make_if_fixture"), "bad_if_nested.onnx")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    runtime_if()
    bad_if_shapes()
    bad_if_nested()
