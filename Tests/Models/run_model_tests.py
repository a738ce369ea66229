#!/usr/bin/env python3
"""Model tests: compile real models with fmc, run them with fmrun (streaming and --preload) and compare
with onnxruntime's reference outputs.

    run_model_tests.py --bin DIR --corpus DIR [--models resnet50 ...] [--precisions fp32 fp16]

A model whose files are absent from the corpus is reported as skipped, never as passed. Tolerances
(relative L2 error ‖out − ref‖ / ‖ref‖): fp32 1e-4; fp16 1e-2, or twice onnxruntime's own error with
fp16 weights where that is larger. onnxruntime's own fp16 error is that of the corpus's fp16 export
(NAME_fp16.ref.npz, made with `make_corpus.py --dtype fp16`) against the fp32 reference where that export
exists; otherwise (the vision models have none) it is measured here by running the fp32 model with every
float initializer rounded to fp16, which is what `--precision fp16` stores (e.g. the seeded ResNet-50 loses
2.0e-2 that way). Streaming and --preload must give bit-identical outputs. Ends with the plain line
"N passed, N failed, N skipped".

The FlashMem paper's models (`make paper-models`: resnet50 gpt_neo_125m vit_1024_12 deepvit depth_anything_s
depth_anything_l whisper_medium sam2, from `make_corpus.py --paper`) run with `--precisions fp32 --budgets`
(no budgeted runs: a fp32 run of the larger ones takes minutes on lavapipe); they are not in CI's MODELS.

Some models need compile flags, as a user would give them (COMPILE_FLAGS): Silero VAD takes its sample rate
as an input that selects branches; pinning it to 16000 specializes the model. A pinned input is not fed to
fmrun.

Some cases run a corpus model on inputs of their own (VARIANTS), against onnxruntime run here on those inputs:
silero_vad_dynamic_sr compiles Silero VAD without the pin, so its sample-rate If is decided at run time, and
feeds sr = 16000 and sr = 8000 to one bundle. Its input is 1×256 samples: the 8 kHz branch cannot run on 512
(onnxruntime fails in its LSTM, and fmc refuses to compile that shape), while both branches accept 256.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}

COMPILE_FLAGS = {
    "silero_vad": ["--pin-input", "sr=16000", "--input-shape", "input=1,512", "--input-shape", "state=2,1,128"],
    "ppocrv4_det": ["--input-shape", "x=1,3,640,640"],  # dynamic N, H, W in the file
    "silero_vad_dynamic_sr": ["--input-shape", "input=1,256", "--input-shape", "state=2,1,128"],
}

# name → (corpus model, function of the model's reference inputs giving [(label, inputs)]).
VARIANTS = {
    "silero_vad_dynamic_sr": ("silero_vad", lambda ref: [
        (f"sr{sr}", {"input": ref["input"][:, :256], "state": ref["state"], "sr": np.array(sr, dtype=np.int64)})
        for sr in (16000, 8000)]),
}


def pinned_inputs(flags):
    return {flags[i + 1].split("=", 1)[0] for i, flag in enumerate(flags) if flag == "--pin-input"}


def rel_error(out, ref):
    out = out.astype(np.float64)
    ref = ref.astype(np.float64)
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30))


# The operators whose constant float inputs fmc stores in weight images, fp16 under --precision fp16. Other
# constants (Clip bounds, scales, shapes) stay fp32 in the arena.
WEIGHT_IMAGE_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "LSTM", "Gather"}


def ort_fp16_weight_error(onnx_path, inputs, refs):
    """Relative error of onnxruntime on the model with the weights fmc stores in fp16 rounded to fp16."""
    import onnx
    import onnxruntime
    from onnx import numpy_helper
    model = onnx.load(onnx_path)

    def graphs(graph):
        yield graph
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    yield from graphs(attribute.g)

    weights = {name for g in graphs(model.graph) for node in g.node if node.op_type in WEIGHT_IMAGE_OPS
               for name in node.input}

    def round_tensor(tensor, name):
        values = numpy_helper.to_array(tensor)
        if name in weights and values.dtype == np.float32:
            tensor.CopyFrom(numpy_helper.from_array(values.astype(np.float16).astype(np.float32), tensor.name))

    for g in graphs(model.graph):  # initializers and Constant nodes, If branches included
        for init in g.initializer:
            round_tensor(init, init.name)
        for node in g.node:
            if node.op_type == "Constant":
                for attribute in node.attribute:
                    if attribute.type == onnx.AttributeProto.TENSOR:
                        round_tensor(attribute.t, node.output[0])
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = session.run(list(refs), inputs)
    return max(rel_error(out, ref) for out, ref in zip(outs, refs.values()))


def ort_fp16_error(name, onnx_path, inputs, refs, corpus):
    """onnxruntime's own relative error in fp16, and how it was measured."""
    fp16_ref = os.path.join(corpus, f"{name}_fp16.ref.npz")
    if os.path.exists(fp16_ref):
        fp16_inputs, fp16_outputs = load_reference(fp16_ref)
        if all(np.array_equal(fp16_inputs[n], v) for n, v in inputs.items()):
            error = max(rel_error(fp16_outputs[n], ref) for n, ref in refs.items())
            return error, "the corpus's fp16 export"
    return ort_fp16_weight_error(onnx_path, inputs, refs), "fp16-rounded weights"


