#!/usr/bin/env python3
"""Where a run's GPU time goes, from an `fmrun --trace` file: kernels, gaps between steps inside a compute
submission, gaps at submission boundaries, and how much of the boundary gaps is waiting for a copy that had
not landed yet (the rest is the cost of the boundary itself: semaphore signal, wait and a new submission).

    python3 Benchmarks/trace_gaps.py trace.json [--run N] [--json]

Prints one block per run in the trace (the first run and each traced warm run). All times are GPU time on the
device's timestamp clock (the trace's microseconds).
"""
import argparse
import json
import sys
from collections import defaultdict


def runs(events):
    names = {e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e["name"] == "process_name"}
    by_run = defaultdict(lambda: defaultdict(list))
    for e in events:
        if e.get("ph") == "X":
            by_run[e["pid"]][e["tid"]].append(e)
    return [(names.get(pid, str(pid)), by_run[pid]) for pid in sorted(by_run)]


def analyse(threads):
    steps = sorted((e for e in threads[1] if "step" in e.get("args", {})), key=lambda e: int(e["args"]["step"]))
    copies = threads[2]
    # A resident run is one submission whose trace event names no step range.
    submits = [e for e in threads[4] if e["name"] == "submit compute" and "steps" in e.get("args", {})]
    if not steps:
        return None
    # Batch boundaries: the first step of every compute submission after the first, with the `loaded` value
    # it waits for.
    boundary_wait = {}
    for s in submits:
        lo = int(s["args"]["steps"].split("..<")[0])
        boundary_wait[lo] = int(s["args"].get("waitLoaded", "0"))
    landed = {}  # ordinal -> end time of its copy
    for c in copies:
        if "ordinal" in c.get("args", {}):
            landed[int(c["args"]["ordinal"])] = c["ts"] + c["dur"]
    kernels = sum(e["dur"] for e in steps)
    span = steps[-1]["ts"] + steps[-1]["dur"] - steps[0]["ts"]
    inside = boundary = waiting = 0.0
    boundaries = 0
    worst = []
    for prev, cur in zip(steps, steps[1:]):
        k = int(cur["args"]["step"])
        gap = max(0.0, cur["ts"] - (prev["ts"] + prev["dur"]))
        if k not in boundary_wait:
            inside += gap
            continue
        boundaries += 1
        need = boundary_wait[k]
        wait = 0.0
        if need > 0 and (need - 1) in landed:
            wait = min(gap, max(0.0, landed[need - 1] - (prev["ts"] + prev["dur"])))
        waiting += wait
        boundary += gap - wait
        worst.append((gap - wait, k))
    worst.sort(reverse=True)
    copy_busy = sum(c["dur"] for c in copies)
    # The same intervals' union: where copies' intervals overlap (a TOP_OF_PIPE start stamped while the previous
    # copy still runs), their sum counts that time twice.
    copy_union, until = 0.0, None
    for c in sorted(copies, key=lambda c: c["ts"]):
        start, end = c["ts"], c["ts"] + c["dur"]
        if until is None or start > until:
            copy_union += end - start
            until = end
        elif end > until:
            copy_union += end - until
            until = end
    copy_bytes = sum(int(c["args"].get("bytes", 0)) for c in copies)
    return {
        "steps": len(steps), "submissions": boundaries + 1, "span_ms": span / 1e3, "kernels_ms": kernels / 1e3,
        "gaps_inside_ms": inside / 1e3, "gaps_boundary_overhead_ms": boundary / 1e3,
        "gaps_waiting_for_copies_ms": waiting / 1e3,
        "overhead_per_boundary_us": boundary / boundaries if boundaries else 0.0,
        "gap_per_step_inside_us": inside / max(1, len(steps) - 1 - boundaries),
        "copies": len(copies), "copy_busy_ms": copy_busy / 1e3, "copy_union_ms": copy_union / 1e3,
        "copy_MiB": copy_bytes / 2**20,
        "worst_boundaries": [(round(g, 1), k) for g, k in worst[:5]],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace")
    ap.add_argument("--json", action="store_true", help="print one JSON object per run instead of text")
    args = ap.parse_args()
    events = json.load(open(args.trace))["traceEvents"]
    for name, threads in runs(events):
        result = analyse(threads)
        if result is None:
            continue
        if args.json:
            print(json.dumps({"run": name, **result}))
            continue
        r = result
        print(f"{name}: {r['steps']} steps in {r['submissions']} compute submissions; GPU span {r['span_ms']:.2f} ms = "
              f"kernels {r['kernels_ms']:.2f} + gaps inside submissions {r['gaps_inside_ms']:.2f} "
              f"({r['gap_per_step_inside_us']:.1f} µs/step) + waiting for copies {r['gaps_waiting_for_copies_ms']:.2f} "
              f"+ boundary overhead {r['gaps_boundary_overhead_ms']:.2f} ({r['overhead_per_boundary_us']:.1f} µs each)")
        print(f"  copies: {r['copies']} ({r['copy_MiB']:.1f} MiB), transfer queue busy {r['copy_busy_ms']:.2f} ms "
              f"(Σ of copies; their union {r['copy_union_ms']:.2f} ms); "
              f"largest boundary overheads (µs, step): {r['worst_boundaries']}")


if __name__ == "__main__":
    sys.exit(main())
