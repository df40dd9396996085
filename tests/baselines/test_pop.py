"""Pop: hand-checked training counts, val/test check-ins ignored, ties kept."""
from __future__ import annotations

import pytest
import torch
from modelkit import acc_mrr, ranks, tiny_split

from stgnn.baselines import Pop
from stgnn.data.batch import SampleLoader
from stgnn.registry import build_for_split


@pytest.fixture()
def split():
    return tiny_split([
        (0, "train", [(0, 0.0), (2, 0.1), (2, 0.2)]),
        (1, "train", [(1, 1.0), (2, 1.1), (0, 1.2)]),
        (0, "val", [(3, 21.0), (3, 21.1), (3, 21.2)]),
        (1, "test", [(3, 26.0), (1, 26.1), (0, 26.2)]),
    ], num_users=2, num_pois=5)


def test_counts_training_period_only(split) -> None:
    model = build_for_split(Pop, split)
    # train POIs: 0 x2, 1 x1, 2 x3; POI 3 only in val/test; POI 4 never
    assert model.counts.tolist() == [2.0, 1.0, 3.0, 0.0, 0.0]
    batch = SampleLoader(split, "test").make_batch(split.samples["test"])
    s = model.score(batch)
    assert s.shape == (2, 5)
    assert torch.equal(s, torch.tensor([[2.0, 1.0, 3.0, 0.0, 0.0]] * 2))


def test_ties_are_not_broken_and_rank_pessimistically(split) -> None:
    model = build_for_split(Pop, split)
    # test targets: POI 1 (count 1 -> rank 3) and POI 0 (count 2 -> rank 2)
    assert ranks(model, split, "test").tolist() == [3, 2]
    # val targets are POI 3 (count 0, tied with POI 4): pessimistic rank 5 of 5
    assert ranks(model, split, "val").tolist() == [5, 5]
    assert acc_mrr(ranks(model, split, "test")) == (0.0, pytest.approx((1 / 3 + 1 / 2) / 2))


def test_not_trainable(split) -> None:
    model = build_for_split(Pop, split)
    assert not model.trainable and not list(model.parameters())
    with pytest.raises(TypeError, match="not trainable"):
        model.loss(SampleLoader(split, "train").make_batch(split.samples["train"]))
