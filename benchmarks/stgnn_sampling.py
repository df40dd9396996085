"""Benchmark: STGNN training steps with the full-batch graph encoder vs neighbour sampling.

On a seeded synthetic dataset large enough that the graph dominates, each mode runs in its own
subprocess (so peak RSS is per mode) and reports seconds per training step, the number of POIs
the step encodes, the seconds to encode every node for evaluation, and peak RSS.

    python benchmarks/stgnn_sampling.py --users 3000 --pois 30000 --out r.json
    python benchmarks/stgnn_sampling.py --device cuda --users 20000 --pois 100000
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODES = {  # name -> STGNN keyword arguments
    "full": {"sampling": "full"},
    "sampled": {"sampling": "sampled", "fanout": [10]},
    "sampled+neg": {"sampling": "sampled", "fanout": [10], "num_sampled": 2048},
}


def run_mode(args: argparse.Namespace) -> dict:
    import torch

    from stgnn.data.batch import SampleLoader
    from stgnn.data.split import Split
    from stgnn.graph.hetero import build_hetero_graph
    from stgnn.models.stgnn import STGNN
    from stgnn.train.loop import peak_rss_mb

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    split = Split.load(args.split)
    t0 = time.perf_counter()
    graph = build_hetero_graph(split, parts=(0,))
    t_graph = time.perf_counter() - t0
    model = STGNN(split.num_users, split.num_pois, graph_layers=1, **MODES[args.mode])
    model.attach_coordinates(torch.as_tensor(split.poi_lat), torch.as_tensor(split.poi_lon))
    model.attach_graph(graph)
    model.to(args.device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loader = SampleLoader(split, "train", args.batch_size, shuffle=True, max_len=32, hist_len=64)
    it = iter(loader)
    times, encoded = [], []
    for step in range(args.steps + 1):
        b = next(it).to(args.device)
        if model.sampler is not None:
            encoded.append(int(model._needed_nodes(b)["poi"].numel()))
        t = time.perf_counter()
        opt.zero_grad()
        model.loss(b).backward()
        opt.step()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        if step:  # the first step warms up
            times.append(time.perf_counter() - t)
    model.eval()
    t = time.perf_counter()
    with torch.no_grad():
        model.encode_graph()
    t_eval = time.perf_counter() - t
    return {"mode": args.mode, "kwargs": MODES[args.mode], "device": args.device, "threads": args.threads,
            "users": split.num_users, "pois": split.num_pois, "train_samples": int(len(split.samples["train"])),
            "graph_edges": int(graph.num_edges), "graph_seconds": round(t_graph, 1),
            "batch_size": args.batch_size, "seconds_per_step": round(sum(times) / len(times), 3),
            "pois_encoded_per_step": round(sum(encoded) / len(encoded)) if encoded else split.num_pois,
            "eval_encode_seconds": round(t_eval, 2), "peak_rss_mb": round(peak_rss_mb())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=3000)
    p.add_argument("--pois", type=int, default=30000)
    p.add_argument("--days", type=int, default=56)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--mode", default=None, help=argparse.SUPPRESS)  # one mode, in a subprocess
    p.add_argument("--split", default=None, help=argparse.SUPPRESS)  # its data, saved by the parent
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.mode:
        print(json.dumps(run_mode(args)))
        return 0
    import tempfile

    from stgnn.data.protocol import ProtocolConfig, make_split
    from stgnn.data.sources.synthetic import generate

    t0 = time.perf_counter()
    split = make_split(generate(num_users=args.users, num_pois=args.pois, days=args.days, seed=0),
                       ProtocolConfig(min_user_checkins=5, min_poi_checkins=3))
    print(f"data: {split} in {time.perf_counter() - t0:.1f} s", flush=True)
    tmp = tempfile.TemporaryDirectory()
    split_path = Path(tmp.name) / "split"
    split.save(split_path)
    rows = []
    for mode in args.modes:
        cmd = [sys.executable, __file__, "--mode", mode, "--split", str(split_path)] + [
            f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k in
            ("users", "pois", "days", "batch_size", "steps", "threads", "device")]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            rows.append({"mode": mode, "error": res.stderr.strip().splitlines()[-1:]})
        else:
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'mode':<12} {'edges':>10} {'s/step':>8} {'POIs encoded':>13} {'eval encode s':>14} {'peak RSS MB':>12}")
    for r in rows:
        if "error" in r:
            print(f"{r['mode']:<12} failed: {r['error']}")
            continue
        print(f"{r['mode']:<12} {r['graph_edges']:>10,} {r['seconds_per_step']:>8} {r['pois_encoded_per_step']:>13,} "
              f"{r['eval_encode_seconds']:>14} {r['peak_rss_mb']:>12,}")
    if args.out:
        from stgnn.utils.io import atomic_write_json

        atomic_write_json(Path(args.out), {"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
