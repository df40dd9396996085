"""The two history settings, checked against their definitions (DESIGN.md, information settings).

* ``history="all_past"``: a sample sees exactly every check-in of its user before its target in
  the split's time order (its earlier trajectories and its own prefix), none at or after it.
* ``history="train_only"``: training-period check-ins of earlier trajectories plus its own prefix.
* a loader that may not pass the target time carries none (zeros).

On the real NYC file the check is the same, except that the rebuilt file holds check-ins of one
user at the same second (times known only to the minute): a prefix may then hold a check-in
stamped with the target's second, at another POI. Nothing visible is ever later than the target.
"""
from __future__ import annotations

import numpy as np
import pytest

from stgnn.data.batch import SampleLoader
from stgnn.data.split import PARTS, Split

EVERYTHING = 10 ** 9


def _visible(split: Split, part: str, history: str, hist_len: int = EVERYTHING) -> list[set[int]]:
    """Per sample, the split indices of the check-ins its batch holds (history + prefix)."""
    targets = split.samples[part]
    batch = SampleLoader(split, part, history=history, hist_len=hist_len, max_len=EVERYTHING).make_batch(targets)
    # identify check-ins by (user, ts, poi): unique in these splits within a user
    key = {(int(u), int(t), int(p)): i for i, (u, t, p) in enumerate(zip(split.user, split.ts, split.poi))}
    out = []
    for b, j in enumerate(targets):
        u = int(split.user[j])
        rows = [(batch.hist_ts[b][batch.hist_mask[b]], batch.hist_poi[b][batch.hist_mask[b]]),
                (batch.ts[b][batch.mask[b]], batch.poi[b][batch.mask[b]])]
        out.append({key[(u, int(t), int(p))] for ts, pois in rows for t, p in zip(ts.tolist(), pois.tolist())})
    return out


def _user_before(split: Split, j: int) -> set[int]:
    """Every check-in of ``j``'s user before ``j`` in the split's (user, time) order."""
    return set(range(int(split.user_ptr[split.user[j]]), int(j)))


@pytest.mark.parametrize("part", ["train", "val", "test"])
def test_all_past_is_every_earlier_checkin_and_nothing_later(synthetic_split: Split, part: str) -> None:
    s = synthetic_split
    for j, seen in zip(s.samples[part], _visible(s, part, "all_past")):
        assert seen == _user_before(s, j)
        assert all(s.ts[i] < s.ts[j] for i in seen)   # the synthetic data has no same-second check-ins


@pytest.mark.parametrize("part", ["val", "test"])
def test_train_only_is_training_history_plus_the_prefix(synthetic_split: Split, part: str) -> None:
    s = synthetic_split
    for j, seen in zip(s.samples[part], _visible(s, part, "train_only")):
        prefix = set(range(int(s.prefix_start(np.array([j]))[0]), int(j)))
        train_before = {i for i in _user_before(s, j) - prefix if s.part[i] == PARTS["train"]}
        assert seen == train_before | prefix
        assert all(s.ts[i] < s.ts[j] for i in seen)
    # the two settings differ for some sample of a user who has earlier val/test check-ins
    if part == "test":
        assert any(a != b for a, b in zip(_visible(s, part, "train_only"), _visible(s, part, "all_past")))


def test_hist_len_keeps_the_most_recent(synthetic_split: Split) -> None:
    s = synthetic_split
    for j, seen in zip(s.samples["test"], _visible(s, "test", "all_past", hist_len=5)):
        prefix = set(range(int(s.prefix_start(np.array([j]))[0]), int(j)))
        assert seen == prefix | set(sorted(_user_before(s, j) - prefix)[-5:])


@pytest.mark.realdata
def test_nyc_all_past_sees_nothing_after_the_target(nyc_filtered) -> None:
    from stgnn.data.protocol import ProtocolConfig, make_split
    from stgnn.data.sources.foursquare import load_tsmc2014

    s = make_split(load_tsmc2014(nyc_filtered), ProtocolConfig(history="all_past"))
    for part in ("val", "test"):
        for j, seen in zip(s.samples[part], _visible(s, part, "all_past")):
            assert seen == _user_before(s, j)
            late = [i for i in seen if s.ts[i] >= s.ts[j]]
            # only same-second check-ins, at other POIs, inside the sample's own trajectory
            assert all(s.ts[i] == s.ts[j] and s.poi[i] != s.poi[j] and s.traj[i] == s.traj[j] for i in late)
