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
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from stgnn.data.schema import TZ_MAX, TZ_MIN, CheckinTable, CleaningReport, DataError
from stgnn.data.sources.base import Source
from stgnn.data.textio import decode_lines, read_bytes
from stgnn.data.validate import (MS_PER_S, OnBadRow, RowChecker, blank_mask, by_value, check_policy, finalize, format_utc,
                                is_number_column, require_rows, time_window_seconds, to_epoch_seconds, to_float)

REQUIRED = ("user", "item", "time")
OPTIONAL = ("lat", "lon", "category", "text", "tz")
NUMERIC_KEYS = ("lat", "lon", "tz")  # checked as numbers when the file stores numbers
PARQUET_SUFFIXES = (".parquet", ".pq")
TIME_UNITS = ("auto", "s", "ms", "iso")


def header_columns(path: str | Path) -> list[str]:
    """The column names of a CSV/TSV header or a Parquet schema (for messages); ``[]`` if unreadable."""
    path = Path(path)
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        first = decode_lines(read_bytes(path)[:1 << 16], path, None, CleaningReport())[0].split("\n", 1)[0]
        sep = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
        return next(csv.reader([first], delimiter=sep), [])
    except Exception:  # noqa: BLE001 - only decorates a message; the loader reports real problems
        return []


def parse_columns(spec: str | Mapping[str, str]) -> dict[str, str]:
    """``"user=uid,item=sku,time=ts"`` (the CLI's ``--columns``) or a mapping -> a checked dict.

    Raises:
        ValueError: a malformed pair, an unknown or missing key (the message lists the valid ones).
    """
    if isinstance(spec, str):
        pairs = [p.strip() for p in spec.split(",") if p.strip()]
        bad = [p for p in pairs if "=" not in p or not p.split("=", 1)[0].strip() or not p.split("=", 1)[1].strip()]
        if bad:
            raise ValueError(f"columns: {bad[0]!r} is not KEY=COLUMN; write e.g. user=uid,item=sku,time=ts")
        spec = {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in pairs)}
    if not isinstance(spec, Mapping) or not all(isinstance(v, str) for v in spec.values()):
        raise ValueError(f"columns must map keys to column names (strings), got {spec!r}")
    unknown = sorted(set(spec) - set(REQUIRED) - set(OPTIONAL))
    missing = [k for k in REQUIRED if k not in spec]
    if unknown or missing:
        raise ValueError(f"columns: unknown keys {unknown}, missing {missing}; "
                         f"valid keys are {list(REQUIRED + OPTIONAL)} (user, item, time required)")
    if ("lat" in spec) != ("lon" in spec):
        raise ValueError("columns: map both 'lat' and 'lon', or neither")
    return dict(spec)