def run(cmd, log):
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log.write(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        raise RuntimeError(f"{os.path.basename(cmd[0])} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout, time.time() - start


def load_reference(path):
    z = np.load(path)
    inputs = {str(n): z[f"in.{i}"] for i, n in enumerate(z["__input_names__"])}
    outputs = {str(n): z[f"out.{i}"] for i, n in enumerate(z["__output_names__"])}
    return inputs, outputs


def ort_reference(onnx_path, inputs, names):
    """onnxruntime's outputs `names` on `inputs`."""
    import onnxruntime
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(list(names), inputs)))


def input_sets(name, onnx_path, ref_path):
    """[(label, inputs, reference outputs)]: the corpus reference, or a variant's inputs with onnxruntime's outputs."""
    inputs, refs = load_reference(ref_path)
    if name not in VARIANTS:
        return [("", inputs, refs)]
    return [(label, ins, ort_reference(onnx_path, ins, list(refs))) for label, ins in VARIANTS[name][1](inputs)]


def check_model(name, args, work, log):
    """Yields (case, ok, message) for each precision × input set × mode."""
    model = VARIANTS[name][0] if name in VARIANTS else name
    onnx_path = os.path.join(args.corpus, f"{model}.onnx")
    ref_path = os.path.join(args.corpus, f"{model}.ref.npz")
    if not (os.path.exists(onnx_path) and os.path.exists(ref_path)):
        yield name, None, f"not in corpus {args.corpus} (generate it with make corpus)"
        return
    flags = COMPILE_FLAGS.get(name, []) + (["--target", args.target] if args.target else [])
    sets = []
    for label, inputs, refs in input_sets(name, onnx_path, ref_path):
        input_args = []
        for n, value in inputs.items():
            if n in pinned_inputs(flags):
                continue
            p = os.path.join(work, f"{name}{label}.in.{n}.npy")
            np.save(p, value)
            input_args += ["--input", f"{n}={p}"]
        tolerance = dict(TOLERANCE)
        if "fp16" in args.precisions:
            ort_error, source = ort_fp16_error(name, onnx_path, inputs, refs, args.corpus)
            tolerance["fp16"] = max(TOLERANCE["fp16"], 2 * ort_error)
            print(f"     {name}{'/' + label if label else ''}: onnxruntime in fp16 ({source}): rel error "
                  f"{ort_error:.2e}; fp16 tolerance {tolerance['fp16']:.2e}", flush=True)
        sets.append((label, input_args, refs, tolerance))
    for precision in args.precisions:
        bundle = os.path.join(work, f"{name}.{precision}.fmb")
        try:
            _, seconds = run([os.path.join(args.bin, "fmc"), "compile", onnx_path, "-o", bundle,
                              "--precision", precision, "--tensor-cores", args.tensor_cores] + flags, log)
        except RuntimeError as e:
            for label, *_ in sets:
                for mode in ("streaming", "preload"):
                    yield f"{name}/{precision}{'/' + label if label else ''}/{mode}", False, f"compile failed: {e}"
            continue
        for label, input_args, refs, tolerance in sets:
            case = f"{name}/{precision}{'/' + label if label else ''}"
            preload = yield from check_bundle(bundle, case, input_args, refs, tolerance[precision], args, work, log)
            for budget in args.budgets:
                compile_cmd = [os.path.join(args.bin, "fmc"), "compile", onnx_path, "--precision", precision,
                               "--tensor-cores", args.tensor_cores] + flags
                yield from check_budget(compile_cmd, bundle, budget, f"{case}/budget-{budget}", input_args, refs,
                                        preload, args, work, log)


def check_bundle(bundle, case, input_args, refs, tolerance, args, work, log):
    """Runs `bundle` streaming and preloaded on one input set; yields (case, ok, message) per mode and for
    streaming == preload."""
    results = {}
    for mode in ("streaming", "preload"):
        out_dir = os.path.join(work, f"{case.replace('/', '.')}.{mode}")
        cmd = [os.path.join(args.bin, "fmrun"), bundle, "--output-dir", out_dir, "--runs", "0"] + input_args + fmrun_wait(args)
        if mode == "preload":
            cmd.append("--preload")
        try:
            stdout, seconds = run(cmd, log)
        except RuntimeError as e:
            yield f"{case}/{mode}", False, f"run failed: {e}"
            continue
        outs = {n: np.load(os.path.join(out_dir, f"{n}.npy")) for n in refs}
        results[mode] = outs
        worst = 0.0
        problems = []
        for n, ref in refs.items():
            out = outs[n]
            if out.shape != ref.shape or out.dtype != ref.dtype:
                problems.append(f"{n}: got {out.dtype}{list(out.shape)}, expected {ref.dtype}{list(ref.shape)}")
                continue
            worst = max(worst, rel_error(out, ref))
        ok = not problems and worst <= tolerance
        message = "; ".join(problems) or f"rel error {worst:.2e} (tolerance {tolerance:.1e}), {seconds:.1f} s"
        yield f"{case}/{mode}", ok, message
    if len(results) == 2:
        same = all(np.array_equal(results["streaming"][n], results["preload"][n]) for n in refs)
        yield f"{case}/streaming==preload", same, "bit-identical" if same else "outputs differ"
    return results.get("preload")


