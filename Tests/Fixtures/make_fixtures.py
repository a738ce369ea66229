#!/usr/bin/env python3
"""Writes the ONNX fixtures of the importer / shape-inference tests into Tests/Fixtures/models/.

Needs python3 with onnx (1.23), onnxruntime and numpy. Deterministic: every weight and input comes from
numpy's default_rng with a fixed seed, so re-running gives byte-identical models and inputs (onnxruntime
references may differ in the last ulp across onnxruntime versions).

Files per model NAME (all models here have exactly one input and one output):
  NAME.onnx          the model (opset 17 unless said otherwise)
  NAME.input.npy     the seeded input. Convention for models with several inputs (none yet):
                     NAME.input.<input name>.npy, one file per input.
  NAME.ref.npy       onnxruntime CPU output for that input (NAME.ref.<output name>.npy if several outputs).
  NAME.shapes.json   onnx's own strict shape inference: {value name: {"dtype": TensorProto dtype, "shape": [..]}}
                     for every input, initializer, intermediate value and output; the Swift tests check the
                     compiler's inference against it.

Models:
  mlp                 x[3,37] -> MatMul -> Add -> Relu -> Gemm(transB) -> Softmax
  cnn                 x[1,3,33,29] -> Conv/Relu/grouped dilated Conv/Add/Mul(Constant)/MaxPool/Conv/Relu/
                      GlobalAveragePool/Flatten/Gemm/Reshape/Softmax
  cnn_external        cnn saved with external data (cnn_external.onnx.data, one file, size_threshold=0),
                      except the Reshape shape constant, kept inline (see main)
  dynamic             x["batch",16]: MatMul, Identity, Relu, a Shape->Gather->Unsqueeze->Concat chain feeding
                      Reshape, Dropout, Softmax; Constant nodes. Input/ref use batch 3 (shapes.json too).
  typed_fields        initializers stored in the typed TensorProto fields (float_data, int64_data, double_data,
                      float16 in int32_data) instead of raw_data; w_f32 is also listed as a graph input, as old
                      exporters did.
Deliberately bad models (no input/ref):
  bad_truncated.onnx        the first 2/3 of mlp.onnx's bytes (protobuf parse error)
  bad_unsupported_op.onnx   a Det node named "my_det"
  bad_missing_input.onnx    node "my_add" reads "undefined_value", which nothing defines
  bad_cycle.onnx            two nodes ("cyc_a", "cyc_b") that read each other's output
  bad_custom_domain.onnx    node "my_foo" of op Foo in domain "com.example"
  bad_dtype.onnx            an initializer "w_u16" of dtype UINT16
  bad_external_missing.onnx initializer "w_ext" whose data file "missing.onnx.data" does not exist
  bad_external_range.onnx   initializer "w_ext" reading past the end of cnn_external.onnx.data
  bad_external_escape.onnx  initializer "w_ext" whose location "../make_fixtures.py" leaves the model's folder
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")
OPSET = 17


def rng(seed):
    return np.random.default_rng(seed)


def weight(seed, shape, scale=0.2):
    return (rng(seed).standard_normal(shape) * scale).astype(np.float32)


def make_model(nodes, name, inputs, outputs, initializers, opset=OPSET, check=True):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="flashmem-fixtures")
    # Pin the IR version so onnxruntime builds that lag behind onnx still load the models.
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model, full_check=True)
    return model


def write_shapes(model, name):
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    shapes = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        shapes[vi.name] = {"dtype": t.elem_type,
                           "shape": [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]}
    for init in g.initializer:
        shapes[init.name] = {"dtype": init.data_type, "shape": list(init.dims)}
    lines = [f" {json.dumps(k)}: {json.dumps(shapes[k])}" for k in sorted(shapes)]
    with open(os.path.join(OUT, name + ".shapes.json"), "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def run_reference(path, name, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert len(sess.get_inputs()) == 1 and len(sess.get_outputs()) == 1
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.save(os.path.join(OUT, name + ".input.npy"), x)
    np.save(os.path.join(OUT, name + ".ref.npy"), y)
    return y


# MARK: - mlp

def mlp():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 37])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 29])
    inits = [
        numpy_helper.from_array(weight(1, (37, 53)), "W1"),
        numpy_helper.from_array(weight(2, (53,)), "b1"),
        numpy_helper.from_array(weight(3, (29, 53)), "W2"),
        numpy_helper.from_array(weight(4, (29,)), "b2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h0"], name="matmul1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="add1"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu1"),
        helper.make_node("Gemm", ["h2", "W2", "b2"], ["logits"], name="gemm2", transB=1, alpha=1.0, beta=1.0),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=-1),
    ]
    return make_model(nodes, "mlp", [x], [y], inits)


# MARK: - cnn

def cnn():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 33, 29])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 5])
    scale = (1.0 + 0.1 * np.arange(8, dtype=np.float32)).reshape(1, 8, 1, 1)
    inits = [
        numpy_helper.from_array(weight(10, (8, 3, 3, 3)), "conv1.w"),
        numpy_helper.from_array(weight(11, (8,)), "conv1.b"),
        numpy_helper.from_array(weight(12, (8, 4, 3, 3)), "conv2.w"),
        numpy_helper.from_array(weight(13, (8,)), "conv2.b"),
        numpy_helper.from_array(weight(14, (12, 8, 1, 1)), "conv3.w"),
        numpy_helper.from_array(weight(15, (12,)), "conv3.b"),
        numpy_helper.from_array(weight(16, (10, 12)), "fc.w"),
        numpy_helper.from_array(weight(17, (10,)), "fc.b"),
        # 0 copies the batch dim, -1 is inferred: exercises both Reshape rules.
        numpy_helper.from_array(np.array([0, 2, -1], np.int64), "reshape.shape"),
    ]
    nodes = [
        # [1,3,33,29] -> [1,8,17,15]
        helper.make_node("Conv", ["x", "conv1.w", "conv1.b"], ["c1"], name="conv1",
                         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        # grouped, dilated; effective kernel 5, pads 2 keep [1,8,17,15]
        helper.make_node("Conv", ["r1", "conv2.w", "conv2.b"], ["c2"], name="conv2",
                         kernel_shape=[3, 3], group=2, dilations=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("Add", ["c2", "r1"], ["res"], name="residual"),
        helper.make_node("Constant", [], ["scale"], name="scale_const",
                         value=numpy_helper.from_array(scale, "scale")),
        helper.make_node("Mul", ["res", "scale"], ["scaled"], name="scale_mul"),
        # [1,8,17,15] -> [1,8,9,8]
        helper.make_node("MaxPool", ["scaled"], ["p"], name="pool",
                         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p", "conv3.w", "conv3.b"], ["c3"], name="conv3", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1),
        helper.make_node("Reshape", ["logits", "reshape.shape"], ["logits3"], name="reshape"),
        helper.make_node("Softmax", ["logits3"], ["y"], name="softmax", axis=-1),
    ]
    return make_model(nodes, "cnn", [x], [y], inits)


# MARK: - dynamic (symbolic batch, shape arithmetic, aliases, Constant nodes)

def dynamic(batch):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 2, 4])
    inits = [numpy_helper.from_array(weight(20, (16, 8)), "W")]

    def const(name, array):
        return helper.make_node("Constant", [], [name], name=name + "_node",
                                value=numpy_helper.from_array(np.asarray(array), name))

    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="matmul"),
        helper.make_node("Identity", ["h"], ["h_alias"], name="identity"),
        helper.make_node("Relu", ["h_alias"], ["r"], name="relu"),
        helper.make_node("Shape", ["x"], ["x_shape"], name="shape"),
        const("zero", np.array(0, np.int64)),
        helper.make_node("Gather", ["x_shape", "zero"], ["batch"], name="gather", axis=0),
        const("axes0", np.array([0], np.int64)),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"], name="unsqueeze"),
        helper.make_node("Constant", [], ["tail"], name="tail_node", value_ints=[2, 4]),
        helper.make_node("Concat", ["batch1", "tail"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["r", "target"], ["r3"], name="reshape"),
        helper.make_node("Dropout", ["r3"], ["d"], name="dropout"),
        helper.make_node("Softmax", ["d"], ["y"], name="softmax"),
        # Dead: reaches no output.
        helper.make_node("Relu", ["x"], ["unused"], name="dead_relu"),
    ]
    return make_model(nodes, "dynamic", [x], [y], inits)


# MARK: - typed_fields (no raw_data)

def typed_fields():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 2])
    w16 = np.array([[0.5, -1.0, 2.0, 0.25], [1.5, -0.125, 3.0, -2.5]], np.float16)
    inits = [
        helper.make_tensor("w_f32", TensorProto.FLOAT, [2, 4], [1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0]),
        helper.make_tensor("w_f16", TensorProto.FLOAT16, [2, 4], w16),  # stored as bit patterns in int32_data
        helper.make_tensor("w_f64", TensorProto.DOUBLE, [4], [0.5, 1.5, -2.5, 8.0]),
        helper.make_tensor("shape_i64", TensorProto.INT64, [2], [4, 2]),
        helper.make_tensor("w_i32", TensorProto.INT32, [3], [7, -8, 9]),  # unused by the graph
    ]
    for t in inits:
        assert not t.HasField("raw_data"), t.name
    nodes = [
        helper.make_node("Mul", ["x", "w_f32"], ["m"], name="mul"),
        helper.make_node("Cast", ["w_f16"], ["w_f16_as_f32"], name="cast16", to=TensorProto.FLOAT),
        helper.make_node("Add", ["m", "w_f16_as_f32"], ["a"], name="add16"),
        helper.make_node("Cast", ["w_f64"], ["w_f64_as_f32"], name="cast64", to=TensorProto.FLOAT),
        helper.make_node("Add", ["a", "w_f64_as_f32"], ["b"], name="add64"),
        helper.make_node("Reshape", ["b", "shape_i64"], ["y"], name="reshape"),
    ]
    # Old exporters list initializers among the graph inputs too: w_f32 is one (the importer must not make it
    # an input).
    w_f32_input = helper.make_tensor_value_info("w_f32", TensorProto.FLOAT, [2, 4])
    return make_model(nodes, "typed_fields", [x, w_f32_input], [y], inits)


# MARK: - bad models

def bad_models():
    save = lambda model, name: onnx.save_model(model, os.path.join(OUT, name))
    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    # Truncated: cut inside the graph message, so the declared length runs past the end.
    with open(os.path.join(OUT, "mlp.onnx"), "rb") as f:
        data = f.read()
    truncated = data[: len(data) * 2 // 3]
    try:
        onnx.load_model_from_string(truncated)
        sys.exit("bad_truncated.onnx parses; pick another cut")
    except Exception:
        pass
    with open(os.path.join(OUT, "bad_truncated.onnx"), "wb") as f:
        f.write(truncated)

    save(make_model([helper.make_node("Det", ["x"], ["y"], name="my_det")], "bad_unsupported_op",
                    [v("x", [2, 3, 3])], [v("y", [2])], []), "bad_unsupported_op.onnx")

    save(make_model([helper.make_node("Relu", ["x"], ["r"], name="my_relu"),
                     helper.make_node("Add", ["r", "undefined_value"], ["y"], name="my_add")],
                    "bad_missing_input", [v("x", [4])], [v("y", [4])], [], check=False),
         "bad_missing_input.onnx")

    save(make_model([helper.make_node("Add", ["x", "b_out"], ["a_out"], name="cyc_a"),
                     helper.make_node("Relu", ["a_out"], ["b_out"], name="cyc_b"),
                     helper.make_node("Relu", ["b_out"], ["y"], name="after")],
                    "bad_cycle", [v("x", [4])], [v("y", [4])], [], check=False), "bad_cycle.onnx")

    custom = make_model([helper.make_node("Foo", ["x"], ["y"], name="my_foo", domain="com.example")],
                        "bad_custom_domain", [v("x", [4])], [v("y", [4])], [], check=False)
    custom.opset_import.append(helper.make_opsetid("com.example", 1))
    save(custom, "bad_custom_domain.onnx")

    u16 = helper.make_tensor("w_u16", TensorProto.UINT16, [2], [1, 2])
    save(make_model([helper.make_node("Cast", ["w_u16"], ["c"], name="cast", to=TensorProto.FLOAT),
                     helper.make_node("Add", ["x", "c"], ["y"], name="add")],
                    "bad_dtype", [v("x", [2])], [v("y", [2])], [u16]), "bad_dtype.onnx")

    def external(location, offset, length):
        t = TensorProto(name="w_ext", data_type=TensorProto.FLOAT, dims=[4])
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        return make_model([helper.make_node("Add", ["x", "w_ext"], ["y"], name="add")], "bad_external",
                          [v("x", [4])], [v("y", [4])], [t], check=False)

    save(external("missing.onnx.data", 0, 16), "bad_external_missing.onnx")
    data_size = os.path.getsize(os.path.join(OUT, "cnn_external.onnx.data"))
    save(external("cnn_external.onnx.data", data_size - 8, 16), "bad_external_range.onnx")
    # A file that exists, outside the model's folder: refused before it is opened.
    save(external("../make_fixtures.py", 0, 16), "bad_external_escape.onnx")


# MARK: - main

def main():
    os.makedirs(OUT, exist_ok=True)

    def save_with_reference(model, name, x, shapes_model=None):
        path = os.path.join(OUT, name + ".onnx")
        onnx.save_model(model, path)
        write_shapes(shapes_model or model, name)
        return run_reference(path, name, x)

    save_with_reference(mlp(), "mlp", rng(100).standard_normal((3, 37)).astype(np.float32))

    x_cnn = rng(101).standard_normal((1, 3, 33, 29)).astype(np.float32)
    model = cnn()
    y_inline = save_with_reference(model, "cnn", x_cnn)

    ext_path = os.path.join(OUT, "cnn_external.onnx")
    if os.path.exists(ext_path + ".data"):
        os.remove(ext_path + ".data")  # save_model appends to an existing data file
    # All initializers go to the data file except the tiny Reshape shape: onnxruntime's load-time shape
    # inference cannot read an external shape tensor ("Cannot parse data from external tensors"), so it stays
    # inline, as exporters' default size_threshold (1024) would keep it. The importer thus sees both kinds.
    external_model = cnn()
    onnx.external_data_helper.convert_model_to_external_data(
        external_model, all_tensors_to_one_file=True, location="cnn_external.onnx.data", size_threshold=0)
    for t in external_model.graph.initializer:
        if t.name == "reshape.shape":
            t.data_location = TensorProto.DEFAULT
            del t.external_data[:]
    onnx.save_model(external_model, ext_path)
    write_shapes(cnn(), "cnn_external")
    y_ext = run_reference(ext_path, "cnn_external", x_cnn)
    assert np.array_equal(y_inline, y_ext)

    save_with_reference(dynamic("batch"), "dynamic", rng(102).standard_normal((3, 16)).astype(np.float32),
                        shapes_model=dynamic(3))
    save_with_reference(typed_fields(), "typed_fields", rng(103).standard_normal((2, 4)).astype(np.float32))

    bad_models()

    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, into {OUT}")


if __name__ == "__main__":
    main()
