"""Every experiments/*/table.yaml row resolves to a config whose model builds and scores all POIs."""
from __future__ import annotations

import pytest
import torch
import yaml

from stgnn.config import ExperimentConfig, _deep_merge, from_dict, to_dict
from stgnn.data.batch import SampleLoader
from stgnn.models.registry import build_model
from stgnn.recipes import EXPERIMENTS

ROWS = [(folder.parent.name, row) for folder in sorted(EXPERIMENTS.glob("*/table.yaml"))
        for row in yaml.safe_load(folder.read_text())["models"]]


def test_tables_found():
    assert {"reproduce_nyc", "ablation"} <= {name for name, _ in ROWS}


@pytest.mark.parametrize("table,row", ROWS, ids=[f"{t}:{r['name']}" for t, r in ROWS])
def test_row_builds_and_scores(table, row, synthetic_split, monkeypatch):
    spec = yaml.safe_load((EXPERIMENTS / table / "table.yaml").read_text())
    data = _deep_merge(_deep_merge(to_dict(ExperimentConfig()), spec.get("base", {})), row.get("config", {}))
    cfg = from_dict(ExperimentConfig, data)
    if cfg.model_kwargs.get("text_model"):
        import stgnn.features.text as text_mod

        class Fake:  # the real MiniLM path is tested in tests/features; keep this test fast
            def encode(self, texts):
                return torch.randn(len(texts), 8)

        monkeypatch.setattr(text_mod, "make_text_encoder", lambda spec: Fake())
    torch.manual_seed(0)
    model = build_model(cfg.model, synthetic_split, **cfg.model_kwargs)
    model.fit_data(synthetic_split)
    loader = SampleLoader(synthetic_split, "test", 8, max_len=cfg.train.max_len, hist_len=cfg.train.hist_len)
    batch = loader.make_batch(synthetic_split.samples["test"][:8])
    with torch.no_grad():
        scores = model.eval().score(batch)
    assert scores.shape == (8, synthetic_split.num_pois) and torch.isfinite(scores).all()
