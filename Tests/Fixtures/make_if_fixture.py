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
  nested_if.onnx   inputs x float[5,7], k int64 scalar; h = Tanh(x); cond = ReduceSum(x) > 0 (run time);
                   If(cond):
                     then: t = h * x; c2 = (k == 16000), computed in the branch;
                           If(c2): then: a = MatMul(t, W) (W an outer initializer);
                                         If(cond) (the outer condition again, three levels deep):
                                           then: Neg(a)  else: Abs(a)
                                   else: Sigmoid(t)
                           out = inner + 1 (a node after the nested If)
                     else: If(k < 10000) (an int64 condition's comparison): then: Relu(x)  else: x * 2
                   y = out * 3. nested_if.<c><k>.x.npy / .k.npy / .y.npy for the four combinations of cond
                   (c = t / f) and k (16000 / 8000), with onnxruntime's y.
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


def nested_if():
    rng = np.random.default_rng(11)
    w = (rng.standard_normal((7, 7)) * 0.3).astype(np.float32)

    def graph(name, nodes, output, initializers=()):
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                                 initializer=list(initializers))

    def scalar(name, dtype, value):
        return numpy_helper.from_array(np.array(value, dtype=dtype), name)

    innermost = helper.make_node(
        "If", ["cond"], ["deep_y"], name="deep_if",
        then_branch=graph("deep_then", [helper.make_node("Neg", ["a"], ["deep_neg"], name="deep_neg")], "deep_neg"),
        else_branch=graph("deep_else", [helper.make_node("Abs", ["a"], ["deep_abs"], name="deep_abs")], "deep_abs"))
    inner_then = graph("inner_then", [helper.make_node("MatMul", ["t", "W"], ["a"], name="inner_matmul"), innermost],
                       "deep_y")
    inner_else = graph("inner_else", [helper.make_node("Sigmoid", ["t"], ["inner_sigmoid"], name="inner_sigmoid")],
                       "inner_sigmoid")
    outer_then = graph("outer_then", [
        helper.make_node("Mul", ["h", "x"], ["t"], name="then_mul"),
        helper.make_node("Equal", ["k", "k16000"], ["c2"], name="then_is_16k"),
        helper.make_node("If", ["c2"], ["inner_y"], name="inner_if", then_branch=inner_then, else_branch=inner_else),
        helper.make_node("Add", ["inner_y", "one"], ["then_out"], name="then_add"),
    ], "then_out", [scalar("k16000", np.int64, 16000), scalar("one", np.float32, 1.0)])
    outer_else = graph("outer_else", [
        helper.make_node("Less", ["k", "k10000"], ["c3"], name="else_is_low"),
        helper.make_node("If", ["c3"], ["else_out"], name="else_if",
                         then_branch=graph("low", [helper.make_node("Relu", ["x"], ["low_relu"], name="low_relu")],
                                           "low_relu"),
                         else_branch=graph("high", [helper.make_node("Mul", ["x", "two"], ["high_mul"],
                                                                     name="high_mul")], "high_mul",
                                           [scalar("two", np.float32, 2.0)])),
    ], "else_out", [scalar("k10000", np.int64, 10000)])
    nodes = [helper.make_node("Tanh", ["x"], ["h"], name="tanh")] + condition_nodes() + [
        helper.make_node("If", ["cond"], ["out"], name="outer_if", then_branch=outer_then, else_branch=outer_else),
        helper.make_node("Mul", ["out", "three"], ["y"], name="scale"),
    ]
    model_graph = helper.make_graph(
        nodes, "nested_if",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 7]),
         helper.make_tensor_value_info("k", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 7])],
        initializer=[numpy_helper.from_array(w, "W"), scalar("three", np.float32, 3.0)])
    path = save(helper.make_model(model_graph, opset_imports=OPSET, producer_name="make_if_fixture"), "nested_if.onnx")

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((5, 7)).astype(np.float32)
    for c, sign in (("t", 1.0), ("f", -1.0)):
        xc = (x + sign * 0.5).astype(np.float32)
        assert (xc.sum() > 0) == (c == "t")
        for k in (16000, 8000):
            kv = np.array(k, dtype=np.int64)
            (y,) = session.run(None, {"x": xc, "k": kv})
            np.save(os.path.join(OUT, f"nested_if.{c}{k}.x.npy"), xc)
            np.save(os.path.join(OUT, f"nested_if.{c}{k}.k.npy"), kv)
            np.save(os.path.join(OUT, f"nested_if.{c}{k}.y.npy"), y)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    runtime_if()
    bad_if_shapes()
    nested_if()
