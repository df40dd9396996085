"""Every experiments/*/table.yaml row resolves to a config whose model builds and scores all POIs."""
from __future__ import annotations

import pytest
import torch
import yaml
from fakes import FakeText

from stgnn.config import ExperimentConfig, deep_merge, from_dict, to_dict
from stgnn.data.batch import SampleLoader
from stgnn.recipes import EXPERIMENTS
from stgnn.registry import build_for_split


ROWS = [(folder.parent.name, row) for folder in sorted(EXPERIMENTS.glob("*/table.yaml"))
        for row in yaml.safe_load(folder.read_text())["models"]]


def test_tables_found():
    assert {"reproduce_nyc", "ablation"} <= {name for name, _ in ROWS}


@pytest.mark.parametrize("table,row", ROWS, ids=[f"{t}:{r['name']}" for t, r in ROWS])
def test_row_builds_and_scores(table, row, synthetic_split):
    spec = yaml.safe_load((EXPERIMENTS / table / "table.yaml").read_text())
    data = deep_merge(deep_merge(to_dict(ExperimentConfig()), spec.get("base", {})), row.get("config", {}))
    cfg = from_dict(ExperimentConfig, data)
    fake = FakeText() if cfg.model_kwargs.get("text_model") else None  # MiniLM itself: tests/features
    torch.manual_seed(0)
    model = build_for_split(cfg.model, synthetic_split, text_encoder=fake, **cfg.model_kwargs)
    if fake is not None:
        assert fake.calls == 1 and model.text_emb.shape == (synthetic_split.num_pois, 8)
    loader = SampleLoader(synthetic_split, "test", 8, max_len=cfg.train.max_len, hist_len=cfg.train.hist_len)
    batch = loader.make_batch(synthetic_split.samples["test"][:8])
    with torch.no_grad():
        scores = model.eval().score(batch)
    assert scores.shape == (8, synthetic_split.num_pois) and torch.isfinite(scores).all()
