"""Your own interaction data: a CSV (any delimiter, plain or gzip) or Parquet file with a header.

Map your column names onto the contract with ``columns``::

    load_table("orders.csv", {"user": "customer_id", "item": "sku", "time": "ordered_at"})

``user``, ``item`` and ``time`` are required; ``lat``/``lon`` are optional (``NaN`` when absent,
so shop, news or video interactions without locations work), as are ``category``, ``text`` (free
text of the item, used by the language-model features) and ``tz`` (UTC offset in minutes).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from stgnn.data.schema import TZ_MAX, TZ_MIN, CheckinTable, CleaningReport, DataError
from stgnn.data.validate import (OnBadRow, RowChecker, blank_mask, check_policy, decode, finalize, read_bytes,
                                to_epoch_seconds)

REQUIRED = ("user", "item", "time")
OPTIONAL = ("lat", "lon", "category", "text", "tz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def load_table(path: str | Path, columns: Mapping[str, str], *, time_format: str | None = None,
               tz_offset_min: int = 0, on_bad_row: OnBadRow = "raise", name: str | None = None,
               encoding: str | None = None, sep: str | None = None,
               drop_duplicates: bool = True) -> CheckinTable:
    """Load a CSV or Parquet file of interactions into a :class:`CheckinTable`.

    Args:
        path: ``.parquet``/``.pq`` is read as Parquet; anything else as delimited text with a
            header line (gzip detected from the bytes; ``.tsv`` defaults to tabs).
        columns: ``{contract key: your column}``; keys from ``user, item, time`` (required) and
            ``lat, lon, category, text, tz`` (optional).
        time_format: ``None`` = epoch seconds if every value is numeric, else ISO-8601 strings
            (times without an offset are taken as UTC); ``"epoch_s"``/``"epoch_ms"``; or a
            ``strftime`` format.
        tz_offset_min: the UTC offset (minutes) of every row when no ``tz`` column is mapped.
        on_bad_row, encoding, drop_duplicates: as in
            :func:`stgnn.data.sources.foursquare.load_tsmc2014`.
        sep: delimiter; default ``","`` (``"\\t"`` for ``.tsv``).

    Line numbers in errors are physical lines of a CSV (header = line 1; a record whose quoted
    field spans lines is located by its first line) and 1-based row numbers of a Parquet file.
    """
    check_policy(on_bad_row)
    unknown = set(columns) - set(REQUIRED) - set(OPTIONAL)
    missing = [k for k in REQUIRED if k not in columns]
    if unknown or missing:
        raise ValueError(f"columns: unknown keys {sorted(unknown)}, missing {missing}; "
                         f"valid keys are {REQUIRED + OPTIONAL}")
    if ("lat" in columns) != ("lon" in columns):
        raise ValueError("columns: map both 'lat' and 'lon', or neither")
    if not TZ_MIN <= tz_offset_min <= TZ_MAX:
        raise ValueError(f"tz_offset_min={tz_offset_min} outside [{TZ_MIN}, {TZ_MAX}]")
    path = Path(path)
    report = CleaningReport()
    if path.suffix.lower() in PARQUET_SUFFIXES:
        raw = pd.read_parquet(path)
        line_no = np.arange(1, len(raw) + 1, dtype=np.int64)
        counts = None
    else:
        raw, line_no, counts = _read_csv(path, sep or ("\t" if path.suffix == ".tsv" else ","),
                                         encoding, report)
    report.rows_read = len(raw) + (sum(len(f.line) for f in counts.flags) if counts else 0)
    absent = [k for k, c in columns.items() if c not in raw.columns]
    if absent:
        raise DataError(path, 1 if counts is not None else None, absent[0],
                        f"column {columns[absent[0]]!r} not in the file; its columns are "
                        f"{list(raw.columns)}")

    chk = RowChecker(path, line_no)
    col = {k: _as_str(raw[c]) for k, c in columns.items() if k != "time"}
    chk.require_nonempty(col["user"], "user")
    chk.require_nonempty(col["item"], "item")
    ts = _parse_time(raw[columns["time"]], time_format, chk)
    n = len(raw)
    empty = pd.Series(np.full(n, ""), dtype=object)  # no location: NaN coordinates
    lat, lon = chk.check_coords(col.get("lat", empty), col.get("lon", empty), optional=True)
    tz = chk.check_tz(col["tz"], "tz") if "tz" in col else np.full(n, tz_offset_min)
    keep = chk.resolve(on_bad_row, report, extra=counts)
    df = pd.DataFrame({
        "user": col["user"].str.strip().to_numpy(), "poi": col["item"].str.strip().to_numpy(),
        "category": col["category"].to_numpy() if "category" in col else "",
        "lat": lat, "lon": lon, "ts": ts, "tz_offset_min": tz,
        "poi_text": col["text"].to_numpy() if "text" in col else "",
    })
    if not keep.all():
        df = df.loc[keep]
    df = finalize(df, report, drop_duplicates=drop_duplicates)
    return CheckinTable(df, name=name or path.name.split(".")[0], source=str(path), report=report)


def _as_str(s: pd.Series) -> pd.Series:
    """Strings with missing values as ``""`` (Parquet columns may be numeric or null)."""
    if s.dtype.kind in "iu":
        return s.astype(str).reset_index(drop=True)
    return s.astype(object).where(s.notna(), "").astype(str).reset_index(drop=True)


def _read_csv(path: Path, sep: str, encoding: str | None, report: CleaningReport
              ) -> tuple[pd.DataFrame, np.ndarray, RowChecker]:
    """Header + string columns; records with the wrong field count are flagged, not parsed."""
    text = decode(read_bytes(path), path, encoding, report)
    kw = dict(sep=sep, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False)
    physical = text.count("\n") + (not text.endswith("\n"))
    try:
        frame = pd.read_csv(io.StringIO(text), engine="c", **kw)
        if len(frame) + 1 != physical:  # a quoted field spans lines: row i is not line i + 2
            raise pd.errors.ParserError("multi-line records")
        line_no = np.arange(2, len(frame) + 2, dtype=np.int64)
        counts = RowChecker(path, np.zeros(0, dtype=np.int64))
    except pd.errors.ParserError:
        # Slow path, only for broken or multi-line files: the csv module knows each record's line.
        frame, line_no, bad_lines, widths, width = _read_records(text, sep)
        counts = RowChecker(path, bad_lines)
        counts.flag(np.ones(len(bad_lines), dtype=bool), "line",
                    lambda i: f"expected {width} fields (as in the header), found {widths[i]}")
    blank = np.logical_and.reduce([blank_mask(frame[c]) for c in frame.columns])
    if blank.any():
        frame, line_no = frame.loc[~blank].reset_index(drop=True), line_no[~blank]
    return frame, line_no, counts


def _read_records(text: str, sep: str):
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    header = next(reader)
    rows, lines, bad_lines, widths = [], [], [], []
    start = reader.line_num + 1
    for rec in reader:
        if rec and len(rec) != len(header):
            bad_lines.append(start)
            widths.append(len(rec))
        elif rec:
            rows.append(rec)
            lines.append(start)
        start = reader.line_num + 1
    frame = pd.DataFrame(rows, columns=header, dtype=str) if rows else pd.DataFrame(columns=header)
    return (frame, np.asarray(lines, dtype=np.int64), np.asarray(bad_lines, dtype=np.int64),
            widths, len(header))


def _parse_time(s: pd.Series, time_format: str | None, chk: RowChecker) -> np.ndarray:
    """``(N,)`` int64 UTC seconds; unparsable values are flagged on ``chk`` as field ``time``."""
    s = s.reset_index(drop=True)
    if s.dtype.kind == "M":  # Parquet timestamps
        t = s.dt.tz_localize("UTC") if s.dt.tz is None else s
        chk.require_parsed(s.astype(str), t, "time", "a time")
        return to_epoch_seconds(t)
    text = _as_str(s)
    if time_format is None and s.dtype.kind in "iuf":
        time_format = "epoch_s"
    if time_format is None:
        num = pd.to_numeric(text, errors="coerce")
        time_format = "epoch_s" if num.notna().all() else "iso8601"
    if time_format in ("epoch_s", "epoch_ms"):
        v = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        chk.require_parsed(text, np.where(np.isfinite(v), v, np.nan), "time", f"{time_format} number")
        v = np.where(np.isfinite(v), v, 0) / (1000.0 if time_format == "epoch_ms" else 1.0)
        return np.floor(v).astype(np.int64)
    fmt = "ISO8601" if time_format == "iso8601" else time_format
    t = pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
    chk.require_parsed(text, t, "time", f"a time ({time_format})")
    return to_epoch_seconds(t)