def load_table(path: str | Path, columns: Mapping[str, str] | str, *, time_unit: str = "auto",
               time_window: Sequence[int | str] | None = None, tz_offset_min: int = 0,
               on_bad_row: OnBadRow = "raise", name: str | None = None, encoding: str | None = None,
               sep: str | None = None, drop_duplicates: bool = True) -> CheckinTable:
    """Load a CSV or Parquet file of interactions into a :class:`CheckinTable`.

    Args:
        path: ``.parquet``/``.pq`` is read as Parquet; anything else as delimited text with a
            header line (gzip detected from the bytes; ``.tsv`` defaults to tabs).
        columns: ``{contract key: your column}`` (or ``"user=uid,item=sku,time=ts"``); keys from
            ``user, item, time`` (required) and ``lat, lon, category, text, tz`` (optional).
        time_unit: ``"s"`` / ``"ms"`` (epoch seconds / milliseconds), ``"iso"`` (ISO-8601; times
            without an offset are UTC), a ``strftime`` format such as ``"%d/%m/%Y %H:%M"``, or
            ``"auto"``: numbers are seconds or milliseconds by their magnitude (within
            ``time_window``), text is ISO-8601. ``auto`` refuses a column it cannot decide
            (numbers and dates mixed, seconds and milliseconds mixed, or neither) and asks for
            the unit instead of guessing.
        time_window: plausible years ``(start, end)`` (or ISO dates) of the check-ins; times
            outside are bad rows. Default 2000 to 2100 UTC.
        tz_offset_min: the UTC offset (minutes) of every row when no ``tz`` column is mapped.
        on_bad_row, encoding, drop_duplicates: as in
            :func:`stgnn.data.sources.foursquare.load_tsmc2014`.
        sep: delimiter; default ``","`` (``"\\t"`` for ``.tsv``).

    Line numbers in errors are physical lines of a CSV (header = line 1; a record whose quoted
    field spans lines is located by its first line) and 1-based row numbers of a Parquet file
    (whose schema-level problems, e.g. a missing column, name no line).
    """
    check_policy(on_bad_row)
    columns = parse_columns(columns)
    if time_unit not in TIME_UNITS and "%" not in str(time_unit):
        raise ValueError(f"time_unit={time_unit!r}: choose one of {list(TIME_UNITS)} or a strftime format "
                         "such as '%d/%m/%Y %H:%M'")
    if not TZ_MIN <= tz_offset_min <= TZ_MAX:
        raise ValueError(f"tz_offset_min={tz_offset_min} outside [{TZ_MIN}, {TZ_MAX}]")
    window = time_window_seconds(time_window)
    path = Path(path)
    report = CleaningReport()
    if path.suffix.lower() in PARQUET_SUFFIXES:
        raw = _read_parquet(path)
        line_no = np.arange(1, len(raw) + 1, dtype=np.int64)
        counts = None
    else:
        raw, line_no, counts = read_csv_rows(path, sep or ("\t" if path.suffix == ".tsv" else ","),
                                         encoding, report)
    report.rows_read = len(raw) + (sum(len(f.line) for f in counts.flags if f.field == "line") if counts else 0)
    absent = [k for k, c in columns.items() if c not in raw.columns]
    if absent:
        raise DataError(path, 1 if counts is not None else None, absent[0], f"column {columns[absent[0]]!r} not in the file; its columns are "
                        f"{[str(c) for c in raw.columns]}")

    chk = RowChecker(path, line_no)
    # numbers (Parquet) are checked as numbers; everything else as text
    col = {k: raw[c].reset_index(drop=True) if k in NUMERIC_KEYS and is_number_column(raw[c]) else _as_str(raw[c])
           for k, c in columns.items() if k != "time"}
    # Each text column is hashed once (10^7 rows hold ~10^5 distinct ids): its codes serve the
    # checks, the stripping of ids and finalize's duplicate and coordinate passes.
    fac = {k: pd.factorize(col[k], use_na_sentinel=False) for k in TEXT_KEYS if k in col}
    chk.require_id(col["user"], "user", fac["user"])
    chk.require_id(col["item"], "item", fac["item"])
    for k in ("category", "text"):
        if k in col:
            chk.require_no_nul(col[k], k, fac[k])
    ts = _parse_time(raw[columns["time"]], time_unit, chk, window, line_no)
    n = len(raw)
    empty = pd.Series(np.full(n, ""), dtype=object)  # no location: NaN coordinates
    lat, lon = chk.check_coords(col.get("lat", empty), col.get("lon", empty), optional=True)
    tz = chk.check_tz(col["tz"], "tz") if "tz" in col else np.full(n, tz_offset_min)
    keep = chk.resolve(on_bad_row, report, extra=counts)
    fac["user"], fac["item"] = _stripped(fac["user"]), _stripped(fac["item"])
    df = pd.DataFrame({
        "user": fac["user"][1].array.take(fac["user"][0]), "poi": fac["item"][1].array.take(fac["item"][0]),
        "category": col["category"].array if "category" in col else "",
        "lat": lat, "lon": lon, "ts": ts, "tz_offset_min": tz,
        "poi_text": col["text"].array if "text" in col else "",
    })
    codes = {CONTRACT[k]: c for k, (c, _) in fac.items()}
    if not keep.all():
        df, codes = df.loc[keep], {k: c[keep] for k, c in codes.items()}
    require_rows(df, path, report)
    df = finalize(df, report, drop_duplicates=drop_duplicates, codes=codes)
    return CheckinTable(df, name=name or path.name.split(".")[0], source=str(path), report=report)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(path, None, "parquet", f"cannot read as Parquet ({type(e).__name__}: {e}); is the "
                        "file complete? Re-export it, or give a .csv name if it is text") from None


TEXT_KEYS = ("user", "item", "category", "text")
CONTRACT = {"user": "user", "item": "poi", "category": "category", "text": "poi_text"}  # key -> COLUMNS name


def _stripped(factor: tuple[np.ndarray, Any]) -> tuple[np.ndarray, Any]:
    """The factor of the values with surrounding whitespace stripped, from that of the values:
    each distinct value is stripped once (values equal once stripped share a code)."""
    codes, uniques = factor
    s_codes, s_uniques = pd.factorize(pd.Series(uniques).str.strip(), use_na_sentinel=False)
    return s_codes[codes], s_uniques


