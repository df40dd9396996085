"""Recurrent graph cells over a sequence of graph snapshots, behind one interface.

``make_temporal_cell(kind, dim, conv=...)`` returns a module with

    forward(x (N, dim), edge_index (2, E), edge_weight (E,) | None, h (N, dim) | None) -> h' (N, dim)
    reset_state()   # call before a new sequence

so a model runs ``h = cell(x, ei_t, w_t, h)`` over its snapshots whatever the cell is:

* ``graph_gru``: :class:`~stgnn.layers.recurrent.GraphGRUCell`, gates made of any conv (``conv``:
  a name, class or dotted path, as :func:`stgnn.layers.resolve` takes);
* ``gconvgru``: torch-geometric-temporal's ``GConvGRU`` (Chebyshev gates, ``K=2``);
* ``tgcn``: torch-geometric-temporal's ``TGCN`` (GCN gates);
* ``evolvegcno``: torch-geometric-temporal's ``EvolveGCNO``. It keeps no node state: a GRU evolves
  the GCN *weights* from one snapshot to the next, so ``h`` is ignored and the new node
  representation is returned; ``reset_state`` restarts the weight sequence.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

TEMPORAL_CELLS = ("graph_gru", "gconvgru", "tgcn", "evolvegcno")


class TemporalCell(nn.Module):
    """Adapter giving every recurrent graph cell the same ``(x, edge_index, edge_weight, h)`` call.

    Args:
        kind: one of :data:`TEMPORAL_CELLS`.
        dim: width of node inputs and states.
        conv: the gate conv of ``graph_gru`` (ignored by the other kinds, whose convs are fixed).
        **conv_kwargs: passed to ``graph_gru``'s gate convs.
    """

    def __init__(self, kind: str, dim: int, conv: str | type = "gcn", **conv_kwargs: Any) -> None:
        super().__init__()
        if kind not in TEMPORAL_CELLS:
            raise ValueError(f"temporal cell {kind!r}; choose one of {list(TEMPORAL_CELLS)}")
        self.kind, self.dim = kind, dim
        if kind == "graph_gru":
            from stgnn.layers.recurrent import GraphGRUCell

            self.cell = GraphGRUCell(conv, dim, dim, **conv_kwargs)
        elif kind == "gconvgru":
            from torch_geometric_temporal.nn.recurrent import GConvGRU

            self.cell = GConvGRU(dim, dim, K=2)
        elif kind == "tgcn":
            from torch_geometric_temporal.nn.recurrent import TGCN

            self.cell = TGCN(dim, dim)
        else:
            from torch_geometric_temporal.nn.recurrent import EvolveGCNO

            self.cell = EvolveGCNO(dim)

    def reset_state(self) -> None:
        """Forget what the last sequence left behind (EvolveGCNO's evolved weights)."""
        if self.kind == "evolvegcno":
            self.cell.reinitialize_weight()

    def reset_parameters(self) -> None:
        for m in self.cell.modules():  # parents and children alike: resetting twice is harmless
            if callable(getattr(m, "reset_parameters", None)):
                m.reset_parameters()
        self.reset_state()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                h: Tensor | None = None) -> Tensor:
        if self.kind == "graph_gru":
            return self.cell(x, edge_index, h, edge_weight=edge_weight)
        if self.kind == "evolvegcno":
            return self.cell(x, edge_index, edge_weight)
        return self.cell(x, edge_index, edge_weight, h)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.kind}, dim={self.dim}, cell={self.cell.__class__.__name__})"


def make_temporal_cell(kind: str, dim: int, conv: str | type = "gcn", **conv_kwargs: Any) -> TemporalCell:
    """A :class:`TemporalCell` (see the module docstring)."""
    return TemporalCell(kind, dim, conv, **conv_kwargs)
