"""STGNN's sequence step: the encoder state at the end of each prefix (step 2 of :mod:`stgnn.models.stgnn`).

Each prefix step is ``G_poi[poi] + tow(t) + dt(t - t_prev) + dd(dist(prev, poi))`` (the time and
space terms when the model has them); the sequence encoder runs over the steps and the state at
the last real one is the prefix's query state ``q``. It reads ``batch.poi, ts, tz, mask, length``
and nothing else of the batch (no query time, no history), which a served model relies on to
memoise it per user trajectory (:mod:`stgnn.serve.memo`).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from stgnn.data.batch import Batch
from stgnn.features.time import hour_of_week, time_bucket


def encode_prefix(model: Any, batch: Batch, rows: Callable[[Tensor], Tensor]) -> Tensor:
    """``(B, d)`` the state of ``model.seq`` at each prefix's last check-in.

    Args:
        model: an STGNN (its ``opts``, ``tow_emb``, ``dt_emb``, ``dd_emb``, ``dist_pairs``, ``seq``).
        batch: ``poi, ts, tz, mask`` ``(B, L)`` and ``length`` ``(B,)`` are read.
        rows: POI ids ``(*)`` -> their encodings ``(*, d)``.
    """
    x = rows(batch.poi)                                                      # (B, L, d)
    if model.opts["time_enc"] == "tow":
        prev_ts = torch.cat([batch.ts[:, :1], batch.ts[:, :-1]], 1)          # (B, L)
        x = x + model.tow_emb(hour_of_week(batch.ts, batch.tz)) + model.dt_emb(time_bucket(batch.ts - prev_ts))
    if model.opts["space_enc"] == "bucket":
        prev = torch.cat([batch.poi[:, :1], batch.poi[:, :-1]], 1)           # (B, L)
        x = x + model.dd_emb(model.dist_pairs(prev, batch.poi))
    h = model.seq(x, batch.mask)                                             # (B, L, d)
    return h.gather(1, (batch.length - 1)[:, None, None].expand(-1, 1, model.dim))[:, 0]


__all__ = ["encode_prefix"]
