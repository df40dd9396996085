"""Row validation shared by all loaders: errors name file:line and field; skip, dedup, coordinates."""
from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stgnn.data.schema import CleaningReport, DataError
from stgnn.data.sources.foursquare import load_tsmc2014
from stgnn.data.validate import finalize

T0 = "Tue Apr 03 18:00:09 +0000 2012"
T1 = "Tue Apr 03 19:30:00 +0000 2012"


def row(user="1", venue="v1", cat="Cafe", lat="40.7", lon="-74.0", tz="-240", t=T0, cat_id="c1") -> str:
    return "\t".join([user, venue, cat_id, cat, lat, lon, tz, t])


def write(tmp_path: Path, lines: list[str], name: str = "f.txt", gz: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    p = tmp_path / name
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


GOOD = [row(), row(user="2", venue="v2", t=T1)]

BAD_CASES = [  # (bad line, field named in the error, words in the message)
    ("1\tv1\tc1\tCafe\t40.7\t-74.0\t-240", "line", "expected 8"),
    ("\t".join([row(), "extra"]), "line", "found 9"),
    (row(t="Tue Apr 03 25:00:09 +0000 2012"), "utc_time", "cannot parse"),
    (row(t="2012-04-03 18:00:09"), "utc_time", "cannot parse"),
    (row(lat="91.5"), "lat", "outside [-90, 90]"),
    (row(lat="north"), "lat", "cannot parse"),
    (row(lon="-180.01"), "lon", "outside [-180, 180]"),
    (row(tz="900"), "tz_offset_min", "outside [-720, 840]"),
    (row(tz="-721"), "tz_offset_min", "outside [-720, 840]"),
    (row(tz="-240.5"), "tz_offset_min", "whole number"),
    (row(tz="EST"), "tz_offset_min", "cannot parse"),
    (row(user=""), "user", "empty id"),
    (row(venue="  "), "venue_id", "empty id"),
]


@pytest.mark.parametrize("bad,field,words", BAD_CASES)
def test_each_error_names_file_line_and_field(tmp_path, bad, field, words):
    p = write(tmp_path, GOOD + [bad] + GOOD)
    with pytest.raises(DataError) as exc:
        load_tsmc2014(p)
    msg = str(exc.value)
    assert f"{p}:3" in msg
    assert f"field '{field}'" in msg
    assert words in msg
    assert exc.value.line == 3 and exc.value.field == field


def test_raise_reports_the_first_bad_line_across_kinds(tmp_path):
    # Line 4 has a bad time (found in the second stage), line 6 a bad field count (first stage):
    # the error must still be about line 4, the lowest.
    p = write(tmp_path, GOOD + [GOOD[0], row(t="nonsense"), GOOD[1], "a\tb"])
    with pytest.raises(DataError, match=r":4: field 'utc_time'"):
        load_tsmc2014(p)


def test_first_failing_field_of_a_line_is_reported(tmp_path):
    p = write(tmp_path, [row(lat="100", tz="5000")])
    with pytest.raises(DataError, match="field 'lat'"):
        load_tsmc2014(p)


def test_line_numbers_are_physical_with_blank_lines_and_gzip(tmp_path):
    lines = [GOOD[0], "", "   ", GOOD[1], row(lon="200")]
    for gz in (False, True):
        p = write(tmp_path, lines, name=f"g{gz}.dat", gz=gz)
        with pytest.raises(DataError, match=r":5: field 'lon'"):
            load_tsmc2014(p)


def test_crlf_line_endings(tmp_path):
    p = tmp_path / "crlf.txt"
    p.write_bytes(("\r\n".join(GOOD) + "\r\n").encode())
    t = load_tsmc2014(p)
    assert list(t.df["ts"]) == [1333476009, 1333481400]


def test_skip_counts_examples_and_warns(tmp_path, caplog):
    bad = [row(lat="95"), "x\ty", row(t="never"), row(user="")]
    p = write(tmp_path, [GOOD[0], bad[0], bad[1], GOOD[1], bad[2], bad[3]])
    with caplog.at_level(logging.WARNING):
        t = load_tsmc2014(p, on_bad_row="skip")
    assert len(t) == 2
    assert t.report.rows_read == 6
    assert t.report.bad_rows.count == 4
    ex = t.report.bad_rows.examples
    assert [e.split(": field")[0] for e in ex] == [f"{p}:{n}" for n in (2, 3, 5, 6)]
    assert "4 bad rows skipped" in caplog.text


def test_skip_keeps_only_max_examples_but_counts_all(tmp_path):
    p = write(tmp_path, [GOOD[0]] + [row(lat="99")] * 8)
    t = load_tsmc2014(p, on_bad_row="skip")
    assert t.report.bad_rows.count == 8
    assert len(t.report.bad_rows.examples) == 5
    assert "and 3 more" in str(t.report.bad_rows)


def test_bad_policy_name(tmp_path):
    with pytest.raises(ValueError, match="on_bad_row"):
        load_tsmc2014(write(tmp_path, GOOD), on_bad_row="ignore")


def test_exact_duplicates_counted_and_dropped(tmp_path):
    p = write(tmp_path, [GOOD[0], GOOD[0], GOOD[1], GOOD[0], row(tz="-300")])
    t = load_tsmc2014(p)
    assert t.report.duplicates_dropped == 2
    assert len(t) == 3  # the tz -300 row differs in one field: not a duplicate
    kept = load_tsmc2014(p, drop_duplicates=False)
    assert len(kept) == 5 and kept.report.duplicates_dropped == 0


def test_canonical_coordinate_most_frequent_then_first_seen(tmp_path):
    lines = [
        row(venue="a", lat="40.1", lon="-74.1"), row(venue="a", lat="40.2", lon="-74.2", t=T1),
        row(venue="a", lat="40.2", lon="-74.2", user="9"),  # a: (40.2, -74.2) twice -> wins
        row(venue="b", lat="40.5", lon="-73.5"), row(venue="b", lat="40.6", lon="-73.6", user="7"),
        row(venue="c", lat="40.9", lon="-73.9"), row(venue="c", lat="40.9", lon="-73.9", user="3"),
    ]
    t = load_tsmc2014(write(tmp_path, lines))
    coords = t.df.groupby("poi")[["lat", "lon"]].agg(["min", "max"])
    assert t.report.pois_recoordinated == 2  # a and b; c has one coordinate
    assert coords.loc["a"].tolist() == [40.2, 40.2, -74.2, -74.2]
    assert coords.loc["b"].tolist() == [40.5, 40.5, -73.5, -73.5]  # tie -> first seen
    assert coords.loc["c"].tolist() == [40.9, 40.9, -73.9, -73.9]


def test_finalize_ignores_missing_coordinates():
    df = pd.DataFrame({"user": ["u", "u", "v"], "poi": ["x", "x", "y"], "category": "",
                       "lat": [np.nan, 1.0, np.nan], "lon": [np.nan, 2.0, np.nan],
                       "ts": [1, 2, 3], "tz_offset_min": 0, "poi_text": ""})
    rep = CleaningReport()
    out = finalize(df, rep)
    assert rep.pois_recoordinated == 0 and rep.duplicates_dropped == 0
    assert out["lat"].tolist()[:2] == [1.0, 1.0]  # x gets its only known coordinate
    assert np.isnan(out["lat"].iloc[2])  # y has none


def test_stray_carriage_return_stays_in_its_field(tmp_path):
    p = tmp_path / "cr.txt"
    p.write_bytes((row(cat="Odd\rName") + "\n" + GOOD[1] + "\n").encode("latin-1"))
    t = load_tsmc2014(p)
    assert len(t) == 2 and "Odd\rName" in set(t.df["category"])


def test_by_value_computes_once_per_distinct_value() -> None:
    import pandas as pd

    from stgnn.data.validate import blank_mask, by_value, to_float

    seen = []
    s = pd.Series(["1.5", " ", "x", "1.5", None, " "] * 1000)
    out = by_value(s, lambda v: seen.append(len(v)) or v.isna().to_numpy())
    assert seen == [4] and out.tolist() == [False, False, False, False, True, False] * 1000
    assert blank_mask(s)[:6].tolist() == [False, True, False, False, True, True]
    assert np.array_equal(to_float(s)[:6], [1.5, np.nan, np.nan, 1.5, np.nan, np.nan], equal_nan=True)
    zeros = pd.Series([0.0, -0.0, np.nan, 0.0])  # told apart by their bits: str(-0.0) is "-0.0"
    assert by_value(zeros, lambda v: np.array([repr(x) for x in v])).tolist() == ["0.0", "-0.0", "nan", "0.0"]


def _canonical_by_sorting_every_row(poi, lat, lon):
    """The reference: group every located row by (poi, lat, lon); most rows, then first seen."""
    rows = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
    best = {}
    for r in rows:
        best.setdefault(poi[r], {}).setdefault((lat[r], lon[r]), []).append(r)
    out = {}
    for p, groups in best.items():
        (la, lo), _ = min(groups.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
        out[p] = (la, lo)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_canonical_coordinates_sorts_only_pois_with_several_but_agrees_with_sorting_all(seed):
    rng = np.random.default_rng(seed)
    n, pois = 400, 60
    poi = rng.integers(0, pois, n)
    base = rng.normal(size=(pois, 2)).round(2)
    lat, lon = base[poi, 0].copy(), base[poi, 1].copy()
    moved = rng.random(n) < 0.15                       # some rows elsewhere: those POIs have several
    lat[moved], lon[moved] = rng.choice([0.5, -0.5, 0.0], moved.sum()), rng.choice([1.0, -0.0, 2.0], moved.sum())
    lat[rng.random(n) < 0.1] = np.nan                  # unlocated rows get their POI's coordinate
    df = pd.DataFrame({"user": "u", "poi": [f"p{p}" for p in poi], "category": "", "lat": lat, "lon": lon,
                       "ts": np.arange(n), "tz_offset_min": 0, "poi_text": ""})
    rep = CleaningReport()
    out = finalize(df, rep)
    want = _canonical_by_sorting_every_row(poi, lat, lon)
    several = {p for p in set(poi) if len({(a, b) for a, b, q in zip(lat, lon, poi)
                                          if q == p and np.isfinite(a) and np.isfinite(b)}) > 1}
    assert rep.pois_recoordinated == len(several) > 0
    for i, p in enumerate(poi):
        got = (out["lat"].iloc[i], out["lon"].iloc[i])
        if p in want:
            assert got == want[p] and np.signbit(got[1]) == np.signbit(want[p][1])
        else:
            assert np.isnan(got[0]) and np.isnan(got[1])


@pytest.mark.parametrize("seed", range(3))
def test_duplicate_rows_is_dataframe_duplicated(seed):
    from stgnn.data.validate import duplicate_rows

    rng = np.random.default_rng(seed)
    n = 3000
    cols = {"a": rng.integers(0, 5, n), "b": rng.choice([0.0, -0.0, np.nan, 1.5, -2.0], n),
            "c": rng.integers(0, 3, n).astype(np.int32), "d": rng.integers(0, 4, n)}
    want = pd.DataFrame(cols).duplicated().to_numpy()
    got = duplicate_rows(cols)
    assert want.sum() > 0 and (~want).sum() > 0 and np.array_equal(got, want)