def fmrun_wait(args):
    return [] if args.wait_timeout is None else ["--wait-timeout", f"{args.wait_timeout:g}"]


def size_bytes(text):
    value, unit = text.split()
    return float(value) * {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[unit]


def check_budget(compile_cmd, bundle, budget, case, input_args, refs, preload, args, work, log):
    """Compiles the model for a memory budget (weights cut to fit it, as a user would), or for the smallest feasible
    budget fmc names when that one is too small (a weight that cannot be cut, e.g. an LSTM's), runs it twice (the
    first run copies every weight, the second only the streamed ones) and yields whether both runs equal preload
    bit for bit and the device memory stayed within the budget."""
    planned = f"{bundle}.{budget.replace('%', 'pct')}.fmb"
    try:
        try:
            run(compile_cmd + ["-o", planned, "--memory-budget", budget], log)
        except RuntimeError as e:
            smallest = re.search(r"smallest feasible budget is (\d+) bytes", str(e))
            if not smallest:
                raise
            budget = smallest.group(1)
            run(compile_cmd + ["-o", planned, "--memory-budget", budget], log)
            case += f" (smallest feasible, {int(budget)} bytes)"
    except RuntimeError as e:
        yield case, False, f"compile failed: {e}"
        return
    if preload is None:
        yield case, False, "no preload outputs to compare with"
        return
    for which, extra in (("first run", []), ("warm run", ["--runs", "1", "--outputs-from-last-run"])):
        out_dir = os.path.join(work, f"{case.replace('/', '.').replace('%', 'pct')}.{which.split()[0]}")
        cmd = [os.path.join(args.bin, "fmrun"), planned, "--output-dir", out_dir] + (extra or ["--runs", "0"]) + input_args + fmrun_wait(args)
        try:
            stdout, seconds = run(cmd, log)
        except RuntimeError as e:
            yield f"{case}/{which}", False, f"run failed: {e}"
            continue
        memory = re.search(r"device memory:\s+([\d.]+ \w+) own allocations, budget ([\d.]+ \w+)", stdout)
        same = all(np.array_equal(np.load(os.path.join(out_dir, f"{n}.npy")), preload[n]) for n in refs)
        # fmrun prints sizes cut to 0.1 of their unit: allow that much.
        within = memory is not None and size_bytes(memory.group(1)) <= size_bytes(memory.group(2)) * 1.001 + 0.1 * 1024
        yield (f"{case}/{which}", same and within,
               f"{'bit-identical to preload' if same else 'differs from preload'}; device memory "
               f"{memory.group(1) + ' of ' + memory.group(2) if memory else '?'}"
               f", {seconds:.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="folder with fmc and fmrun")
    parser.add_argument("--corpus", required=True, help="folder with NAME.onnx and NAME.ref.npz")
    parser.add_argument("--models", nargs="+", default=["resnet50"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "fp16"], choices=sorted(TOLERANCE))
    # CI runs on lavapipe, which has no cooperative matrices; `auto` or `on` on a device with them.
    parser.add_argument("--tensor-cores", default="off", choices=["auto", "on", "off"],
                        help="fmc compile --tensor-cores (default off: the portable kernels)")
    parser.add_argument("--target", default=None,
                        help="fmc compile --target (default: fmc's, the H200; lavapipe for the device lavapipe runs on)")
    parser.add_argument("--budgets", nargs="*", default=["25%"],
                        help="memory budgets (fmc compile --memory-budget) whose runs must equal preload bit for bit")
    parser.add_argument("--log", default=None, help="write every command and its output here")
    parser.add_argument("--wait-timeout", type=float, default=None,
                        help="fmrun --wait-timeout SECONDS (a run of Whisper-Medium on lavapipe outlasts fmrun's 600 s)")
    args = parser.parse_args()

    passed = failed = skipped = 0
    with tempfile.TemporaryDirectory(prefix="fm-models-") as work:
        log = open(args.log or os.devnull, "w")
        for name in args.models:
            for case, ok, message in check_model(name, args, work, log):
                status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
                print(f"{status} {case}: {message}", flush=True)
                if ok is None:
                    skipped += 1
                elif ok:
                    passed += 1
                else:
                    failed += 1
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
