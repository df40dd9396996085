"""make_snapshots windows and the torch-geometric-temporal signal (GConvGRU runs over it)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stgnn.graph.hetero import NEXT, VISITS, build_hetero_graph
from stgnn.graph.snapshots import DAY_S, make_snapshots, snapshot_ends, to_temporal_signal


def train_ts(split) -> np.ndarray:
    return split.ts[split.part == 0]


def test_cumulative_snapshots_use_only_checkins_before_their_end(synthetic_split):
    snaps = make_snapshots(synthetic_split, window_days=7, stride_days=7, mode="cumulative", knn_k=5)
    ts = train_ts(synthetic_split)
    ends = [s.snapshot_end for s in snaps]
    assert ends == snapshot_ends(synthetic_split, 7, 7)
    assert ends[0] == ts.min() + 7 * DAY_S and np.all(np.diff(ends) == 7 * DAY_S)
    assert ends[-2] <= ts.max() < ends[-1]  # the last snapshot holds every training check-in
    prev = -1
    for s in snaps:
        n = int((ts < s.snapshot_end).sum())
        assert s.graph_info["num_checkins"] == n and n > prev
        assert int(s["poi"].count.sum()) == n
        assert (s[VISITS].time < s.snapshot_end).all() and (s[NEXT].time < s.snapshot_end).all()
        prev = n
    # A snapshot is exactly the graph built with until_ts = its end.
    ref = build_hetero_graph(synthetic_split, until_ts=snaps[2].snapshot_end, knn_k=5)
    for et in (VISITS, NEXT):
        assert torch.equal(ref[et].edge_index, snaps[2][et].edge_index)
        assert torch.equal(ref[et].edge_attr, snaps[2][et].edge_attr)
    assert torch.equal(ref["poi"].x, snaps[2]["poi"].x)


def test_sliding_snapshots_hold_only_their_window(synthetic_split):
    snaps = make_snapshots(synthetic_split, window_days=7, stride_days=3.5, mode="sliding", knn_k=5)
    ts = train_ts(synthetic_split)
    for s in snaps:
        assert s.snapshot_end - s.snapshot_start == 7 * DAY_S
        inside = (ts >= s.snapshot_start) & (ts < s.snapshot_end)
        assert int(s["poi"].count.sum()) == int(inside.sum())
        assert (s[VISITS].time >= s.snapshot_start).all() and (s[VISITS].time < s.snapshot_end).all()
    # Windows overlap by half: consecutive ends 3.5 days apart.
    assert snaps[1].snapshot_end - snaps[0].snapshot_end == int(3.5 * DAY_S)
    with pytest.raises(ValueError, match="mode"):
        make_snapshots(synthetic_split, 7, 7, mode="tumbling")


def test_temporal_signal_runs_through_recurrent_cells(synthetic_split):
    from torch_geometric_temporal.nn.recurrent import TGCN, EvolveGCNO, GConvGRU

    snaps = make_snapshots(synthetic_split, window_days=14, stride_days=14, mode="sliding", knn_k=5)
    signal = to_temporal_signal(snaps, NEXT)
    assert signal.snapshot_count == len(snaps) - 1 >= 2
    P = synthetic_split.num_pois
    first = signal[0]
    assert torch.equal(first.edge_index, snaps[0][NEXT].edge_index)
    assert torch.allclose(first.edge_attr, torch.log1p(snaps[0][NEXT].count.float()))
    assert torch.allclose(first.y, snaps[1]["poi"].popularity.view(-1))  # next window's popularity
    assert first.x.shape == snaps[0]["poi"].x.shape

    torch.manual_seed(0)
    F = first.x.size(1)
    cell, tgcn, evolve = GConvGRU(F, 8, K=2), TGCN(F, 8), EvolveGCNO(F)
    h = h2 = None
    for step in list(signal)[:2]:
        h = cell(step.x, step.edge_index, step.edge_attr, h)
        h2 = tgcn(step.x, step.edge_index, step.edge_attr, h2)
        h3 = evolve(step.x, step.edge_index, step.edge_attr)
    assert h.shape == (P, 8) and h2.shape == (P, 8) and h3.shape == (P, F)
    assert torch.isfinite(h).all() and torch.isfinite(h2).all() and torch.isfinite(h3).all()
    loss = ((h.mean(1) - step.y) ** 2).mean()
    loss.backward()  # gradients flow through the snapshots
    assert all(p.grad is not None for p in cell.parameters())

    pop = to_temporal_signal(snaps, target="popularity", weight="count")
    assert pop.snapshot_count == len(snaps)
    assert torch.equal(pop[0].edge_attr, snaps[0][NEXT].count.float())


def test_transition_snapshots_match_the_graph_builder(synthetic_split):
    from stgnn.graph.hetero import NEXT, build_hetero_graph
    from stgnn.graph.snapshots import DAY_S, snapshot_ends, transition_snapshots

    snaps = transition_snapshots(synthetic_split, window_days=7.0, count=3)
    ends = snapshot_ends(synthetic_split, 7.0, 7.0)[-3:]
    assert len(snaps) == 3
    for (ei, count), end in zip(snaps, ends):
        g = build_hetero_graph(synthetic_split, until_ts=end, since_ts=end - 7 * DAY_S, parts=(0,))
        assert torch.equal(ei, g[NEXT].edge_index) and torch.equal(count, g[NEXT].count)
        assert ei.shape[1] > 0
    # only training check-ins: the last window ends after the last one of them
    assert ends[-1] > synthetic_split.ts[synthetic_split.part == 0].max()
    with pytest.raises(ValueError, match="count"):
        transition_snapshots(synthetic_split, count=0)
