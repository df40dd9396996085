"""Rebuilding a finished run from its folder alone (config.yaml, inputs.pt, best.pt), as serving does."""
from __future__ import annotations

import pytest
import torch

from stgnn import recipes
from stgnn.config import load_config
from stgnn.data.batch import SampleLoader
from stgnn.registry import build_model
from stgnn.train.restore import load_trained


@pytest.fixture()
def finished_run(isolated):
    recipes.train_from_config(None, ["dataset=synthetic", "model=user_history", "name=uh", "train.progress=false",
                                     "train.tensorboard=false", "seeds=[0]"])
    return isolated / "results" / "uh" / "seed_0"


def test_a_run_is_rebuilt_without_its_split(finished_run):
    split = recipes.load_split(load_config(finished_run / "config.yaml"))
    recipes.clear_caches()
    run = load_trained(finished_run)                      # no split is loaded for this
    assert recipes.cached_splits() == 0 and run.checkpoint is None and not run.model.training  # not trainable: no weights
    assert run.inputs.poi_ids == [str(p) for p in split.poi_ids]
    batch = SampleLoader(split, "test", target_time="hidden").make_batch(split.samples["test"][:8])
    fresh = recipes.run_inputs(run.config, split)
    with torch.no_grad():
        assert torch.equal(run.model.score(batch), build_model("user_history", fresh).score(batch))


def test_missing_files_say_what_to_do(finished_run, tmp_path):
    (finished_run / "inputs.pt").unlink()
    with pytest.raises(FileNotFoundError, match="no inputs.pt .* stgnn eval --run RUN"):
        load_trained(finished_run)
    with pytest.raises(FileNotFoundError, match="no config.yaml: not a run folder"):
        load_trained(tmp_path)