def _as_str(s: pd.Series) -> pd.Series:
    """Strings with missing values as ``""`` (Parquet columns may be numeric or null)."""
    if isinstance(s.dtype, pd.StringDtype):  # already strings (pandas' own storage): no object copy
        return s.fillna("").reset_index(drop=True)
    if s.dtype.kind in "iu":
        return by_value(s, lambda v: v.astype(str))
    return by_value(s, lambda v: v.astype(object).where(v.notna(), "").astype(str))


def read_csv_rows(path: Path, sep: str, encoding: str | None, report: CleaningReport
              ) -> tuple[pd.DataFrame, np.ndarray, RowChecker]:
    """Header + string columns; records with the wrong field count are flagged, not parsed."""
    text, bad_encoding = decode_lines(read_bytes(path), path, encoding, report)
    if not text.strip():
        raise DataError(path, 1, "file", "the file is empty; a CSV needs a header line naming its columns")
    header = _header(text, sep, path)
    kw = dict(sep=sep, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False)
    physical = text.count("\n") + (not text.endswith("\n"))
    try:
        frame = pd.read_csv(io.StringIO(text), engine="c", **kw)
        if list(frame.columns) != header:  # pandas renamed something (e.g. a quoted newline in the header)
            raise pd.errors.ParserError("header differs")
        if len(frame) + 1 != physical:  # a quoted field spans lines: row i is not line i + 2
            raise pd.errors.ParserError("multi-line records")
        line_no = np.arange(2, len(frame) + 2, dtype=np.int64)
        counts = RowChecker(path, np.zeros(0, dtype=np.int64))
    except pd.errors.ParserError:
        # Slow path, only for broken or multi-line files: the csv module knows each record's line.
        frame, line_no, bad_lines, widths, width = _read_records(text, sep, path)
        counts = RowChecker(path, bad_lines)
        counts.flag(np.ones(len(bad_lines), dtype=bool), "line",
                    lambda i: f"expected {width} fields (as in the header), found {widths[i]}")
    counts.flag_lines(bad_encoding, "encoding")
    blank = np.logical_and.reduce([blank_mask(frame[c]) for c in frame.columns])
    if blank.any():
        frame, line_no = frame.loc[~blank].reset_index(drop=True), line_no[~blank]
    return frame, line_no, counts


def _header(text: str, sep: str, path: Path) -> list[str]:
    """The header's column names; an empty, duplicated or blank name is an error on line 1."""
    try:
        header = next(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=sep), [])
    except csv.Error as e:
        raise DataError(path, 1, "header", f"malformed header line ({e})") from None
    if not header or all(not h.strip() for h in header):
        raise DataError(path, 1, "header", "the first line is empty; a CSV needs a header line naming its columns")
    seen = set()
    for h in header:
        if h in seen:
            raise DataError(path, 1, "header", f"column name {h!r} appears twice in the header")
        seen.add(h)
    return header


def _read_records(text: str, sep: str, path: Path):
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=sep)
    header = next(reader)
    rows, lines, bad_lines, widths = [], [], [], []
    start = reader.line_num + 1
    records = iter(reader)
    while True:
        try:
            rec = next(records)
        except StopIteration:
            break
        except csv.Error as e:  # e.g. a bare CR inside an unquoted field
            raise DataError(path, start, "line", f"malformed CSV record ({e})") from None
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


def _parse_time(s: pd.Series, time_unit: str, chk: RowChecker, window: tuple[int, int],
                line_no: np.ndarray) -> np.ndarray:
    """``(N,)`` int64 UTC seconds; unparsable or implausible values are flagged on ``chk`` as
    field ``time`` (and are 0 in the result)."""
    s = s.reset_index(drop=True)
    if s.dtype.kind == "M":  # Parquet timestamps
        t = s.dt.tz_localize("UTC") if s.dt.tz is None else s
        ok = t.notna().to_numpy()
        ts = np.where(ok, to_epoch_seconds(t), 0)
        chk.require_parsed(s.astype(str), t, "time", "a time")
        chk.check_time_window(s.astype(str), ts, ok, "time", window)
        return np.where(ok & (ts >= window[0]) & (ts < window[1]), ts, 0)
    text = s if is_number_column(s) else _as_str(s)  # epoch numbers as they are (Parquet)
    if time_unit == "auto":
        time_unit = _detect_unit(text, chk.path, window, line_no)
    if time_unit in ("s", "ms"):
        v = to_float(text)
        finite = np.isfinite(v)
        what = "epoch seconds" if time_unit == "s" else "epoch milliseconds"
        chk.flag(~finite, "time", lambda i: f"cannot parse {text.iloc[i]!r} as {what} (time_unit={time_unit!r})")
        secs = np.where(finite, v, 0.0) / (MS_PER_S if time_unit == "ms" else 1)
        # compare as floats: 1e308 must be flagged, not cast to INT64_MIN
        in_window = finite & (secs >= window[0]) & (secs < window[1])
        chk.check_time_window(text, np.where(finite, secs, 0.0), finite, "time", window)
        return np.floor(np.where(in_window, secs, 0.0)).astype(np.int64)
    fmt = "ISO8601" if time_unit == "iso" else time_unit
    try:
        t = pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
    except ValueError as e:  # a malformed strftime format
        raise ValueError(f"time_unit={time_unit!r} is not a usable strftime format ({e})") from None
    ok = t.notna().to_numpy()
    chk.require_parsed(text, t, "time", "an ISO-8601 time" if time_unit == "iso" else f"a time ({time_unit})")
    ts = np.where(ok, to_epoch_seconds(t), 0)
    chk.check_time_window(text, ts, ok, "time", window)
    return np.where(ok & (ts >= window[0]) & (ts < window[1]), ts, 0)


