"""Profiles and trajectory texts on a hand-made split (New York time, UTC-4 in April 2012)."""
import calendar
import dataclasses

import numpy as np
import pytest

from stgnn.data.batch import SampleLoader
from stgnn.data.split import Split
from stgnn.features.profiles import (batch_trajectory_texts, default_region_labels, hour_window_text, poi_names,
                                     poi_profiles, poi_texts, poi_train_stats, render_trajectory, trajectory_texts)

TZ = -240
REGIONS = ["Midtown", "Midtown", "East Village"]
COFFEE, OFFICE, BAR = 0, 1, 2


def local(day: int, hh: int, mm: int) -> int:
    """UTC seconds of local New York time on 2012-04-<day> (9 = Monday)."""
    return calendar.timegm((2012, 4, day, hh, mm, 0)) - TZ * 60


def make_split(rows: list[tuple[int, int, int, int]]) -> Split:
    """rows: (user, poi, ts, part); one trajectory per user; samples = last check-in per part."""
    rows = sorted(rows, key=lambda r: (r[0], r[2]))
    user, poi, ts, part = (np.array(c) for c in zip(*rows))
    n_users = int(user.max()) + 1
    user_ptr = np.searchsorted(user, np.arange(n_users + 1)).astype(np.int64)
    cats = np.array([0, 1, 2])
    samples = {name: np.array([j for j in range(len(rows)) if part[j] == k and j > 0 and user[j - 1] == user[j]],
                              dtype=np.int64) for name, k in (("train", 0), ("val", 1), ("test", 2))}
    return Split(
        name="hand", protocol={}, user_ids=np.array([f"u{i}" for i in range(n_users)], dtype=object),
        poi_ids=np.array(["p0", "p1", "p2"], dtype=object),
        category_names=np.array(["Coffee Shop", "Office", "Bar"], dtype=object), poi_category=cats,
        poi_lat=np.array([40.755, 40.754, 40.727]), poi_lon=np.array([-73.986, -73.984, -73.985]),
        poi_text=np.array(["Joe's", "", ""], dtype=object), user=user.astype(np.int64), poi=poi.astype(np.int64),
        category=cats[poi].astype(np.int64), ts=ts.astype(np.int64),
        tz_offset_min=np.full(len(rows), TZ, np.int32), traj=user.astype(np.int64),
        part=part.astype(np.int8), traj_ptr=user_ptr.copy(), traj_user=np.arange(n_users, dtype=np.int64),
        user_ptr=user_ptr, samples=samples)


def week_one() -> list[tuple[int, int, int, int]]:
    rows = []
    for day in range(9, 14):  # Mon..Fri: user 0 has coffee then goes to the office
        rows += [(0, COFFEE, local(day, 8, 30), 0), (0, OFFICE, local(day, 9, 10), 0)]
    rows += [(1, COFFEE, local(9, 9, 40), 0), (1, COFFEE, local(10, 9, 40), 0)]
    rows += [(1, BAR, local(14, 21, 0), 0), (1, BAR, local(14, 22, 30), 0), (1, BAR, local(15, 22, 0), 0)]
    return rows


def week_two() -> list[tuple[int, int, int, int]]:
    """Later check-ins (val/test) that would change every profile if they leaked in."""
    rows = []
    for day in (21, 22):  # Sat, Sun evenings, many visits
        for m in range(0, 60, 10):
            rows += [(0, OFFICE, local(day, 18, m), 1), (1, COFFEE, local(day, 18, m), 2)]
    rows += [(2, BAR, local(16, 7, 0), 2), (2, BAR, local(16, 7, 30), 2)]
    return rows


@pytest.fixture()
def split() -> Split:
    return make_split(week_one() + week_two())


def test_hour_window_text():
    assert [hour_window_text(h) for h in (0, 8, 10, 11, 12, 22, 23)] == [
        "12–2 am", "8–10 am", "10 am–12 pm", "11 am–1 pm", "12–2 pm", "10 pm–12 am", "11 pm–1 am"]


def test_train_stats_count_training_only(split):
    st = poi_train_stats(split)
    assert st.visits.tolist() == [7, 5, 3]
    assert st.hour_counts[COFFEE, 8] == 5 and st.hour_counts[COFFEE, 9] == 2
    assert st.weekend.tolist() == [0, 0, 3]
    assert st.users.tolist() == [2, 1, 1]


def test_profiles_hand_checked(split):
    # visits 7, 5, 3: the 90 % quantile is 6.6 and the 60 % one 5.4
    assert poi_profiles(split, REGIONS) == [
        "Coffee Shop (Joe's), Midtown; busiest 8–10 am on weekdays; very popular.",
        "Office, Midtown; busiest 8–10 am on weekdays; quiet.",
        "Bar, East Village; busiest 9–11 pm on weekends; quiet.",
    ]
    assert poi_profiles(split, REGIONS, min_visits=6)[2] == "Bar, East Village; rarely visited."
    assert poi_texts(split) == ["Coffee Shop (Joe's)", "Office", "Bar"] == poi_names(split)
    with pytest.raises(ValueError, match="3 POIs"):
        poi_profiles(split, ["x"])


