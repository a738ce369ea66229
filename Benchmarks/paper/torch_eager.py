"""torch eager on the GPU, as a user of that GPU would run a model today: weights loaded from a file.

  torch_eager.py save NAME CORPUS_DIR OUT.pt   builds the corpus model NAME with make_corpus.py's own builder
                                                (same seed, same module as the ONNX export) and saves the whole
                                                module and its inputs with torch.save instead of exporting it
  torch_eager.py run OUT.pt [--runs N] [--dtype fp16|fp32] [--json FILE] [--ref NAME.ref.npz]
                                                a fresh process: load the file, move it to cuda in DTYPE, run it;
                                                prints cold (process start -> first output on the host), the load
                                                alone, first run, warm median, peak CUDA memory (allocator), with
                                                --ref the first output's relative error against onnxruntime's
                                                reference (torch's own error in DTYPE), and writes them to FILE

Process start is read from /proc/self/stat, so interpreter and `import torch` time count, as they do for fmrun.
"""
import json
import os
import sys
import time


def process_age():
    """Seconds since this process started (Linux: field 22 of /proc/self/stat, in clock ticks since boot)."""
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def build(name, corpus_dir):
    """The corpus builder's module and example inputs for NAME (its ONNX export stubbed out)."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "corpus")
    sys.path.insert(0, os.environ.get("CORPUS_SCRIPTS", here))
    import make_corpus as mc
    captured = {}

    def capture(model, args, path, input_names, output_names, external_data=False):
        captured.update(model=model, args=args, input_names=input_names)
        return 0.0, None

    mc.export = capture  # the builders call export() by its module-level name
    spec = mc.MODELS[name]
    cache = os.path.expanduser("~/.cache/onnx_corpus/wheels")
    ctx = dict(onnx_path=os.path.join(corpus_dir, f"{name}.torch-eager.onnx"), cache=cache,
               extract_dir=os.path.join(cache, "extracted"), wheel_dirs=[], download=False, dtype="fp32",
               external_data=spec["large"])
    try:
        spec["fn"](ctx)
    except Exception as e:  # builders may post-process the export; the module is captured by then
        if "model" not in captured:
            raise
        print(f"torch_eager: builder stopped after export ({type(e).__name__}: {e}); module captured", file=sys.stderr)
    return captured


def save(name, corpus_dir, out):
    import pickle
    import torch
    captured = build(name, corpus_dir)
    try:
        torch.save(dict(model=captured["model"], args=captured["args"], names=captured["input_names"]), out)
        how = "whole module"
    except (AttributeError, pickle.PicklingError):
        # A module class defined inside the builder cannot be pickled: save its weights, and `run` builds the module
        # again (the builder's random init, then these weights loaded: what from_pretrained does).
        torch.save(dict(state=captured["model"].state_dict(), args=captured["args"], names=captured["input_names"],
                        rebuild=name, corpus=os.path.abspath(corpus_dir)), out)
        how = "state_dict; run rebuilds the module"
    print(f"saved {name} to {out} ({os.path.getsize(out) / 2**20:.1f} MiB, {how})")


def run(path, runs, dtype, json_path, ref=None):
    import torch
    t_import = process_age()
    torch.cuda.init()
    t0 = time.perf_counter()
    saved = torch.load(path, weights_only=False, map_location="cpu")
    if "rebuild" in saved:
        model = build(saved["rebuild"], saved["corpus"])["model"]
        model.load_state_dict(saved["state"])
    else:
        model = saved["model"]
    model = model.eval()
    dt = torch.float16 if dtype == "fp16" else torch.float32
    model = model.to(device="cuda", dtype=dt)
    args = [a.to("cuda", dtype=dt) if a.is_floating_point() else a.to("cuda") for a in saved["args"]]
    torch.cuda.synchronize()
    load_s = time.perf_counter() - t0
    with torch.no_grad():
        t1 = time.perf_counter()
        out = model(*args)
        out = out[0] if isinstance(out, (tuple, list)) else getattr(out, "logits", out)
        host = out.float().cpu()
        first_s = time.perf_counter() - t1
        cold = process_age()
        warm = []
        for _ in range(runs):
            torch.cuda.synchronize()
            t = time.perf_counter()
            o = model(*args)
            torch.cuda.synchronize()
            warm.append(time.perf_counter() - t)
    warm.sort()
    result = dict(path=path, dtype=dtype, rebuilt="rebuild" in saved, device=torch.cuda.get_device_name(), torch=torch.__version__,
                  import_s=t_import, load_s=load_s, first_run_s=first_s, cold_s=cold,
                  warm_median_s=warm[len(warm) // 2] if warm else None,
                  peak_cuda_bytes=torch.cuda.max_memory_allocated(), output_shape=list(host.shape))
    if ref:
        import numpy as np
        expected = np.load(ref)["out.0"].astype(np.float64)
        got = host.numpy().astype(np.float64)
        result["rel_error"] = (float(np.linalg.norm(got - expected) / max(np.linalg.norm(expected), 1e-30))
                               if got.shape == expected.shape else None)
    print(f"torch eager {dtype}: cold {cold * 1e3:.1f} ms (process start -> first output; import {t_import * 1e3:.0f} ms, "
          f"load to GPU {load_s * 1e3:.1f} ms, first run {first_s * 1e3:.1f} ms), warm median "
          f"{(result['warm_median_s'] or 0) * 1e3:.3f} ms over {runs}, peak CUDA {result['peak_cuda_bytes'] / 2**20:.1f} MiB"
          + (f", first output's error against the reference {result['rel_error']:.2e}" if result.get("rel_error") else ""))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "save":
        save(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) >= 3 and sys.argv[1] == "run":
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("path")
        p.add_argument("--runs", type=int, default=10)
        p.add_argument("--dtype", default="fp16")
        p.add_argument("--json")
        p.add_argument("--ref", help="NAME.ref.npz: report the first output's relative error against its out.0")
        a = p.parse_args(sys.argv[2:])
        run(a.path, a.runs, a.dtype, a.json, a.ref)
    else:
        print(__doc__)
        sys.exit(2)
