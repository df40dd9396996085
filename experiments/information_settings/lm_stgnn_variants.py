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

import numpy as np

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


def pooled(arms: dict[str, Path], seeds: list[int], baseline: str = "none", n_boot: int = 1000,
           seed: int = 0) -> list[dict]:
    """Per arm and part, the seed-averaged difference (arm minus baseline) with one paired bootstrap
    over samples: each resample draws sample indices once and takes every seed's pair on them, so
    the CI is that of the mean over the seeds finished in both arms (seeds only where both have them)."""
    out = []
    for arm, root in arms.items():
        if arm == baseline:
            continue
        done = [s for s in seeds if (root / f"seed_{s}" / "ranks.npz").exists()
                and (arms[baseline] / f"seed_{s}" / "ranks.npz").exists()]
        if not done:
            continue
        for part in ("val", "test"):
            diffs = {m: [] for m in METRICS}
            for s in done:
                ra, rb = (np.load(r / f"seed_{s}" / "ranks.npz") for r in (root, arms[baseline]))
                if not np.array_equal(ra[f"{part}_index"], rb[f"{part}_index"]):
                    raise SystemExit(f"{arm} seed {s}: scored other {part} samples than {baseline}")
                a, b = ra[f"{part}_ranks"].astype(np.float64), rb[f"{part}_ranks"].astype(np.float64)
                diffs["Acc@1"].append((a == 1).astype(np.float64) - (b == 1))
                diffs["MRR"].append(1.0 / a - 1.0 / b)
            row = {"arm": arm, "part": part, "seeds": done}
            rng = np.random.default_rng(seed)
            n = len(diffs["MRR"][0])
            idx = rng.integers(0, n, size=(n_boot, n))                       # same draws for every metric
            for m in METRICS:
                d = np.mean(diffs[m], axis=0)                                 # (n,) per-sample mean over seeds
                boot = d[idx].mean(1)
                row[m] = {"diff": float(d.mean()), "ci95": [float(np.quantile(boot, .025)), float(np.quantile(boot, .975))]}
            out.append(row)
    return out


def pooled_table(rows: list[dict]) -> str:
    lines = ["| variant | part | seeds | mean ΔAcc@1 [95% CI] | mean ΔMRR [95% CI] |", "|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{r[m]['diff']:+.4f} [{r[m]['ci95'][0]:+.4f}, {r[m]['ci95'][1]:+.4f}]" for m in METRICS]
        lines.append(f"| {r['arm']} | {r['part']} | {', '.join(map(str, r['seeds']))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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


def arm_parser(description: str, seeds: list[int]) -> argparse.ArgumentParser:
    """The command line every arm-vs-none collector shares: arms, seeds, conditions, commands, out."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("arms", nargs="+", help="name=run_root (one of them named none)")
    ap.add_argument("--seeds", type=int, nargs="+", default=seeds)
    ap.add_argument("--load", default="", help="machine conditions to record (uptime, other jobs)")
    ap.add_argument("--commands", nargs="*", default=[], help="the exact training commands")
    ap.add_argument("--out", type=Path, required=True)
    return ap


def parse_arms(specs: list[str]) -> dict[str, Path]:
    """``["none=results/a", ...]`` -> ``{"none": Path("results/a"), ...}`` (a clear exit on a bad one)."""
    arms = {}
    for spec in specs:
        name, sep, root = spec.partition("=")
        if not sep or not name or not root:
            raise SystemExit(f"arm {spec!r}: write it as name=run_root")
        arms[name] = Path(root)
    return arms


def main() -> None:
    ap = arm_parser(__doc__.splitlines()[0], [0, 1, 2])
    ap.add_argument("--experiment", default="an LM variant", help="what the arms vary (recorded)")
    args = ap.parse_args()
    arms = parse_arms(args.arms)
    record = {**collect(arms, args.seeds, experiment=args.experiment), "pooled": pooled(arms, args.seeds),
              "load": args.load, "commands": args.commands}
    atomic_write_json(args.out, record)
    print(table(record))
    print()
    print(pooled_table(record["pooled"]))


if __name__ == "__main__":
    main()
