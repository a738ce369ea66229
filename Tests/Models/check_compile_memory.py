#!/usr/bin/env python3
"""Checks that `fmc compile`'s memory does not grow with the model: its peak RSS must stay within
1 GiB + 2 × the model's largest tensor (issue 9's rule), for a model with inline weights and the same model
with ONNX external data.

    check_compile_memory.py --bin DIR [--work DIR] [--keep]

The model is generated here with onnx.helper in a few seconds: an embedding table (Gather) of 256 MiB and
sixteen 64 MiB MatMul weights, 1.25 GiB of fp32 weights in all, so a compiler that held the whole model once
(besides the tensor it packs) would exceed the limit of 1.5 GiB. Each layer's first three products read one
activation and are split into heads, as an attention's Q, K and V projections are, so the compiler fuses them into
one product of their concatenated weights (`fuseSharedInputProducts`): 768 MiB of concatenations, which a compiler
holding them in memory for the whole lowering (as one did) would add to its peak. An attention over 3000 positions
(no weights) is split into blocks of query rows in the compile with a memory budget: a lowering that lost the mapped
files' pages there (as one did) would hold the whole model. The peak is the child's ru_maxrss from
wait4(2), which counts the mapped model pages the process touched as well as its heap; fmc's own "peak RSS"
line must agree with it. Linux carries ru_maxrss across fork and exec, so the models are generated in a
child process and this one stays small. Each bundle is then checked with `fmc inspect --verify-checksums`.

Disk: one model at a time is on disk (the inline one, then the external one), with the compiler's temporary files
(TMPDIR is the work folder) and one bundle, about 3.3 GiB at most; each is removed when done. Where the work
folder's file system has less free than a stage needs, that stage is reported as skipped, with the space it needs
and the space there is (never as passed). Ends with "N passed, N failed" (and ", N skipped").
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIB = 1 << 20
GIB = 1 << 30
VOCAB, WIDTH, HIDDEN, LAYERS, HEADS = 65536, 1024, 16384, 4, 16  # table 256 MiB; each MatMul weight 64 MiB
SEQ = 3000  # an attention's positions: 3000² fp32 scores are 34 MiB, over the 32 MiB that splits them


def build_model():
    """ids [1, 8] → Gather(table) → LAYERS × (MatMul q, k, v of one input, each Reshape'd into heads; q + k + v,
    Relu, Reshape back, MatMul down) → y [1, 8, WIDTH]."""
    rng = np.random.default_rng(9)
    inits = [numpy_helper.from_array(rng.standard_normal((VOCAB, WIDTH), dtype=np.float32), "table"),
             numpy_helper.from_array(np.array([1, 8, HEADS, HIDDEN // HEADS], dtype=np.int64), "heads"),
             numpy_helper.from_array(np.array([1, 8, HIDDEN], dtype=np.int64), "merged")]
    nodes = [helper.make_node("Gather", ["table", "ids"], ["h0"], name="embed")]
    x = "h0"
    for i in range(LAYERS):
        for p in "qkv":
            w = rng.standard_normal((WIDTH, HIDDEN), dtype=np.float32) * np.float32(WIDTH ** -0.5)
            inits.append(numpy_helper.from_array(w, f"{p}{i}"))
            nodes += [helper.make_node("MatMul", [x, f"{p}{i}"], [f"{p}{i}_out"], name=f"{p}{i}"),
                      helper.make_node("Reshape", [f"{p}{i}_out", "heads"], [f"{p}{i}_heads"], name=f"{p}{i}_split")]
        down = rng.standard_normal((HIDDEN, WIDTH), dtype=np.float32) * np.float32(HIDDEN ** -0.5)
        inits.append(numpy_helper.from_array(down, f"down{i}"))
        nodes += [helper.make_node("Add", [f"q{i}_heads", f"k{i}_heads"], [f"qk{i}"], name=f"qk{i}"),
                  helper.make_node("Add", [f"qk{i}", f"v{i}_heads"], [f"qkv{i}"], name=f"qkv{i}"),
                  helper.make_node("Relu", [f"qkv{i}"], [f"r{i}"], name=f"relu{i}"),
                  helper.make_node("Reshape", [f"r{i}", "merged"], [f"m{i}"], name=f"merge{i}"),
                  helper.make_node("MatMul", [f"m{i}", f"down{i}"], [f"h{i + 1}"], name=f"down{i}")]
        x = f"h{i + 1}"
    nodes.append(helper.make_node("Identity", [x], ["y"], name="out"))
    # An attention over SEQ positions without weights: its 34 MiB of fp32 scores are split into blocks of query rows
    # when the compile has a memory budget, which replaces the graph the lowering reads (its mapped files included).
    nodes += [helper.make_node("Transpose", ["seq"], ["seq_t"], name="keys", perm=[0, 2, 1]),
              helper.make_node("MatMul", ["seq", "seq_t"], ["scores"], name="scores"),
              helper.make_node("Softmax", ["scores"], ["probs"], name="softmax", axis=-1),
              helper.make_node("MatMul", ["probs", "seq"], ["z"], name="mix")]
    graph = helper.make_graph(nodes, "compile_memory",
                              [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 8]),
                               helper.make_tensor_value_info("seq", TensorProto.FLOAT, [1, SEQ, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, WIDTH]),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, SEQ, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    largest = max(int(np.prod(t.dims)) * 4 for t in inits)
    total = sum(int(np.prod(t.dims)) * 4 for t in inits)
    return model, largest, total


def model_path(work, kind):
    """Where `generate` writes the model of `kind` ("inline" or "external"; the latter's weights beside it)."""
    return os.path.join(work, "inline.onnx") if kind == "inline" else os.path.join(work, "external", "external.onnx")


def generate(work, kind):
    """Writes the model of `kind` into `work` (model_path); prints largest and total bytes."""
    model, largest, total = build_model()
    path = model_path(work, kind)
    if kind == "inline":
        onnx.save_model(model, path)
    else:
        os.makedirs(os.path.dirname(path))
        onnx.save_model(model, path, save_as_external_data=True,
                        all_tensors_to_one_file=True, location="external.onnx.data", size_threshold=1024)
    print(largest, total)


def remove_model(work, kind):
    path = model_path(work, kind)
    if kind == "inline":
        os.remove(path)
    else:
        shutil.rmtree(os.path.dirname(path))


def compile_measured(fmc, model, bundle, extra, tmpdir):
    """Runs fmc compile (its temporary files in `tmpdir`); returns (exit code, peak RSS bytes from wait4, fmc's
    output, seconds)."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen([fmc, "compile", model, "-o", bundle] + extra, stdout=out, stderr=subprocess.STDOUT,
                                 env=dict(os.environ, TMPDIR=tmpdir))
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return child.returncode, usage.ru_maxrss * 1024, text, time.monotonic() - start


def check_compile(fmc, label, model, bundle, extra, work, limit, peaks):
    """Compiles `model` once, measured; returns the problems found (empty when it passes) and prints its line."""
    rc, peak, text, seconds = compile_measured(fmc, model, bundle, extra, work)
    peaks[label] = peak
    problems = []
    if rc != 0:
        problems.append(f"fmc exited with {rc}:\n{text[-2000:]}")
    if peak > limit:
        problems.append(f"peak RSS {peak / MIB:.0f} MiB exceeds the limit {limit / MIB:.0f} MiB")
    # With a budget the attention is split, which must not hold more than the same compile without one (the split
    # once lost the mapped files, whose pages then stayed: 987 MiB against 761 without a budget).
    unbudgeted = peaks.get("external fp16")
    if "--memory-budget" in extra and unbudgeted and peak > unbudgeted + 64 * MIB:
        problems.append(f"peak RSS {peak / MIB:.0f} MiB with a budget, {unbudgeted / MIB:.0f} MiB without: "
                        "the split lowering holds more of the model")
    reported = re.search(r"peak RSS ([0-9.]+) (MiB|GiB)", text)
    if rc == 0 and not reported:
        problems.append("fmc printed no 'peak RSS' line")
    elif reported:
        value = float(reported.group(1)) * (GIB if reported.group(2) == "GiB" else MIB)
        if abs(value - peak) > 0.05 * peak + 8 * MIB:
            problems.append(f"fmc reports peak RSS {value / MIB:.0f} MiB, wait4 {peak / MIB:.0f} MiB")
    if rc == 0 and "packed" not in text:
        problems.append("fmc printed no progress ('packed ...') line")
    if rc == 0:
        listing = subprocess.run([fmc, "inspect", bundle], capture_output=True, text=True).stdout
        if "q0#shared" not in listing:
            problems.append("the q, k and v products were not fused (no image q0#shared in fmc inspect): "
                            "the test no longer covers concatenated weights")
        if "--memory-budget" in extra and "rows0" not in subprocess.run(
                [fmc, "inspect", bundle, "--steps"], capture_output=True, text=True).stdout:
            problems.append("the attention was not split into blocks of rows (no step 'rows0' in fmc inspect "
                            "--steps): the test no longer covers the split")
        check = subprocess.run([fmc, "inspect", bundle, "--verify-checksums"], capture_output=True, text=True)
        if check.returncode != 0:
            problems.append(f"fmc inspect --verify-checksums failed:\n{check.stdout[-1000:]}{check.stderr[-1000:]}")
    if os.path.exists(bundle):
        os.remove(bundle)
    print(f"  {label}: peak RSS {peak / MIB:.0f} MiB of {limit / MIB:.0f} MiB allowed, {seconds:.1f} s: "
          + ("FAIL" if problems else "ok"))
    for p in problems:
        print("    " + p)
    return problems


# Each model is generated, compiled as each case says, and removed before the next; bytes per weight of the bundle.
STAGES = [("inline", [("inline fp32", [], 4)]),
          ("external", [("external fp16", ["--precision", "fp16"], 2),
                        ("external fp16 at 50%", ["--precision", "fp16", "--memory-budget", "50%"], 2)])]
WEIGHTS = (VOCAB * WIDTH + LAYERS * 4 * WIDTH * HIDDEN) * 4  # fp32 bytes of the generated model's weights
CONCATENATED = LAYERS * 3 * WIDTH * HIDDEN * 4  # the fused q, k, v weights the compiler writes to TMPDIR (fp32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="folder with fmc")
    ap.add_argument("--work", default=None, help="folder for the generated models and bundles (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (the bundles are removed as checked)")
    ap.add_argument("--generate", metavar="DIR", help=argparse.SUPPRESS)  # the child that writes a model
    ap.add_argument("--kind", choices=["inline", "external"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        generate(args.generate, args.kind)
        return 0
    fmc = os.path.join(args.bin, "fmc")

    work = tempfile.mkdtemp(prefix="fm-compile-memory-", dir=args.work)
    passed = failed = skipped = 0
    peaks = {}
    try:
        for kind, cases in STAGES:
            needed = WEIGHTS + CONCATENATED + max(WEIGHTS // 4 * b for _, _, b in cases) + 256 * MIB
            free = shutil.disk_usage(work).free
            if free < needed:
                print(f"compile-memory: {kind} model skipped: it needs {needed / GIB:.1f} GiB free in {work} "
                      f"(model, the compiler's temporary files and a bundle), there are {free / GIB:.1f} GiB")
                skipped += len(cases)
                continue
            t0 = time.monotonic()
            child = subprocess.run([sys.executable, os.path.abspath(__file__), "--bin", args.bin, "--generate", work,
                                    "--kind", kind], capture_output=True, text=True)
            if child.returncode != 0:
                print(f"compile-memory: generating the {kind} model failed:\n{child.stdout}{child.stderr}")
                failed += len(cases)
                continue
            largest, total = map(int, child.stdout.split()[-2:])
            limit = GIB + 2 * largest
            print(f"compile-memory: {kind} model, weights {total / MIB:.0f} MiB, largest tensor {largest / MIB:.0f} "
                  f"MiB, limit {limit / MIB:.0f} MiB (generated in {time.monotonic() - t0:.1f} s)")
            for label, extra, _ in cases:
                bundle = os.path.join(work, label.replace(" ", "_") + ".fmb")
                problems = check_compile(fmc, label, model_path(work, kind), bundle, extra, work, limit, peaks)
                failed += bool(problems)
                passed += not problems
            remove_model(work, kind)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
