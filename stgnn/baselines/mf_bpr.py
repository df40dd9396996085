"""MF-BPR: matrix factorisation trained with Bayesian Personalised Ranking.

Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009
(https://arxiv.org/abs/1205.2618). Score of POI ``p`` for user ``u``:

    s(u, p) = <e_u, e_p> + b_p

Training pairs are the batch's ``(user, target_poi)``; each is contrasted with ``num_neg``
POIs drawn uniformly from all POIs (from the torch global RNG, which the engine seeds):

    loss = -mean log sigmoid(s(u, p) - s(u, n))  +  l2 * (|e_u|^2 + |e_p|^2 + |e_n|^2) / B

A negative that happens to equal the positive is dropped from the mean (it carries no signal).
The model ignores the sequence: it is the non-sequential personalised baseline.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stgnn.data.batch import Batch
from stgnn.models.base import Recommender


class MFBPR(Recommender):
    """User x POI factorisation with a POI bias, BPR loss with uniform negatives.

    Args:
        num_users, num_pois: id-space sizes of the split.
        dim: embedding size ``D``.
        num_neg: negatives per positive.
        l2: L2 weight on the embeddings touched by a batch (classic BPR regularisation).
        init_std: std of the normal initialisation of the embeddings.

    Shapes:
        ``score(batch)``: ``(B, P)``; ``loss(batch)``: scalar.
    """

    def __init__(self, num_users: int, num_pois: int, *, dim: int = 64, num_neg: int = 1,
                 l2: float = 1e-5, init_std: float = 0.1) -> None:
        super().__init__(num_users, num_pois)
        self.dim, self.num_neg, self.l2, self.init_std = dim, num_neg, l2, init_std
        self.user_emb = nn.Embedding(num_users, dim)
        self.poi_emb = nn.Embedding(num_pois, dim)
        self.poi_bias = nn.Embedding(num_pois, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_emb.weight, std=self.init_std)
        nn.init.normal_(self.poi_emb.weight, std=self.init_std)
        nn.init.zeros_(self.poi_bias.weight)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}, num_neg={self.num_neg}, l2={self.l2}"

    def score(self, batch: Batch) -> torch.Tensor:
        u = self.user_emb(batch.user)                                     # (B, D)
        return u @ self.poi_emb.weight.T + self.poi_bias.weight.T        # (B, P)

    def loss(self, batch: Batch) -> torch.Tensor:
        u = self.user_emb(batch.user)                                     # (B, D)
        pos = batch.target_poi                                            # (B,)
        neg = torch.randint(self.num_pois, (len(batch), self.num_neg), device=pos.device)  # (B, K)
        e_pos, e_neg = self.poi_emb(pos), self.poi_emb(neg)               # (B, D), (B, K, D)
        s_pos = (u * e_pos).sum(-1) + self.poi_bias(pos).squeeze(-1)      # (B,)
        s_neg = (u[:, None, :] * e_neg).sum(-1) + self.poi_bias(neg).squeeze(-1)  # (B, K)
        keep = (neg != pos[:, None]).float()                              # (B, K)
        bpr = -(F.logsigmoid(s_pos[:, None] - s_neg) * keep).sum() / keep.sum().clamp(min=1)
        reg = (u.pow(2).sum() + e_pos.pow(2).sum() + e_neg.pow(2).sum()) / len(batch)
        return bpr + self.l2 * reg
