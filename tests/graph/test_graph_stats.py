"""graph_stats on a hand-made HeteroData (hand-checked numbers) and the POI map PNG."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from stgnn.graph.stats import format_stats, graph_stats, plot_pois


def small_graph() -> HeteroData:
    g = HeteroData()
    g["poi"].num_nodes = 5
    g["user"].num_nodes = 2
    # Transitions: 0->1 (x4), 1->0 (x1), 1->2 (x2), 2->2 (x3, self-loop); POIs 3, 4 isolated.
    g["poi", "next", "poi"].edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 2]])
    g["poi", "next", "poi"].count = torch.tensor([4, 1, 2, 3])
    # near: 0-1, 3-4 (both directions) -> components {0,1}, {2}, {3,4}
    g["poi", "near", "poi"].edge_index = torch.tensor([[1, 0, 4, 3], [0, 1, 3, 4]])
    g["user", "visits", "poi"].edge_index = torch.tensor([[0, 0, 0, 1], [0, 1, 2, 2]])
    return g


def test_counts_degrees_components_and_transitions():
    s = graph_stats(small_graph(), top=2, poi_names=["a", "b", "c", "d", "e"])
    assert s["nodes"] == {"poi": 5, "user": 2}
    assert s["edges"] == {"poi__next__poi": 4, "poi__near__poi": 4, "user__visits__poi": 4}
    # visits: out-degree of users [3, 1]; in-degree of POIs [1, 1, 2, 0, 0]
    v = s["degree"]["user__visits__poi"]
    assert v["out"] == {"min": 1, "median": 2.0, "mean": 2.0, "p90": pytest.approx(2.8), "max": 3}
    assert v["in"]["min"] == 0 and v["in"]["max"] == 2 and v["in"]["mean"] == pytest.approx(0.8)
    t = s["transitions"]
    assert (t["total"], t["distinct_pairs"], t["self_loop_pairs"]) == (10, 4, 1)
    assert t["self_loop_share"] == pytest.approx(0.3)
    assert t["reciprocity"] == pytest.approx(2 / 3)  # 0->1 and 1->0 of the 3 non-loop edges
    assert (t["num_components"], t["largest"], t["isolated"]) == (3, 3, 2)
    assert (t["num_strong_components"], t["largest_strong"]) == (4, 2)  # {0,1}, {2}, {3}, {4}
    assert t["top"] == [{"src": "a", "dst": "b", "count": 4}, {"src": "c", "dst": "c", "count": 3}]
    assert s["near"] == {"num_components": 3, "largest": 2, "isolated": 1}
    text = format_stats(s)
    assert "poi__next__poi" in text and "a->b (4)" in text and "reciprocity 0.667" in text


def test_plot_pois_writes_png_atomically(synthetic_split, tmp_path):
    for color_by in ("category", "region"):
        path = tmp_path / "maps" / f"pois_{color_by}.png"
        plot_pois(synthetic_split, path, color_by=color_by, dpi=40)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2_000
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["pois_category.png", "pois_region.png"]
    with pytest.raises(ValueError, match="color_by"):
        plot_pois(synthetic_split, tmp_path / "x.png", color_by="user")


def test_stats_of_a_built_graph_agree_with_its_tensors(synthetic_split):
    from stgnn.graph.hetero import NEXT, build_hetero_graph

    g = build_hetero_graph(synthetic_split, knn_k=4)
    s = graph_stats(g)
    assert s["transitions"]["total"] == int(g[NEXT].count.sum())
    assert s["degree"]["poi__near__poi"]["in"]["min"] == 4 == s["degree"]["poi__near__poi"]["in"]["max"]
    loops = int((g[NEXT].edge_index[0] == g[NEXT].edge_index[1]).sum())
    assert s["transitions"]["self_loop_pairs"] == loops
    assert np.isclose(s["degree"]["poi__next__poi"]["out"]["mean"], g[NEXT].num_edges / g["poi"].num_nodes)
