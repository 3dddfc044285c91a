#!/usr/bin/env python3
"""Baseline for tools/bench/tokenizer_bench.cc: Hugging Face `tokenizers` encoding the same GSM8K + MATH-500 texts
on one thread, median of repeated passes. Offline comparison tool only (pip install tokenizers); never part of the
build or the tests.

Usage: RAYON_NUM_THREADS=1 python3 tools/bench/tokenizer_bench_hf.py [--tokenizer FILE] [--repeats N]
Prints two rows: `encode` (one call per text, as an engine would) and `encode_batch` (one call for all texts,
which removes the Python per-call overhead; RAYON_NUM_THREADS=1 keeps it on one thread)."""
import argparse
import json
import os
import statistics
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import Tokenizer, __version__  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
shared = os.path.normpath(os.path.join(here, "..", "..", "..", "shared"))
parser = argparse.ArgumentParser()
parser.add_argument("--tokenizer", default=os.path.join(shared, "assets/llama3/tokenizer.json"))
parser.add_argument("--repeats", type=int, default=15)
args = parser.parse_args()

texts = []
for name, keys in (("gsm8k_test.jsonl", ("question", "answer")), ("math500.jsonl", ("problem", "solution"))):
    with open(os.path.join(shared, "data", name), encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.extend(row[k] for k in keys)
nbytes = sum(len(t.encode("utf-8")) for t in texts)
tok = Tokenizer.from_file(args.tokenizer)


def run(fn):
    fn()  # warm-up, not counted
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t0)
    return n, times


def one_by_one():
    return sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)


def batch():
    return sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))


print(f"tokenizers {__version__}: {len(texts)} texts, {nbytes} bytes, RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}")
for label, fn in (("encode", one_by_one), ("encode_batch", batch)):
    n, times = run(fn)
    med = statistics.median(times)
    print(f"{label:12s} median of {args.repeats}: {med:.4f} s  ({nbytes / med / 1e6:.1f} MB/s, "
          f"{n / med / 1e6:.2f} M tokens/s; min {min(times):.4f}, max {max(times):.4f}); {n} tokens")
