"""A live batch built from the store equals the offline loader's batch under ``history="all_past"``,
so a served model scores exactly what it scores offline."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from stgnn.data.batch import Batch, SampleLoader
from stgnn.serve.live_batch import make_live_batch, user_context
from stgnn.serve.store import CheckinStore, NewCheckin, UserRows

PADDED = {"poi": "mask", "category": "mask", "ts": "mask", "tz": "mask", "lat": "mask", "lon": "mask",
          "hist_poi": "hist_mask", "hist_category": "hist_mask", "hist_ts": "hist_mask", "hist_tz": "hist_mask"}


def _zero_pads(b: Batch) -> Batch:
    """The offline loader's pads hold check-in 0's values, ours 0: compare real positions only."""
    vals = {f.name: getattr(b, f.name) for f in dataclasses.fields(b)}
    for name, m in PADDED.items():
        vals[name] = torch.where(vals[m], vals[name], torch.zeros_like(vals[name]))
    return Batch(**vals)


def _identity_maps(split):
    return np.arange(split.num_pois), np.arange(split.num_categories)


def _no_tie(split, j: int) -> bool:
    """No earlier check-in of the sample at the target's second ("strictly before at" drops it)."""
    a = split.user_ptr[split.user[j]]
    return not (split.ts[a:j] == split.ts[j]).any()


def _live_for(store, split, targets, max_len, hist_len, known=True):
    pmap, cmap = _identity_maps(split)
    ctxs = []
    for j in targets:
        rows = store.user_rows(str(split.user_ids[split.user[j]]), int(split.ts[j]), 10 ** 6)
        ctxs.append(user_context(rows, pmap, cmap, split.protocol["traj_gap_hours"] * 3600, hist_len))
    return make_live_batch(ctxs, split.user[targets], split.ts[targets], split.tz_offset_min[targets],
                           max_len=max_len, hist_len=hist_len, poi_category=split.poi_category,
                           poi_lat=split.poi_lat, poi_lon=split.poi_lon, target_time_known=known)


def _assert_same(live: Batch, off: Batch) -> None:
    """Every field equal at real positions, bit for bit, but the sample's identity: a live
    request has no split index and no label (``index`` -1, ``target_poi`` 0)."""
    live, off = _zero_pads(live), _zero_pads(off)
    assert (live.index == -1).all() and (live.target_poi == 0).all()
    assert live.target_time_known == off.target_time_known
    for f in dataclasses.fields(Batch):
        if f.name in ("index", "target_poi", "target_time_known"):
            continue
        a, b = getattr(live, f.name), getattr(off, f.name)
        if b is None:
            assert a is None, f.name
            continue
        assert a.dtype == b.dtype, (f.name, a.dtype, b.dtype)
        assert a.shape == b.shape, (f.name, a.shape, b.shape)
        assert torch.equal(a, b), f.name


@pytest.mark.parametrize("max_len,hist_len", [(64, 128), (3, 5), (8, 0)])
def test_live_batch_equals_the_offline_all_past_batch(seeded_store, serve_runs, max_len, hist_len):
    split = serve_runs["split"]
    targets = np.concatenate([split.samples["test"], split.samples["val"], split.samples["train"][::97]])
    targets = np.array([j for j in targets if _no_tie(split, j)])
    assert len(targets) > 100
    loader = SampleLoader(split, targets, history="all_past", max_len=max_len, hist_len=hist_len)
    for chunk in np.array_split(targets, 4):                  # several samples per batch: widths, padding
        _assert_same(_live_for(seeded_store, split, chunk, max_len, hist_len), loader.make_batch(chunk))


def test_hidden_target_time_is_not_in_the_batch(seeded_store, serve_runs):
    split = serve_runs["split"]
    t = split.samples["test"][:5]
    live = _live_for(seeded_store, split, t, 64, 128, known=False)
    _assert_same(live, SampleLoader(split, t, history="all_past", target_time="hidden").make_batch(t))
    assert not live.target_time_known and live.target_ts is None and live.target_tz is None


@pytest.mark.parametrize("name", ["STGNN", "UserHistory"])
def test_served_scores_equal_offline_scores(serve_runs, seeded_store, name, stgnn_loaded, user_history_loaded):
    from stgnn.serve.recommender import Recommender

    loaded = {"STGNN": stgnn_loaded, "UserHistory": user_history_loaded}[name]
    rec = Recommender(loaded, seeded_store)
    split = serve_runs["split"]
    targets = [j for j in split.samples["test"] if _no_tie(split, j)]
    loader = SampleLoader(split, np.array(targets), history="all_past",
                          target_time="known" if loaded.target_time_known else "hidden")
    with torch.inference_mode():
        for j in targets[:25]:
            a = rec.answer(str(split.user_ids[split.user[j]]), int(split.ts[j]), int(split.tz_offset_min[j]))
            offline = loaded.model.score(loader.make_batch(np.array([j])))[0]
            assert torch.equal(a.scores, offline.float()), j


