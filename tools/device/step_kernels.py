#!/usr/bin/env python3
"""One decode step's kernels from an Nsight Compute CSV of every launch (`ncu --csv --metrics
gpu__time_duration.sum ...`, as tools/device/call_lib.sh's step_kernels writes it): the launches
between the last two launches of the marker kernel (the sampler: one per step) are the last whole
step; prints their total time and, per kernel (name, grid, block), time, launches and share,
longest first. This is the step as launched eagerly (TTC_CUDA_GRAPHS=0) and serialised by the
profiler, so small kernels carry no launch gaps here but also no overlap.
Usage: step_kernels.py FILE.csv [MARKER] [LINES] (default Sample: either sampler kernel, 30).
Runs anywhere."""
import collections
import csv
import re
import sys


def short(name: str) -> str:
    name = re.sub(r"\(.*$", "", name)  # parameters
    name = re.sub(r"^(void )?(ttc::engine::cuda::(<unnamed>::)?)?", "", name)
    return name[:90]


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    marker = sys.argv[2] if len(sys.argv) > 2 else "Sample"
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    lines = open(sys.argv[1], newline="").read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
    if start is None:
        print(f"{sys.argv[1]}: no CSV header")
        return 1
    launches = []
    rows = [l for l in lines[start:] if l.startswith('"')]  # the program's own output is mixed in
    for r in csv.DictReader(rows):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        v = float(r["Metric Value"].replace(",", ""))
        scale = {"ns": 1e-3, "nsecond": 1e-3, "ms": 1e3, "msecond": 1e3, "s": 1e6, "second": 1e6}
        us = v * scale.get(r.get("Metric Unit", "ns"), 1.0)  # us, usecond: as is
        launches.append((int(r["ID"]), short(r["Kernel Name"]), r.get("Grid Size", ""),
                         r.get("Block Size", ""), us))
    launches.sort()
    marks = [i for i, l in enumerate(launches) if marker in l[1]]
    if len(marks) < 2:
        print(f"{len(launches)} launches, fewer than two {marker} launches: no whole step")
        return 1
    step = launches[marks[-2] + 1 : marks[-1] + 1]
    total = sum(l[4] for l in step)
    per = collections.defaultdict(lambda: [0.0, 0])
    for _, name, grid, block, us in step:
        per[(name, grid, block)][0] += us
        per[(name, grid, block)][1] += 1
    print(f"one step: {len(step)} launches, {total:.1f} us of kernel time "
          f"({len(launches)} launches profiled, {len(marks)} {marker})")
    for (name, grid, block), (us, n) in sorted(per.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"  {us:9.1f} us {100 * us / total:5.1f} % x{n:<4d} {name} {grid} {block}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
