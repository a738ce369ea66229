#!/usr/bin/env python3
"""Single-MatMul / Gemm ONNX models for coopmat-bench.sh, with their input and a numpy reference.

Needs only numpy: the ONNX protobuf is written by hand (the device machine may have no `onnx` package), the
weight as ONNX external data next to the model (so fmc maps it instead of parsing a large bytes field).

    make_matmul.py --out DIR NAME M K N [--op matmul|gemm] [--bias] [--relu] [--c] [--seed S]

writes DIR/NAME.onnx, DIR/NAME.B.bin, DIR/NAME.in.A.npy (and DIR/NAME.in.C.npy with --c) and
DIR/NAME.ref.Y.npy: Y = act(A × B16 (+ bias16) (+ C)) in float64, B16 the weight rounded to fp16 (what an fp16
bundle stores), so the figure against it measures the kernel, not the storage precision. Gemm models store
B transposed (transB = 1, as torch exports Linear); --c makes C a model input [M, N] (the kernels' epilogue
read), --bias a constant per-column C (the bias texels); --relu adds a Relu (fused into the kernel).
"""
import argparse
import os

import numpy as np


# ---- protobuf wire format (the few ONNX fields used here) ----
def varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(n, v):
    return varint(n << 3) + varint(v)


def field_bytes(n, b):
    if isinstance(b, str):
        b = b.encode()
    return varint((n << 3) | 2) + varint(len(b)) + b


def value_info(name, shape, elem_type=1):
    dims = b"".join(field_bytes(1, field_varint(1, d)) for d in shape)  # Dimension.dim_value
    tensor_type = field_varint(1, elem_type) + field_bytes(2, dims)  # TypeProto.Tensor
    return field_bytes(1, name) + field_bytes(2, field_bytes(1, tensor_type))  # ValueInfoProto


def tensor_inline(name, array):
    a = np.ascontiguousarray(array, dtype=np.float32)
    return (b"".join(field_varint(1, d) for d in a.shape) + field_varint(2, 1) + field_bytes(8, name)
            + field_bytes(9, a.tobytes()))


def tensor_external(name, shape, location, length):
    entries = [("location", location), ("offset", "0"), ("length", str(length))]
    ext = b"".join(field_bytes(13, field_bytes(1, k) + field_bytes(2, v)) for k, v in entries)
    return b"".join(field_varint(1, d) for d in shape) + field_varint(2, 1) + field_bytes(8, name) + ext \
        + field_varint(14, 1)  # data_location = EXTERNAL


def attr_int(name, v):
    return field_bytes(1, name) + field_varint(3, v) + field_varint(20, 2)  # type INT


def node(op, inputs, outputs, name, attrs=()):
    return (b"".join(field_bytes(1, i) for i in inputs) + b"".join(field_bytes(2, o) for o in outputs)
            + field_bytes(3, name) + field_bytes(4, op) + b"".join(field_bytes(5, x) for x in attrs))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("name")
    p.add_argument("m", type=int)
    p.add_argument("k", type=int)
    p.add_argument("n", type=int)
    p.add_argument("--op", choices=["matmul", "gemm"], default="matmul")
    p.add_argument("--bias", action="store_true")
    p.add_argument("--relu", action="store_true")
    p.add_argument("--c", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    m, k, n = a.m, a.k, a.n
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    A = rng.standard_normal((m, k), dtype=np.float32)
    B = (rng.standard_normal((k, n), dtype=np.float32) / np.float32(np.sqrt(k))).astype(np.float32)
    gemm = a.op == "gemm"
    stored = np.ascontiguousarray(B.T) if gemm else B  # Gemm: B given as [N, K] with transB = 1
    bin_name = f"{a.name}.B.bin"
    stored.tofile(os.path.join(a.out, bin_name))
    initializers = [tensor_external("B", stored.shape, bin_name, stored.nbytes)]
    inputs = [value_info("A", [m, k])]
    node_inputs = ["A", "B"]
    bias = None
    C = None
    if gemm and a.bias:
        bias = rng.standard_normal(n, dtype=np.float32)
        initializers.append(tensor_inline("bias", bias))
        node_inputs.append("bias")
    elif gemm and a.c:
        C = rng.standard_normal((m, n), dtype=np.float32)
        inputs.append(value_info("C", [m, n]))
        node_inputs.append("C")
        np.save(os.path.join(a.out, f"{a.name}.in.C.npy"), C)
    product = "Y" if not a.relu else "P"
    attrs = [attr_int("transB", 1)] if gemm else []
    nodes = [node("Gemm" if gemm else "MatMul", node_inputs, [product], "mm", attrs)]
    if a.relu:
        nodes.append(node("Relu", [product], ["Y"], "relu"))
    graph = (b"".join(field_bytes(1, nd) for nd in nodes) + field_bytes(2, a.name)
             + b"".join(field_bytes(5, t) for t in initializers) + b"".join(field_bytes(11, v) for v in inputs)
             + field_bytes(12, value_info("Y", [m, n])))
    model = (field_varint(1, 8) + field_bytes(2, "coopmat-bench") + field_bytes(7, graph)
             + field_bytes(8, field_bytes(1, "") + field_varint(2, 13)))
    with open(os.path.join(a.out, f"{a.name}.onnx"), "wb") as f:
        f.write(model)
    np.save(os.path.join(a.out, f"{a.name}.in.A.npy"), A)

    B16 = B.astype(np.float16).astype(np.float64)
    Y = A.astype(np.float64) @ B16
    if bias is not None:
        Y += bias.astype(np.float16).astype(np.float64)  # bias texels are stored in the weight image's precision
    if C is not None:
        Y += C.astype(np.float64)
    if a.relu:
        Y = np.maximum(Y, 0)
    np.save(os.path.join(a.out, f"{a.name}.ref.Y.npy"), Y)
    print(f"{a.name}: {a.op} M={m} K={k} N={n}{' bias' if bias is not None else ''}{' C' if C is not None else ''}"
          f"{' relu' if a.relu else ''}, {stored.nbytes / 2**20:.1f} MiB of weights")


if __name__ == "__main__":
    main()
