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
import gzip
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

from stgnn.data.schema import COLUMNS, TZ_MAX, TZ_MIN, CleaningReport, DataError

log = logging.getLogger(__name__)

OnBadRow = Literal["raise", "skip"]
GZIP_MAGIC = b"\x1f\x8b"


def check_policy(on_bad_row: str) -> None:
    if on_bad_row not in ("raise", "skip"):
        raise ValueError(f"on_bad_row must be 'raise' or 'skip', got {on_bad_row!r}")


# --------------------------------------------------------------------------- reading

def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (the extension is ignored)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == GZIP_MAGIC:
        data = gzip.decompress(data)
    return data


def decode(data: bytes, path: str | Path, encoding: str | None, report: CleaningReport) -> str:
    """Decode as ``encoding`` if given, else UTF-8, falling back to Latin-1 (the official TSMC2014
    release is Latin-1; Latin-1 decodes any byte string, so the fallback cannot fail)."""
    if encoding is not None:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise DataError(path, line, "encoding", f"not valid {encoding}: {e.reason}; "
                            "pass encoding=None to auto-detect UTF-8/Latin-1") from None
    try:
        return data.decode("utf-8-sig")  # -sig: drop a byte-order mark some editors write
    except UnicodeDecodeError:
        report.notes.append("decoded as Latin-1 (not valid UTF-8)")
        return data.decode("latin-1")


