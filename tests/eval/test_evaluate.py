"""Chunked full-ranking evaluation: same ranks as one big batch, memory bounded by the chunk."""
from __future__ import annotations

import numpy as np
import torch
from modelkit import LargestTensor

from stgnn.data.batch import SampleLoader
from stgnn.eval.evaluate import evaluate, score_chunks, top_k
from stgnn.eval.metrics import ranks
from stgnn.models.base import Recommender


class DotModel(Recommender):
    """A user embedding dotted with every POI's: a tiny model over many POIs."""

    def __init__(self, num_users: int, num_pois: int, dim: int = 8) -> None:
        super().__init__(num_users, num_pois)
        g = torch.Generator().manual_seed(0)
        self.user = torch.nn.Parameter(torch.randn(num_users, dim, generator=g))
        self.poi = torch.nn.Parameter(torch.randn(num_pois, dim, generator=g))

    def score(self, batch):
        # coarse scores, so ties occur and the pessimistic tie rule is exercised
        return (self.user[batch.user] @ self.poi.T).round(decimals=1)  # (B, P)



def _loader(split, n: int) -> SampleLoader:
    targets = np.resize(split.samples["train"], n)  # n samples (repeating), in a fixed order
    return SampleLoader(split, targets, batch_size=512, hist_len=0)


def test_chunks_give_the_ranks_of_one_batch(synthetic_split):
    model = DotModel(synthetic_split.num_users, 3000)
    loader = _loader(synthetic_split, 700)
    batch = loader.make_batch(loader.targets)
    want = ranks(model.score(batch).detach(), batch.target_poi).numpy()
    for max_scores in (1 << 30, 3000 * 64, 2999, 1):
        metrics, got = evaluate(model, loader, max_scores=max_scores)
        assert np.array_equal(got, want), max_scores
    assert metrics["MRR"] == float(np.mean(1.0 / want))
    sizes = [len(b) for b, _ in score_chunks(model, loader, max_scores=3000 * 64)]
    assert sizes == [64] * 10 + [60]  # 64 samples of 3,000 scores per chunk
    assert [len(b) for b, _ in score_chunks(model, loader)] == [512, 188]  # fits: the loader's batches


def test_top_k_matches_a_full_sort(synthetic_split):
    model = DotModel(synthetic_split.num_users, 500)
    loader = _loader(synthetic_split, 300)
    ids, vals = top_k(model, loader, k=5, max_scores=500 * 7)
    full = model.score(loader.make_batch(loader.targets)).detach()
    assert ids.shape == (300, 5) and np.array_equal(vals, full.topk(5, dim=1).values.numpy())
    assert np.array_equal(np.take_along_axis(full.numpy(), ids, 1), vals)


def test_peak_memory_does_not_grow_with_samples(synthetic_split):
    """10^5 POIs: 2x and 4x the samples allocate no larger tensor (no (S, P) matrix)."""
    model = DotModel(synthetic_split.num_users, 100_000)
    budget = 1 << 20
    largest = {}
    for n in (100, 200, 400):
        with LargestTensor() as spy:
            _, r = evaluate(model, _loader(synthetic_split, n), max_scores=budget)
        assert len(r) == n
        largest[n] = spy.largest
    assert largest[100] == largest[200] == largest[400]
    assert largest[400] <= budget  # a chunk of 10 samples x 10^5 POIs, nothing bigger
