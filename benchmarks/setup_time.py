"""Benchmark: set-up time of one run before its first training step.

Times :func:`stgnn.recipes.run_one` for a row of a results table (default: the NYC table's
STGNN) from its call to the model's first ``loss`` call: loading the cached split, building what
the model consumes (graph, snapshots, text vectors, statistics), building the model and the
training loop's own preparation. The first ``loss`` call stops the run (nothing is trained).
Each phase is then timed alone. Both wall and CPU time are reported: on a shared machine the CPU
time (all threads of this process) is the comparable number.

    python benchmarks/setup_time.py                      # NYC STGNN row, 3 repeats
    python benchmarks/setup_time.py --row STGNN --repeats 5 --out results/bench/setup_time.json

Run it on an otherwise idle machine for numbers worth recording; the JSON notes the thread
count and CPU count.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class _FirstStep(Exception):
    """Raised by the patched ``loss`` to end the run at its first training step."""


def _config(table: str, row: str, overrides: list[str]) -> Any:
    from stgnn import recipes

    try:  # a row with a prior gets the reference's default options: the same setup work as tuned ones
        return recipes.row_config(table, row, overrides=overrides)
    except ValueError as e:
        raise SystemExit(str(e)) from None


def _clock() -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds over all threads): CPU time is the number that
    holds on a shared machine, where wall time also counts the other jobs' turns."""
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float], prefix: str) -> dict[str, float]:
    now = _clock()
    return {f"{prefix}_wall_s": now[0] - t[0], f"{prefix}_cpu_s": now[1] - t[1]}


def measure(cfg: Any) -> dict[str, float]:
    """Wall and CPU seconds from ``run_one``'s call to the first ``loss`` call, then of its phases
    measured alone: loading the split, building the model's inputs, building the model."""
    from stgnn import recipes
    from stgnn.registry import build_model, resolve_model

    cls = resolve_model(cfg.model)
    real_loss = cls.loss
    first: dict[str, float] = {}

    def loss(self, batch):  # noqa: ANN001 - patched method
        first.update(_since(t0, "to_first_step"))
        raise _FirstStep()

    recipes.clear_caches()
    cls.loss = loss
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = _clock()
            try:
                recipes.run_one(cfg, 0, Path(tmp) / "run")
            except _FirstStep:
                pass
    finally:
        cls.loss = real_loss
    if not first:
        raise SystemExit(f"{cfg.model} never reached a training step (not trainable?)")

    recipes.clear_caches()
    t = _clock()
    split = recipes.load_split(cfg)
    first.update(_since(t, "split_load"))
    t = _clock()
    inputs = recipes.run_inputs(cfg, split)
    first.update(_since(t, "inputs"))
    t = _clock()
    build_model(cfg.model, inputs, **cfg.model_kwargs)
    first.update(_since(t, "model"))
    recipes.clear_caches()
    return first


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", default="nyc")
    p.add_argument("--row", default="STGNN")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None, help="JSON output path")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = p.parse_args(argv)
    cfg = _config(args.table, args.row, ["train.progress=false", "train.tensorboard=false", *args.overrides])
    measure(cfg)  # warm-up: builds the split cache and imports everything once
    runs = [measure(cfg) for _ in range(args.repeats)]
    import torch

    summary = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"{args.table}/{args.row} ({cfg.model}), median of {args.repeats} (torch threads "
          f"{torch.get_num_threads()}, {os.cpu_count()} CPUs)")
    print("| phase | seconds |\n|---|---|")
    for k, v in summary.items():
        print(f"| {k} | {v:.2f} |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"table": args.table, "row": args.row, "model": cfg.model,
                                              "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                                              "runs": runs, "median": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
