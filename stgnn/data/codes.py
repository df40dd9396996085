"""Array helpers over integer codes used by the split builders (:mod:`stgnn.data.protocol`,
:mod:`stgnn.data.protocol_files`): deterministic string ranks, per-group modes, compaction.

Every function is linear (or a sort) in the number of rows; none builds a Python object per row.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def as_text(values: pd.Series | np.ndarray) -> pd.Series:
    """``values`` as a pandas string Series: a string column as it is (pandas' Arrow-backed
    ``str``, so nothing becomes a Python object per row), anything else through ``astype(str)``."""
    s = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    return s if s.dtype != object and pd.api.types.is_string_dtype(s.dtype) else s.astype(str)


def rank_uniques(codes: np.ndarray, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Re-number factor ``codes`` so that their order is the string order of ``uniques``; only
    the values that occur in ``codes`` are kept. Returns ``(codes (N,), uniques (K,) object)``."""
    counts = np.bincount(codes, minlength=len(uniques))
    if not counts.all():
        present = np.flatnonzero(counts)
        remap = np.full(len(uniques), -1, dtype=np.int64)
        remap[present] = np.arange(len(present))
        codes, uniques = remap[codes], uniques[present]
    order = np.argsort(np.asarray(uniques, dtype=str), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], np.asarray(uniques, dtype=object)[order]


def string_rank(values: pd.Series | np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``values`` (of ``values[rows]`` when given) whose order is the string order of
    the values.

    Returns ``(codes (N,), uniques (K,))`` with ``uniques`` sorted as strings: only the ``K``
    distinct values are sorted, and the column is hashed as it is stored (no Python string per
    row), so this is linear in rows.
    """
    codes, uniques = pd.factorize(as_text(values), sort=False)
    codes = codes.astype(np.int64, copy=False)
    if len(codes) and codes.min() < 0:
        raise ValueError(f"a missing value (row {int(np.argmin(codes))}) in a column of ids or names; "
                         "a CheckinTable holds strings there")
    if rows is not None:
        codes = codes[rows]
    return rank_uniques(codes, np.asarray(uniques, dtype=object))


def single_valued(group: np.ndarray, n_groups: int, *values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first (n_groups,), several (n_groups,))``: each group's first row (-1 when empty) and
    whether any of its rows differs from that row in one of ``values`` (NaN equals NaN).

    Linear: every row is compared with its group's first row, so the (usually few) groups with
    several values can be counted apart, by a sort of their rows alone.
    """
    first = np.full(n_groups, -1, dtype=np.int64)
    first[group[::-1]] = np.arange(len(group) - 1, -1, -1)  # the last write of each group is its first row
    f = first[group]
    differs = np.zeros(len(group), dtype=bool)
    for v in values:
        a, b = v, v[f]
        ne = a != b
        if v.dtype.kind == "f":
            ne &= ~(np.isnan(a) & np.isnan(b))
        differs |= ne
    several = np.zeros(n_groups, dtype=bool)
    several[group[differs]] = True
    return first, several


def mode_per_group(group: np.ndarray, value: np.ndarray, n_groups: int) -> np.ndarray:
    """``(n_groups,)`` most frequent ``value`` (int codes) per group; ties -> smallest value."""
    out = np.full(n_groups, -1, dtype=np.int64)
    if not len(group):
        return out
    first, several = single_valued(group, n_groups, value)
    one = (first >= 0) & ~several
    out[one] = value[first[one]]
    if several.any():  # count (group, value) pairs of the groups with several values only
        rows = several[group]
        pairs = pd.DataFrame({"g": group[rows], "v": value[rows]}).value_counts().reset_index(name="n")
        pairs = pairs.sort_values(["g", "n", "v"], ascending=[True, False, True], kind="stable")
        pick = pairs.drop_duplicates("g")
        out[pick["g"].to_numpy()] = pick["v"].to_numpy()
    return out


def mode_coords(poi: np.ndarray, lat: np.ndarray, lon: np.ndarray, n_pois: int) -> tuple[np.ndarray, np.ndarray]:
    """``(P,), (P,)`` each POI's most frequent (lat, lon) pair; ties -> smallest pair; NaN kept."""
    out_lat, out_lon = np.full(n_pois, np.nan), np.full(n_pois, np.nan)
    if not len(poi):
        return out_lat, out_lon
    # A loaded table has one canonical pair per POI: only POIs with several are counted.
    first, several = single_valued(poi, n_pois, lat, lon)
    one = (first >= 0) & ~several
    out_lat[one], out_lon[one] = lat[first[one]], lon[first[one]]
    if not several.any():
        return out_lat, out_lon
    rows = several[poi]
    c = pd.DataFrame({"g": poi[rows], "lat": lat[rows], "lon": lon[rows]}).value_counts(dropna=False).reset_index(name="n")
    c = c.sort_values(["g", "n", "lat", "lon"], ascending=[True, False, True, True], kind="stable")
    c = c.drop_duplicates("g")
    out_lat[c["g"].to_numpy()] = c["lat"].to_numpy()
    out_lon[c["g"].to_numpy()] = c["lon"].to_numpy()
    return out_lat, out_lon


def compact(codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(codes, return_inverse=True)`` for int codes in ``[0, n)``, by counting."""
    present = np.bincount(codes, minlength=n) > 0
    new_id = np.cumsum(present) - 1
    return np.flatnonzero(present), new_id[codes]


def member(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """``(N,)`` bool ``np.isin(codes, values)`` for int codes in ``[0, n)``, by a lookup table."""
    table = np.zeros(n, dtype=bool)
    table[values] = True
    return table[codes]


def code_of(uniques: np.ndarray, value: str) -> int:
    """The factor code of ``value`` among ``uniques`` (``-2``, matching no code, when absent)."""
    hit = np.flatnonzero(uniques == value)
    return int(hit[0]) if len(hit) else -2
