"""The SQLite check-in store: seeding, durability settings, idempotent writes, validation."""
from __future__ import annotations

import numpy as np
import pytest

from stgnn.serve.store import CheckinStore, NewCheckin, StoreError


def test_seed_keeps_the_split_order_and_trajectories(seeded_store, serve_runs):
    split = serve_runs["split"]
    assert seeded_store.count() == split.num_checkins
    assert seeded_store.integrity_check() == "ok"
    meta = seeded_store.meta()
    assert meta["seeded_from"] == f"{split.name}:{split.fingerprint()}"
    u = 3
    raw = str(split.user_ids[u])
    a, b = split.user_ptr[u], split.user_ptr[u + 1]
    rows = seeded_store.user_rows(raw, before=2 ** 40, limit=10_000)
    assert rows.complete
    # seeded POI / category keys are the split's ids, in the split's order
    assert np.array_equal(rows.poi_key, split.poi[a:b])
    assert np.array_equal(rows.category_key, split.category[a:b])
    assert np.array_equal(rows.ts, split.ts[a:b])
    starts = np.zeros(b - a, np.int64)
    starts[np.isin(np.arange(a, b), split.traj_ptr[:-1])] = 1
    assert np.array_equal(rows.traj_start, starts)
    # strictly before: a check-in at exactly `before` is not returned
    t = int(split.ts[a + 5])
    r2 = seeded_store.user_rows(raw, before=t, limit=10_000)
    assert (r2.ts < t).all() and len(r2) == int((split.ts[a:b] < t).sum())
    # a window: the most recent `limit`, oldest first, not complete
    r3 = seeded_store.user_rows(raw, before=2 ** 40, limit=7)
    assert not r3.complete and np.array_equal(r3.ts, split.ts[b - 7:b])


def test_seed_until_and_only_into_an_empty_store(tmp_path, serve_runs):
    split = serve_runs["split"]
    cut = int(split.cuts["val_end"])
    with CheckinStore(tmp_path / "s.sqlite") as store:
        n = store.seed_from_split(split, until=cut)
        assert n == int((split.ts < cut).sum()) == store.count()
        assert store.meta()["seeded_until"] == str(cut)
        with pytest.raises(StoreError, match="already holds check-ins"):
            store.seed_from_split(split)


def test_durable_settings(tmp_path):
    with CheckinStore(tmp_path / "d.sqlite") as store:
        c = store._conn()
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("PRAGMA synchronous").fetchone()[0] == 2          # FULL
    with CheckinStore(tmp_path / "f.sqlite", durable=False) as store:
        assert store._conn().execute("PRAGMA synchronous").fetchone()[0] == 0


def test_a_check_in_without_tz_reads_its_pois_latest_tz_through_an_index(tmp_path):
    """Without an index on the POI that read walks the time index back to the POI's latest
    check-in: ~9 ms of CPU per write on NYC, most of what a write cost."""
    from stgnn.serve.store import POI_LAST_TZ

    with CheckinStore(tmp_path / "d.sqlite") as store:
        plan = " ".join(r[-1] for r in store._conn().execute("EXPLAIN QUERY PLAN " + POI_LAST_TZ, (0,)).fetchall())
        assert "COVERING INDEX checkins_poi_time (poi_key=?)" in plan and "SCAN" not in plan, plan


def test_writes_are_idempotent_and_conflicts_are_refused(seeded_store, serve_runs):
    split = serve_runs["split"]
    user, poi = str(split.user_ids[0]), str(split.poi_ids[4])
    c = NewCheckin(id="c-1", user=user, poi=poi, ts=2_000_000_000, tz=-240)
    first = seeded_store.add_checkins([c])
    assert first[0]["status"] == "created"
    again = seeded_store.add_checkins([c])
    assert again[0]["status"] == "duplicate" and again[0]["seq"] == first[0]["seq"]
    assert seeded_store.count() == split.num_checkins + 1
    # the same id for another check-in is a conflict (409), nothing written
    with pytest.raises(StoreError, match="already used") as e:
        seeded_store.add_checkins([NewCheckin(id="c-1", user=user, poi=poi, ts=2_000_000_001)])
    assert e.value.status == 409
    # a retry without tz matches the stored check-in (its tz was resolved once)
    assert seeded_store.add_checkins([NewCheckin(id="c-1", user=user, poi=poi, ts=2_000_000_000)])[0]["status"] \
        == "duplicate"


def test_a_bad_item_rolls_back_the_whole_batch(seeded_store, serve_runs):
    split = serve_runs["split"]
    user, poi = str(split.user_ids[0]), str(split.poi_ids[0])
    n = seeded_store.count()
    batch = [NewCheckin(id="b-1", user=user, poi=poi, ts=2_000_000_000),
             NewCheckin(id="b-2", user=user, poi="nowhere", ts=2_000_000_100)]
    with pytest.raises(StoreError, match=r"checkins\[1\]\.poi: unknown POI 'nowhere'") as e:
        seeded_store.add_checkins(batch)
    assert e.value.status == 404 and e.value.field == "checkins[1].poi"
    assert seeded_store.count() == n and not seeded_store.has_ids(["b-1"])


