"""A run folder becomes a served model without its split; older runs get their inputs rebuilt."""
from __future__ import annotations

import shutil

import numpy as np
import torch


def test_a_run_without_inputs_pt_is_rebuilt_from_its_split_to_the_same_scores(serve_runs, seeded_store, tmp_path,
                                                                             stgnn_loaded):
    from stgnn.serve.loading import load_run
    from stgnn.serve.recommender import Recommender

    old = tmp_path / "old_run"
    shutil.copytree(serve_runs["STGNN"], old)
    (old / "inputs.pt").unlink()                     # as runs written before runs kept their inputs
    rebuilt = load_run(old)
    assert rebuilt.inputs_rebuilt and not stgnn_loaded.inputs_rebuilt
    split = serve_runs["split"]
    j = int(split.samples["test"][0])
    user, at = str(split.user_ids[split.user[j]]), int(split.ts[j])
    a = Recommender(rebuilt, seeded_store).answer(user, at)
    b = Recommender(stgnn_loaded, seeded_store).answer(user, at)
    assert torch.equal(a.scores, b.scores)


def test_the_catalog_takes_training_statistics_from_inputs_and_traffic_from_the_store(serve_runs, seeded_store,
                                                                                    stgnn_loaded):
    """Popularity and transitions are the inputs' (training period); hour-of-week traffic and the
    usual tz offset count the store's check-ins before the training period's end, which equals
    the split's training check-ins."""
    from stgnn.data.split import PARTS
    from stgnn.features.time import HOURS_PER_WEEK, hour_of_week
    from stgnn.serve.recommender import Recommender

    split = serve_runs["split"]
    cat = Recommender(stgnn_loaded, seeded_store).catalog
    train = split.part == PARTS["train"]
    assert np.array_equal(cat.popularity, np.bincount(split.poi[train], minlength=split.num_pois))
    tow = np.zeros((split.num_pois, HOURS_PER_WEEK), np.int64)
    np.add.at(tow, (split.poi[train], hour_of_week(split.ts[train], split.tz_offset_min[train])), 1)
    assert np.array_equal(cat.tow, tow) and cat.tow.sum() == train.sum()
    assert "training period" in cat.tow_source
    assert list(cat.poi_text) == [str(t) for t in split.poi_text]
    same = (split.traj[1:] == split.traj[:-1]) & train[1:] & train[:-1]
    src, dst = split.poi[:-1][same], split.poi[1:][same]
    s, d = int(src[0]), int(dst[0])
    assert cat.transition(s, d) == (int(((src == s) & (dst == d)).sum()), int((src == s).sum()))
