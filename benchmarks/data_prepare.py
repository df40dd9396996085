"""Benchmark: NYC from raw (parse + protocol + write) and from the processed cache.

Each measurement runs in a fresh process (so imports are warm-free and peak RSS is that of the
phase alone): wall seconds of ``prepare(...)`` and peak resident memory (``ru_maxrss``), with
the RSS before the call for reference. Prints a table and writes JSON.

    python benchmarks/data_prepare.py --out results/bench/data_prepare.json

Targets (2 cores): < 20 s from raw, < 2 s from cache.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stgnn.utils.io import atomic_write_json


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _phase(source: str, root: str, force: bool, load_kw: dict[str, Any], q: "mp.Queue[dict[str, Any]]") -> None:
    from stgnn.data.dataset import prepare
    from stgnn.data.protocol import ProtocolConfig

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    split = prepare(source, ProtocolConfig(), root=root, force_reload=force, **load_kw)
    seconds = time.perf_counter() - t0
    q.put({"seconds": seconds, "rss_before_mb": rss0,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "cache_hit": split.stats["cache"]["hit"], "fingerprint": split.fingerprint(),
           "loading": split.stats.get("loading"), "checkins": split.num_checkins,
           "file_mb": Path(split.stats["cache"]["file"]).stat().st_size / 2**20})


def measure(source: str, root: str, force: bool, load_kw: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_phase, args=(source, root, force, load_kw, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default="nyc", help="dataset name or file (default nyc, via STGNN_DATA_DIR)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep-duplicates", action="store_true", help="loader drop_duplicates=False")
    ap.add_argument("--root", default=None, help="dataset root (default: a temporary folder)")
    ap.add_argument("--out", default="results/bench/data_prepare.json", help="JSON output path")
    args = ap.parse_args(argv)
    load_kw = {"drop_duplicates": False} if args.keep_duplicates else {}

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or tmp
        runs: dict[str, list[dict[str, Any]]] = {"raw": [], "cache": []}
        for _ in range(args.repeats):
            runs["raw"].append(measure(args.source, root, True, load_kw))
            runs["cache"].append(measure(args.source, root, False, load_kw))
    assert all(r["cache_hit"] for r in runs["cache"]) and not any(r["cache_hit"] for r in runs["raw"])

    summary = {k: {"seconds_median": statistics.median(r["seconds"] for r in v),
                   "seconds_min": min(r["seconds"] for r in v),
                   "peak_rss_mb_max": max(r["peak_rss_mb"] for r in v),
                   "rss_before_mb": statistics.median(r["rss_before_mb"] for r in v)} for k, v in runs.items()}
    print(f"source={args.source} checkins={runs['raw'][0]['checkins']:,} "
          f"processed file={runs['raw'][0]['file_mb']:.1f} MiB cpus={os.cpu_count()} repeats={args.repeats}")
    print(f"{'phase':<8}{'median s':>10}{'min s':>9}{'peak RSS MiB':>14}{'RSS before':>12}")
    for k, s in summary.items():
        print(f"{k:<8}{s['seconds_median']:>10.2f}{s['seconds_min']:>9.2f}{s['peak_rss_mb_max']:>14.0f}"
              f"{s['rss_before_mb']:>12.0f}")
    ld = runs["raw"][0]["loading"]
    print(f"raw breakdown (1st run): load {ld['seconds_load']:.2f} s, protocol {ld['seconds_split']:.2f} s")
    atomic_write_json(args.out, {"benchmark": "data_prepare", "source": args.source, "load_kw": load_kw,
                                 "python": sys.version.split()[0], "platform": platform.platform(),
                                 "cpus": os.cpu_count(), "summary": summary, "runs": runs})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
