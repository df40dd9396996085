"""STAN: interval embeddings, distances, chunked full scoring, target-time handling, leakage."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from modelkit import metrics_vs_pop, perturb, train_steps

from stgnn.baselines.stan import STAN, IntervalEmbedding, great_circle_km, merge_history
from stgnn.data.batch import SampleLoader
from stgnn.data.split import PARTS, Split
from stgnn.features.space import haversine, unit_vectors
from stgnn.registry import build_for_split

MAX_LEN = 16


@pytest.fixture(scope="module")
def split(planted_split: Split) -> Split:
    return planted_split


def _model(split: Split, seed: int = 0, **kw) -> STAN:
    torch.manual_seed(seed)
    model = build_for_split(STAN, split, **{"dim": 16, "history": 8, "max_len": MAX_LEN, **kw})
    return model


def _train(split: Split, epochs: int, lr: float = 1e-2, seed: int = 0, max_steps: int = 10 ** 9) -> STAN:
    model = _model(split, seed, dim=32)
    return train_steps(model, split, epochs, lr, seed, max_steps, max_len=MAX_LEN)


def test_interval_embedding_interpolates_linearly() -> None:
    emb = IntervalEmbedding(4)
    with torch.no_grad():
        emb.v_lo.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0]))    # sum 2
        emb.v_hi.copy_(torch.tensor([3.0, 0.0, 0.0, 3.0]))    # sum 6
        emb.bounds.copy_(torch.tensor([0.0, 10.0]))
    x = torch.tensor([0.0, 2.5, 5.0, 10.0, -3.0, 20.0])
    # 2 + (6 - 2) * x / 10, clamped to [0, 10]
    torch.testing.assert_close(emb(x), torch.tensor([2.0, 3.0, 4.0, 6.0, 2.0, 6.0]))


def test_great_circle_matches_haversine(split: Split) -> None:
    lat, lon = split.poi_lat[:7], split.poi_lon[:7]
    xyz = torch.from_numpy(unit_vectors(lat, lon))
    got = great_circle_km(xyz[None, :3], xyz[None])[0]                        # (3, 7)
    want = haversine(lat[:3, None], lon[:3, None], lat[None, :], lon[None, :])
    np.testing.assert_allclose(got.numpy(), want, atol=1e-4)                  # 10 cm
    # New York to London, ~5,570 km
    ny_ldn = torch.from_numpy(unit_vectors(np.array([40.7128, 51.5074]), np.array([-74.0060, -0.1278])))
    assert abs(float(great_circle_km(ny_ldn[:1], ny_ldn[1:])) - 5570) < 10


def test_bounds_come_from_training_period_only(split: Split) -> None:
    model = _model(split)
    changed = _model(perturb(split, (PARTS["val"], PARTS["test"])))
    torch.testing.assert_close(model.space.bounds, changed.space.bounds, rtol=0, atol=0)
    torch.testing.assert_close(model.time.bounds, changed.time.bounds, rtol=0, atol=0)
    # time: longest first-to-last span of training check-ins within one trajectory, + 1 day
    train = split.part == PARTS["train"]
    spans = [np.ptp(split.ts[train & (split.traj == t)]) for t in np.unique(split.traj[train])]
    assert model.time.bounds.tolist() == pytest.approx([0.0, max(spans) / 3600 + 24])
    # space: twice the largest distance of a training POI from the training POIs' centroid
    lo, hi = model.space.bounds.tolist()
    far = haversine(split.poi_lat[:, None], split.poi_lon[:, None], split.poi_lat[None], split.poi_lon[None]).max()
    assert lo == 0 and far <= hi <= 2 * far


def test_merge_history_keeps_most_recent(split: Split) -> None:
    loader = SampleLoader(split, "test", max_len=4, hist_len=6)
    batch = loader.make_batch(loader.targets[:8])
    poi, ts, _, mask = merge_history(batch, history=3, max_len=5)
    for i in range(len(batch)):
        hist = batch.hist_poi[i][batch.hist_mask[i]][-3:]
        pref = batch.poi[i][batch.mask[i]]
        want = torch.cat((hist, pref))[-5:]
        assert torch.equal(poi[i][mask[i]], want)
        assert bool(mask[i, :len(want)].all()) and not bool(mask[i, len(want):].any())
        assert bool((ts[i][mask[i]].diff() >= 0).all())                        # oldest first


def test_chunked_scores_equal_unchunked_over_all_pois(split: Split) -> None:
    model = _model(split).eval()
    batch = SampleLoader(split, "test", max_len=MAX_LEN).make_batch(split.samples["test"][:40])
    with torch.no_grad():
        whole = model.score(batch)
        model.chunk = 7                                                       # P = 46: 7 chunks
        chunked = model.score(batch)
    assert whole.shape == (40, split.num_pois) and torch.isfinite(whole).all()
    torch.testing.assert_close(chunked, whole)
    # training path (checkpointed chunks) gives the same numbers and gradients flow
    model.train()
    model.drop.p = 0.0
    out = model.score(batch)
    torch.testing.assert_close(out, whole)
    out.sum().backward()
    assert model.emb_poi.weight.grad.abs().sum() > 0 and model.space.v_hi.grad.abs().sum() > 0


def test_hidden_target_time_means_last_checkin(split: Split) -> None:
    model = _model(split).eval()
    assert STAN.uses_target_time
    targets = split.samples["test"][:30]
    hidden = SampleLoader(split, "test", max_len=MAX_LEN, target_time="hidden").make_batch(targets)
    seen = SampleLoader(split, "test", max_len=MAX_LEN).make_batch(targets)
    assert hidden.target_ts is None and not hidden.target_time_known and (seen.target_ts > 0).all()
    with torch.no_grad():
        s_hidden = model.score(hidden)
        s_seen = model.score(seen)
        seen.target_ts, seen.target_tz = hidden.query_time()   # the last prefix check-in's time
        s_last = model.score(seen)
    torch.testing.assert_close(s_hidden, s_last)
    assert not torch.allclose(s_hidden, s_seen)                               # target time is used


def test_beats_popularity(split: Split) -> None:
    got, base = metrics_vs_pop(_train(split, epochs=6), split, max_len=MAX_LEN)
    assert got["MRR"] > base["MRR"] + 0.1
    assert got["Acc@1"] > base["Acc@1"] + 0.05
