"""LightGCN: training-only bipartite graph, BPR training, cached eval propagation, leakage."""
from __future__ import annotations

import pytest
import torch
import torch_geometric
from modelkit import perturb, train_steps

from stgnn.baselines.lightgcn import LightGCN
from stgnn.baselines.pop import Pop
from stgnn.data.batch import SampleLoader
from stgnn.data.protocol import ProtocolConfig, make_split
from stgnn.data.sources.synthetic import generate
from stgnn.data.split import PARTS, Split
from stgnn.eval.evaluate import evaluate
from stgnn.registry import build_for_split


@pytest.fixture(scope="module")
def split() -> Split:
    # every val/test check-in with a prefix is a sample (~300 test samples); 30 users so that
    # collaborative filtering has neighbours to share (training is fast: no sequence encoder)
    table = generate(num_users=30, num_pois=60, days=28, seed=1)
    return make_split(table, ProtocolConfig(min_user_checkins=5, min_poi_checkins=3, eval_last_only=False))


def _train(split: Split, epochs: int, lr: float = 2e-2, seed: int = 0, max_steps: int = 10 ** 9) -> LightGCN:
    torch.manual_seed(seed)
    model = build_for_split(LightGCN, split, dim=32, num_layers=2)
    return train_steps(model, split, epochs, lr, seed, max_steps, max_len=4, hist_len=0)


def test_graph_holds_training_user_poi_pairs_only(split: Split) -> None:
    model = build_for_split(LightGCN, split, dim=8)
    train = split.part == PARTS["train"]
    want = {(int(u), int(p) + split.num_users) for u, p in zip(split.user[train], split.poi[train])}
    ei = model.edge_index.t().tolist()
    assert {(u, p) for u, p in ei if u < split.num_users} == want
    assert {(p, u) for u, p in ei if u >= split.num_users} == want          # both directions
    assert len(ei) == 2 * len(want)
    changed = build_for_split(LightGCN, perturb(split, (PARTS["val"], PARTS["test"])), dim=8)
    assert torch.equal(model.edge_index, changed.edge_index)


@pytest.mark.filterwarnings("ignore:Sparse")
def test_scores_are_propagated_dot_products(split: Split) -> None:
    torch.manual_seed(0)
    model = build_for_split(LightGCN, split, dim=8, num_layers=2).eval()
    batch = SampleLoader(split, "test").make_batch(split.samples["test"][:10])
    with torch.no_grad():
        scores = model.score(batch)
        # PyG's own propagation with its own normalisation, from the edge list
        ref = torch_geometric.nn.models.LightGCN(model.gcn.num_nodes, 8, 2)
        ref.load_state_dict(model.gcn.state_dict())
        z = ref.get_embedding(model.edge_index)
    assert scores.shape == (10, split.num_pois) and torch.isfinite(scores).all()
    torch.testing.assert_close(scores, z[batch.user] @ z[split.num_users:].t())


def test_eval_cache_is_dropped_when_weights_change(split: Split) -> None:
    torch.manual_seed(0)
    model = build_for_split(LightGCN, split, dim=8).eval()
    batch = SampleLoader(split, "test").make_batch(split.samples["test"][:10])
    with torch.no_grad():
        before = model.score(batch)
    assert model._cache is not None
    model.train()
    assert model._cache is None
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss = model.loss(SampleLoader(split, "train").make_batch(split.samples["train"][:64]))
    loss.backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        after = model.score(batch)
    assert not torch.allclose(before, after)
    fresh = build_for_split(LightGCN, split, dim=8).eval()
    with torch.no_grad():
        fresh.score(batch)
        fresh.load_state_dict(model.state_dict())
        torch.testing.assert_close(fresh.score(batch), after)                  # not the stale cache


def test_beats_popularity(split: Split) -> None:
    test = SampleLoader(split, "test", batch_size=256)
    pop = build_for_split(Pop, split)
    base = evaluate(pop, test)[0]
    got = evaluate(_train(split, epochs=8), test)[0]
    assert got["MRR"] > base["MRR"] + 0.1
    assert got["Acc@1"] > base["Acc@1"] + 0.05
