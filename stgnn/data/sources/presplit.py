"""A pre-split benchmark set: ``<name>_train.csv``, ``<name>_val.csv``, ``<name>_test.csv``.

These are the files GETNext ships (``songyangme/GETNext``, ``dataset/NYC.zip``) and that STHGCN
(``ant-research/Spatio-Temporal-Hypergraph-Model``, ``preprocess/preprocess_main.py``
``preprocess_nyc``) reads as its NYC input; LLM4POI, GNPR-SID and GA-LLM start from STHGCN's
preprocessing of them, so their published NYC numbers (1,347 test samples) are on this split. The
split itself comes from the files (:mod:`stgnn.data.protocol_files`), not from our time cut.

Two headers are recognised (comma-separated, one header line, columns found by name, extra
columns ignored):

=========== ================ ==================================
role        GETNext          STHGCN's names for the same files
=========== ================ ==================================
user        ``user_id``      ``UserId``
POI         ``POI_id``       ``PoiId``
category    ``POI_catname``  ``PoiCategoryName``
latitude    ``latitude``     ``Latitude``
longitude   ``longitude``    ``Longitude``
UTC time    ``UTC_time``     ``UTCTime``
UTC offset  ``timezone``     ``TimezoneOffset`` (minutes)
trajectory  ``trajectory_id`` ``pseudo_session_trajectory_id``
=========== ================ ==================================

GETNext's full header is ``user_id, POI_id, POI_catid, POI_catid_code, POI_catname, latitude,
longitude, timezone, UTC_time, local_time, day_of_week, norm_in_day_time, trajectory_id,
norm_day_shift, norm_relative_time``; STHGCN renames these 15 columns by position. UTC times are
ISO-8601 (``2012-04-03 18:00:09+00:00``; without an offset they are read as UTC) or spelled as
in the raw TSMC2014 file (``Tue Apr 03 18:00:09 +0000 2012``). STHGCN's
*derived* files (``sample.csv``, ``train_sample.csv``...) are not this format: they hold samples,
not check-ins, and mark most val/test check-ins ``ignore``, so their membership is lost.

A dataset spec may be the folder holding one such set or any one of its three files.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stgnn.data.protocol_files import PresplitTable
from stgnn.data.schema import CleaningReport, DataError
from stgnn.data.sources.base import Source
from stgnn.data.sources.csv import read_csv_rows
from stgnn.data.sources.foursquare import TSMC_TIME_FORMAT
from stgnn.data.validate import (OnBadRow, RowChecker, check_policy, finalize, format_utc, require_rows,
                                time_window_seconds, to_epoch_seconds)

PARTS = ("train", "val", "test")
LAYOUTS: dict[str, dict[str, str]] = {
    "getnext": {"user": "user_id", "poi": "POI_id", "category": "POI_catname", "lat": "latitude",
                "lon": "longitude", "time": "UTC_time", "tz": "timezone", "traj": "trajectory_id"},
    "sthgcn": {"user": "UserId", "poi": "PoiId", "category": "PoiCategoryName", "lat": "Latitude",
               "lon": "Longitude", "time": "UTCTime", "tz": "TimezoneOffset", "traj": "pseudo_session_trajectory_id"},
}
_NAME = re.compile(r"^(?P<stem>.+)_(?P<part>train|val|test)\.csv$")
_HEAD_BYTES = 1 << 16


def layout_of(header: Sequence[str]) -> str | None:
    """``"getnext"`` / ``"sthgcn"`` when the header holds that layout's user, POI and trajectory
    columns (the rest is checked on loading, with a message naming what is missing)."""
    cols = set(header)
    for name, roles in LAYOUTS.items():
        if {roles["user"], roles["poi"], roles["traj"]} <= cols:
            return name
    return None


def _header_of(path: Path) -> list[str]:
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    return [c.strip().strip('"') for c in head.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r").split(",")]


def siblings(path: Path) -> list[Path] | None:
    """The train, val and test files of the set ``path`` (named ``<stem>_<part>.csv``) belongs
    to, or ``None`` when its name does not follow that pattern."""
    m = _NAME.match(path.name)
    return [path.with_name(f"{m['stem']}_{p}.csv") for p in PARTS] if m else None


def load_presplit(path: str | Path, *, on_bad_row: OnBadRow = "raise", encoding: str | None = None,
                  name: str | None = None, time_window: Sequence[int | str] | None = None) -> PresplitTable:
    """Read a pre-split set (any one of its files, or its folder) into a :class:`PresplitTable`.

    Args:
        path: ``<stem>_train.csv``, ``<stem>_val.csv`` or ``<stem>_test.csv`` (the other two must lie
            beside it), or the folder holding one such set.
        on_bad_row: ``"raise"`` (default: the benchmark is read whole or not at all) or ``"skip"``
            (bad rows dropped and counted in ``report.bad_rows``; the split is then no longer the
            published one).
        encoding, time_window: as :func:`stgnn.data.sources.foursquare.load_tsmc2014`.
        name: dataset name (default: ``<stem>``, e.g. ``NYC``).

    Raises:
        DataError: a missing file or column, a bad value (``file:line: field``), a trajectory id
            shared by two users, or two trajectories of a user that overlap in time.
    """
    check_policy(on_bad_row)
    window = time_window_seconds(time_window)
    files = Presplit.file_set(Path(path)) or _missing_set(Path(path))
    report = CleaningReport()
    frames = []
    for part, f in enumerate(files):
        frames.append(_read_part(f, part, encoding, window, on_bad_row, report))
    raw = pd.concat(frames, ignore_index=True)
    df = raw[["user", "poi", "category", "lat", "lon", "ts", "tz_offset_min", "poi_text"]]
    require_rows(df, files[0], report)
    df = finalize(df, report, drop_duplicates=False)  # every row of a benchmark counts
    _check_trajectories(raw, files)
    # the contract's (ts, user string) order, stable (file order breaks ties), done once here so
    # the table keeps it and part / traj_id stay aligned
    codes, uniques = pd.factorize(df["user"], sort=False)
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[np.argsort(np.asarray(uniques, dtype=str), kind="stable")] = np.arange(len(uniques))
    order = np.lexsort((rank[codes], df["ts"].to_numpy()))
    df = df.iloc[order].reset_index(drop=True)
    stem = _NAME.match(files[0].name)["stem"]  # type: ignore[index]
    return PresplitTable(df, name=name or stem, source=str(files[0].parent / f"{stem}_{{train,val,test}}.csv"),
                         report=report, part=raw["part"].to_numpy(np.int8)[order],
                         traj_id=raw["traj"].to_numpy(dtype=object)[order], files=tuple(str(f) for f in files))


def _missing_set(path: Path) -> list[Path]:
    """Raise the error that says why ``path`` is no complete set (its header first, then its name
    and siblings)."""
    if path.is_file():
        _columns(path, _header_of(path))
    sib = siblings(path)
    if sib is None:
        raise DataError(path, None, "file", "a pre-split set is three files named <name>_train.csv, "
                        "<name>_val.csv, <name>_test.csv (e.g. GETNext's NYC_train.csv); rename them so")
    missing = [s.name for s in sib if not s.is_file()]
    raise DataError(path, None, "file", f"a pre-split set needs {missing} beside {path.name} (in {path.parent})")


def _columns(path: Path, header: list[str]) -> dict[str, str]:
    """``{role: column}`` of the layout ``header`` is in; a :class:`DataError` on line 1 naming the
    first missing column otherwise."""
    layout = layout_of(header)
    if layout is None:
        raise DataError(path, 1, "header", f"not a pre-split file: its header {header[:8]} lacks GETNext's "
                        "user_id, POI_id, trajectory_id (or STHGCN's UserId, PoiId, pseudo_session_trajectory_id)")
    roles = LAYOUTS[layout]
    absent = [c for c in roles.values() if c not in header]
    if absent:
        hint = (" (STHGCN's derived sample files hold local times only; use the NYC_*.csv files it reads)"
                if roles["time"] in absent else "")
        raise DataError(path, 1, absent[0], f"column {absent[0]!r} missing from this {layout} header{hint}; "
                        f"needed: {list(roles.values())}")
    return roles


def _read_part(path: Path, part: int, encoding: str | None, window: tuple[int, int], on_bad_row: str,
               report: CleaningReport) -> pd.DataFrame:
    """One file's rows, checked, with their part, trajectory id, file and line."""
    frame, line_no, counts = read_csv_rows(path, ",", encoding, report)
    report.rows_read += len(frame)
    roles = _columns(path, list(frame.columns))
    col = {k: frame[c].reset_index(drop=True) for k, c in roles.items()}
    chk = RowChecker(path, line_no)
    chk.require_id(col["user"], roles["user"])
    chk.require_id(col["poi"], roles["poi"])
    chk.require_id(col["traj"], roles["traj"])
    chk.require_no_nul(col["category"], roles["category"])
    t = pd.to_datetime(col["time"], format="ISO8601", utc=True, errors="coerce")
    rest = t.isna().to_numpy()
    if rest.any():  # the raw TSMC2014 spelling, "Tue Apr 03 18:00:09 +0000 2012", is read too
        t[rest] = pd.to_datetime(col["time"][rest], format=TSMC_TIME_FORMAT, utc=True, errors="coerce")
    chk.require_parsed(col["time"], t, roles["time"], "a UTC time like '2012-04-03 18:00:09+00:00' (ISO-8601) "
                       "or 'Tue Apr 03 18:00:09 +0000 2012'")
    ok = t.notna().to_numpy()
    ts = np.where(ok, to_epoch_seconds(t), 0)
    chk.check_time_window(col["time"], ts, ok, roles["time"], window)
    lat, lon = chk.check_coords(col["lat"], col["lon"], optional=False)
    tz = chk.check_tz(col["tz"], roles["tz"])
    keep = chk.resolve(on_bad_row, report, extra=counts)
    out = pd.DataFrame({"user": col["user"].str.strip(), "poi": col["poi"].str.strip(), "category": col["category"],
                        "lat": lat, "lon": lon, "ts": ts, "tz_offset_min": tz, "poi_text": "",
                        "traj": col["traj"].str.strip(), "part": part, "line": line_no,
                        "file": str(path), "traj_field": roles["traj"]})
    return out.loc[keep].reset_index(drop=True) if not keep.all() else out


