#!/usr/bin/env python3
"""Writes the ONNX fixtures of the compile-time evaluation tests (ConstantFoldingTests.swift) into
Tests/Fixtures/models/. Needs python3 with onnx (e.g. /opt/fmvenv/bin/python). Deterministic.

Models:
  pin_if.onnx   silero_vad's shape in miniature: inputs x float[1,4] and sr int64 scalar;
                y = If(Equal(sr, 16000), then: x * 2 (a Constant node inside the branch), else: -x), then an
                Identity to the graph output, as spox exports it. Compiled with --pin-input sr=16000 the If folds
                to the Mul; with sr=8000 to the Neg.
"""

import os

import onnx
from onnx import TensorProto, helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


def pin_if():
    then_branch = helper.make_graph(
        [
            helper.make_node("Constant", [], ["two"], name="then_two",
                             value=helper.make_tensor("two_value", TensorProto.FLOAT, [], [2.0])),
            helper.make_node("Mul", ["x", "two"], ["then_y"], name="then_mul"),
        ],
        "then_branch", [], [helper.make_tensor_value_info("then_y", TensorProto.FLOAT, [1, 4])])
    else_branch = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["else_y"], name="else_neg")],
        "else_branch", [], [helper.make_tensor_value_info("else_y", TensorProto.FLOAT, [1, 4])])
    nodes = [
        helper.make_node("Constant", [], ["rate"], name="rate",
                         value=helper.make_tensor("rate_value", TensorProto.INT64, [], [16000])),
        helper.make_node("Equal", ["sr", "rate"], ["is16k"], name="is16k"),
        helper.make_node("If", ["is16k"], ["branch_y"], name="choose",
                         then_branch=then_branch, else_branch=else_branch),
        helper.make_node("Identity", ["branch_y"], ["y"], name="out"),
    ]
    graph = helper.make_graph(
        nodes, "pin_if",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)], producer_name="make_folding_fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(OUT, "pin_if.onnx"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    pin_if()
