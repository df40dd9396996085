"""Benchmark: serving latency in-process and over HTTP on loopback.

1. **In-process** ``Recommender.recommend(user, k=10)`` (store read, live batch, model, top-k,
   explanations) for every user of the run's dataset (NYC: 1,073 users), at the start of the test
   period, ``--passes`` times, with 1 and 2 torch threads; also without explanations.
2. **HTTP** (``--http-seconds`` > 0): ``stgnn serve`` in its own process on 127.0.0.1, the bounded
   open-loop load generator (:mod:`stgnn.serve.loadgen`) at ``--rate`` requests/s for
   ``--http-seconds``, 80% ``GET /recommend`` / 20% ``POST /checkins`` (durable writes).

The served model memoises the sequence encoder's output per current trajectory, so the first
pass (with explanations) is mostly first-time users and later passes are returning ones: the table
shows both passes' p50 beside the pooled numbers.

Prints a table and writes JSON (``--out``, default ``benchmarks/results/serve/latency_<dataset>.json``)
with the machine's conditions (cores, load average before/after each part). Latency on a shared
machine depends on its load: the numbers are only as quiet as the machine was.

    python benchmarks/serve.py --run results/reproduce_nyc_fast/runs/STGNN/seed_0
    python benchmarks/serve.py --run ... --http-seconds 0          # in-process only
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _pct(ms: np.ndarray) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 3), "p90": round(float(np.percentile(ms, 90)), 3),
            "p99": round(float(np.percentile(ms, 99)), 3), "mean": round(float(ms.mean()), 3),
            "max": round(float(ms.max()), 3), "n": int(len(ms))}


def in_process(run: str, store_path: Path, threads: list[int], passes: int, at: int) -> dict[str, Any]:
    import torch

    from stgnn.serve.recommender import Recommender
    from stgnn.serve.store import CheckinStore

    store = CheckinStore(store_path, durable=False)
    t0 = time.perf_counter()
    rec = Recommender.from_run(run, store)
    load_s = time.perf_counter() - t0
    users = [str(u) for u in rec.catalog.user_ids]
    gc.collect()
    gc.freeze()
    out: dict[str, Any] = {"run": str(rec.loaded.run_dir), "model": type(rec.model).__name__, "users": len(users),
                           "at": at, "load_seconds": round(load_s, 1), "by_threads": {}}
    for t in threads:
        torch.set_num_threads(t)
        for u in users[:100]:                                  # warm-up: allocator, caches
            rec.recommend(u, at, k=10)
        res: dict[str, Any] = {"load_before": _load()}
        for explain in (True, False):
            per_pass, pooled, cpu = [], [], []
            for _ in range(passes):
                ms, cms = np.empty(len(users)), np.empty(len(users))
                for i, u in enumerate(users):
                    s, c = time.perf_counter(), time.process_time()
                    rec.recommend(u, at, k=10, explain=explain)
                    ms[i] = (time.perf_counter() - s) * 1e3
                    cms[i] = (time.process_time() - c) * 1e3
                per_pass.append(_pct(ms))
                pooled.append(ms)
                cpu.append(cms)
            # CPU time of the process per request: what a request costs without waiting for a
            # core, so less sensitive to other jobs on a shared machine than the wall time
            res["with_explanations" if explain else "without_explanations"] = {
                "pooled": _pct(np.concatenate(pooled)), "cpu_ms": _pct(np.concatenate(cpu)), "passes": per_pass}
        res["load_after"] = _load()
        out["by_threads"][str(t)] = res
    store.close()
    return out


def _cpu_seconds(procs: list[Any]) -> float:
    """user + system CPU seconds of ``procs`` (psutil processes) so far."""
    total = 0.0
    for p in procs:
        t = p.cpu_times()
        total += t.user + t.system
    return total


def http_load(run: str, store_path: Path, rate: float, seconds: float, connections: int,
              threads: int, workers: int = 1) -> dict[str, Any]:
    from stgnn.serve.loadgen import run_load
    from stgnn.serve.store import CheckinStore

    with CheckinStore(store_path) as s:
        users = [u["user"] for u in s.users(limit=2000)]
        pois = list(s.poi_keys())
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "STGNN_API_TOKEN"}
    env["STGNN_API_TOKEN"] = token = "bench-token"
    log = open(store_path.with_suffix(".log"), "wb")
    proc = subprocess.Popen([sys.executable, "-m", "stgnn", "serve", "--run", run, "--store", str(store_path),
                             "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads),
                             "--workers", str(workers)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        import http.client
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stgnn serve did not start: {store_path.with_suffix('.log').read_text()[-2000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200 and (
                        workers == 1 or "workers (pids" in store_path.with_suffix(".log").read_text()):
                    break
                time.sleep(0.5)
            except OSError:
                time.sleep(0.5)
        import psutil

        # the supervisor and its workers (--workers > 1): their CPU together is the server's cost
        server = [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(recursive=True)
        before, cpu0, each0 = _load(), _cpu_seconds(server), [_cpu_seconds([p]) for p in server]
        res = run_load(f"http://127.0.0.1:{port}", users, pois, rate=rate, duration_s=seconds, write_fraction=0.2,
                       connections=connections, token=token, id_prefix=f"bench-{int(time.time())}")
        cpu1 = _cpu_seconds(server)
        res["load_before"], res["load_after"] = before, _load()
        # the server's own CPU per answered request: its cost, whatever else the machine runs
        busy = cpu1 - cpu0
        # per process (supervisor first): how evenly the kernel spread the connections over workers
        res["server_cpu_seconds_by_process"] = [round(_cpu_seconds([p]) - c0, 2) for p, c0 in zip(server, each0)]
        res["server_cpu_seconds"] = round(busy, 2)
        res["server_cpu_ms_per_request"] = round(1e3 * busy / max(res["completed"], 1), 3)
        res["server_threads"] = threads
        res["server_workers"] = workers
        return res
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="results/reproduce_nyc_fast/runs/STGNN/seed_0")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--at", default=None, help="query time, UTC s [the split's val_end: the test period's start]")
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--http-seconds", type=float, default=60.0)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--server-threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1, help="stgnn serve --workers: server processes [1]")
    p.add_argument("--skip-in-process", action="store_true")
    p.add_argument("--note", default="", help="conditions to record (e.g. 'machine shared, 3 other jobs')")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    from stgnn.serve.loading import load_split_of_run, resolve_run_dir
    from stgnn.serve.store import CheckinStore

    run = str(resolve_run_dir(args.run))
    split = load_split_of_run(run)
    at = int(args.at) if args.at else int(split.cuts.get("val_end", split.ts.max()))
    tmp = Path(tempfile.mkdtemp(prefix="stgnn-bench-serve-"))
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "dataset": split.name,
        "machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "platform": platform.platform(), "processor": platform.processor() or platform.machine()},
        "note": args.note, "at": at}
    try:
        seeded = tmp / "seeded.sqlite"
        with CheckinStore(seeded) as s:
            s.seed_from_split(split)
        del split
        if not args.skip_in_process:
            shutil.copyfile(seeded, tmp / "inproc.sqlite")
            result["in_process"] = in_process(run, tmp / "inproc.sqlite", args.threads, args.passes, at)
        if args.http_seconds > 0:
            shutil.copyfile(seeded, tmp / "http.sqlite")
            result["http"] = http_load(run, tmp / "http.sqlite", args.rate, args.http_seconds, args.connections,
                                       args.server_threads, args.workers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    import torch
    result["machine"]["torch"] = torch.__version__
    print(f"\nServing benchmark, {result['dataset']}, {result['date']}  (cores {result['machine']['affinity']}; "
          f"{args.note or 'no note'})")
    if "in_process" in result:
        ip = result["in_process"]
        print(f"\nIn-process recommend(user, k=10): {ip['model']} from {ip['run']}, {ip['users']} users x "
              f"{args.passes} passes at t={ip['at']}")
        # the first pass with explanations (run first) asks most users for the first time: the
        # sequence encoder's memo is cold for them (stgnn.serve.memo); later passes ask again with
        # nothing new, as a returning user does
        print("| torch threads | explanations | p50 ms | p90 ms | p99 ms | mean ms | CPU ms p50 / p99 | "
              "p50 ms first / last pass | load avg before/after |")
        print("|---|---|---|---|---|---|---|---|---|")
        for t, r in ip["by_threads"].items():
            for key, label in (("with_explanations", "yes"), ("without_explanations", "no")):
                q, c, ps = r[key]["pooled"], r[key]["cpu_ms"], r[key]["passes"]
                print(f"| {t} | {label} | {q['p50']:.2f} | {q['p90']:.2f} | {q['p99']:.2f} | {q['mean']:.2f} | "
                      f"{c['p50']:.2f} / {c['p99']:.2f} | {ps[0]['p50']:.2f} / {ps[-1]['p50']:.2f} | "
                      f"{r['load_before'][0]} / {r['load_after'][0]} |")
    if "http" in result:
        h = result["http"]
        la = h["latency_ms"]
        print(f"\nHTTP on 127.0.0.1: {h['target_rate']:.0f} req/s target for {h['duration_s']:.0f} s, "
              f"{100 * (1 - h['write_fraction']):.0f}% recommend / {100 * h['write_fraction']:.0f}% check-in writes, "
              f"{h['connections']} connections, {h.get('server_workers', 1)} server process(es); achieved {h['achieved_rate']} req/s; {h['completed']} answered, "
              f"{h['errors']} errors, {h['unanswered']} unanswered")
        print("| requests | p50 ms | p90 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|")
        for k in ("all", "recommend", "checkin"):
            q = la[k]
            if q["p50"] is not None:
                print(f"| {k} | {q['p50']:.2f} | {q['p90']:.2f} | {q['p99']:.2f} | {q['max']:.2f} |")
        print(f"server CPU: {h['server_cpu_ms_per_request']} ms per request; "
              f"load average before/after: {h['load_before']} / {h['load_after']}")
    from stgnn.utils.io import atomic_write_json

    out = Path(args.out or f"benchmarks/results/serve/latency_{result['dataset']}.json")
    atomic_write_json(out, result)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
