"""Plug a brand-new MessagePassing layer into STGNN without touching the package.

The layer below is defined here only; STGNN receives it once as a class and once as a dotted
path (this module's import name: ``test_custom_layer`` under pytest's default rootdir-based
"prepend" import mode, which is what ``__name__`` holds).
"""
from __future__ import annotations

from typing import Tuple, Union

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from stgnn.data.batch import SampleLoader
from stgnn.graph.hetero import build_hetero_graph
from stgnn.layers import capabilities, resolve
from stgnn.models.stgnn import STGNN


class MyConv(MessagePassing):
    """Mean of neighbours through a linear map, plus a root term (bipartite-capable)."""

    def __init__(self, in_channels: Union[int, Tuple[int, int]], out_channels: int) -> None:
        super().__init__(aggr="mean")
        src, dst = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        self.lin = nn.Linear(src, out_channels)
        self.root = nn.Linear(dst, out_channels, bias=False)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        self.root.reset_parameters()

    def forward(self, x: Union[Tensor, Tuple[Tensor, Tensor]], edge_index: Tensor) -> Tensor:
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        return self.propagate(edge_index, x=(self.lin(x_src), x_dst), size=(x_src.size(0), x_dst.size(0))) \
            + self.root(x_dst)

    def message(self, x_j: Tensor) -> Tensor:
        return x_j


@pytest.fixture(scope="module")
def graph(synthetic_split):
    return build_hetero_graph(synthetic_split, parts=(0,))


def test_module_name_is_the_rootdir_relative_one():
    assert __name__ == "test_custom_layer"
    assert resolve("test_custom_layer.MyConv") is MyConv


def test_flags_are_derived_by_inspection():
    caps = capabilities(MyConv)
    assert caps.supports_bipartite and not caps.supports_edge_attr and not caps.supports_edge_time


@pytest.mark.parametrize("layer", [MyConv, f"{__name__}.MyConv"])
def test_train_stgnn_with_a_new_layer(synthetic_split, graph, layer):
    torch.manual_seed(0)
    m = STGNN(synthetic_split.num_users, synthetic_split.num_pois, dim=16, layer=layer, graph_layers=1)
    m.attach_coordinates(torch.as_tensor(synthetic_split.poi_lat), torch.as_tensor(synthetic_split.poi_lon))
    m.attach_graph(graph)
    convs = dict(m.graph_encoder.convs[0].convs.items())
    # one block: only relations into the node types the model reads (user, poi) are built
    assert set(convs) == {et for et in graph.edge_types if et[2] in ("user", "poi")}
    assert all(isinstance(c, MyConv) for c in convs.values())
    opt = torch.optim.Adam(m.parameters(), 5e-3)
    b = SampleLoader(synthetic_split, "train", batch_size=64).make_batch(synthetic_split.samples["train"][:64])
    first = m.loss(b).item()
    for _ in range(6):
        opt.zero_grad()
        m.loss(b).backward()
        opt.step()
    assert m.loss(b).item() < first
    assert all(c.lin.weight.grad is not None and c.lin.weight.grad.abs().sum() > 0 for c in convs.values())
