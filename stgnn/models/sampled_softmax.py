"""Sampled softmax: STGNN's training loss over very large POI sets.

With ``num_sampled = K > 0`` a training step draws ``K`` uniform negatives shared by the batch
(:func:`draw_negatives`); the step's *columns* are the batch's targets and those negatives, sorted
and unique. :meth:`STGNN.forward <stgnn.models.stgnn.STGNN.forward>` then encodes and scores only
the POIs the step reads (prefix, history, columns; on sampled neighbourhoods when the graph is
sampled) and gives the pointer's mass on each target directly, so no ``(B, P)`` tensor is built
and a step costs what its batch holds, whatever ``P``. What stays proportional to ``P`` is the
optimizer's update of the ``(P, dim)`` id embeddings and biases (and, when on, the snapshot cell
and the id-dropout draw). Scoring (evaluation, serving) still ranks every POI, in chunks
(:func:`stgnn.eval.evaluate.score_chunks`).

``num_sampled="auto"`` (:func:`resolve_num_sampled`) keeps the full softmax up to
``AUTO_SAMPLED_POIS`` POIs (NYC and every table of the paper) and samples above it.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

#: ``num_sampled="auto"``: a full softmax up to this many POIs, above it ``AUTO_NUM_SAMPLED``
#: negatives shared by the batch (the same bar as the ``(P, P)`` distance table's).
AUTO_SAMPLED_POIS, AUTO_NUM_SAMPLED = 20_000, 2048


def resolve_num_sampled(num_sampled: int | str, num_pois: int) -> int:
    """``num_sampled`` as a count: ``"auto"`` is 0 up to ``AUTO_SAMPLED_POIS`` POIs, else
    ``AUTO_NUM_SAMPLED``.

    Raises:
        ValueError: neither ``"auto"`` nor an int ``>= 0``.
    """
    if num_sampled == "auto":
        return AUTO_NUM_SAMPLED if num_pois > AUTO_SAMPLED_POIS else 0
    if isinstance(num_sampled, bool) or not isinstance(num_sampled, int) or num_sampled < 0:
        raise ValueError(f"STGNN(num_sampled={num_sampled!r}): a count >= 0 or 'auto'")
    return num_sampled


def draw_negatives(target: Tensor, num_pois: int, k: int) -> tuple[Tensor, Tensor]:
    """``k`` uniform negatives shared by the batch and the step's columns.

    Shapes:
        ``target (B,)`` -> ``(neg (K,), columns (C,))``; ``columns`` = sorted unique targets and
        negatives.
    """
    neg = torch.randint(0, num_pois, (k,), device=target.device)
    return neg, torch.unique(torch.cat([target, neg]))


def sampled_log_p_gen(gen: Tensor, columns: Tensor, target: Tensor, neg: Tensor) -> Tensor:
    """Each target's log-probability under the softmax over it and the shared negatives (a
    negative equal to a sample's target is masked for that sample).

    Shapes:
        ``gen (B, C)`` logits over ``columns (C,)``, ``target (B,)``, ``neg (K,)`` -> ``(B, 1)``.
    """
    pos = gen.gather(1, torch.searchsorted(columns, target)[:, None])                   # (B, 1)
    negs = gen[:, torch.searchsorted(columns, neg)].masked_fill(neg[None, :] == target[:, None], float("-inf"))
    return torch.cat([pos, negs], 1).log_softmax(-1)[:, :1]                             # of a (B, 1+K) softmax


def sampled_nll(model: Any, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
    """STGNN's training NLL with the generate softmax over each target and ``model.num_sampled``
    shared negatives, scoring only those columns; also the forward's outputs (``u`` feeds the
    auxiliary heads).

    Shapes:
        ``-> (loss (), {"gen": (B, C), "u": (B, dim), ...})``.
    """
    neg, columns = draw_negatives(batch.target_poi, model.num_pois, model.num_sampled)  # (K,), (C,)
    out = model(batch, columns=columns)                                                  # gen: (B, C)
    log_p_gen = sampled_log_p_gen(out["gen"], columns, batch.target_poi, neg)            # (B, 1)
    return -model._mix(out, log_p_gen, out.get("p_copy_target")).mean(), out


__all__ = ["AUTO_NUM_SAMPLED", "AUTO_SAMPLED_POIS", "draw_negatives", "resolve_num_sampled", "sampled_log_p_gen",
           "sampled_nll"]
