#!/usr/bin/env python3
"""For the device benchmarks: writes the inputs of CORPUS/NAME.ref.npz (the corpus script's reference) as
CORPUS/NAME.in.INPUT.npy and prints fmrun's --input flags for them.  Usage: corpus_inputs.py CORPUS NAME"""
import sys

import numpy as np

corpus, name = sys.argv[1], sys.argv[2]
ref = np.load(f"{corpus}/{name}.ref.npz")
flags = []
for i, input_name in enumerate(ref["__input_names__"]):
    path = f"{corpus}/{name}.in.{input_name}.npy"
    np.save(path, ref[f"in.{i}"])
    flags.append(f"--input {input_name}={path}")
print(" ".join(flags))
