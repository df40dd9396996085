"""Source loaders: TSMC2014 (encodings, gzip), Gowalla, own CSV/Parquet, dispatch, fetching."""
from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stgnn.data import sources
from stgnn.data.schema import COLUMNS, DataError
from stgnn.data.sources import foursquare, load_source, sniff_format
from stgnn.data.sources.csv import load_table
from stgnn.data.sources.foursquare import fetch_tsmc2014, load_tsmc2014
from stgnn.data.sources.gowalla import fetch_gowalla, load_gowalla

TSMC = (
    "470\t49bbd6c0f964a520f4531fe3\t4bf58dd8d48988d127951735\tArts & Crafts Store\t40.71981037548853\t"
    "-74.00258103213994\t-240\tTue Apr 03 18:00:09 +0000 2012\n"
    "979\t4a43c0aef964a520c6a61fe3\t4bf58dd8d48988d1df941735\tCaf\u00e9\t40.6068\t-74.044167\t-300\t"
    "Tue Apr 03 17:59:00 +0000 2012\n"
)
GOWALLA = (
    "0\t2010-10-19T23:55:27Z\t30.2359091167\t-97.7951395833\t22847\n"
    "0\t2010-10-18T22:17:43Z\t30.2691029532\t-97.7493953705\t420315\n"
    "1\t2010-10-17T23:42:03Z\t30.2557309927\t-97.7633857727\t316637\n"
)


def _write(path: Path, text: str, encoding: str = "utf-8", gz: bool = False) -> Path:
    data = text.encode(encoding)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# --------------------------------------------------------------------------- TSMC2014

@pytest.mark.parametrize("encoding,gz", [("utf-8", False), ("latin-1", False), ("utf-8", True),
                                         ("latin-1", True)])
def test_tsmc_encodings_and_gzip(tmp_path, encoding, gz):
    p = _write(tmp_path / "dataset_TSMC2014_NYC.txt", TSMC, encoding, gz)  # gzip despite .txt
    t = load_tsmc2014(p)
    assert t.name == "nyc" and len(t) == 2
    assert list(t.df.columns) == list(COLUMNS)
    # sorted by time: the 17:59 check-in comes first
    first, second = t.df.iloc[0], t.df.iloc[1]
    assert (first["user"], first["poi"], first["category"]) == ("979", "4a43c0aef964a520c6a61fe3", "Caf\u00e9")
    assert first["ts"] == 1333475940 and first["tz_offset_min"] == -300
    assert second["ts"] == 1333476009 and second["lat"] == 40.71981037548853
    assert second["category"] == "Arts & Crafts Store" and second["poi_text"] == ""
    assert ("decoded as Latin-1 (not valid UTF-8)" in t.report.notes) == (encoding == "latin-1")


def test_tsmc_forced_encoding(tmp_path):
    p = _write(tmp_path / "x.txt", TSMC, "latin-1")
    assert load_tsmc2014(p, encoding="latin-1").df["category"].iloc[0] == "Caf\u00e9"
    with pytest.raises(DataError, match=r"x.txt:2: field 'encoding'"):
        load_tsmc2014(p, encoding="utf-8")


def test_tsmc_name_and_stray_quotes(tmp_path):
    p = _write(tmp_path / "tky_part.txt", TSMC.replace("Arts & Crafts Store", 'Joe\'s "Bar'))
    t = load_tsmc2014(p)
    assert t.name == "tky"
    assert 'Joe\'s "Bar' in set(t.df["category"])


# --------------------------------------------------------------------------- Gowalla

def test_gowalla(tmp_path):
    p = _write(tmp_path / "loc-gowalla_totalCheckins.txt.gz", GOWALLA, gz=True)
    t = load_gowalla(p)
    assert t.name == "gowalla" and len(t) == 3 and t.num_users == 2
    assert t.df["ts"].tolist() == [1287358923, 1287440263, 1287532527]  # sorted
    assert t.df["poi"].tolist() == ["316637", "420315", "22847"]
    assert set(t.df["category"]) == {""} and set(t.df["tz_offset_min"]) == {0}
    assert t.df["lon"].iloc[2] == -97.7951395833


