"""Benchmark: build the NYC heterogeneous graph (target < 30 s on 2 cores) and print its stats.

Reads the benchmark NYC file (``$STGNN_DATA_DIR/foursquare_nyc/nyc_filtered_tsmc2014.txt.gz``),
applies the default protocol, then times

* ``static``: coordinate encoding, POI kNN and grid regions (once per split);
* ``build``: :func:`~stgnn.graph.hetero.build_hetero_graph` from scratch (static included),
  best and median of ``--repeats``;
* ``edges_only``: the same with the static parts reused (what each snapshot costs);
* ``snapshots``: weekly cumulative snapshots of the training period.

Prints a table, the graph statistics (:func:`~stgnn.graph.stats.graph_stats`) and JSON;
``--plot-dir`` also writes the POI maps.

    STGNN_DATA_DIR=/work/shared/data python benchmarks/graph_build.py --out results/bench/graph_build.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

TARGET_S = 30.0


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="TSMC2014 file (default: the NYC file under STGNN_DATA_DIR)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--knn-k", type=int, default=10)
    ap.add_argument("--cell-km", type=float, default=1.0)
    ap.add_argument("--snapshot-days", type=float, default=7.0)
    ap.add_argument("--plot-dir", default=None, help="write POI maps (category, region) here")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)

    import torch

    from stgnn.data.protocol import ProtocolConfig, make_split
    from stgnn.data.sources.foursquare import load_tsmc2014
    from stgnn.graph.hetero import build_hetero_graph, static_parts
    from stgnn.graph.snapshots import make_snapshots
    from stgnn.graph.stats import format_stats, graph_stats, plot_pois

    path = args.data or os.path.join(os.environ.get("STGNN_DATA_DIR", "data"), "foursquare_nyc",
                                     "nyc_filtered_tsmc2014.txt.gz")
    if not Path(path).is_file():
        print(f"{path}: not found; set STGNN_DATA_DIR to the folder holding foursquare_nyc/ or pass --data",
              file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    table = load_tsmc2014(path)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    split = make_split(table, ProtocolConfig())
    split_s = time.perf_counter() - t0

    kw = dict(knn_k=args.knn_k, region_cell_km=args.cell_km)
    static_t, static = _timed(lambda: static_parts(split, **kw), args.repeats)
    build_t, graph = _timed(lambda: build_hetero_graph(split, **kw), args.repeats)
    edges_t, _ = _timed(lambda: build_hetero_graph(split, static=static), args.repeats)
    snap_t, snaps = _timed(lambda: make_snapshots(split, args.snapshot_days, args.snapshot_days, **kw), 1)

    stats = graph_stats(graph, poi_names=list(split.poi_ids))
    rows = {
        "load_s": load_s, "split_s": split_s,
        "static_s_best": min(static_t), "build_s_best": min(build_t),
        "build_s_median": statistics.median(build_t), "edges_only_s_best": min(edges_t),
        "snapshots_s": snap_t[0], "num_snapshots": len(snaps),
    }
    print(f"{split!r}")
    for k, v in rows.items():
        print(f"{k:<20} {v:>10.3f}" if isinstance(v, float) else f"{k:<20} {v:>10}")
    ok = rows["build_s_median"] < TARGET_S
    print(f"build target < {TARGET_S:g} s: {'met' if ok else 'MISSED'}")
    print()
    print(format_stats(stats))
    if args.plot_dir:
        for color_by in ("category", "region"):
            plot_pois(split, Path(args.plot_dir) / f"{split.name}_pois_{color_by}.png", color_by=color_by,
                      region_cell_km=args.cell_km)
    result = {
        "benchmark": "graph_build", "data": str(path), "split": repr(split), "split_fingerprint": split.fingerprint(),
        "knn_k": args.knn_k, "cell_km": args.cell_km, "repeats": args.repeats,
        "times": {k: round(v, 4) if isinstance(v, float) else v for k, v in rows.items()},
        "target_s": TARGET_S, "target_met": ok,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "graph_stats": stats,
        "python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
        "loadavg_1m": os.getloadavg()[0],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "graph_stats"}, indent=2))
    if args.out:
        from stgnn.utils.io import atomic_write_json

        atomic_write_json(args.out, result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
