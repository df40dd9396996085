"""Benchmark: RecBole's SASRec, GRU4Rec and LightGCN timed beside ours on the same NYC split.

Our NYC split (default protocol) is exported as RecBole atomic files: the sequential models get
exactly our samples (the trajectory prefix, last ``max_len`` POIs, and the target), LightGCN our
training (user, target) pairs. RecBole 1.2.1 runs in its own venv (it needs numpy<2, pandas<3,
setuptools<81 and ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``), made once by ``--setup``:

    python benchmarks/peers.py --setup        # venv in benchmarks/.peers/venv (git-ignored), CPU torch
    python benchmarks/peers.py                # 2 epochs per model, 2 threads, JSON to benchmarks/results/peers/

Every model, theirs and ours, trains the same number of epochs (``--epochs``) with the batch
size, learning rate, width and sequence length of our NYC table's row, one process each (so peak
RSS is its own), with ``--threads`` torch threads. Seconds per epoch are training only (RecBole's
``_train_epoch``; our fit loop's ``_train_epoch``), as wall and as process CPU seconds (what a
shared machine distorts least). Test Acc@1 and MRR are computed the same
way for all, on our test samples, over ALL POIs with pessimistic ties and no history masking
(``benchmarks/peers_recbole.py`` does it for RecBole's models). Two epochs is a speed
comparison, not a tuned accuracy one. Nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PEERS = ROOT / "benchmarks" / ".peers"
VENV = PEERS / "venv"
#: RecBole model -> (our table row, RecBole options mirroring that row)
PAIRS: dict[str, tuple[str, dict[str, Any]]] = {
    "SASRec": ("SASRec", {"MAX_ITEM_LIST_LENGTH": 16, "train_batch_size": 256, "learning_rate": 0.003,
                          "hidden_size": 64, "inner_size": 64, "n_layers": 2, "n_heads": 1,
                          "hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2, "loss_type": "CE",
                          "train_neg_sample_args": None}),
    "GRU4Rec": ("GRU4Rec", {"MAX_ITEM_LIST_LENGTH": 16, "train_batch_size": 256, "learning_rate": 0.003,
                            "embedding_size": 64, "hidden_size": 64, "num_layers": 1, "dropout_prob": 0.2,
                            "loss_type": "CE", "train_neg_sample_args": None}),
    "LightGCN": ("LightGCN", {"train_batch_size": 1024, "learning_rate": 0.005, "embedding_size": 64,
                              "n_layers": 1, "reg_weight": 1e-4}),
}
OURS = ("SASRec", "GRU4Rec", "LightGCN", "STGNN")


def setup_venv(venv: Path = VENV) -> None:
    """RecBole's venv: CPU torch (the wheel pip already has, via its find-links/cache) and RecBole's pins."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "torch==2.13.0", "recbole==1.2.1",
                    "numpy<2", "pandas<3", "setuptools<81", "scipy<1.12"], check=True)


