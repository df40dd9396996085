"""build_hetero_graph on a hand-made Split: exact edges, counts, features, and the leakage rule."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stgnn.data.split import Split
from stgnn.graph.hetero import IN_REGION, IS_A, NEAR, NEXT, VISITS, build_hetero_graph

DAY = 86_400
# POIs near Manhattan; categories 0,0,1,1.
LAT = np.array([40.75, 40.76, 40.70, 40.80])
LON = np.array([-73.99, -73.98, -74.01, -73.95])


def hand_split(extra: list[tuple[int, int, int, int]] | None = None) -> Split:
    """Two users, four POIs; trajectories (user, [(poi, ts, part), ...]).

    traj 0 (u0): p0@100 p1@200 p0@400 p1@1000      all train
    traj 1 (u0): p0@D  p1@D+300 p2@D+400           all train (D = 2 days)
    traj 2 (u1): p2@300 p3@360                     all train
    traj 3 (u1): p3@30D p0@30D+60                  val (part 1): the future
    ``extra``: a further trajectory of user 1 appended as (poi, ts, part, _) rows.
    """
    D = 2 * DAY
    trajs = [
        (0, [(0, 100, 0), (1, 200, 0), (0, 400, 0), (1, 1000, 0)]),
        (0, [(0, D, 0), (1, D + 300, 0), (2, D + 400, 0)]),
        (1, [(2, 300, 0), (3, 360, 0)]),
        (1, [(3, 30 * D, 1), (0, 30 * D + 60, 1)]),
    ]
    if extra:
        trajs.append((1, [(p, t, part) for p, t, part, _ in extra]))
    user, poi, ts, part, traj, traj_ptr, traj_user = [], [], [], [], [], [0], []
    for t_id, (u, rows) in enumerate(trajs):
        for p, t, pa in rows:
            user.append(u), poi.append(p), ts.append(t), part.append(pa), traj.append(t_id)
        traj_ptr.append(len(poi))
        traj_user.append(u)
    user = np.array(user, dtype=np.int64)
    poi_category = np.array([0, 0, 1, 1], dtype=np.int64)
    return Split(
        name="hand", protocol={"hand": True},
        user_ids=np.array(["a", "b"], dtype=object), poi_ids=np.array(["p0", "p1", "p2", "p3"], dtype=object),
        category_names=np.array(["Cafe", "Park"], dtype=object), poi_category=poi_category,
        poi_lat=LAT.copy(), poi_lon=LON.copy(), poi_text=np.array([""] * 4, dtype=object),
        user=user, poi=np.array(poi, dtype=np.int64), category=poi_category[np.array(poi)],
        ts=np.array(ts, dtype=np.int64), tz_offset_min=np.zeros(len(poi), dtype=np.int32),
        traj=np.array(traj, dtype=np.int64), part=np.array(part, dtype=np.int8),
        traj_ptr=np.array(traj_ptr, dtype=np.int64), traj_user=np.array(traj_user, dtype=np.int64),
        user_ptr=np.searchsorted(user, np.arange(3)).astype(np.int64),
        samples={"train": np.array([1, 2, 3]), "val": np.array([len(poi) - 1]), "test": np.zeros(0, dtype=np.int64)},
    )


def edges(data, et) -> dict[tuple[int, int], int]:
    """``{(src, dst): edge position}``."""
    ei = data[et].edge_index
    return {(int(a), int(b)): i for i, (a, b) in enumerate(ei.t().tolist())}


def haversine_km(a: int, b: int) -> float:
    p1, p2 = math.radians(LAT[a]), math.radians(LAT[b])
    dp, dl = p2 - p1, math.radians(LON[b] - LON[a])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def test_visits_counts_and_last_time():
    g = build_hetero_graph(hand_split(), knn_k=2)
    D = 2 * DAY
    e = edges(g, VISITS)
    assert set(e) == {(0, 0), (0, 1), (0, 2), (1, 2), (1, 3)}
    want = {(0, 0): (3, D), (0, 1): (3, D + 300), (0, 2): (1, D + 400), (1, 2): (1, 300), (1, 3): (1, 360)}
    for pair, (count, last) in want.items():
        i = e[pair]
        assert g[VISITS].count[i] == count and g[VISITS].edge_attr[i, 0] == count
        assert g[VISITS].time[i] == last


def test_transitions_counts_gaps_and_time():
    g = build_hetero_graph(hand_split(), knn_k=2)
    e = edges(g, NEXT)
    assert set(e) == {(0, 1), (1, 0), (1, 2), (2, 3)}
    i = e[(0, 1)]  # gaps 100 s, 600 s, 300 s
    lg = np.log1p(np.array([100, 600, 300]) / 60.0)
    assert g[NEXT].count[i] == 3
    assert g[NEXT].time[i] == 2 * DAY + 300
    assert g[NEXT].edge_attr[i, 0] == 3
    assert g[NEXT].edge_attr[i, 1].item() == pytest.approx(lg.mean(), rel=1e-6)
    assert g[NEXT].edge_attr[i, 2].item() == pytest.approx(math.log1p(5.0), rel=1e-6)  # median: 300 s
    j = e[(2, 3)]
    assert (g[NEXT].count[j], g[NEXT].time[j]) == (1, 360)
    assert g[NEXT].edge_attr[j, 1].item() == pytest.approx(math.log1p(1.0), rel=1e-6)


def test_static_edges_near_region_category():
    g = build_hetero_graph(hand_split(), knn_k=2, region_cell_km=0.1)
    e = edges(g, NEAR)
    assert len(e) == 8
    for p in range(4):  # each POI receives its 2 nearest others (brute force)
        d = sorted((haversine_km(p, q), q) for q in range(4) if q != p)
        assert {s for (s, t) in e if t == p} == {d[0][1], d[1][1]}
        for dist, q in d[:2]:
            assert g[NEAR].edge_attr[e[(q, p)], 0].item() == pytest.approx(dist, rel=1e-4)
    assert edges(g, IS_A).keys() == {(0, 0), (1, 0), (2, 1), (3, 1)}
    assert g["region"].num_nodes == 4  # 100 m cells: every POI alone
    assert sorted(g[IN_REGION].edge_index[0].tolist()) == [0, 1, 2, 3]
    one = build_hetero_graph(hand_split(), knn_k=2, region_cell_km=100.0)
    assert one["region"].num_nodes == 1 and one[IN_REGION].edge_index[1].tolist() == [0, 0, 0, 0]


def test_reverse_edges_mirror_forward():
    g = build_hetero_graph(hand_split(), knn_k=2)
    for (s, r, d) in [VISITS, NEXT, NEAR, IN_REGION, IS_A]:
        rev = g[d, f"rev_{r}", s]
        assert torch.equal(rev.edge_index, g[s, r, d].edge_index.flip(0))
        for key in ("time", "edge_attr", "count"):
            if key in g[s, r, d]:
                assert torch.equal(rev[key], g[s, r, d][key])
    assert len(g.edge_types) == 10
    assert g.validate(raise_on_error=True)


def test_node_features():
    emb = torch.arange(12, dtype=torch.float32).view(4, 3)
    g = build_hetero_graph(hand_split(), knn_k=2, poi_text_emb=emb)
    assert g["poi"].count.tolist() == [3, 3, 2, 1]
    assert torch.allclose(g["poi"].popularity.view(-1), torch.log1p(torch.tensor([3.0, 3.0, 2.0, 1.0])))
    assert torch.equal(g["poi"].x[:, :3], emb)  # text embedding first
    assert torch.equal(g["poi"].x[:, -1:], g["poi"].popularity)  # popularity last
    assert g["poi"].x.shape[1] == 3 + g["poi"].coord.shape[1] + 1
    assert torch.allclose(g["user"].x.view(-1), torch.log1p(torch.tensor([7.0, 2.0])))
    assert torch.equal(g["category"].x, torch.eye(2))
    cat_emb = torch.ones(2, 5)
    assert torch.equal(build_hetero_graph(hand_split(), knn_k=2, category_text_emb=cat_emb)["category"].x, cat_emb)
    with pytest.raises(ValueError, match="poi_text_emb has 3 rows"):
        build_hetero_graph(hand_split(), poi_text_emb=torch.zeros(3, 2))


def _assert_same_graph(a, b) -> None:
    assert set(a.node_types) == set(b.node_types) and set(a.edge_types) == set(b.edge_types)
    for store_a in a.node_stores + a.edge_stores:
        key = store_a._key
        store_b = b[key]
        assert set(store_a.keys()) == set(store_b.keys()), key
        for k, v in store_a.items():
            assert torch.equal(v, store_b[k]), (key, k)


def test_future_checkins_are_invisible():
    """Val check-ins (part 1) and check-ins at/after until_ts change no edge, feature or count."""
    base = build_hetero_graph(hand_split(), knn_k=2)
    # Plant a different future: new user-POI pairs, new transitions, a busier POI 3.
    fut = hand_split(extra=[(3, 40 * 2 * DAY, 2, 0), (1, 40 * 2 * DAY + 60, 2, 0), (3, 40 * 2 * DAY + 90, 1, 0)])
    _assert_same_graph(base, build_hetero_graph(fut, knn_k=2))
    # The planted rows do count when their parts are asked for (so the test above can fail).
    all_parts = build_hetero_graph(fut, knn_k=2, parts=(0, 1, 2))
    assert (1, 1) in edges(all_parts, VISITS) and (3, 1) in edges(all_parts, NEXT)

    # until_ts: only ts < 360 counts -> check-ins p0@100, p1@200 (u0) and p2@300 (u1).
    g = build_hetero_graph(hand_split(), knn_k=2, until_ts=360)
    assert set(edges(g, VISITS)) == {(0, 0), (0, 1), (1, 2)}
    assert set(edges(g, NEXT)) == {(0, 1)}
    assert g[NEXT].count.tolist() == [1] and g[NEXT].time.tolist() == [200]
    assert g["poi"].count.tolist() == [1, 1, 1, 0]
    assert (g[VISITS].time < 360).all()
    late = hand_split(extra=[(0, 360, 0, 0), (3, 500, 0, 0)])  # train rows at/after until_ts
    _assert_same_graph(g, build_hetero_graph(late, knn_k=2, until_ts=360))


def test_since_ts_window():
    g = build_hetero_graph(hand_split(), knn_k=2, since_ts=300, until_ts=2 * DAY + 301)
    # rows with 300 <= ts < 2D+301: p0@400 p1@1000 p0@D p1@D+300 (u0), p2@300 p3@360 (u1)
    assert g["poi"].count.tolist() == [2, 2, 1, 1]
    assert set(edges(g, NEXT)) == {(0, 1), (2, 3)}
    assert g[NEXT].count[edges(g, NEXT)[(0, 1)]] == 2


@pytest.mark.realdata
def test_nyc_graph_uses_training_checkins_only(nyc_filtered):
    from stgnn.data.protocol import ProtocolConfig, make_split
    from stgnn.data.sources.foursquare import load_tsmc2014

    split = make_split(load_tsmc2014(nyc_filtered), ProtocolConfig())
    g = build_hetero_graph(split)
    train = split.part == 0
    assert int(g["poi"].count.sum()) == int(train.sum()) == g.graph_info["num_checkins"]
    assert int(g[VISITS].count.sum()) == int(train.sum())
    # Every train sample is one transition from its predecessor (min_train_prefix = 1).
    assert int(g[NEXT].count.sum()) == len(split.samples["train"])
    cut = split.cuts["train_end"]
    assert int(g[VISITS].time.max()) < cut and int(g[NEXT].time.max()) < cut
    assert g[NEAR].edge_index.size(1) == 10 * split.num_pois
    assert g["region"].num_nodes > 100 and (g["poi"].region >= 0).all()
