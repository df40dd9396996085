"""Gowalla check-ins as released by SNAP (``loc-gowalla_totalCheckins.txt[.gz]``).

Format: tab-separated, no header, 5 fields per line::

    user id, UTC time (ISO-8601, "2010-10-19T23:55:27Z"), latitude, longitude, location id

No category and no local time zone: ``category`` is ``""`` and ``tz_offset_min`` is 0.

Cite: E. Cho, S. A. Myers, J. Leskovec. Friendship and Mobility: User Movement in
Location-Based Social Networks. KDD 2011.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stgnn.data.schema import CheckinTable, CleaningReport
from stgnn.data.sources import foursquare
from stgnn.data.sources.base import Source
from stgnn.data.validate import (OnBadRow, RowChecker, check_policy, finalize, read_delimited, require_rows,
                                time_window_seconds, to_epoch_seconds)

GOWALLA_URL = "https://snap.stanford.edu/data/loc-gowalla_totalCheckins.txt.gz"
GOWALLA_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
GOWALLA_NAMES = ["gowalla/loc-gowalla_totalCheckins.txt.gz", "gowalla/loc-gowalla_totalCheckins.txt",
                 "loc-gowalla_totalCheckins.txt.gz", "loc-gowalla_totalCheckins.txt"]


def load_gowalla(path: str | Path, *, on_bad_row: OnBadRow = "raise", encoding: str | None = None,
                 name: str = "gowalla", drop_duplicates: bool = True,
                 time_window: Sequence[int | str] | None = None) -> CheckinTable:
    """Load a SNAP Gowalla check-in file (plain or gzip) into a :class:`CheckinTable`.

    Args: as :func:`stgnn.data.sources.foursquare.load_tsmc2014`.
    """
    check_policy(on_bad_row)
    window = time_window_seconds(time_window)
    report = CleaningReport()
    raw, line_no, counts = read_delimited(path, 5, encoding=encoding, report=report)
    chk = RowChecker(path, line_no)
    chk.require_id(raw[0], "user")
    # "ISO8601" is pandas' C fast path (20x the strptime one); times without an offset are UTC.
    t = pd.to_datetime(raw[1], format="ISO8601", utc=True, errors="coerce")
    chk.require_parsed(raw[1], t, "utc_time", "an ISO-8601 UTC time like '2010-10-19T23:55:27Z'")
    ok = t.notna().to_numpy()
    ts = np.where(ok, to_epoch_seconds(t), 0)
    chk.check_time_window(raw[1], ts, ok, "utc_time", window)
    lat, lon = chk.check_coords(raw[2], raw[3], optional=False)
    chk.require_id(raw[4], "location_id")
    keep = chk.resolve(on_bad_row, report, extra=counts)
    df = pd.DataFrame({
        "user": raw[0], "poi": raw[4], "category": "",
        "lat": lat, "lon": lon, "ts": ts, "tz_offset_min": 0, "poi_text": "",
    })
    if not keep.all():
        df = df.loc[keep]
    require_rows(df, path, report)
    df = finalize(df, report, drop_duplicates=drop_duplicates)
    return CheckinTable(df, name=name, source=str(path), report=report)


def fetch_gowalla(root: str | Path = "data", *, path: str | Path | None = None,
                  download: bool = True, data_dir: str | Path | None = None) -> Path:
    """Path of the SNAP Gowalla file: ``path`` > ``data_dir`` (default ``$STGNN_DATA_DIR``) >
    ``root/raw`` > download.

    Raises:
        FileNotFoundError: nothing local and the download failed or was disabled; the message
            says where to put the file by hand.
    """
    found, looked = foursquare.find_local(GOWALLA_NAMES, Path(root), path, data_dir)
    if found is not None:
        return found
    dest = Path(root) / "raw" / "loc-gowalla_totalCheckins.txt.gz"
    manual = (f"Download {GOWALLA_URL} by hand and put it in {dest.parent}/ "
              "(or in $STGNN_DATA_DIR/gowalla/, or pass path=).")
    if not download:
        raise FileNotFoundError(f"Gowalla not found (looked in {looked}). {manual}")
    try:
        return foursquare.download_file(GOWALLA_URL, dest)
    except OSError as e:
        raise FileNotFoundError(f"Gowalla not found locally (looked in {looked}) and "
                                f"downloading it failed: {e}. {manual}") from e


class Gowalla(Source):
    """SNAP's Gowalla check-ins: ``gowalla``, or any file in its 5-field format."""

    format = "gowalla"
    datasets = ("gowalla",)
    sniff_order = 20

    @classmethod
    def raw_file_names(cls, dataset: str) -> list[str]:
        return list(GOWALLA_NAMES)

    @classmethod
    def fetch(cls, dataset: str, root: Path, *, download: bool = True, data_dir: str | Path | None = None) -> Path:
        return fetch_gowalla(root=root, download=download, data_dir=data_dir)

    @classmethod
    def sniff(cls, path: Path, lines: list[str]) -> bool:
        return any(len(f := ln.split("\t")) == 5 and pd.notna(pd.to_datetime(f[1], format=GOWALLA_TIME_FORMAT,
                                                                           errors="coerce")) for ln in lines)

    @classmethod
    def describe_mismatch(cls, lines: list[str]) -> str:
        return "Gowalla has 5 tab-separated fields, the 2nd a time like '2010-10-19T23:55:27Z'"

    load_fn = staticmethod(load_gowalla)
