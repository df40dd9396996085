"""Contrastive fine-tuning of the text encoder: pairs from training samples only; a CPU smoke run."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stgnn.data.split import PARTS
from stgnn.features.contrastive import finetune, info_nce, training_pairs


def test_pairs_come_from_training_samples_and_never_show_the_target(synthetic_split) -> None:
    anchors, positives, pois = training_pairs(synthetic_split, max_pairs=50)
    assert len(anchors) == len(positives) == len(pois) == 50
    train = synthetic_split.samples["train"]
    assert np.isin(pois, synthetic_split.poi[train]).all()
    assert (synthetic_split.part[train] == PARTS["train"]).all()
    # a prefix of length 1 renders one step, and the arrow count grows with the prefix only
    all_a, _, _ = training_pairs(synthetic_split)
    lengths = train - synthetic_split.prefix_start(train)
    assert [a.count(" → ") for a in all_a[:20]] == list(np.minimum(lengths[:20], 20) - 1)


def test_info_nce_masks_shared_targets() -> None:
    a = torch.eye(3)
    p = torch.eye(3)
    none = torch.zeros(3, 3, dtype=torch.bool)
    loss = info_nce(a, p, none, scale=1.0)
    expected = -torch.log(torch.tensor(np.e / (np.e + 2)))
    torch.testing.assert_close(loss, expected.float())
    # samples 0 and 1 share a target: each is no longer the other's negative
    shared = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    assert info_nce(a, p, shared, scale=1.0) < loss


@pytest.mark.slow
def test_cpu_smoke_run_saves_a_loadable_model(synthetic_split, tmp_path) -> None:
    from stgnn.features.text import ModelNotAvailable, make_text_encoder, minilm_path

    try:
        path = minilm_path()
    except ModelNotAvailable as e:
        pytest.skip(str(e))
    out = tmp_path / "ft"
    summary = finetune(synthetic_split, path, out, batch_size=8, max_pairs=32, max_steps=3, lr=1e-4)
    assert summary["steps"] == 3 and np.isfinite(summary["last_loss"])
    enc = make_text_encoder(f"st:{out}", cache_dir=None)
    v = enc.encode(["Coffee Shop", "Office"])
    assert v.shape == (2, 384) and torch.isfinite(v).all()
