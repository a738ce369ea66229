"""The table of Benchmarks/paper-bench.sh from its log: per model and mode, cold latency (page cache: the median over
the row's process starts, with their count; evicted),
first run, warm median, device memory held (own allocations; VK_EXT_memory_budget increase) and occupied on time
average, relative errors against onnxruntime, streamed ≡ preload, and torch eager fp16 beside them.

  paper_table.py paper-HHMMSS.log [more.log ...] RESULTS_DIR   (RESULTS_DIR holds MODEL.torch.json; several logs,
                                                              e.g. of one table run in several device calls, make one table)
"""
import json
import math
import os
import re
import statistics
import sys

MS = r"([\d.]+) (ms|s|µs)"


def seconds(value, unit):
    return float(value) * {"s": 1.0, "ms": 1e-3, "µs": 1e-6}[unit]


def mib(text):
    m = re.match(r"([\d.]+) (B|KiB|MiB|GiB)", text)
    return float(m.group(1)) * {"B": 2**-20, "KiB": 2**-10, "MiB": 1, "GiB": 1024}[m.group(2)] if m else None


def parse(logs):
    rows, checks, biteq, notes = {}, {}, {}, {}
    model = tag = phase = None
    for line in (line for log in logs for line in open(log, errors="replace")):
        line = line.rstrip("\n")
        if m := re.match(r"=== (\S+)(?: (.*))?$", line):
            model = m.group(1)
            if m.group(2) and m.group(2) != "done" and not m.group(2).startswith("done"):
                notes.setdefault(model, []).append(m.group(2))
            continue
        if m := re.match(r"--- (\S+) (\S+) \((page cache|cold repeats|evicted)\)", line):
            model, tag, phase = m.group(1), m.group(2), m.group(3)
            rows.setdefault((model, tag), {})
            continue
        if line.startswith("CHECK "):
            c = json.loads(line[6:])
            checks[(c["model"], c["mode"])] = c["errors"]
            continue
        if m := re.match(r"BITEQ (\S+) out\.\S+?\.(\S+) out\.\S+?\.(\S+) (\w+)", line):
            biteq[(m.group(1), m.group(3))] = m.group(4) == "identical"
            continue
        if tag is None or (model, tag) not in rows:
            continue
        r = rows[(model, tag)]
        if m := re.match(r"cold latency:\s+" + MS, line):
            if phase == "evicted":
                r["cold_evicted"] = seconds(m.group(1), m.group(2))
            else:  # the measured process and its cold repeats: the median of them all
                r.setdefault("colds", []).append(seconds(m.group(1), m.group(2)))
                r["cold"] = statistics.median(r["colds"])
        elif phase != "page cache":
            continue
        elif m := re.match(r"first run:\s+" + MS, line):
            r["first"] = seconds(m.group(1), m.group(2))
        elif m := re.match(r"warm latency:\s+median " + MS, line):
            r["warm"] = seconds(m.group(1), m.group(2))
        elif m := re.match(r"device memory:\s+(\S+ \S+) own allocations(?:, budget (\S+ \S+))?", line):
            r["held"] = mib(m.group(1))
            r["budget"] = mib(m.group(2)) if m.group(2) else None
        elif m := re.search(r"\+(\S+ \S+) since before the session", line):
            r["vk"] = mib(m.group(1))
        elif m := re.match(r"occupied average:\s+(\S+ \S+)", line):
            r["avg"] = mib(m.group(1))
        elif m := re.match(r"streamed / run:\s+(\S+ \S+)", line):
            r["streamed"] = mib(m.group(1))
    return rows, checks, biteq, notes


def fmt_ms(s):
    return "–" if s is None else (f"{s * 1e3:.0f}" if s >= 0.1 else f"{s * 1e3:.2f}")


def fmt_mib(v):
    return "–" if v is None else f"{v:.0f}"


def fmt_err(errors):
    if not errors:
        return "–"
    vals = [e for e in errors.values()]
    if any(not isinstance(e, float) for e in vals):
        return "missing"
    return f"{max(vals):.1e}"


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def main(logs, results):
    rows, checks, biteq, notes = parse(logs)
    models = list(dict.fromkeys(m for m, _ in rows))
    print("| model | mode | budget MiB | cold ms (cached / evicted) | first run ms | warm ms | held MiB (own / VK Δ) "
          "| occupied avg MiB | streamed/run MiB | rel. error fp16 | ≡ preload |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    summary = {}  # streaming mode → ([preload avg / avg], [preload cold / cold], [torch cold / cold])
    for m in models:
        for tag in [t for (mm, t) in rows if mm == m]:
            r = rows[(m, tag)]
            eq = "" if tag == "preload" else {True: "yes", False: "**no**", None: "–"}[biteq.get((m, tag))]
            n = len(r.get("colds", []))
            print(f"| {m} | {tag} | {fmt_mib(r.get('budget'))} | {fmt_ms(r.get('cold'))}{f' (×{n})' if n > 1 else ''}"
                  f" / {fmt_ms(r.get('cold_evicted'))} "
                  f"| {fmt_ms(r.get('first'))} | {fmt_ms(r.get('warm'))} | {fmt_mib(r.get('held'))} / {fmt_mib(r.get('vk'))} "
                  f"| {fmt_mib(r.get('avg'))} | {fmt_mib(r.get('streamed'))} | {fmt_err(checks.get((m, tag)))} | {eq} |")
        t = os.path.join(results, f"{m}.torch.json")
        torch = json.load(open(t)) if os.path.exists(t) else None
        if torch:
            print(f"| {m} | torch eager fp16 | – | {fmt_ms(torch['cold_s'])} / – | {fmt_ms(torch['first_run_s'])} "
                  f"| {fmt_ms(torch['warm_median_s'])} | {fmt_mib(torch['peak_cuda_bytes'] / 2**20)} (CUDA peak) | – | – "
                  f"| {'–' if torch.get('rel_error') is None else format(torch['rel_error'], '.1e')} | |")
        pre = rows.get((m, "preload"), {})
        for tag in [t for (mm, t) in rows if mm == m and t != "preload"]:
            r = rows[(m, tag)]
            mem, cold, vs_torch = summary.setdefault(tag, ([], [], []))
            if pre.get("avg") and r.get("avg"):
                mem.append(pre["avg"] / r["avg"])
            if pre.get("cold") and r.get("cold"):
                cold.append(pre["cold"] / r["cold"])
            if torch and r.get("cold"):
                vs_torch.append(torch["cold_s"] / r["cold"])
        for key in [k for k in checks if k[0] == m and k[1].startswith("fp32")]:
            print(f"| {m} | {key[1]} (fp32) | – | – | – | – | – | – | – | {fmt_err(checks[key])} "
                  f"| {'' if key[1].endswith('preload') else {True: 'yes', False: '**no**', None: '–'}[biteq.get((m, 'fp32.streamed'))]} |")
        for n in notes.get(m, []):
            print(f"| {m} | {n} | | | | | | | | | |")
    print()
    for tag, (mem, cold, vs_torch) in summary.items():
        g, c, t = geomean(mem), geomean(cold), geomean(vs_torch)
        print(f"Streaming at {tag}, geomean: preload's occupied average memory / this mode's = "
              + (f"{g:.2f}× over {len(mem)} models" if g else "–")
              + "; preload's cold / this mode's (cached) = " + (f"{c:.2f}× ({sum(x >= 1 for x in cold)} of {len(cold)} "
                                                                 f"models at or below preload)" if c else "–")
              + "; torch eager cold / this mode's = " + (f"{t:.2f}× over {len(vs_torch)}" if t else "–"))

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1:-1], sys.argv[-1])
