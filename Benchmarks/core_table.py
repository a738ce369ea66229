#!/usr/bin/env python3
"""Turns a core-bench.sh log into the README's table (markdown on stdout).

Per row: the plan fmc printed (budget, resident and streamed bytes, predicted warm time, its lower bound), what
fmrun measured (cold = process start → first output, first run, warm median, bytes streamed per warm run, device
memory by our own accounting and the VK_EXT_memory_budget increase, Σ kernel GPU time and copy bandwidth from
the run's timestamps), the measured bound max(Σ kernel time, streamed bytes / measured copy bandwidth), and
whether the outputs equal preload's bit for bit.
"""
import re
import sys

UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def size(text):
    m = re.match(r"([\d.]+) (B|KiB|MiB|GiB|TiB)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def ms(text):
    m = re.match(r"([\d.]+) (ms|s)\b", text)
    if not m:
        return None
    return float(m.group(1)) * (1000 if m.group(2) == "s" else 1)


def parse(lines):
    rows, row, model = [], None, None
    for line in lines:
        m = re.match(r"=== (\S+) (preload|budget (\S+?))( evicted| host-read mmap| host-read pread)?$", line)
        if m:
            model = m.group(1)
            if m.group(4):
                row = {"model": model, "mode": f"{m.group(3)}{m.group(4)}", "evicted": True}
            else:
                row = {"model": model, "mode": "preload" if m.group(2) == "preload" else m.group(3)}
            rows.append(row)
            continue
        if re.match(r"=== \S+ compile", line):
            row = None
            continue
        m = re.match(r"=== (\S+) error (.*): rel (\S+)", line)
        if m:
            for r in rows:
                if r["model"] == m.group(1):
                    r.setdefault("error", m.group(3))
            continue
        if row is None:
            continue
        s = line.strip()
        if s.startswith("plan ("):
            m = re.search(r"budget (unbounded|[\d.]+ \w+) = arena ([\d.]+ \w+) \+ weight space ([\d.]+ \w+) "
                          r"\(resident ([\d.]+ \w+), streamed per run ([\d.]+ \w+)\)", s)
            if m:
                row["budget"] = m.group(1)
                row["resident"] = m.group(4)
                row["method"] = re.match(r"plan \(([^)]*)\)", s).group(1).split(", ")[-1]
        elif s.startswith("predicted warm"):
            m = re.search(r"predicted warm ([\d.]+ m?s), lower bound ([\d.]+ m?s)", s)
            row["predicted"] = ms(m.group(1))
        elif s.startswith("cold latency:"):
            row["cold"] = ms(s.split(":", 1)[1].strip())
            row["cache"] = re.search(r"(\d+)% of the bundle", s).group(1) if "% of the bundle" in s else "?"
        elif s.startswith("first run:"):
            row["first"] = ms(s.split(":", 1)[1].strip())
        elif s.startswith("warm latency:") and "median" in s:
            row["warm"] = ms(s.split("median", 1)[1].strip())
        elif s.startswith("streamed / run:"):
            row["streamed"] = size(s.split(":", 1)[1].strip())
        elif s.startswith("device memory:"):
            row["device"] = size(s.split(":", 1)[1].strip())
            m = re.search(r", budget ([\d.]+ \w+) \(", s)
            row["budget_bytes"] = size(m.group(1)) if m else None
        elif s.startswith("budget-reported:"):
            m = re.search(r"\+([\d.]+ \w+) since", s)
            row["heap_increase"] = size(m.group(1)) if m else None
        elif s.startswith("copy bandwidth:"):
            m = re.search(r"([\d.]+) GB/s", s)
            row["bandwidth"] = float(m.group(1)) * 1e9 if m else None
        elif s.startswith("profile:"):
            row["kernels"] = ms(s.split(":", 1)[1].strip())
        elif s.startswith("bit-identical to preload:"):
            row["identical"] = s.split(":")[1].strip()
    return rows


def fmt_ms(v):
    return "–" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def fmt_mib(v):
    return "–" if v is None else f"{v / (1 << 20):.1f}"


def main():
    rows = parse(open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines())
    print("| model | budget | plan | cold (ms) | first run (ms) | warm median (ms) | streamed / warm run (MiB) "
          "| device MiB (own) | heap increase (MiB) | Σ kernels (ms) | bound (ms) | warm / bound | predicted (ms) "
          "| ≡ preload | rel. error |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        kernels, streamed, bw = r.get("kernels"), r.get("streamed"), r.get("bandwidth")
        bound = None
        if kernels is not None:
            copy = streamed / bw * 1000 if streamed and bw else 0.0
            bound = max(kernels, copy)
        ratio = f"{r['warm'] / bound:.2f}" if bound and r.get("warm") else "–"
        budget = r.get("budget", "–") if r["mode"] != "preload" else "preload"
        if r.get("evicted"):
            print(f"| {r['model']} | {r['mode']} | | {fmt_ms(r.get('cold'))} | {fmt_ms(r.get('first'))} "
                  f"| {fmt_ms(r.get('warm'))} | | | | | | | | | |")
            continue
        print(f"| {r['model']} | {r['mode']} ({budget}) | {r.get('method', '')}, resident {r.get('resident', '–')} "
              f"| {fmt_ms(r.get('cold'))} | {fmt_ms(r.get('first'))} | {fmt_ms(r.get('warm'))} | {fmt_mib(streamed)} "
              f"| {fmt_mib(r.get('device'))} | {fmt_mib(r.get('heap_increase'))} | {fmt_ms(kernels)} | {fmt_ms(bound)} "
              f"| {ratio} | {fmt_ms(r.get('predicted'))} | {r.get('identical', '–')} | {r.get('error', '–')} |")


if __name__ == "__main__":
    main()
