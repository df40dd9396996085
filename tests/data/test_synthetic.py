"""Synthetic generator: deterministic, valid, and with planted, learnable routines."""
from __future__ import annotations

import pandas as pd
import pytest

from stgnn.data.schema import COLUMNS
from stgnn.data.sources.synthetic import BOX, CATEGORY_NAMES, START_UTC, generate


def test_deterministic_per_seed():
    a, b = generate(num_users=10, num_pois=60, days=14, seed=3), generate(num_users=10, num_pois=60, days=14, seed=3)
    pd.testing.assert_frame_equal(a.df, b.df)
    c = generate(num_users=10, num_pois=60, days=14, seed=4)
    assert not (len(c) == len(a) and (c.df["poi"].to_numpy() == a.df["poi"].to_numpy()).all())


def test_contract_and_ranges(synthetic_table):
    t = synthetic_table
    df = t.df
    assert list(df.columns) == list(COLUMNS) and t.name == "synthetic"
    assert (t.num_users, t.num_categories) == (40, 8)
    assert 110 <= t.num_pois <= 120
    assert set(df["category"]) == set(CATEGORY_NAMES[:8])
    assert (df["ts"].diff().dropna() >= 0).all()  # sorted
    assert set(df["tz_offset_min"]) == {-240}
    (la0, la1), (lo0, lo1) = BOX
    assert df["lat"].between(la0 - 0.02, la1 + 0.02).all() and df["lon"].between(lo0 - 0.02, lo1 + 0.02).all()
    assert (df.groupby("poi")["lat"].nunique() == 1).all()  # one coordinate and one text per POI
    assert (df.groupby("poi")["poi_text"].nunique() == 1).all()
    row = df.iloc[0]
    assert row["poi_text"].startswith(row["category"] + " in ")
    days = (df["ts"] - START_UTC + df["tz_offset_min"] * 60) // 86400
    assert days.min() == 0 and days.max() == 55


def test_local_times_follow_the_routine(synthetic_table):
    df = synthetic_table.df
    local_h = ((df["ts"] + df["tz_offset_min"] * 60) % 86400) / 3600
    weekday = ((df["ts"] - START_UTC + df["tz_offset_min"] * 60) // 86400) % 7 < 5
    office = df["category"] == "Office"
    assert not office[~weekday].any()  # nobody goes to the office at weekends (in the routine)
    assert local_h[office].between(7.5, 11).mean() > 0.95  # ~9:12 am
    assert local_h.between(6, 24).all()


def test_enough_users_pois_and_checkins_survive_filters(synthetic_table):
    df = synthetic_table.df
    per_user, per_poi = df["user"].value_counts(), df["poi"].value_counts()
    assert per_user.min() >= 5 * 20  # every user has many check-ins
    assert (per_poi >= 3).sum() >= 100
    # most users are active in the last tenth of the period (the test split)
    last = df["ts"] >= df["ts"].quantile(0.9)
    assert df.loc[last, "user"].nunique() >= 36
    # several check-ins per active day, so 24 h trajectories have length >= 2
    local_day = (df["ts"] + df["tz_offset_min"] * 60) // 86400
    per_day = df.groupby(["user", local_day]).size()
    assert per_day.min() >= 3 and per_day.max() <= 6


def _next_poi_accuracy(df: pd.DataFrame) -> tuple[float, float]:
    """Acc@1 of (a) the most frequent next POI given (user, previous POI, 3-hour bucket) in the
    first 80% of time, and (b) the globally most popular POI, on the last 20%."""
    df = df.sort_values(["user", "ts"], kind="stable").copy()
    df["prev"] = df.groupby("user")["poi"].shift()
    df["bucket"] = ((df["ts"] + df["tz_offset_min"] * 60) % 86400) // (3 * 3600)
    df = df.dropna(subset=["prev"])
    cut = df["ts"].quantile(0.8)
    train, test = df[df["ts"] < cut], df[df["ts"] >= cut]
    keys = ["user", "prev", "bucket"]
    counts = train.groupby(keys + ["poi"]).size().reset_index(name="n")
    best = counts.sort_values("n", ascending=False, kind="stable").drop_duplicates(keys)
    pred = test.merge(best, on=keys, how="left", suffixes=("", "_pred"))["poi_pred"]
    personal = float((pred.to_numpy() == test["poi"].to_numpy()).mean())
    popular = float((test["poi"] == train["poi"].value_counts().index[0]).mean())
    return personal, popular


@pytest.mark.parametrize("explore", [0.1, 0.5])
def test_planted_structure_beats_popularity(synthetic_table, explore):
    t = synthetic_table if explore == 0.1 else generate(num_users=40, num_pois=120, days=56, seed=0,
                                                        explore=explore)
    personal, popular = _next_poi_accuracy(t.df)
    assert popular < 0.1
    if explore == 0.1:
        assert personal > 0.4 and personal > 4 * popular
    else:  # more exploration, less predictable: the planted signal is what the baseline learns
        assert personal < _next_poi_accuracy(synthetic_table.df)[0]


def test_small_category_counts_and_argument_checks():
    t = generate(num_users=5, num_pois=12, num_categories=3, days=7, seed=1, checkins_per_day=(2, 2))
    assert t.num_categories == 3
    local_day = (t.df["ts"] + t.df["tz_offset_min"] * 60) // 86400
    assert (t.df.groupby(["user", local_day]).size() == 2).all()
    with pytest.raises(ValueError, match="num_pois"):
        generate(num_pois=10, num_categories=8)
    with pytest.raises(ValueError, match="num_categories"):
        generate(num_categories=13)
    with pytest.raises(ValueError, match="checkins_per_day"):
        generate(checkins_per_day=(4, 2))
