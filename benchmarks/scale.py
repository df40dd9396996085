"""Benchmark: how cost grows with the data, from 10^5 to 10^7 synthetic check-ins.

For each size ``N`` (users = POIs = N / 100 over 27 days of planted routines, the vectorized
synthetic engine) two fresh processes run, so each peak RSS is its own:

1. ``generate``: the check-ins, written as a Parquet file (a user's own big table);
2. ``measure``: ``prepare`` from that file (read, validate, protocol, cache write), ``prepare``
   again (cache hit), the model built for the split (graph included; by default the STGNN of the
   NYC table, with its size-dependent defaults: sampled graph above 2 M edges, sampled negatives
   above 20,000 POIs, no (P, P) distance table above 20,000 POIs), a fixed training budget
   through :func:`stgnn.train.fit` (one epoch over ``--train-samples`` training samples, a
   ``--val-samples`` validation), and full-ranking evaluation of ``--eval-samples`` test samples
   over all POIs (chunked: memory does not grow with the number of samples).

It prints a table and the fitted exponent ``b`` of ``cost ~ N^b`` between consecutive sizes and
over all of them (training and evaluation use fixed sample budgets, so their exponents say how
the cost of one sample grows with the data), and writes JSON to ``benchmarks/results/scale/``.

    python benchmarks/scale.py                                  # 1e5 1e6 1e7, 1 thread, CPU
    python benchmarks/scale.py --sizes 1e5 1e6 --threads 2
    python benchmarks/scale.py --ddp 2                          # the same under torchrun, 2 Gloo ranks
    python benchmarks/scale.py --device cuda --amp bf16         # 1 GPU; --ddp K for K GPUs (NCCL)
    python benchmarks/scale.py --sizes 1e6 1e7 --env MALLOC_MMAP_MAX_=0 --env MALLOC_TRIM_THRESHOLD_=68719476736 \
        --env ARROW_DEFAULT_MEMORY_POOL=system --out benchmarks/results/scale/single_cpu_heap.json

Kernel time: at 10^7 rows a column is ~80 MB, above glibc's largest mmap threshold (32 MB), so
every temporary array is mapped fresh and page-faulted in, then unmapped (``prepare_sys_s``); at
10^6 the same arrays are reused from the heap. The last command keeps them in the heap (glibc's
and Arrow's allocators) to show that part apart from the code's own cost. ``prepare`` hashes each
text column once and writes the cache streamed into its file; a cache hit checks and reads the
file array by array (no whole-file copy), so ``cache_load_s`` is one read of the arrays.

Memory safety: before each size the parent checks ``MemAvailable`` against an estimate of the
peak (``--gb-per-1e7``, measured 2026-11-30) plus ``--headroom-gb`` and refuses the size
otherwise (``--force`` overrides). Nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAYS = 27                   # ~3.76 check-ins per user-day: N / 100 users give N check-ins
# the STGNN of the NYC results table (experiments/reproduce_nyc/table.yaml): one static graph layer.
# The class default (two layers) samples two hops around a step's ~10^4 POIs: over 9 GB for one
# step at 10^7 check-ins (measured), so it is not what this benchmark runs by default.
TABLE_STGNN = {"graph_layers": 1, "graph": "static"}
COLUMNS = {"user": "user", "item": "poi", "time": "ts", "lat": "lat", "lon": "lon", "category": "category",
           "text": "poi_text", "tz": "tz_offset_min"}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _available_gb() -> float:
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) for line in f}
    return info["MemAvailable"] / 2**20


# ---------------------------------------------------------------------------- stages (child processes)
def stage_generate(n: int, work: Path) -> dict[str, Any]:
    """Generate ``n`` check-ins and write them as Parquet (``work/checkins.parquet``)."""
    from stgnn.data.sources.synthetic import generate

    t0 = time.perf_counter()
    table = generate(num_users=n // 100, num_pois=n // 100, days=DAYS, seed=0, engine="vectorized")
    seconds = time.perf_counter() - t0
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / ".checkins.parquet.tmp"
    table.df.to_parquet(tmp, index=False)
    os.replace(tmp, work / "checkins.parquet")
    return {"checkins": len(table), "users": table.num_users, "pois": table.num_pois,
            "generate_s": round(seconds, 2), "parquet_mb": round((work / "checkins.parquet").stat().st_size / 2**20, 1),
            "generate_peak_rss_mb": round(_peak_mb())}


def _budget(split: Any, train: int, val: int, test: int, seed: int = 0) -> Any:
    """``split`` with a fixed sample budget: random subsets of its train/val/test samples."""
    import dataclasses

    import numpy as np

    rng = np.random.default_rng(seed)
    pick = {k: np.sort(rng.choice(v, size=min(m, len(v)), replace=False))
            for (k, v), m in zip(sorted(split.samples.items()), (test, train, val))}
    return dataclasses.replace(split, samples=pick)


class _Clock:
    """Wall and process CPU seconds of the calls made through :meth:`wrap` (CPU time counts
    every thread of this process and is what a loaded, shared machine distorts least)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []

    def wrap(self, name: str, fn: Any) -> Any:
        def timed(*a: Any, **kw: Any) -> Any:
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                self.calls.append((name, time.perf_counter() - w, time.process_time() - c))
        return timed

    def total(self, name: str) -> tuple[float, float]:
        got = [(w, c) for n, w, c in self.calls if n == name]
        return sum(w for w, _ in got), sum(c for _, c in got)


