"""Fixtures shared by the baseline tests."""
from __future__ import annotations

import pytest

from stgnn.data.protocol import ProtocolConfig, make_split
from stgnn.data.sources.synthetic import generate
from stgnn.data.split import Split


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every baseline test runs on one thread (a mark in a conftest would not reach the tests)."""


@pytest.fixture(scope="module")
def planted_split() -> Split:
    """Planted routines where every val/test check-in with a prefix is a sample (~120 test
    samples instead of ~10), for the sequence baselines' learning tests."""
    table = generate(num_users=12, num_pois=60, days=28, seed=1)
    return make_split(table, ProtocolConfig(min_user_checkins=5, min_poi_checkins=3, eval_last_only=False))
