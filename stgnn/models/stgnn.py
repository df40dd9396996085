"""STGNN: the project's spatiotemporal graph recommender for next-POI prediction.

Read top to bottom, one sample at a time:

1. **Graph encoder.** A heterogeneous GNN (PyG ``HeteroConv`` around any resolved layer) over
   the leakage-safe *training* graph (users, POIs, categories, regions) turns learned node
   embeddings (+ the POIs' language-model text embeddings, when given) into ``G[type]``.
2. **Sequence encoder.** Each prefix step is ``G_poi[poi] + tow(t) + dt(t - t_prev) +
   dd(dist(prev, poi))``; a causal Transformer (or LSTM/GRU/none) encodes the prefix; its last
   state is ``q``.
3. **Spatiotemporal attention.** ``q`` attends over the user's memory, i.e. the longer history
   ``batch.hist_*`` plus the prefix. Each memory item is keyed by its POI, its time of week and
   its time and distance intervals to the query (query time = the target time when the
   protocol allows it, else the last prefix time; query place = the last prefix POI).
4. **Scoring.** ``u = MLP([q, context, G_user[user], tow(query)])``. A *generate* distribution
   ``softmax(u . G_poi + dist_bias(u, dist(last, p)))`` over all POIs is mixed with a *copy*
   (pointer) distribution over the POIs in the memory, with a learned gate:
   ``p = g * p_copy + (1 - g) * p_gen``. About 70% of NYC test targets are revisits, which the
   pointer captures directly. ``score`` returns ``log p``; ``loss`` is its NLL (full softmax;
   ``num_sampled > 0`` samples the generate softmax's negatives for very large POI sets, the
   default above 20,000 POIs).

Ablation switches are constructor keywords: ``graph`` (none/static/temporal), ``text``
(none/given), ``time_enc`` (none/tow), ``space_enc`` (none/bucket), ``attention`` (none/st),
``copy`` (none/pointer), ``seq_encoder`` (transformer/lstm/gru/none), ``layer`` (any name, class
or dotted path that :func:`stgnn.layers.resolve` accepts). Branches use the layer's capability
flags, never its name.

Dynamic graph: ``snapshots=K`` adds a recurrent graph cell (``temporal_cell``: our
``graph_gru`` with any conv, or torch-geometric-temporal's ``gconvgru`` / ``tgcn`` /
``evolvegcno``, see :mod:`stgnn.layers.temporal_cells`) run over the POI transition graphs of
the last ``K`` training weeks; its final state is added to the POI representations.

Cold start: ``id_dropout=p`` (DropoutNet-style) drops each POI's id embedding and bias with
probability ``p`` per training step, so the model learns to score a POI from its content (text,
category, region, coordinates and neighbours through the graph); at evaluation, POIs without a
training check-in are scored from content only, as their id embedding and bias were trained
only as negatives.

Large graphs: ``sampling="sampled"`` (or ``"auto"`` above ``auto_edges`` edges) runs the graph
encoder on neighbourhoods drawn by :class:`~stgnn.graph.sampling.TemporalNeighborSampler`
(``fanout`` neighbours per relation and hop) around only the nodes a step needs (the batch's
users, prefix/history/target POIs and sampled negatives; every POI when the softmax is full);
evaluation encodes all users and POIs in chunks and caches them until
the next training step (with a layer that ``supports_bipartite``, evaluation uses every
neighbour: :meth:`HeteroGraphEncoder.forward_layerwise`, exact and linear in the edges).
Above ``dist_matrix_max_pois`` POIs the ``(P, P)`` distance-bucket table
is not built and distances are computed per batch. With a fan-out at least every node's degree
the sampled model computes exactly what the full-batch one does (tested).

Large POI sets: with sampled negatives (``num_sampled``, default ``"auto"``: 2,048 above 20,000
POIs) a training step touches only the POIs it reads: the batch's prefix, history and target
POIs and the negatives shared by the batch are encoded (on sampled neighbourhoods when the graph
is sampled), and the generate logits, distance preferences and pointer are computed for those
columns alone, so no ``(B, P)`` tensor is built and a step costs what its batch holds, whatever
the number of POIs. What stays proportional to ``P`` is the optimizer's update of the ``(P,
dim)`` id embeddings and biases (and, when on, the snapshot cell and the id-dropout draw).
Scoring (evaluation, serving) ranks every POI, in chunks (:func:`stgnn.eval.evaluate.score_chunks`).

Leakage: the graph holds only ``part == 0`` check-ins (its newest edge predates every val/test
target); everything else comes from the batch, which holds only check-ins before the target.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import HeteroConv, SAGEConv

from stgnn.data.batch import Batch
from stgnn.data.split import Split
from stgnn.features.space import haversine
from stgnn.features.time import hour_of_week
from stgnn.layers import capabilities, init_conv, resolve
from stgnn.layers.temporal_cells import make_temporal_cell
from stgnn.models.base import Recommender
from stgnn.models.encoders import make_sequence_encoder

N_TIME_BUCKETS = 24   # log2 minutes: 0 .. ~16 years
N_DIST_BUCKETS = 16   # log2 of 25 m units: 0 .. ~800 km
#: ``num_sampled="auto"``: a full softmax up to this many POIs, above it ``AUTO_NUM_SAMPLED``
#: negatives shared by the batch (the same bar as the ``(P, P)`` distance table's).
AUTO_SAMPLED_POIS, AUTO_NUM_SAMPLED = 20_000, 2048
#: Destination nodes per chunk of the layer-wise evaluation encoding: each chunk also projects
#: every source node once, so chunks are not small (memory: a chunk's in-edges, ~0.5 GB at 10^7 check-ins).
LAYERWISE_CHUNK = 8_192
_CHOICES = {"graph": ("none", "static", "temporal"), "text": ("none", "given"), "time_enc": ("none", "tow"),
            "space_enc": ("none", "bucket"), "attention": ("none", "st"), "copy": ("none", "pointer")}


# ---------------------------------------------------------------------------- small feature helpers
def time_bucket(dt_s: Tensor) -> Tensor:
    """``(*)`` int64 log2-minute bucket of a non-negative interval in seconds."""
    minutes = dt_s.clamp(min=0).double() / 60.0
    return torch.log2(1.0 + minutes).floor().long().clamp(0, N_TIME_BUCKETS - 1)


def dist_bucket(km: Tensor) -> Tensor:
    """``(*)`` int64 log2 bucket of a distance in units of 25 m."""
    return torch.log2(1.0 + km.clamp(min=0) * 40.0).floor().long().clamp(0, N_DIST_BUCKETS - 1)


def haversine_km(lat1: Tensor, lon1: Tensor, lat2: Tensor, lon2: Tensor) -> Tensor:
    """Great-circle km, broadcasting; a NaN (unknown) coordinate gives distance 0 (bucket "near")."""
    return torch.nan_to_num(haversine(lat1, lon1, lat2, lon2), nan=0.0)


def signed_log1p(x: Tensor) -> Tensor:
    """Tame raw edge attributes (counts, km) that span orders of magnitude."""
    return torch.sign(x) * torch.log1p(x.abs())


# ---------------------------------------------------------------------------- graph encoder
class HeteroGraphEncoder(nn.Module):
    """Stacked ``HeteroConv`` blocks over a heterogeneous graph with any resolved layer.

    Each block runs one conv per relation (summed per destination type), then a residual,
    ReLU and LayerNorm per node type. Relations between two node types need a layer with
    ``supports_bipartite``; for a layer without it they fall back to ``SAGEConv`` (said in
    ``repr``). Edge time (``edge_time`` or ``time`` on a relation) is passed to layers with
    ``supports_edge_time`` when ``temporal``; ``edge_attr`` (signed log1p) to layers with
    ``supports_edge_attr``; an edge weight (``edge_weight``, else log1p ``count``) to layers with
    ``supports_edge_weight``.

    Args:
        metadata: ``(node_types, edge_types)`` of the graph.
        dim: width of every node representation.
        layer: the conv (name, class or dotted path).
        num_layers: blocks.
        temporal: pass edge times (else the layer sees a static graph).
        dropout: dropout after each block.
        edge_dims: ``{edge_type: width of its edge_attr}`` for relations that have one.
        out_types: node types whose output is used; the last block only computes relations
            into them (the others would be computed and thrown away).

    Shapes:
        ``forward(x_dict {type: (N_type, dim)}, graph) -> {type: (N_type, dim)}``
    """

    def __init__(self, metadata: tuple[list[str], list[tuple[str, str, str]]], dim: int, layer: str | type,
                 num_layers: int = 2, temporal: bool = True, dropout: float = 0.1,
                 edge_dims: dict[tuple[str, str, str], int] | None = None,
                 out_types: tuple[str, ...] = ("user", "poi"), **conv_kwargs: Any) -> None:
        super().__init__()
        self.layer = resolve(layer)
        self.caps = capabilities(self.layer)
        self.node_types, self.edge_types = list(metadata[0]), [tuple(e) for e in metadata[1]]
        self.temporal, self.dropout = temporal and self.caps.supports_edge_time, dropout
        self.fallback = [et for et in self.edge_types if et[0] != et[2] and not self.caps.supports_bipartite]
        self.edge_dims = {tuple(k): v for k, v in (edge_dims or {}).items()} if self.caps.supports_edge_attr else {}
        self.convs = nn.ModuleList()
        self.out_types = tuple(t for t in out_types if t in self.node_types)
        for i in range(num_layers):
            convs = {}
            last = i == num_layers - 1
            for et in self.edge_types:
                if last and et[2] not in self.out_types:
                    continue
                if et in self.fallback:
                    convs[et] = SAGEConv((dim, dim), dim)
                else:
                    convs[et] = init_conv(self.layer, (dim, dim) if et[0] != et[2] else dim, dim,
                                          edge_dim=self.edge_dims.get(et), **conv_kwargs)
            with warnings.catch_warnings():  # the pruned last block leaves source-only types, on purpose
                warnings.filterwarnings("ignore", message="There exist node types")
                self.convs.append(HeteroConv(convs, aggr="sum"))
        self.norms = nn.ModuleList(
            nn.ModuleDict({t: nn.LayerNorm(dim) for t in (self.out_types if i == num_layers - 1 else self.node_types)})
            for i in range(num_layers))

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        for norms in self.norms:
            for n in norms.values():
                n.reset_parameters()

    def edge_kwargs(self, graph: HeteroData) -> dict[str, dict]:
        """The per-relation keyword dicts HeteroConv dispatches (only what each conv accepts)."""
        times, qtimes, weights, attrs = {}, {}, {}, {}
        end = graph_end_time(graph)
        for et in self.edge_types:
            store = graph[et]
            if et in self.fallback:
                continue
            t = store["edge_time"] if "edge_time" in store else (store["time"] if "time" in store else None)
            if self.temporal and t is not None:
                times[et], qtimes[et] = t, end
            if self.caps.supports_edge_weight and "edge_weight" in store:
                weights[et] = store["edge_weight"].float()
            elif self.caps.supports_edge_weight and "count" in store:
                weights[et] = torch.log1p(store["count"].float())
            if et in self.edge_dims:
                attrs[et] = signed_log1p(store["edge_attr"].float())
        kw: dict[str, dict] = {}
        if times:
            kw["edge_time_dict"], kw["query_time_dict"] = times, qtimes
        if weights:
            kw["edge_weight_dict"] = weights
        if attrs:
            kw["edge_attr_dict"] = attrs
        return kw

    def forward(self, x_dict: dict[str, Tensor], graph: HeteroData) -> dict[str, Tensor]:
        kw = self.edge_kwargs(graph)
        for conv, norms in zip(self.convs, self.norms):
            edge_index_dict = {et: graph[et].edge_index for et in conv.convs.keys()}
            out = conv(x_dict, edge_index_dict, **{k: {et: v[et] for et in edge_index_dict if et in v}
                                                     for k, v in kw.items()})
            x_dict = {t: norms[t](x + F.dropout(F.relu(out[t]), self.dropout, self.training)) if t in out else x
                      for t, x in x_dict.items()}
        return x_dict

    @torch.no_grad()
    def forward_layerwise(self, x_dict: dict[str, Tensor], graph: HeteroData, chunk: int = 4096
                          ) -> dict[str, Tensor]:
        """:meth:`forward` on the whole graph (every neighbour, no sampling), one block at a time
        with destination nodes in chunks of ``chunk``: exact, ``O(E)`` work per block, memory
        bounded by a chunk's in-edges (evaluation of graphs too large for one full-batch pass).
        Needs a layer with ``supports_bipartite`` (a chunk is a bipartite ``(all, chunk)`` step).
        """
        kw = self.edge_kwargs(graph)
        for conv, norms in zip(self.convs, self.norms):
            out: dict[str, list[Tensor]] = {}
            for et, c in conv.convs.items():
                src, _, dst = et
                ei = graph[et].edge_index
                n_dst, n_e = x_dict[dst].shape[0], ei.shape[1]
                order = torch.argsort(ei[1], stable=True)                     # edges grouped by destination
                ptr = torch.searchsorted(ei[1][order], torch.arange(0, n_dst + chunk, chunk, device=ei.device))
                extra = {k[:-5]: v[et] for k, v in kw.items() if et in v}
                # a conv that adds self loops needs the destinations at their own ids (it adds
                # one per node): it sees every node and the chunk's rows are kept
                whole = src == dst and getattr(c, "add_self_loops", False)
                parts = []
                for i, a in enumerate(range(0, n_dst, chunk)):
                    e = order[ptr[i]:ptr[i + 1]]                              # in-edges of nodes [a, a + chunk)
                    ekw = {k: (v[e] if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == n_e else v)
                           for k, v in extra.items()}
                    if whole:
                        parts.append(c(x_dict[src], ei[:, e], **ekw)[a:a + chunk])
                    else:
                        ei_c = torch.stack([ei[0, e], ei[1, e] - a])
                        parts.append(c((x_dict[src], x_dict[dst][a:a + chunk]), ei_c, **ekw))
                out.setdefault(dst, []).append(torch.cat(parts))               # (N_dst, dim)
            x_dict = {t: norms[t](x + F.relu(torch.stack(out[t]).sum(0))) if t in out else x
                      for t, x in x_dict.items()}
        return x_dict

    def last_layer_attention(self, x_dict: dict[str, Tensor], graph: HeteroData, dst: str = "poi") -> dict:
        """``{edge_type: (edge_index, alpha (E, heads))}`` of the last block's relations into ``dst``.

        Only for layers with ``returns_attention`` (used by explanations); ``x_dict`` must be the
        input of the last block.
        """
        kw = self.edge_kwargs(graph)
        out = {}
        for et in self.convs[-1].convs.keys():
            if et[2] != dst or et in self.fallback:
                continue
            conv = self.convs[-1].convs[et]
            x = x_dict[et[0]] if et[0] == et[2] else (x_dict[et[0]], x_dict[et[2]])
            extra = {k[:-5]: v[et] for k, v in kw.items() if et in v}
            _, (ei, alpha) = conv(x, graph[et].edge_index, return_attention_weights=True, **extra)
            out[et] = (ei, alpha)
        return out

    def __repr__(self) -> str:
        fb = f", sage_fallback={len(self.fallback)}" if self.fallback else ""
        return (f"{self.__class__.__name__}(layer={self.layer.__name__}, layers={len(self.convs)}, "
                f"relations={len(self.edge_types)}, temporal={self.temporal}{fb})")


def graph_end_time(graph: HeteroData) -> Tensor:
    """The snapshot's end: ``graph.end_time`` if set, else its newest edge time (0 if none)."""
    if "end_time" in graph:
        return torch.as_tensor(graph["end_time"], dtype=torch.float64)
    newest = [s[k].max() for s in graph.edge_stores for k in ("edge_time", "time") if k in s and s[k].numel()]
    return torch.stack(newest).max().double() if newest else torch.tensor(0.0, dtype=torch.float64)


