"""The late prior's weight, picked on validation: ``log q + w * log(r + floor)`` for several ``w``.

STGNN with ``prior: {fusion: late}`` trains alone and multiplies its distribution ``q`` by the
tuned reference's ``r ** w`` when scoring (``stgnn/models/prior.py``), so ``w`` can be chosen
after training without retraining: each run's best checkpoint is scored once (its own ``log q``
and the reference's ``log r``), then every ``w`` is ranked from the two. ``w`` is chosen on the
mean validation MRR over the runs given (the seeds of one setting). Paired bootstrap CIs (1,000
resamples) of the chosen ``w`` against the table's ``w = 1`` on val (the selection's own samples,
so optimistic) and on test, per run.

    python experiments/information_settings/late_weight.py <full preset>/realtime/runs/STGNN/seed_{0,1,2} \
        --out experiments/information_settings/late_weight_all_past.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stgnn.eval.evaluate import score_chunks  # noqa: E402
from stgnn.eval.metrics import metrics_from_ranks, ranks  # noqa: E402
from stgnn.eval.significance import paired_bootstrap  # noqa: E402
from stgnn.recipes.runs import restored_run  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)


@torch.no_grad()
def scored(run_dir: Path, part: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """``(log q (S, P), log r (S, P), targets (S,), w)``: ``run_dir``'s best checkpoint scored once on
    ``part``, its own distribution and the reference's apart, and its late weight ``w``."""
    model, loader, device = restored_run(run_dir, part, device="cpu")
    prior = model.prior
    if prior is None or prior.fusion != "late":
        raise ValueError(f"{run_dir}: the model has no late prior (model_kwargs.prior.fusion: late)")
    w, prior.weight = float(prior.weight), 0.0    # model.score is then log_softmax(log q)
    logq, logr, tgt = [], [], []
    for batch, lq in score_chunks(model, loader, device):
        logq.append(lq.float().cpu())
        logr.append(prior.log_reference(batch).float().cpu())
        tgt.append(batch.target_poi.cpu())
    return torch.cat(logq), torch.cat(logr), torch.cat(tgt), w


def weight_ranks(run_dir: Path, part: str, weights: tuple[float, ...]) -> dict[float, np.ndarray]:
    """``{w: (S,) ranks}`` of ``run_dir``'s best checkpoint on ``part`` with the late weight ``w``."""
    logq, logr, tgt, _ = scored(run_dir, part)
    return {w: ranks(logq + w * logr, tgt).numpy() for w in weights}


def ci_text(paired: dict[str, dict[str, float]]) -> dict[str, str]:
    """``{metric: "+diff [lo, hi]"}`` of one :func:`~stgnn.eval.significance.paired_bootstrap` result."""
    return {m: f"{x['diff']:+.4f} [{x['lo']:+.4f}, {x['hi']:+.4f}]" for m, x in paired.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (seed_N) of one setting")
    ap.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS))
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    weights = tuple(a.weights)
    if 1.0 not in weights:
        weights += (1.0,)
    got = {str(r): {p: weight_ranks(r, p, weights) for p in ("val", "test")} for r in a.runs}
    table = {w: {r: {p: metrics_from_ranks(got[r][p][w])["MRR"] for p in ("val", "test")} for r in got}
             for w in weights}
    mean_val = {w: float(np.mean([table[w][r]["val"] for r in got])) for w in weights}
    best = max(weights, key=lambda w: mean_val[w])
    res = {"weights": list(weights), "mean_val_MRR": {str(w): mean_val[w] for w in weights},
           "chosen": best, "per_run": {}}
    for r in got:
        res["per_run"][r] = {
            "MRR": {str(w): table[w][r] for w in weights},
            "chosen_minus_w1": {p: paired_bootstrap(got[r][p][best], got[r][p][1.0]) for p in ("val", "test")},
            "test_chosen": {k: metrics_from_ranks(got[r]["test"][best])[k] for k in ("Acc@1", "Acc@10", "MRR")}}
    print("mean val MRR by weight:", {w: round(v, 4) for w, v in mean_val.items()}, "chosen", best)
    report(res, "chosen_minus_w1", a.out)


def report(res: dict, key: str, out: str) -> None:
    """Print each run's paired CIs ``res["per_run"][run][key][part]`` and test metrics; write ``res`` to ``out``."""
    for r, v in res["per_run"].items():
        d = {p: ci_text(v[key][p]) for p in ("val", "test")}
        print(r, d, {k: round(x, 4) for k, x in v["test_chosen"].items()})
    Path(out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
