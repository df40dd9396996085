"""GRU4Rec: full (B, P) scores, padding-invariant, learns the planted routines, no leakage."""
from __future__ import annotations


import pytest
import torch

from stgnn.baselines.gru4rec import GRU4Rec
from stgnn.data.split import Split
from stgnn.registry import build_for_split
from trainkit import (assert_scores_all_pois_and_ignores_padding, assert_seed_determinism,
                      assert_val_blind_to_test_period,
                      metrics_vs_pop, train_steps)

MAX_LEN = 16


@pytest.fixture(scope="module")
def split(planted_split: Split) -> Split:
    return planted_split


def _train(split: Split, epochs: int, lr: float = 1e-2, seed: int = 0, max_steps: int = 10 ** 9) -> GRU4Rec:
    torch.manual_seed(seed)
    model = build_for_split(GRU4Rec, split, dim=32)
    return train_steps(model, split, epochs, lr, seed, max_steps, max_len=MAX_LEN)



def test_scores_all_pois_and_ignores_padding(split: Split) -> None:
    torch.manual_seed(0)
    assert_scores_all_pois_and_ignores_padding(build_for_split(GRU4Rec, split, dim=16).eval(), split, MAX_LEN)


def test_beats_popularity(split: Split) -> None:
    got, base = metrics_vs_pop(_train(split, epochs=4), split, max_len=MAX_LEN)
    assert got["MRR"] > base["MRR"] + 0.15
    assert got["Acc@1"] > base["Acc@1"] + 0.1


def test_val_scores_do_not_see_test_period(split: Split) -> None:
    assert_val_blind_to_test_period(lambda s: build_for_split(GRU4Rec, s, dim=16), split, MAX_LEN)


def test_deterministic_with_seed(split: Split) -> None:
    assert_seed_determinism(_train, split, max_len=MAX_LEN)


def test_repr_and_capabilities(split: Split) -> None:
    model = build_for_split(GRU4Rec, split, dim=8)
    assert "dim=8" in repr(model) and f"num_pois={split.num_pois}" in repr(model)
    assert model.capabilities() == {"needs_graph": False, "needs_snapshots": False, "needs_text": False,
                                    "uses_target_time": False, "trainable": True}
