"""SASRec: full (B, P) scores, padding-invariant and causal, learns the planted routines, no leakage."""
from __future__ import annotations


import pytest
import torch
from modelkit import metrics_vs_pop, train_steps

from stgnn.baselines.sasrec import SASRec
from stgnn.data.batch import SampleLoader
from stgnn.data.split import Split
from stgnn.registry import build_for_split

MAX_LEN = 16


@pytest.fixture(scope="module")
def split(planted_split: Split) -> Split:
    return planted_split


def _train(split: Split, epochs: int, lr: float = 5e-3, seed: int = 0, max_steps: int = 10 ** 9) -> SASRec:
    torch.manual_seed(seed)
    model = build_for_split(SASRec, split, dim=32, max_len=MAX_LEN)
    return train_steps(model, split, epochs, lr, seed, max_steps, max_len=MAX_LEN)


def test_beats_popularity(split: Split) -> None:
    got, base = metrics_vs_pop(_train(split, epochs=4), split, max_len=MAX_LEN)
    assert got["MRR"] > base["MRR"] + 0.1
    assert got["Acc@1"] > base["Acc@1"] + 0.05


def test_encoding_is_causal(split: Split) -> None:
    """The state at position t depends on positions <= t only: truncating a prefix to its first
    t check-ins gives the encoder output that position t had in the full prefix."""
    torch.manual_seed(0)
    model = build_for_split(SASRec, split, dim=16, max_len=MAX_LEN).eval()
    loader = SampleLoader(split, "test", max_len=MAX_LEN)
    batch = loader.make_batch(loader.targets[:64])
    i = int(batch.length.argmax())
    n = int(batch.length[i])
    assert n >= 3
    with torch.no_grad():
        full = model.score(batch)[i]
        batch.length[i] = n - 1
        batch.mask[i, n - 1] = False  # drop the last check-in: a different, shorter prefix
        shorter = model.score(batch)[i]
        batch.poi[i, n - 1] = (batch.poi[i, n - 1] + 1) % split.num_pois  # now a masked position
        again = model.score(batch)[i]
    assert not torch.allclose(full, shorter)
    torch.testing.assert_close(again, shorter, rtol=0, atol=0)


def test_rejects_prefix_longer_than_positions(split: Split) -> None:
    model = build_for_split(SASRec, split, dim=8, max_len=2)
    batch = SampleLoader(split, "test", max_len=MAX_LEN).make_batch(split.samples["test"])
    with pytest.raises(ValueError, match="max_len"):
        model.score(batch)
