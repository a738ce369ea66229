#!/usr/bin/env python3
"""For the device benchmarks: writes the inputs of corpus model NAME as CORPUS/NAME.in.INPUT.npy and prints fmrun's
--input flags for them. They are the corpus script's reference inputs (CORPUS/NAME.ref.npz); a model generated without
a reference (`make_corpus.py --no-ref`) gets inputs made from its description (CORPUS/NAME.json): token ids 0, 97,
194, … (mod 1000) for integer inputs, seeded normals for the others, dynamic dimensions 1.
Usage: corpus_inputs.py CORPUS NAME"""
import json
import os
import sys

import numpy as np


def reference_inputs(corpus, name):
    ref = np.load(f"{corpus}/{name}.ref.npz")
    return [(str(n), ref[f"in.{i}"]) for i, n in enumerate(ref["__input_names__"])]


def described_inputs(corpus, name):
    spec = json.load(open(f"{corpus}/{name}.json"))
    rng = np.random.default_rng(0)
    inputs = []
    for i in spec["inputs"]:
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i["shape"]]
        if i["dtype"].startswith("INT"):
            a = (np.arange(int(np.prod(shape))) * 97 % 1000).reshape(shape)
            a = a.astype(np.int64 if i["dtype"] == "INT64" else np.int32)
        else:
            a = rng.standard_normal(shape).astype(np.float16 if i["dtype"] == "FLOAT16" else np.float32)
        inputs.append((i["name"], a))
    return inputs


corpus, name = sys.argv[1], sys.argv[2]
inputs = (reference_inputs if os.path.exists(f"{corpus}/{name}.ref.npz") else described_inputs)(corpus, name)
flags = []
for input_name, array in inputs:
    path = f"{corpus}/{name}.in.{input_name}.npy"
    np.save(path, array)
    flags.append(f"--input {input_name}={path}")
print(" ".join(flags))
