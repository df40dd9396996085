import math

import numpy as np
import pytest
import torch

from stgnn.eval.metrics import (metric_names, metrics_from_ranks, per_sample, ranks, ranks_numpy,
                                reference_metrics)


def test_ties_are_pessimistic():
    s = torch.tensor([[1.0, 3.0, 3.0, 2.0]] * 4)
    r = ranks(s, torch.tensor([1, 2, 3, 0]))
    # idx 1 and 2 tie at the top: each has the other >= it -> rank 2; idx 3 (2.0) has two above
    assert r.tolist() == [2, 2, 3, 4]
    assert r.dtype == torch.long


def test_constant_scores_rank_last():
    s = torch.zeros(3, 7)
    assert ranks(s, torch.tensor([0, 3, 6])).tolist() == [7, 7, 7]


def test_hand_metrics():
    r = np.array([1, 2, 6, 30])
    m = metrics_from_ranks(r)
    assert m["Acc@1"] == pytest.approx(0.25)
    assert m["Acc@5"] == pytest.approx(0.5)
    assert m["Acc@10"] == pytest.approx(0.75)
    assert m["Acc@20"] == pytest.approx(0.75)
    assert m["NDCG@5"] == pytest.approx((1 + 1 / math.log2(3)) / 4)
    assert m["NDCG@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(7)) / 4)
    assert m["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 6 + 1 / 30) / 4)
    assert m["Precision@5"] == pytest.approx(0.5 / 5)
    # F1@5 = 2PR/(P+R) with P = 0.1, R = 0.5
    assert m["F1@5"] == pytest.approx(2 * 0.1 * 0.5 / 0.6)
    assert m["F1@1"] == pytest.approx(m["Acc@1"])
    assert list(m) == metric_names()


def test_per_sample_means_match():
    r = np.array([1, 3, 11, 4, 2])
    m = metrics_from_ranks(r)
    for name in ("Acc@5", "NDCG@10", "MRR", "F1@10"):
        assert per_sample(r, name).mean() == pytest.approx(m[name])
    assert per_sample(r, "Recall@5").tolist() == per_sample(r, "Acc@5").tolist()
    with pytest.raises(ValueError, match="unknown metric"):
        per_sample(r, "AUC")


def test_torch_matches_numpy_reference_with_ties():
    g = torch.Generator().manual_seed(0)
    # small integer scores -> many ties
    s = torch.randint(0, 5, (64, 30), generator=g).float()
    t = torch.randint(0, 30, (64,), generator=g)
    r = ranks(s, t, chunk_elems=100)  # several chunks
    ref = ranks_numpy(s.numpy(), t.numpy())
    assert r.tolist() == ref.tolist()
    ours = metrics_from_ranks(r)
    theirs = reference_metrics(s.numpy(), t.numpy())
    for k, v in theirs.items():
        assert ours[k] == pytest.approx(v, abs=1e-12), k
    # continuous scores too (low-precision dtype as well)
    s2 = torch.randn(16, 50, generator=g)
    t2 = torch.randint(0, 50, (16,), generator=g)
    assert ranks(s2, t2).tolist() == ranks_numpy(s2.numpy(), t2.numpy()).tolist()
    s3 = s2.to(torch.bfloat16)
    assert ranks(s3, t2).tolist() == ranks_numpy(s3.float().numpy(), t2.numpy()).tolist()


def test_nan_and_shape_errors():
    s = torch.tensor([[0.1, float("nan"), 0.3], [0.1, 0.2, 0.3]])
    with pytest.raises(ValueError, match="NaN scores in rows \\[0\\]"):
        ranks(s, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        ranks_numpy(s.numpy(), np.array([0, 1]))
    with pytest.raises(ValueError, match="target ids"):
        ranks(torch.zeros(1, 3), torch.tensor([3]))
    with pytest.raises(ValueError, match="\\(B, P\\)"):
        ranks(torch.zeros(3), torch.tensor([0]))


def test_inf_scores_are_ordinary_values():
    s = torch.tensor([[float("inf"), 1.0, float("-inf")]])
    assert ranks(s, torch.tensor([0])).tolist() == [1]
    assert ranks(s, torch.tensor([2])).tolist() == [3]


def test_empty_ranks_give_nan():
    m = metrics_from_ranks(np.zeros(0, dtype=np.int64))
    assert math.isnan(m["MRR"])
    with pytest.raises(ValueError, match="1-based"):
        metrics_from_ranks(np.array([0, 1]))
