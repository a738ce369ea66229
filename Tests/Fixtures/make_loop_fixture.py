#!/usr/bin/env python3
"""Writes Tests/Fixtures/models/bad_untyped_loop_body.onnx: a Loop node ("my_loop") whose body graph leaves its
inputs and outputs untyped, as ONNX allows (the Loop types them). The importer must accept the body; the
compiler then refuses Loop by name. Needs python3 with onnx."""

import os

import onnx
from onnx import TensorProto, helper

untyped = onnx.TypeProto()
body = helper.make_graph(
    [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "v_in"], ["v_out"])],
    "body",
    [helper.make_value_info(name, untyped) for name in ("iter", "cond_in", "v_in")],
    [helper.make_value_info(name, untyped) for name in ("cond_out", "v_out")])
loop = helper.make_node("Loop", ["n", "cond", "x"], ["y"], name="my_loop", body=body)
graph = helper.make_graph(
    [loop], "untyped_loop_body",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    initializer=[helper.make_tensor("n", TensorProto.INT64, [], [3]),
                 helper.make_tensor("cond", TensorProto.BOOL, [], [True])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
onnx.save(model, os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "bad_untyped_loop_body.onnx"))
