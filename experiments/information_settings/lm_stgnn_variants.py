"""Collect the LM-inside-STGNN ablation (issue 11) into a JSON record and a Markdown table.

Each arm is a run folder root holding ``seed_<s>`` folders made by ``stgnn train`` with the
table's STGNN config and its late prior (README.md, section "The language model inside STGNN",
gives the commands); ``none`` is the arm without any LM. For every other arm and every seed
present in both, the paired bootstrap (1,000 resamples, ``stgnn compare``) of arm minus none on
val and test, Acc@1 and MRR. Usage::

    python experiments/information_settings/lm_stgnn_variants.py \\
        none=results/lm_init/lm_init_random intent=results/lm_intent/lm_intent \\
        neighbours=results/lm_intent/lm_neighbours --seeds 0 1 2 \\
        --out experiments/information_settings/lm_stgnn_variants.json

Other ablations of the same config reuse it with ``--experiment "<what the arms vary>"``
(e.g. the auxiliary heads: ``aux_heads.json``).
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from stgnn.recipes import compare_runs
from stgnn.utils.io import atomic_write_json

METRICS = ("Acc@1", "MRR")


def _epochs(run: Path) -> list[dict[str, float]]:
    with open(run / "curves.csv", newline="") as f:
        return [{"epoch": int(r["epoch"]), "train_loss": float(r["train_loss"]), "val_Acc@1": float(r["val_Acc@1"]),
                 "val_MRR": float(r["val_MRR"]), "seconds": float(r["seconds"])} for r in csv.DictReader(f)]


def collect(arms: dict[str, Path], seeds: list[int], baseline: str = "none", experiment: str = "an LM variant") -> dict:
    """``{"rows": [{arm, seed, val: {metric: {...}}, test: ...}], ...}`` for every finished pair."""
    if baseline not in arms:
        raise SystemExit(f"give the baseline arm as {baseline}=<run root>")
    rows = []
    for arm, root in arms.items():
        if arm == baseline:
            continue
        for s in seeds:
            a, b = root / f"seed_{s}", arms[baseline] / f"seed_{s}"
            if not ((a / "ranks.npz").exists() and (b / "ranks.npz").exists()):
                continue
            row: dict = {"arm": arm, "seed": s, "epochs": {arm: _epochs(a), baseline: _epochs(b)}}
            for part in ("val", "test"):
                res = compare_runs(a, b, part=part, n_boot=1000, seed=0)
                row[part] = {m: {baseline: res[m]["b"], arm: res[m]["a"], "diff": res[m]["diff"],
                                 "ci95": [res[m]["lo"], res[m]["hi"]], "p": res[m]["p"], "n": int(res[m]["n"])}
                             for m in METRICS}
            rows.append(row)
    return {"experiment": f"STGNN (table config + late prior, 2 epochs, train_only/known) with {experiment} "
                          f"minus {baseline}", "baseline": baseline, "arms": {k: str(v) for k, v in arms.items()},
            "rows": rows}


def table(record: dict) -> str:
    """Markdown: one line per (arm, seed, part)."""
    base = record["baseline"]
    lines = [f"| variant | seed | part | Acc@1 {base} | Acc@1 variant | ΔAcc@1 [95% CI] | MRR {base} | MRR variant "
             "| ΔMRR [95% CI] |", "|---|---|---|---|---|---|---|---|---|"]
    for part in ("val", "test"):
        for r in record["rows"]:
            cells = []
            for m in METRICS:
                d = r[part][m]
                cells += [f"{d[base]:.4f}", f"{d[r['arm']]:.4f}",
                          f"{d['diff']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"]
            lines.append(f"| {r['arm']} | {r['seed']} | {part} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("arms", nargs="+", help="name=run_root (one of them named none)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--load", default="", help="machine conditions to record (uptime, other jobs)")
    ap.add_argument("--commands", nargs="*", default=[], help="the exact training commands")
    ap.add_argument("--experiment", default="an LM variant", help="what the arms vary (recorded)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    arms = {}
    for spec in args.arms:
        name, sep, root = spec.partition("=")
        if not sep or not name or not root:
            raise SystemExit(f"arm {spec!r}: write it as name=run_root")
        arms[name] = Path(root)
    record = {**collect(arms, args.seeds, experiment=args.experiment), "load": args.load, "commands": args.commands}
    atomic_write_json(args.out, record)
    print(table(record))


if __name__ == "__main__":
    main()
