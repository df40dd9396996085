"""split_stats / format_stats on a hand-made cold-start split (counts checked by hand)."""
from __future__ import annotations

import json

import pandas as pd

from stgnn.data.protocol import ProtocolConfig, make_split
from stgnn.data.schema import CheckinTable
from stgnn.data.stats import PUBLISHED, format_stats, split_stats

H = 3600
# u1: [p1 p2] [p2 p1] train; [p2 p3 p1] val; [p1 p4] [p3 p1] test; u2: [p1 p2] test.
ROWS = [("u1", "p1", 0), ("u1", "p2", 1), ("u1", "p2", 30), ("u1", "p1", 31),
        ("u1", "p2", 100), ("u1", "p3", 100.5), ("u1", "p1", 101), ("u2", "p1", 102), ("u2", "p2", 103),
        ("u1", "p1", 150), ("u1", "p4", 151), ("u1", "p3", 200), ("u1", "p1", 201)]


def cold_split(name: str):
    users, pois, hours = zip(*ROWS)
    df = pd.DataFrame({"user": users, "poi": pois, "category": ["c" + p for p in pois], "lat": 40.7, "lon": -74.0,
                       "ts": [int(h * H) for h in hours], "tz_offset_min": -240, "poi_text": ""})
    cfg = ProtocolConfig(min_user_checkins=1, min_poi_checkins=1, fractions=(0.35, 0.25, 0.4), keep_unseen=True)
    return make_split(CheckinTable(df), cfg, name=name)


def test_split_stats_counts() -> None:
    st = split_stats(cold_split("hand"))
    assert st["total"] == {"users": 2, "pois": 4, "categories": 4, "checkins": 13, "trajectories": 6, "samples": 6}
    assert st["train"] == {"users": 1, "pois": 2, "categories": 2, "checkins": 4, "trajectories": 2, "samples": 2}
    assert st["val"] == {"users": 1, "pois": 3, "categories": 3, "checkins": 3, "trajectories": 1, "samples": 1}
    assert st["test"] == {"users": 2, "pois": 4, "categories": 4, "checkins": 6, "trajectories": 3, "samples": 3}
    assert st["context"]["checkins"] == 0
    assert st["cold"] == {"test_cold_user": 1, "test_cold_poi": 1, "test_revisit": 1,
                          "val_cold_user": 0, "val_cold_poi": 0, "val_revisit": 1}
    assert st["removed"]["rows_in"] == 13 and st["removed"]["short_trajectory_checkins"] == 0
    json.dumps(st)  # JSON-able


def test_format_stats_with_published() -> None:
    text = format_stats(cold_split("nyc"))
    assert "test_samples" in text and "1,347" in text and "-1,344" in text  # 3 ours vs 1,347
    assert "users" in text and "-1,046" in text
    assert PUBLISHED["nyc"]["checkins"] == 103941
    plain = format_stats(cold_split("nyc"), published=False)
    assert "1,347" not in plain and "train" in plain
    assert "published" not in format_stats(cold_split("hand"))
