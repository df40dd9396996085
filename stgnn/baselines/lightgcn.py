"""LightGCN on the user-POI graph of the training period, trained with BPR.

He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation",
SIGIR 2020 (https://arxiv.org/abs/2002.02126). Built on PyG's
:class:`torch_geometric.nn.models.LightGCN` (``LGConv`` propagation, layer-mean combination,
its ``recommendation_loss`` = BPR + L2 on the ego embeddings).

Nodes ``0 .. U-1`` are users and ``U .. U+P-1`` POIs; an undirected edge joins a user and a POI
the user checked in at during the training period (``part == 0``; repeated visits give one
edge, as in LightGCN's implicit-feedback graph). Then

    z = sum_{l=0..K} alpha_l Â^l E                   (Â = D^-1/2 A D^-1/2)
    score(u, p) = z_u . z_{U+p}

The model ignores the trajectory prefix: it is the collaborative-filtering baseline.

What differs from the original, and why:

* **Training pairs.** The original samples (user, visited item, unvisited item) triples from
  the interaction matrix. Here the positives are the protocol's training samples (user,
  target POI), so a POI visited often is a positive as often as it was visited, and the one
  negative per positive is drawn uniformly from all POIs (it may rarely be a visited POI;
  LightGCN's sampler rejects those, which matters little with ~5k POIs).
* **Ranking.** Library recommenders usually drop a user's training items from the ranking; we
  score every POI, because most next-POI targets are revisits (see REFERENCES.md).

Propagation runs on every training batch (the embeddings change each step); in eval mode
the propagated embeddings are computed once and cached until the model is trained again or
:meth:`prepare` is called.
"""
from __future__ import annotations

import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import LightGCN as PygLightGCN
from torch_sparse import SparseTensor

from stgnn.data.batch import Batch
from stgnn.inputs import ModelInputs
from stgnn.models.base import Recommender


class LightGCN(Recommender):
    """LightGCN recommender (BPR loss).

    Args:
        num_users, num_pois: id-space sizes of the split.
        dim: embedding size.
        num_layers: propagation layers ``K``.
        reg: L2 weight of PyG's BPR loss on the batch's ego embeddings.
        num_negatives: uniformly sampled negative POIs per positive.

    Shapes:
        ``score(batch)``: ``(B, P)``; the graph ``edge_index``: ``(2, 2E)`` (both directions).
    """

    needs_graph = False  # it builds its own bipartite graph from the training (user, POI) pairs in prepare

    def __init__(self, num_users: int, num_pois: int, *, dim: int = 64, num_layers: int = 3,
                 reg: float = 1e-4, num_negatives: int = 1) -> None:
        super().__init__(num_users, num_pois)
        self.reg, self.num_negatives = reg, num_negatives
        # normalize=False: Â's weights are computed once in prepare, not on every propagation
        self.gcn = PygLightGCN(num_users + num_pois, dim, num_layers, normalize=False)
        self.register_buffer("edge_index", torch.zeros(2, 0, dtype=torch.long), persistent=False)
        self.register_buffer("edge_weight", torch.zeros(0), persistent=False)
        self._adj_t: SparseTensor | None = None  # Â as PyG's sparse adjacency, built from the buffers
        self._cache: torch.Tensor | None = None
        # loaded weights make the cache stale too
        self.register_load_state_dict_post_hook(lambda module, _keys: setattr(module, "_cache", None))

    def reset_parameters(self) -> None:
        self.gcn.reset_parameters()
        self._cache = None

    def prepare(self, inputs: ModelInputs) -> None:
        """Build the bipartite graph of the training period's distinct (user, POI) pairs."""
        u = inputs.stats.visit_user.clone()                                      # (E,)
        p = inputs.stats.visit_poi + self.num_users                              # (E,)
        ei = torch.stack((torch.cat((u, p)), torch.cat((p, u))))                 # (2, 2E)
        # Â = D^-1/2 A D^-1/2 without self loops, LightGCN's propagation matrix
        _, w = gcn_norm(ei, None, self.num_users + self.num_pois, add_self_loops=False)
        device = self.gcn.embedding.weight.device
        self.edge_index, self.edge_weight = ei.to(device), w.to(device)
        self._adj_t, self._cache = None, None

    def adj_t(self) -> SparseTensor:
        """Â as a (transposed) ``SparseTensor`` on the model's device, for fast ``spmm``."""
        if self.edge_index.numel() == 0 and self.num_users + self.num_pois > 0:
            raise RuntimeError("LightGCN: build it with LightGCN.from_inputs(inputs) (or call prepare(inputs)) "
                               "first: that builds the user-POI graph")
        if self._adj_t is None or self._adj_t.device() != self.edge_index.device:
            n = self.num_users + self.num_pois
            self._adj_t = SparseTensor(row=self.edge_index[1], col=self.edge_index[0],
                                       value=self.edge_weight, sparse_sizes=(n, n))
        return self._adj_t

    def train(self, mode: bool = True) -> "LightGCN":
        self._cache = None  # parameters may change from now on (or just did)
        return super().train(mode)

    def embeddings(self) -> torch.Tensor:
        """``(U + P, dim)`` propagated embeddings (cached in eval mode)."""
        if self.training or torch.is_grad_enabled():
            return self.gcn.get_embedding(self.adj_t())
        if self._cache is None:
            self._cache = self.gcn.get_embedding(self.adj_t())
        return self._cache

    def score(self, batch: Batch) -> torch.Tensor:
        z = self.embeddings()
        return z[batch.user] @ z[self.num_users:].t()                             # (B, P)

    def loss(self, batch: Batch) -> torch.Tensor:
        z = self.gcn.get_embedding(self.adj_t())                                 # (U + P, dim)
        B, U = len(batch), self.num_users
        user = batch.user.repeat(self.num_negatives)                              # (B * n,)
        pos = batch.target_poi.repeat(self.num_negatives) + U
        neg = torch.randint(self.num_pois, (B * self.num_negatives,), device=z.device) + U
        pos_rank = (z[user] * z[pos]).sum(-1)
        neg_rank = (z[user] * z[neg]).sum(-1)
        nodes = torch.cat((user, pos, neg)).unique()
        return self.gcn.recommendation_loss(pos_rank, neg_rank, node_id=nodes, lambda_reg=self.reg)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, reg={self.reg}, edges={self.edge_index.shape[1] // 2}"
