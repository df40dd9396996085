"""Slices of the evaluation samples: masks from the split's own counts, metrics per slice."""
from __future__ import annotations

import numpy as np
import pytest

from stgnn.eval.slices import SLICES, slice_masks, slice_metrics


def test_masks_follow_train_counts_and_flags(cold_split):
    split = cold_split
    targets = split.samples["test"]
    counts = [int(((split.poi == split.poi[t]) & (split.part == 0)).sum()) for t in targets]  # by definition
    rare_max = int(np.median([c for c in counts if c > 0]))  # the planted data has no truly rare POI
    masks = slice_masks(split, "test", rare_max=rare_max)
    assert list(masks) == list(SLICES)
    for i, n_train in enumerate(counts):
        assert masks["cold POI"][i] == (n_train == 0)
        assert masks["rare POI"][i] == (1 <= n_train <= rare_max)
        assert masks["warm POI"][i] == (n_train > rare_max)
    # every sample is in exactly one popularity slice and in revisit xor new-for-user
    assert np.all(masks["cold POI"].astype(int) + masks["rare POI"] + masks["warm POI"] == 1)
    assert np.all(masks["revisit"] ^ masks["new for user"])
    np.testing.assert_array_equal(masks["cold POI"], split.flags["cold_poi"])
    np.testing.assert_array_equal(masks["cold user"], split.flags["cold_user"])
    assert masks["all"].all()
    assert masks["cold POI"].any() and masks["rare POI"].any() and masks["warm POI"].any()


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


@pytest.mark.parametrize("part", ["val", "test"])
def test_past_revisit_is_any_earlier_check_in_of_the_user_at_the_target(synthetic_split, part):
    split = synthetic_split
    targets = split.samples[part]
    by_definition = np.array([bool(((split.user == split.user[t]) & (split.poi == split.poi[t])
                                    & (split.ts < split.ts[t])).any()) for t in targets])
    masks = slice_masks(split, part)
    np.testing.assert_array_equal(masks["past revisit"], by_definition)
    assert np.all(masks["past revisit"] ^ masks["past new"])
    # a POI seen in training is seen before any val/test target; the converse fails for POIs first
    # visited in the validation period (or earlier in the target's own trajectory)
    assert np.all(masks["past revisit"][masks["revisit"]])
    assert masks["past revisit"].any() and masks["past new"].any()
