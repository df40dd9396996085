"""Shared fixtures. Real-data tests use ``nyc_filtered`` / ``nyc_raw`` and are marked ``realdata``.

Where the real data is missing they skip on a developer's machine, but FAIL when
``STGNN_REQUIRE_DATA=1`` or ``CI`` is set (``.ci/run`` sets both), so CI never passes vacuously.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def _require_data() -> bool:
    return bool(os.environ.get("STGNN_REQUIRE_DATA") or os.environ.get("CI"))


def _data_file(rel: str) -> Path:
    root = os.environ.get("STGNN_DATA_DIR")
    path = Path(root) / rel if root else None
    if path is None or not path.is_file():
        msg = (f"real data file {rel!r} not found under STGNN_DATA_DIR={root!r}; "
               "set STGNN_DATA_DIR to the folder holding foursquare_nyc/")
        if _require_data():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def nyc_filtered() -> Path:
    """Path of the benchmark NYC file (1,083 users, 5,135 POIs, 147,938 check-ins)."""
    return _data_file("foursquare_nyc/nyc_filtered_tsmc2014.txt.gz")


@pytest.fixture(scope="session")
def nyc_raw() -> Path:
    """Path of the partial raw TSMC2014 NYC release (208,701 rows)."""
    return _data_file("foursquare_nyc/nyc_raw_partial_tsmc2014.txt.gz")


@pytest.fixture(scope="session")
def synthetic_table():
    """A small seeded synthetic CheckinTable with planted routines (shared, do not mutate)."""
    from stgnn.data.sources.synthetic import generate

    return generate(num_users=40, num_pois=120, days=56, seed=0)


@pytest.fixture(scope="session")
def synthetic_split(synthetic_table):
    """The default protocol applied to ``synthetic_table`` (shared, do not mutate)."""
    from stgnn.data.protocol import ProtocolConfig, make_split

    return make_split(synthetic_table, ProtocolConfig(min_user_checkins=5, min_poi_checkins=3))


@pytest.fixture(scope="session")
def cold_split(synthetic_table):
    """The cold-start protocol (``keep_unseen``) on ``synthetic_table`` with 8 planted cold POIs:
    the last check-in of eight users (a test target) moved to new venues with no earlier check-in."""
    from stgnn.data.protocol import ProtocolConfig, make_split
    from stgnn.data.schema import CheckinTable

    df = synthetic_table.df.copy()
    late = df.sort_values("ts").groupby("user").tail(1).index[:8]
    df.loc[late, "poi"] = [f"cold{i}" for i in range(len(late))]
    df.loc[late, "lat"] += 0.001
    table = CheckinTable(df, name="synthetic_cold", source="synthetic_table with planted cold POIs")
    return make_split(table, ProtocolConfig(min_user_checkins=5, min_poi_checkins=1, keep_unseen=True))


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """A clean working folder and data root for recipe runs, with the split/input memos empty."""
    from stgnn import recipes

    monkeypatch.setenv("STGNN_ROOT", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    recipes.clear_caches()
    yield tmp_path
    recipes.clear_caches()


@pytest.fixture()
def one_thread():
    """One intra-op thread for tiny models (more only add overhead and contend on a shared
    machine); pinned numbers are recorded with it. Use with ``pytest.mark.usefixtures``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