def split_lines(text: str) -> tuple[list[str], np.ndarray]:
    """Non-blank physical lines and their 1-based line numbers.

    We split on ``"\\n"`` only: ``str.splitlines`` would also break on ``\\x85``, ``\\x1c`` etc.,
    which occur inside Latin-1 venue names, and shift every later line number. Plain list
    comprehensions here beat pandas' object-dtype string methods by several times.

    Returns:
        lines: ``L`` strings (``\\r\\n`` endings normalised); line_no: ``(L,)`` int64.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    everything = text.split("\n")
    if everything[-1] == "":  # the final newline ends the last line; it does not start one
        everything.pop()
    keep = [i for i, line in enumerate(everything) if line and not line.isspace()]
    if len(keep) == len(everything):
        return everything, np.arange(1, len(keep) + 1, dtype=np.int64)
    return [everything[i] for i in keep], np.asarray(keep, dtype=np.int64) + 1


def read_delimited(path: str | Path, n_fields: int, *, encoding: str | None,
                   report: CleaningReport, sep: str = "\t"
                   ) -> tuple[pd.DataFrame, np.ndarray, RowChecker]:
    """Read a headerless ``sep``-separated file into string columns ``0..n_fields-1``.

    Lines with the wrong number of fields are flagged on the returned checker (to be passed as
    ``extra=`` to the row checker's :meth:`RowChecker.resolve`) and left out of the frame.
    ``report.rows_read`` becomes the number of non-blank lines.

    Returns:
        frame: ``(N, n_fields)`` str; line_no: ``(N,)`` 1-based physical line of each row;
        the field-count checker.
    """
    text = decode(read_bytes(path), path, encoding, report)
    lines, line_no = split_lines(text)
    report.rows_read = len(lines)
    counts = RowChecker(path, line_no)
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
        raise RuntimeError(f"{path}: parsed {len(frame)} rows from {len(line_no)} lines")
    return frame, line_no, counts


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

    # Common checks; ``values`` are the raw strings, ``parsed`` the parsed numbers / times.
    def require_nonempty(self, values: pd.Series, field: str) -> None:
        self.flag(blank_mask(values), field, lambda i: "empty id")

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
        log.warning("%s: %s", self.path, report.bad_rows)
        return ~np.isin(self.line_no, lines)


def blank_mask(values: pd.Series) -> np.ndarray:
    """``(N,)`` bool: missing, empty or whitespace-only (``map`` of a C method: fast)."""
    arr = values.fillna("").to_numpy(dtype=object)
    return (arr == "") | np.fromiter(map(str.isspace, arr), dtype=bool, count=len(arr))


def to_float(values: pd.Series) -> np.ndarray:
    """``(N,)`` float64 of numeric strings, ``NaN`` where unparsable.

    numpy's own conversion is several times faster than ``pd.to_numeric`` but all-or-nothing,
    so it is the fast path for clean files.
    """
    arr = values.to_numpy(dtype=object)
    try:
        return arr.astype(np.float64)
    except (ValueError, TypeError):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)


def _sep_name(sep: str) -> str:
    return {"\t": "tab", ",": "comma"}.get(sep, repr(sep))


# --------------------------------------------------------------------------- cleaning

def finalize(df: pd.DataFrame, report: CleaningReport, *, drop_duplicates: bool = True
             ) -> pd.DataFrame:
    """Drop exact duplicate rows and give each POI one canonical coordinate.

    ``df`` has the contract :data:`~stgnn.data.schema.COLUMNS` in file order (so "first seen"
    means first in the file). The canonical coordinate of a POI is its most frequent non-NaN
    ``(lat, lon)``; ties go to the one seen first. Counts go into ``report``.
    """
    df = df.reset_index(drop=True)
    poi_codes = pd.factorize(df["poi"].to_numpy(dtype=object))[0]
    if drop_duplicates:
        # Integer codes for the text columns: hashing ints is much faster than hashing strings.
        key = pd.DataFrame({c: _hashable(df[c]) for c in COLUMNS})
        key["poi"] = poi_codes
        dup = key.duplicated().to_numpy()
        report.duplicates_dropped += int(dup.sum())
        if dup.any():
            df, poi_codes = df.loc[~dup].reset_index(drop=True), poi_codes[~dup]
    return canonical_coordinates(df, report, poi_codes)


def _hashable(col: pd.Series) -> np.ndarray:
    """Numbers as they are, anything else as ``(N,)`` int factor codes."""
    if pd.api.types.is_numeric_dtype(col.dtype):
        return col.to_numpy()
    return pd.factorize(col.to_numpy(dtype=object))[0]


def canonical_coordinates(df: pd.DataFrame, report: CleaningReport,
                          poi_codes: np.ndarray | None = None) -> pd.DataFrame:
    """Give every POI its most frequent non-NaN ``(lat, lon)`` (ties: first seen), in numpy.

    Args:
        df: contract columns in file order; poi_codes: ``(N,)`` int codes of ``df["poi"]``.
    """
    if poi_codes is None:
        poi_codes = pd.factorize(df["poi"].to_numpy(dtype=object))[0]
    lat, lon = df["lat"].to_numpy(dtype=np.float64), df["lon"].to_numpy(dtype=np.float64)
    has = np.isfinite(lat) & np.isfinite(lon)
    rows = np.flatnonzero(has)
    if len(rows) == 0:
        return df
    # Group rows by (poi, lat, lon): sort, then mark where any key changes.
    order = np.lexsort((lon[rows], lat[rows], poi_codes[rows]))
    r = rows[order]  # (M,) row numbers, grouped
    c, la, lo = poi_codes[r], lat[r], lon[r]
    new = np.ones(len(r), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (la[1:] != la[:-1]) | (lo[1:] != lo[:-1])
    starts = np.flatnonzero(new)  # (G,) one per (poi, coordinate) group
    size = np.diff(np.append(starts, len(r)))
    first = np.minimum.reduceat(r, starts)
    gpoi = c[starts]
    multi = int((np.bincount(gpoi) > 1).sum())
    report.pois_recoordinated += multi
    if multi == 0 and has.all():
        return df
    best = np.lexsort((first, -size, gpoi))  # per POI: most rows, then first seen
    best = best[np.r_[True, gpoi[best][1:] != gpoi[best][:-1]]]
    n_poi = int(poi_codes.max()) + 1
    canon_lat, canon_lon = np.full(n_poi, np.nan), np.full(n_poi, np.nan)
    canon_lat[gpoi[best]], canon_lon[gpoi[best]] = la[starts[best]], lo[starts[best]]
    df = df.copy()
    df["lat"], df["lon"] = canon_lat[poi_codes], canon_lon[poi_codes]
    return df
