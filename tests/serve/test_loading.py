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


def test_the_pinned_model_scores_bit_for_bit_as_the_unpinned_one(serve_runs, seeded_store, stgnn_loaded):
    """What load pins (graph encodings, ``out_poi`` of the POIs, the one-sample sequence shortcut)
    changes no bit: served scores equal the same run's plain model on the same live batch, and a
    many-sample batch (which takes the bucketed path) scores the same through both."""
    from stgnn.data.batch import SampleLoader
    from stgnn.serve.recommender import Recommender
    from stgnn.train.restore import load_trained

    model = stgnn_loaded.model
    assert "encode_graph" in vars(model) and "forward" in vars(model.seq)       # the shortcuts are in place
    plain = load_trained(serve_runs["STGNN"], "cpu").model.eval()
    assert "forward" not in vars(plain.seq)
    rec = Recommender(stgnn_loaded, seeded_store)
    split = serve_runs["split"]
    test = np.asarray(split.samples["test"])
    lengths = set()
    with torch.inference_mode():
        for j in test[:60]:
            a = rec.answer(str(split.user_ids[split.user[j]]), int(split.ts[j]), int(split.tz_offset_min[j]))
            assert a.batch is not None and a.batch.poi.shape[0] == 1
            lengths.add(int(a.batch.length[0]))
            assert torch.equal(a.scores, plain.score(a.batch)[0].float()), int(j)
        batch = SampleLoader(split, test[:64], history="all_past", target_time="known").make_batch(test[:64])
        assert torch.equal(model.score(batch), plain.score(batch))
    assert len(lengths) >= 3, lengths                                           # prefixes of several lengths
    need = {"user": torch.tensor([0, 2]), "poi": torch.tensor([1, 3, 4])}     # the method's compact form too
    with torch.inference_mode():
        got, want = model.encode_graph(need, compact=True), plain.encode_graph(need, compact=True)
    assert got.keys() >= need.keys() and all(torch.equal(got[t], want[t]) for t in need)