def test_gowalla_bad_time(tmp_path):
    p = _write(tmp_path / "g.txt", GOWALLA.replace("2010-10-18T22:17:43Z", "18/10/2010 22:17"))
    with pytest.raises(DataError, match=r"g.txt:2: field 'utc_time'"):
        load_gowalla(p)
    assert len(load_gowalla(p, on_bad_row="skip")) == 2


# --------------------------------------------------------------------------- own data

def test_csv_epoch_without_locations(tmp_path):
    p = _write(tmp_path / "orders.csv", "customer,sku,when,kind\nc1,s9,1700000000,shoes\n"
                                        "c2,s9,1700000100,shoes\nc1,s3,1699999999.7,hats\n")
    t = load_table(p, {"user": "customer", "item": "sku", "time": "when", "category": "kind"},
                   tz_offset_min=60)
    assert t.name == "orders" and len(t) == 3
    assert t.df["ts"].tolist() == [1699999999, 1700000000, 1700000100]
    assert t.df["lat"].isna().all() and t.df["lon"].isna().all()
    assert t.df["category"].tolist() == ["hats", "shoes", "shoes"]
    assert set(t.df["tz_offset_min"]) == {60}


def test_csv_iso_times_locations_text_tz(tmp_path):
    p = _write(tmp_path / "v.csv", "u,i,t,la,lo,txt,z\n"
                                   "a,x,2021-03-04T12:00:00+01:00,48.1,11.5,Old Bookshop,60\n"
                                   "b,y,2021-03-04 12:30:00,,,,0\n", gz=True)
    t = load_table(p, {"user": "u", "item": "i", "time": "t", "lat": "la", "lon": "lo",
                       "text": "txt", "tz": "z"})
    assert t.df["ts"].tolist() == [1614855600, 1614861000]  # naive time read as UTC
    assert t.df["poi_text"].tolist() == ["Old Bookshop", ""]
    assert t.df["lat"].iloc[0] == 48.1 and np.isnan(t.df["lat"].iloc[1])
    assert t.df["tz_offset_min"].tolist() == [60, 0]


def test_csv_time_format_and_errors(tmp_path):
    p = _write(tmp_path / "d.csv", "u,i,t\na,x,04/03/2021 10:00\nb,y,31/13/2021 10:00\n")
    cols = {"user": "u", "item": "i", "time": "t"}
    with pytest.raises(DataError, match=r"d.csv:3: field 'time'"):
        load_table(p, cols, time_unit="%d/%m/%Y %H:%M")
    t = load_table(p, cols, time_unit="%d/%m/%Y %H:%M", on_bad_row="skip")
    assert t.df["ts"].tolist() == [1614852000] and t.report.bad_rows.count == 1
    assert t.report.bad_rows.by_field == {"time": 1}
    with pytest.raises(DataError, match=r"d.csv:2: field 'time'.*strftime format"):  # auto does not guess
        load_table(p, cols)
    ms = _write(tmp_path / "ms.csv", "u,i,t\na,x,1614852000123\n")
    assert load_table(ms, cols, time_unit="ms").df["ts"].tolist() == [1614852000]
    assert load_table(ms, cols).df["ts"].tolist() == [1614852000]  # auto: milliseconds by magnitude
    with pytest.raises(DataError, match=r"ms.csv:2: field 'time'.*year 53143.*milliseconds.*time_unit='ms'"):
        load_table(ms, cols, time_unit="s")


def test_csv_field_count_lat_and_missing_column(tmp_path):
    cols = {"user": "u", "item": "i", "time": "t", "lat": "la", "lon": "lo"}
    p = _write(tmp_path / "e.csv", "u,i,t,la,lo\na,x,1600000001,1,1\nb,y,1600000002,1,1,EXTRA\n"
                                   "c,z,1600000003,95,1\n")
    with pytest.raises(DataError, match=r"e.csv:3: field 'line'.*found 6"):
        load_table(p, cols)
    t = load_table(p, cols, on_bad_row="skip")
    assert t.df["user"].tolist() == ["a"] and t.report.bad_rows.count == 2
    assert "e.csv:4: field 'lat'" in t.report.bad_rows.examples[1]
    assert t.report.bad_rows.by_field == {"line": 1, "lat": 1}
    with pytest.raises(DataError, match=r"e.csv:1: field 'text': column 'desc' not in the file"):
        load_table(p, {**cols, "text": "desc"})
    with pytest.raises(ValueError, match="both 'lat' and 'lon'"):
        load_table(p, {"user": "u", "item": "i", "time": "t", "lat": "la"})
    with pytest.raises(ValueError, match="missing \\['time'\\]"):
        load_table(p, {"user": "u", "item": "i"})


