"""LM check on CPU: the contrastive objective with the encoder frozen (a trained adapter on MiniLM).

The issue's contrastive fine-tune (``stgnn/features/contrastive.py``: trajectory text -> next
POI's profile, in-batch InfoNCE, training samples only) needs a GPU: here one step of 64 pairs
takes ~18 s, so one epoch of NYC's 82,658 pairs would take ~6 CPU-hours. This is its CPU stand-in:
MiniLM stays frozen, its vectors are computed once, and two linear maps (trajectory side and
profile side, initialised at the identity) are trained with the same loss (same-target pairs
masked, scale 20) on ``--pairs`` random training pairs, 10 % of them held out to stop training.

Then the check of ``lm_rich_profiles.py``, on the same texts for both encoders (the frozen
MiniLM alone is the control): the intent score alone, and fused into the tuned reference,
score = log(r + 1e-4) + a * log_softmax(cos / tau), (a, tau) picked on validation MRR, paired
bootstrap CIs against the reference alone on val (the selection's own samples, so optimistic
for the LM) and test (scored once). Setting: history train_only, target time known (the
reference's; the texts show the prefix's check-ins only).

    STGNN_DATA_DIR=... python experiments/information_settings/lm_adapter.py --out experiments/information_settings/lm_adapter.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lm_rich_profiles import GRID, REFERENCE, fused_check, part_scores  # noqa: E402
from stgnn.config import ExperimentConfig  # noqa: E402
from stgnn.features.contrastive import info_nce, training_pairs  # noqa: E402
from stgnn.features.profiles import poi_profiles, trajectory_texts  # noqa: E402
from stgnn.features.text import make_text_encoder  # noqa: E402
from stgnn.recipes import load_split  # noqa: E402
from stgnn.registry import build_for_split  # noqa: E402


class Adapter(nn.Module):
    """Two linear maps on frozen sentence vectors, identity at initialisation.

    Shapes: ``anchor (B, D)``, ``positive (B, D)`` -> the same, mapped."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q, self.p = nn.Linear(dim, dim), nn.Linear(dim, dim)
        for lin in (self.q, self.p):
            nn.init.eye_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q(anchor), self.p(positive)


def train_adapter(anchor: torch.Tensor, positive: torch.Tensor, pois: np.ndarray, *, epochs: int, batch: int,
                  lr: float, patience: int, seed: int = 0) -> tuple[Adapter, list[dict[str, float]]]:
    """Fit :class:`Adapter` with in-batch InfoNCE; the last 10 % of the (shuffled) pairs are held
    out and the epoch with the lowest held-out loss is kept.

    Shapes: ``anchor, positive (N, D)``, ``pois (N,)``."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(anchor), generator=gen)
    n_hold = max(2, len(order) // 10)
    hold, fit = order[-n_hold:], order[:-n_hold]
    poi = torch.as_tensor(pois)
    model = Adapter(anchor.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        a, p = model(anchor[idx], positive[idx])
        return info_nce(a, p, poi[idx, None] == poi[None, idx], 20.0)

    def held_out() -> float:
        with torch.no_grad():
            return float(np.mean([float(loss_of(hold[i:i + batch])) for i in range(0, len(hold) - 1, batch)]))

    curve = [{"epoch": 0, "held_out_loss": held_out()}]
    best, best_state, bad = curve[0]["held_out_loss"], {k: v.clone() for k, v in model.state_dict().items()}, 0
    for epoch in range(1, epochs + 1):
        perm = fit[torch.randperm(len(fit), generator=gen)]
        losses = []
        for i in range(0, len(perm) - 1, batch):
            loss = loss_of(perm[i:i + batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss))
        curve.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "held_out_loss": held_out()})
        if curve[-1]["held_out_loss"] < best - 1e-4:
            best, best_state, bad = curve[-1]["held_out_loss"], {k: v.clone() for k, v in model.state_dict().items()}, 0
        else:
            bad += 1
            if bad >= patience:
                break
    model.load_state_dict(best_state)
    return model, curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--pairs", type=int, default=20_000, help="random training pairs (10 %% held out)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--patience", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    split = load_split(ExperimentConfig(dataset="nyc"))
    enc = make_text_encoder("minilm", device="cpu")
    anchors, positives, pois = training_pairs(split, a.pairs, seed=0)
    t1 = time.perf_counter()
    anchor_v, positive_v = enc.encode(anchors).float(), enc.encode(positives).float()
    encode_s = time.perf_counter() - t1
    ref = build_for_split("user_history", split, **REFERENCE)
    parts = {p: part_scores(split, ref, p) for p in ("val", "test")}
    intent = {p: enc.encode(trajectory_texts(split, parts[p][2])).float() for p in parts}  # the pairs' format
    profiles = enc.encode(poi_profiles(split)).float()                                      # (P, D)

    t1 = time.perf_counter()
    adapter, curve = train_adapter(anchor_v, positive_v, pois, epochs=a.epochs, batch=a.batch, lr=a.lr,
                                   patience=a.patience)
    train_s = time.perf_counter() - t1
    with torch.no_grad():
        mapped = {p: adapter.q(intent[p]) for p in parts}
        mapped_poi = adapter.p(profiles)
    out = {"reference": REFERENCE, "grid": GRID, "pairs": len(anchors), "adapter_curve": curve,
           "options": vars(a), "encode_training_pairs_s": round(encode_s, 1), "adapter_train_s": round(train_s, 1),
           "encoders": {name: fused_check(parts, q, p, alone_metrics=("Acc@1", "Acc@10", "MRR"))
                        for name, q, p in (("minilm (frozen, control)", intent, profiles),
                                           ("minilm + trained adapter", mapped, mapped_poi))}}
    for name, res in out["encoders"].items():
        print(name, json.dumps({p: {"alone": res[p]["intent_alone"],
                                    "fused-ref MRR": res[p]["fused_minus_reference"]["MRR"]} for p in parts}),
              res["best"], flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["conditions"] = "1 torch thread, CPU shared with two training runs (2 cores)"
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
