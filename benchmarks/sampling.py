"""Benchmark: TemporalNeighborSampler throughput and memory on synthetic temporal graphs.

Graphs: ``homo`` has ``E`` edges over ``E / 10`` nodes; ``hetero`` is a user-POI bipartite graph
with ``E / 2`` visits and their ``E / 2`` reverse edges. Sources are uniform, destinations skewed
(``id = N * u^2``: a few hubs, like popular POIs), times uniform over one year. Each batch has
``--batch`` seeds at random nodes and random times; ``--fanout`` per hop; strategy uniform.

Each configuration runs in a fresh process, so its peak RSS (``ru_maxrss``) is its own; the RSS
of the graph alone (before the sampler is built) is reported beside it. On CUDA the peak of
``torch.cuda.max_memory_allocated`` is reported too.

    python benchmarks/sampling.py --edges 1e6 1e7 --out results/bench/sampling.json
    python benchmarks/sampling.py --device cuda --edges 1e6 1e7 1e8
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from typing import Any

YEAR_S = 365 * 86_400


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _skewed(n: int, size: int, gen, device) -> Any:
    import torch

    u = torch.rand(size, generator=gen, device=device)
    return (u * u * n).long().clamp_(max=n - 1)


def _graph(kind: str, num_edges: int, device: str, seed: int):
    import torch
    from torch_geometric.data import Data, HeteroData

    gen = torch.Generator(device=device).manual_seed(seed)
    if kind == "homo":
        n = max(num_edges // 10, 2)
        src = torch.randint(0, n, (num_edges,), generator=gen, device=device)
        dst = _skewed(n, num_edges, gen, device)
        t = torch.randint(0, YEAR_S, (num_edges,), generator=gen, device=device)
        return Data(edge_index=torch.stack([src, dst]), time=t, num_nodes=n), None, n
    half = num_edges // 2
    n_user, n_poi = max(half // 20, 2), max(half // 20, 2)
    user = torch.randint(0, n_user, (half,), generator=gen, device=device)
    poi = _skewed(n_poi, half, gen, device)
    t = torch.randint(0, YEAR_S, (half,), generator=gen, device=device)
    g = HeteroData()
    g["user"].num_nodes, g["poi"].num_nodes = n_user, n_poi
    g["user", "visits", "poi"].edge_index, g["user", "visits", "poi"].time = torch.stack([user, poi]), t
    g["poi", "rev_visits", "user"].edge_index, g["poi", "rev_visits", "user"].time = torch.stack([poi, user]), t
    return g, "user", n_user


def _run(cfg: dict[str, Any], q: "mp.Queue[dict[str, Any]]") -> None:
    import torch
    from torch_geometric.sampler import NodeSamplerInput

    from stgnn.graph.sampling import TemporalNeighborSampler

    torch.set_num_threads(cfg["threads"]) if cfg["threads"] else None
    dev = cfg["device"]
    cuda = dev.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    data, seed_type, n_seed_nodes = _graph(cfg["kind"], cfg["edges"], dev, cfg["seed"])
    sync()
    rss_graph = _rss_mb()
    t0 = time.perf_counter()
    temporal = cfg["sampler"] == "temporal"
    if cfg["sampler"] == "pyg_static":
        import warnings

        from torch_geometric.sampler import NeighborSampler

        warnings.filterwarnings("ignore")  # torch-sparse path deprecation notice
        sampler = NeighborSampler(data, cfg["fanout"])
    else:
        sampler = TemporalNeighborSampler(data, cfg["fanout"], strategy=cfg["strategy"], seed=cfg["seed"],
                                          time_attr="time" if temporal else None, use_pyg_lib=False)
    sync()
    build_s = time.perf_counter() - t0
    gen = torch.Generator(device=dev).manual_seed(cfg["seed"] + 1)
    times, n_nodes, n_edges, n_seeds = [], 0, 0, 0
    for i in range(cfg["batches"] + 1):  # the first batch is a warm-up
        seeds = torch.randint(0, n_seed_nodes, (cfg["batch"],), generator=gen, device=dev)
        st = torch.randint(0, YEAR_S, (cfg["batch"],), generator=gen, device=dev)
        if not temporal:  # static samplers are not disjoint: seeds must be distinct
            seeds = torch.unique(seeds)
        inp = NodeSamplerInput(None, seeds, st if temporal else None, seed_type)
        sync()
        t0 = time.perf_counter()
        out = sampler.sample_from_nodes(inp)
        sync()
        if i:
            times.append(time.perf_counter() - t0)
            n_seeds += seeds.numel()
            nodes = out.node.values() if isinstance(out.node, dict) else [out.node]
            edges = out.edge.values() if isinstance(out.edge, dict) else [out.edge]
            n_nodes += sum(int(x.numel()) for x in nodes)
            n_edges += sum(int(x.numel()) for x in edges)
    total = sum(times)
    times.sort()
    med = times[len(times) // 2]
    q.put({
        **cfg,
        "build_s": round(build_s, 3),
        "batch_s_median": round(med, 5),
        "batch_s_mean": round(sum(times) / len(times), 5),
        "seeds_per_s": round(n_seeds / total, 1),
        "sampled_nodes_per_batch": n_nodes // cfg["batches"],
        "sampled_edges_per_batch": n_edges // cfg["batches"],
        "rss_graph_mb": round(rss_graph, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "loadavg_1m": round(os.getloadavg()[0], 2),  # other load on the machine skews CPU timings
    })


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--edges", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--kinds", nargs="+", default=["homo", "hetero"], choices=["homo", "hetero"])
    ap.add_argument("--samplers", nargs="+", default=["temporal"], choices=["temporal", "static", "pyg_static"],
                    help="temporal: ours with seed times (disjoint); static: ours without time; "
                         "pyg_static: PyG's NeighborSampler via torch-sparse (no time support here)")
    ap.add_argument("--fanout", nargs="+", type=int, default=[10, 5])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--strategy", default="uniform", choices=["uniform", "last"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)

    ctx = mp.get_context("spawn")
    rows = []
    grid = [(e, k, smp) for e in args.edges for k in args.kinds for smp in args.samplers]
    for e, kind, smp in grid:
        cfg = {"kind": kind, "sampler": smp, "edges": int(e), "fanout": args.fanout, "batch": args.batch,
               "batches": args.batches, "strategy": args.strategy, "device": args.device,
               "threads": args.threads, "seed": args.seed}
        q = ctx.Queue()
        p = ctx.Process(target=_run, args=(cfg, q))
        p.start()
        p.join()
        if p.exitcode != 0:
            print(f"{kind} {smp} E={int(e):,}: process failed (exit {p.exitcode})", file=sys.stderr)
            continue
        rows.append(q.get())
        r = rows[-1]
        print(f"{r['kind']:<7} {r['sampler']:<10} E={r['edges']:>12,}  build {r['build_s']:>7.2f} s  batch {r['batch_s_median'] * 1e3:>8.1f} ms"
              f"  {r['seeds_per_s']:>10,.0f} seeds/s  nodes/batch {r['sampled_nodes_per_batch']:>7,}"
              f"  peak RSS {r['peak_rss_mb']:>8,.0f} MB (graph {r['rss_graph_mb']:,.0f} MB)"
              + (f"  cuda peak {r['cuda_peak_mb']:,.0f} MB" if r["cuda_peak_mb"] is not None else "")
              + f"  threads {r['threads']}  load {r['loadavg_1m']:.1f}",
              flush=True)
    result = {"benchmark": "sampling", "device": args.device, "fanout": args.fanout, "batch": args.batch,
              "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
              "rows": rows}
    print(json.dumps(result, indent=2))
    if args.out:
        from stgnn.utils.io import atomic_write_json

        atomic_write_json(args.out, result)
    return 0 if len(rows) == len(grid) else 1


if __name__ == "__main__":
    sys.exit(main())
