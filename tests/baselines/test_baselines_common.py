"""Conformance checks every baseline must pass, plus the helpers the per-model tests share.

Checks (parametrised over all baselines): ``score`` is ``(B, P)`` and finite; no leakage
(check-ins appended after a val/test sample leave its scores unchanged, and so does zeroing the
target time of a model without ``uses_target_time``); deterministic given the seed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch

from stgnn.baselines import LSTM, MFBPR, Pop, UserHistory
from stgnn.inputs import build_inputs
from stgnn.registry import MODELS, resolve_model as resolve
from stgnn.data.batch import SampleLoader
from stgnn.data.split import PARTS, Split
from stgnn.models.base import Recommender
from stgnn.registry import build_for_split

DAY = 86400
NUM_CATEGORIES = 3

# ----------------------------------------------------------------------------- shared helpers

Visit = tuple[int, float]                 # (poi, time in days)
Trajectory = tuple[int, str, list[Visit]]  # (user, "train"|"val"|"test", visits)


def tiny_split(trajectories: list[Trajectory], num_users: int, num_pois: int) -> Split:
    """A hand-made :class:`Split`; every position >= 1 of a trajectory is a sample of its part.

    POI ``p`` has category ``p % 3``; all time zones are UTC.
    """
    trajectories = sorted(trajectories, key=lambda t: (t[0], t[2][0][1]))
    user, poi, ts, traj, part, traj_ptr = [], [], [], [], [], [0]
    samples: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for k, (u, name, visits) in enumerate(trajectories):
        for pos, (p, day) in enumerate(visits):
            if pos >= 1:
                samples[name].append(len(poi))
            user.append(u), poi.append(p), ts.append(int(round(day * DAY))), traj.append(k)
            part.append(PARTS[name])
        traj_ptr.append(len(poi))
    poi_category = np.arange(num_pois, dtype=np.int64) % NUM_CATEGORIES
    poi_arr = np.asarray(poi, dtype=np.int64)
    user_arr = np.asarray(user, dtype=np.int64)
    return Split(
        name="tiny", protocol={"hand_made": True},
        user_ids=np.asarray([f"u{i}" for i in range(num_users)], dtype=object),
        poi_ids=np.asarray([f"p{i}" for i in range(num_pois)], dtype=object),
        category_names=np.asarray([f"c{i}" for i in range(NUM_CATEGORIES)], dtype=object),
        poi_category=poi_category,
        poi_lat=np.linspace(40.6, 40.8, num_pois), poi_lon=np.linspace(-74.0, -73.9, num_pois),
        poi_text=np.asarray([""] * num_pois, dtype=object),
        user=user_arr, poi=poi_arr, category=poi_category[poi_arr],
        ts=np.asarray(ts, dtype=np.int64), tz_offset_min=np.zeros(len(poi), dtype=np.int32),
        traj=np.asarray(traj, dtype=np.int64), part=np.asarray(part, dtype=np.int8),
        traj_ptr=np.asarray(traj_ptr, dtype=np.int64),
        traj_user=np.asarray([t[0] for t in trajectories], dtype=np.int64),
        user_ptr=np.concatenate([[0], np.cumsum(np.bincount(user_arr, minlength=num_users))]).astype(np.int64),
        samples={k: np.asarray(v, dtype=np.int64) for k, v in samples.items()},
        cuts={"train_end": 20 * DAY, "val_end": 25 * DAY},
    )


def train_steps(model: Recommender, split: Split, *, epochs: int, lr: float = 0.01, batch_size: int = 64,
                seed: int = 0, **loader_kw) -> Recommender:
    """A minimal training loop (Adam on ``model.loss``), seeded; leaves the model in eval mode."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    loader = SampleLoader(split, "train", batch_size=batch_size, shuffle=True, generator=g, **loader_kw)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for batch in loader:
            opt.zero_grad()
            model.loss(batch).backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def ranks(model: Recommender, split: Split, part: str, **loader_kw) -> np.ndarray:
    """``(S,)`` rank of each target among all POIs, ties pessimistic (1 = best)."""
    model.eval()
    out = []
    for batch in SampleLoader(split, part, batch_size=256, **loader_kw):
        s = model.score(batch)                                           # (B, P)
        tgt = s.gather(1, batch.target_poi[:, None])                     # (B, 1)
        out.append((s >= tgt).sum(1).numpy())
    return np.concatenate(out)


def acc_mrr(r: np.ndarray, k: int = 1) -> tuple[float, float]:
    return float((r <= k).mean()), float((1.0 / r).mean())


# ----------------------------------------------------------------------------- fixtures

def _base_trajectories() -> list[Trajectory]:
    """4 users, 8 POIs: routines in training, then val (days 20-25) and test (days 25+)."""
    rng = np.random.default_rng(0)
    trajs: list[Trajectory] = []
    for u in range(4):
        for d in range(0, 20, 2):  # training period
            trajs.append((u, "train", [(int(p), d + 0.1 * i) for i, p in enumerate(rng.integers(0, 6, 4))]))
        trajs.append((u, "val", [(u, 21.0 + u * 0.1), ((u + 1) % 6, 21.05 + u * 0.1), (u + 2, 21.08 + u * 0.1)]))
        trajs.append((u, "test", [(u + 1, 26.0 + u * 0.1), (u + 2, 26.02 + u * 0.1), (u, 26.05 + u * 0.1)]))
    return trajs


