"""The late prior's reference options picked for the product, on validation.

The table's STGNN multiplies its own distribution ``q`` by the reference ``r`` that was tuned
*alone* (``stgnn/models/prior.py``, ``fusion: late``). The reference that best complements a
trained STGNN need not be the one that scores best on its own: STGNN already models some of what
``r`` holds (revisits, routine), so the product may prefer other mixture weights. Since the late
prior touches no trained parameter, its options are hyperparameters of the row that can be
picked after training, on validation, like the late weight (``late_weight.py``).

Each run's best checkpoint gives ``log q`` once per chunk of samples; the reference's terms
(personal visits per half-life, routine per half-life and width, transitions and popularity as
of the query time) are computed once per chunk too, and every grid point is a weighted sum of
them (``stgnn/models/reference.py``: ``(1 - eps - beta - gamma) personal + beta trans + gamma
routine + eps pop``). A point is ``(half_life, beta, gamma, sigma, w)`` with the late product
``log q + w log(r + floor)``. The point with the best mean validation MRR over the runs given
(the seeds of one setting) is scored once on test, with paired bootstrap CIs (1,000 resamples)
against the table's prior (the reference tuned alone, ``w = 1``) per run. Validation CIs are
the selection's own samples, so optimistic.

    python experiments/information_settings/prior_grid.py <full preset>/realtime/runs/STGNN/seed_{0,1,2} \\
        --out experiments/information_settings/prior_grid_all_past.json
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stgnn.config import load_config  # noqa: E402
from stgnn.eval.evaluate import score_chunks  # noqa: E402
from stgnn.eval.metrics import metrics_from_ranks, ranks  # noqa: E402
from stgnn.eval.significance import paired_bootstrap  # noqa: E402
from stgnn.models.reference import UserHistory  # noqa: E402
from stgnn.recipes.runs import restored_run  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from late_weight import report  # noqa: E402  (this folder's script)

HALF_LIVES = (15.0, 30.0, 60.0, 120.0, None)
BETAS = (0.0, 0.1, 0.2, 0.3, 0.4)
GAMMAS = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8)
SIGMAS = (1.0, 1.5, 2.5)
WEIGHTS = (0.5, 0.75, 1.0, 1.25, 1.5)
EPS = 1e-3


def grid() -> list[tuple[Any, float, float, float, float]]:
    """Every valid ``(half_life, beta, gamma, sigma, w)`` (sigma is moot, and fixed, at gamma 0)."""
    points = []
    for hl, b, g, w in itertools.product(HALF_LIVES, BETAS, GAMMAS, WEIGHTS):
        if EPS + b + g >= 1:
            continue
        for s in (SIGMAS if g > 0 else (SIGMAS[0],)):
            points.append((hl, b, g, s, w))
    return points


def _key(p: tuple) -> str:
    hl, b, g, s, w = p
    return f"half_life={hl} beta={b} gamma={g} sigma={s if g > 0 else '-'} w={w}"


@torch.no_grad()
def grid_ranks(run_dir: Path, part: str, points: list[tuple], table_prior: tuple) -> dict[tuple, np.ndarray]:
    """``{point: (S,) ranks}`` of ``run_dir``'s best checkpoint on ``part`` for every grid point
    (and the table's own prior, ``table_prior``)."""
    model, loader, device = restored_run(run_dir, part, device="cpu")
    prior = model.prior
    if prior is None or prior.fusion != "late":
        raise ValueError(f"{run_dir}: the model has no late prior (model_kwargs.prior.fusion: late)")
    ref, floor = prior.reference, prior.floor
    prior.weight = 0.0  # model.score is then log_softmax(log q)
    views = {hl: UserHistory(ref.num_users, ref.num_pois, half_life=hl, weekend_factor=ref.weekend_factor)
             for hl in HALF_LIVES}
    out: dict[tuple, list[torch.Tensor]] = {p: [] for p in [*points, table_prior]}
    for batch, logq in score_chunks(model, loader, device):
        q_ts, _ = batch.query_time()
        pop = ref.visible_popularity(q_ts)                                  # (b, P) float64
        trans = ref.visible_transitions(batch.last_poi, q_ts)               # (b, P)
        personal, routine = {}, {}
        for hl, view in views.items():
            memory = view._memory(batch)
            personal[hl] = view.personal(batch, memory)                     # (b, P)
            for s in SIGMAS:
                view.time_sigma = s
                routine[hl, s] = view.routine(batch, memory)                # (b, P)
        for p in out:
            hl, b, g, s, w = p
            r = (1 - EPS - b - g) * personal[hl] + EPS * pop + b * trans
            if g > 0:
                r = r + g * routine[hl, s]
            out[p].append(ranks(logq + w * torch.log(r.float() + floor), batch.target_poi))
    return {p: torch.cat(v).numpy() for p, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (seed_N) of one setting")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    points = grid()
    priors = set()
    for r in a.runs:
        kw = load_config(r / "config.yaml").model_kwargs["prior"]
        priors.add((kw.get("half_life", 60.0), kw.get("transition_weight", 0.0), kw.get("time_weight", 0.0),
                    kw.get("time_sigma", 1.5), kw.get("weight", 1.0)))
    if len(priors) != 1:
        raise SystemExit(f"the runs carry different priors {priors}; give the seeds of one setting")
    table_prior = priors.pop()
    got = {str(r): {"val": grid_ranks(r, "val", points, table_prior)} for r in a.runs}
    mean_val = {p: float(np.mean([metrics_from_ranks(got[r]["val"][p])["MRR"] for r in got])) for p in points}
    best = max(points, key=lambda p: mean_val[p])
    table_val = float(np.mean([metrics_from_ranks(got[r]["val"][table_prior])["MRR"] for r in got]))
    for r in a.runs:   # test: the chosen point and the table's prior only
        got[str(r)]["test"] = grid_ranks(r, "test", [best], table_prior)
    top = sorted(points, key=lambda p: -mean_val[p])[:10]
    res: dict[str, Any] = {
        "grid": {"half_life": list(HALF_LIVES), "beta": list(BETAS), "gamma": list(GAMMAS), "sigma": list(SIGMAS),
                 "w": list(WEIGHTS), "eps": EPS, "points": len(points)},
        "table_prior": _key(table_prior), "table_prior_mean_val_MRR": table_val,
        "chosen": _key(best), "chosen_mean_val_MRR": mean_val[best],
        "top10_mean_val_MRR": {_key(p): mean_val[p] for p in top}, "per_run": {},
        "seconds": round(time.perf_counter() - t0, 1)}
    for r in got:
        res["per_run"][r] = {
            "chosen_minus_table": {part: paired_bootstrap(got[r][part][best], got[r][part][table_prior])
                                   for part in ("val", "test")},
            "test_chosen": {k: metrics_from_ranks(got[r]["test"][best])[k] for k in ("Acc@1", "Acc@10", "MRR")},
            "test_table": {k: metrics_from_ranks(got[r]["test"][table_prior])[k] for k in ("Acc@1", "Acc@10", "MRR")}}
    print(f"table prior {_key(table_prior)}: mean val MRR {table_val:.4f}; chosen {_key(best)}: {mean_val[best]:.4f}")
    report(res, "chosen_minus_table", a.out)


if __name__ == "__main__":
    main()
