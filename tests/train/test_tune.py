"""tune(): expands grids, scores validation only, records every point, refuses trainable models."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from stgnn.data.batch import Batch
from stgnn.eval.metrics import ranks
from stgnn.models.base import Recommender
from stgnn.train.tune import expand_grid, tune


class FavouritePOI(Recommender):
    """Scores one POI 1 and every other 0: its MRR is (nearly) the share of targets equal to ``poi``."""

    trainable = False

    def __init__(self, num_users: int, num_pois: int, *, poi: int = 0) -> None:
        super().__init__(num_users, num_pois)
        if not 0 <= poi < num_pois:
            raise ValueError(f"poi must be in [0, {num_pois}), got {poi}")
        self.poi = poi

    def score(self, batch: Batch) -> torch.Tensor:
        s = torch.zeros(len(batch), self.num_pois)
        s[:, self.poi] = 1.0
        return s


def _mrr(split, part: str, poi: int) -> float:
    y = torch.from_numpy(split.poi[split.samples[part]])
    s = torch.zeros(len(y), split.num_pois)
    s[:, poi] = 1.0
    return float((1.0 / ranks(s, y).double()).mean())


def test_expand_grid() -> None:
    assert expand_grid({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert expand_grid([{"a": [0]}, {"a": [1], "c": [3, 4]}]) == [{"a": 0}, {"a": 1, "c": 3}, {"a": 1, "c": 4}]
    with pytest.raises(ValueError, match="'a' needs a non-empty list"):
        expand_grid({"a": []})
    with pytest.raises(ValueError, match="'a' needs a non-empty list"):
        expand_grid({"a": "abc"})


def test_picks_on_validation_when_test_prefers_another_point(synthetic_split) -> None:
    s = synthetic_split
    val = np.bincount(s.poi[s.samples["val"]], minlength=s.num_pois)
    test = np.bincount(s.poi[s.samples["test"]], minlength=s.num_pois)
    a, b = int(np.argmax(val - test)), int(np.argmax(test - val))   # val's favourite, test's favourite
    assert _mrr(s, "val", a) > _mrr(s, "val", b) and _mrr(s, "test", b) > _mrr(s, "test", a)
    for order in ([a, b], [b, a]):
        result = tune(FavouritePOI, s, {"poi": order})
        assert result.best == {"poi": a}
        assert result.best_score == pytest.approx(_mrr(s, "val", a))
        assert [r["kwargs"]["poi"] for r in result.grid] == order
        assert result.num_val == len(s.samples["val"])


def test_never_builds_test_samples(synthetic_split) -> None:
    # test sample indices that cannot be batched: any attempt to score them would raise
    broken = dataclasses.replace(synthetic_split, samples={**synthetic_split.samples,
                                                            "test": np.array([10 ** 9], dtype=np.int64)})
    result = tune("user_history", broken, {"half_life": [7.0, None]})
    assert len(result.grid) == 2 and all("val" in r for r in result.grid)


def test_records_every_point_and_rejected_ones(synthetic_split, tmp_path) -> None:
    result = tune("user_history", synthetic_split, {"transition_weight": [0.0, 0.2, 1.5]},
                  base_kwargs={"half_life": 30.0})
    assert result.best["half_life"] == 30.0
    scores = [r["val"]["MRR"] for r in result.grid if "val" in r]
    assert len(scores) == 2 and result.best_score == max(scores)
    assert "error" in result.grid[2] and "transition_weight" in result.grid[2]["error"]
    result.save(tmp_path / "tune.json")
    saved = json.loads((tmp_path / "tune.json").read_text())
    assert saved["best"] == result.best and len(saved["grid"]) == 3
    assert saved["protocol"]["history"] == synthetic_split.protocol["history"]


def test_refuses_trainable_models_and_bad_metrics(synthetic_split) -> None:
    with pytest.raises(ValueError, match="trainable"):
        tune("mf_bpr", synthetic_split, {"dim": [4]})
    with pytest.raises(ValueError, match="not a metric"):
        tune("user_history", synthetic_split, {"half_life": [7.0]}, monitor="AUC")
    with pytest.raises(ValueError, match="no grid point"):
        tune("user_history", synthetic_split, {"half_life": [-1.0]})
