"""Sequence encoders over a right-padded trajectory prefix: transformer, LSTM, GRU or none.

All share one signature, ``encoder(x (B, L, D), mask (B, L)) -> (B, L, D)``, so a model picks one
by name (``make_sequence_encoder``) and an ablation is a one-word change.

Prefix lengths are skewed (NYC training prefixes: median 4, mean 10.6, yet nearly every batch
holds one of the maximum 64), so the Transformer and the RNNs run on length buckets
(:func:`by_length`): the same outputs at the real steps, without computing on the padding.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn


def by_length(fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, mask: Tensor) -> Tensor:
    """Run ``fn`` on power-of-two length buckets of a right-padded batch, each cut to its longest.

    Samples whose length is in ``(2^(k-1), 2^k]`` form bucket ``k`` and are cut to that bucket's
    longest sample, so at most half of what ``fn`` computes is padding (against ~85% for NYC
    prefixes padded to 64). For an ``fn`` whose output at a real step depends only on that step
    and earlier ones (causal attention, RNNs, with positions counted from the first step) the
    result at real steps equals ``fn(x, mask)``; padded steps are zero.

    Args:
        fn: ``(x (b, l, D), mask (b, l)) -> (b, l, D)``.
        x: ``(B, L, D)``; mask: ``(B, L)`` bool, True on a prefix of each row (right padding).

    Returns:
        ``(B, L, D)``.

    Raises:
        ValueError: ``mask`` is not right-padded.
    """
    B, L = mask.shape
    length = mask.sum(1)                                                          # (B,)
    if not torch.equal(mask, torch.arange(L, device=mask.device)[None] < length[:, None]):
        raise ValueError("by_length needs right-padded masks (True on a prefix of each row)")
    bucket = torch.ceil(torch.log2(length.clamp(min=1).double())).long()          # (B,)
    out: Tensor | None = None
    for k in torch.unique(bucket).tolist():
        idx = (bucket == k).nonzero()[:, 0]                                       # (b,)
        lk = max(int(length[idx].max()), 1)
        m = mask[idx, :lk]
        y = fn(x[idx, :lk], m) * m[..., None]
        if out is None:  # fn's dtype, which autocast may make differ from x's
            out = y.new_zeros((B, L, y.shape[-1]))
        out[idx, :lk] = y
    return out if out is not None else x.new_zeros(x.shape)                     # an empty batch


class TransformerSeqEncoder(nn.Module):
    """Causal pre-norm Transformer encoder (each step sees itself and earlier steps only).

    Args:
        dim: model width; heads: attention heads; layers: blocks; dropout: dropout rate.

    Shapes:
        x ``(B, L, dim)``, mask ``(B, L)`` bool (True = real) -> ``(B, L, dim)``.
    """

    def __init__(self, dim: int, heads: int = 2, layers: int = 2, dropout: float = 0.1, max_len: int = 512) -> None:
        super().__init__()
        block = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.net = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.pos = nn.Embedding(max_len, dim)
        self.norm = nn.LayerNorm(dim)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return by_length(self._forward, x, mask)

    def _forward(self, x: Tensor, mask: Tensor) -> Tensor:
        B, L, _ = x.shape
        x = x + self.pos(torch.arange(L, device=x.device))[None]                   # (B, L, D)
        causal = torch.triu(torch.ones(L, L, dtype=torch.bool, device=x.device), 1)  # (L, L) True = blocked
        # right padding: real steps never attend to pads because pads come after them (causal)
        out = self.net(x, mask=causal)                                             # (B, L, D)
        return self.norm(out) * mask[..., None]


class RNNSeqEncoder(nn.Module):
    """LSTM or GRU over the prefix (pads come last, so real steps are unaffected by them).

    Shapes:
        x ``(B, L, dim)``, mask ``(B, L)`` -> ``(B, L, dim)``.
    """

    def __init__(self, dim: int, kind: str = "lstm", layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.kind = kind
        self.net = rnn(dim, dim, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)

    def reset_parameters(self) -> None:
        self.net.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return by_length(self._forward, x, mask)

    def _forward(self, x: Tensor, mask: Tensor) -> Tensor:
        out, _ = self.net(x)                                                        # (B, L, D)
        return out * mask[..., None]


class IdentitySeqEncoder(nn.Module):
    """No sequence model (ablation ``seq_encoder: none``): each step is its own input."""

    def reset_parameters(self) -> None:
        pass

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return x * mask[..., None]


SEQ_ENCODERS = ("transformer", "lstm", "gru", "none")


def make_sequence_encoder(kind: str, dim: int, heads: int = 2, layers: int = 2, dropout: float = 0.1) -> nn.Module:
    """Build a sequence encoder by name (one of :data:`SEQ_ENCODERS`)."""
    if kind == "transformer":
        return TransformerSeqEncoder(dim, heads, layers, dropout)
    if kind in ("lstm", "gru"):
        return RNNSeqEncoder(dim, kind, layers=1, dropout=dropout)
    if kind == "none":
        return IdentitySeqEncoder()
    raise ValueError(f"unknown seq_encoder {kind!r}; valid: {', '.join(SEQ_ENCODERS)}")
