"""TemporalNeighborSampler: strictness, exact neighborhoods, uniformity, last-k, hetero, PyG loaders."""
from __future__ import annotations

from collections import defaultdict

import pytest
import torch
from scipy import stats
from torch_geometric.data import Data, HeteroData
from torch_geometric.loader import LinkLoader, NodeLoader
from torch_geometric.sampler import NodeSamplerInput

from stgnn.graph.sampling import TemporalNeighborSampler


def random_graph(n: int = 40, e: int = 600, t_max: int = 20, seed: int = 0) -> Data:
    """Many repeated times (``t_max`` distinct values) so edges tie with seed times."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    return Data(edge_index=ei, time=torch.randint(0, t_max, (e,), generator=g), num_nodes=n,
                x=torch.arange(n, dtype=torch.float32).view(-1, 1))


def allowed_in_edges(data: Data, node: int, t: int) -> set[int]:
    """Brute force: ids of in-edges of ``node`` strictly older than ``t``."""
    ei, time = data.edge_index, data.time
    return set(torch.nonzero((ei[1] == node) & (time < t)).view(-1).tolist())


@pytest.mark.parametrize("float_time", [False, True])  # int: offset codes; float: rank codes
def test_never_samples_edges_as_new_as_the_seed(float_time):
    data = random_graph()
    seeds = torch.arange(40)
    times = torch.randint(0, 20, (40,), generator=torch.Generator().manual_seed(1))
    if float_time:
        data.time, times = data.time.double() / 4, times.double() / 4
    tied = sum(int(((data.edge_index[1] == s) & (data.time == t)).sum()) for s, t in zip(seeds, times))
    assert tied > 0  # some in-edges share their seed's time: they must be excluded
    for strategy in ("uniform", "last"):
        sampler = TemporalNeighborSampler(data, [4, 3], strategy=strategy, seed=0)
        loader = NodeLoader(data, node_sampler=sampler, input_nodes=seeds, input_time=times, batch_size=8)
        n_edges = 0
        for batch in loader:
            seed_time_of_edge = batch.seed_time[batch.batch[batch.edge_index[1]]]
            assert (batch.time < seed_time_of_edge).all()
            assert torch.equal(batch.time, data.time[batch.e_id])
            n_edges += batch.edge_index.size(1)
        assert n_edges > 100


def test_full_fanout_returns_exactly_the_allowed_neighborhood():
    data = random_graph(n=30, e=300, t_max=10)
    seeds, times = torch.tensor([0, 5, 5, 17]), torch.tensor([4, 4, 9, 10])
    sampler = TemporalNeighborSampler(data, [50, 50], seed=0)  # fan-out > any degree
    out = sampler.sample_from_nodes(NodeSamplerInput(None, seeds, times))
    got = defaultdict(set)  # (batch, hop-1 dst global) -> edge ids
    for r, c, e in zip(out.row.tolist(), out.col.tolist(), out.edge.tolist()):
        got[(int(out.batch[c]), int(out.node[c]))].add(e)
    for b, (s, t) in enumerate(zip(seeds.tolist(), times.tolist())):
        hop1 = allowed_in_edges(data, s, t)
        assert got[(b, s)] == hop1
        for e in hop1:  # 2nd hop of every 1-hop neighbor, with the seed's time
            nb = int(data.edge_index[0, e])
            if nb != s:
                assert got[(b, nb)] == allowed_in_edges(data, nb, t)
    # Per-subgraph dedup: each (batch, node) appears once; the seeds come first in order.
    pairs = list(zip(out.batch.tolist(), out.node.tolist()))
    assert len(pairs) == len(set(pairs))
    assert out.node[:4].tolist() == seeds.tolist() and out.batch[:4].tolist() == [0, 1, 2, 3]
    assert sum(out.num_sampled_nodes) == out.node.numel() and len(out.num_sampled_nodes) == 3


def test_uniform_is_uniform_over_allowed_neighbors():
    # Node 0 has 10 in-edges at t=0..9 and 5 newer ones (t=10..14) that a seed at t=10 must not see.
    src = torch.arange(1, 16)
    data = Data(edge_index=torch.stack([src, torch.zeros(15, dtype=torch.long)]), time=torch.arange(15),
                num_nodes=16)
    draws, k = 10_000, 3
    sampler = TemporalNeighborSampler(data, [k], seed=123)
    out = sampler.sample_from_nodes(NodeSamplerInput(None, torch.zeros(draws, dtype=torch.long),
                                                     torch.full((draws,), 10)))
    e = out.edge.view(-1)
    assert e.numel() == draws * k and int(e.max()) <= 9  # all draws among the 10 allowed edges
    # Edges of one subgraph: without replacement, so k distinct per draw.
    b = out.batch[out.col]
    assert torch.equal(torch.bincount(b, minlength=draws), torch.full((draws,), k))
    eb = torch.stack([b, e], 1).unique(dim=0)
    assert eb.size(0) == draws * k
    counts = torch.bincount(e, minlength=10).numpy()
    chi2, p = stats.chisquare(counts)  # expected 3,000 each
    assert p > 1e-3, (counts, chi2)


def test_fewer_allowed_than_fanout_takes_all():
    data = Data(edge_index=torch.tensor([[1, 2, 3], [0, 0, 0]]), time=torch.tensor([1, 2, 3]), num_nodes=4)
    out = TemporalNeighborSampler(data, [5], seed=0).sample_from_nodes(
        NodeSamplerInput(None, torch.tensor([0]), torch.tensor([3])))
    assert sorted(out.edge.tolist()) == [0, 1]


def test_last_k_returns_most_recent_allowed():
    times = torch.tensor([5, 1, 9, 3, 7, 8, 2])  # in-edges of node 0 from nodes 1..7
    data = Data(edge_index=torch.stack([torch.arange(1, 8), torch.zeros(7, dtype=torch.long)]), time=times,
                num_nodes=8)
    sampler = TemporalNeighborSampler(data, [3], strategy="last")
    out = sampler.sample_from_nodes(NodeSamplerInput(None, torch.tensor([0, 0]), torch.tensor([8, 4])))
    by_batch = defaultdict(set)
    for c, e in zip(out.col.tolist(), out.edge.tolist()):
        by_batch[int(out.batch[c])].add(int(times[e]))
    assert by_batch[0] == {7, 5, 3}  # t < 8: the 3 most recent of {5,1,3,7,2}
    assert by_batch[1] == {3, 2, 1}  # t < 4


def hetero_graph() -> HeteroData:
    g = HeteroData()
    g["user"].x = torch.arange(3, dtype=torch.float32).view(-1, 1)
    g["poi"].x = torch.arange(4, dtype=torch.float32).view(-1, 1)
    v = torch.tensor([[0, 0, 1, 1, 2, 2], [0, 1, 1, 2, 2, 3]])
    vt = torch.tensor([10, 20, 30, 40, 50, 60])
    g["user", "visits", "poi"].edge_index, g["user", "visits", "poi"].time = v, vt
    g["poi", "rev_visits", "user"].edge_index, g["poi", "rev_visits", "user"].time = v.flip(0), vt
    g["poi", "near", "poi"].edge_index = torch.tensor([[1, 0, 3, 2], [0, 1, 2, 3]])  # static
    return g


def test_hetero_two_hops_time_and_static_edges():
    g = hetero_graph()
    sampler = TemporalNeighborSampler(g, [10, 10], seed=0)
    out = sampler.sample_from_nodes(NodeSamplerInput(None, torch.tensor([1]), torch.tensor([45]), "user"))
    rv = ("poi", "rev_visits", "user")
    # Hop 1: user 1's visits older than 45 -> pois 1 (t=30) and 2 (t=40).
    assert sorted(out.node["poi"][out.row[rv]].tolist()) == [1, 2]
    # Hop 2: near (static) from pois 1, 2 -> pois 0, 3; visits into pois 1, 2 older than 45 ->
    # users 0 (t=20 into poi 1) and 1 (t=30, t=40): the seed user itself, already present.
    near = ("poi", "near", "poi")
    assert sorted(zip(out.node["poi"][out.row[near]].tolist(), out.node["poi"][out.col[near]].tolist())) == \
        [(0, 1), (3, 2)]
    vis = ("user", "visits", "poi")
    assert sorted(g[vis].time[out.edge[vis]].tolist()) == [20, 30, 40]
    assert sorted(out.node["user"].tolist()) == [0, 1]
    assert out.num_sampled_nodes["user"] == [1, 0, 1] and out.num_sampled_nodes["poi"] == [0, 2, 2]
    assert out.num_sampled_edges[rv] == [2, 0] and out.num_sampled_edges[near] == [0, 2]


def test_node_loader_hetero_and_dict_fanout():
    g = hetero_graph()
    fan = {("poi", "rev_visits", "user"): [2, 0], ("poi", "near", "poi"): [0, 1]}
    sampler = TemporalNeighborSampler(g, fan, seed=0)
    loader = NodeLoader(g, node_sampler=sampler, input_nodes=("user", torch.tensor([0, 1, 2])),
                        input_time=torch.tensor([15, 100, 55]), batch_size=3)
    batch = next(iter(loader))
    assert batch["user"].batch_size == 3 and batch["user"].n_id[:3].tolist() == [0, 1, 2]
    rv = batch["poi", "rev_visits", "user"]
    seed_t = batch["user"].seed_time[batch["user"].batch[rv.edge_index[1]]]
    assert (rv.time < seed_t).all() and rv.edge_index.size(1) == 1 + 2 + 1  # user 2 at 55: only t=50
    assert batch["user", "visits", "poi"].edge_index.size(1) == 0  # not in the fan-out dict
    assert batch["poi", "near", "poi"].edge_index.size(1) == 4  # one per hop-1 poi


def test_link_loader_with_negatives_respects_label_time():
    data = random_graph(n=30, e=400, t_max=30, seed=3)
    sampler = TemporalNeighborSampler(data, [5, 5], seed=0)
    label_index, label_time = data.edge_index[:, :64], data.time[:64]
    loader = LinkLoader(data, link_sampler=sampler, edge_label_index=label_index, edge_label_time=label_time,
                        neg_sampling="binary", batch_size=16)
    n = 0
    for batch in loader:
        assert batch.edge_label_index.size(1) == 32 and batch.edge_label.sum() == 16
        t_of_edge = batch.edge_label_time[batch.batch[batch.edge_index[1]]]
        assert (batch.time < t_of_edge).all()
        # The seed link itself is never in its own subgraph (its time is not older than itself).
        n += batch.edge_index.size(1)
    assert n > 0


def test_link_loader_hetero_triplet():
    g = hetero_graph()
    vis = ("user", "visits", "poi")
    sampler = TemporalNeighborSampler(g, [3, 3], seed=0)
    loader = LinkLoader(g, link_sampler=sampler, edge_label_index=(vis, g[vis].edge_index),
                        edge_label_time=g[vis].time, neg_sampling=dict(mode="triplet", amount=2), batch_size=6)
    batch = next(iter(loader))
    assert batch["user"].src_index.tolist() == list(range(6)) and batch["poi"].dst_neg_index.shape == (6, 2)
    assert batch["poi"].n_id[batch["poi"].dst_pos_index].tolist() == g[vis].edge_index[1].tolist()
    for et in [vis, ("poi", "rev_visits", "user")]:
        store, dst = batch[et], et[2]
        t_seed = batch[dst].seed_time[batch[dst].batch[store.edge_index[1]]]
        assert (store.time < t_seed).all()  # seed_time per edge label, negatives included
    assert batch[vis].edge_index.size(1) + batch["poi", "rev_visits", "user"].edge_index.size(1) > 0


def test_static_graph_non_disjoint_dedups_nodes():
    data = Data(edge_index=torch.tensor([[1, 2, 2, 3], [0, 0, 1, 1]]), num_nodes=4)
    sampler = TemporalNeighborSampler(data, [-1], time_attr=None)
    assert not sampler.disjoint
    out = sampler.sample_from_nodes(NodeSamplerInput(None, torch.tensor([0, 1])))
    assert out.batch is None and sorted(out.node.tolist()) == [0, 1, 2, 3]
    assert out.node[:2].tolist() == [0, 1] and out.edge.numel() == 4
    with pytest.raises(ValueError, match="repeat"):
        sampler.sample_from_nodes(NodeSamplerInput(None, torch.tensor([0, 0])))


def test_reproducible_with_seed_and_rejects_bad_config():
    data = random_graph()
    inp = NodeSamplerInput(None, torch.arange(10), torch.full((10,), 15))
    a = TemporalNeighborSampler(data, [3, 2], seed=7).sample_from_nodes(inp)
    b = TemporalNeighborSampler(data, [3, 2], seed=7).sample_from_nodes(inp)
    assert torch.equal(a.edge, b.edge) and torch.equal(a.node, b.node)
    with pytest.raises(ValueError, match="strategy"):
        TemporalNeighborSampler(data, [3], strategy="recent")
    with pytest.raises(ValueError, match="one entry per hop"):
        TemporalNeighborSampler(hetero_graph(), {("poi", "near", "poi"): [1], ("user", "visits", "poi"): [1, 2]})


def test_pyg_lib_path_delegates_with_strict_times(monkeypatch):
    """pyg-lib itself is not installable here; this checks only our glue around it."""
    import torch_geometric.sampler
    import torch_geometric.typing

    seen = {}

    class FakeNative:
        edge_permutation = torch.tensor([1, 0])

        def __init__(self, data, num_neighbors, **kw):
            seen["init"] = (num_neighbors, kw)

        def sample_from_nodes(self, inputs):
            seen["time"] = inputs.time
            return "native"

    monkeypatch.setattr(torch_geometric.typing, "WITH_PYG_LIB", True)
    monkeypatch.setattr(torch_geometric.sampler, "NeighborSampler", FakeNative)
    g = hetero_graph()
    sampler = TemporalNeighborSampler(g, {("poi", "rev_visits", "user"): [3, 2]}, strategy="last")
    nn, kw = seen["init"]
    assert nn[("poi", "rev_visits", "user")] == [3, 2] and nn[("poi", "near", "poi")] == [0, 0]
    assert kw == {"time_attr": "time", "temporal_strategy": "last", "disjoint": True}
    assert sampler.sample_from_nodes(NodeSamplerInput(None, torch.tensor([0]), torch.tensor([50]), "user")) == "native"
    assert seen["time"].tolist() == [49]  # pyg-lib keeps edge_time <= seed_time: shift to make it strict
    assert torch.equal(sampler.edge_permutation, FakeNative.edge_permutation)


def test_sample_seeds_of_two_types_keeps_each_types_seeds_first():
    g = hetero_graph()
    sampler = TemporalNeighborSampler(g, [10], time_attr=None, use_pyg_lib=False)
    out = sampler.sample_seeds({"user": torch.tensor([2, 0]), "poi": torch.tensor([3])})
    assert out.node["user"][:2].tolist() == [2, 0] and out.node["poi"][:1].tolist() == [3]
    rv, near = ("poi", "rev_visits", "user"), ("poi", "near", "poi")
    # static draws (time_attr=None): every in-neighbour of every seed, nothing beyond one hop
    assert sorted(out.node["poi"][out.row[rv]].tolist()) == [0, 1, 2, 3]
    assert out.node["poi"][out.row[near]].tolist() == [2] and out.node["poi"][out.col[near]].tolist() == [3]
    with pytest.raises(ValueError, match="heterogeneous"):
        TemporalNeighborSampler(Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2), [2],
                                use_pyg_lib=False).sample_seeds({"x": torch.tensor([0])})
