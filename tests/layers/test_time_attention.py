"""TimeAttentionConv: shapes, the time encoding, attention normalisation, reset and repr."""
from __future__ import annotations

import math

import torch

from stgnn.layers.time_attention import TimeAttentionConv, TimeEncoder


def _graph():
    torch.manual_seed(0)
    x_src, x_dst = torch.randn(4, 8), torch.randn(3, 6)
    ei = torch.tensor([[0, 1, 2, 3, 3], [0, 0, 1, 1, 2]])
    t = torch.tensor([0, 3600, 7200, 0, 100], dtype=torch.int64)
    return x_src, x_dst, ei, t


def test_time_encoder_values_and_shape():
    enc = TimeEncoder(4, time_scale=3600.0)
    out = enc(torch.tensor([0.0, 3600.0]))
    assert out.shape == (2, 4)
    assert torch.allclose(out[0], torch.ones(4))                     # cos(0) = 1
    assert math.isclose(out[1, 0].item(), math.cos(1.0), rel_tol=1e-6)  # omega_0 = 1 per hour
    assert math.isclose(out[1, 3].item(), math.cos(1e-4), rel_tol=1e-6)


def test_shapes_bipartite_and_homogeneous_with_attention():
    x_src, x_dst, ei, t = _graph()
    conv = TimeAttentionConv((8, 6), 10, heads=2, time_dim=4, edge_dim=3)
    out, (ei_out, alpha) = conv((x_src, x_dst), ei, edge_time=t, query_time=torch.tensor([7200, 7200, 9000]),
                                edge_attr=torch.randn(5, 3), return_attention_weights=True)
    assert out.shape == (3, 10) and alpha.shape == (5, 2) and torch.equal(ei_out, ei)
    # softmax over each destination's incoming edges: dst 0 has 2, dst 1 has 2, dst 2 has 1
    sums = torch.zeros(3, 2).index_add_(0, ei[1], alpha)
    assert torch.allclose(sums, torch.ones(3, 2))
    homo = TimeAttentionConv(8, 8, heads=4)
    assert homo(x_src, torch.tensor([[0, 1], [1, 2]])).shape == (4, 8)


def test_edge_age_changes_the_output_and_future_query_is_clamped():
    x_src, x_dst, ei, t = _graph()
    conv = TimeAttentionConv((8, 6), 10).eval()
    a = conv((x_src, x_dst), ei, edge_time=t, query_time=10_000)
    b = conv((x_src, x_dst), ei, edge_time=t, query_time=500_000)
    assert not torch.allclose(a, b)
    # an edge newer than the query is treated as age 0, i.e. like query_time == edge time
    c = conv((x_src, x_dst), ei, edge_time=torch.zeros(5, dtype=torch.int64), query_time=0)
    d = conv((x_src, x_dst), ei, edge_time=torch.full((5,), 50, dtype=torch.int64), query_time=0)
    assert torch.allclose(c, d)


def test_node_without_incoming_edges_gets_root_term_only():
    x_src, x_dst, ei, t = _graph()
    conv = TimeAttentionConv((8, 6), 10)
    out = conv((x_src, x_dst), ei[:, :2], edge_time=t[:2])
    # no messages: the aggregated sum is 0, so only W_o's bias and the root term remain
    assert torch.allclose(out[2], conv.lin_out.bias + conv.lin_root(x_dst[2]), atol=1e-6)


def test_reset_parameters_and_repr():
    conv = TimeAttentionConv((8, 6), 10, heads=2, time_dim=4)
    before = [p.clone() for p in conv.parameters()]
    with torch.no_grad():
        for p in conv.parameters():
            p.add_(1.0)
    conv.reset_parameters()
    om = conv.time_enc.omega
    assert torch.allclose(om, 10.0 ** -torch.linspace(0, 4, 4))
    assert any(not torch.equal(a, b) for a, b in zip(before, conv.parameters()))  # linear layers re-drawn
    assert torch.count_nonzero(conv.time_enc.bias) == 0
    assert repr(conv) == "TimeAttentionConv((8, 6), 10, heads=2, time_dim=4, edge_dim=None)"


def test_gradients_reach_every_parameter():
    x_src, x_dst, ei, t = _graph()
    conv = TimeAttentionConv((8, 6), 10, edge_dim=2)
    conv((x_src, x_dst), ei, edge_time=t, query_time=20_000, edge_attr=torch.randn(5, 2)).sum().backward()
    for name, p in conv.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
