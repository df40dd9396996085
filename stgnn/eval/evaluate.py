"""Score a loader's samples with a model and compute full-ranking metrics.

Evaluation sits below the models: it needs only what :class:`Scorer` states (any
:class:`~stgnn.models.base.Recommender` is one), so it never imports a model.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterable, Protocol

import numpy as np
import torch

from stgnn.data.batch import Batch, SampleLoader
from stgnn.eval.metrics import DEFAULT_KS, DEFAULT_NDCG_KS, metrics_from_ranks, ranks


class Scorer(Protocol):
    """What :func:`evaluate` uses of a model: a ``(B, P)`` score over every POI and the train/eval switch."""

    num_pois: int
    training: bool

    def score(self, batch: Batch) -> torch.Tensor: ...

    def eval(self) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """Autocast context for ``amp`` in ``{"none", "bf16", "fp16"}``; a no-op off CUDA."""
    if amp == "none" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device_type="cuda", dtype=dtype)


@torch.no_grad()
def evaluate(model: Scorer, loader: SampleLoader, device: torch.device | str = "cpu", amp: str = "none",
             ks: Iterable[int] = DEFAULT_KS, ndcg_ks: Iterable[int] = DEFAULT_NDCG_KS,
             ) -> tuple[dict[str, float], np.ndarray]:
    """Rank every sample's target among all POIs.

    Args:
        model: any :class:`Scorer`, e.g. a :class:`~stgnn.models.base.Recommender` (put in eval
            mode for the call, mode restored after).
        loader: a non-shuffling :class:`SampleLoader`; ranks follow ``loader.targets``.
        device: where to score.
        amp: ``"none"``, ``"bf16"`` or ``"fp16"`` autocast (CUDA only). Scores are compared in
            the model's output precision, so low precision can create (pessimistic) ties.

    Returns:
        ``(metrics, ranks)``: the mean metrics and ``(S,)`` int64 per-sample ranks aligned with
        ``loader.targets`` (for paired comparisons and slices such as cold-start flags).
    """
    if loader.shuffle:
        raise ValueError("evaluate needs a loader with shuffle=False so ranks align with loader.targets")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = []
    try:
        for batch in loader:
            batch = batch.to(device, non_blocking=True)
            with autocast(device, amp):
                scores = model.score(batch)  # (B, P)
            if scores.shape != (len(batch), model.num_pois):
                raise ValueError(f"{type(model).__name__}.score returned shape {tuple(scores.shape)}, "
                                 f"expected ({len(batch)}, {model.num_pois})")
            out.append(ranks(scores, batch.target_poi).cpu())
    finally:
        model.train(was_training)
    r = torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)
    return metrics_from_ranks(r, ks, ndcg_ks), r
