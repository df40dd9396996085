"""Intent texts: what a sample's prefix reads as, and that nothing after the sample's time enters."""
import calendar
import dataclasses

import numpy as np
import pytest

from stgnn.data.batch import Batch, SampleLoader
from stgnn.features.intent import intent_texts, poi_labels, split_intent_texts
from stgnn.features.profiles import default_region_labels, poi_names

TZ = -240  # New York, April 2012
LABELS = ["Coffee Shop, near the centre", "Office, 2 km north of the centre", "Bar"]


def local(day: int, hh: int, mm: int) -> int:
    """UTC seconds of local New York time on 2012-04-<day> (9 = Monday)."""
    return calendar.timegm((2012, 4, day, hh, mm, 0)) - TZ * 60


def request(query_times=None) -> Batch:
    pois = np.array([0, 1, 0, 2])
    ts = np.array([local(9, 8, 30), local(9, 9, 10), local(10, 8, 30), local(10, 21, 5)])
    prefixes = [(pois, ts, np.full(4, TZ)), (pois[:1], ts[:1], np.full(1, TZ))]
    return Batch.from_sequences([0, 1], prefixes, None, np.zeros(3, np.int64), np.zeros(3), np.zeros(3),
                                query_times=query_times)


def test_intent_text_hand_checked():
    hidden = request()
    assert intent_texts(hidden, LABELS) == [
        "Mon 08:30 Coffee Shop, near the centre → 09:10 Office, 2 km north of the centre → "
        "Tue 08:30 Coffee Shop, near the centre → 21:05 Bar",
        "Mon 08:30 Coffee Shop, near the centre"]
    known = request(query_times=[(local(11, 7, 45), TZ), (local(9, 12, 0), TZ)])
    texts = intent_texts(known, LABELS, max_items=2)
    assert texts == ["Tue 08:30 Coffee Shop, near the centre → 21:05 Bar → next: Wed 07:45",
                     "Mon 08:30 Coffee Shop, near the centre → next: Mon 12:00"]
    with pytest.raises(ValueError, match="intent_items"):
        intent_texts(known, LABELS, max_items=0)


def test_poi_labels_are_names_and_regions(synthetic_split):
    labels = poi_labels(synthetic_split)
    assert labels == poi_names(synthetic_split)
    assert poi_labels(synthetic_split, regions=True) == [
        f"{n}, {r}" for n, r in zip(poi_names(synthetic_split), default_region_labels(synthetic_split))]


@pytest.mark.parametrize("target_time", ["known", "hidden"])
def test_target_and_later_checkins_never_change_the_text(synthetic_split, target_time):
    s = synthetic_split
    labels = poi_labels(s)
    targets = s.samples["test"][:12]
    loader = SampleLoader(s, targets, 16, target_time=target_time)
    base = intent_texts(loader.make_batch(targets), labels)
    assert all(("next:" in t) == (target_time == "known") for t in base)
    rng = np.random.default_rng(0)
    for j in targets:
        later = s.ts > s.ts[j]
        changed = dataclasses.replace(s, poi=s.poi.copy(), ts=s.ts.copy())
        changed.poi[later] = rng.integers(0, s.num_pois, later.sum())
        changed.ts[later] += rng.integers(1, 86400, later.sum())
        changed.poi[j] = (s.poi[j] + 1) % s.num_pois                   # another target POI
        one = SampleLoader(changed, np.array([j]), 1, target_time=target_time).make_batch(np.array([j]))
        assert intent_texts(one, labels) == [base[list(targets).index(j)]]
    # control: an edit of the prefix does change the text (the test can fail)
    j = targets[0]
    edited = dataclasses.replace(s, poi=s.poi.copy())
    edited.poi[j - 1] = (s.poi[j - 1] + 1) % s.num_pois
    one = SampleLoader(edited, np.array([j]), 1, target_time=target_time).make_batch(np.array([j]))
    assert intent_texts(one, labels) != [base[0]]


def test_split_intent_texts_follow_the_loader(synthetic_split):
    s = synthetic_split
    labels = poi_labels(s)
    texts = split_intent_texts(s, labels, 4, parts=("val", "test"))
    n_val = len(s.samples["val"])
    assert len(texts) == n_val + len(s.samples["test"])
    val = SampleLoader(s, "val", 10_000).make_batch(s.samples["val"])
    assert texts[:n_val] == intent_texts(val, labels, 4)
    hidden = dataclasses.replace(s, protocol={**s.protocol, "target_time": "hidden"})
    assert not any("next:" in t for t in split_intent_texts(hidden, labels, 4, parts=("test",)))