def test_parquet(tmp_path):
    p = tmp_path / "clicks.parquet"
    pd.DataFrame({"uid": [7, 8, 7], "article": ["n1", "n2", None],
                  "at": pd.to_datetime(["2022-01-01 00:00:10", "2022-01-01 00:00:05",
                                        "2022-01-01 00:00:20"])}).to_parquet(p)
    cols = {"user": "uid", "item": "article", "time": "at"}
    with pytest.raises(DataError, match=r"clicks.parquet:3: field 'item': empty id"):
        load_table(p, cols)
    t = load_table(p, cols, on_bad_row="skip")
    assert t.df["user"].tolist() == ["8", "7"] and t.df["ts"].tolist() == [1640995205, 1640995210]



def test_ids_equal_once_stripped_are_one_id_and_such_rows_duplicates(tmp_path):
    """Ids are stripped per distinct value: " u1 " and "u1" are one user, and rows equal only
    after stripping are duplicates; categories and text are kept as written."""
    p = tmp_path / "c.csv"
    p.write_text("u,i,t,c,x\n u1 ,p1,1400000000, a ,t\nu1,p1 ,1400000000, a ,t\n"
                 "u2,  p1,1400000100,a,t \nu1,p2,1400000200, a ,t\n")
    t = load_table(p, {"user": "u", "item": "i", "time": "t", "category": "c", "text": "x"}, time_unit="s")
    assert t.report.duplicates_dropped == 1
    assert t.df[["user", "poi", "category", "poi_text"]].values.tolist() == [
        ["u1", "p1", " a ", "t"], ["u2", "p1", "a", "t "], ["u1", "p2", " a ", "t"]]
    assert t.num_users == 2 and t.num_pois == 2

# --------------------------------------------------------------------------- dispatch

def test_sniff_and_load_source(tmp_path):
    tsmc = _write(tmp_path / "a.dat", TSMC, gz=True)
    gow = _write(tmp_path / "b.dat", GOWALLA)
    own = _write(tmp_path / "c.csv", "u,i,t\na,x,1600000005\n")
    broken = _write(tmp_path / "d.dat", "garbage first line\n" + TSMC)
    assert [sniff_format(p) for p in (tsmc, gow, own, broken)] == ["tsmc2014", "gowalla", "table", "tsmc2014"]
    with pytest.raises(DataError, match=r"d.dat:1: field 'line'"):  # routed to the TSMC loader
        load_source(broken)
    # one name everywhere: a file is named by its name up to the first dot (data check = data stats)
    assert len(load_source(tsmc)) == 2 and load_source(gow).name == "b" == sources.dataset_name(gow)
    assert load_source(own, columns={"user": "u", "item": "i", "time": "t"}).df["ts"].tolist() == [1600000005]
    with pytest.raises(DataError, match=r"c.csv:1: field 'columns'.*\['u', 'i', 't'\].*--columns"):
        load_source(own)
    with pytest.raises(ValueError, match=r"\['columns'\] do not apply to .*a.dat \(a tsmc2014 file\)"):
        sources.resolve(tsmc).source.check_options(tsmc, {"columns": {}})
    with pytest.raises(FileNotFoundError, match="neither a dataset name"):
        load_source(tmp_path / "nope.csv")
    assert load_source("synthetic", num_users=3, num_pois=20, days=7).num_users == 3


def test_unrecognised_files_say_why(tmp_path):
    spaced = _write(tmp_path / "s.txt", TSMC.replace("\t", " "))
    with pytest.raises(DataError, match=r"s.txt:1: field 'format'.*space-separated.*--columns"):
        load_source(spaced)
    with pytest.raises(DataError, match=r"e.txt:1: field 'file': the file is empty"):
        load_source(_write(tmp_path / "e.txt", ""))
    with pytest.raises(DataError, match=r"cr.txt:1: field 'line'.*bare CR"):
        load_source(_write(tmp_path / "cr.txt", TSMC.replace("\n", "\r")))