# ---------------------------------------------------------------------------- export
def export_atomic(split: Any, folder: Path, max_len: int = 16) -> dict[str, int]:
    """Write ``nyc_seq`` (prefix -> target, our samples) and ``nyc_gen`` ((user, target) pairs)
    benchmark files; returns sample counts. Tokens are ``u<id>`` / ``p<id>`` of our integer ids."""
    import numpy as np

    counts = {}
    for name in ("nyc_seq", "nyc_gen"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    for part, fname in (("train", "train"), ("val", "valid"), ("test", "test")):
        t = split.samples[part]
        start = np.maximum(split.prefix_start(t), t - max_len)
        users = [f"u{u}" for u in split.user[t]]
        targets = [f"p{p}" for p in split.poi[t]]
        prefixes = [" ".join(f"p{p}" for p in split.poi[s:e]) for s, e in zip(start, t)]
        seq = ["user_id:token\titem_id_list:token_seq\titem_id:token"]
        seq += [f"{u}\t{pre}\t{tg}" for u, pre, tg in zip(users, prefixes, targets)]
        (folder / "nyc_seq" / f"nyc_seq.{fname}.inter").write_text("\n".join(seq) + "\n")
        gen = ["user_id:token\titem_id:token"] + [f"{u}\t{tg}" for u, tg in zip(users, targets)]
        (folder / "nyc_gen" / f"nyc_gen.{fname}.inter").write_text("\n".join(gen) + "\n")
        counts[part] = len(t)
    return counts


# ---------------------------------------------------------------------------- our models
def _ours(row_name: str, epochs: int, threads: int, out: str, q: Any) -> None:
    """Train our table row ``row_name`` for ``epochs`` epochs (child process)."""
    import stgnn.train.loop as loop
    from stgnn import recipes

    cfg = recipes.row_config("nyc", row_name)  # a prior: the reference's defaults (same cost)
    cfg.train = dataclasses.replace(cfg.train, epochs=epochs, patience=0, num_threads=threads, progress=False,
                                    tensorboard=False)
    cfg.output_dir = out
    epochs_timed: list[tuple[float, float]] = []

    def timed(*a: Any, **kw: Any) -> Any:
        w, c = time.perf_counter(), time.process_time()
        try:
            return train_epoch(*a, **kw)
        finally:
            epochs_timed.append((time.perf_counter() - w, time.process_time() - c))

    train_epoch, loop._train_epoch = loop._train_epoch, timed  # the epoch's training, not its validation
    m = recipes.run_one(cfg, 0, Path(out) / row_name / "seed_0")
    per_epoch = [round(w, 2) for w, _ in epochs_timed]
    cpu = [round(c, 2) for _, c in epochs_timed]
    q.put({"model": row_name, "library": "stgnn", "epochs": epochs, "threads": threads,
           "seconds_per_epoch": per_epoch, "cpu_seconds_per_epoch": cpu, "peak_rss_mb": round(m["memory"]["peak_rss_mb"]),
           "test_samples": m["num_test"],
           "test": {k: m["test"][k] for k in ("Acc@1", "Acc@10", "MRR")}})


def run_ours(name: str, epochs: int, threads: int, out: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_ours, args=(name, epochs, threads, str(out), q))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        return {"model": name, "library": "stgnn", "error": f"exit code {proc.exitcode}"}
    return q.get()


def run_recbole(model: str, data: Path, epochs: int, threads: int, venv: Path) -> dict[str, Any]:
    opts = dict(PAIRS[model][1])
    if model in ("SASRec", "GRU4Rec"):
        opts["alias_of_item_id"] = ["item_id_list"]  # prefix and target share the item vocabulary
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": str(threads)}
    cmd = [str(venv / "bin" / "python"), str(ROOT / "benchmarks" / "peers_recbole.py"), "--model", model,
           "--data", str(data), "--epochs", str(epochs), "--threads", str(threads), "--config", json.dumps(opts)]
    # in its own folder: RecBole writes log/ and log_tensorboard/ into the working directory
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PEERS)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode or not lines:
        return {"model": model, "library": "RecBole 1.2.1",
                "error": "\n".join((res.stderr or res.stdout).strip().splitlines()[-8:])}
    return json.loads(lines[-1])


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setup", action="store_true", help="create RecBole's venv and exit")
    p.add_argument("--venv", default=str(VENV))
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--recbole", nargs="*", default=list(PAIRS), help="RecBole models to run")
    p.add_argument("--ours", nargs="*", default=list(OURS), help="our table rows to run")
    p.add_argument("--limit-train", type=int, default=0, help="smoke test: export only this many training samples")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "peers" / "nyc_cpu.json"))
    args = p.parse_args(argv)
    venv = Path(args.venv)
    if args.setup:
        setup_venv(venv)
        return 0
    if args.recbole and not (venv / "bin" / "python").exists():
        p.error(f"no RecBole venv at {venv}: run `python benchmarks/peers.py --setup` first")

    from stgnn.data.dataset import prepare

    load0 = os.getloadavg()
    split = prepare("nyc", root=str(ROOT / "data"))
    if args.limit_train:
        import dataclasses

        split = dataclasses.replace(split, samples={**split.samples, "train": split.samples["train"][:args.limit_train]})
    data = PEERS / "data"
    counts = export_atomic(split, data)
    print(f"NYC split {split}: exported {counts} to {data}", flush=True)
    rows: list[dict[str, Any]] = []
    for model in args.recbole:
        rows.append(run_recbole(model, data, args.epochs, args.threads, venv))
        print(json.dumps(rows[-1]), flush=True)
    for name in args.ours:
        rows.append(run_ours(name, args.epochs, args.threads, PEERS / "runs"))
        print(json.dumps(rows[-1]), flush=True)

    ours = {r["model"]: r for r in rows if r.get("library") == "stgnn" and "error" not in r}
    print(f"\n{'model':<10} {'library':<14} {'s/epoch':>8} {'CPU s/epoch':>12} {'peak RSS MB':>12} {'Acc@1':>7} "
          f"{'MRR':>7} {'s/epoch vs ours':>16} {'CPU vs ours':>12} {'RSS vs ours':>12}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<10} {r['library']:<14} failed: {r['error'].splitlines()[-1]}")
            continue
        sec, cpu = _mean(r["seconds_per_epoch"]), _mean(r["cpu_seconds_per_epoch"])
        mine = ours.get(r["model"]) if r["library"] != "stgnn" else None
        r["ratio_vs_ours"] = None
        if mine:
            r["ratio_vs_ours"] = {"seconds_per_epoch": round(sec / _mean(mine["seconds_per_epoch"]), 3),
                                  "cpu_seconds_per_epoch": round(cpu / _mean(mine["cpu_seconds_per_epoch"]), 3),
                                  "peak_rss": round(r["peak_rss_mb"] / mine["peak_rss_mb"], 3)}
        ratio = r["ratio_vs_ours"] or {}
        cols = [f"{ratio[k]:.2f}x" if k in ratio else "" for k in ("seconds_per_epoch", "cpu_seconds_per_epoch",
                                                                   "peak_rss")]
        print(f"{r['model']:<10} {r['library']:<14} {sec:>8.1f} {cpu:>12.1f} {r['peak_rss_mb']:>12,} "
              f"{r['test']['Acc@1']:>7.4f} {r['test']['MRR']:>7.4f} {cols[0]:>16} {cols[1]:>12} {cols[2]:>12}")
    info = {"epochs": args.epochs, "threads": args.threads, "cpus": os.cpu_count(), "limit_train": args.limit_train,
            "load_avg_start": [round(x, 2) for x in load0], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
            "split": repr(split), "exported": counts, "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    from stgnn.utils.io import atomic_write_json

    atomic_write_json(Path(args.out), {"info": info, "rows": rows})
    print(f"machine load average {info['load_avg_start'][0]} at start, {info['load_avg_end'][0]} at end "
          f"({info['cpus']} cores); wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
