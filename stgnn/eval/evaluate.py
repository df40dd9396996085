"""Score a loader's samples with a model and compute full-ranking metrics.

Evaluation sits below the models: it needs only what :class:`Scorer` states (any
:class:`~stgnn.models.base.Recommender` is one), so it never imports a model.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, Protocol

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


#: Largest ``(rows, P)`` score chunk evaluation holds at once: 2^24 scores (64 MiB in float32).
#: NYC (5 k POIs) keeps its 1024-sample batches; 10^5 POIs are scored 167 samples at a time.
MAX_SCORES = 1 << 24


def score_chunks(model: Scorer, loader: SampleLoader, device: torch.device | str = "cpu",
                 amp: str = "none", max_scores: int = MAX_SCORES) -> Iterator[tuple[Batch, torch.Tensor]]:
    """``(batch, scores (b, P))`` over ``loader.targets`` in order, never more than
    ``max_scores`` scores at once.

    The loader's own batches are used when they fit (so small POI sets score exactly as before);
    otherwise its targets are cut into batches of ``max(1, max_scores // P)`` samples. Memory is
    bounded by the chunk, whatever the number of samples: no ``(S, P)`` matrix is ever built.
    The caller keeps what it needs of each chunk (a rank, a top-k) and drops the scores.
    """
    if loader.shuffle:
        raise ValueError("evaluate needs a loader with shuffle=False so ranks align with loader.targets")
    device = torch.device(device)
    rows = max(1, max_scores // max(model.num_pois, 1))
    batches: Iterable[Batch] = loader if rows >= loader.batch_size else (
        loader.make_batch(loader.targets[i:i + rows]) for i in range(0, len(loader.targets), rows))
    for batch in batches:
        batch = batch.to(device, non_blocking=True)
        with autocast(device, amp):
            scores = model.score(batch)  # (b, P)
        if scores.shape != (len(batch), model.num_pois):
            raise ValueError(f"{type(model).__name__}.score returned shape {tuple(scores.shape)}, "
                             f"expected ({len(batch)}, {model.num_pois})")
        yield batch, scores


@torch.no_grad()
def evaluate(model: Scorer, loader: SampleLoader, device: torch.device | str = "cpu", amp: str = "none",
             ks: Iterable[int] = DEFAULT_KS, ndcg_ks: Iterable[int] = DEFAULT_NDCG_KS,
             max_scores: int = MAX_SCORES) -> tuple[dict[str, float], np.ndarray]:
    """Rank every sample's target among all POIs.

    Args:
        model: any :class:`Scorer`, e.g. a :class:`~stgnn.models.base.Recommender` (put in eval
            mode for the call, mode restored after).
        loader: a non-shuffling :class:`SampleLoader`; ranks follow ``loader.targets``.
        device: where to score.
        amp: ``"none"``, ``"bf16"`` or ``"fp16"`` autocast (CUDA only). Scores are compared in
            the model's output precision, so low precision can create (pessimistic) ties.
        max_scores: scores held at once (:func:`score_chunks`); peak memory does not grow with
            the number of samples.

    Returns:
        ``(metrics, ranks)``: the mean metrics and ``(S,)`` int64 per-sample ranks aligned with
        ``loader.targets`` (for paired comparisons and slices such as cold-start flags).
    """
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = []
    try:
        for batch, scores in score_chunks(model, loader, device, amp, max_scores):
            out.append(ranks(scores, batch.target_poi).cpu())
    finally:
        model.train(was_training)
    r = torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)
    return metrics_from_ranks(r, ks, ndcg_ks), r


@torch.no_grad()
def top_k(model: Scorer, loader: SampleLoader, k: int = 10, device: torch.device | str = "cpu",
          amp: str = "none", max_scores: int = MAX_SCORES) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best POIs of every sample, chunk by chunk (:func:`score_chunks`).

    Returns:
        ``(pois (S, k) int64, scores (S, k) float32)`` aligned with ``loader.targets``, best
        first; ties broken by ``torch.topk``.
    """
    was_training = model.training
    model.eval()
    ids, vals = [], []
    try:
        for _, scores in score_chunks(model, loader, device, amp, max_scores):
            v, i = scores.float().topk(min(k, model.num_pois), dim=1)  # (b, k)
            ids.append(i.cpu())
            vals.append(v.cpu())
    finally:
        model.train(was_training)
    if not ids:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
    return torch.cat(ids).numpy(), torch.cat(vals).numpy()