def test_source_registry_is_found_by_iteration():
    classes = sources.source_classes()
    assert [c.format for c in classes] == ["tsmc2014", "gowalla", "presplit", "synthetic", "table"]
    assert sources.dataset_names() == ("nyc", "tky", "gowalla", "synthetic")
    for c in classes:  # every source declares what it reads and takes
        assert c.format and "name" in c.options()


def test_load_source_by_name_uses_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("STGNN_DATA_DIR", str(tmp_path))
    (tmp_path / "foursquare_tky").mkdir()
    _write(tmp_path / "foursquare_tky" / "dataset_TSMC2014_TKY.txt", TSMC)
    _write(tmp_path / "loc-gowalla_totalCheckins.txt", GOWALLA)
    monkeypatch.setattr(foursquare, "download_file", _no_network)
    t = load_source("TKY", root=tmp_path / "nowhere")
    assert t.name == "tky" and len(t) == 2
    assert len(load_source("gowalla", root=tmp_path / "nowhere")) == 3


# --------------------------------------------------------------------------- fetching

def _no_network(url, dest, **kw):
    raise AssertionError(f"tried to download {url}")


def test_fetch_prefers_explicit_then_env_then_root(tmp_path, monkeypatch):
    monkeypatch.setattr(foursquare, "download_file", _no_network)
    env, root = tmp_path / "env", tmp_path / "root"
    (root / "raw").mkdir(parents=True)
    in_root = _write(root / "raw" / "dataset_TSMC2014_NYC.txt", TSMC)
    monkeypatch.delenv("STGNN_DATA_DIR", raising=False)
    assert fetch_tsmc2014("NYC", root) == in_root
    (env / "foursquare_nyc").mkdir(parents=True)
    in_env = _write(env / "foursquare_nyc" / "nyc_filtered_tsmc2014.txt.gz", TSMC, gz=True)
    monkeypatch.setenv("STGNN_DATA_DIR", str(env))
    assert fetch_tsmc2014("nyc", root) == in_env
    explicit = _write(tmp_path / "mine.txt", TSMC)
    assert fetch_tsmc2014("NYC", root, path=explicit) == explicit
    with pytest.raises(FileNotFoundError, match="no such file"):
        fetch_tsmc2014("NYC", root, path=tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="city"):
        fetch_tsmc2014("LA", root)


def test_fetch_downloads_only_when_nothing_local(tmp_path, monkeypatch):
    monkeypatch.setenv("STGNN_DATA_DIR", str(tmp_path / "empty"))
    calls = []

    def fake_download(url, dest, **kw):  # a zip laid out like the official release
        calls.append(url)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("dataset_tsmc2014/dataset_TSMC2014_NYC.txt", TSMC.encode("latin-1"))
            zf.writestr("dataset_tsmc2014/dataset_TSMC2014_TKY.txt", TSMC)
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes(buf.getvalue())
        return Path(dest)

    monkeypatch.setattr(foursquare, "download_file", fake_download)
    got = fetch_tsmc2014("NYC", tmp_path)
    assert got == tmp_path / "raw" / "dataset_TSMC2014_NYC.txt"
    assert calls == [foursquare.TSMC2014_URL]
    assert load_tsmc2014(got).df["category"].iloc[0] == "Caf\u00e9"
    # Second call: the extracted file is found locally, no download; TKY comes from the kept zip.
    assert fetch_tsmc2014("NYC", tmp_path) == got and fetch_tsmc2014("TKY", tmp_path).is_file()
    assert calls == [foursquare.TSMC2014_URL]


def test_fetch_failure_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("STGNN_DATA_DIR", str(tmp_path / "empty"))

    def offline(url, dest, **kw):
        raise OSError("network is unreachable")

    monkeypatch.setattr(foursquare, "download_file", offline)
    with pytest.raises(FileNotFoundError) as exc:
        fetch_tsmc2014("TKY", tmp_path)
    msg = str(exc.value)
    assert "network is unreachable" in msg and foursquare.TSMC2014_URL in msg
    assert f"put dataset_TSMC2014_TKY.txt in {tmp_path / 'raw'}" in msg
    assert not (tmp_path / "raw" / "dataset_tsmc2014.zip").exists()
    monkeypatch.setattr(foursquare, "download_file", _no_network)
    with pytest.raises(FileNotFoundError, match="by hand"):
        fetch_tsmc2014("NYC", tmp_path, download=False)
    with pytest.raises(FileNotFoundError, match="loc-gowalla_totalCheckins.txt.gz by hand"):
        fetch_gowalla(tmp_path, download=False)


