"""GraphGRUCell: the gate conv is an argument; flags decide which edge inputs it receives."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import ChebConv, GCNConv

from stgnn.layers.recurrent import GraphGRUCell
from stgnn.layers.time_attention import TimeAttentionConv

EI = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])


@pytest.mark.parametrize("conv", ["gcn", "sage", "gat", ChebConv, "time_attention"])
def test_shapes_and_state_update(conv):
    torch.manual_seed(0)
    cell = GraphGRUCell(conv, 5, 8)
    x = torch.randn(4, 5)
    h1 = cell(x, EI, edge_time=torch.tensor([0, 10, 20, 30]), edge_weight=torch.ones(4))
    h2 = cell(x, EI, h1)
    assert h1.shape == h2.shape == (4, 8)
    assert not torch.allclose(h1, h2)


def test_conv_class_is_used_for_every_gate_and_flags_route_inputs():
    cell = GraphGRUCell("gcn", 3, 4)
    assert all(isinstance(c, GCNConv) for c in (cell.conv_z, cell.conv_r, cell.conv_h))
    assert set(cell._edge_kwargs(torch.ones(4), torch.ones(4, 2), torch.ones(4))) == {"edge_weight"}
    cell = GraphGRUCell(TimeAttentionConv, 3, 4)
    assert set(cell._edge_kwargs(torch.ones(4), None, torch.ones(4))) == {"edge_time"}


def test_gru_algebra_with_zero_update_gate_input():
    # h' = z*h + (1-z)*h_tilde lies between h and h_tilde elementwise, and h_tilde is in (-1, 1)
    torch.manual_seed(1)
    cell = GraphGRUCell("sage", 3, 4)
    h = torch.randn(4, 4) * 5
    out = cell(torch.randn(4, 3), EI, h)
    lo, hi = torch.minimum(h, torch.full_like(h, -1.0)), torch.maximum(h, torch.ones_like(h))
    assert ((out >= lo - 1e-6) & (out <= hi + 1e-6)).all()


def test_reset_parameters_repr_and_gradients():
    cell = GraphGRUCell("gat", 3, 4)
    assert repr(cell) == "GraphGRUCell(GATConv, 3, 4)"
    cell.reset_parameters()
    cell(torch.randn(4, 3), EI, torch.randn(4, 4)).sum().backward()
    for name, p in cell.named_parameters():
        assert p.grad is not None, name
