"""MF-BPR: score formula, BPR loss by hand, learns planted user preferences."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from modelkit import acc_mrr, ranks, tiny_split, train_steps

from stgnn.baselines import MFBPR, Pop
from stgnn.data.batch import SampleLoader
from stgnn.registry import build_for_split


@pytest.fixture(scope="module")
def planted():
    """Each user u only ever visits POIs 2u and 2u+1 (alternating); 6 users, 12 POIs."""
    trajs = []
    for u in range(6):
        for d in range(12):
            trajs.append((u, "train", [(2 * u + (d % 2), d), (2 * u + 1 - (d % 2), d + 0.1)]))
        trajs.append((u, "test", [(2 * u, 30.0), (2 * u + 1, 30.1)]))
    return tiny_split(trajs, num_users=6, num_pois=12)


def test_score_formula(planted) -> None:
    model = build_for_split(MFBPR, planted, dim=2)
    with torch.no_grad():
        model.user_emb.weight.copy_(torch.arange(12, dtype=torch.float32).view(6, 2))
        model.poi_emb.weight.copy_(torch.arange(24, dtype=torch.float32).view(12, 2) / 10)
        model.poi_bias.weight.fill_(0.5)
    batch = SampleLoader(planted, "test").make_batch(planted.samples["test"][:2])  # users 0 and 1
    s = model.score(batch)
    assert s.shape == (2, 12)
    # user 1 = (2, 3); POI 4 = (0.8, 0.9): 1.6 + 2.7 + 0.5
    assert s[1, 4].item() == pytest.approx(4.8)
    # user 0 = (0, 1); POI 0 = (0, 0.1): 0.1 + 0.5
    assert s[0, 0].item() == pytest.approx(0.6)


def test_bpr_loss_by_hand(planted) -> None:
    model = build_for_split(MFBPR, planted, dim=4, num_neg=3, l2=0.01)
    batch = SampleLoader(planted, "train").make_batch(planted.samples["train"][:5])
    torch.manual_seed(7)
    loss = model.loss(batch)
    torch.manual_seed(7)
    neg = torch.randint(12, (5, 3))
    u, p, n = model.user_emb.weight[batch.user], model.poi_emb.weight[batch.target_poi], model.poi_emb.weight[neg]
    b = model.poi_bias.weight.squeeze(1)
    diff = ((u * p).sum(-1) + b[batch.target_poi])[:, None] - ((u[:, None] * n).sum(-1) + b[neg])
    keep = neg != batch.target_poi[:, None]
    expected = -F.logsigmoid(diff[keep]).mean() + 0.01 * (u.pow(2).sum() + p.pow(2).sum() + n.pow(2).sum()) / 5
    torch.testing.assert_close(loss, expected)


def test_learns_planted_preferences(planted) -> None:
    pop = build_for_split(Pop, planted)
    torch.manual_seed(0)
    model = train_steps(build_for_split(MFBPR, planted, dim=8, num_neg=4), planted, epochs=30, lr=0.05, reseed=True)
    r = ranks(model, planted, "test")
    # both of a user's POIs should be its top 2 (the user model cannot tell which comes next)
    assert (r <= 2).all(), r
    assert acc_mrr(ranks(pop, planted, "test"))[1] < 0.2  # all POIs tie under Pop


def test_beats_pop_on_synthetic(synthetic_split) -> None:
    pop = build_for_split(Pop, synthetic_split)
    torch.manual_seed(0)
    model = train_steps(build_for_split(MFBPR, synthetic_split, dim=16, num_neg=4), synthetic_split, epochs=2, lr=0.02,
                        batch_size=256, hist_len=0, reseed=True)
    _, mrr_pop = acc_mrr(ranks(pop, synthetic_split, "test"))
    _, mrr_mf = acc_mrr(ranks(model, synthetic_split, "test"))
    assert mrr_mf > 1.5 * mrr_pop, (mrr_pop, mrr_mf)
