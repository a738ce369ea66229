#!/usr/bin/env python3
"""One attention as an ONNX model, for attention-bench.sh, with its inputs and a float64 reference.

Needs only numpy (the protobuf is written by coopmat/make_matmul.py's helpers). The graph is what exporters write
and fmc fuses into one attention.comp step: MatMul(Q, Kᵀ) → Mul(scale) (with --scale) → Where(causal, s, fill)
(with --causal; GPT-Neo's mask, fill = float32's lowest) → Softmax(axis −1) → MatMul(P, V).

    make_attention.py --out DIR NAME HEADS L D [--causal] [--scale S] [--seed S]

writes DIR/NAME.onnx, DIR/NAME.in.{q,kt,v}.npy (q [1, H, L, D], kt [1, H, D, L], v [1, H, L, D]) and
DIR/NAME.ref.y.npy (y [1, H, L, D]).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "coopmat"))
from make_matmul import attr_int, field_bytes, field_varint, node, tensor_inline, value_info  # noqa: E402


def tensor_bool(name, array):
    a = np.ascontiguousarray(array, dtype=np.bool_)
    return (b"".join(field_varint(1, d) for d in a.shape) + field_varint(2, 9) + field_bytes(8, name)
            + field_bytes(9, a.astype(np.uint8).tobytes()))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("name")
    p.add_argument("heads", type=int)
    p.add_argument("length", type=int)
    p.add_argument("depth", type=int)
    p.add_argument("--causal", action="store_true")
    p.add_argument("--scale", type=float)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    h, n, d = a.heads, a.length, a.depth
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    q = rng.standard_normal((1, h, n, d), dtype=np.float32)
    kt = rng.standard_normal((1, h, d, n), dtype=np.float32)
    v = rng.standard_normal((1, h, n, d), dtype=np.float32)
    lowest = np.finfo(np.float32).min
    initializers, nodes = [], [node("MatMul", ["q", "kt"], ["s"], "qk")]
    scores = "s"
    if a.scale is not None:
        initializers.append(tensor_inline("scale", np.array(a.scale, dtype=np.float32)))
        nodes.append(node("Mul", [scores, "scale"], ["ss"], "scale"))
        scores = "ss"
    causal = np.tril(np.ones((n, n), dtype=np.bool_))[None, None]
    if a.causal:
        initializers += [tensor_bool("causal", causal), tensor_inline("fill", np.array(lowest, dtype=np.float32))]
        nodes.append(node("Where", ["causal", scores, "fill"], ["sw"], "mask"))
        scores = "sw"
    nodes += [node("Softmax", [scores], ["p"], "softmax", [attr_int("axis", -1)]), node("MatMul", ["p", "v"], ["y"], "pv")]
    inputs = [value_info("q", [1, h, n, d]), value_info("kt", [1, h, d, n]), value_info("v", [1, h, n, d])]
    graph = (b"".join(field_bytes(1, nd) for nd in nodes) + field_bytes(2, a.name)
             + b"".join(field_bytes(5, t) for t in initializers) + b"".join(field_bytes(11, x) for x in inputs)
             + field_bytes(12, value_info("y", [1, h, n, d])))
    model = (field_varint(1, 8) + field_bytes(2, "attention-bench") + field_bytes(7, graph)
             + field_bytes(8, field_bytes(1, "") + field_varint(2, 13)))
    with open(os.path.join(a.out, f"{a.name}.onnx"), "wb") as f:
        f.write(model)
    for name, x in [("q", q), ("kt", kt), ("v", v)]:
        np.save(os.path.join(a.out, f"{a.name}.in.{name}.npy"), x)

    s = q.astype(np.float64) @ kt.astype(np.float64)
    if a.scale is not None:
        s *= np.float64(np.float32(a.scale))
    if a.causal:
        s = np.where(causal, s, np.float64(lowest))
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    y = (e / e.sum(axis=-1, keepdims=True)) @ v.astype(np.float64)
    np.save(os.path.join(a.out, f"{a.name}.ref.y.npy"), y)
    print(f"{a.name}: {h} heads × {n} keys × {d}{', causal' if a.causal else ''}"
          f"{f', scale {a.scale}' if a.scale is not None else ''}")


if __name__ == "__main__":
    main()
