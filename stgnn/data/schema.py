"""The ``CheckinTable`` contract: one row per check-in, produced by every source.

Columns (all sources produce exactly these; ``poi_text`` may be empty strings):

============== ========= ===============================================================
column         dtype     meaning
============== ========= ===============================================================
user           str       raw user id
poi            str       raw POI / item id
category       str       category name (text; ``""`` when the source has none)
lat, lon       float64   WGS84 degrees (``NaN`` for items without a location)
ts             int64     UTC time, seconds since the epoch
tz_offset_min  int32     local time = UTC + offset (minutes); 0 when unknown
poi_text       str       optional free text of the POI (venue name, description)
============== ========= ===============================================================

Rows are sorted by ``(ts, user)`` with a stable sort, so the file order breaks ties.
Nothing downstream of :mod:`stgnn.data.sources` parses files.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

COLUMNS: tuple[str, ...] = ("user", "poi", "category", "lat", "lon", "ts", "tz_offset_min", "poi_text")
TZ_MIN, TZ_MAX = -720, 840


class DataError(ValueError):
    """Bad input data, located as precisely as we can: ``file:line: field: problem``.

    Args:
        path: the file the bad value came from.
        line: 1-based line number in that file (``None`` if not line-based).
        field: column / field name.
        message: what is wrong and, where possible, what to do.
    """

    def __init__(self, path: str, line: int | None, field: str, message: str) -> None:
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: field '{field}': {message}")


@dataclass
class BadRowReport:
    """What validation dropped under ``on_bad_row='skip'`` (never silent).

    Attributes:
        count: bad rows (lines) dropped.
        examples: the first ``max_examples`` of them as ``file:line: field 'f': problem``.
        by_field: count of bad rows per field that failed first (``{"lat": 3, "line": 1}``).
        errors: the :class:`DataError` of each example.
    """

    count: int = 0
    examples: list[str] = field(default_factory=list)
    max_examples: int = 5
    by_field: dict[str, int] = field(default_factory=dict)
    errors: list[DataError] = field(default_factory=list, repr=False)

    def add(self, err: DataError) -> None:
        self.count += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(str(err))
            self.errors.append(err)

    def kinds(self) -> str:
        """``"lat: 3, line: 1"``: bad rows by the field that failed, most frequent first."""
        return ", ".join(f"{k}: {v:,}" for k, v in sorted(self.by_field.items(), key=lambda kv: (-kv[1], kv[0])))

    def __str__(self) -> str:
        if not self.count:
            return "no bad rows"
        more = "" if self.count <= len(self.examples) else f"\n  ... and {self.count - len(self.examples)} more"
        return (f"{self.count} bad rows skipped ({self.kinds()}), e.g.:\n  " + "\n  ".join(self.examples)
                + more)


@dataclass
class CleaningReport:
    """Counts of what loading changed, printed by ``stgnn data stats``/``check``."""

    rows_read: int = 0
    bad_rows: BadRowReport = field(default_factory=BadRowReport)
    duplicates_dropped: int = 0
    pois_recoordinated: int = 0  # POIs seen at several coordinates, given one canonical one
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "bad_rows"}
        d["notes"] = list(self.notes)
        d["bad_rows"] = {"count": self.bad_rows.count, "by_field": dict(self.bad_rows.by_field),
                         "examples": list(self.bad_rows.examples)}
        return d


@dataclass
class CheckinTable:
    """Validated, time-sorted check-ins from one source.

    Args:
        df: a DataFrame with exactly :data:`COLUMNS` (see module docstring).
        name: a short dataset name (``"nyc"``, ``"gowalla"``, ``"synthetic"``).
        source: where it came from (path or generator description), for reports.
        report: what loading dropped or changed.
    """

    df: pd.DataFrame
    name: str = "checkins"
    source: str = ""
    report: CleaningReport = field(default_factory=CleaningReport)

    def __post_init__(self) -> None:
        missing = [c for c in COLUMNS if c not in self.df.columns]
        if missing:
            raise ValueError(f"CheckinTable from {self.source or self.name}: missing columns {missing}")
        self.df = normalize_frame(self.df[list(COLUMNS)])

    def __len__(self) -> int:
        return len(self.df)

    @property
    def num_users(self) -> int:
        return int(self.df["user"].nunique())

    @property
    def num_pois(self) -> int:
        return int(self.df["poi"].nunique())

    @property
    def num_categories(self) -> int:
        return int(self.df["category"].nunique())

    def __repr__(self) -> str:
        return (f"CheckinTable(name={self.name!r}, checkins={len(self)}, users={self.num_users}, "
                f"pois={self.num_pois}, categories={self.num_categories})")


def normalize_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Cast to the contract's dtypes and sort by ``(ts, user)`` (stable).

    Text columns stay as pandas stores strings (Arrow-backed ``str`` under pandas 3): no Python
    object per row. A frame already in order (every source and the generator sort once) is
    checked in one pass and not sorted again.
    """
    out = pd.DataFrame({
        "user": _text(df["user"]),
        "poi": _text(df["poi"]),
        "category": _text(df["category"].fillna("")),
        "lat": pd.to_numeric(df["lat"]).astype(np.float64).to_numpy(),
        "lon": pd.to_numeric(df["lon"]).astype(np.float64).to_numpy(),
        "ts": df["ts"].astype(np.int64).to_numpy(),
        "tz_offset_min": df["tz_offset_min"].astype(np.int32).to_numpy(),
        "poi_text": _text(df["poi_text"].fillna("")),
    })
    if not _is_sorted(out["ts"].to_numpy(), out["user"]):
        users = out["user"]
        codes, uniques = pd.factorize(users, sort=False, use_na_sentinel=False)
        # string order of the distinct users, then (ts, user) by a stable two-key sort
        rank = np.empty(len(uniques), dtype=np.int64)
        rank[np.argsort(np.asarray(uniques, dtype=str), kind="stable")] = np.arange(len(uniques))
        order = np.lexsort((rank[codes], out["ts"].to_numpy()))
        out = out.iloc[order].reset_index(drop=True)
    return out


def _text(col: pd.Series) -> Any:
    """A text column as pandas' string array (positional: the frame's index is dropped)."""
    return col.astype(str).array


def _is_sorted(ts: np.ndarray, user: pd.Series) -> bool:
    """Rows in ``(ts, user string)`` order? Users are compared only where times tie."""
    if len(ts) < 2:
        return True
    if not np.all(ts[1:] >= ts[:-1]):
        return False
    tie = np.flatnonzero(ts[1:] == ts[:-1])
    if not len(tie):
        return True
    # compared as pandas strings (Arrow compares UTF-8 bytes, i.e. code points, in C): no numpy
    # unicode copy of the tied rows, whose number grows faster than the rows
    a = user.iloc[tie].reset_index(drop=True)
    b = user.iloc[tie + 1].reset_index(drop=True)
    return bool((a <= b).all())
