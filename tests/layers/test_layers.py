"""The layer resolver: names, classes, dotted paths, capability flags and the init_conv hook."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GATConv, GCNConv, MessagePassing, SAGEConv

from stgnn import layers
from stgnn.layers import LayerCaps, TimeAttentionConv, capabilities, init_conv, resolve


def test_resolve_names_classes_and_dotted_paths():
    assert resolve("sage") is SAGEConv
    assert resolve("GAT") is GATConv
    assert resolve(GCNConv) is GCNConv
    assert resolve("torch_geometric.nn.SAGEConv") is SAGEConv
    assert resolve("time_attention") is TimeAttentionConv
    assert resolve("stgnn.layers.time_attention.TimeAttentionConv") is TimeAttentionConv


def test_resolve_errors_name_the_choices():
    with pytest.raises(ValueError, match="valid names: .*gat.*sage"):
        resolve("graphsage2000")
    with pytest.raises(ImportError, match="NoSuchConv"):
        resolve("torch_geometric.nn.NoSuchConv")
    with pytest.raises(TypeError, match="not an nn.Module"):
        resolve("math.sqrt")


def test_capabilities_derived_for_pyg_and_declared_for_ours():
    assert capabilities("sage") == LayerCaps(supports_bipartite=True)
    assert capabilities("gcn") == LayerCaps(supports_edge_weight=True)
    gat = capabilities("gat")
    assert gat.supports_edge_attr and gat.supports_bipartite and gat.returns_attention
    assert not gat.supports_edge_time
    assert capabilities(TimeAttentionConv) == LayerCaps(True, False, True, True, True)


def test_declared_flag_overrides_inspection():
    class Odd(MessagePassing):
        supports_bipartite = False

        def __init__(self, in_channels: int | tuple[int, int], out_channels: int) -> None:
            super().__init__()

        def forward(self, x, edge_index, edge_attr=None):
            return x

    caps = capabilities(Odd)
    assert caps.supports_edge_attr and not caps.supports_bipartite


@pytest.mark.parametrize("name", layers.available())
def test_init_conv_builds_every_named_layer_to_the_requested_width(name):
    torch.manual_seed(0)
    x, ei = torch.randn(5, 8), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]])
    conv = init_conv(name, 8, 6, heads=2)
    assert conv(x, ei).shape == (5, 6)
    if capabilities(name).supports_bipartite:
        conv = init_conv(name, (8, 4), 6)
        out = conv((x, torch.randn(3, 4)), torch.tensor([[0, 4, 2], [0, 1, 2]]))
        assert out.shape == (3, 6)


def test_init_conv_bipartite_turns_off_self_loops_and_averages_heads():
    conv = init_conv("gat", (8, 4), 6, heads=3, edge_dim=2)
    assert conv.add_self_loops is False and conv.concat is False and conv.heads == 3
    assert conv.lin_edge is not None  # edge_dim reached the layer
    assert not hasattr(init_conv("sage", 8, 6, edge_dim=2), "edge_dim")  # dropped where not accepted
