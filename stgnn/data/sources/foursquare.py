"""Foursquare TSMC2014 (NYC / TKY) check-ins: locate or download the release, and load it.

Format (``dataset_TSMC2014_readme.txt``): tab-separated, no header, 8 fields per line::

    user id, venue id, venue category id, venue category name,
    latitude, longitude, timezone offset (minutes), UTC time ("Tue Apr 03 18:00:09 +0000 2012")

Cite: D. Yang, D. Zhang, V. W. Zheng, Z. Yu. Modeling User Activity Preference by Leveraging
User Spatial Temporal Characteristics in LBSNs. IEEE Trans. SMC: Systems 45(1), 2015.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stgnn.data.schema import CheckinTable, CleaningReport
from stgnn.data.sources.base import Source
from stgnn.data.validate import (OnBadRow, RowChecker, check_policy, finalize, read_delimited, require_rows,
                                time_window_seconds, to_epoch_seconds)

log = logging.getLogger(__name__)

TSMC2014_URL = "http://www-public.imtsp.fr/~zhang_da/pub/dataset_tsmc2014.zip"
TSMC2014_PAGE = "https://sites.google.com/site/yangdingqi/home/foursquare-dataset"
TSMC_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"
CITIES = ("NYC", "TKY")


def load_tsmc2014(path: str | Path, *, on_bad_row: OnBadRow = "raise", encoding: str | None = None,
                  name: str | None = None, drop_duplicates: bool = True,
                  time_window: Sequence[int | str] | None = None) -> CheckinTable:
    """Load a TSMC2014-format file (plain or gzip; UTF-8 or Latin-1) into a :class:`CheckinTable`.

    ``category`` is the venue category NAME; the format has no venue name, so ``poi_text`` is
    ``""``. Parsing and validation are vectorised (the 148k-row NYC file loads in about a second).

    Args:
        path: the file; gzip is detected from its first bytes, not its extension.
        on_bad_row: ``"raise"`` on the first bad line, or ``"skip"`` bad lines (counted in
            ``table.report.bad_rows`` and logged).
        encoding: force an encoding; default UTF-8, or Latin-1 for a file whose non-ASCII lines
            are all invalid UTF-8 (lines of a file mixing both are bad rows, field ``encoding``).
        name: dataset name; default ``"nyc"``/``"tky"`` when the file name says so, else its stem.
        drop_duplicates: drop exact duplicate rows (counted in ``report.duplicates_dropped``).
            Note the published NYC benchmark counts (147,938 check-ins) include 344 exact
            duplicates; pass ``False`` to keep them.
        time_window: plausible years ``(start, end)`` (or ISO dates) of the check-ins; times
            outside are bad rows. Default 2000 to 2100 UTC.

    Raises:
        DataError: ``file:line: field``: a bad row (first one, under ``"raise"``), corrupt gzip,
            an empty file, or every row bad.
    """
    check_policy(on_bad_row)
    window = time_window_seconds(time_window)
    report = CleaningReport()
    raw, line_no, counts = read_delimited(path, 8, encoding=encoding, report=report)
    chk = RowChecker(path, line_no)
    chk.require_id(raw[0], "user")
    chk.require_id(raw[1], "venue_id")
    chk.require_no_nul(raw[3], "venue_category_name")
    lat, lon = chk.check_coords(raw[4], raw[5], optional=False)
    tz = chk.check_tz(raw[6])
    ts, ok = parse_tsmc_times(raw[7])
    chk.flag(~ok, "utc_time", lambda i: f"cannot parse {raw[7].iloc[i]!r} as a UTC time like "
                                        "'Tue Apr 03 18:00:09 +0000 2012'")
    chk.check_time_window(raw[7], ts, ok, "utc_time", window)
    keep = chk.resolve(on_bad_row, report, extra=counts)
    df = pd.DataFrame({
        "user": raw[0], "poi": raw[1], "category": raw[3],
        "lat": lat, "lon": lon, "ts": ts, "tz_offset_min": tz, "poi_text": "",
    })
    if not keep.all():
        df = df.loc[keep]
    require_rows(df, path, report)
    df = finalize(df, report, drop_duplicates=drop_duplicates)
    return CheckinTable(df, name=name or _default_name(path), source=str(path), report=report)


def _field_counts(lines: list[str]) -> str:
    """``"line 1 has 3 tab-separated fields (space-separated?)"`` for an unrecognised file."""
    first = lines[0] if lines else ""
    n = first.count("\t") + 1
    spaced = " (it looks space-separated: the fields must be separated by tabs)" \
        if n == 1 and len(first.split()) >= 5 else ""
    return f"line 1 has {n} tab-separated field{'s' * (n != 1)}{spaced}"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _key3(names: tuple[str, ...]) -> np.ndarray:
    return np.array([(ord(a) << 16) | (ord(b) << 8) | ord(c) for a, b, c in names], dtype=np.int64)


def parse_tsmc_times(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``"Tue Apr 03 18:00:09 +0000 2012"`` strings to UTC seconds.

    A fixed-width fast path works on the character codes as an ``(N, 30)`` integer matrix (about
    30x faster than ``pd.to_datetime`` with this format); rows it rejects go through
    ``pd.to_datetime(format=TSMC_TIME_FORMAT)``, which has the final word.

    Returns:
        ts: ``(N,)`` int64 UTC seconds (0 where unparsable); ok: ``(N,)`` bool.
    """
    n = len(values)
    u = np.asarray(values.to_numpy(dtype=object).astype("U32"))
    width = np.char.str_len(u)
    c = u.view(np.uint32).reshape(n, 32).astype(np.int64)  # (N, 32) code points, 0-padded

    def num(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        d = c[:, lo:hi] - 48
        good = ((d >= 0) & (d <= 9)).all(axis=1)
        return (d * 10 ** np.arange(hi - lo - 1, -1, -1)).sum(axis=1), good

    key = lambda lo: (c[:, lo] << 16) | (c[:, lo + 1] << 8) | c[:, lo + 2]  # noqa: E731
    months, dows = _key3(_MONTHS), _key3(_DAYS)
    month = np.searchsorted(months, key(4), sorter=np.argsort(months))
    month = np.argsort(months)[np.minimum(month, 11)]
    day, g1 = num(8, 10)
    hh, g2 = num(11, 13)
    mm, g3 = num(14, 16)
    ss, g4 = num(17, 19)
    off, g5 = num(21, 25)
    year, g6 = num(26, 30)
    ok = ((width == 30) & g1 & g2 & g3 & g4 & g5 & g6 & np.isin(key(0), dows)
          & (months[month] == key(4)) & (c[:, [3, 7, 10, 19, 25]] == 32).all(axis=1)
          & (c[:, 13] == 58) & (c[:, 16] == 58) & np.isin(c[:, 20], (43, 45))
          & (day >= 1) & (hh < 24) & (mm < 60) & (ss < 60) & (off % 100 < 60))
    ym = np.where(ok, (year - 1970) * 12 + month, 0).astype("datetime64[M]")
    date = ym.astype("datetime64[D]") + np.where(ok, day - 1, 0)
    ok &= date.astype("datetime64[M]") == ym  # rejects Feb 30 etc.
    sign = np.where(c[:, 20] == 45, -1, 1)
    ts = (date.astype(np.int64) * 86400 + hh * 3600 + mm * 60 + ss
          - sign * ((off // 100) * 3600 + (off % 100) * 60))
    ts = np.where(ok, ts, 0)
    if not ok.all():
        rest = np.flatnonzero(~ok)
        t = pd.to_datetime(values.iloc[rest], format=TSMC_TIME_FORMAT, utc=True, errors="coerce")
        parsed = t.notna().to_numpy()
        ts[rest[parsed]] = to_epoch_seconds(t[parsed])
        ok[rest[parsed]] = True
    return ts.astype(np.int64), ok


def _default_name(path: str | Path) -> str:
    stem = Path(path).name.lower()
    for city in CITIES:
        if city.lower() in stem:
            return city.lower()
    return stem.split(".")[0]


# --------------------------------------------------------------------------- locating

def candidate_names(city: str) -> list[str]:
    """Relative paths, in preference order, under which a TSMC2014 ``city`` file may lie."""
    c, C = city.lower(), city.upper()
    official = f"dataset_TSMC2014_{C}.txt"
    return [f"foursquare_{c}/{c}_filtered_tsmc2014.txt.gz", f"foursquare_{c}/{c}_filtered_tsmc2014.txt",
            f"foursquare_{c}/{official}", f"foursquare_{c}/{official}.gz", official, f"{official}.gz",
            f"dataset_tsmc2014/{official}"]


def find_local(names: list[str], root: Path, path: str | Path | None,
               data_dir: str | Path | None = None) -> tuple[Path | None, list[str]]:
    """The first existing file among: ``path``; ``data_dir/<name>`` (default ``$STGNN_DATA_DIR``);
    ``root/raw/<name>``.

    Returns:
        the file (or ``None``) and the places looked in, for the error message.
    """
    looked: list[str] = []
    if path is not None:
        if Path(path).is_file():
            return Path(path), looked
        raise FileNotFoundError(f"{path}: no such file")
    data_dir = data_dir if data_dir is not None else os.environ.get("STGNN_DATA_DIR")
    dirs = [Path(d) for d in (data_dir,) if d] + [Path(root) / "raw"]
    for d in dirs:
        for n in names:
            p = d / n
            if p.is_file():
                return p, looked
        looked.append(str(d))
    return None, looked


def fetch_tsmc2014(city: str = "NYC", root: str | Path = "data", *, path: str | Path | None = None,
                   download: bool = True, data_dir: str | Path | None = None) -> Path:
    """Path of the TSMC2014 ``city`` file, downloading the official release only if none is local.

    Resolution order: ``path`` > ``data_dir`` (default ``$STGNN_DATA_DIR``; e.g. ``foursquare_nyc/
    nyc_filtered_tsmc2014.txt.gz``, ``dataset_TSMC2014_NYC.txt``) > ``root/raw`` > download
    ``dataset_tsmc2014.zip`` into ``root/raw`` and extract ``dataset_TSMC2014_<CITY>.txt``.

    Raises:
        FileNotFoundError: nothing local and the download failed or was disabled; the message
            says where to put the file by hand.
    """
    city = city.upper()
    if city not in CITIES:
        raise ValueError(f"city must be one of {CITIES}, got {city!r}")
    found, looked = find_local(candidate_names(city), Path(root), path, data_dir)
    if found is not None:
        return found
    raw_dir = Path(root) / "raw"
    member = f"dataset_TSMC2014_{city}.txt"
    manual = (f"Download dataset_tsmc2014.zip by hand from {TSMC2014_PAGE} ({TSMC2014_URL}), "
              f"unzip it and put {member} in {raw_dir}/ (or in $STGNN_DATA_DIR, or pass path=).")
    if not download:
        raise FileNotFoundError(f"TSMC2014 {city} not found (looked in {looked}). {manual}")
    zip_path = raw_dir / "dataset_tsmc2014.zip"
    try:
        if not zip_path.is_file():
            download_file(TSMC2014_URL, zip_path)
        return extract_member(zip_path, member, raw_dir / member)
    except (OSError, zipfile.BadZipFile, KeyError) as e:
        raise FileNotFoundError(f"TSMC2014 {city} not found locally (looked in {looked}) and "
                                f"getting it from {TSMC2014_URL} failed: {e}. {manual}") from e


def download_file(url: str, dest: str | Path, *, timeout: float = 60.0) -> Path:
    """Stream ``url`` to ``dest`` with a progress bar; atomic (a temp file renamed at the end)."""
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", url, dest)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def extract_member(zip_path: Path, basename: str, dest: Path) -> Path:
    """Extract the member called ``basename`` (in any folder of the zip) to ``dest``, atomically."""
    with zipfile.ZipFile(zip_path) as zf:
        names = [n for n in zf.namelist() if Path(n).name == basename]
        if not names:
            raise KeyError(f"{zip_path} has no member {basename!r}")
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, zf.open(names[0]) as src:
                shutil.copyfileobj(src, out, 1 << 20)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return dest


class TSMC2014(Source):
    """Foursquare TSMC2014 NYC/TKY: ``nyc``/``tky``, or any file in its 8-field format."""

    format = "tsmc2014"
    datasets = ("nyc", "tky")
    sniff_order = 10

    @classmethod
    def raw_file_names(cls, dataset: str) -> list[str]:
        return candidate_names(dataset.upper())

    @classmethod
    def fetch(cls, dataset: str, root: Path, *, download: bool = True, data_dir: str | Path | None = None) -> Path:
        return fetch_tsmc2014(dataset.upper(), root=root, download=download, data_dir=data_dir)

    @classmethod
    def sniff(cls, path: Path, lines: list[str]) -> bool:
        # any of the first lines decides, so one broken first line does not misroute the file
        return any(len(f := ln.split("\t")) == 8 and parse_tsmc_times(pd.Series([f[7]]))[1][0] for ln in lines)

    @classmethod
    def describe_mismatch(cls, lines: list[str]) -> str:
        return "TSMC2014 has 8 tab-separated fields, the 8th a time like 'Tue Apr 03 18:00:09 +0000 2012'; " \
               + _field_counts(lines)

    load_fn = staticmethod(load_tsmc2014)
