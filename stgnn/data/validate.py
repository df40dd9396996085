"""Shared, vectorised row validation for every source loader.

Loaders read a file into string columns, then ask a :class:`RowChecker` to flag bad values with
whole-column masks (fast: no Python loop over rows). Only when something is wrong do we build
messages, and only for the rows we report. The policy is the same everywhere:

* ``on_bad_row="raise"`` (default): raise :class:`~stgnn.data.schema.DataError` for the FIRST bad
  row of the file (lowest line number), naming ``file:line`` and the field.
* ``on_bad_row="skip"``: drop every bad row, count them with examples in
  ``report.bad_rows`` and log a warning. Never silent.

After validation, :func:`finalize` drops exact duplicate rows and gives each POI one canonical
coordinate, recording both in the :class:`~stgnn.data.schema.CleaningReport`.
"""
from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import pandas as pd

from stgnn.data.schema import COLUMNS, TZ_MAX, TZ_MIN, CleaningReport, DataError
from stgnn.data.textio import decode_lines, read_bytes, split_lines

log = logging.getLogger(__name__)
Factor = tuple  # (codes (N,) int, uniques (K,)): what pd.factorize returns

OnBadRow = Literal["raise", "skip"]


def check_policy(on_bad_row: str) -> None:
    if on_bad_row not in ("raise", "skip"):
        raise ValueError(f"on_bad_row must be 'raise' or 'skip', got {on_bad_row!r}")


# --------------------------------------------------------------------------- time window

DEFAULT_TIME_WINDOW = (2000, 2100)  # plausible check-in years, [start, end) UTC
MS_PER_S = 1000


def time_window_seconds(window: Sequence[int | str] | None = None) -> tuple[int, int]:
    """``(lo, hi)`` UTC seconds of a plausibility window ``[start, end)``.

    Args:
        window: two bounds, each a year (``2000``) or an ISO date (``"2012-04-01"``);
            ``None`` = :data:`DEFAULT_TIME_WINDOW` (2000-01-01 to 2100-01-01 UTC).
    """
    window = DEFAULT_TIME_WINDOW if window is None else window
    if isinstance(window, str):
        window = [w.strip() for w in window.split(",")]
    if len(window) != 2:
        raise ValueError(f"time_window must be two bounds (years or ISO dates), got {window!r}")
    out = []
    for w in window:
        try:
            # an int is a year (pd.Timestamp(2000) would be 2000 ns after 1970)
            t = pd.Timestamp(f"{int(w):04d}-01-01" if str(w).strip().isdigit() else str(w))
            out.append(int((t.tz_localize("UTC") if t.tzinfo is None else t).timestamp()))
        except (ValueError, TypeError, OverflowError):
            raise ValueError(f"time_window bound {w!r} is neither a year nor an ISO date") from None
    if out[0] >= out[1]:
        raise ValueError(f"time_window {list(window)} is empty: the start must come before the end")
    return out[0], out[1]