def _rows(poi, ts, starts, complete=True):
    n = len(ts)
    return UserRows(np.asarray(poi, np.int64), np.zeros(n, np.int64), np.asarray(ts, np.int64), np.zeros(n, np.int64),
                    np.asarray(starts, np.int64), complete)


def test_gap_rule_for_live_check_ins_and_dropped_pois():
    day = 86400
    gap = 24 * 3600.0
    pmap, cmap = np.array([0, 1, 2, -1, 4]), np.zeros(1, np.int64)    # POI key 3: the model has no id
    # two seeded check-ins of one trajectory, then live ones: a gap > 24 h starts a new trajectory
    rows = _rows([0, 1, 2, 4, 1], [0, 3600, 3600 + 2 * day, 3600 + 2 * day + 60, 3600 + 2 * day + 120],
                 [1, 0, -1, -1, -1])
    ctx = user_context(rows, pmap, cmap, gap, hist_len=10)
    assert ctx.start == 2 and list(ctx.poi) == [0, 1, 2, 4, 1]
    # exactly 24 h is not a gap (strictly greater, as the protocol)
    rows = _rows([0, 1], [0, day], [1, -1])
    assert user_context(rows, pmap, cmap, gap, 10).start == 0
    # a left-out first check-in passes its trajectory start on to the next kept one
    rows = _rows([0, 3, 1, 2], [0, 2 * day, 2 * day + 60, 2 * day + 120], [1, -1, -1, -1])
    ctx = user_context(rows, pmap, cmap, gap, 10)
    assert list(ctx.poi) == [0, 1, 2] and ctx.start == 1 and ctx.dropped == 1
    # a category name the model does not know: the model's category of the POI
    rows = _rows([0, 1], [0, 60], [1, 0])
    rows.category_key[:] = 5                                       # beyond cat_map
    ctx = user_context(rows, pmap, cmap, gap, 10, poi_category=np.array([7, 8, 9, 9, 9]))
    assert list(ctx.category) == [7, 8]
    # nothing the model knows: a cold start
    assert user_context(_rows([3], [0], [-1]), pmap, cmap, gap, 10) is None


def test_a_truncated_window_asks_for_more():
    gap, pmap, cmap = 24 * 3600.0, np.arange(5), np.zeros(1, np.int64)
    # the window's first row may continue a trajectory that started before the window
    with pytest.raises(LookupError):
        user_context(_rows([0, 1, 2], [0, 60, 120], [-1, -1, -1], complete=False), pmap, cmap, gap, 0)
    # the trajectory starts inside the window but fewer than hist_len rows precede it
    rows = _rows([0, 1, 2], [0, 3 * 86400, 3 * 86400 + 60], [-1, -1, -1], complete=False)
    with pytest.raises(LookupError):
        user_context(rows, pmap, cmap, gap, hist_len=2)
    ctx = user_context(rows, pmap, cmap, gap, hist_len=1)
    assert ctx.start == 1
    # a seeded start flag on the window's first row is known: enough with no history asked
    assert user_context(_rows([0, 1], [0, 60], [1, 0], complete=False), pmap, cmap, gap, 0).start == 0


def test_recommender_reads_long_histories_through_a_small_window(seeded_store, serve_runs, stgnn_loaded):
    """The first read holds hist_len + max_len + 64 rows; longer trajectories are read again, wider."""
    from stgnn.serve.recommender import Recommender

    split = serve_runs["split"]
    rec = Recommender(stgnn_loaded, seeded_store)
    u = int(np.argmax(np.bincount(split.user)))
    raw = str(split.user_ids[u])
    # 300 live check-ins 10 minutes apart: one long current trajectory, longer than the first window
    t0 = int(split.ts[split.user_ptr[u + 1] - 1]) + 3 * 86400
    seeded_store.add_checkins([NewCheckin(id=f"long-{i}", user=raw, poi=str(split.poi_ids[i % split.num_pois]),
                                          ts=t0 + 600 * i, tz=-240) for i in range(300)])
    ctx = rec.context(raw, t0 + 600 * 300)
    assert ctx.prefix_len == 300
    assert ctx.start == split.user_ptr[u + 1] - split.user_ptr[u]           # all seeded rows are history


@pytest.mark.realdata
def test_nyc_live_batches_equal_offline_batches(nyc_filtered, tmp_path):
    """On the real NYC split: every test sample (but those with a prefix check-in at the target's
    own second, which "strictly before at" leaves out) gets the offline all_past batch."""
    from stgnn.data.dataset import prepare
    from stgnn.data.protocol import ProtocolConfig

    split = prepare(str(nyc_filtered), ProtocolConfig(), root=tmp_path / "data")
    with CheckinStore(tmp_path / "nyc.sqlite", durable=False) as store:
        store.seed_from_split(split)
        t = split.samples["test"]
        keep = np.array([_no_tie(split, j) for j in t])
        assert keep.sum() >= 2300 and (~keep).sum() < 30
        targets = t[keep]
        loader = SampleLoader(split, targets, history="all_past")
        for chunk in np.array_split(targets, 12):
            _assert_same(_live_for(store, split, chunk, 64, 128), loader.make_batch(chunk))
