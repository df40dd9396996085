"""Helpers every model test shares: hand-made splits, a minimal training loop, ranks, perturbations.

Imported as ``from modelkit import ...`` (``tests/`` is on ``sys.path`` through its conftest);
not a test file. The checks every model must pass live in ``tests/test_registry.py``.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from stgnn.data.batch import SampleLoader
from stgnn.data.split import PARTS, Split
from stgnn.models.base import Recommender
from stgnn.registry import build_for_split

DAY = 86400
NUM_CATEGORIES = 3

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


def train_steps(model: Recommender, split: Split, epochs: int, lr: float = 0.01, seed: int = 0,
                max_steps: int = 10 ** 9, batch_size: int = 64, reseed: bool = False, **loader_kw) -> Recommender:
    """Adam over shuffled training batches (``loader_kw`` go to :class:`SampleLoader`; the shuffle
    is seeded by ``seed``, and so is torch's RNG when ``reseed``); leaves the model in eval mode."""
    if reseed:
        torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = SampleLoader(split, "train", batch_size=batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(seed), **loader_kw)
    model.train()
    for _ in range(epochs):
        for step, batch in enumerate(loader):
            if step == max_steps:
                break
            loss = model.loss(batch)
            opt.zero_grad()
            loss.backward()
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


def perturb(split: Split, parts: tuple[int, ...], seed: int = 0) -> Split:
    """A copy whose check-ins in ``parts`` go to random POIs (the future, rewritten)."""
    rng = np.random.default_rng(seed)
    sel = np.isin(split.part, parts)
    poi = split.poi.copy()
    poi[sel] = rng.integers(0, split.num_pois, int(sel.sum()))
    return dataclasses.replace(split, poi=poi, category=split.poi_category[poi])


def metrics_vs_pop(model: Recommender, split: Split, **loader_kw) -> tuple[dict, dict]:
    """``(model's test metrics, Pop's test metrics)`` on the same samples."""
    from stgnn.baselines.pop import Pop
    from stgnn.eval.evaluate import evaluate

    test = SampleLoader(split, "test", batch_size=256, **loader_kw)
    return evaluate(model, test)[0], evaluate(build_for_split(Pop, split), test)[0]


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an operator returns (a memory bound
    that does not depend on the allocator)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out
