#!/usr/bin/env python3
"""Summarise an Nsight Compute source page (`ncu -i R.ncu-rep --page source --csv --print-source sass`,
as tools/device/call_lib.sh's ncu_pages writes it): the kernel's warp-stall reasons over all sampled
cycles, its instruction mix, and the SASS lines with the most stall samples (with their leading
reasons), which is where a latency chain shows. Usage: sass_stalls.py FILE.csv [LINES] (default 25).
Runs anywhere with Python 3 (no Nsight install needed)."""
import collections
import csv
import sys


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    rows = list(csv.reader(open(sys.argv[1], newline="")))
    if len(rows) < 3:
        print(f"{sys.argv[1]}: no source rows (was the report taken with SourceCounters?)")
        return 1
    print(rows[0][1] if len(rows[0]) > 1 else rows[0][0])
    hdr = rows[1]
    col = {h: i for i, h in enumerate(hdr)}
    stall_cols = [h for h in hdr if h.startswith("stall_") and "Not Issued" not in h]
    stalls, mix = collections.Counter(), collections.Counter()
    samples_total = inst_total = 0
    lines = []
    for r in rows[2:]:
        if len(r) < len(hdr):
            continue
        samples = int(r[col["Warp Stall Sampling (All Samples)"]] or 0)
        executed = int(r[col["Instructions Executed"]] or 0)
        words = r[col["Source"]].split()
        op = words[1] if words and words[0].startswith("@") and len(words) > 1 else (words or [""])[0]
        mix[op.split(".")[0]] += executed
        inst_total += executed
        samples_total += samples
        per = {c[len("stall_"):]: int(r[col[c]] or 0) for c in stall_cols}
        stalls.update(per)
        top = [(k, v) for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:3] if v]
        lines.append((samples, r[col["Address"]][-5:], " ".join(words)[:70], executed, top))
    share = lambda v, t: f"{100.0 * v / max(t, 1):.1f} %"
    print(f"stall samples {samples_total}, warp instructions executed {inst_total}")
    print("stalls: " + ", ".join(f"{k} {share(v, samples_total)}" for k, v in stalls.most_common(10)))
    print("instructions: " + ", ".join(f"{k} {share(v, inst_total)}" for k, v in mix.most_common(12)))
    for samples, addr, text, executed, top in sorted(lines, key=lambda x: -x[0])[:int(sys.argv[2]) if len(sys.argv) > 2 else 25]:
        print(f"{samples:6d} {share(samples, samples_total):>7} {addr} {text:<70} x{executed} {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