# ---------------------------------------------------------------------------- the model
class STGNN(Recommender):
    """Heterogeneous graph + sequence + spatiotemporal attention + pointer recommender.

    Args:
        num_users, num_pois: id-space sizes.
        dim: width of every representation.
        layer: graph layer (name, class or ``"pkg.mod.Class"``).
        graph: ``"none"`` (id embeddings only), ``"static"``, ``"temporal"`` (edge ages to
            layers that take ``edge_time``).
        graph_layers: HeteroConv blocks.
        text: ``"given"`` uses ``text_emb`` as POI input when provided, ``"none"`` ignores it.
        text_emb: ``(P, D)`` language-model embeddings of the POIs' text (or ``None``).
        time_enc, space_enc, attention, copy: ablation switches (module docstring).
        seq_encoder: ``"transformer"``, ``"lstm"``, ``"gru"`` or ``"none"``.
        heads, seq_layers, dropout: sequence-encoder sizes.
        num_sampled: ``> 0``: the generate softmax in ``loss`` uses the target and this many
            uniformly sampled negatives, drawn once per step and shared by the batch (a negative
            equal to a sample's target is masked for it); scores stay full-ranking. ``"auto"``:
            0 (full softmax) up to ``AUTO_SAMPLED_POIS`` POIs, else ``AUTO_NUM_SAMPLED``.
        id_dropout: probability of dropping a POI's id embedding and bias per training step
            (module docstring, cold start); POIs unseen in training always use content only.
        sampling: ``"full"`` (full-batch graph encoder), ``"sampled"`` (neighbour sampling, see
            the module docstring) or ``"auto"`` (sampled when the graph has more than
            ``auto_edges`` edges).
        fanout: neighbours per relation and hop when sampling (default 15 per hop).
        sample_chunk: seed nodes per chunk when encoding every node for evaluation.
        snapshots: ``> 0``: weekly POI transition snapshots fed to ``temporal_cell`` (module docstring).
        snapshot_days: window (and stride) of the snapshots.
        temporal_cell: ``graph_gru``, ``gconvgru``, ``tgcn`` or ``evolvegcno``.
        cell_conv: the gate conv of ``graph_gru`` (any layer name, class or dotted path).
        dist_matrix_max_pois: largest POI count for which the ``(P, P)`` uint8 distance-bucket
            table is precomputed (25 MB for NYC; 10 GB for 100k POIs); above it, per batch.
        graph_data: the training graph now (else :meth:`fit_data` / :meth:`attach_graph`).
        conv_kwargs: extra constructor arguments for the graph layer (e.g. ``heads``).

    Shapes:
        ``score(batch) -> (B, P)`` log-probabilities; ``loss(batch) -> ()``.
    """

    needs_graph = True
    needs_text = False
    uses_target_time = True

    def __init__(self, num_users: int, num_pois: int, *, dim: int = 64, layer: str | type = "time_attention",
                 graph: str = "temporal", graph_layers: int = 2, text: str = "given",
                 text_emb: Tensor | None = None, time_enc: str = "tow", space_enc: str = "bucket",
                 attention: str = "st", copy: str = "pointer", seq_encoder: str = "transformer",
                 heads: int = 2, seq_layers: int = 2, dropout: float = 0.1, num_sampled: int | str = "auto",
                 id_dropout: float = 0.0,
                 sampling: str = "auto", fanout: list[int] | None = None, auto_edges: int = 2_000_000,
                 sample_chunk: int = 4096, dist_matrix_max_pois: int = 20_000,
                 snapshots: int = 0, snapshot_days: float = 7.0, temporal_cell: str = "graph_gru",
                 cell_conv: str | type = "gcn",
                 graph_data: HeteroData | None = None, conv_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(num_users, num_pois)
        opts = dict(graph=graph, text=text, time_enc=time_enc, space_enc=space_enc, attention=attention, copy=copy)
        for k, v in opts.items():
            if v not in _CHOICES[k]:
                raise ValueError(f"STGNN({k}={v!r}): choose one of {list(_CHOICES[k])}")
        if not 0.0 <= id_dropout < 1.0:
            raise ValueError(f"STGNN(id_dropout={id_dropout}): must be in [0, 1)")
        if sampling not in ("full", "sampled", "auto"):
            raise ValueError(f"STGNN(sampling={sampling!r}): choose one of ['full', 'sampled', 'auto']")
        fanout = list(fanout) if fanout is not None else [15] * graph_layers
        if len(fanout) != graph_layers:
            raise ValueError(f"fanout {fanout} needs one entry per graph layer ({graph_layers})")
        if num_sampled == "auto":
            num_sampled = AUTO_NUM_SAMPLED if num_pois > AUTO_SAMPLED_POIS else 0
        if isinstance(num_sampled, bool) or not isinstance(num_sampled, int) or num_sampled < 0:
            raise ValueError(f"STGNN(num_sampled={num_sampled!r}): a count >= 0 or 'auto'")
        self.opts, self.dim, self.dropout, self.num_sampled = opts, dim, dropout, num_sampled
        self.sampling, self.fanout, self.auto_edges, self.sample_chunk = sampling, fanout, auto_edges, sample_chunk
        self.sampler = None                  # a TemporalNeighborSampler when the graph is sampled
        self._eval_nodes: dict[str, Tensor] | None = None   # all-node encodings cached for evaluation
        self.layer, self.graph_layers, self.conv_kwargs = resolve(layer), graph_layers, dict(conv_kwargs or {})
        self.seq_kind = seq_encoder
        # inputs of the graph encoder (or the embeddings themselves when graph == "none")
        self.user_emb = nn.Embedding(num_users, dim)
        self.poi_emb = nn.Embedding(num_pois, dim)
        use_text = text == "given" and text_emb is not None
        self.register_buffer("text_emb", text_emb.float() if use_text else None)
        self.text_proj = nn.Linear(text_emb.shape[1], dim) if use_text else None
        self.node_emb = nn.ModuleDict()      # other node types (category, region), made with the graph
        self.x_proj = nn.ModuleDict()        # graph node features (coordinates, popularity...) -> dim
        self.graph_encoder: HeteroGraphEncoder | None = None
        self.graph: HeteroData | None = None
        # recurrent cell over weekly transition snapshots (off when snapshots == 0)
        self.snapshots, self.snapshot_days = snapshots, snapshot_days
        self.cell = make_temporal_cell(temporal_cell, dim, cell_conv) if snapshots > 0 else None
        self.cell_norm = nn.LayerNorm(dim) if snapshots > 0 else None
        self.snap: list[tuple[Tensor, Tensor]] = []
        # step, memory and query encodings
        self.tow_emb = nn.Embedding(168, dim)
        self.dt_emb = nn.Embedding(N_TIME_BUCKETS, dim)
        self.dd_emb = nn.Embedding(N_DIST_BUCKETS, dim)
        self.seq = make_sequence_encoder(seq_encoder, dim, heads, seq_layers, dropout)
        self.att_q = nn.Linear(dim, dim)
        self.att_v = nn.Linear(dim, dim)
        self.fuse = nn.Sequential(nn.Linear(4 * dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.out_poi = nn.Linear(dim, dim)                      # POI side of the generate score
        self.poi_bias = nn.Parameter(torch.zeros(num_pois))
        # cold start (id_dropout > 0): which POIs have training check-ins, the bias a POI scored
        # from content gets, and this forward's (P,) keep-the-id mask (None: every id is used)
        self.id_dropout = id_dropout
        self.register_buffer("poi_seen", torch.ones(num_pois, dtype=torch.bool), persistent=id_dropout > 0)
        self.content_bias = nn.Parameter(torch.zeros(())) if id_dropout > 0 else None
        self._id_keep: Tensor | None = None
        self.dist_pref = nn.Linear(dim, N_DIST_BUCKETS)         # user-dependent distance preference
        self.copy_q = nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, 1)
        self.register_buffer("poi_lat", torch.zeros(num_pois))
        self.register_buffer("poi_lon", torch.zeros(num_pois))
        # (P, P) uint8 distance bucket between every two POIs (25 MB for NYC), so candidate-side
        # distances cost a row gather per sample instead of (B, P) trigonometry each step
        self.dist_matrix = num_pois <= dist_matrix_max_pois
        self.register_buffer("poi_dist_bucket", torch.zeros((num_pois, num_pois) if self.dist_matrix else (0, 0),
                                                            dtype=torch.uint8), persistent=False)
        if graph_data is not None:
            self.attach_graph(graph_data)

    # ------------------------------------------------------------------ data
    @classmethod
    def from_split(cls, split: Split, text_model: str | None = None, text_profile: bool = True,
                   **kwargs: Any) -> "STGNN":
        """Build for ``split`` and attach its training graph, so the optimizer sees every parameter.

        Args:
            text_model: a :func:`stgnn.features.text.make_text_encoder` spec (``"minilm"``,
                ``"hf:<name or path>"``...) to embed every POI's text as ``text_emb``; ``None``
                (default) uses no language-model features unless ``text_emb`` is passed.
            text_profile: embed the templated training-period profile ("Coffee Shop in <region>,
                busiest 8-10 am on weekdays") rather than the bare category/venue name.
        """
        if text_model is not None and kwargs.get("text_emb") is None and kwargs.get("text", "given") != "none":
            from stgnn.features.profiles import poi_texts
            from stgnn.features.text import make_text_encoder

            kwargs["text_emb"] = make_text_encoder(text_model).encode(poi_texts(split, profile=text_profile))
        model = cls(split.num_users, split.num_pois, **kwargs)
        model.fit_data(split)
        return model

    def fit_data(self, split: Split) -> None:
        """POI coordinates and the training-period graph (``part == 0`` check-ins only)."""
        self.attach_coordinates(torch.as_tensor(split.poi_lat), torch.as_tensor(split.poi_lon))
        train_pois = torch.as_tensor(split.poi[split.part == 0], dtype=torch.long)
        self.poi_seen = (torch.bincount(train_pois, minlength=self.num_pois) > 0).to(self.poi_bias.device)
        if self.cell is not None:
            from stgnn.graph.snapshots import transition_snapshots

            self.attach_snapshots(transition_snapshots(split, self.snapshot_days, self.snapshots, parts=(0,)))
        if self.opts["graph"] != "none":
            from stgnn.graph.hetero import build_hetero_graph  # the graph package is optional for graph="none"

            self.attach_graph(build_hetero_graph(split, parts=(0,)))

    def attach_coordinates(self, lat: Tensor, lon: Tensor) -> None:
        """Set the ``(P,)`` POI coordinates (degrees; NaN = unknown) and their distance buckets."""
        if lat.shape != (self.num_pois,) or lon.shape != (self.num_pois,):
            raise ValueError(f"coordinates must be ({self.num_pois},), got {tuple(lat.shape)} and {tuple(lon.shape)}")
        self.poi_lat = lat.to(self.poi_lat.device, torch.float32)
        self.poi_lon = lon.to(self.poi_lon.device, torch.float32)
        if self.dist_matrix:
            self.poi_dist_bucket = self._dist_buckets()

    def dist_rows(self, a: Tensor) -> Tensor:
        """``(*a, P)`` int64 distance bucket from each POI in ``a`` to every POI."""
        if self.dist_matrix:
            return self.poi_dist_bucket[a].long()
        lat, lon = self.poi_lat.double(), self.poi_lon.double()
        return dist_bucket(haversine_km(lat[a][..., None], lon[a][..., None], lat, lon))

    def dist_pairs(self, a: Tensor, b: Tensor) -> Tensor:
        """Distance bucket between POIs ``a`` and ``b`` (broadcast shapes), int64."""
        if self.dist_matrix:
            return self.poi_dist_bucket[a, b].long()
        lat, lon = self.poi_lat, self.poi_lon  # gathered first: a step converts what it reads, not all P
        return dist_bucket(haversine_km(lat[a].double(), lon[a].double(), lat[b].double(), lon[b].double()))

    @torch.no_grad()
    def _dist_buckets(self, chunk: int = 512) -> Tensor:
        """``(P, P)`` uint8 :func:`dist_bucket` of every POI pair, in row chunks."""
        lat, lon = self.poi_lat.double(), self.poi_lon.double()
        out = torch.empty(self.num_pois, self.num_pois, dtype=torch.uint8, device=lat.device)
        for i in range(0, self.num_pois, chunk):
            d = haversine_km(lat[i:i + chunk, None], lon[i:i + chunk, None], lat[None], lon[None])
            out[i:i + chunk] = dist_bucket(d).to(torch.uint8)
        return out

    def attach_snapshots(self, snaps: list[tuple[Tensor, Tensor]]) -> None:
        """Use ``[(edge_index (2, E_i), count (E_i,)), ...]`` (oldest first) as the snapshots the
        recurrent cell runs over (:func:`stgnn.graph.snapshots.transition_snapshots`)."""
        dev = self.poi_bias.device
        self.snap = [(ei.to(dev), c.to(dev)) for ei, c in snaps]
        self._eval_nodes = None

    def attach_graph(self, data: HeteroData) -> None:
        """Use ``data`` as the graph; the first call builds the graph encoder for its metadata.

        Create the optimizer after this (the first call adds parameters). Later calls must
        carry the same node and edge types.
        """
        if self.opts["graph"] == "none":
            return
        meta = data.metadata()
        for t in ("user", "poi"):
            if t in meta[0] and data[t].num_nodes != (self.num_users if t == "user" else self.num_pois):
                raise ValueError(f"graph has {data[t].num_nodes} {t} nodes, model has "
                                 f"{self.num_users if t == 'user' else self.num_pois}")
        if self.graph_encoder is None:
            device = self.poi_bias.device
            for t in meta[0]:
                if t not in ("user", "poi"):
                    self.node_emb[t] = nn.Embedding(data[t].num_nodes, self.dim).to(device)
                if "x" in data[t]:
                    self.x_proj[t] = nn.Linear(data[t].x.shape[1], self.dim).to(device)
            edge_dims = {et: data[et].edge_attr.shape[1] for et in meta[1] if "edge_attr" in data[et]}
            self.graph_encoder = HeteroGraphEncoder(meta, self.dim, self.layer, self.graph_layers,
                                                    temporal=self.opts["graph"] == "temporal",
                                                    dropout=self.dropout, edge_dims=edge_dims,
                                                    **self.conv_kwargs).to(device)
        elif (sorted(meta[0]), sorted(meta[1])) != (sorted(self.graph_encoder.node_types),
                                                    sorted(self.graph_encoder.edge_types)):
            raise ValueError(f"graph metadata {meta} differs from the one the model was built for")
        self.graph = data.to(self.poi_bias.device)
        self._eval_nodes = None
        self.sampler = None
        if self.sampling == "sampled" or (self.sampling == "auto" and data.num_edges > self.auto_edges):
            from stgnn.graph.sampling import TemporalNeighborSampler

            # static draws: the graph is the training period only, so every edge is allowed
            # (our own sampler, not pyg-lib's: it takes seeds of several node types in one call)
            self.sampler = TemporalNeighborSampler(self.graph, self.fanout, time_attr=None, use_pyg_lib=False)

    def _apply(self, fn, recurse=True):  # keep the (non-module) graph on the model's device
        out = super()._apply(fn, recurse)
        if self.graph is not None and self.graph[self.graph.edge_types[0]].edge_index.device != self.poi_bias.device:
            self.attach_graph(self.graph)  # moves it (edge times stay float64/int64) and rebuilds the sampler
        if self.snap and self.snap[0][0].device != self.poi_bias.device:
            self.attach_snapshots(self.snap)
        return out

    def train(self, mode: bool = True) -> "STGNN":
        self._eval_nodes = None  # parameters may change: encode again at the next evaluation
        self._id_keep = None
        return super().train(mode)

    # ------------------------------------------------------------------ encoders
    def node_inputs(self, n_id: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """``{type: (N_type, dim)}`` inputs of the graph encoder (id embeddings + text + node
        features); with ``n_id`` only those nodes' rows, ``(len(n_id[type]), dim)``."""
        emb = {"user": self.user_emb, "poi": self.poi_emb, **self.node_emb}
        x = {}
        for t, e in emb.items():
            if n_id is not None and t not in n_id:
                continue
            idx = None if n_id is None else n_id[t]
            v = e.weight if idx is None else e(idx)
            keep = self._poi_keep() if t == "poi" else None
            if keep is not None:                           # cold start: content only where dropped
                v = v * (keep if idx is None else keep[idx])[:, None].to(v.dtype)
            if t == "poi" and self.text_proj is not None:
                v = v + self.text_proj(self.text_emb if idx is None else self.text_emb[idx])
            if t in self.x_proj:
                feats = self.graph[t].x
                v = v + self.x_proj[t]((feats if idx is None else feats[idx]).float())
            x[t] = v
        return x

    def encode_graph(self, need: dict[str, Tensor] | None = None, compact: bool = False) -> dict[str, Tensor]:
        """The graph encoder's node representations, plus the recurrent snapshot state on POIs
        (``compact``: only the ``need`` rows, see :meth:`_encode_structure`)."""
        G = self._encode_structure(need, compact)
        if self.cell is None or not self.snap:
            return G
        x = self.node_inputs({"poi": torch.arange(self.num_pois, device=self.poi_bias.device)})["poi"]  # (P, d)
        self.cell.reset_state()
        h = None
        for ei, count in self.snap:                       # oldest week first
            h = self.cell(x, ei, torch.log1p(count.float()), h)                  # (P, d)
        return {**G, "poi": self.cell_norm(G["poi"] + (h[need["poi"]] if compact else h))}

    def _encode_structure(self, need: dict[str, Tensor] | None = None, compact: bool = False) -> dict[str, Tensor]:
        """``{"user": (U, dim), "poi": (P, dim), ...}`` node representations for this forward.

        Full-batch, every node is encoded. When the graph is sampled, only the ``need``
        ``{"user"|"poi": ids}`` nodes are encoded on sampled neighbourhoods (the other rows hold
        their graph-free inputs and are not used); in eval mode every node is encoded once, in
        chunks, and cached until the next ``train()``. ``compact``: only the ``need`` rows, in
        their order (``{"user": (len(need["user"]), dim), "poi": ...}``).
        """
        if self.graph_encoder is None:
            if self.opts["graph"] != "none":
                raise RuntimeError("STGNN needs its training graph: call fit_data(split) or attach_graph(data)")
            return self.node_inputs(need) if compact else self.node_inputs()
        if self.sampler is None:
            x = {t: v for t, v in self.node_inputs().items() if t in self.graph_encoder.node_types}
            G = self.graph_encoder(x, self.graph)
            return {t: G[t][need[t]] for t in need} if compact else G
        if compact:
            return self._encode_sampled(need)
        if not self.training:
            if self._eval_nodes is None:
                if self.graph_encoder.caps.supports_bipartite:  # exact: every neighbour, chunk by chunk
                    x = {t: v for t, v in self.node_inputs().items() if t in self.graph_encoder.node_types}
                    chunk = max(self.sample_chunk, LAYERWISE_CHUNK)
                    self._eval_nodes = self.graph_encoder.forward_layerwise(x, self.graph, chunk)
                else:
                    self._eval_nodes = self._encode_all_sampled()
            return self._eval_nodes
        base = {t: self.node_inputs({t: torch.arange(n, device=self.poi_bias.device)})[t]
                for t, n in (("user", self.num_users), ("poi", self.num_pois))}
        enc = self._encode_sampled(need)
        return {t: base[t].index_put((need[t],), enc[t]) for t in base}

    def _encode_sampled(self, seeds: dict[str, Tensor], generator: torch.Generator | None = None,
                        ) -> dict[str, Tensor]:
        """Encode ``seeds`` ``{type: (S_t,) unique ids}`` on a sampled subgraph → ``{type: (S_t, dim)}``."""
        sampler = self.sampler
        sampler.generator = generator
        out = sampler.sample_seeds(seeds)
        g = self.graph
        sub = HeteroData()
        for t in self.graph_encoder.node_types:
            sub[t].num_nodes = int(out.node[t].numel())
        for et in self.graph_encoder.edge_types:
            e = out.edge.get(et)
            if e is None:
                e = torch.empty(0, dtype=torch.long, device=self.poi_bias.device)
                sub[et].edge_index = torch.empty(2, 0, dtype=torch.long, device=e.device)
            else:
                sub[et].edge_index = torch.stack([out.row[et], out.col[et]])
            for key in ("edge_time", "time", "edge_weight", "count", "edge_attr"):
                if key in g[et]:
                    sub[et][key] = g[et][key][e]
        sub["end_time"] = graph_end_time(g)
        x = self.node_inputs({t: out.node[t] for t in self.graph_encoder.node_types})
        h = self.graph_encoder(x, sub)
        # the seeds are the first nodes of their type, in order (non-disjoint sampling)
        return {t: h[t][:len(v)] for t, v in seeds.items()}

    @torch.no_grad()
    def _encode_all_sampled(self) -> dict[str, Tensor]:
        """Every user and POI encoded on sampled neighbourhoods, chunk by chunk, with a fixed
        sampler seed so evaluation is deterministic."""
        dev = self.poi_bias.device
        gen = torch.Generator(device=self.sampler.device)
        gen.manual_seed(0)
        out = {}
        for t, n in (("user", self.num_users), ("poi", self.num_pois)):
            ids = torch.arange(n, device=dev)
            out[t] = torch.cat([self._encode_sampled({t: c}, gen)[t] for c in ids.split(self.sample_chunk)])
        return out

    def _needed_nodes(self, batch: Batch, extra_pois: Tensor | None = None,
                      columns: bool = False) -> dict[str, Tensor] | None:
        """The users and POIs (sorted, unique) a training step reads from the graph encoder
        (sampled mode, or ``columns``: a step scoring only ``extra_pois`` as candidates)."""
        if not columns and (self.sampler is None or not self.training):
            return None
        if self.num_sampled == 0 and not columns:  # a full softmax scores every POI with its encoding
            pois = torch.arange(self.num_pois, device=batch.poi.device)
        else:
            parts = [batch.poi.flatten(), batch.hist_poi.flatten(), batch.target_poi.flatten()]
            if extra_pois is not None:
                parts.append(extra_pois.flatten())
            pois = torch.unique(torch.cat(parts))
        return {"user": torch.unique(batch.user), "poi": pois}

    def _draw_id_keep(self) -> Tensor | None:
        """A training step's ``(P,)`` bool mask: seen POIs, each kept with probability ``1 - id_dropout``."""
        if self.id_dropout == 0:
            return None
        return self.poi_seen & (torch.rand(self.num_pois, device=self.poi_seen.device) >= self.id_dropout)

    def _poi_keep(self) -> Tensor | None:
        """``(P,)`` bool: POIs whose id embedding and bias are used now (``None``: all of them).

        The current training step's draw; in evaluation the POIs seen in training.
        """
        if self._id_keep is not None:
            return self._id_keep
        return self.poi_seen if self.id_dropout > 0 and not self.training else None

    def _query(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """Query time ``(B,)``, its tz ``(B,)`` and last prefix POI ``(B,)``."""
        last_i = (batch.length - 1)[:, None]
        last_ts, last_tz = batch.ts.gather(1, last_i)[:, 0], batch.tz.gather(1, last_i)[:, 0]
        known = batch.target_ts != 0                                         # protocol allowed it
        return torch.where(known, batch.target_ts, last_ts), torch.where(known, batch.target_tz, last_tz), \
            batch.last_poi

    def forward(self, batch: Batch, columns: Tensor | None = None) -> dict[str, Tensor]:
        """All intermediate results; ``score``/``loss``/``explain`` read what they need.

        Returns the generate logits ``gen (B, P)`` plus memory weights for explanations:
        ``mem_poi (B, M)``, ``mem_ts (B, M)``, ``copy_w (B, M)``, ``att_w (B, M)``, ``gate (B,)``,
        ``u (B, dim)``, and the pointer's ``p_copy (B, P)``. With ``columns`` (``(C,)`` sorted
        unique POI ids, a training step's candidates) only the POIs the step reads are encoded,
        ``gen`` is ``(B, C)`` over ``columns`` and the pointer gives ``p_copy_target (B, 1)``,
        its probability of each sample's target: nothing of size ``P`` per sample.
        """
        self._id_keep = self._draw_id_keep() if self.training else None      # (P,) or None
        if columns is None:
            G = self.encode_graph(self._needed_nodes(batch))
            g_poi = F.dropout(G["poi"], self.dropout, self.training)         # (P, d)
            poi_rows, g_user = (lambda idx: g_poi[idx]), G["user"][batch.user]
        else:
            need = self._needed_nodes(batch, columns, columns=True)
            G = self.encode_graph(need, compact=True)
            g_poi = F.dropout(G["poi"], self.dropout, self.training)         # (N_need, d)
            poi_rows = lambda idx: g_poi[torch.searchsorted(need["poi"], idx)]  # noqa: E731
            g_user = G["user"][torch.searchsorted(need["user"], batch.user)]
        use_t, use_s = self.opts["time_enc"] == "tow", self.opts["space_enc"] == "bucket"
        tq, tzq, last = self._query(batch)                                   # (B,), (B,), (B,)

        # --- sequence encoder over the prefix
        x = poi_rows(batch.poi)                                              # (B, L, d)
        if use_t:
            prev_ts = torch.cat([batch.ts[:, :1], batch.ts[:, :-1]], 1)      # (B, L)
            x = x + self.tow_emb(hour_of_week(batch.ts, batch.tz)) + self.dt_emb(time_bucket(batch.ts - prev_ts))
        if use_s:
            prev = torch.cat([batch.poi[:, :1], batch.poi[:, :-1]], 1)       # (B, L)
            x = x + self.dd_emb(self.dist_pairs(prev, batch.poi))
        h = self.seq(x, batch.mask)                                          # (B, L, d)
        q = h.gather(1, (batch.length - 1)[:, None, None].expand(-1, 1, self.dim))[:, 0]  # (B, d)

        # --- memory: the user's history + the prefix, keyed by POI, time of week, intervals to the query
        mem_poi = torch.cat([batch.hist_poi, batch.poi], 1)                  # (B, M)
        mem_ts = torch.cat([batch.hist_ts, batch.ts], 1)                     # (B, M)
        mem_tz = torch.cat([batch.hist_tz, batch.tz], 1)                     # (B, M)
        mem_mask = torch.cat([batch.hist_mask, batch.mask], 1)              # (B, M)
        keys = poi_rows(mem_poi)                                             # (B, M, d)
        if use_t:
            keys = keys + self.tow_emb(hour_of_week(mem_ts, mem_tz)) + self.dt_emb(time_bucket(tq[:, None] - mem_ts))
        if use_s:
            keys = keys + self.dd_emb(self.dist_pairs(last[:, None], mem_poi))
        tow_q = self.tow_emb(hour_of_week(tq, tzq)) if use_t else q.new_zeros(q.shape)  # (B, d)
        scale = 1.0 / math.sqrt(self.dim)
        # logits and distributions in float32: under bf16/fp16 autocast the einsums come back in
        # low precision, where a mask value of float32's min overflows and scores tie
        neg = torch.finfo(torch.float32).min
        if self.opts["attention"] == "st":
            a = torch.einsum("bd,bmd->bm", self.att_q(q + tow_q), keys).float() * scale  # (B, M)
            att_w = a.masked_fill(~mem_mask, neg).softmax(-1)                # (B, M)
            ctx = torch.einsum("bm,bmd->bd", att_w.to(keys.dtype), self.att_v(keys))  # (B, d)
        else:
            att_w, ctx = keys.new_zeros(mem_mask.shape), q.new_zeros(q.shape)

        # --- user/query vector and the two distributions
        u = self.fuse(torch.cat([q, ctx, g_user, tow_q], -1))              # (B, d)
        keep = self._poi_keep()                                              # (P,) or None
        if columns is None:
            bias = self.poi_bias if keep is None else torch.where(keep, self.poi_bias, self.content_bias)  # (P,)
            gen = (u @ self.out_poi(g_poi).T).float() + bias                 # (B, P)
            if use_s:
                gen = gen + self.dist_pref(u).float().gather(1, self.dist_rows(last))  # (B, P)
        else:
            bias = self.poi_bias[columns]                                    # (C,)
            if keep is not None:
                bias = torch.where(keep[columns], bias, self.content_bias)
            gen = (u @ self.out_poi(poi_rows(columns)).T).float() + bias     # (B, C)
            if use_s:
                gen = gen + self.dist_pref(u).float().gather(1, self.dist_pairs(last[:, None], columns[None, :]))
        out = {"gen": gen, "u": u, "mem_poi": mem_poi, "mem_ts": mem_ts, "mem_mask": mem_mask, "att_w": att_w}
        if self.opts["copy"] == "pointer":
            c = torch.einsum("bd,bmd->bm", self.copy_q(u), keys).float() * scale  # (B, M)
            copy_w = c.masked_fill(~mem_mask, neg).softmax(-1)               # (B, M)
            gate = torch.sigmoid(self.gate(u).float())                       # (B, 1)
            out.update(copy_w=copy_w, gate=gate[:, 0])
            if columns is None:
                out["p_copy"] = torch.zeros_like(gen).scatter_add_(1, mem_poi, copy_w)  # (B, P)
            else:  # the pointer's mass on each target: the weight of the memory items that are it
                hit = mem_poi == batch.target_poi[:, None]                   # (B, M)
                out["p_copy_target"] = (copy_w * hit).sum(1, keepdim=True)   # (B, 1)
        return out

    def _mix(self, out: dict[str, Tensor], log_p_gen: Tensor, p_copy: Tensor | None) -> Tensor:
        """``log(g * p_copy + (1 - g) * p_gen)`` computed stably."""
        if p_copy is None:
            return log_p_gen
        g = out["gate"][:, None]
        return torch.logaddexp(torch.log1p(-g + 1e-6) + log_p_gen, torch.log(g * p_copy + 1e-9))

    def score(self, batch: Batch) -> Tensor:
        out = self(batch)
        return self._mix(out, out["gen"].log_softmax(-1), out.get("p_copy"))   # (B, P)

    def loss(self, batch: Batch) -> Tensor:
        y = batch.target_poi                                                  # (B,)
        if self.num_sampled > 0 and self.training:
            return self._sampled_loss(batch)
        out = self(batch)
        log_p_gen = out["gen"].log_softmax(-1).gather(1, y[:, None])         # (B, 1)
        p_copy = out["p_copy"].gather(1, y[:, None]) if "p_copy" in out else None
        return -self._mix(out, log_p_gen, p_copy).mean()

    def _sampled_loss(self, batch: Batch) -> Tensor:
        """NLL with the generate softmax over each target and ``num_sampled`` uniform negatives
        shared by the batch (a negative equal to a sample's target is masked for that sample).
        Only the batch's targets and the negatives are scored (:meth:`forward` ``columns``)."""
        y = batch.target_poi                                                  # (B,)
        neg = torch.randint(0, self.num_pois, (self.num_sampled,), device=y.device)  # (K,)
        columns = torch.unique(torch.cat([y, neg]))                           # (C,) sorted
        out = self(batch, columns=columns)
        gen = out["gen"]                                                      # (B, C)
        pos = gen.gather(1, torch.searchsorted(columns, y)[:, None])          # (B, 1)
        negs = gen[:, torch.searchsorted(columns, neg)].masked_fill(neg[None, :] == y[:, None], float("-inf"))
        log_p_gen = torch.cat([pos, negs], 1).log_softmax(-1)[:, :1]          # (B, 1) of a (B, 1+K) softmax
        return -self._mix(out, log_p_gen, out.get("p_copy_target")).mean()

    # ------------------------------------------------------------------ explanations
    @torch.no_grad()
    def explain(self, batch: Batch, k: int = 3) -> list[dict[str, Any]]:
        """For each sample: its top-``k`` POIs, the ``k`` memory check-ins that carried the most
        weight (pointer weight when ``copy`` is on, else attention), and for the top POI the
        ``k`` graph neighbours with the most attention in the last graph layer (layers with
        ``returns_attention``; otherwise no neighbours are reported). Relations that give the
        POI a single neighbour (its region, its category) are skipped: their weight is 1 by
        construction and says nothing.

        Returns a list (one dict per sample) of plain Python values.
        """
        was = self.training
        self.eval()
        out = self(batch)
        scores = self._mix(out, out["gen"].log_softmax(-1), out.get("p_copy"))
        top_s, top_p = scores.topk(min(k, self.num_pois), dim=1)                           # (B, k)
        w = out.get("copy_w", out["att_w"]).masked_fill(~out["mem_mask"], -1.0)          # (B, M)
        mem_k = min(k, w.shape[1])
        top_w, top_m = w.topk(mem_k, dim=1)                                                # (B, k)
        neighbours = self._graph_neighbours(top_p[:, 0], k)
        self.train(was)
        result = []
        for b in range(len(batch)):
            hist_len = batch.hist_poi.shape[1]
            checkins = [{"source": "history" if m < hist_len else "prefix",
                         "poi": int(out["mem_poi"][b, m]), "ts": int(out["mem_ts"][b, m]), "weight": float(wt)}
                        for wt, m in zip(top_w[b].tolist(), top_m[b].tolist()) if wt >= 0]
            result.append({"index": int(batch.index[b]), "top_pois": top_p[b].tolist(),
                           "log_prob": top_s[b].tolist(), "checkins": checkins,
                           "neighbors": neighbours[b] if neighbours is not None else []})
        return result

    def _graph_neighbours(self, pois: Tensor, k: int) -> list[list[dict[str, Any]]] | None:
        enc = self.graph_encoder
        if enc is None or not enc.caps.returns_attention:
            return None
        x = {t: v for t, v in self.node_inputs().items() if t in enc.node_types}
        # recompute the inputs of the last block (cheap at this scale)
        kw = enc.edge_kwargs(self.graph)
        for conv, norms in list(zip(enc.convs, enc.norms))[:-1]:
            o = conv(x, {et: self.graph[et].edge_index for et in conv.convs.keys()}, **kw)
            x = {t: norms[t](v + F.relu(o[t])) if t in o else v for t, v in x.items()}
        att = enc.last_layer_attention(x, self.graph, dst="poi")
        out: list[list[dict[str, Any]]] = []
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

    def extra_repr(self) -> str:
        o = ", ".join(f"{k}={v}" for k, v in self.opts.items())
        return (f"{super().extra_repr()}, dim={self.dim}, layer={self.layer.__name__}, "
                f"seq_encoder={self.seq_kind}, {o}")


__all__ = ["STGNN", "HeteroGraphEncoder", "hour_of_week", "time_bucket", "dist_bucket", "haversine_km"]