def test_new_pois_are_registered_with_their_attributes(seeded_store, serve_runs):
    split = serve_runs["split"]
    v0 = seeded_store.version
    info = {"category": "Ramen Bar", "lat": 40.75, "lon": -73.99, "text": "Noodles on 5th"}
    out = seeded_store.add_checkins([NewCheckin(id="n-1", user="newbie", poi="ramen-1", ts=2_000_000_000,
                                                poi_info=info)])
    assert out[0]["registered_poi"] == "ramen-1"
    assert seeded_store.version == v0 + 1
    p = seeded_store.poi("ramen-1")
    assert p == {"poi": "ramen-1", "category": "Ramen Bar", "lat": 40.75, "lon": -73.99, "text": "Noodles on 5th",
                 "source": "api", "checkins": 1}
    assert seeded_store.poi_keys()["ramen-1"] == split.num_pois               # next key after the seeded ones
    assert seeded_store.category_keys()["Ramen Bar"] == split.num_categories
    assert seeded_store.user_checkins("newbie")[0]["poi"] == "ramen-1"
    # the tz of a check-in without one is the POI's latest check-in's
    seeded_store.add_checkins([NewCheckin(id="n-2", user="newbie", poi=str(split.poi_ids[0]), ts=2_000_000_100)])
    last_tz = int(split.tz_offset_min[np.flatnonzero(split.poi == 0)[np.argmax(split.ts[split.poi == 0])]])
    assert seeded_store.user_checkins("newbie")[0]["tz_offset_min"] == last_tz


@pytest.mark.parametrize("field,kw,match", [
    ("id", {"id": ""}, "non-empty string"),
    ("id", {"id": "x" * 200}, "at most 128"),
    ("user", {"user": 42}, "non-empty string"),
    ("user", {"user": "a\nb"}, "control characters"),
    ("ts", {"ts": -5}, "outside 1970"),
    ("ts", {"ts": "2013-01-01"}, "integer number of UTC seconds"),
    ("ts", {"ts": True}, "integer number of UTC seconds"),
    ("tz_offset_min", {"tz": 5000}, "minutes east of UTC"),
    ("poi_info.category", {"poi": "new", "poi_info": {"lat": 1.0, "lon": 2.0}}, "needs a category"),
    ("poi_info.lat", {"poi": "new", "poi_info": {"category": "X", "lat": 95.0, "lon": 2.0}}, "within ±90"),
    ("poi_info.lon", {"poi": "new", "poi_info": {"category": "X", "lat": 1.0, "lon": float("nan")}}, "finite"),
    ("poi_info", {"poi": "new", "poi_info": {"category": "X", "lat": 1.0, "lon": 2.0, "colour": "red"}},
     "unknown field"),
])
def test_invalid_check_ins_name_the_field(seeded_store, serve_runs, field, kw, match):
    split = serve_runs["split"]
    base = dict(id="v-1", user="u", poi=str(split.poi_ids[0]), ts=2_000_000_000, tz=None)
    base.update(kw)
    with pytest.raises(StoreError, match=match) as e:
        seeded_store.add_checkins([NewCheckin(**base)])
    assert e.value.field == f"checkins[0].{field}"
    assert 400 <= e.value.status < 500


def test_reopening_keeps_everything(tmp_path, serve_runs):
    split = serve_runs["split"]
    path = tmp_path / "r.sqlite"
    with CheckinStore(path) as s:
        s.seed_from_split(split)
        s.add_checkins([NewCheckin(id="keep-me", user="u9", poi=str(split.poi_ids[1]), ts=2_000_000_000)])
    with CheckinStore(path) as s:
        assert s.count() == split.num_checkins + 1
        assert s.has_ids(["keep-me", "seed:0", "nope"]) == {"keep-me", "seed:0"}
        assert s.users(limit=1)[0]["checkins"] == int(np.bincount(split.user).max())


def test_group_commit_isolates_each_callers_items(seeded_store, serve_runs, monkeypatch):
    """Concurrent writers share commits; one caller's bad batch fails alone, the others land."""
    import threading

    split = serve_runs["split"]
    poi = str(split.poi_ids[2])
    groups: list[int] = []
    real = seeded_store._write_group

    def spy(jobs):
        groups.append(len(jobs))
        real(jobs)
    monkeypatch.setattr(seeded_store, "_write_group", spy)
    n0 = seeded_store.count()
    outcome: dict[int, object] = {}

    def writer(w: int) -> None:
        items = [NewCheckin(id=f"g{w}-{i}", user=f"gu{w}", poi=poi, ts=2_000_000_000 + i) for i in range(5)]
        if w == 3:
            items.append(NewCheckin(id="g3-bad", user="gu3", poi="no-such-poi", ts=2_000_000_000))
        try:
            outcome[w] = seeded_store.add_checkins(items)
        except StoreError as e:
            outcome[w] = e

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert isinstance(outcome[3], StoreError) and outcome[3].status == 404
    assert all(isinstance(outcome[w], list) and len(outcome[w]) == 5 for w in range(12) if w != 3)
    assert seeded_store.count() == n0 + 11 * 5
    assert not seeded_store.has_ids([f"g3-{i}" for i in range(5)])
    assert sum(groups) == 12                      # every call went through the writer exactly once
