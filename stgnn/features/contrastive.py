"""Contrastive fine-tuning of the text encoder: a trajectory's text should point at its next POI.

Pairs come from **training samples only**: the anchor is the sample's prefix rendered as text
(:func:`~stgnn.features.profiles.trajectory_texts`, the target never shown), the positive the
profile of its target POI (:func:`~stgnn.features.profiles.poi_profiles`, training check-ins
only). The loss is in-batch InfoNCE (the MultipleNegativesRankingLoss of sentence-transformers,
written out so that other samples with the same target POI are masked instead of counted as
negatives). The fine-tuned model is saved as a sentence-transformers folder, usable anywhere a
text encoder is named: ``text_model="st:<folder>"``.

Meant for a GPU (NYC: ~83k pairs, one epoch of MiniLM at batch 256 is a few minutes there); the
CPU smoke test runs a few steps on a tiny split. Run (the script loads the split, which this
layer may not)::

    python experiments/information_settings/finetune_encoder.py nyc --out results/lm/minilm_nyc_ft --device cuda
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from stgnn.data.split import Split
from stgnn.features.profiles import poi_profiles, trajectory_texts


def training_pairs(split: Split, max_pairs: int | None = None, seed: int = 0,
                   max_items: int = 20) -> tuple[list[str], list[str], np.ndarray]:
    """``(anchors, positives, target_pois)`` of (a random subset of) the training samples.

    Shapes: two lists of ``S`` texts and ``(S,)`` int64 target POIs.
    """
    targets = np.asarray(split.samples["train"], np.int64)
    if max_pairs is not None and max_pairs < len(targets):
        targets = np.sort(np.random.default_rng(seed).choice(targets, max_pairs, replace=False))
    profiles = poi_profiles(split)
    pois = split.poi[targets]
    return trajectory_texts(split, targets, max_items=max_items), [profiles[p] for p in pois], pois


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, same_target: torch.Tensor, scale: float) -> torch.Tensor:
    """In-batch contrastive loss; ``same_target (B, B)`` bool marks pairs sharing a target POI,
    which are not negatives of each other (the diagonal stays the positive).

    Shapes: ``anchor, positive (B, D)`` -> scalar.
    """
    logits = scale * F.normalize(anchor, dim=-1) @ F.normalize(positive, dim=-1).T       # (B, B)
    eye = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(same_target & ~eye, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


def finetune(split: Split, model_path: str | Path, out: str | Path, *, epochs: int = 1, batch_size: int = 128,
             lr: float = 2e-5, scale: float = 20.0, max_pairs: int | None = None, max_steps: int | None = None,
             device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """Fine-tune the sentence-transformers model at ``model_path`` on ``split``'s training pairs and
    save it to ``out``. Returns a summary (pairs, steps, first/last loss, seconds).
    """
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(seed)
    model = SentenceTransformer(str(model_path), device=device)
    anchors, positives, pois = training_pairs(split, max_pairs, seed)
    if len(anchors) < 2:
        raise ValueError(f"{split!r} has {len(anchors)} training pairs; contrastive training needs at least 2")
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    t0, step = time.perf_counter(), 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(anchors), generator=gen).tolist()
        for i in range(0, len(order) - 1, batch_size):
            idx = order[i:i + batch_size]
            if len(idx) < 2:
                break
            enc = [model(_to(model.tokenize([texts[j] for j in idx]), device))["sentence_embedding"]
                   for texts in (anchors, positives)]
            p = torch.as_tensor(pois[idx], device=device)
            loss = info_nce(enc[0], enc[1], p[:, None] == p[None, :], scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
            if max_steps is not None and step >= max_steps:
                break
        if max_steps is not None and step >= max_steps:
            break
    if not all(math.isfinite(x) for x in losses):
        raise RuntimeError(f"non-finite contrastive loss after {step} steps; lower lr ({lr})")
    model.save(str(out))
    return {"pairs": len(anchors), "steps": step, "first_loss": losses[0], "last_loss": losses[-1],
            "seconds": time.perf_counter() - t0, "out": str(out)}


def _to(features: dict[str, Any], device: str) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}


__all__ = ["finetune", "info_nce", "training_pairs"]
