"""The builder: training statistics by hand, exactly the parts asked for, leakage, save/load."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from fakes import FakeText

from stgnn.data.split import PARTS
from stgnn.inputs import InputSpec, ModelInputs, build_inputs, train_stats


def test_train_stats_by_hand(synthetic_split):
    s = synthetic_split
    st = train_stats(s)
    train = s.part == PARTS["train"]
    assert st.poi_count.tolist() == np.bincount(s.poi[train], minlength=s.num_pois).tolist()
    want: dict[tuple[int, int], int] = {}
    for j in range(1, s.num_checkins):
        if s.traj[j] == s.traj[j - 1] and train[j] and train[j - 1]:
            key = (int(s.poi[j - 1]), int(s.poi[j]))
            want[key] = want.get(key, 0) + 1
    got = {(int(a), int(b)): int(n) for a, b, n in zip(st.trans_src, st.trans_dst, st.trans_count)}
    assert got == want
    assert list(zip(st.trans_src.tolist(), st.trans_dst.tolist())) == sorted(want)   # sorted by (src, dst)
    pairs = {(int(u), int(p)) for u, p in zip(s.user[train], s.poi[train])}
    assert list(zip(st.visit_user.tolist(), st.visit_poi.tolist())) == sorted(pairs)
    spans = [np.ptp(s.ts[train & (s.traj == t)]) for t in np.unique(s.traj[train])]
    assert st.longest_trajectory_s == max(spans)


def _rewrite(split, parts):
    """The split with every check-in of ``parts`` moved to a random POI (the future, rewritten)."""
    rng = np.random.default_rng(0)
    poi = split.poi.copy()
    sel = np.isin(split.part, parts)
    poi[sel] = rng.integers(0, split.num_pois, int(sel.sum()))
    return dataclasses.replace(split, poi=poi, category=split.poi_category[poi])


def test_everything_built_comes_from_the_training_period(synthetic_split):
    spec = InputSpec(graph=True, snapshots=2)
    a = build_inputs(synthetic_split, spec)
    b = build_inputs(_rewrite(synthetic_split, (PARTS["val"], PARTS["test"])), spec)
    for f in dataclasses.fields(a.stats):
        va, vb = getattr(a.stats, f.name), getattr(b.stats, f.name)
        assert (torch.equal(va, vb) if isinstance(va, torch.Tensor) else va == vb), f.name
    for et in a.graph.edge_types:
        assert torch.equal(a.graph[et].edge_index, b.graph[et].edge_index), et
    for (ea, ca), (eb, cb) in zip(a.snapshots, b.snapshots):
        assert torch.equal(ea, eb) and torch.equal(ca, cb)


def test_only_what_is_asked_for_is_built(synthetic_split):
    bare = build_inputs(synthetic_split)
    assert bare.graph is None and bare.snapshots is None and bare.text is None
    assert (bare.num_users, bare.num_pois, bare.num_categories) == \
        (synthetic_split.num_users, synthetic_split.num_pois, synthetic_split.num_categories)
    assert bare.missing(InputSpec(graph=True, snapshots=2, text="x")) == \
        ["graph", "snapshots (2 x 7.0 days)", "text vectors (x, profile=True)"]
    fake = FakeText(dim=4)
    full = build_inputs(synthetic_split, InputSpec(graph=True, snapshots=2, text="fake"), text_encoder=fake)
    assert full.graph is not None and len(full.snapshots) == 2 and full.text.shape == (synthetic_split.num_pois, 4)
    assert fake.calls == 1 and full.missing(InputSpec(graph=True, snapshots=2, text="fake")) == []
    assert "graph=" in repr(full) and "text=(" in repr(full)


def test_save_and_load_round_trip(synthetic_split, tmp_path):
    inputs = build_inputs(synthetic_split, InputSpec(graph=True, snapshots=2, text="fake"), text_encoder=FakeText())
    inputs.save(tmp_path / "inputs.pt")
    back = ModelInputs.load(tmp_path / "inputs.pt")
    assert back.spec == inputs.spec and back.source == inputs.source
    assert back.poi_ids == [str(p) for p in synthetic_split.poi_ids] and back.user_ids == inputs.user_ids
    assert back.category_names == list(synthetic_split.category_names)
    torch.testing.assert_close(back.poi_lat, inputs.poi_lat, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(back.text, inputs.text) and back.stats.longest_trajectory_s == inputs.stats.longest_trajectory_s
    assert torch.equal(back.stats.trans_count, inputs.stats.trans_count)
    assert back.graph.metadata() == inputs.graph.metadata()
    for store, other in zip(inputs.graph.stores, back.graph.stores):
        for k, v in store.items():
            if isinstance(v, torch.Tensor):
                assert torch.equal(v, other[k]), k
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(inputs.snapshots, back.snapshots))
    with pytest.raises(ValueError, match="format"):
        ModelInputs.from_state({**inputs.to_state(), "format": 99})


def test_the_distance_table_is_built_once_and_is_the_one_a_model_would_compute(synthetic_split):
    from stgnn.features.space import dist_bucket_table
    from stgnn.registry import build_model, input_spec

    spec = input_spec("stgnn", graph="none")
    assert spec.dist_table_max_pois == 20_000 and input_spec("stgnn", space_enc="none").dist_table_max_pois == 0
    inputs = build_inputs(synthetic_split, spec)
    lat, lon = (torch.as_tensor(v).float() for v in (synthetic_split.poi_lat, synthetic_split.poi_lon))
    assert torch.equal(inputs.dist_table, dist_bucket_table(lat, lon))
    model = build_model("stgnn", inputs, dim=8, graph="none")
    assert model.poi_dist_bucket.data_ptr() == inputs.dist_table.data_ptr()   # shared, not recomputed
    assert build_inputs(synthetic_split, InputSpec(dist_table_max_pois=10)).dist_table is None  # too many POIs
