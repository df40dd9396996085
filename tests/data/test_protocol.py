"""Protocols on tiny hand-made tables, with splits checked by hand (exact arrays)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stgnn.data.protocol import ProtocolConfig, check_split, make_split
from stgnn.data.schema import CheckinTable
from stgnn.data.split import Split

H = 3600


def table(rows: list[tuple[str, str, float]], cats: dict[str, str] | None = None) -> CheckinTable:
    """``(user, poi, hour)`` rows -> CheckinTable; POI coordinates/categories derived from its id."""
    cats = cats or {}
    users, pois, hours = zip(*rows)
    return CheckinTable(pd.DataFrame({
        "user": users, "poi": pois, "category": [cats.get(p, "cat_" + p) for p in pois],
        "lat": [40.0 + ord(p[-1]) / 100 for p in pois], "lon": [-74.0 for _ in pois],
        "ts": [int(h * H) for h in hours], "tz_offset_min": [-240] * len(rows), "poi_text": [""] * len(rows),
    }), name="hand")


# a: [x0 y1 z2] [x50 y51] [z100: single]; b: [y3 x4] [z60 x61 y62] [w70: single]; c: [x6]
DEFAULT_ROWS = [("a", "x", 0), ("a", "y", 1), ("a", "z", 2), ("a", "x", 50), ("a", "y", 51), ("a", "z", 100),
                ("b", "y", 3), ("b", "x", 4), ("b", "z", 60), ("b", "x", 61), ("b", "y", 62), ("b", "w", 70),
                ("c", "x", 6)]


def test_default_protocol_exact_arrays() -> None:
    s = make_split(table(DEFAULT_ROWS), ProtocolConfig(min_user_checkins=2, min_poi_checkins=2))
    check_split(s)
    # Filters: POI w (1 check-in) first, then user c (1 check-in).
    assert s.stats["removed_by_poi_filter"] == 1 and s.stats["removed_by_user_filter"] == 1
    assert s.stats["after_filter"] == {"users": 2, "pois": 3, "checkins": 11}
    # 11 check-ins sorted by time: position int(8.8)=8 is 61 h, int(9.9)=9 is 62 h.
    assert s.cuts == {"train_end": 61 * H, "val_end": 62 * H}
    # The single a@100h is removed after the cut (STHGCN's isolated check-ins).
    assert s.stats["short_trajectories_removed"] == 1
    assert list(s.user_ids) == ["a", "b"] and list(s.poi_ids) == ["x", "y", "z"]
    assert list(s.category_names) == ["cat_x", "cat_y", "cat_z"]
    np.testing.assert_array_equal(s.user, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(s.poi, [0, 1, 2, 0, 1, 1, 0, 2, 0, 1])
    np.testing.assert_array_equal(s.ts // H, [0, 1, 2, 50, 51, 3, 4, 60, 61, 62])
    np.testing.assert_array_equal(s.part, [0, 0, 0, 0, 0, 0, 0, 0, 1, 2])
    np.testing.assert_array_equal(s.traj_ptr, [0, 3, 5, 7, 10])
    np.testing.assert_array_equal(s.traj, [0, 0, 0, 1, 1, 2, 2, 3, 3, 3])
    np.testing.assert_array_equal(s.traj_user, [0, 0, 1, 1])
    np.testing.assert_array_equal(s.user_ptr, [0, 5, 10])
    # Train: every train check-in after the first of its trajectory; b's spanning trajectory
    # ends in test, so it is one test sample (its val check-in is prefix only).
    np.testing.assert_array_equal(s.samples["train"], [1, 2, 4, 6])
    np.testing.assert_array_equal(s.samples["val"], [])
    np.testing.assert_array_equal(s.samples["test"], [9])
    np.testing.assert_array_equal(s.prefix_start(s.samples["test"]), [7])
    assert s.flags["revisit"].tolist() == [True] and s.flags["cold_poi"].tolist() == [False]
    np.testing.assert_array_equal(s.poi_category, [0, 1, 2])
    np.testing.assert_allclose(s.poi_lat, [41.20, 41.21, 41.22])
    assert s.stats["test"]["samples"] == 1 and s.stats["train"]["checkins"] == 8


def test_no_eval_checkin_before_train_cut_and_train_before_it() -> None:
    rng = np.random.default_rng(1)
    rows = [(f"u{rng.integers(12)}", f"p{rng.integers(30)}", float(h)) for h in np.sort(rng.uniform(0, 2000, 900))]
    s = make_split(table(rows), ProtocolConfig(min_user_checkins=3, min_poi_checkins=3))
    check_split(s)
    assert np.all(s.ts[s.part == 0] < s.cuts["train_end"])
    assert np.all(s.ts[s.part > 0] >= s.cuts["train_end"])
    assert np.all(s.ts[s.part == 2] >= s.cuts["val_end"])
    # Every val/test target is the last check-in of its trajectory.
    for k in ("val", "test"):
        t = s.samples[k]
        assert np.all(s.traj_ptr[s.traj[t] + 1] - 1 == t)
        # Seen in training (STHGCN rule: among the train samples).
        assert set(s.poi[t]) <= set(s.poi[s.samples["train"]])
        assert set(s.user[t]) <= set(s.user[s.samples["train"]])


# u1: [p1 p2] [p2 p1] train; [p2 p3* p1] val; [p1 p4*] test; [p3* p1] test; u2*: [p1 p2] test.
UNSEEN_ROWS = [("u1", "p1", 0), ("u1", "p2", 1), ("u1", "p2", 30), ("u1", "p1", 31),
               ("u1", "p2", 100), ("u1", "p3", 100.5), ("u1", "p1", 101),
               ("u2", "p1", 102), ("u2", "p2", 103), ("u1", "p1", 150), ("u1", "p4", 151),
               ("u1", "p3", 200), ("u1", "p1", 201)]
UNSEEN_CFG = dict(min_user_checkins=1, min_poi_checkins=1, fractions=(0.35, 0.25, 0.4))


def test_unseen_users_and_pois_removed() -> None:
    s = make_split(table(UNSEEN_ROWS), ProtocolConfig(**UNSEEN_CFG))
    check_split(s)
    assert s.cuts == {"train_end": 100 * H, "val_end": 102 * H}
    assert s.stats["test_candidates"] == 3
    assert s.stats["test_removed_unseen_user"] == 1 and s.stats["test_removed_unseen_poi"] == 1
    # p3@200 dropped as unseen context leaves p1@201 with no prefix.
    assert s.stats["test_removed_prefix_emptied"] == 1
    assert s.stats["unseen_context_checkins"] == 5
    assert list(s.user_ids) == ["u1"] and list(s.poi_ids) == ["p1", "p2"]
    np.testing.assert_array_equal(s.ts / H, [0, 1, 30, 31, 100, 101, 150, 201])
    np.testing.assert_array_equal(s.poi, [0, 1, 1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(s.part, [0, 0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(s.traj_ptr, [0, 2, 4, 6, 7, 8])
    np.testing.assert_array_equal(s.samples["train"], [1, 3])
    np.testing.assert_array_equal(s.samples["val"], [5])
    np.testing.assert_array_equal(s.samples["test"], [])


def test_unseen_context_keep_marks_part_minus_one() -> None:
    s = make_split(table(UNSEEN_ROWS), ProtocolConfig(**UNSEEN_CFG, unseen_context="keep"))
    check_split(s)
    assert list(s.poi_ids) == ["p1", "p2", "p3", "p4"] and list(s.user_ids) == ["u1", "u2"]
    # u1's 11 check-ins then u2's 2; unseen ones (p3, p4, all of u2) are context only.
    np.testing.assert_array_equal(s.part, [0, 0, 0, 0, 1, -1, 1, 2, -1, -1, 2, -1, -1])
    np.testing.assert_array_equal(s.samples["val"], [6])
    # p1@201 keeps its prefix (p3@200, context) so it stays a test sample.
    np.testing.assert_array_equal(s.samples["test"], [10])
    assert s.stats["context"]["checkins"] == 5


def test_cold_start_keeps_and_flags() -> None:
    s = make_split(table(UNSEEN_ROWS), ProtocolConfig(**UNSEEN_CFG, keep_unseen=True))
    check_split(s)
    assert list(s.poi_ids) == ["p1", "p2", "p3", "p4"] and list(s.user_ids) == ["u1", "u2"]
    np.testing.assert_array_equal(s.part, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    np.testing.assert_array_equal(s.samples["train"], [1, 3])
    np.testing.assert_array_equal(s.samples["val"], [6])
    np.testing.assert_array_equal(s.samples["test"], [8, 10, 12])  # u1 p4@151, u1 p1@201, u2 p2@103
    assert s.flags["cold_user"].tolist() == [False, False, True]
    assert s.flags["cold_poi"].tolist() == [True, False, False]
    assert s.flags["revisit"].tolist() == [False, True, False]
    assert s.flags["val_cold_poi"].tolist() == [False] and s.flags["val_revisit"].tolist() == [True]
    # Cold POIs/users have ids but no training check-in.
    assert not np.isin([2, 3], s.poi[s.part == 0]).any() and not (s.user[s.part == 0] == 1).any()
    assert s.stats["test"]["cold_user"] == 1 and s.stats["test"]["cold_poi"] == 1


def test_seen_from_train_targets_vs_checkins() -> None:
    # p1 appears in training only as a trajectory's first check-in: unseen under STHGCN's rule.
    rows = [("u", "p1", 0), ("u", "p2", 1), ("u", "p2", 100), ("u", "p1", 101)]
    cfg = dict(min_user_checkins=1, min_poi_checkins=1, fractions=(0.5, 0.0, 0.5))
    assert len(make_split(table(rows), ProtocolConfig(**cfg)).samples["test"]) == 0
    s = make_split(table(rows), ProtocolConfig(**cfg, seen_from="train_checkins"))
    np.testing.assert_array_equal(s.samples["test"], [3])


def test_leave_last() -> None:
    rows = [("a", "x", 0), ("a", "y", 1), ("a", "y", 30), ("a", "x", 31), ("a", "x", 60), ("a", "y", 61),
            ("b", "x", 2), ("b", "y", 3), ("b", "y", 40), ("b", "x", 41), ("c", "y", 5), ("c", "x", 6)]
    s = make_split(table(rows), ProtocolConfig(protocol="leave_last", min_user_checkins=1, min_poi_checkins=1))
    check_split(s)
    np.testing.assert_array_equal(s.part, [0, 0, 1, 1, 2, 2, 0, 0, 2, 2, 0, 0])
    np.testing.assert_array_equal(s.samples["train"], [1, 7, 11])
    np.testing.assert_array_equal(s.samples["val"], [3])
    np.testing.assert_array_equal(s.samples["test"], [5, 9])
    assert s.cuts == {}


@pytest.mark.parametrize("span,parts,train,test", [
    # a: [y0.5 z1.5]; b: [x0 y1 | z2 y3] crosses the train cut at 2 h.
    ("per_checkin", [0, 0, 0, 0, 2, 2], [1, 3], [5]),
    ("first", [0, 0, 0, 0, 0, 0], [1, 3, 4, 5], []),
    ("last", [0, 0, 2, 2, 2, 2], [1], [5]),
    ("split", [0, 0, 0, 0, 2, 2], [1, 3], [5]),
])
def test_span_policies(span: str, parts: list[int], train: list[int], test: list[int]) -> None:
    rows = [("b", "x", 0), ("b", "y", 1), ("b", "z", 2), ("b", "y", 3), ("a", "y", 0.5), ("a", "z", 1.5)]
    s = make_split(table(rows), ProtocolConfig(min_user_checkins=1, min_poi_checkins=1, fractions=(0.7, 0.0, 0.3),
                                               keep_unseen=True, span=span))
    check_split(s)
    assert s.cuts["train_end"] == 2 * H
    np.testing.assert_array_equal(s.part, parts)
    np.testing.assert_array_equal(s.samples["train"], train)
    np.testing.assert_array_equal(s.samples["test"], test)
    assert s.num_trajectories == (3 if span == "split" else 2)


def test_filter_rounds_fixpoint() -> None:
    # One pass drops POI q (1 check-in), then user v falls to 1 check-in; a 2nd pass drops v,
    # which makes POI p fall to 1 check-in; the fixpoint drops it too.
    rows = [("v", "q", 0), ("v", "p", 1), ("w", "p", 2), ("w", "r", 3), ("w", "r", 4), ("z", "r", 5), ("z", "r", 6)]
    one = make_split(table(rows), ProtocolConfig(min_user_checkins=2, min_poi_checkins=2, min_traj_len=1))
    fix = make_split(table(rows), ProtocolConfig(min_user_checkins=2, min_poi_checkins=2, min_traj_len=1,
                                                 filter_rounds=0))
    assert one.stats["after_filter"] == {"users": 2, "pois": 2, "checkins": 5}
    assert one.stats["removed_by_poi_filter"] == 1 and one.stats["removed_by_user_filter"] == 1
    assert fix.stats["after_filter"] == {"users": 2, "pois": 1, "checkins": 4}
    assert fix.stats["filter_rounds_run"] == 3


def test_deterministic_and_roundtrip(tmp_path) -> None:
    rng = np.random.default_rng(2)
    rows = [(f"u{rng.integers(9)}", f"p{rng.integers(20)}", float(h)) for h in rng.uniform(0, 900, 500)]
    cfg = ProtocolConfig(min_user_checkins=3, min_poi_checkins=3)
    a = make_split(table(rows), cfg)
    b = make_split(table(rows[::-1]), cfg)  # input row order must not matter
    assert a.fingerprint() == b.fingerprint()
    a.save(tmp_path / "s.npz")
    c = Split.load(tmp_path / "s.npz")
    assert c.fingerprint() == a.fingerprint()
    for f in ("user", "poi", "ts", "traj_ptr", "user_ptr", "part", "poi_lat"):
        np.testing.assert_array_equal(getattr(c, f), getattr(a, f))
    assert list(c.poi_ids) == list(a.poi_ids) and c.stats == a.stats and c.cuts == a.cuts
    for k in a.flags:
        np.testing.assert_array_equal(c.flags[k], a.flags[k])
    other = make_split(table(rows), ProtocolConfig(min_user_checkins=3, min_poi_checkins=3, min_eval_prefix=2))
    assert other.fingerprint() != a.fingerprint()


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="span"):
        ProtocolConfig(span="middle")
    with pytest.raises(ValueError, match="fractions"):
        ProtocolConfig(fractions=(0.8, 0.1, 0.2))
    cfg = ProtocolConfig(keep_unseen=True)
    assert ProtocolConfig.from_dict(cfg.to_dict()) == cfg


def test_synthetic_split_fixture(synthetic_split, synthetic_table) -> None:
    s = synthetic_split
    check_split(s)
    assert s.stats["rows_in"] == len(synthetic_table)
    assert np.all(s.ts[s.part == 0] < s.cuts["train_end"]) and np.all(s.ts[s.part > 0] >= s.cuts["train_end"])
    assert min(len(v) for v in s.samples.values()) > 0
    # Every training check-in in the split is either a train sample or a trajectory's first.
    train = np.flatnonzero(s.part == 0)
    firsts = np.isin(train, s.traj_ptr[:-1])
    np.testing.assert_array_equal(np.sort(np.concatenate([s.samples["train"], train[firsts]])), train)


def test_row_order_of_the_table_does_not_matter(synthetic_table) -> None:
    """make_split sorts by user alone when the table is time-sorted (as a CheckinTable is) and
    by (user, time, row) otherwise: both give the same split."""
    cfg = ProtocolConfig(min_user_checkins=5, min_poi_checkins=3)
    ref = make_split(synthetic_table, cfg)
    shuffled = CheckinTable(synthetic_table.df, name=synthetic_table.name)
    shuffled.df = synthetic_table.df.sample(frac=1.0, random_state=0)  # bypasses the table's sort
    assert not (np.diff(shuffled.df["ts"].to_numpy()) >= 0).all()
    assert make_split(shuffled, cfg).fingerprint() == ref.fingerprint()


def test_table_sorts_by_time_then_user_string() -> None:
    df = pd.DataFrame({"user": ["u2", "u10", "u1", "u3"], "poi": ["a", "b", "c", "d"], "category": "",
                       "lat": 0.0, "lon": 0.0, "ts": [5, 5, 9, 1], "tz_offset_min": 0, "poi_text": ""},
                      index=[7, 3, 9, 1])
    t = CheckinTable(df)
    assert t.df["user"].tolist() == ["u3", "u10", "u2", "u1"]  # "u10" < "u2" as strings
    assert t.df.index.tolist() == [0, 1, 2, 3]
    assert str(t.df["user"].dtype) == str(pd.Series(["x"]).dtype)  # pandas' own string dtype, no objects


@pytest.mark.parametrize("seed", range(3))
def test_modes_per_poi_match_counting_all_rows(seed) -> None:
    """The linear path (groups with one value) and the counted one (several values) together
    give the most frequent value / coordinate pair of every group, ties to the smallest."""
    from stgnn.data.codes import mode_coords as _mode_coords, mode_per_group as _mode_per_group

    rng = np.random.default_rng(seed)
    n, n_groups = 4000, 60
    group = rng.integers(0, n_groups - 5, n)  # the last groups stay empty
    single = group % 3 == 0  # a third of the groups hold one value, the others several
    value = np.where(single, group % 7, rng.integers(0, 4, n))
    lat = np.where(single, group * 0.5, rng.choice([1.0, 2.0, np.nan], n))
    lon = np.where(single, -group * 0.25, rng.choice([3.0, -0.0, np.nan], n))
    want_v = np.full(n_groups, -1)
    want_lat, want_lon = np.full(n_groups, np.nan), np.full(n_groups, np.nan)
    for g in np.unique(group):
        vals, counts = np.unique(value[group == g], return_counts=True)
        want_v[g] = vals[np.argmax(counts)]  # np.unique sorts: argmax is the smallest of the ties
        pairs = pd.DataFrame({"lat": lat[group == g], "lon": lon[group == g]}).value_counts(dropna=False)
        pairs = pairs.reset_index(name="n").sort_values(["n", "lat", "lon"], ascending=[False, True, True],
                                                        kind="stable")
        want_lat[g], want_lon[g] = pairs["lat"].iloc[0], pairs["lon"].iloc[0]
    np.testing.assert_array_equal(_mode_per_group(group, value, n_groups), want_v)
    got_lat, got_lon = _mode_coords(group, lat, lon, n_groups)
    np.testing.assert_array_equal(got_lat, want_lat)
    np.testing.assert_array_equal(got_lon, want_lon)
    assert np.isnan(got_lat[-5:]).all() and (want_v[-5:] == -1).all()
