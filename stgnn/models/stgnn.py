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
   its time and distance intervals to the query (query time = the target time when the batch
   carries it, ``target_time: known``, else the last prefix time; query place = the last
   prefix POI).
4. **Scoring.** ``u = MLP([q, context, G_user[user], tow(query)])``. A *generate* distribution
   ``softmax(u . G_poi + dist_bias(u, dist(last, p)))`` over all POIs is mixed with a *copy*
   (pointer) distribution over the POIs in the memory, with a learned gate:
   ``p = g * p_copy + (1 - g) * p_gen``. About 70% of NYC test targets are revisits, which the
   pointer captures directly. ``score`` returns ``log p``; ``loss`` is its NLL (full softmax;
   ``num_sampled > 0`` samples the generate softmax's negatives, the default above 20,000 POIs).

Ablation switches (constructor keywords): ``graph`` (none/static/temporal), ``text`` (none/given),
``time_enc`` (none/tow), ``space_enc`` (none/bucket), ``attention`` (none/st), ``copy``
(none/pointer), ``seq_encoder`` (transformer/lstm/gru/none), ``layer`` (any name, class or dotted
path :func:`stgnn.layers.resolve` accepts; branches use its capability flags, never its name).
``intent`` adds the LM vector of the prefix rendered as text to ``u`` (:mod:`stgnn.models.intent`).
``aux={category: w_c, region: w_r}`` (GETNext-style multi-task) adds linear heads on ``u`` and
``w * CE`` of the target POI's category / region to the training loss; scores are unchanged
(:mod:`stgnn.models.aux_heads`).

Dynamic graph: ``snapshots=K`` runs a recurrent graph cell (``temporal_cell``) over the POI
transition graphs of the last ``K`` training weeks; its final state is added to the POIs.

Cold start: ``id_dropout=p`` (DropoutNet-style) drops each POI's id embedding and bias with
probability ``p`` per training step, so the model learns to score a POI from its content; at
evaluation, POIs without a training check-in are scored from content only.

Large graphs: ``sampling="sampled"`` (or ``"auto"`` above ``auto_edges`` edges) encodes only the
nodes a step needs, on sampled neighbourhoods (:mod:`stgnn.models.sampled_encoding`). Above
``dist_matrix_max_pois`` POIs distances are computed per batch; a sampled-softmax step touches
only the POIs it reads (:mod:`stgnn.models.sampled_softmax`).

Inputs and leakage: :meth:`STGNN.from_inputs` takes the training graph, snapshots, text vectors
and coordinates from :class:`~stgnn.inputs.ModelInputs` (built from ``part == 0`` check-ins, so
the graph's newest edge predates every val/test target); everything else comes from the batch,
which holds only check-ins before the target. Explanations: :mod:`stgnn.models.explain`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from stgnn.data.batch import Batch
from stgnn.features.space import N_DIST_BUCKETS
from stgnn.features.time import HOURS_PER_WEEK, N_TIME_BUCKETS, hour_of_week, time_bucket
from stgnn.inputs import InputSpec, ModelInputs
from stgnn.layers import resolve
from stgnn.layers.temporal_cells import make_temporal_cell
from stgnn.models.aux_heads import AuxHeads, aux_needs_graph, parse_aux
from stgnn.models.base import Recommender
from stgnn.models.encoders import make_sequence_encoder
from stgnn.models.explain import explain
from stgnn.models.graph_encoder import HeteroGraphEncoder
from stgnn.models.intent import IntentHead
from stgnn.models.poi_distances import PoiDistances
from stgnn.models.poi_init import init_poi_embedding
from stgnn.models.prefix import encode_prefix
from stgnn.models.prior import ReferencePrior
from stgnn.models.sampled_encoding import SampledGraphEncoding, needed_nodes
from stgnn.models.sampled_softmax import resolve_num_sampled, sampled_nll

_CHOICES = {"graph": ("none", "static", "temporal"), "text": ("none", "given"), "time_enc": ("none", "tow"),
            "space_enc": ("none", "bucket"), "attention": ("none", "st"), "copy": ("none", "pointer")}


# ---------------------------------------------------------------------------- the model
class STGNN(PoiDistances, Recommender):
    """Heterogeneous graph + sequence + spatiotemporal attention + pointer recommender.

    Args:
        num_users, num_pois: id-space sizes.
        dim: width of every representation.
        layer: graph layer (name, class or ``"pkg.mod.Class"``).
        graph: ``"none"`` (id embeddings only), ``"static"``, ``"temporal"`` (edge ages to layers taking ``edge_time``).
        text: ``"given"`` uses ``text_emb`` as POI input when provided, ``"none"`` ignores it.
        text_emb: ``(P, D)`` language-model embeddings of the POIs' text (or ``None``).
        poi_init: ``"random"`` (``N(0, 1)``) or ``"text"``: POI id embeddings start at the PCA of ``text_emb``.
        time_enc, space_enc, attention, copy: ablation switches (module docstring).
        seq_encoder: ``"transformer"``, ``"lstm"``, ``"gru"`` or ``"none"``.
        heads, seq_layers, dropout: sequence-encoder sizes; graph_layers: HeteroConv blocks.
        num_sampled: ``> 0``: the generate softmax in ``loss`` uses the targets and this many uniform
            negatives shared by the batch (:mod:`~stgnn.models.sampled_softmax`; ``"auto"``: above 20k POIs).
        id_dropout: probability of dropping a POI's id embedding and bias per training step (cold start).
        sampling: ``"full"``, ``"sampled"`` (neighbour sampling) or ``"auto"`` (above ``auto_edges`` edges).
        fanout: neighbours per relation and hop when sampling (default 15 per hop).
        sample_chunk: seed nodes per chunk when encoding every node for evaluation.
        snapshots, snapshot_days: ``> 0``: that many POI transition snapshots of ``snapshot_days`` each, fed to ``temporal_cell``.
        temporal_cell: ``graph_gru``, ``gconvgru``, ``tgcn`` or ``evolvegcno``; cell_conv: ``graph_gru``'s gate conv.
        dist_matrix_max_pois: most POIs for which the ``(P, P)`` uint8 distance-bucket table is built (NYC: 25 MB).
        graph_data: the training graph now (else :meth:`prepare` / :meth:`attach_graph`).
        text_model, text_profile: builder options: a text-encoder spec (``"minilm"``, ``"hf:<path>"``...)
            whose vectors of the POIs' training-period profiles (bare names when ``text_profile=False``;
            ``"neighbours"``: + typical predecessor/successor categories) become ``text_emb``.
        conv_kwargs: extra constructor arguments for the graph layer (e.g. ``heads``).
        prior: residual learning over the tuned reference (:meth:`ReferencePrior.from_option
            <stgnn.models.prior.ReferencePrior.from_option>`: its keywords, ``fusion``...); ``None``: off.
        intent, intent_items: a text-encoder spec: ``u`` gets a learned MLP of the frozen LM vector of
            each sample's prefix rendered as text (last ``intent_items`` check-ins; :mod:`stgnn.models.intent`).
        aux: ``{"category": w_c, "region": w_r}``: heads on ``u``, training loss only (:mod:`stgnn.models.aux_heads`).

    Shapes:
        ``score(batch) -> (B, P)`` log-probabilities; ``loss(batch) -> ()``.
    """

    needs_graph = True         # unless graph="none" (see input_spec)
    needs_snapshots = False    # when snapshots > 0
    needs_text = False         # when text_model names an encoder
    uses_target_time = True
    input_options = frozenset({"text_model", "text_profile"})

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
                 graph_data: HeteroData | None = None, conv_kwargs: dict[str, Any] | None = None,
                 prior: dict[str, Any] | None = None, poi_init: str = "random", intent: str | None = None,
                 intent_items: int = 5, aux: dict[str, float] | None = None) -> None:
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
        self.opts, self.dim, self.dropout = opts, dim, dropout
        self.num_sampled = resolve_num_sampled(num_sampled, num_pois)
        self.sampling, self.fanout, self.auto_edges, self.sample_chunk = sampling, fanout, auto_edges, sample_chunk
        self.sampler: SampledGraphEncoding | None = None   # when the graph is sampled
        self._eval_nodes: dict[str, Tensor] | None = None   # all-node encodings cached for evaluation
        self.layer, self.graph_layers, self.conv_kwargs = resolve(layer), graph_layers, dict(conv_kwargs or {})
        self.seq_kind = seq_encoder
        # inputs of the graph encoder (or the embeddings themselves when graph == "none")
        self.user_emb = nn.Embedding(num_users, dim)
        self.poi_emb = nn.Embedding(num_pois, dim)
        init_poi_embedding(self.poi_emb, poi_init, text_emb)   # "text": PCA of text_emb (poi_init.py)
        use_text = text == "given" and text_emb is not None
        self.register_buffer("text_emb", text_emb.float() if use_text else None)
        self.text_proj = nn.Linear(text_emb.shape[1], dim) if use_text else None
        self.node_emb = nn.ModuleDict()      # other node types (category, region), made with the graph
        self.x_proj = nn.ModuleDict()        # graph node features (coordinates, popularity...) -> dim
        self.graph_encoder: HeteroGraphEncoder | None = None
        self.graph_data: HeteroData | None = None          # the training graph (attach_graph)
        # recurrent cell over weekly transition snapshots (off when snapshots == 0)
        self.snapshots, self.snapshot_days = snapshots, snapshot_days
        self.cell = make_temporal_cell(temporal_cell, dim, cell_conv) if snapshots > 0 else None
        self.cell_norm = nn.LayerNorm(dim) if snapshots > 0 else None
        self.snapshot_edges: list[tuple[Tensor, Tensor]] = []   # (edge_index, count) per week
        # step, memory and query encodings
        self.tow_emb = nn.Embedding(HOURS_PER_WEEK, dim)
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
        # distances cost a row gather per sample instead of (B, P) trigonometry each step; set by
        # attach_coordinates (the builder makes it once for every run sharing the inputs)
        self.dist_matrix_max_pois = dist_matrix_max_pois
        self.register_buffer("poi_dist_bucket", torch.zeros((0, 0), dtype=torch.uint8), persistent=False)
        self.prior = ReferencePrior.from_option(prior, num_users, num_pois, dim, self.num_sampled)   # None: off
        self.intent_spec, self.intent_items, self.intent = intent, intent_items, None   # IntentHead: prepare()
        self.aux_weights, self.aux = parse_aux(aux), None                               # AuxHeads: prepare()
        if graph_data is not None:
            self.attach_graph(graph_data)

    # ------------------------------------------------------------------ data
    @classmethod
    def input_spec(cls, *, graph: str = "temporal", text: str = "given", text_emb: Tensor | None = None,
                   snapshots: int = 0, snapshot_days: float = 7.0, space_enc: str = "bucket",
                   dist_matrix_max_pois: int = 20_000, text_model: str | None = None, text_profile: bool | str = True,
                   prior: dict[str, Any] | None = None, poi_init: str = "random", intent: str | None = None,
                   intent_items: int = 5, aux: dict[str, float] | None = None, **_: Any) -> InputSpec:
        """The training graph unless ``graph="none"``; ``snapshots`` weekly transition snapshots;
        the distance-bucket table when distances are encoded; text vectors when ``text_model`` names
        an encoder (and ``text`` is on or ``poi_init="text"``); the reference's counts when ``prior`` is set."""
        wants_text = text_model is not None and text_emb is None and (text != "none" or poi_init == "text")
        return InputSpec(graph=graph != "none" or aux_needs_graph(aux), snapshots=snapshots, snapshot_days=snapshot_days,
                         dist_table_max_pois=dist_matrix_max_pois if space_enc != "none" else 0,
                         text=text_model if wants_text else None, text_profile=text_profile,
                         visible_counts=prior is not None, intent=intent, intent_items=intent_items)

    @classmethod
    def from_inputs(cls, inputs: ModelInputs, **kwargs: Any) -> "STGNN":
        """Build for ``inputs`` (their text vectors, if any, become ``text_emb``), then
        :meth:`prepare`, so the optimizer sees every parameter."""
        if kwargs.get("text_emb") is None and inputs.text is not None:
            kwargs["text_emb"] = inputs.text
        model = cls(inputs.num_users, inputs.num_pois, **kwargs)
        model.prepare(inputs)
        return model

    def prepare(self, inputs: ModelInputs) -> None:
        """POI coordinates, the POIs seen in training, the snapshots and the training graph."""
        missing = inputs.missing(InputSpec(graph=self.opts["graph"] != "none", snapshots=self.snapshots,
                                           snapshot_days=self.snapshot_days, intent=self.intent_spec))
        if missing:
            raise ValueError(f"STGNN needs {' and '.join(missing)}, which these inputs lack; build them with "
                             "build_inputs(split, STGNN.input_spec(**kwargs))")
        self.attach_coordinates(inputs.poi_lat, inputs.poi_lon, inputs.dist_table,
                                build_table=self.opts["space_enc"] != "none")
        self.poi_seen = (inputs.stats.poi_count > 0).to(self.poi_bias.device)
        if self.cell is not None:
            self.attach_snapshots(inputs.snapshots)
        if self.prior is not None:
            self.prior.prepare(inputs)
        if self.opts["graph"] != "none":
            self.attach_graph(inputs.graph)
        if self.intent_spec is not None and self.intent is None:   # last: the other modules' init is unchanged
            self.intent = IntentHead.for_model(inputs, self)
        if self.aux_weights and self.aux is None:                  # after the intent head, for the same reason
            self.aux = AuxHeads.for_model(inputs, self.aux_weights, self.dim).to(self.poi_bias.device)

    def attach_snapshots(self, snaps: list[tuple[Tensor, Tensor]]) -> None:
        """Use ``[(edge_index (2, E_i), count (E_i,)), ...]`` (oldest first) as the snapshots the
        recurrent cell runs over (:func:`stgnn.graph.snapshots.transition_snapshots`)."""
        dev = self.poi_bias.device
        self.snapshot_edges = [(ei.to(dev), c.to(dev)) for ei, c in snaps]
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
        self.graph_data = data.to(self.poi_bias.device)
        self._eval_nodes = None
        self.sampler = None
        if self.sampling == "sampled" or (self.sampling == "auto" and data.num_edges > self.auto_edges):
            self.sampler = SampledGraphEncoding(self.graph_data, self.fanout, self.sample_chunk)

    def _apply(self, fn, recurse=True):  # keep the (non-module) graph on the model's device
        out = super()._apply(fn, recurse)
        g = self.graph_data
        if g is not None and g[g.edge_types[0]].edge_index.device != self.poi_bias.device:
            self.attach_graph(g)  # moves it (edge times stay float64/int64) and rebuilds the sampler
        if self.snapshot_edges and self.snapshot_edges[0][0].device != self.poi_bias.device:
            self.attach_snapshots(self.snapshot_edges)
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
                feats = self.graph_data[t].x
                v = v + self.x_proj[t]((feats if idx is None else feats[idx]).float())
            x[t] = v
        return x

    def encode_graph(self, need: dict[str, Tensor] | None = None, compact: bool = False) -> dict[str, Tensor]:
        """The graph encoder's node representations, plus the recurrent snapshot state on POIs
        (``compact``: only the ``need`` rows, in their order)."""
        G = self._encode_structure(need, compact)
        if self.cell is None or not self.snapshot_edges:
            return G
        x = self.node_inputs({"poi": torch.arange(self.num_pois, device=self.poi_bias.device)})["poi"]  # (P, d)
        self.cell.reset_state()
        h = None
        for ei, count in self.snapshot_edges:             # oldest week first
            h = self.cell(x, ei, torch.log1p(count.float()), h)                  # (P, d)
        return {**G, "poi": self.cell_norm(G["poi"] + (h[need["poi"]] if compact else h))}

    def _encode_structure(self, need: dict[str, Tensor] | None = None, compact: bool = False) -> dict[str, Tensor]:
        """``{"user": (U, dim), "poi": (P, dim), ...}`` node representations for this forward: every
        node full-batch; sampled, only the ``need`` ``{"user"|"poi": ids}`` nodes (the other rows
        hold their graph-free inputs, unused), and in eval mode every node once, cached until ``train()``.
        ``compact``: only the ``need`` rows, ``{t: (len(need[t]), dim)}``."""
        if self.graph_encoder is None:
            if self.opts["graph"] != "none":
                raise RuntimeError("STGNN needs its training graph: build it with STGNN.from_inputs(inputs) "
                                   "or call attach_graph(data)")
            return self.node_inputs(need) if compact else self.node_inputs()
        if self.sampler is None:
            x = {t: v for t, v in self.node_inputs().items() if t in self.graph_encoder.node_types}
            G = self.graph_encoder(x, self.graph_data)
            return {t: G[t][need[t]] for t in need} if compact else G
        if compact:
            return self.sampler.encode(self.graph_encoder, self.node_inputs, need)
        sizes = {"user": self.num_users, "poi": self.num_pois}
        if not self.training:
            if self._eval_nodes is None:
                self._eval_nodes = self.sampler.encode_all(self.graph_encoder, self.node_inputs, sizes,
                                                           self.poi_bias.device)
            return self._eval_nodes
        base = {t: self.node_inputs({t: torch.arange(n, device=self.poi_bias.device)})[t] for t, n in sizes.items()}
        enc = self.sampler.encode(self.graph_encoder, self.node_inputs, need)
        return {t: base[t].index_put((need[t],), enc[t]) for t in base}

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

    def forward(self, batch: Batch, columns: Tensor | None = None) -> dict[str, Tensor]:
        """All intermediate results; ``score``/``loss``/``explain`` read what they need.

        Returns the generate logits ``gen (B, P)`` (float32), ``u (B, dim)`` and the memory:
        ``mem_poi, mem_ts, mem_mask, att_w (B, M)``; with the pointer also ``copy_w (B, M)``,
        ``gate (B,)`` and ``p_copy (B, P)``. :meth:`log_probs` turns them into scores. With
        ``columns`` (``(C,)`` sorted unique POI ids: a sampled-softmax step's candidates) only the
        POIs the step reads are encoded, ``gen`` is ``(B, C)`` and the pointer gives
        ``p_copy_target (B, 1)``, its mass on each target: nothing of size ``P`` per sample.
        """
        self._id_keep = self._draw_id_keep() if self.training else None      # (P,) or None
        sampled = self.sampler is not None and self.training
        need = (needed_nodes(batch, self.num_pois, self.num_sampled, columns)  # what this step reads
                if sampled or columns is not None else None)
        G = self.encode_graph(need, compact=columns is not None)
        g_poi = F.dropout(G["poi"], self.dropout, self.training)             # (P, d) or (N_need, d)
        rows = ((lambda idx: g_poi[idx]) if columns is None                  # noqa: E731 POI ids -> rows of g_poi
                else (lambda idx: g_poi[torch.searchsorted(need["poi"], idx)]))
        g_user = G["user"][batch.user if columns is None else torch.searchsorted(need["user"], batch.user)]
        use_t, use_s = self.opts["time_enc"] == "tow", self.opts["space_enc"] == "bucket"
        tq, tzq = batch.query_time()             # (B,), (B,): the target's time if known, else the last check-in's
        last = batch.last_poi                                                # (B,) the query place

        q = self.encode_prefix(batch, rows)                                  # (B, d)

        # --- memory: the user's history + the prefix, keyed by POI, time of week, intervals to the query
        mem_poi = torch.cat([batch.hist_poi, batch.poi], 1)                  # (B, M)
        mem_ts = torch.cat([batch.hist_ts, batch.ts], 1)                     # (B, M)
        mem_tz = torch.cat([batch.hist_tz, batch.tz], 1)                     # (B, M)
        mem_mask = torch.cat([batch.hist_mask, batch.mask], 1)              # (B, M)
        keys = rows(mem_poi)                                                 # (B, M, d)
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
        u = self.fuse(torch.cat([q, ctx, g_user, tow_q], -1))               # (B, d)
        u = u if self.intent is None else u + self.intent(batch)            # + MLP(LM vector of the prefix text)
        keep = self._poi_keep()                                              # (P,) or None
        bias = self.poi_bias if keep is None else torch.where(keep, self.poi_bias, self.content_bias)  # (P,)
        if columns is None:
            gen = (u @ self.out_poi(g_poi).T).float() + bias                 # (B, P)
            if use_s:
                gen = gen + self.dist_pref(u).float().gather(1, self.dist_rows(last))  # (B, P)
        else:
            gen = (u @ self.out_poi(rows(columns)).T).float() + bias[columns]  # (B, C)
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
                out["p_copy_target"] = (copy_w * (mem_poi == batch.target_poi[:, None])).sum(1, keepdim=True)
        return out

    def encode_prefix(self, batch: Batch, rows: Callable[[Tensor], Tensor]) -> Tensor:
        """``(B, d)`` sequence state at each prefix's end (:func:`stgnn.models.prefix.encode_prefix`)."""
        return encode_prefix(self, batch, rows)

    def _mix(self, out: dict[str, Tensor], log_p_gen: Tensor, p_copy: Tensor | None) -> Tensor:
        """``log(g * p_copy + (1 - g) * p_gen)`` computed stably."""
        if p_copy is None:
            return log_p_gen
        g = out["gate"][:, None]
        return torch.logaddexp(torch.log1p(-g + 1e-6) + log_p_gen, torch.log(g * p_copy + 1e-9))

    def log_probs(self, out: dict[str, Tensor]) -> Tensor:
        """``(B, P)`` log-probabilities from :meth:`forward`'s outputs."""
        return self._mix(out, out["gen"].log_softmax(-1), out.get("p_copy"))

    def score(self, batch: Batch) -> Tensor:
        out = self(batch)                                                      # (B, P) log-probabilities
        return self.log_probs(out) if self.prior is None else self.prior(batch, out["u"], self.log_probs(out))

    def loss(self, batch: Batch) -> Tensor:
        y = batch.target_poi                                                  # (B,)
        if self.prior is not None and self.prior.fusion == "joint":  # renormalised over every POI
            out = self(batch)
            nll = F.nll_loss(self.prior(batch, out["u"], self.log_probs(out)), y)
        elif self.num_sampled > 0 and self.training:
            nll, out = sampled_nll(self, batch)                               # sampled_softmax.py
        else:
            out = self(batch)
            log_p_gen = out["gen"].log_softmax(-1).gather(1, y[:, None])     # (B, 1)
            p_copy = out["p_copy"].gather(1, y[:, None]) if "p_copy" in out else None
            nll = -self._mix(out, log_p_gen, p_copy).mean()
        return nll if self.aux is None else nll + self.aux(out["u"], y)      # + w * CE(category/region)

    def explain(self, batch: Batch, k: int = 3) -> list[dict[str, Any]]:
        """Top POIs and the memory check-ins and graph neighbours behind them (:mod:`stgnn.models.explain`)."""
        return explain(self, batch, k)

    def extra_repr(self) -> str:
        o = ", ".join(f"{k}={v}" for k, v in self.opts.items())
        return f"{super().extra_repr()}, dim={self.dim}, layer={self.layer.__name__}, seq_encoder={self.seq_kind}, {o}"


__all__ = ["STGNN"]
