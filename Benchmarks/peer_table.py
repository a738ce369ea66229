"""The table of Benchmarks/peer-bench.sh: per model, ours (paper-bench.sh's rows: `--preload` and the budgets) and
each peer engine (h200_peers.sh's results.jsonl, and torch eager by Benchmarks/paper/torch_eager.py where the kit's
torch cannot load the model: torch/MODEL.DTYPE.json), one row each: warm median, cold (process start → first output),
peak device memory, relative error against the same onnxruntime reference; then per model whether our resident
warm latency is below every peer that ran the model, and the peers' failures with their reasons.

  peer_table.py OUT_DIR [more OUT_DIRs ...]   (each holds paper-*.log, peers/results.jsonl and/or torch/*.json)
"""
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper"))
from paper_table import fmt_err, parse  # noqa: E402


def fmt(v, spec="{:.3g}"):
    return "–" if v is None else spec.format(v)


def main(dirs):
    logs = sorted(p for d in dirs for p in glob.glob(os.path.join(d, "paper-*.log")))
    rows, checks, biteq, _ = parse(logs) if logs else ({}, {}, {}, {})
    peers = [json.loads(line) for d in dirs for p in glob.glob(os.path.join(d, "peers", "results.jsonl"))
             for line in open(p) if line.strip()]
    for d in dirs:  # torch_eager.py's results, as peer rows
        for p in sorted(glob.glob(os.path.join(d, "torch", "*.json"))):
            t = json.load(open(p))
            m, dtype = os.path.basename(p)[:-len(".json")].rsplit(".", 1)
            peers.append({"model": m, "engine": f"torch-eager-{dtype} (torch_eager.py)", "status": "ok",
                          "warm_median_ms": t["warm_median_s"] * 1e3 if t.get("warm_median_s") else None,
                          "cold_s": t.get("cold_s"), "gpu_mem_peak_delta_mib": None,
                          "cuda_peak_mib": t["peak_cuda_bytes"] / 2**20, "rel_err": t.get("rel_error")})
    models = list(dict.fromkeys([m for m, _ in rows] + [r["model"] for r in peers]))
    print("| model | engine | warm ms (median) | cold ms | peak device MiB | rel. error | status |")
    print("|---|---|---:|---:|---:|---:|---|")
    verdicts, failures = [], []
    for m in models:
        ours = None
        for (mm, tag), r in rows.items():
            if mm != m:
                continue
            name = "FlashMem fp16 resident (--preload)" if tag == "preload" else f"FlashMem fp16 streamed, {tag} budget"
            eq = "" if tag == "preload" else {True: ", ≡ preload", False: ", **≠ preload**", None: ""}[biteq.get((m, tag))]
            mem = r.get("held")
            print(f"| {m} | {name} | {fmt(r.get('warm') and r['warm'] * 1e3)} | {fmt(r.get('cold') and r['cold'] * 1e3, '{:.0f}')} "
                  f"| {fmt(mem, '{:.0f}')} own, {fmt(r.get('vk'), '{:.0f}')} VK Δ | {fmt_err(checks.get((m, tag)))} | ok{eq} |")
            if tag == "preload":
                ours = r.get("warm")
        ran = []
        for r in (r for r in peers if r["model"] == m):
            status = r.get("status")
            warm = r.get("warm_median_ms")
            note = status
            if r.get("iree_target"):
                note += f" (target {r['iree_target']})"
            mem = (f"{fmt(r['cuda_peak_mib'], '{:.0f}')} CUDA peak" if "cuda_peak_mib" in r
                   else f"{fmt(r.get('gpu_mem_peak_delta_mib'), '{:.0f}')} NVML Δ")
            print(f"| {m} | {r['engine']} | {fmt(warm)} | {fmt(r.get('cold_s') and r['cold_s'] * 1e3, '{:.0f}')} "
                  f"| {mem} | {fmt(r.get('rel_err'), '{:.1e}')} | {note} |")
            if status == "ok" and warm is not None:
                ran.append((warm, r["engine"]))
            else:
                reason = " ".join(str(r.get("error") or "").split())[:300]  # one line: errors may hold JSON
                failures.append(f"{m} / {r['engine']}: {status}: {reason}".rstrip(": "))
        if ours is not None and ran:
            best, engine = min(ran)
            verdicts.append(f"{m}: resident {ours * 1e3:.3g} ms, fastest peer {engine} {best:.3g} ms "
                            f"({best / (ours * 1e3):.2f}× ours): {'below' if ours * 1e3 < best else '**not below**'} "
                            f"every peer that ran it ({len(ran)})")
    print()
    for v in verdicts:
        print(f"- {v}")
    if failures:
        print("\nPeers that did not run (or were inaccurate), with the reason:")
        for f in failures:
            print(f"- {f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
