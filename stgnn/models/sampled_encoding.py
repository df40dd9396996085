"""Graph encoding on sampled neighbourhoods, for graphs too large to encode whole every step.

:class:`SampledGraphEncoding` runs a :class:`~stgnn.models.graph_encoder.HeteroGraphEncoder` on
the neighbourhoods :class:`~stgnn.graph.sampling.TemporalNeighborSampler` draws (``fanout``
neighbours per relation and hop) around only the nodes a training step needs
(:func:`needed_nodes`). For evaluation, :meth:`SampledGraphEncoding.encode_all` encodes every
user and POI once: with a layer that ``supports_bipartite`` on every neighbour, block by block in
destination chunks (:meth:`~stgnn.models.graph_encoder.HeteroGraphEncoder.forward_layerwise`:
exact, ``O(E)`` per evaluation), else on sampled neighbourhoods chunk by chunk with a fixed
sampler seed, so scores are deterministic. With a fan-out of at least every node's degree the
sampled encoding computes exactly what the full-batch encoder does (tested).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from stgnn.data.batch import Batch
from stgnn.graph.sampling import TemporalNeighborSampler
from stgnn.models.graph_encoder import HeteroGraphEncoder, graph_end_time

NodeInputs = Callable[[dict[str, Tensor]], dict[str, Tensor]]  # {type: ids} -> {type: (len(ids), dim)}
EDGE_KEYS = ("edge_time", "time", "edge_weight", "count", "edge_attr")  # per-edge data a subgraph keeps
#: Destination nodes per chunk of the layer-wise evaluation encoding: each chunk also projects
#: every source node once, so chunks are not small (memory: a chunk's in-edges, ~0.5 GB at 10^7 check-ins).
LAYERWISE_CHUNK = 8_192


class SampledGraphEncoding:
    """Sampled encoding of ``graph`` (module docstring).

    Args:
        graph: the training graph (every edge may be drawn: it holds the training period only).
        fanout: neighbours per relation for each hop (one entry per encoder block).
        chunk: seed nodes per chunk in :meth:`encode_all`.
    """

    def __init__(self, graph: HeteroData, fanout: list[int], chunk: int) -> None:
        self.graph, self.chunk = graph, chunk
        # static draws (time_attr=None); our own sampler, not pyg-lib's: it takes seeds of several
        # node types in one call
        self.sampler = TemporalNeighborSampler(graph, fanout, time_attr=None, use_pyg_lib=False)

    def encode(self, encoder: HeteroGraphEncoder, node_inputs: NodeInputs, seeds: dict[str, Tensor],
               generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Encode ``seeds`` ``{type: (S_t,) unique ids}`` on a sampled subgraph → ``{type: (S_t, dim)}``."""
        self.sampler.generator = generator
        out = self.sampler.sample_seeds(seeds)
        g = self.graph
        sub = HeteroData()
        for t in encoder.node_types:
            sub[t].num_nodes = int(out.node[t].numel())
        for et in encoder.edge_types:
            e = out.edge.get(et)
            if e is None:
                device = g[et].edge_index.device
                e = torch.empty(0, dtype=torch.long, device=device)
                sub[et].edge_index = torch.empty(2, 0, dtype=torch.long, device=device)
            else:
                sub[et].edge_index = torch.stack([out.row[et], out.col[et]])
            for key in EDGE_KEYS:
                if key in g[et]:
                    sub[et][key] = g[et][key][e]
        sub["end_time"] = graph_end_time(g)
        h = encoder(node_inputs({t: out.node[t] for t in encoder.node_types}), sub)
        # the seeds are the first nodes of their type, in order (non-disjoint sampling)
        return {t: h[t][:len(v)] for t, v in seeds.items()}

    @torch.no_grad()
    def encode_all(self, encoder: HeteroGraphEncoder, node_inputs: NodeInputs, sizes: dict[str, int],
                   device: torch.device) -> dict[str, Tensor]:
        """Every node of the types in ``sizes`` ``{type: count}``: on every neighbour, layer by
        layer, when the encoder's layer ``supports_bipartite``; else on sampled neighbourhoods,
        chunk by chunk, with a fixed sampler seed so evaluation is deterministic."""
        if encoder.caps.supports_bipartite:  # exact: every neighbour, destination chunk by chunk
            x = node_inputs({t: torch.arange(self.graph[t].num_nodes, device=device) for t in encoder.node_types})
            h = encoder.forward_layerwise(x, self.graph, max(self.chunk, LAYERWISE_CHUNK))
            return {t: h[t] for t in sizes}
        gen = torch.Generator(device=self.sampler.device)
        gen.manual_seed(0)
        out = {}
        for t, n in sizes.items():
            ids = torch.arange(n, device=device)
            out[t] = torch.cat([self.encode(encoder, node_inputs, {t: c}, gen)[t] for c in ids.split(self.chunk)])
        return out


def needed_nodes(batch: Batch, num_pois: int, num_sampled: int, extra_pois: Tensor | None = None,
                 ) -> dict[str, Tensor]:
    """The users and POIs a training step reads from the graph encoder: the batch's users, and
    every POI under a full softmax, else the prefix/history/target POIs plus ``extra_pois``
    (sampled negatives)."""
    if num_sampled == 0:  # a full softmax scores every POI with its encoding
        pois = torch.arange(num_pois, device=batch.poi.device)
    else:
        parts = [batch.poi.flatten(), batch.hist_poi.flatten(), batch.target_poi.flatten()]
        if extra_pois is not None:
            parts.append(extra_pois.flatten())
        pois = torch.unique(torch.cat(parts))
    return {"user": torch.unique(batch.user), "poi": pois}
