"""The recurrent-cell adapters: one call signature for our GraphGRUCell and torch-geometric-temporal's cells."""
from __future__ import annotations

import pytest
import torch

from stgnn.layers.temporal_cells import TEMPORAL_CELLS, make_temporal_cell


def _snapshots(n=12, steps=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        ei = torch.randint(0, n, (2, 30), generator=g)
        out.append((ei, torch.rand(30, generator=g) + 0.5))
    return out


@pytest.mark.parametrize("kind", TEMPORAL_CELLS)
def test_cell_runs_over_snapshots_and_learns(kind):
    torch.manual_seed(0)
    cell = make_temporal_cell(kind, 8)
    x = torch.randn(12, 8)
    h = None
    cell.reset_state()
    for ei, w in _snapshots():
        h = cell(x, ei, w, h)
        assert h.shape == (12, 8) and torch.isfinite(h).all()
    h.square().sum().backward()
    grads = [p.grad for p in cell.parameters() if p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)
    assert kind in repr(cell)


@pytest.mark.parametrize("kind", TEMPORAL_CELLS)
def test_reset_state_makes_sequences_independent(kind):
    torch.manual_seed(0)
    cell = make_temporal_cell(kind, 8)
    x = torch.randn(12, 8)

    def run():
        cell.reset_state()
        h = None
        for ei, w in _snapshots():
            h = cell(x, ei, w, h)
        return h.detach()

    a, b = run(), run()
    torch.testing.assert_close(a, b)  # EvolveGCNO would keep evolving its weights without the reset
    cell.reset_parameters()
    assert not torch.allclose(run(), a)


def test_the_order_of_snapshots_matters():
    torch.manual_seed(0)
    cell = make_temporal_cell("graph_gru", 8, conv="sage")
    x = torch.randn(12, 8)
    snaps = _snapshots()
    h1 = h2 = None
    for ei, w in snaps:
        h1 = cell(x, ei, w, h1)
    for ei, w in reversed(snaps):
        h2 = cell(x, ei, w, h2)
    assert not torch.allclose(h1, h2)


def test_unknown_cell_names_the_choices():
    with pytest.raises(ValueError, match="graph_gru"):
        make_temporal_cell("lstm", 8)