def stage_measure(n: int, work: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    """Prepare, build, train a budget and evaluate; returns the row (rank 0 only under DDP).

    Training time is that of the fit loop's training epoch (its ``_train_epoch``, timed by
    wrapping it): the optimisation of the training budget alone, without evaluation.
    """
    import torch

    import stgnn.train.loop as loop
    from stgnn.config import TrainConfig
    from stgnn.data.dataset import prepare
    from stgnn.registry import build_for_split
    from stgnn.train import distributed as dist
    from stgnn.train.seed import seed_everything

    torch.set_num_threads(args.threads)
    dist.setup(args.device)
    rank = dist.rank()
    spec = {"path": str(work / "checkins.parquet"), "columns": COLUMNS, "time_unit": "s"}
    root = work / "root"
    row: dict[str, Any] = {"n": n}
    w0, c0 = time.perf_counter(), time.process_time()
    s0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    if rank == 0:  # one rank builds the cache, the others read it
        prepare(spec, root=root, force_reload=True)
        row["prepare_s"] = round(time.perf_counter() - w0, 2)
        row["prepare_cpu_s"] = round(time.process_time() - c0, 2)
        # of which in the kernel (page faults of fresh allocations, file writes)
        row["prepare_sys_s"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_stime - s0, 2)
        row["prepare_peak_rss_mb"] = round(_peak_mb())
    dist.barrier()
    w0 = time.perf_counter()
    split = prepare(spec, root=root)
    row["cache_load_s"] = round(time.perf_counter() - w0, 3)
    row.update(checkins=split.num_checkins, users=split.num_users, pois=split.num_pois,
               train_samples_total=len(split.samples["train"]), test_samples_total=len(split.samples["test"]))
    bsplit = _budget(split, args.train_samples, args.val_samples, args.eval_samples)
    del split

    seed_everything(0, deterministic=False)
    kwargs = json.loads(args.model_kwargs) if args.model_kwargs else {}
    w0, c0 = time.perf_counter(), time.process_time()
    model = build_for_split(args.model, bsplit, **kwargs)  # inputs (graph, tables) + model
    row["build_s"], row["build_cpu_s"] = round(time.perf_counter() - w0, 2), round(time.process_time() - c0, 2)
    row["model"] = {"name": args.model, "kwargs": kwargs, "params": sum(p.numel() for p in model.parameters())}
    for k in ("sampler", "num_sampled", "has_dist_table"):  # what STGNN chose for this size
        if hasattr(model, k):
            row["model"][k] = type(getattr(model, k)).__name__ if k == "sampler" else getattr(model, k)
    cfg = TrainConfig(epochs=1, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, patience=0,
                      schedule="none", device=args.device, amp=args.amp, num_threads=args.threads,
                      progress=False, tensorboard=False, deterministic=False, seed=0)
    clock = _Clock()
    loop.evaluate = clock.wrap("eval", loop.evaluate)
    loop._train_epoch = clock.wrap("train", loop._train_epoch)
    hist = loop.fit(model, bsplit, cfg, None)
    train_w, train_c = clock.total("train")
    test_w, test_c = clock.calls[-1][1:]  # fit's last evaluation is the test one
    row["train_s"], row["train_cpu_s"] = round(train_w, 3), round(train_c, 3)
    budget = len(bsplit.samples["train"])
    row["train_s_per_1e5"] = round(train_w * 1e5 / budget, 1)
    row["train_cpu_s_per_1e5"] = round(train_c * 1e5 / budget, 1)
    row["eval_s"], row["eval_cpu_s"] = round(test_w, 3), round(test_c, 3)
    row["eval_samples"] = len(bsplit.samples["test"])
    row["test"] = {k: round(v, 4) for k, v in hist.test_metrics.items() if k in ("Acc@1", "Acc@10", "MRR")}
    peaks = dist.gather_object(round(_peak_mb()))
    row["peak_rss_mb"] = max(peaks)
    row["peak_rss_mb_per_rank"] = peaks
    row["world_size"] = dist.world_size()
    dist.barrier()  # nothing in flight between the ranks, then leave the group before exiting
    dist.cleanup()
    return row if rank == 0 else None


# ---------------------------------------------------------------------------- parent
def _child(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode or not lines:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {res.returncode}):\n{tail}")
    return json.loads(lines[-1])


def exponents(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """``{key: {"1e5-1e6": b, ..., "all": b}}``: slopes of log(cost) on log(check-ins)."""
    out: dict[str, dict[str, float]] = {}
    for key in keys:
        pts = [(math.log(r["checkins"]), math.log(r[key])) for r in rows if r.get(key)]
        if len(pts) < 2:
            continue
        res = {}
        for (x0, y0), (x1, y1), r0, r1 in zip(pts, pts[1:], rows, rows[1:]):
            res[f"{_size(r0['n'])}-{_size(r1['n'])}"] = round((y1 - y0) / (x1 - x0), 3)
        mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
        res["all"] = round(sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts), 3)
        out[key] = res
    return out


def _size(n: int) -> str:
    e = int(round(math.log10(n)))
    return f"1e{e}" if 10 ** e == n else str(n)


def _print_table(rows: list[dict[str, Any]], exps: dict[str, dict[str, float]], title: str) -> None:
    cols = [("checkins", "check-ins", "{:,}"), ("pois", "POIs", "{:,}"), ("generate_s", "gen s", "{}"),
            ("prepare_s", "prepare s", "{}"), ("prepare_cpu_s", "(CPU)", "{}"), ("cache_load_s", "cache s", "{}"),
            ("build_s", "build s", "{}"), ("train_s_per_1e5", "train s/1e5", "{}"), ("train_cpu_s_per_1e5", "(CPU)", "{}"),
            ("eval_s", "eval s", "{}"), ("eval_cpu_s", "(CPU)", "{}"),
            ("prepare_peak_rss_mb", "prep RSS MB", "{:,}"), ("peak_rss_mb", "peak RSS MB", "{:,}")]
    print(f"\n{title}")
    print(" | ".join(h for _, h, _ in cols))
    for r in rows:
        print(" | ".join(fmt.format(r[k]) if r.get(k) is not None else "-" for k, _, fmt in cols))
    print("\nexponent b of cost ~ N^b:")
    for k, v in exps.items():
        print(f"  {k:<22} " + "  ".join(f"{p}: {b}" for p, b in v.items()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["1e5", "1e6", "1e7"], help="check-in counts")
    p.add_argument("--model", default="stgnn")
    p.add_argument("--model-kwargs", default=json.dumps(TABLE_STGNN),
                   help="JSON keyword arguments of the model (default: the NYC table's STGNN row)")
    p.add_argument("--train-samples", type=int, default=10_240, help="training budget (samples, one epoch)")
    p.add_argument("--val-samples", type=int, default=500)
    p.add_argument("--eval-samples", type=int, default=2_000, help="test samples ranked over all POIs")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--eval-batch-size", type=int, default=1024)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--device", default="cpu", help="cpu, cuda (one GPU per rank under --ddp)")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"], help="autocast (CUDA only)")
    p.add_argument("--ddp", type=int, default=0, help="run the measure stage under torchrun with this many ranks")
    p.add_argument("--baseline", default=None, help="JSON of a single-process run, for the --ddp speed-up")
    p.add_argument("--work", default=None, help="folder for the generated files (default: a temp folder)")
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--gb-per-1e7", type=float, default=6.0, help="expected peak GiB of one 1e7 process")
    p.add_argument("--headroom-gb", type=float, default=6.0)
    p.add_argument("--force", action="store_true", help="run a size even when memory looks short")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/scale/<mode>.json)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment of the measured processes, e.g. glibc's MALLOC_MMAP_MAX_=0 (recorded in the JSON)")
    p.add_argument("--stage", choices=["generate", "measure"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--checkins", type=int, default=0, help=argparse.SUPPRESS)  # not --n: torchrun would take it for --nnodes
    args = p.parse_args(argv)

    if args.device.startswith("cuda") or args.amp != "none":
        import torch

        if not torch.cuda.is_available():
            p.error(f"--device {args.device} / --amp {args.amp} need a CUDA device; none is visible here")
    if args.stage:
        work = Path(args.work)
        row = stage_generate(args.checkins, work) if args.stage == "generate" else stage_measure(args.checkins, work, args)
        if row is not None:
            print(json.dumps(row), flush=True)
        return 0

    sizes = [int(float(s)) for s in args.sizes]
    work_root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="stgnn_scale_"))
    extra_env = dict(kv.split("=", 1) for kv in args.env)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT), **extra_env}
    mode = f"ddp{args.ddp}" if args.ddp else "single"
    load = os.getloadavg()
    info = {"python": platform.python_version(), "cpus": os.cpu_count(), "threads_per_process": args.threads,
            "device": args.device, "amp": args.amp, "mode": mode, "env": extra_env, "load_avg_at_start": [round(x, 2) for x in load],
            "budgets": {"train_samples": args.train_samples, "val_samples": args.val_samples,
                        "eval_samples": args.eval_samples, "batch_size": args.batch_size},
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"scale benchmark ({mode}, {args.threads} thread(s)/process, load average {load[0]:.1f} on "
          f"{os.cpu_count()} cores); files under {work_root}", flush=True)
    rows: list[dict[str, Any]] = []
    try:
        for n in sizes:
            need = args.gb_per_1e7 * max(n / 1e7, 0.05) * max(args.ddp, 1) + args.headroom_gb
            if _available_gb() < need and not args.force:
                print(f"  {_size(n)}: skipped, {_available_gb():.1f} GiB available < {need:.1f} GiB needed "
                      "(expected peak + headroom); retry when the machine is quieter", flush=True)
                continue
            work = work_root / f"n{n}"
            base = [sys.executable, str(Path(__file__).resolve()), "--checkins", str(n), "--work", str(work)]
            opts = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                    if k in ("model", "model_kwargs", "train_samples", "val_samples", "eval_samples", "batch_size",
                             "eval_batch_size", "threads", "device", "amp")]
            row = _child(base + ["--stage", "generate"], env) if not (work / "checkins.parquet").is_file() else {}
            measure = base + ["--stage", "measure"] + opts
            if args.ddp:
                measure = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={args.ddp}"] + measure[1:]
            row.update(_child(measure, env))
            row["load_avg"] = [round(x, 2) for x in os.getloadavg()]
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work_root, ignore_errors=True)
    keys = ("prepare_s", "prepare_cpu_s", "prepare_sys_s", "cache_load_s", "build_cpu_s", "train_s_per_1e5", "train_cpu_s_per_1e5",
            "eval_s", "eval_cpu_s", "prepare_peak_rss_mb", "peak_rss_mb")
    exps = exponents(rows, keys)
    result: dict[str, Any] = {"info": info, "rows": rows, "exponents": exps}
    if args.ddp and args.baseline:
        base_rows = {r["n"]: r for r in json.loads(Path(args.baseline).read_text())["rows"]}
        result["speedup_train"] = {_size(r["n"]): round(base_rows[r["n"]]["train_s"] / r["train_s"], 2)
                                   for r in rows if r["n"] in base_rows and r.get("train_s")}
    _print_table(rows, exps, f"{args.model}, {mode}, {args.threads} thread(s)/process, device {args.device}")
    if "speedup_train" in result:
        print(f"training speed-up over {args.baseline}: {result['speedup_train']}")
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / "scale" / f"{mode}_{args.device}.json"
    from stgnn.utils.io import atomic_write_json

    atomic_write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
