"""Batches from raw check-in sequences (serving, replay): truncation, padding, categories, query time."""
from __future__ import annotations

import numpy as np
import pytest

from stgnn.data.batch import Batch

CAT = np.array([5, 6, 7, 8])
LAT, LON = np.array([40.0, 40.1, 40.2, 40.3]), np.array([-74.0, -73.9, -73.8, -73.7])


def test_from_sequences_keeps_the_latest_and_pads_right():
    prefixes = [(np.array([0, 1, 2]), np.array([10, 20, 30]), np.array([0, 0, 0])),
                (np.array([3]), np.array([40]), np.array([-300]), np.array([1]))]   # own category given
    histories = [(np.array([3, 3]), np.array([1, 2]), np.array([0, 0])), (np.zeros(0),) * 3]
    b = Batch.from_sequences([0, 1], prefixes, histories, CAT, LAT, LON, max_len=2, hist_len=1)
    assert b.poi.tolist() == [[1, 2], [3, 0]] and b.mask.tolist() == [[True, True], [True, False]]
    assert b.length.tolist() == [2, 1] and b.category.tolist() == [[6, 7], [1, 0]]
    assert b.hist_poi.tolist() == [[3], [0]] and b.hist_ts.tolist() == [[2], [0]]
    assert b.hist_mask.tolist() == [[True], [False]]
    assert b.lat[0].tolist() == pytest.approx([40.1, 40.2]) and b.tz[1, 0] == -300
    assert not b.target_time_known and b.target_ts is None and b.index.tolist() == [-1, -1]
    assert b.query_time()[0].tolist() == [30, 40]                    # the last check-in's time
    timed = Batch.from_sequences([0, 1], prefixes, None, CAT, LAT, LON, query_times=[(99, 60), (98, 0)])
    assert timed.target_time_known and timed.query_time()[0].tolist() == [99, 98]
    assert timed.hist_mask.tolist() == [[False], [False]]             # no history given
    with pytest.raises(ValueError, match="at least one check-in"):
        Batch.from_sequences([0], [(np.zeros(0),) * 3], None, CAT, LAT, LON)
