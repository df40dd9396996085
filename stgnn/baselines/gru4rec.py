"""GRU4Rec: a GRU over the trajectory prefix, scored against every POI.

Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks", ICLR 2016
(https://arxiv.org/abs/1511.06939); reference code: hidasib/GRU4Rec (Theano) and its
official PyTorch port hidasib/GRU4Rec_PyTorch_Official.

    h_t = GRU(E[poi_t], h_{t-1})           t = 1 .. len
    score(p) = W_p . h_len + b_p           for every POI p

What differs from the original, and why:

* **Training samples.** The original trains with *session-parallel mini-batches*: each batch
  row carries a session across batches, the hidden state is reset when a session ends, and
  every step predicts the next item. Here a sample is one (prefix, target) pair from the
  protocol's :class:`~stgnn.data.batch.SampleLoader` (every training check-in after the
  first of its trajectory is one sample), the GRU reads the prefix from scratch, and only the
  last position is scored. Both see the same (prefix -> next) pairs; ours keeps one engine
  and one batch type for every model.
* **Loss.** The original uses sampled ranking losses (BPR-max / TOP1-max with in-batch and
  extra negatives) because full softmax over ~10^5-10^6 items was too slow. With ~5k POIs a
  full softmax cross-entropy over all POIs is cheap and exact, and it is what every other
  model here optimises, so comparisons measure the encoder, not the loss.
* **Embedding input.** The original's default feeds one-hot items; the later versions (and
  the PyTorch port) use an embedding layer, as here.
"""
from __future__ import annotations

import torch
from torch import nn

from stgnn.data.batch import Batch
from stgnn.models.base import Recommender


class GRU4Rec(Recommender):
    """GRU sequence encoder with a full-softmax output layer.

    Args:
        num_users, num_pois: id-space sizes of the split.
        dim: POI embedding size.
        hidden: GRU hidden size (default: ``dim``).
        num_layers: stacked GRU layers.
        dropout: dropout on the embeddings and on the final hidden state.

    Shapes:
        ``batch.poi``, ``batch.mask``: ``(B, L)`` right-padded; ``score(batch)``: ``(B, P)``.
    """

    def __init__(self, num_users: int, num_pois: int, *, dim: int = 64, hidden: int | None = None,
                 num_layers: int = 1, dropout: float = 0.2) -> None:
        super().__init__(num_users, num_pois)
        self.dim, self.hidden = dim, hidden or dim
        self.embed = nn.Embedding(num_pois, dim)
        self.gru = nn.GRU(dim, self.hidden, num_layers=num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(self.hidden, num_pois)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embed.weight, std=0.05)
        self.gru.reset_parameters()
        self.out.reset_parameters()

    def encode(self, batch: Batch) -> torch.Tensor:
        """``(B, hidden)`` the GRU state after the last real prefix position."""
        x = self.drop(self.embed(batch.poi))                      # (B, L, dim)
        h, _ = self.gru(x)                                        # (B, L, hidden)
        # Right padding: the output at position len-1 has seen only real positions.
        last = (batch.length - 1).clamp(min=0)                    # (B,)
        return h[torch.arange(len(batch), device=h.device), last]  # (B, hidden)

    def score(self, batch: Batch) -> torch.Tensor:
        return self.out(self.drop(self.encode(batch)))            # (B, P)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}, hidden={self.hidden}"
