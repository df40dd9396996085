"""GETNext: training-only flow map, transition attention, multi-task loss, scores, leakage."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from modelkit import metrics_vs_pop, perturb, train_steps

from stgnn.baselines.getnext import GETNext, flow_graph
from stgnn.data.batch import SampleLoader
from stgnn.data.split import PARTS, Split
from stgnn.inputs import train_stats
from stgnn.registry import build_for_split

MAX_LEN = 16
SMALL = dict(user_dim=16, poi_dim=16, time_dim=8, cat_dim=8, gcn_hidden=(16,), attn_dim=16, ffn=64,
             layers=1, dropout=0.1, gcn_dropout=0.1)


@pytest.fixture(scope="module")
def split(planted_split: Split) -> Split:
    return planted_split


def _model(split: Split, seed: int = 0) -> GETNext:
    torch.manual_seed(seed)
    return build_for_split(GETNext, split, **SMALL)


def _train(split: Split, epochs: int, lr: float = 3e-3, seed: int = 0, max_steps: int = 10 ** 9) -> GETNext:
    model = _model(split, seed)
    return train_steps(model, split, epochs, lr, seed, max_steps, max_len=MAX_LEN)


def test_flow_graph_counts_training_transitions(split: Split) -> None:
    stats = train_stats(split)
    A = flow_graph(stats, split.num_pois)
    counts, edges = stats.poi_count.numpy(), np.stack(A.nonzero())
    want: dict[tuple[int, int], int] = {}
    for j in range(1, split.num_checkins):
        if split.traj[j] == split.traj[j - 1] and split.part[j] == split.part[j - 1] == PARTS["train"]:
            key = (int(split.poi[j - 1]), int(split.poi[j]))
            want[key] = want.get(key, 0) + 1
    got = {(int(i), int(j)): int(A[i, j]) for i, j in edges.T}
    assert got == want
    assert counts.sum() == (split.part == PARTS["train"]).sum()


def test_graph_is_built_from_training_period_only(split: Split) -> None:
    model, changed = _model(split), _model(perturb(split, (PARTS["val"], PARTS["test"])))
    torch.testing.assert_close(model.x, changed.x, rtol=0, atol=0)
    torch.testing.assert_close(model.adj.to_dense(), changed.adj.to_dense(), rtol=0, atol=0)
    # Â = D̃^-1 (A + I): rows sum to 1, every diagonal entry > 0
    adj = model.adj.to_dense()
    torch.testing.assert_close(adj.sum(1), torch.ones(split.num_pois))
    assert bool((adj.diagonal() > 0).all())


def test_transition_attention_rows(split: Split) -> None:
    model = _model(split)
    rows = torch.tensor([0, 5, 5, split.num_pois - 1])
    wh = model.x @ model.attn_W.weight.t()                                   # (P, attn_dim)
    a = model.attn_a.weight[0]
    k = wh.shape[1]
    dense = F.leaky_relu((wh @ a[:k])[:, None] + (wh @ a[k:])[None, :], 0.2) * (model.adj.to_dense() + 1)
    torch.testing.assert_close(model.transition_attention(rows), dense[rows])


def test_loss_never_reads_target_time(split: Split) -> None:
    model = _model(split).eval()
    targets = split.samples["train"][:64]
    with torch.no_grad():
        a = model.loss(SampleLoader(split, "train", max_len=MAX_LEN).make_batch(targets))
        b = model.loss(SampleLoader(split, "train", max_len=MAX_LEN, target_time="hidden").make_batch(targets))
    assert torch.isfinite(a) and a > 0
    assert a.item() == b.item()
    assert not GETNext.uses_target_time


def test_unfitted_model_says_what_to_do(split: Split) -> None:
    model = GETNext(split.num_users, split.num_pois, num_categories=split.num_categories, **SMALL)
    batch = SampleLoader(split, "test", max_len=MAX_LEN).make_batch(split.samples["test"][:2])
    with pytest.raises(RuntimeError, match="from_inputs"):
        model.score(batch)


def test_beats_popularity(split: Split) -> None:
    got, base = metrics_vs_pop(_train(split, epochs=4), split, max_len=MAX_LEN)
    assert got["MRR"] > base["MRR"] + 0.1
    assert got["Acc@1"] > base["Acc@1"] + 0.05
