"""SASRec: causal self-attention over the prefix, scored by the shared POI embeddings.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018
(https://arxiv.org/abs/1808.09781); reference code: kang205/SASRec (TensorFlow) and
pmixer/SASRec.pytorch.

    x_t = E[poi_t] * sqrt(d) + Pos[t]                  t = 0 .. len-1
    h   = Blocks(x)    # pre-LN causal multi-head attention + point-wise FFN, residuals
    score(p) = LN(h)_{len-1} . E[p]                    (POI embeddings shared with the input)

What differs from the original, and why:

* **Loss.** The original trains every position with binary cross-entropy against one sampled
  negative item. Here only the last prefix position is scored (one protocol sample = one
  (prefix, target) pair; every training check-in is a target once), with full softmax
  cross-entropy over all ~5k POIs: exact, cheap at this size, and the loss every other model
  here uses.
* **Positions.** The original left-pads to ``maxlen`` so a position index counts back from
  the most recent item. Our batches are right-padded, so positions count from the start of
  the (at most ``max_len`` long) prefix, as in pmixer's later PyTorch version; padded
  positions are masked out of attention and zeroed.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from stgnn.data.batch import Batch
from stgnn.models.base import Recommender


class _Block(nn.Module):
    """Pre-LN causal self-attention + point-wise feed-forward (SASRec's block)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, causal: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        # x: (B, L, d); causal: (L, L) True = blocked; pad: (B, L) True = padded key
        q = self.ln1(x)
        # The original uses the normalised input as query only, raw x as key/value.
        a, _ = self.attn(q, x, x, attn_mask=causal, key_padding_mask=pad, need_weights=False)
        x = q + a
        return x + self.ffn(self.ln2(x))                           # (B, L, d)


class SASRec(Recommender):
    """Self-attentive sequential recommender with tied input/output POI embeddings.

    Args:
        num_users, num_pois: id-space sizes of the split.
        dim: embedding size ``d``.
        num_blocks, heads: transformer blocks and attention heads.
        max_len: number of learned positions (the loader's ``max_len`` must not exceed it).
        dropout: dropout on embeddings, attention and feed-forward.

    Shapes:
        ``batch.poi``, ``batch.mask``: ``(B, L)`` right-padded, ``L <= max_len``;
        ``score(batch)``: ``(B, P)``.
    """

    def __init__(self, num_users: int, num_pois: int, *, dim: int = 64, num_blocks: int = 2,
                 heads: int = 1, max_len: int = 64, dropout: float = 0.2) -> None:
        super().__init__(num_users, num_pois)
        self.dim, self.max_len = dim, max_len
        self.embed = nn.Embedding(num_pois, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, heads, dropout) for _ in range(num_blocks))
        self.ln = nn.LayerNorm(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embed.weight, std=0.05)
        nn.init.normal_(self.pos.weight, std=0.05)

    def encode(self, batch: Batch) -> torch.Tensor:
        """``(B, d)`` the normalised state at the last real prefix position."""
        B, L = batch.poi.shape
        if L > self.max_len:
            raise ValueError(f"prefix length {L} > SASRec max_len={self.max_len}; "
                             f"build the SampleLoader with max_len <= {self.max_len}")
        mask = batch.mask                                                   # (B, L)
        pos = torch.arange(L, device=mask.device)
        x = self.embed(batch.poi) * math.sqrt(self.dim) + self.pos(pos)[None]  # (B, L, d)
        x = self.drop(x) * mask[..., None]
        causal = torch.triu(torch.ones(L, L, dtype=torch.bool, device=mask.device), 1)  # (L, L)
        pad = ~mask
        for blk in self.blocks:
            # Zero padded positions after every block, as the original's timeline mask.
            x = blk(x, causal, pad) * mask[..., None]
        h = self.ln(x)                                                      # (B, L, d)
        last = (batch.length - 1).clamp(min=0)
        return h[torch.arange(B, device=h.device), last]                    # (B, d)

    def score(self, batch: Batch) -> torch.Tensor:
        return self.encode(batch) @ self.embed.weight.t()                   # (B, P)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}, max_len={self.max_len}"
