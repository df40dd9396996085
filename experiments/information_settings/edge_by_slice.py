"""Where STGNN's edge over the tuned reference lies: revisits against first visits.

One STGNN run with its late prior (``prior: {fusion: late}``) holds both scorers: its own ``log q``
and the tuned reference's ``log r`` (``stgnn/models/prior.py``; ``log r`` alone ranks exactly as
the reference's own run). Its best checkpoint is scored once on val and test, and each of

* ``reference``: ``log r``; ``stgnn alone``: ``log q``; ``product``: ``log q + w log r`` (the row);
* ``mix λ``: ``(1 - λ) * product + λ * q`` (probabilities), for ``λ`` in ``--mix``: the learned
  model's own distribution given a share of the mass, so a POI the reference scores near zero
  (a first visit) can still rank first,

is reported on the slices of :mod:`stgnn.eval.slices` that split revisits from first visits
(``revisit`` / ``new for user``: in / not in the user's training check-ins; ``past revisit`` /
``past new``: in / not in any of the user's check-ins before the target), with paired bootstrap
CIs (1,000 resamples) of the product minus the reference, per slice.

    python experiments/information_settings/edge_by_slice.py <full preset>/realtime/runs/STGNN/seed_0 \
        --out experiments/information_settings/edge_by_slice_all_past_seed0.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from late_weight import ci_text, scored  # noqa: E402  (this folder's script)
from stgnn.config import load_config  # noqa: E402
from stgnn.eval.metrics import metrics_from_ranks, ranks  # noqa: E402
from stgnn.eval.significance import paired_bootstrap  # noqa: E402
from stgnn.eval.slices import slice_masks  # noqa: E402
from stgnn.recipes.runs import load_split  # noqa: E402

SLICES = ("all", "revisit", "new for user", "past revisit", "past new")
KEYS = ("Acc@1", "Acc@10", "MRR")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="an STGNN run folder (seed_N) with a late prior")
    ap.add_argument("--mix", type=float, nargs="*", default=[0.05, 0.1, 0.2, 0.3, 0.5])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if any(not 0.0 < lam < 1.0 for lam in a.mix):
        ap.error(f"--mix weights must lie in (0, 1), got {a.mix}")
    torch.set_num_threads(1)
    split = load_split(load_config(a.run / "config.yaml"))
    res: dict = {"run": str(a.run), "metrics": {}, "product_minus_reference": {}}
    for part in ("val", "test"):
        logq, logr, tgt, w = scored(a.run, part)
        product = torch.log_softmax(logq + w * logr, -1)                                   # (S, P)
        scorers = {"reference": logr, "stgnn alone": logq, "product": product}
        for lam in a.mix:
            scorers[f"mix {lam:g}"] = torch.logaddexp(product + np.log1p(-lam), logq + np.log(lam))
        rk = {name: ranks(s, tgt).numpy() for name, s in scorers.items()}
        masks = slice_masks(split, part)
        res["metrics"][part] = {
            name: {sl: {"n": int(masks[sl].sum()), **{k: metrics_from_ranks(r[masks[sl]])[k] for k in KEYS}}
                   for sl in SLICES} for name, r in rk.items()}
        res["product_minus_reference"][part] = {
            sl: paired_bootstrap(rk["product"][masks[sl]], rk["reference"][masks[sl]]) for sl in SLICES}
        for name, by in res["metrics"][part].items():
            print(part, f"{name:12s}", "  ".join(f"{sl} (n {d['n']}): " + "/".join(f"{d[k]:.4f}" for k in KEYS)
                                               for sl, d in by.items()))
        for sl, d in res["product_minus_reference"][part].items():
            print(part, "product - reference", sl, ci_text(d))
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