def format_utc(ts: float) -> str:
    """``"2012-04-03 18:00:09 UTC"`` of UTC seconds; a rough year far outside the calendar."""
    if not -62_135_596_800 <= ts < 253_402_300_800:  # years 1 to 9999
        return f"about year {1970 + ts / 31_556_952:.0f}" if np.isfinite(ts) else "not a time"
    return pd.Timestamp(int(ts), unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def read_delimited(path: str | Path, n_fields: int, *, encoding: str | None,
                   report: CleaningReport, sep: str = "\t"
                   ) -> tuple[pd.DataFrame, np.ndarray, RowChecker]:
    """Read a headerless ``sep``-separated file into string columns ``0..n_fields-1``.

    Lines with the wrong number of fields or an encoding problem are flagged on the returned
    checker (to be passed as ``extra=`` to the row checker's :meth:`RowChecker.resolve`); lines
    with the wrong field count are left out of the frame. ``report.rows_read`` becomes the
    number of non-blank lines.

    Returns:
        frame: ``(N, n_fields)`` str; line_no: ``(N,)`` 1-based physical line of each row;
        the field-count checker.

    Raises:
        DataError: corrupt gzip, CR-only line endings, or no data line at all.
    """
    text, bad_encoding = decode_lines(read_bytes(path), path, encoding, report)
    lines, line_no = split_lines(text)
    report.rows_read = len(lines)
    if not lines:
        raise DataError(path, 1, "file", "no data lines: the file is empty (or blank)")
    counts = RowChecker(path, line_no)
    counts.flag_lines(bad_encoding, "encoding")
    good = counts.check_field_count(lines, n_fields, sep)
    if not good.all():
        lines, line_no = [ln for ln, g in zip(lines, good) if g], line_no[good]
    if len(lines) == 0:
        return pd.DataFrame({k: pd.Series([], dtype=object) for k in range(n_fields)}), line_no, counts
    # The C parser is the fast path; QUOTE_NONE because venue names contain stray quotes.
    frame = pd.read_csv(io.StringIO("\n".join(lines)), sep=sep, header=None,
                        names=list(range(n_fields)), dtype=object, quoting=csv.QUOTE_NONE,
                        keep_default_na=False, na_filter=False, skip_blank_lines=False,
                        lineterminator="\n", engine="c")  # a stray \r stays inside its field
    if len(frame) != len(line_no):  # a parser disagreement would misplace every line number
        raise AssertionError(f"{path}: parsed {len(frame)} rows from {len(line_no)} lines")
    return frame, line_no, counts


def require_rows(df: pd.DataFrame, path: str | Path, report: CleaningReport) -> None:
    """A loader's result must hold check-ins: an empty table is an error, never an empty result.

    Raises:
        DataError: no data rows at all, or every row was bad (under ``on_bad_row="skip"``).
    """
    if len(df):
        return
    if report.bad_rows.count:
        first = report.bad_rows.errors[0]
        raise DataError(path, first.line, first.field, f"every row is bad ({report.bad_rows.count:,} of "
                        f"{report.rows_read:,}; {report.bad_rows.kinds()}); the first: {first.message}")
    raise DataError(path, 1, "file", "no check-in rows (the file is empty or holds only a header)")


def to_epoch_seconds(t: pd.Series) -> np.ndarray:
    """``(N,)`` int64 UTC seconds of a tz-aware datetime Series (NaT rows give garbage; drop them)."""
    naive = t.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.to_numpy().astype("datetime64[s]").astype(np.int64)


# --------------------------------------------------------------------------- checking

@dataclass
class _Flag:
    line: np.ndarray          # (k,) line numbers of the bad rows
    rows: np.ndarray          # (k,) their row positions in the frame that was checked
    field: str
    message: Callable[[int], str]  # row position -> message


class RowChecker:
    """Collects bad rows from whole-column checks, then applies the ``on_bad_row`` policy.

    Args:
        path: file name used in messages.
        line_no: ``(N,)`` 1-based line number of each row being checked.
    """

    def __init__(self, path: str | Path, line_no: np.ndarray) -> None:
        self.path = str(path)
        self.line_no = np.asarray(line_no, dtype=np.int64)
        self.flags: list[_Flag] = []

    def flag(self, bad: np.ndarray, field: str, message: Callable[[int], str]) -> None:
        """Mark rows where ``bad`` (``(N,)`` bool) is true as failing ``field``."""
        rows = np.flatnonzero(np.asarray(bad, dtype=bool))
        if len(rows):
            self.flags.append(_Flag(self.line_no[rows], rows, field, message))

    def flag_lines(self, messages: dict[int, str], field: str) -> None:
        """Mark physical lines ``{line: message}`` (not necessarily rows of the frame) as bad."""
        if messages:
            lines = np.asarray(sorted(messages), dtype=np.int64)
            self.flags.append(_Flag(lines, lines, field, lambda line: messages[int(line)]))

    # Common checks; ``values`` are the raw strings, ``parsed`` the parsed numbers / times.
    def require_nonempty(self, values: pd.Series, field: str) -> None:
        self.flag(blank_mask(values), field, lambda i: "empty id")

    def require_id(self, values: pd.Series, field: str, factor: Factor | None = None) -> None:
        """Ids must be non-blank and printable: a NUL or control character makes a phantom id
        (``"u28\\x00"`` beside ``"u28"``) that no user would recognise."""
        def kinds(v: pd.Series) -> np.ndarray:  # one pass over the distinct ids: 1 blank, 2 control
            arr = v.fillna("").astype(str).to_numpy(dtype=object)
            blank = (arr == "") | np.fromiter(map(str.isspace, arr), dtype=bool, count=len(arr))
            control = np.zeros(len(arr), dtype=bool)
            if _CONTROL.search("".join(arr)) is not None:  # the common case: one C-level scan
                control = np.fromiter((_CONTROL.search(x) is not None for x in arr), dtype=bool, count=len(arr))
            return blank.astype(np.int8) | (control.astype(np.int8) << 1)

        kind = by_value(values, kinds, factor)
        self.flag(kind & 1 > 0, field, lambda i: "empty id")
        bad = kind & 2 > 0
        self.flag(bad, field, lambda i: f"id {values.iloc[i]!r} contains a control character "
                                        f"({_first_control(values.iloc[i])}); ids must be printable text")

    def require_no_nul(self, values: pd.Series, field: str, factor: Factor | None = None) -> None:
        """Free text may hold any character but NUL (a sign of binary or UTF-16 data)."""
        bad = _matches(values, _NUL, factor)
        self.flag(bad, field, lambda i: f"{values.iloc[i][:40]!r} contains a NUL byte; is the file "
                                        "binary or UTF-16? Save it as UTF-8 text")

    def check_time_window(self, values: pd.Series, ts: np.ndarray, ok: np.ndarray, field: str,
                          window: tuple[int, int]) -> None:
        """Flag parsed times (``ok``) outside the plausibility window ``[lo, hi)`` UTC seconds."""
        lo, hi = window
        bad = np.asarray(ok, dtype=bool) & ((ts < lo) | (ts >= hi))

        def message(i: int) -> str:
            hint = ""
            if lo <= ts[i] / MS_PER_S < hi:
                hint = "; it looks like epoch milliseconds read as seconds (pass time_unit='ms')"
            return (f"{values.iloc[i]!r} is {format_utc(ts[i])}, outside the plausible window "
                    f"[{format_utc(lo)[:10]}, {format_utc(hi)[:10]}){hint}; if such times are real, widen time_window")

        self.flag(bad, field, message)

    def require_parsed(self, values: pd.Series, parsed: pd.Series | np.ndarray, field: str,
                       what: str) -> None:
        bad = pd.isna(parsed)
        bad = np.asarray(bad, dtype=bool)
        self.flag(bad, field, lambda i: f"cannot parse {values.iloc[i]!r} as {what}")

    def require_range(self, values: pd.Series, parsed: np.ndarray, field: str,
                      lo: float, hi: float) -> None:
        """Flag parsed (non-NaN) values outside ``[lo, hi]``."""
        with np.errstate(invalid="ignore"):
            bad = (parsed < lo) | (parsed > hi)
        self.flag(bad, field, lambda i: f"{values.iloc[i]!r} outside [{lo:g}, {hi:g}]")

    def check_coords(self, lat_s: pd.Series, lon_s: pd.Series, *, optional: bool
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Parse and check latitude/longitude; empty values are NaN when ``optional``."""
        out = []
        for s, field, lim in ((lat_s, "lat", 90.0), (lon_s, "lon", 180.0)):
            v = to_float(s)
            unparsable = ~np.isfinite(v)
            if optional:
                unparsable &= ~blank_mask(s)
            self.flag(unparsable, field, lambda i, s=s, f=field:
                      f"cannot parse {s.iloc[i]!r} as a {'latitude' if f == 'lat' else 'longitude'}")
            self.require_range(s, v, field, -lim, lim)
            out.append(np.where(np.isfinite(v), v, np.nan))
        if optional:  # a location is both coordinates or neither
            half = blank_mask(lat_s) != blank_mask(lon_s)
            self.flag(half, "lat", lambda i: f"latitude {lat_s.iloc[i]!r} and longitude {lon_s.iloc[i]!r}: "
                                             "give both or leave both empty")
        return out[0], out[1]

    def check_tz(self, tz_s: pd.Series, field: str = "tz_offset_min") -> np.ndarray:
        """Parse an integer UTC offset in minutes and check it lies in ``[-720, 840]``."""
        v = to_float(tz_s)
        finite = np.isfinite(v)
        self.flag(~finite, field, lambda i: f"cannot parse {tz_s.iloc[i]!r} as minutes")
        with np.errstate(invalid="ignore"):
            self.flag(finite & (v != np.round(v)), field,
                      lambda i: f"{tz_s.iloc[i]!r} is not a whole number of minutes")
        self.require_range(tz_s, v, field, TZ_MIN, TZ_MAX)
        return np.where(finite, v, 0).astype(np.int64)

    def check_field_count(self, lines: list[str], expected: int, sep: str = "\t") -> np.ndarray:
        """Flag lines without exactly ``expected`` fields; returns the ``(N,)`` good mask."""
        n = np.fromiter((ln.count(sep) for ln in lines), dtype=np.int64, count=len(lines)) + 1
        bad = n != expected
        self.flag(bad, "line", lambda i: f"expected {expected} {_sep_name(sep)}-separated "
                                         f"fields, found {n[i]}")
        return ~bad

    # Policy.
    def resolve(self, on_bad_row: str, report: CleaningReport, *, extra: RowChecker | None = None
                ) -> np.ndarray:
        """Apply the policy to this checker's rows (plus ``extra``'s flags, checked earlier on
        other rows, so "first bad row" spans both stages).

        Returns:
            ``(N,)`` bool mask of rows to keep. Raises :class:`DataError` under ``"raise"``.
        """
        flags = (extra.flags if extra is not None else []) + self.flags
        if not flags:
            return np.ones(len(self.line_no), dtype=bool)
        lines = np.concatenate([f.line for f in flags])
        which = np.concatenate([np.full(len(f.line), k) for k, f in enumerate(flags)])
        pos = np.concatenate([np.arange(len(f.line)) for f in flags])
        # First error per line: by line, then by the order checks were made (field order).
        order = np.lexsort((which, lines))
        lines, which, pos = lines[order], which[order], pos[order]
        first = np.ones(len(lines), dtype=bool)
        first[1:] = lines[1:] != lines[:-1]

        def err(j: int) -> DataError:
            f = flags[which[j]]
            return DataError(self.path, int(lines[j]), f.field, f.message(int(f.rows[pos[j]])))

        if on_bad_row == "raise":
            raise err(0)
        firsts = np.flatnonzero(first)
        for j in firsts[: report.bad_rows.max_examples]:
            report.bad_rows.add(err(int(j)))
        report.bad_rows.count += len(firsts) - min(len(firsts), report.bad_rows.max_examples)
        kinds = pd.Series([flags[k].field for k in which[firsts]]).value_counts(sort=False)
        for field, n in kinds.items():
            report.bad_rows.by_field[field] = report.bad_rows.by_field.get(field, 0) + int(n)
        log.warning("%s: %s", self.path, report.bad_rows)
        return ~np.isin(self.line_no, lines)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NUL = re.compile("\x00")


def by_value(values: pd.Series, fn: Callable[[pd.Series], Any], factor: Factor | None = None) -> Any:
    """``fn(values)`` computed on one row per distinct value and spread back to every row.

    Ids, coordinates and categories repeat across check-ins (10^7 check-ins hold ~10^5 users and
    POIs), so per-value Python work (``str.isspace``, ``float()``) runs once per distinct value,
    and the column is hashed as it is stored (no Python object per row), once (``factor``).

    Args:
        values: ``(N,)`` a column. Floats are told apart by their bits (``-0.0`` from ``0.0``).
        fn: ``(K,)`` Series of the same dtype, the first row of each distinct value ->
            ``(K,)`` array or Series (``fn`` must be elementwise).
        factor: ``pd.factorize(values, use_na_sentinel=False)`` if the caller has it.

    Returns:
        ``(N,)`` numpy array, or a Series when ``fn`` returns one.
    """
    key: Any = values
    if values.dtype.kind == "f":
        key = np.ascontiguousarray(values.to_numpy()).view(f"i{values.dtype.itemsize}")
    codes, uniques = factor if factor is not None else pd.factorize(key, use_na_sentinel=False)
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # the last write of each code is its first row
    out = fn(values.iloc[first].reset_index(drop=True))
    if isinstance(out, pd.Series):
        return pd.Series(out.array.take(codes))
    return np.asarray(out)[codes]


def _matches(values: pd.Series, pattern: re.Pattern, factor: Factor | None = None) -> np.ndarray:
    """``(N,)`` bool: the string contains ``pattern`` (per distinct value, :func:`by_value`)."""
    def fn(v: pd.Series) -> np.ndarray:
        arr = v.fillna("").astype(str).to_numpy(dtype=object)
        if pattern.search("".join(arr)) is None:  # the common case, one C-level scan
            return np.zeros(len(arr), dtype=bool)
        return np.fromiter((pattern.search(x) is not None for x in arr), dtype=bool, count=len(arr))

    return by_value(values, fn, factor)


def _first_control(value: str) -> str:
    m = _CONTROL.search(value)
    return f"{m.group()!r} at position {m.start() + 1}" if m else "none"


def is_number_column(values: pd.Series) -> bool:
    """A numeric (not bool) column, e.g. Parquet's: parsed as it is, no text round trip."""
    return pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)


