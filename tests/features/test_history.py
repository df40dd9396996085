"""The time-of-day kernel and counts visible as of a query time (cross-checked by brute force)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from stgnn.data.split import PARTS
from stgnn.features.history import VisibleCounts, normalise_rows, time_of_day_kernel

HOUR = 3600


def test_time_of_day_kernel_by_hand() -> None:
    monday = 4 * 86400                      # 1970-01-05 was a Monday
    saturday = monday + 5 * 86400
    ts = torch.tensor([[monday + 23 * HOUR + 1800, monday + 9 * HOUR, saturday + 8 * HOUR]])
    tz = torch.zeros_like(ts)
    q_ts, q_tz = torch.tensor([monday + 86400 + 1800]), torch.tensor([0])   # Tuesday 00:30
    k = time_of_day_kernel(ts, tz, q_ts, q_tz, sigma_hours=2.0, weekend_factor=0.5)
    expected = torch.tensor([[math.exp(-1 / 8), math.exp(-(8.5 ** 2) / 8), 0.5 * math.exp(-(7.5 ** 2) / 8)]],
                            dtype=torch.float64)
    torch.testing.assert_close(k, expected)
    # the local clock decides: a +60 min zone shifts the check-in's hour
    k_tz = time_of_day_kernel(ts[:, :1], torch.tensor([[60]]), q_ts, q_tz, 2.0, 0.5)
    torch.testing.assert_close(k_tz, torch.tensor([[math.exp(-0.0)]], dtype=torch.float64))
    with pytest.raises(ValueError, match="sigma_hours"):
        time_of_day_kernel(ts, tz, q_ts, q_tz, 0.0, 0.5)


def _brute_popularity(split, ok, t, P):
    return np.bincount(split.poi[ok & (split.ts < t)], minlength=P).astype(float)


def _brute_transitions(split, ok, src, t, P):
    same = (split.traj[1:] == split.traj[:-1]) & ok[1:] & ok[:-1]
    sel = same & (split.poi[:-1] == src) & (split.ts[1:] < t)
    return np.bincount(split.poi[1:][sel], minlength=P).astype(float)


@pytest.mark.parametrize("history", ["train_only", "all_past"])
def test_visible_counts_match_brute_force(synthetic_split, history: str) -> None:
    s = synthetic_split
    vc = VisibleCounts.from_split(s, history)
    ok = s.part == PARTS["train"] if history == "train_only" else np.ones(s.num_checkins, bool)
    rng = np.random.default_rng(0)
    # query times: check-in times (ties at the bound), a second after them, and outside the data
    pick = rng.choice(s.num_checkins, 40, replace=False)
    t = np.concatenate([s.ts[pick], s.ts[pick[:10]] + 1, [s.ts.min() - 1, s.ts.max() + 1]])
    src = np.concatenate([s.poi[pick], s.poi[pick[:10]], s.poi[pick[:2]]])
    pop = vc.popularity(torch.from_numpy(t))
    trans = vc.transitions(torch.from_numpy(src), torch.from_numpy(t))
    for i in range(len(t)):
        np.testing.assert_array_equal(pop[i].numpy(), _brute_popularity(s, ok, t[i], s.num_pois))
        np.testing.assert_array_equal(trans[i].numpy(), _brute_transitions(s, ok, src[i], t[i], s.num_pois))
    assert pop[-2].sum() == 0 and pop[-1].sum() == ok.sum()


def test_visible_counts_train_only_ignores_later_periods(synthetic_split) -> None:
    s = synthetic_split
    late = int(s.ts.max() + 1)
    train_pop = VisibleCounts.from_split(s, "train_only").popularity(torch.tensor([late]))
    all_pop = VisibleCounts.from_split(s, "all_past").popularity(torch.tensor([late]))
    assert train_pop.sum() == (s.part == 0).sum() < all_pop.sum() == s.num_checkins
    # moving every val/test check-in elsewhere changes nothing under train_only
    moved = dataclasses.replace(s, poi=np.where(s.part > 0, (s.poi + 1) % s.num_pois, s.poi))
    torch.testing.assert_close(VisibleCounts.from_split(moved, "train_only").popularity(torch.tensor([late])), train_pop)
    with pytest.raises(ValueError, match="history"):
        VisibleCounts.from_split(s, "everything")
    # what the run's inputs save reads back the same
    again = VisibleCounts.from_state(VisibleCounts.from_split(s, "all_past").to_state())
    torch.testing.assert_close(again.popularity(torch.tensor([late])), all_pop)


def test_normalise_rows() -> None:
    x = torch.tensor([[1.0, 3.0], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(normalise_rows(x), torch.tensor([[0.25, 0.75], [0.0, 0.0]], dtype=torch.float64))
    fb = torch.tensor([0.5, 0.5])
    torch.testing.assert_close(normalise_rows(x, fb), torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=torch.float64))
