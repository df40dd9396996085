"""Benchmark: training cost of each model of a results table on its real data.

For every row of ``experiments/reproduce_<table>/table.yaml`` (or ``--models``): seconds per
epoch, epochs to the best validation epoch, time to that epoch, total time and peak RSS, plus
the test Acc@1/MRR reached. Each model trains in a fresh process (so peak RSS is its own) with
the row's config and one seed. ``--from DIR`` instead reads the ``metrics.json`` files that a
finished ``stgnn reproduce`` wrote under ``DIR/runs`` (no training).

    python benchmarks/train_speed.py --models LSTM STGNN --out results/bench/train_speed.json
    python benchmarks/train_speed.py --from results/reproduce_nyc_full
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _row(name: str, model: str, m: dict[str, Any]) -> dict[str, Any]:
    sec = m["timings"]["seconds_per_epoch"] or []
    best = int(m.get("best_epoch") or 0)
    return {"name": name, "model": model, "epochs_run": len(sec), "best_epoch": best,
            "seconds_per_epoch": round(sum(sec) / len(sec), 1) if sec else None,
            "seconds_to_best": round(sum(sec[:best]), 1) if sec else None,
            "total_seconds": round(m["timings"]["total_seconds"], 1),
            "peak_rss_mb": round(m["memory"]["peak_rss_mb"], 0), "device": m.get("device"),
            "test_acc1": round(m["test"]["Acc@1"], 4), "test_mrr": round(m["test"]["MRR"], 4)}


def _train_one(table: str, name: str, seed: int, out: str, overrides: list[str], q: Any) -> None:
    from stgnn import recipes

    cfg = recipes.row_config(table, name, seeds=[seed], overrides=overrides)  # a prior: the reference's defaults
    cfg.output_dir = out
    m = recipes.run_one(cfg, seed, Path(out) / name / f"seed_{seed}")
    q.put(_row(name, cfg.model, m))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", default="nyc")
    p.add_argument("--models", nargs="+", default=None, help="table rows to train (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from", dest="from_dir", default=None, help="read a finished reproduce folder instead")
    p.add_argument("--runs", default="results/bench/train_speed_runs")
    p.add_argument("--out", default=None, help="JSON output path")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = p.parse_args(argv)

    rows: list[dict[str, Any]] = []
    if args.from_dir:
        for metrics in sorted(Path(args.from_dir).glob("runs/*/seed_*/metrics.json")):
            m = json.loads(metrics.read_text())
            name = metrics.parent.parent.name
            if args.models and name not in args.models:
                continue
            r = _row(name, name, m)
            r["seed"] = metrics.parent.name.removeprefix("seed_")
            rows.append(r)
    else:
        from stgnn import recipes

        names = args.models or [r["name"] for r in recipes.table_spec(args.table)["models"]]
        ctx = mp.get_context("spawn")
        for name in names:
            q = ctx.Queue()
            proc = ctx.Process(target=_train_one, args=(args.table, name, args.seed, args.runs, args.overrides, q))
            proc.start()
            proc.join()
            if proc.exitcode != 0:
                rows.append({"name": name, "error": f"exit code {proc.exitcode}"})
            else:
                rows.append(q.get())
            print(json.dumps(rows[-1]), flush=True)

    cols = ("name", "seed", "epochs_run", "best_epoch", "seconds_per_epoch", "seconds_to_best", "total_seconds",
            "peak_rss_mb", "test_acc1", "test_mrr")
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "")) for c in cols))
    info = {"cpus": os.cpu_count(), "torch_threads": None}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch"] = torch.__version__
    except ImportError:
        pass
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