def _detect_unit(text: pd.Series, path: str, window: tuple[int, int], line_no: np.ndarray) -> str:
    """``time_unit="auto"``: ``"s"``, ``"ms"`` or ``"iso"`` from the values, or a
    :class:`DataError` naming two lines that disagree (never a guess)."""
    lo, hi = window
    blank = blank_mask(text)
    v = to_float(text)
    numeric = np.isfinite(v) & ~blank
    with np.errstate(invalid="ignore"):
        as_s = numeric & (v >= lo) & (v < hi)
        as_ms = numeric & (v / MS_PER_S >= lo) & (v / MS_PER_S < hi)
    rest = ~numeric & ~blank
    dates = np.zeros(len(text), dtype=bool)
    if rest.any():
        dates[rest] = pd.to_datetime(_as_str(text[rest]), format="ISO8601", utc=True, errors="coerce").notna().to_numpy()

    def at(mask: np.ndarray) -> str:
        i = int(np.flatnonzero(mask)[0])
        return f"line {int(line_no[i])}: {text.iloc[i]!r}"

    ask = "pass time_unit (--time-unit s|ms|iso, or a strftime format) to say which"
    if numeric.any() and dates.any():
        i = int(np.flatnonzero(dates if dates.sum() <= numeric.sum() else numeric)[0])
        raise DataError(path, int(line_no[i]), "time", f"time_unit='auto' cannot decide: the column holds "
                        f"epoch numbers ({at(numeric)}) and dates ({at(dates)}); {ask}")
    if numeric.any():
        if as_s.any() and as_ms.any():
            i = int(np.flatnonzero(as_ms if as_ms.sum() <= as_s.sum() else as_s)[0])
            raise DataError(path, int(line_no[i]), "time", "time_unit='auto' cannot decide: some numbers look "
                            f"like epoch seconds ({at(as_s)}), others like milliseconds ({at(as_ms)}); {ask}")
        if as_s.any() or as_ms.any():
            return "s" if as_s.any() else "ms"
        i = int(np.flatnonzero(numeric)[0])
        raise DataError(path, int(line_no[i]), "time", f"time_unit='auto' cannot decide: numbers such as "
                        f"{at(numeric)} are neither epoch seconds nor milliseconds between "
                        f"{format_utc(lo)[:10]} and {format_utc(hi)[:10]}; {ask}, and widen time_window if they are real")
    if dates.any():
        return "iso"
    if rest.any():
        i = int(np.flatnonzero(rest)[0])
        raise DataError(path, int(line_no[i]), "time", f"time_unit='auto' cannot read {at(rest)} as an epoch "
                        "number or an ISO-8601 date; pass time_unit as a strftime format, e.g. "
                        "--time-unit '%d/%m/%Y %H:%M'")
    return "s"  # no values at all: nothing to decide


class Table(Source):
    """Your own CSV/TSV (plain or gzip) or Parquet file, read with a column mapping."""

    format = "table"
    sniff_order = 1000  # the catch-all: only files no specific format recognises
    suffixes = PARQUET_SUFFIXES
    needs_columns = True

    @classmethod
    def sniff(cls, path: Path, lines: list[str]) -> bool:
        name = path.name.lower().removesuffix(".gz")
        return name.endswith((".csv", ".tsv"))

    @classmethod
    def check_options(cls, path: Path | None, kw: dict[str, Any]) -> None:
        super().check_options(path, kw)
        if "columns" not in kw:
            raise DataError(path, 1, "columns", f"an own table (CSV/TSV/Parquet) needs a column mapping; its "
                            f"columns are {header_columns(path)}. Pass --columns user=COL,item=COL,time=COL "
                            "[lat=, lon=, category=, text=, tz=] (config: dataset.columns)")

    load_fn = staticmethod(load_table)
