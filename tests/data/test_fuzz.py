"""Random corruptions of valid files thrown at the loaders (hypothesis, derandomised for CI).

The property: loading a corrupted file either gives a valid table (every contract invariant
holds: ids printable, times inside the plausibility window, coordinates in range, sorted) or
raises :class:`DataError` naming the file and a line; never any other exception. Bounded: a
fixed number of examples per format (about 15 s in all on one core); set
``STGNN_FUZZ_EXAMPLES`` to run longer locally.
"""
from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from stgnn.data.schema import COLUMNS, TZ_MAX, TZ_MIN, CheckinTable, DataError  # noqa: E402
from stgnn.data.sources import load_source  # noqa: E402
from stgnn.data.validate import time_window_seconds  # noqa: E402

EXAMPLES = int(os.environ.get("STGNN_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

TSMC = "".join(f"u{i % 3}\tv{i % 4}\tc{i % 2}\tCaf\u00e9 {i % 2}\t40.7{i}\t-73.9{i}\t-240\t"
               f"Tue Apr 0{3 + i % 5} 1{i % 10}:00:0{i % 10} +0000 2012\n" for i in range(8))
GOWALLA = "".join(f"{i % 3}\t2010-10-1{i % 10}T23:55:2{i % 10}Z\t30.2{i}\t-97.7{i}\t{22847 + i % 4}\n"
                  for i in range(8))
CSV = "uid,sku,when,la,lo,txt\n" + "".join(
    f"u{i % 3},s{i % 4},{1600000000 + 3600 * i},48.{i},11.{i},\"item, {i}\"\n" for i in range(8))
BASES = {"tsmc.txt": (TSMC, {}), "gowalla.txt": (GOWALLA, {}),
         "own.csv": (CSV, {"columns": {"user": "uid", "item": "sku", "time": "when", "lat": "la", "lon": "lo",
                                       "text": "txt"}})}
NASTY = ["\x00", "\x1b", "\r", "\n", "\t", ",", '"', "\u00e9", "\ufeff", "nan", "inf", "-1e308", "1e308",
         "99999999999999", "0", "-0", "", " ", "Tue Feb 30 10:00:00 +0000 2012", "2999-01-01T00:00:00Z",
         "1900-01-01", "\udcff"]
LO, HI = time_window_seconds()


def _corrupt(data: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    for op, where, blob in ops:
        i = where % (len(data) + 1)
        if op == "insert":
            data = data[:i] + blob + data[i:]
        elif op == "delete":
            data = data[:i] + data[i + len(blob) + 1:]
        elif op == "replace":
            data = data[:i] + blob + data[i + len(blob):]
        elif op == "flip" and data:
            j = where % len(data)
            data = data[:j] + bytes([data[j] ^ (1 << (len(blob) % 8))]) + data[j + 1:]
        elif op == "truncate":
            data = data[:i]
        elif op == "duplicate":
            data = data[:i] + data[i:i + 40] + data[i:]
    return data


nasty_bytes = st.sampled_from(NASTY).map(lambda s: s.encode("utf-8", "surrogatepass"))
blobs = st.one_of(nasty_bytes, st.binary(max_size=12))
ops = st.lists(st.tuples(st.sampled_from(["insert", "delete", "replace", "flip", "truncate", "duplicate"]),
                         st.integers(0, 10_000), blobs), min_size=1, max_size=4)


def assert_valid_table(t: CheckinTable) -> None:
    df = t.df
    assert list(df.columns) == list(COLUMNS) and len(df) > 0
    for col in ("user", "poi"):
        ids = df[col].astype(str)
        assert not ids.str.strip().eq("").any(), f"blank {col}"
        assert not ids.map(lambda s: re.search(r"[\x00-\x1f\x7f]", s) is not None).any(), f"control char in {col}"
    ts = df["ts"].to_numpy()
    assert ((ts >= LO) & (ts < HI)).all(), "time outside the plausibility window"
    assert np.all(np.diff(ts) >= 0), "not sorted by time"
    lat, lon = df["lat"].to_numpy(), df["lon"].to_numpy()
    assert np.all(np.isnan(lat) | (np.abs(lat) <= 90)) and np.all(np.isnan(lon) | (np.abs(lon) <= 180))
    assert np.array_equal(np.isnan(lat), np.isnan(lon)), "a latitude without a longitude"
    tz = df["tz_offset_min"].to_numpy()
    assert ((tz >= TZ_MIN) & (tz <= TZ_MAX)).all()
    assert not df["category"].astype(str).str.contains("\x00").any()


def _load_or_refuse(path: Path, kw: dict) -> None:
    try:
        table = load_source(path, on_bad_row="skip", **kw)
    except DataError as e:
        assert e.path == str(path) and isinstance(e.line, int) and e.line >= 1, str(e)
        assert e.field, str(e)
        return
    assert_valid_table(table)
    for ex in table.report.bad_rows.examples:  # every skipped row is located too
        assert re.match(re.escape(str(path)) + r":\d+: field '", ex), ex


@pytest.mark.parametrize("base", sorted(BASES))
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@FUZZ
@given(corruption=ops)
def test_corrupted_files_load_valid_or_refuse_with_file_line(tmp_path_factory, base, gz, corruption):
    text, kw = BASES[base]
    data = text.encode("utf-8")
    if gz:
        # corrupt the compressed bytes half the time, the text inside the other half
        data = gzip.compress(data, mtime=0)
        data = _corrupt(data, corruption) if corruption[0][1] % 2 else gzip.compress(
            _corrupt(text.encode("utf-8"), corruption), mtime=0)
    else:
        data = _corrupt(data, corruption)
    path = tmp_path_factory.mktemp("fuzz") / (base + (".gz" if gz else ""))
    path.write_bytes(data)
    _load_or_refuse(path, kw)


@FUZZ
@given(corruption=ops)
def test_corrupted_parquet_loads_valid_or_refuses(tmp_path_factory, corruption):
    folder = tmp_path_factory.mktemp("fuzzpq")
    good = folder / "good.parquet"
    pd.DataFrame({"uid": ["a", "b", "a"], "sku": ["x", "y", None],
                  "at": pd.to_datetime(["2022-01-01 00:00:10", "1900-01-01 00:00:00",
                                        "2022-01-01 00:00:20"])}).to_parquet(good)
    path = folder / "bad.parquet"
    path.write_bytes(_corrupt(good.read_bytes(), corruption))
    try:
        table = load_source(path, on_bad_row="skip", columns={"user": "uid", "item": "sku", "time": "at"})
    except DataError as e:  # a Parquet file's own damage has no line: it is named by file and field
        assert e.path == str(path) and e.field
        return
    assert_valid_table(table)
