"""GETNext: trajectory-flow-map GCN embeddings + Transformer + graph-adjusted POI logits.

Yang, Liu & Zhao, "GETNext: Trajectory Flow Map Enhanced Transformer for Next POI
Recommendation", SIGIR 2022 (https://arxiv.org/abs/2303.04741); reference code:
songyangco/GETNext.

* **Trajectory flow map** (built in :meth:`GETNext.prepare` from training check-ins only):
  nodes = POIs, ``A[i, j]`` = number of training transitions ``i -> j`` between consecutive
  check-ins of one trajectory; node features ``X = [log1p(checkins) | category one-hot | lat,
  lon]``; ``Â = D̃^-1 (A + I)`` (the original's "hat random-walk normalised" matrix).
* **POI embeddings** ``E_poi = GCN(X, Â)`` (``Â X W`` layers, LeakyReLU, dropout before the
  last), recomputed every forward pass so the GCN trains end to end.
* **Check-in embedding** ``[LeakyReLU(W1 [e_user ; e_poi]) ; LeakyReLU(W2 [t2v(time) ; e_cat])]``
  with Time2Vec (sine) of the local time of day in ``[0, 1)``.
* **Transformer encoder** (causal) over the prefix; heads for the next POI, its time of day and
  its category. The POI logits of the last position are adjusted by the *transition attention
  map* row of the last POI: ``Φ[i, j] = LeakyReLU(a1 . XW_i + a2 . XW_j) * (Â[i, j] + 1)``.
* **Loss** ``CE(POI) + time_weight * MSE(time) + CE(category)`` (``time_weight = 10``).

What differs from the original, and why:

* **Which samples.** The public code drops trajectories with fewer than 3 check-ins (train and
  val) and reports metrics on what remains; our protocol scores every val/test sample, short
  prefixes included (one-check-in prefixes included), so numbers are not directly comparable.
* **Loss positions.** The original predicts the next POI at every position of a training
  trajectory. A protocol sample here is one (prefix, target) pair and every training check-in
  is a target once, so the POI loss is on the last position only (same pairs overall, one
  batch type for all models). The category loss uses every position (labels: the next
  prefix category, then the target's). The time loss uses the positions inside the prefix
  (labels: the next prefix check-in's time of day), so the target time is never read
  (``uses_target_time = False``).
* **Attention axis.** The public code passes ``(batch, time, dim)`` tensors to a
  ``TransformerEncoder`` built without ``batch_first`` and a ``(batch, batch)`` mask, so its
  attention runs across the trajectories of a batch; we attend over time with a causal mask
  and padding mask, as the paper describes.
* **Time2Vec init.** Same form (one linear + sine channels on the time of day), but the
  frequencies start at periods from 1 h to 1 day (:class:`stgnn.features.time.Time2Vec`)
  instead of ``randn``, so the daily rhythm is representable from the first step.
* **Node features.** The original feeds raw check-in counts and raw latitude/longitude; we use
  ``log1p`` counts and standardise all columns with training-POI statistics so that the GCN
  input is well scaled (same information).
* **Sparse adjacency.** ``Â`` is a sparse matrix (``torch.sparse.mm``), and the attention map
  is evaluated only for the rows needed (the batch's last POIs), never as a dense ``P x P``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from stgnn.data.batch import Batch
from stgnn.features.time import Time2Vec, day_fraction
from stgnn.inputs import ModelInputs, TrainStats
from stgnn.models.base import Recommender


def flow_graph(stats: TrainStats, num_pois: int) -> sp.csr_matrix:
    """The trajectory flow map ``A (P, P)`` (CSR, float64): counts of training transitions
    ``i -> j`` between consecutive check-ins of one trajectory, both in the training period."""
    P = num_pois
    A = sp.csr_matrix((stats.trans_count.numpy().astype(np.float64),
                       (stats.trans_src.numpy(), stats.trans_dst.numpy())), shape=(P, P))
    A.sum_duplicates()
    return A


class _GCN(nn.Module):
    """``Â X W`` graph convolutions with LeakyReLU between and dropout before the last."""

    def __init__(self, channels: list[int], dropout: float) -> None:
        super().__init__()
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(channels[:-1], channels[1:]))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        # x: (P, F); adj: sparse (P, P)
        for i, lin in enumerate(self.lins):
            if i == len(self.lins) - 1:
                x = F.dropout(x, self.dropout, self.training)
            x = torch.sparse.mm(adj, lin(x))
            if i < len(self.lins) - 1:
                x = F.leaky_relu(x, 0.2)
        return x                                                                  # (P, out)


class GETNext(Recommender):
    """GETNext (see the module docstring for the equations and the deviations).

    Args:
        num_users, num_pois: id-space sizes of the split.
        num_categories: number of POI categories (``inputs.num_categories``).
        user_dim, poi_dim, time_dim, cat_dim: embedding sizes (paper: 128, 128, 32, 32).
        gcn_hidden: GCN hidden channels (paper: ``(32, 64)``).
        attn_dim: hidden size of the transition attention map (paper: 128).
        heads, layers, ffn: Transformer encoder heads, layers and feed-forward size
            (paper: 2, 2, 1024).
        dropout, gcn_dropout: Transformer / GCN dropout (paper: 0.3, 0.3).
        time_weight: weight of the time-of-day MSE loss (paper: 10).

    Shapes:
        ``score(batch)``: ``(B, P)``. Build with :meth:`from_inputs` (its :meth:`prepare` builds the graph).
    """

    def __init__(self, num_users: int, num_pois: int, *, num_categories: int = 0, user_dim: int = 128,
                 poi_dim: int = 128, time_dim: int = 32, cat_dim: int = 32,
                 gcn_hidden: tuple[int, ...] = (32, 64), attn_dim: int = 128, heads: int = 2,
                 layers: int = 2, ffn: int = 1024, dropout: float = 0.3, gcn_dropout: float = 0.3,
                 time_weight: float = 10.0, max_len: int = 512) -> None:
        super().__init__(num_users, num_pois)
        C = max(num_categories, 1)
        self.num_categories, self.time_weight = C, time_weight
        self.num_features = 1 + C + 2
        self.gcn = _GCN([self.num_features, *gcn_hidden, poi_dim], gcn_dropout)
        self.attn_W = nn.Linear(self.num_features, attn_dim, bias=False)
        self.attn_a = nn.Linear(2 * attn_dim, 1, bias=False)
        self.emb_user = nn.Embedding(num_users, user_dim)
        self.emb_cat = nn.Embedding(C, cat_dim)
        self.t2v = Time2Vec(time_dim, min_period=1 / 24, max_period=1.0)  # tau in days
        self.fuse1 = nn.Linear(user_dim + poi_dim, user_dim + poi_dim)
        self.fuse2 = nn.Linear(time_dim + cat_dim, time_dim + cat_dim)
        self.d_model = D = user_dim + poi_dim + time_dim + cat_dim
        layer = nn.TransformerEncoderLayer(D, heads, ffn, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.drop = nn.Dropout(dropout)
        self.register_buffer("pe", _sinusoid(max_len, D), persistent=False)       # (max_len, D)
        self.head_poi = nn.Linear(D, num_pois)
        self.head_time = nn.Linear(D, 1)
        self.head_cat = nn.Linear(D, C)
        # Training-period graph, rebuilt by prepare (not saved: it is a function of the inputs).
        self.register_buffer("poi_category", torch.zeros(num_pois, dtype=torch.long))
        self.register_buffer("x", torch.zeros(0), persistent=False)               # (P, F)
        self.register_buffer("adj", torch.zeros(0), persistent=False)             # sparse (P, P)
        self.reset_parameters()

    @classmethod
    def from_inputs(cls, inputs: ModelInputs, **kwargs: Any) -> "GETNext":
        model = cls(inputs.num_users, inputs.num_pois, num_categories=inputs.num_categories, **kwargs)
        model.prepare(inputs)
        return model

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.attn_W.weight, gain=1.414)
        nn.init.xavier_uniform_(self.attn_a.weight, gain=1.414)
        nn.init.uniform_(self.head_poi.weight, -0.1, 0.1)
        nn.init.zeros_(self.head_poi.bias)

    def prepare(self, inputs: ModelInputs) -> None:
        """Build the flow map, node features and ``Â`` from the training period (``part == 0``)."""
        if inputs.num_pois != self.num_pois:
            raise ValueError(f"GETNext built for {self.num_pois} POIs, inputs have {inputs.num_pois}")
        counts, A = inputs.stats.poi_count.numpy(), flow_graph(inputs.stats, self.num_pois)
        cat = inputs.poi_category.numpy()
        if cat.size and cat.max() >= self.num_categories:
            raise ValueError(f"GETNext: poi_category holds {cat.max()} >= num_categories="
                             f"{self.num_categories}; build with num_categories=inputs.num_categories")
        P, C = self.num_pois, self.num_categories
        x = np.zeros((P, 1 + C + 2), dtype=np.float64)
        x[:, 0] = np.log1p(counts)
        x[np.arange(P), 1 + cat] = 1.0
        x[:, -2] = np.nan_to_num(inputs.poi_lat.numpy())
        x[:, -1] = np.nan_to_num(inputs.poi_lon.numpy())
        seen = counts > 0
        ref = x[seen] if seen.any() else x
        mu, sd = ref.mean(0), ref.std(0)
        sd[sd == 0] = 1.0
        x = (x - mu) / sd
        # Â = D̃^-1 (A + I): row-normalised with self loops
        A_hat = (A + sp.identity(P, format="csr")).tocsr()
        A_hat = sp.diags(1.0 / np.asarray(A_hat.sum(1)).ravel()) @ A_hat
        coo = A_hat.tocoo()
        adj = torch.sparse_coo_tensor(np.stack((coo.row, coo.col)), coo.data.astype(np.float32), (P, P),
                                      check_invariants=True)
        self.x = torch.from_numpy(x.astype(np.float32)).to(self.poi_category.device)
        self.adj = adj.coalesce().to(self.poi_category.device)
        self.poi_category.copy_(torch.from_numpy(cat))

    # ------------------------------------------------------------------ forward pieces
    def _check_fitted(self) -> None:
        if self.x.numel() == 0:
            raise RuntimeError("GETNext: build it with GETNext.from_inputs(inputs) (or call prepare(inputs)) "
                               "before score()/loss(): that builds the flow map")

    def forward_heads(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns POI logits of the last position ``(B, P)`` (graph-adjusted), time of day
        predictions ``(B, L)`` and category logits ``(B, L, C)`` at every position."""
        self._check_fitted()
        B, L = batch.poi.shape
        poi_emb = self.gcn(self.x, self.adj)                                      # (P, poi_dim)
        u = self.emb_user(batch.user)[:, None].expand(B, L, -1)                   # (B, L, user_dim)
        e1 = F.leaky_relu(self.fuse1(torch.cat((u, poi_emb[batch.poi]), -1)), 0.2)
        tod = day_fraction(batch.ts, batch.tz)                                    # (B, L)
        e2 = F.leaky_relu(self.fuse2(torch.cat((self.t2v(tod), self.emb_cat(batch.category)), -1)), 0.2)
        src = torch.cat((e1, e2), -1) * math.sqrt(self.d_model) + self.pe[:L]     # (B, L, D)
        causal = torch.triu(torch.ones(L, L, dtype=torch.bool, device=src.device), 1)
        h = self.encoder(self.drop(src), mask=causal, src_key_padding_mask=~batch.mask)  # (B, L, D)
        last = (batch.length - 1).clamp(min=0)
        h_last = h[torch.arange(B, device=h.device), last]                        # (B, D)
        logits = self.head_poi(h_last) + self.transition_attention(batch.last_poi)  # (B, P)
        return logits, self.head_time(h).squeeze(-1), self.head_cat(h)

    def transition_attention(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows ``Φ[rows, :]`` of the transition attention map: ``(R,)`` -> ``(R, P)``."""
        wh = self.attn_W(self.x)                                                  # (P, attn_dim)
        a1, a2 = self.attn_a.weight[0].chunk(2)
        e = F.leaky_relu((wh[rows] @ a1)[:, None] + (wh @ a2)[None, :], 0.2)     # (R, P)
        a_rows = torch.index_select(self.adj, 0, rows).to_dense()                 # (R, P)
        return e * (a_rows + 1.0)

    def score(self, batch: Batch) -> torch.Tensor:
        return self.forward_heads(batch)[0]

    def loss(self, batch: Batch) -> torch.Tensor:
        logits, time_pred, cat_logits = self.forward_heads(batch)
        loss_poi = F.cross_entropy(logits.float(), batch.target_poi)
        B, L = batch.poi.shape
        pos = torch.arange(L, device=logits.device)[None]                         # (1, L)
        last = (batch.length - 1)[:, None]                                        # (B, 1)
        # category label at position i: category of check-in i+1, or of the target at the last
        nxt_cat = torch.cat((batch.category[:, 1:], batch.category[:, :1]), 1)
        cat_lab = torch.where(pos == last, self.poi_category[batch.target_poi][:, None], nxt_cat)
        cat_lab = cat_lab.masked_fill(~batch.mask, -100)
        loss_cat = F.cross_entropy(cat_logits.reshape(B * L, -1).float(), cat_lab.reshape(-1),
                                   ignore_index=-100)
        # time label: time of day of the next prefix check-in (never the target's)
        tod = day_fraction(batch.ts, batch.tz)
        has_next = pos < last                                                     # (B, L)
        nxt_tod = torch.cat((tod[:, 1:], tod[:, :1]), 1)
        sq = (time_pred.float() - nxt_tod) ** 2 * has_next
        loss_time = sq.sum() / has_next.sum().clamp(min=1)
        return loss_poi + self.time_weight * loss_time + loss_cat

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_categories={self.num_categories}, d_model={self.d_model}"


def _sinusoid(n: int, d: int) -> torch.Tensor:
    """``(n, d)`` the Transformer's sinusoidal position encoding."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: d // 2])
    return pe