def blank_mask(values: pd.Series) -> np.ndarray:
    """``(N,)`` bool: missing, empty or whitespace-only (per distinct value, :func:`by_value`);
    in a number column, missing."""
    if is_number_column(values):
        return values.isna().to_numpy()

    def fn(v: pd.Series) -> np.ndarray:
        arr = v.fillna("").to_numpy(dtype=object)
        return (arr == "") | np.fromiter(map(str.isspace, arr), dtype=bool, count=len(arr))

    return by_value(values, fn)


def to_float(values: pd.Series) -> np.ndarray:
    """``(N,)`` float64 of numeric strings, ``NaN`` where unparsable (per distinct value).

    numpy's own conversion is several times faster than ``pd.to_numeric`` but all-or-nothing,
    so it is the fast path for clean files. A number column is converted as it is (its text
    would parse back to the same float64: ``repr`` round-trips), missing values ``NaN``.
    """
    if is_number_column(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)

    def fn(v: pd.Series) -> np.ndarray:
        try:
            return v.to_numpy(dtype=object).astype(np.float64)
        except (ValueError, TypeError):
            return pd.to_numeric(v, errors="coerce").to_numpy(dtype=np.float64)

    return by_value(values, fn)


def _sep_name(sep: str) -> str:
    return {"\t": "tab", ",": "comma"}.get(sep, repr(sep))


