"""GRU4Rec: full (B, P) scores, padding-invariant, learns the planted routines, no leakage."""
from __future__ import annotations


import pytest
import torch
from modelkit import metrics_vs_pop, train_steps

from stgnn.baselines.gru4rec import GRU4Rec
from stgnn.data.split import Split
from stgnn.registry import build_for_split

MAX_LEN = 16


@pytest.fixture(scope="module")
def split(planted_split: Split) -> Split:
    return planted_split


def _train(split: Split, epochs: int, lr: float = 1e-2, seed: int = 0, max_steps: int = 10 ** 9) -> GRU4Rec:
    torch.manual_seed(seed)
    model = build_for_split(GRU4Rec, split, dim=32)
    return train_steps(model, split, epochs, lr, seed, max_steps, max_len=MAX_LEN)


def test_beats_popularity(split: Split) -> None:
    got, base = metrics_vs_pop(_train(split, epochs=4), split, max_len=MAX_LEN)
    assert got["MRR"] > base["MRR"] + 0.15
    assert got["Acc@1"] > base["Acc@1"] + 0.1
