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


# ---------------------------------------------------------------------------- engines

def test_loop_engine_table_is_pinned():
    """The loop engine's table (what every fixture is made from) is byte-for-byte the one the
    tests were written against: the vectorized engine did not change it."""
    import hashlib

    df = generate(num_users=10, num_pois=60, days=14, seed=3).df
    assert len(df) == 519
    digest = hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()
    assert digest == "e6b2db43ea63e041021756e78941312a176b10945669c2a3274fec42aeb67bea"


@pytest.fixture(scope="module")
def vec_table():
    return generate(num_users=300, num_pois=400, days=56, seed=0, engine="vectorized")


def test_vectorized_deterministic_and_valid(vec_table):
    again = generate(num_users=300, num_pois=400, days=56, seed=0, engine="vectorized")
    pd.testing.assert_frame_equal(vec_table.df, again.df)
    other = generate(num_users=300, num_pois=400, days=56, seed=1, engine="vectorized")
    assert not vec_table.df["poi"].equals(other.df["poi"])
    df = vec_table.df
    assert list(df.columns) == list(COLUMNS) and "engine=vectorized" in vec_table.source
    assert (vec_table.num_users, vec_table.num_categories) == (300, 8) and vec_table.num_pois >= 395
    ts = df["ts"].to_numpy()
    assert (ts[1:] >= ts[:-1]).all()
    tie = ts[1:] == ts[:-1]  # equal times ordered by user string
    assert (df["user"].to_numpy()[:-1][tie] <= df["user"].to_numpy()[1:][tie]).all()
    assert (df.groupby("poi")["lat"].nunique() == 1).all() and (df.groupby("poi")["poi_text"].nunique() == 1).all()
    assert (df["poi_text"].str.split(" in ").str[0] == df["category"]).all()
    days = (df["ts"] - START_UTC + df["tz_offset_min"] * 60) // 86400
    assert days.min() == 0 and days.max() == 55


def test_vectorized_follows_the_routine(vec_table):
    df = vec_table.df
    local_h = ((df["ts"] + df["tz_offset_min"] * 60) % 86400) / 3600
    weekday = ((df["ts"] - START_UTC + df["tz_offset_min"] * 60) // 86400) % 7 < 5
    office = df["category"] == "Office"
    # weekend visits to an office are only exploration (a random POI of a weekend step's category
    # never is an office): none at all
    assert not office[~weekday].any()
    assert local_h[office].between(7.5, 11).mean() > 0.95
    assert local_h.between(6, 24).all()
    local_day = (df["ts"] + df["tz_offset_min"] * 60) // 86400
    per_day = df.groupby(["user", local_day]).size()
    assert per_day.min() >= 3 and per_day.max() <= 6
    # one home per user: on weekdays (no bakery step, which shares the home's category when there
    # are 8 categories) the most visited residential POI takes all but the exploring visits
    home = df[weekday & (df["category"] == CATEGORY_NAMES[0])].groupby("user")["poi"]
    share = home.agg(lambda s: s.value_counts().iloc[0] / len(s))
    assert 0.85 < share.median() < 1.0


def test_vectorized_planted_structure_beats_popularity(vec_table):
    personal, popular = _next_poi_accuracy(vec_table.df)
    assert popular < 0.05 and personal > 0.4
    noisy = generate(num_users=300, num_pois=400, days=56, seed=0, engine="vectorized", explore=0.5)
    assert _next_poi_accuracy(noisy.df)[0] < personal - 0.2


def test_vectorized_at_benchmark_ratios_keeps_users_and_pois():
    """benchmarks/scale.py's sizes (users = POIs = check-ins / 100, 27 days): the default protocol
    keeps every user and POI, with every split non-empty."""
    from stgnn.data.protocol import make_split

    t = generate(num_users=1000, num_pois=1000, days=27, seed=0, engine="vectorized")
    assert 95_000 < len(t) < 110_000
    s = make_split(t)
    assert (s.num_users, s.num_pois) == (1000, 1000)
    assert min(len(v) for v in s.samples.values()) > 300


def test_engine_choice(monkeypatch):
    import stgnn.data.sources.synthetic as syn

    monkeypatch.setattr(syn, "AUTO_VECTORIZED_USER_DAYS", 10 * 7 - 1)
    assert "engine=vectorized" in generate(num_users=10, num_pois=60, days=7).source
    assert "engine" not in generate(num_users=10, num_pois=60, days=7, engine="loop").source
    monkeypatch.setattr(syn, "AUTO_VECTORIZED_USER_DAYS", 10 * 7)
    assert "engine" not in generate(num_users=10, num_pois=60, days=7).source
    with pytest.raises(ValueError, match="engine"):
        generate(engine="numba")
    small = generate(num_users=5, num_pois=16, num_categories=8, days=7, seed=1, engine="vectorized")
    assert small.num_categories == 8 and len(small) > 0
