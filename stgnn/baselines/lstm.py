"""LSTM with attention over the check-in sequence: the seed article's model, made concrete.

The seed's sketch mixes up its tensor shapes; this module reads it as follows:

    x_t = [poi_emb(p_t) ‖ cat_emb(c_t) ‖ how_emb(hour_of_week_t)]     (B, L, D_in)
    h   = LSTM(x)  over the real (packed) positions                    (B, L, H)
    a   = masked_softmax(h · W_q h_last / sqrt(H))                    (B, L)
    ctx = sum_t a_t h_t                                               (B, H)
    s   = Linear([ctx ‖ h_last])                                      (B, P)

trained with full softmax cross-entropy over all POIs (the base class's ``loss``). The
sequence is the trajectory prefix; with ``use_history=True`` the user's visible earlier
check-ins (``batch.hist_*``) come first, oldest first. Category and hour-of-week inputs are
optional (``cat_dim=0`` / ``time_dim=0`` switch them off; categories need ``num_categories``).
Batches are right-padded: padded steps are excluded by packing, and from attention by the mask.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from stgnn.data.batch import Batch
from stgnn.features.time import HOURS_PER_WEEK, hour_of_week
from stgnn.inputs import ModelInputs
from stgnn.models.base import Recommender


def _left_compact(mask: torch.Tensor, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Move the real positions of each row to the front, keeping their order.

    ``mask`` and every ``x`` are ``(B, W)``; returns ``(mask, *xs)`` reordered (pads at the end).
    """
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices  # (B, W)
    return tuple(t.gather(1, order) for t in (mask, *xs))


class LSTM(Recommender):
    """LSTM + dot-product attention over the check-in sequence, scoring all POIs.

    Args:
        num_users, num_pois: id-space sizes of the split.
        num_categories: number of categories (0: no category input).
        dim: POI embedding size.
        cat_dim: category embedding size (0: off).
        time_dim: hour-of-week embedding size (0: off).
        hidden: LSTM hidden size ``H``.
        num_layers: stacked LSTM layers.
        dropout: dropout on the inputs and on the features before the output layer.
        use_history: prepend the user's visible history (``batch.hist_*``) to the prefix.

    Shapes:
        ``score(batch)``: ``(B, P)`` logits; ``loss(batch)``: scalar cross-entropy.
    """

    def __init__(self, num_users: int, num_pois: int, *, num_categories: int = 0, dim: int = 64,
                 cat_dim: int = 16, time_dim: int = 16, hidden: int = 128, num_layers: int = 1,
                 dropout: float = 0.2, use_history: bool = False) -> None:
        super().__init__(num_users, num_pois)
        self.num_categories, self.use_history = num_categories, use_history
        cat_dim = cat_dim if num_categories > 0 else 0
        self.poi_emb = nn.Embedding(num_pois, dim)
        self.cat_emb = nn.Embedding(num_categories, cat_dim) if cat_dim > 0 else None
        self.time_emb = nn.Embedding(HOURS_PER_WEEK, time_dim) if time_dim > 0 else None
        self.rnn = nn.LSTM(dim + cat_dim + time_dim, hidden, num_layers=num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0)
        self.query = nn.Linear(hidden, hidden, bias=False)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, num_pois)

    @classmethod
    def from_inputs(cls, inputs: ModelInputs, **kwargs: Any) -> "LSTM":
        return cls(inputs.num_users, inputs.num_pois, num_categories=inputs.num_categories, **kwargs)

    def reset_parameters(self) -> None:
        for m in (self.poi_emb, self.cat_emb, self.time_emb, self.rnn, self.query, self.out):
            if m is not None:
                m.reset_parameters()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_categories={self.num_categories}, use_history={self.use_history}"

    def _sequence(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """``(poi, category, ts, tz, mask)``, each ``(B, W)``, left-aligned, oldest first."""
        seq = (batch.mask, batch.poi, batch.category, batch.ts, batch.tz)
        if not self.use_history:
            return seq
        hist = (batch.hist_mask, batch.hist_poi, batch.hist_category, batch.hist_ts, batch.hist_tz)
        mask, *xs = _left_compact(*(torch.cat([h, s], 1) for h, s in zip(hist, seq)))  # (B, H+L) each
        width = int(mask.sum(1).max())
        return tuple(t[:, :width] for t in (mask, *xs))

    def encode(self, batch: Batch) -> torch.Tensor:
        """``(B, 2H)`` sequence representation ``[ctx ‖ h_last]``."""
        mask, poi, cat, ts, tz = self._sequence(batch)                    # (B, W) each
        parts = [self.poi_emb(poi)]                                       # (B, W, dim)
        if self.cat_emb is not None:
            parts.append(self.cat_emb(cat))                               # (B, W, cat_dim)
        if self.time_emb is not None:
            parts.append(self.time_emb(hour_of_week(ts, tz)))             # (B, W, time_dim)
        x = self.drop(torch.cat(parts, -1))                               # (B, W, D_in)
        length = mask.sum(1)                                              # (B,) >= 1
        packed = pack_padded_sequence(x, length.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.rnn(packed)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # (B, W, H)
        last = h_n[-1]                                                    # (B, H) state after the last real step
        att = (h @ self.query(last).unsqueeze(-1)).squeeze(-1) / h.shape[-1] ** 0.5  # (B, W)
        att = att.masked_fill(~mask, float("-inf")).softmax(1)           # (B, W), 0 on pads
        ctx = (att.unsqueeze(-1) * h).sum(1)                              # (B, H)
        return torch.cat([ctx, last], -1)                                 # (B, 2H)

    def score(self, batch: Batch) -> torch.Tensor:
        return self.out(self.drop(self.encode(batch)))                    # (B, P)

    def loss(self, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(self.score(batch), batch.target_poi)