# --------------------------------------------------------------------------- cleaning

def finalize(df: pd.DataFrame, report: CleaningReport, *, drop_duplicates: bool = True,
             codes: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Drop exact duplicate rows and give each POI one canonical coordinate.

    ``df`` has the contract :data:`~stgnn.data.schema.COLUMNS` in file order (so "first seen"
    means first in the file); ``codes``: ``(N,)`` factor codes of text columns the caller has.
    The canonical coordinate of a POI is its most frequent non-NaN ``(lat, lon)``; ties go to
    the one seen first. Counts go into ``report``.
    """
    df, codes = df.reset_index(drop=True), codes or {}
    poi_codes = codes["poi"] if "poi" in codes else pd.factorize(df["poi"])[0]
    if drop_duplicates:
        # Integer codes for the text columns: hashing ints is much faster than hashing strings.
        key = {c: poi_codes if c == "poi" else codes[c] if c in codes else _hashable(df[c]) for c in COLUMNS}
        dup = duplicate_rows(key)
        report.duplicates_dropped += int(dup.sum())
        if dup.any():
            df, poi_codes = df.loc[~dup].reset_index(drop=True), poi_codes[~dup]
    return canonical_coordinates(df, report, poi_codes)


def duplicate_rows(columns: dict[str, np.ndarray]) -> np.ndarray:
    """``(N,)`` bool: rows equal in every column to an earlier row (``DataFrame.duplicated()``).

    A 64-bit mix of each row's values finds the candidates: a row whose mix no other row shares
    has no equal. Only the candidates (duplicates, rare rows that merely share a mix) are
    compared column by column (hashing 8 columns of every row grew faster than the rows).
    """
    n = len(next(iter(columns.values())))
    mix = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for v in columns.values():
            v = np.asarray(v)
            if v.dtype.kind == "f":  # equal floats mix equally: -0.0 as 0.0, every NaN as one
                v = np.where(v == 0, 0.0, np.where(np.isnan(v), np.nan, v)).astype(np.float64)
                bits = v.view(np.uint64)
            else:
                bits = v.astype(np.int64).view(np.uint64)
            mix = (mix ^ bits) * np.uint64(0x9E3779B97F4A7C15)
            mix ^= mix >> np.uint64(31)
    s = np.sort(mix)  # shared mixes by a sort: a hash table of 10^7 rows grew faster than them
    shared = s[1:][s[1:] == s[:-1]]
    cand = np.flatnonzero(np.isin(mix, np.unique(shared))) if len(shared) else np.zeros(0, dtype=np.int64)
    dup = np.zeros(n, dtype=bool)
    if len(cand):
        dup[cand] = pd.DataFrame({c: np.asarray(v)[cand] for c, v in columns.items()}).duplicated().to_numpy()
    return dup


def _hashable(col: pd.Series) -> np.ndarray:
    """Numbers as they are, anything else as ``(N,)`` int factor codes."""
    return col.to_numpy() if pd.api.types.is_numeric_dtype(col.dtype) else pd.factorize(col)[0]


def canonical_coordinates(df: pd.DataFrame, report: CleaningReport,
                          poi_codes: np.ndarray | None = None) -> pd.DataFrame:
    """Give every POI its most frequent non-NaN ``(lat, lon)`` (ties: first seen), in numpy.

    Most POIs have one coordinate: every row is compared with its POI's first one (linear), and
    only the rows of POIs with several are grouped and counted (a sort of those rows alone).

    Args:
        df: contract columns in file order; poi_codes: ``(N,)`` int codes of ``df["poi"]``.
    """
    if poi_codes is None:
        poi_codes = pd.factorize(df["poi"])[0]
    lat, lon = df["lat"].to_numpy(dtype=np.float64), df["lon"].to_numpy(dtype=np.float64)
    has = np.isfinite(lat) & np.isfinite(lon)
    rows = np.flatnonzero(has)
    if len(rows) == 0:
        return df
    n_poi = int(poi_codes.max()) + 1
    c_rows = poi_codes[rows]
    first_row = np.full(n_poi, -1, dtype=np.int64)
    first_row[c_rows[::-1]] = rows[::-1]  # the last write of each POI is its first located row
    f = first_row[c_rows]
    several = np.zeros(n_poi, dtype=bool)
    several[c_rows[(lat[rows] != lat[f]) | (lon[rows] != lon[f])]] = True
    multi = int(several.sum())
    report.pois_recoordinated += multi
    if multi == 0 and has.all():
        return df
    canon_lat, canon_lon = np.full(n_poi, np.nan), np.full(n_poi, np.nan)
    located = first_row >= 0
    canon_lat[located], canon_lon[located] = lat[first_row[located]], lon[first_row[located]]
    if multi:
        # Group the rows of those POIs by (poi, lat, lon): sort, then mark where any key changes.
        rows = rows[several[c_rows]]
        order = np.lexsort((lon[rows], lat[rows], poi_codes[rows]))
        r = rows[order]  # (M,) row numbers, grouped
        c, la, lo = poi_codes[r], lat[r], lon[r]
        new = np.ones(len(r), dtype=bool)
        new[1:] = (c[1:] != c[:-1]) | (la[1:] != la[:-1]) | (lo[1:] != lo[:-1])
        starts = np.flatnonzero(new)  # (G,) one per (poi, coordinate) group
        size = np.diff(np.append(starts, len(r)))
        first = np.minimum.reduceat(r, starts)
        gpoi = c[starts]
        best = np.lexsort((first, -size, gpoi))  # per POI: most rows, then first seen
        best = best[np.r_[True, gpoi[best][1:] != gpoi[best][:-1]]]
        canon_lat[gpoi[best]], canon_lon[gpoi[best]] = la[starts[best]], lo[starts[best]]
    df = df.copy()
    df["lat"], df["lon"] = canon_lat[poi_codes], canon_lon[poi_codes]
    return df
