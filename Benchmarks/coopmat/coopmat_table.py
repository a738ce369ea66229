#!/usr/bin/env python3
"""The table of coopmat-bench.sh: per shape, GPU time and TFLOP/s of the plain and the tensor-core path side by
side, each output's relative error against the numpy reference and the two paths against each other, and the
peak of the cooperative-matrix units from coopmat-peak.

    coopmat_table.py WORK SHAPES_FILE [PEAK_JSON]
    coopmat_table.py --sweep WORK SHAPES_FILE [PEAK_JSON]   every mode found (off, on, t.TILE), one row each

WORK holds NAME.ref.Y.npy, NAME.MODE.json (fmrun --profile-out) and out.NAME.MODE/Y.npy for MODE in off, on;
SHAPES_FILE one line per shape: NAME M K N [make_matmul flags]. GPU time = the sum of the profile's per-step
medians (the product and, where K is split, its reduction), TFLOP/s = 2·M·K·N / that.
"""
import json
import os
import sys

import numpy as np


def rel(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def shapes(work, shapes_file):
    """(name, M, K, N, flags, flops, numpy reference or None) for each line of SHAPES_FILE: NAME M K N [fmc flags]."""
    for line in open(shapes_file):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        name, m, k, n = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
        ref_path = os.path.join(work, f"{name}.ref.Y.npy")
        ref = np.load(ref_path) if os.path.exists(ref_path) else None
        yield name, m, k, n, " ".join(parts[4:]), 2.0 * m * k * n, ref


def load_peak(path):
    """coopmat-peak's JSON, or None when there is none (missing or unreadable)."""
    if not path or not os.path.exists(path):
        return None
    try:
        return json.load(open(path))
    except ValueError:
        return None


def sweep(work, shapes_file, peak):
    """One row per (shape, mode) for every NAME.MODE.json in WORK: GPU time, TFLOP/s, share of the peak, error."""
    print("| shape | mode | ms | TFLOP/s | % of coopmat peak | err vs numpy |")
    print("|---|---|---:|---:|---:|---:|")
    for name, m, k, n, flags, flops, ref in shapes(work, shapes_file):
        modes = sorted(f[len(name) + 1:-5] for f in os.listdir(work) if f.startswith(name + ".") and f.endswith(".json"))
        for mode in modes:
            p = json.load(open(os.path.join(work, f"{name}.{mode}.json")))
            seconds = sum(p["stepSeconds"])
            tf = flops / seconds / 1e12
            out = os.path.join(work, f"out.{name}.{mode}", "Y.npy")
            err = f"{rel(np.load(out), ref):.1e}" if os.path.exists(out) and ref is not None else "–"
            share = f"{100 * tf / peak['tflops']:.0f}%" if peak and peak.get("tflops") else "–"
            print(f"| {name} | {mode.replace('_', '/')} | {seconds * 1e3:.3f} | {tf:.1f} | {share} | {err} |")


def main():
    if sys.argv[1] == "--sweep":
        return sweep(sys.argv[2], sys.argv[3], load_peak(sys.argv[4] if len(sys.argv) > 4 else None))
    work, shapes_file = sys.argv[1], sys.argv[2]
    peak = load_peak(sys.argv[3] if len(sys.argv) > 3 else None)
    rows = []
    print("| shape | M×K×N | plain ms | plain TFLOP/s | tensor cores ms | TFLOP/s | speed-up | steps (tc) "
          "| err plain | err tc | tc vs plain |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for name, m, k, n, flags, flops, ref in shapes(work, shapes_file):
        cells = {}
        outs = {}
        for mode in ("off", "on"):
            prof = os.path.join(work, f"{name}.{mode}.json")
            out = os.path.join(work, f"out.{name}.{mode}", "Y.npy")
            if os.path.exists(prof):
                p = json.load(open(prof))
                seconds = sum(p["stepSeconds"])
                cells[mode] = (seconds * 1e3, flops / seconds / 1e12, len(p["stepSeconds"]))
            if os.path.exists(out):
                outs[mode] = np.load(out)

        def fmt_time(mode):
            return (f"{cells[mode][0]:.3f}", f"{cells[mode][1]:.1f}") if mode in cells else ("failed", "–")

        off_ms, off_tf = fmt_time("off")
        on_ms, on_tf = fmt_time("on")
        speed = f"{cells['off'][0] / cells['on'][0]:.2f}×" if "off" in cells and "on" in cells else "–"
        steps = str(cells["on"][2]) if "on" in cells else "–"
        err_off = f"{rel(outs['off'], ref):.1e}" if "off" in outs and ref is not None else "–"
        err_on = f"{rel(outs['on'], ref):.1e}" if "on" in outs and ref is not None else "–"
        cross = f"{rel(outs['on'], outs['off']):.1e}" if "on" in outs and "off" in outs else "–"
        print(f"| {name}{' (' + flags + ')' if flags else ''} | {m}×{k}×{n} | {off_ms} | {off_tf} | {on_ms} | "
              f"{on_tf} | {speed} | {steps} | {err_off} | {err_on} | {cross} |")
        rows.append((name, cells))
    if peak:
        print()
        print(f"coopmat-peak ({peak.get('device', '?')}): {peak.get('tflops', 0):.1f} TFLOP/s fp16×fp16→fp32 "
              f"on 16×16×16 fragments ({peak.get('workgroups', '?')} workgroups × {peak.get('subgroups', '?')} "
              f"subgroups, {peak.get('iterations', '?')} iterations, best of {peak.get('repeats', '?')}: "
              f"{peak.get('ms', 0):.3f} ms)")
        for name, cells in rows:
            if "on" in cells and peak.get("tflops"):
                print(f"  {name}: tensor cores at {100 * cells['on'][1] / peak['tflops']:.0f}% of the peak; plain "
                      + (f"{100 * cells['off'][1] / peak['tflops']:.0f}%" if "off" in cells else "failed"))


if __name__ == "__main__":
    main()