def _future_trajectories() -> list[Trajectory]:
    """The base data plus check-ins after every val/test sample (POI 7 made very popular)."""
    trajs = []
    for u, name, visits in _base_trajectories():
        if name == "test":
            visits = visits + [(7, visits[-1][1] + 0.01 * (i + 1)) for i in range(5)]
        trajs.append((u, name, visits))
    for u in range(4):
        trajs.append((u, "test", [(7, 30.0 + u), (6, 30.1 + u), (7, 30.2 + u)]))
    return trajs


@pytest.fixture(scope="module")
def base_split() -> Split:
    return tiny_split(_base_trajectories(), num_users=4, num_pois=8)


@pytest.fixture(scope="module")
def future_split() -> Split:
    return tiny_split(_future_trajectories(), num_users=4, num_pois=8)


FACTORIES: dict[str, Callable[[Split], Recommender]] = {
    "pop": lambda s: build_for_split(Pop, s),
    "user_history": lambda s: build_for_split(UserHistory, s, half_life=2.0, eps=0.01, transition_weight=0.1),
    "mf_bpr": lambda s: build_for_split(MFBPR, s, dim=8),
    "lstm": lambda s: build_for_split(LSTM, s, dim=8, cat_dim=4, time_dim=4, hidden=8),
    "lstm_history": lambda s: build_for_split(LSTM, s, dim=8, cat_dim=4, time_dim=4, hidden=8, use_history=True),
}


def _build(name: str, split: Split, seed: int = 0) -> Recommender:
    torch.manual_seed(seed)
    model = FACTORIES[name](split)
    if model.trainable:
        train_steps(model, split, epochs=2, seed=seed)
    return model.eval()


def _scores_by_key(model: Recommender, split: Split, part: str, *, alone: bool = True,
                   **kw) -> dict[tuple[int, int], torch.Tensor]:
    """Scores of each sample keyed by its (user, target ts), which survive re-indexing.

    ``alone``: score each sample in a batch of its own, so that padding to another sample's
    length cannot change floating-point rounding (tested separately, with a tolerance).
    """
    targets = split.samples[part]
    loader = SampleLoader(split, targets, **kw)
    with torch.no_grad():
        if alone:
            s = torch.cat([model.score(loader.make_batch(targets[i:i + 1])) for i in range(len(targets))])
        else:
            s = model.score(loader.make_batch(targets))
    return {(int(split.user[j]), int(split.ts[j])): s[i] for i, j in enumerate(targets)}


# ----------------------------------------------------------------------------- conformance

@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_shape_and_finite(name: str, base_split: Split) -> None:
    model = _build(name, base_split)
    batch = next(iter(SampleLoader(base_split, "train", batch_size=5)))
    s = model.score(batch)
    assert s.shape == (5, base_split.num_pois)
    assert torch.isfinite(s).all()
    assert s.dtype == torch.float32


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("part", ["val", "test"])
def test_no_leakage_from_future_checkins(name: str, part: str, base_split: Split, future_split: Split) -> None:
    model = _build(name, base_split)
    before = _scores_by_key(model, base_split, part)
    model.prepare(build_inputs(future_split, model.input_spec()))  # statistics recounted: part != 0 ignored
    after = _scores_by_key(model, future_split, part)
    assert set(before) <= set(after)
    for key, s in before.items():
        torch.testing.assert_close(after[key], s, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_padding_does_not_change_scores(name: str, base_split: Split) -> None:
    model = _build(name, base_split)
    alone = _scores_by_key(model, base_split, "train", alone=True)
    batched = _scores_by_key(model, base_split, "train", alone=False)
    for key in alone:
        torch.testing.assert_close(batched[key], alone[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_does_not_read_target_time_unless_flagged(name: str, base_split: Split) -> None:
    model = _build(name, base_split)
    assert not model.uses_target_time
    with_time = _scores_by_key(model, base_split, "test", target_time="known")
    without = _scores_by_key(model, base_split, "test", target_time="hidden")
    for key in with_time:
        torch.testing.assert_close(with_time[key], without[key], rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_deterministic_given_seed(name: str, base_split: Split) -> None:
    a = _scores_by_key(_build(name, base_split, seed=3), base_split, "test")
    b = _scores_by_key(_build(name, base_split, seed=3), base_split, "test")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    if _build(name, base_split).trainable:
        c = _scores_by_key(_build(name, base_split, seed=4), base_split, "test")
        assert any(not torch.equal(a[k], c[k]) for k in a), "the seed must matter for a trained model"


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_capabilities_and_repr(name: str, base_split: Split) -> None:
    model = FACTORIES[name](base_split)
    caps = model.capabilities()
    assert caps["needs_graph"] is False and caps["needs_text"] is False
    assert caps["trainable"] is (name not in ("pop", "user_history"))
    assert f"num_pois={base_split.num_pois}" in repr(model)


def test_resolve() -> None:
    assert resolve("pop") is Pop and resolve("MF-BPR") is MFBPR and resolve("user_history") is UserHistory
    assert resolve(LSTM) is LSTM
    assert resolve("stgnn.baselines.lstm.LSTM") is LSTM
    with pytest.raises(ValueError, match=r"unknown model 'no_such_model'; valid names: .*lstm, mf_bpr, pop"):
        resolve("no_such_model")
    with pytest.raises(TypeError, match="is not a class"):
        resolve("stgnn.baselines.lstm.hour_of_week")
    assert {"pop", "user_history", "mf_bpr", "lstm", "stgnn"} <= set(MODELS)
