"""Structured explanations of scores: which memory check-ins and graph neighbours mattered.

:func:`explain` works on any model shaped like :class:`~stgnn.models.stgnn.STGNN` (the
:class:`Explainable` protocol: a forward pass returning its memory weights, ``log_probs`` and an
optional graph encoder); ``STGNN.explain`` calls it. Every value returned is a plain Python
number or string: an explanation is data, not prose.
"""
from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from stgnn.data.batch import Batch
from stgnn.models.graph_encoder import HeteroGraphEncoder

Neighbours = list[list[dict[str, Any]]]


class Explainable(Protocol):
    """What :func:`explain` reads of a model."""

    training: bool
    graph_encoder: HeteroGraphEncoder | None
    graph_data: HeteroData | None

    def __call__(self, batch: Batch) -> dict[str, Tensor]: ...

    def log_probs(self, out: dict[str, Tensor]) -> Tensor: ...

    def node_inputs(self) -> dict[str, Tensor]: ...

    def train(self, mode: bool = True) -> Any: ...


@torch.no_grad()
def explain(model: Explainable, batch: Batch, k: int = 3) -> list[dict[str, Any]]:
    """For each sample: its top-``k`` POIs, the ``k`` memory check-ins that carried the most
    weight (pointer weight when the model has a pointer, else attention), and for the top POI
    the ``k`` graph neighbours with the most attention in the last graph layer (layers with
    ``returns_attention``; otherwise none). The model's train/eval mode is restored.

    Returns a list (one dict per sample) of plain Python values (:func:`explanation_records`).
    """
    was = model.training
    model.train(False)
    out = model(batch)
    log_p = model.log_probs(out)                                                     # (B, P)
    neighbours = None
    enc = model.graph_encoder
    if enc is not None:
        x = {t: v for t, v in model.node_inputs().items() if t in enc.node_types}
        neighbours = top_graph_neighbours(enc, x, model.graph_data, log_p.topk(1, dim=1).indices[:, 0], k)
    model.train(was)
    return explanation_records(batch, out, log_p, k, neighbours)


def top_graph_neighbours(encoder: HeteroGraphEncoder, x: dict[str, Tensor], graph: HeteroData, pois: Tensor,
                         k: int) -> Neighbours | None:
    """For each POI in ``pois`` ``(B,)``, its ``k`` graph neighbours with the most attention in
    the encoder's last block, or ``None`` for a layer without ``returns_attention``.

    ``x`` are the encoder's node inputs. Relations that give the POI a single neighbour (its
    region, its category) are skipped: their weight is 1 by construction and says nothing.
    """
    if not encoder.caps.returns_attention:
        return None
    last_in = encoder(x, graph, num_blocks=len(encoder.convs) - 1)   # the last block's inputs
    att = encoder.last_layer_attention(last_in, graph, dst="poi")
    out: Neighbours = []
    for p in pois.tolist():
        cands = []
        for et, (ei, alpha) in att.items():
            sel = (ei[1] == p).nonzero().flatten()
            if len(sel) < 2:  # a lone neighbour (its region, its category) gets weight 1 trivially
                continue
            for e, a in zip(ei[0, sel].tolist(), alpha[sel].mean(-1).tolist()):
                cands.append({"relation": "__".join(et), "type": et[0], "node": e, "weight": a})
        out.append(sorted(cands, key=lambda c: -c["weight"])[:k])
    return out


def explanation_records(batch: Batch, out: dict[str, Tensor], log_p: Tensor, k: int,
                        neighbours: Neighbours | None) -> list[dict[str, Any]]:
    """One dict per sample: its top-``k`` POIs with their log-probabilities, the ``k`` memory
    check-ins that carried the most weight (pointer weight ``out["copy_w"]`` when present, else
    attention ``out["att_w"]``), and the top POI's graph ``neighbours``.

    Args:
        batch: the samples; ``out``: the model's forward outputs (``mem_poi``, ``mem_ts``,
            ``mem_mask`` ``(B, M)``, ``att_w`` and optionally ``copy_w`` ``(B, M)``).
        log_p: ``(B, P)`` scores; ``neighbours``: :func:`top_graph_neighbours` of the top POIs.
    """
    top_s, top_p = log_p.topk(min(k, log_p.shape[1]), dim=1)                     # (B, k)
    w = out.get("copy_w", out["att_w"]).masked_fill(~out["mem_mask"], -1.0)      # (B, M)
    top_w, top_m = w.topk(min(k, w.shape[1]), dim=1)                              # (B, k)
    hist_len = batch.hist_poi.shape[1]
    result = []
    for b in range(len(batch)):
        checkins = [{"source": "history" if m < hist_len else "prefix",
                     "poi": int(out["mem_poi"][b, m]), "ts": int(out["mem_ts"][b, m]), "weight": float(wt)}
                    for wt, m in zip(top_w[b].tolist(), top_m[b].tolist()) if wt >= 0]
        result.append({"index": int(batch.index[b]), "top_pois": top_p[b].tolist(),
                       "log_prob": top_s[b].tolist(), "checkins": checkins,
                       "neighbors": neighbours[b] if neighbours is not None else []})
    return result
