"""Collect the LM-initialised POI embedding experiment (issue 11) into ``lm_poi_init.json``.

Reads finished run folders ``<root>/lm_init_random/seed_<s>`` and ``<root>/lm_init_text/seed_<s>``
(made by the commands in README.md, section "LM-initialised POI embeddings"), and writes each
seed's val/test Acc@1 and MRR and the paired bootstrap CI (1,000 resamples) of text minus random
on both parts. Usage::

    python experiments/information_settings/lm_poi_init.py results/lm_init --seeds 0 1 \\
        --load "..." --out experiments/information_settings/lm_poi_init.json
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from stgnn.recipes import compare_runs
from stgnn.utils.io import atomic_write_json

ARMS = ("random", "text")


def _epochs(run: Path) -> list[dict[str, float]]:
    with open(run / "curves.csv", newline="") as f:
        return [{"epoch": int(r["epoch"]), "train_loss": float(r["train_loss"]), "val_Acc@1": float(r["val_Acc@1"]),
                 "val_MRR": float(r["val_MRR"]), "seconds": float(r["seconds"])} for r in csv.DictReader(f)]


def collect(root: Path, seeds: list[int]) -> dict:
    rows = []
    for s in seeds:
        runs = {arm: root / f"lm_init_{arm}" / f"seed_{s}" for arm in ARMS}
        row: dict = {"seed": s, "epochs": {arm: _epochs(runs[arm]) for arm in ARMS}}
        for part in ("val", "test"):
            res = compare_runs(runs["text"], runs["random"], part=part, n_boot=1000, seed=0)
            row[part] = {m: {"random": d["b"], "text": d["a"], "diff": d["diff"], "ci95": [d["lo"], d["hi"]],
                             "p": d["p"], "n": int(d["n"])} for m, d in res.items()}
        rows.append(row)
    return {"experiment": "STGNN poi_init=text (PCA of MiniLM training-period POI profiles) vs random",
            "seeds": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--load", default="", help="machine conditions to record (uptime, other jobs)")
    ap.add_argument("--commands", nargs="*", default=[], help="the exact training commands")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    out = {**collect(args.root, args.seeds), "load": args.load, "commands": args.commands}
    atomic_write_json(args.out, out)
    for r in out["seeds"]:
        for part in ("val", "test"):
            print(f"seed {r['seed']} {part}: " + "; ".join(
                f"{m} random {d['random']:.4f} text {d['text']:.4f} diff {d['diff']:+.4f} "
                f"[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" for m, d in r[part].items()))


if __name__ == "__main__":
    main()
