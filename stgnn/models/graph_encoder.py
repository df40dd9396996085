"""The heterogeneous graph encoder: stacked ``HeteroConv`` blocks around any resolved layer.

Used by :class:`~stgnn.models.stgnn.STGNN` (full-batch, or on sampled neighbourhoods through
:mod:`stgnn.models.sampled_encoding`); a plain ``nn.Module`` usable on its own.
"""
from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import HeteroConv, SAGEConv

from stgnn.layers import capabilities, init_conv, resolve


def signed_log1p(x: Tensor) -> Tensor:
    """Tame raw edge attributes (counts, km) that span orders of magnitude."""
    return torch.sign(x) * torch.log1p(x.abs())


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

    def forward(self, x_dict: dict[str, Tensor], graph: HeteroData, num_blocks: int | None = None,
                ) -> dict[str, Tensor]:
        """Run the first ``num_blocks`` blocks (default: all); the output of ``len(convs) - 1``
        blocks is the input of the last one (what :meth:`last_layer_attention` needs)."""
        kw = self.edge_kwargs(graph)
        for conv, norms in list(zip(self.convs, self.norms))[:num_blocks]:
            edge_index_dict = {et: graph[et].edge_index for et in conv.convs.keys()}
            out = conv(x_dict, edge_index_dict, **{k: {et: v[et] for et in edge_index_dict if et in v}
                                                     for k, v in kw.items()})
            x_dict = {t: norms[t](x + F.dropout(F.relu(out[t]), self.dropout, self.training)) if t in out else x
                      for t, x in x_dict.items()}
        return x_dict

    @torch.no_grad()
    def forward_layerwise(self, x_dict: dict[str, Tensor], graph: HeteroData, chunk: int = 4096
                          ) -> dict[str, Tensor]:
        """:meth:`forward` (eval mode) on the whole graph, every neighbour, one block at a time
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
