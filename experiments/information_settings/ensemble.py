"""An ensemble of trained STGNN runs, each with its late prior, against its members and the reference.

Each run's best checkpoint is scored once on val and test: its own ``log q`` (the late prior's
weight set to 0) and the tuned reference's ``log r`` (``stgnn/models/prior.py``). The ensemble
scores ``log mean_i q_i + w * log r`` (the members' probabilities averaged, then the prior applied
once, ``w`` the runs' own late weight). Reported with paired bootstrap CIs (1,000 resamples),
sample for sample: the ensemble minus each member (both with the prior) and minus the reference
alone (``log r``), on val and on test. The runs must share the information setting and the prior.

This measures what averaging runs buys; an ensemble of ``N`` runs costs ``N`` trainings and ``N``
forward passes per request.

    python experiments/information_settings/ensemble.py RUN_A/seed_0 RUN_B/seed_0 --out ensemble.json
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from late_weight import ci_text, scored  # noqa: E402  (this folder's script)
from stgnn.eval.metrics import metrics_from_ranks, ranks  # noqa: E402
from stgnn.eval.significance import paired_bootstrap  # noqa: E402

KEYS = ("Acc@1", "Acc@5", "Acc@10", "MRR")


def part_ranks(runs: list[Path], part: str) -> dict[str, np.ndarray]:
    """``{"ensemble" | "reference" | <run>: (S,) ranks}`` on ``part``."""
    got = [scored(r, part) for r in runs]
    _, logr, tgt, w = got[0]
    for r, (_, lr, t, wr) in zip(runs[1:], got[1:]):
        if not torch.equal(t, tgt) or wr != w or not torch.allclose(lr, logr):
            raise ValueError(f"{r}: not the same samples, late weight or prior as {runs[0]}")
    out = {str(r): ranks(lq + w * logr, tgt).numpy() for r, (lq, *_rest) in zip(runs, got)}
    mix = torch.logsumexp(torch.stack([g[0] for g in got]), 0) - math.log(len(got))    # (S, P)
    out["ensemble"] = ranks(mix + w * logr, tgt).numpy()
    out["reference"] = ranks(logr, tgt).numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (seed_N) of one setting, >= 2")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if len(a.runs) < 2:
        ap.error("an ensemble needs at least two runs")
    torch.set_num_threads(1)
    res: dict = {"runs": [str(r) for r in a.runs], "metrics": {}, "ensemble_minus": {}}
    for part in ("val", "test"):
        rk = part_ranks(a.runs, part)
        res["metrics"][part] = {k: {m: metrics_from_ranks(v)[m] for m in KEYS} for k, v in rk.items()}
        res["ensemble_minus"][part] = {k: paired_bootstrap(rk["ensemble"], v) for k, v in rk.items()
                                       if k != "ensemble"}
        for k, v in res["metrics"][part].items():
            print(part, k, {m: round(x, 4) for m, x in v.items()})
        for k, v in res["ensemble_minus"][part].items():
            print(part, "ensemble minus", k, ci_text(v))
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