def _check_trajectories(raw: pd.DataFrame, files: list[Path]) -> None:
    """A trajectory id belongs to one user, and a user's trajectories do not overlap in time (the
    Split keeps each user's check-ins as one time-ordered block of trajectories)."""
    traj, _ = pd.factorize(raw["traj"], sort=True)  # ties of start time: by id, as make_file_split orders them
    user, _ = pd.factorize(raw["user"])
    first = np.full(traj.max(initial=-1) + 1, -1, dtype=np.int64)
    first[traj[::-1]] = np.arange(len(raw))[::-1]
    other = np.flatnonzero(user != user[first[traj]])
    if len(other):
        i = int(other[0])
        j = int(first[traj[i]])
        raise DataError(raw["file"][i], int(raw["line"][i]), raw["traj_field"][i],
                        f"trajectory {raw['traj'][i]!r} holds check-ins of user {raw['user'][i]!r} and of user "
                        f"{raw['user'][j]!r} ({Path(raw['file'][j]).name}:{raw['line'][j]}); a trajectory id "
                        "belongs to one user")
    ts = raw["ts"].to_numpy()
    start = np.full(len(first), np.iinfo(np.int64).max)
    np.minimum.at(start, traj, ts)
    order = np.lexsort((ts, traj, start[traj], user))
    back = np.flatnonzero((user[order][1:] == user[order][:-1]) & (ts[order][1:] < ts[order][:-1]))
    if len(back):
        i, j = int(order[back[0] + 1]), int(order[back[0]])
        raise DataError(raw["file"][i], int(raw["line"][i]), raw["traj_field"][i],
                        f"check-in at {format_utc(ts[i])} of trajectory {raw['traj'][i]!r} comes before "
                        f"{format_utc(ts[j])} of trajectory {raw['traj'][j]!r} ({Path(raw['file'][j]).name}:"
                        f"{raw['line'][j]}), which started earlier: trajectories of user {raw['user'][i]!r} "
                        "overlap in time")


class Presplit(Source):
    """A pre-split train/val/test set (GETNext's / STHGCN's NYC files); the split comes from them."""

    format = "presplit"
    sniff_order = 50  # before the own-table catch-all, which would also take a .csv

    @classmethod
    def file_set(cls, path: Path) -> list[Path] | None:
        if path.is_dir():
            sets = [s for f in sorted(path.glob("*_train.csv")) if (s := siblings(f)) and all(x.is_file() for x in s)
                    and layout_of(_header_of(f))]
            if len(sets) > 1:
                raise DataError(path, None, "file", f"holds {len(sets)} pre-split sets "
                                f"({', '.join(s[0].name for s in sets)}); give one of their files")
            return sets[0] if sets else None
        sib = siblings(path)
        if sib and path.is_file() and all(s.is_file() for s in sib) and layout_of(_header_of(path)):
            return sib
        return None

    @classmethod
    def set_name(cls, main: Path) -> str:
        m = _NAME.match(main.name)
        return m["stem"] if m else super().set_name(main)

    @classmethod
    def sniff(cls, path: Path, lines: list[str]) -> bool:
        return layout_of([c.strip().strip('"') for c in lines[0].lstrip("\ufeff").split(",")]) is not None

    load_fn = staticmethod(load_presplit)