def test_download_file_is_atomic(tmp_path, monkeypatch):
    class Boom(io.BytesIO):
        headers = {"Content-Length": "10"}

        def read(self, n=-1):
            raise OSError("connection reset")

    monkeypatch.setattr(foursquare.urllib.request, "urlopen", lambda url, timeout: Boom())
    with pytest.raises(OSError, match="connection reset"):
        foursquare.download_file("http://example.invalid/x.zip", tmp_path / "x.zip")
    assert list(tmp_path.iterdir()) == []  # no partial file left behind

    class Ok(io.BytesIO):
        headers = {"Content-Length": "5"}

    monkeypatch.setattr(foursquare.urllib.request, "urlopen", lambda url, timeout: Ok(b"hello"))
    assert foursquare.download_file("http://example.invalid/x.zip", tmp_path / "x.zip").read_bytes() == b"hello"


# --------------------------------------------------------------------------- real data

@pytest.mark.realdata
def test_real_nyc_filtered(nyc_filtered):
    t = load_tsmc2014(nyc_filtered, drop_duplicates=False)
    assert (len(t), t.num_users, t.num_pois) == (147_938, 1_083, 5_135)
    assert t.report.rows_read == 147_938 and t.report.bad_rows.count == 0
    assert t.report.pois_recoordinated == 0  # one coordinate per POI in this file
    d = load_tsmc2014(nyc_filtered)
    assert d.report.duplicates_dropped == 344 and len(d) == 147_938 - 344
    assert (d.num_users, d.num_pois) == (1_083, 5_135)
    assert t.df["ts"].min() == 1333476009  # Tue Apr 03 18:00:09 2012 UTC


@pytest.mark.realdata
def test_real_nyc_raw_partial(nyc_raw):
    t = load_tsmc2014(nyc_raw)
    assert t.report.rows_read == 208_701 and t.report.bad_rows.count == 0
    assert t.report.duplicates_dropped == 228 and len(t) == 208_701 - 228
    assert (t.num_users, t.num_pois, t.num_categories) == (1_083, 36_923, 251)
    assert t.report.pois_recoordinated == 6_216
    assert (t.df.groupby("poi")["lat"].nunique() == 1).all()
    assert sniff_format(nyc_raw) == "tsmc2014"


def test_csv_multiline_quoted_field_keeps_line_numbers(tmp_path):
    p = _write(tmp_path / "m.csv", 'u,i,t,txt\na,x,1600000001,"two\nlines"\nb,,1600000002,plain\n')
    with pytest.raises(DataError, match=r"m.csv:4: field 'item': empty id"):
        load_table(p, {"user": "u", "item": "i", "time": "t", "text": "txt"})
    t = load_table(p, {"user": "u", "item": "i", "time": "t", "text": "txt"}, on_bad_row="skip")
    assert t.df["poi_text"].tolist() == ["two\nlines"]


def test_a_new_source_is_one_class_found_without_registration(tmp_path):
    """Adding a format: a Source subclass (here in this test; normally one new file in
    stgnn/data/sources/) is found by iteration, sniffed and loaded, with no list to edit."""
    from stgnn.data.sources.base import Source
    from stgnn.data.sources.csv import load_table

    def load_pipe(path, *, name=None, on_bad_row="raise"):
        return load_table(path, {"user": "u", "item": "i", "time": "t"}, sep="|", name=name, on_bad_row=on_bad_row)

    class PipeSeparated(Source):
        format = "pipes"
        datasets = ("pipes_demo",)
        sniff_order = 50

        @classmethod
        def sniff(cls, path, lines):
            return lines[0] == "u|i|t"

        load_fn = staticmethod(load_pipe)

    try:
        f = _write(tmp_path / "x.dat", "u|i|t\na|p|1600000000\n")
        assert PipeSeparated in sources.source_classes() and "pipes_demo" in sources.dataset_names()
        assert sniff_format(f) == "pipes" and load_source(f).df["ts"].tolist() == [1600000000]
    finally:
        del PipeSeparated  # the class lives on in __subclasses__ until collected
        import gc

        gc.collect()
    assert "pipes" not in [c.format for c in sources.source_classes()]
