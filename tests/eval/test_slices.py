"""Slices of the evaluation samples: masks from the split's own counts, metrics per slice."""
from __future__ import annotations

import numpy as np
import pytest

from stgnn.data.protocol import ProtocolConfig, make_split
from stgnn.eval.slices import SLICES, slice_masks, slice_metrics


@pytest.fixture(scope="module")
def cold_split(synthetic_table):
    return make_split(synthetic_table, ProtocolConfig(min_user_checkins=5, min_poi_checkins=3, keep_unseen=True))


def test_masks_follow_train_counts_and_flags(cold_split):
    split = cold_split
    masks = slice_masks(split, "test", rare_max=3)
    assert list(masks) == list(SLICES)
    targets = split.samples["test"]
    for i, t in enumerate(targets):  # a plain loop over the definition
        n_train = int(((split.poi == split.poi[t]) & (split.part == 0)).sum())
        assert masks["cold POI"][i] == (n_train == 0)
        assert masks["rare POI"][i] == (1 <= n_train <= 3)
        assert masks["warm POI"][i] == (n_train > 3)
    # every sample is in exactly one popularity slice and in revisit xor new-for-user
    assert np.all(masks["cold POI"].astype(int) + masks["rare POI"] + masks["warm POI"] == 1)
    assert np.all(masks["revisit"] ^ masks["new for user"])
    np.testing.assert_array_equal(masks["cold POI"], split.flags["cold_poi"])
    np.testing.assert_array_equal(masks["cold user"], split.flags["cold_user"])
    assert masks["all"].all()


def test_cold_slice_is_empty_without_keep_unseen(synthetic_split):
    masks = slice_masks(synthetic_split, "val")
    assert len(masks["all"]) == len(synthetic_split.samples["val"])
    assert not masks["cold POI"].any()  # the default protocol removes unseen targets


def test_slice_metrics_on_hand_ranks():
    ranks = np.array([1, 2, 10, 100])
    masks = {"all": np.ones(4, bool), "head": np.array([True, True, False, False]), "none": np.zeros(4, bool)}
    out = slice_metrics(ranks, masks)
    assert out["head"]["n"] == 2 and out["head"]["Acc@1"] == pytest.approx(0.5)
    assert out["head"]["MRR"] == pytest.approx((1 + 0.5) / 2)
    assert out["all"]["Acc@10"] == pytest.approx(0.75)
    assert out["none"] == {"n": 0}
    assert "Precision@1" not in out["all"]
    with pytest.raises(ValueError, match="slice 'x' has 3 samples"):
        slice_metrics(ranks, {"x": np.ones(3, bool)})


def test_bad_arguments(synthetic_split):
    with pytest.raises(ValueError, match="'train'"):
        slice_masks(synthetic_split, "train")
    with pytest.raises(ValueError, match="rare_max"):
        slice_masks(synthetic_split, "test", rare_max=0)