def test_future_checkins_never_change_profiles(split):
    base = poi_profiles(split), poi_profiles(split, REGIONS)
    future = split.part != 0
    rng = np.random.default_rng(0)
    changed = dataclasses.replace(split, poi=split.poi.copy(), ts=split.ts.copy(),
                                  tz_offset_min=split.tz_offset_min.copy())
    changed.poi[future] = rng.integers(0, 3, future.sum())
    changed.ts[future] += rng.integers(0, 7 * 86400, future.sum())
    changed.tz_offset_min[future] = 0
    assert (poi_profiles(changed), poi_profiles(changed, REGIONS)) == base
    without_future = make_split(week_one())
    assert (poi_profiles(without_future), poi_profiles(without_future, REGIONS)) == base
    # control: the same edit on training rows does change them (the test can fail)
    leaked = dataclasses.replace(split, part=np.zeros_like(split.part))
    assert poi_profiles(leaked, REGIONS) != base[1]


def test_default_region_labels(split):
    labels = default_region_labels(split)  # centre = median of training POIs = (40.754, -73.985)
    assert labels == ["near the centre", "near the centre", "3 km south of the centre"]


def test_render_and_trajectory_texts(split):
    names = poi_names(split)
    # user 0's 4th check-in (Tue 09:10 office) as target: prefix is Mon 08:30, Mon 09:10, Tue 08:30
    target = np.array([3])
    expected = "Mon 08:30 Coffee Shop (Joe's) → 09:10 Office → Tue 08:30 Coffee Shop (Joe's)"
    assert trajectory_texts(split, target) == [expected]
    assert trajectory_texts(split, target, max_items=2) == ["Mon 09:10 Office → Tue 08:30 Coffee Shop (Joe's)"]
    assert trajectory_texts(split, target, region_labels=REGIONS, max_items=1) == [
        "Tue 08:30 Coffee Shop (Joe's), Midtown"]
    assert render_trajectory(np.array([BAR]), np.array([local(14, 23, 5)]), np.array([TZ]), names) == "Sat 23:05 Bar"


def test_batch_texts_match_split_texts(split):
    targets = np.array([3, 9, 12])
    batch = SampleLoader(split, targets, batch_size=8, hist_len=4).make_batch(targets)
    names = poi_names(split)
    assert batch_trajectory_texts(batch, names) == trajectory_texts(split, targets, names, max_items=64)
    assert batch_trajectory_texts(batch, names, source="history") == [""] * 3  # one trajectory per user
    with pytest.raises(ValueError):
        batch_trajectory_texts(batch, names, source="target")


def test_unknown_category_reads_place(split):
    odd = dataclasses.replace(split, category_names=np.array(["unknown", "", "Bar"], dtype=object),
                              poi_text=np.array(["", "Acme", ""], dtype=object))
    assert poi_names(odd) == ["Place", "Place (Acme)", "Bar"]


@pytest.mark.realdata
def test_nyc_profiles_use_training_checkins_only(nyc_filtered):
    from stgnn.data.protocol import ProtocolConfig, make_split
    from stgnn.data.sources.foursquare import load_tsmc2014

    nyc = make_split(load_tsmc2014(nyc_filtered), ProtocolConfig())
    profiles = poi_profiles(nyc)
    assert len(profiles) == nyc.num_pois and len(set(profiles)) > 0.9 * nyc.num_pois
    future = nyc.part != 0
    assert future.sum() > 10_000
    scrambled = dataclasses.replace(nyc, poi=nyc.poi.copy(), ts=nyc.ts.copy())
    scrambled.poi[future] = np.random.default_rng(0).permutation(nyc.poi[future])
    scrambled.ts[future] += 3 * 3600
    assert poi_profiles(scrambled) == profiles


def test_user_intent_vectors_encode_the_rendered_prefix(split):
    from stgnn.features.profiles import user_intent_vectors

    class Recorder:
        def __init__(self):
            self.seen = []

        def encode(self, texts):
            import torch

            self.seen = list(texts)
            return torch.arange(len(texts), dtype=torch.float32)[:, None].repeat(1, 3)

    targets = split.samples["test"]
    enc = Recorder()
    vecs = user_intent_vectors(split, targets, enc)
    assert vecs.shape == (len(targets), 3)
    assert enc.seen == trajectory_texts(split, targets)


def test_neighbour_profiles_name_training_predecessors_and_successors(split):
    from stgnn.features.profiles import neighbour_profiles

    base = poi_profiles(split, REGIONS)
    # training transitions: user 0 Coffee->Office x5, Office->Coffee x4; user 1 Coffee->Coffee, Coffee->Bar,
    # Bar->Bar x2 (the val/test weeks would add Office->Office and Coffee->Coffee runs)
    assert neighbour_profiles(split, base) == [
        base[0][:-1] + "; often visited after Office or Coffee Shop; often followed by Office or Coffee Shop.",
        base[1][:-1] + "; often visited after Coffee Shop; often followed by Coffee Shop.",
        base[2][:-1] + "; often visited after Bar or Coffee Shop; often followed by Bar.",
    ]
    assert poi_texts(split, "neighbours", REGIONS) == neighbour_profiles(split, base)
    assert neighbour_profiles(make_split(week_one()), base) == neighbour_profiles(split, base)   # future unused
    with pytest.raises(ValueError, match="text_profile='rich'"):
        poi_texts(split, "rich")
