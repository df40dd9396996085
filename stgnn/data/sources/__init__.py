"""Data sources: every one returns a validated :class:`~stgnn.data.schema.CheckinTable`.

``load_source`` is the one entry point the CLI and configs use: a dataset name (``"nyc"``,
``"tky"``, ``"gowalla"``, ``"synthetic"``) or a file path whose format is sniffed.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pandas as pd

from stgnn.data.schema import CheckinTable, CleaningReport
from stgnn.data.sources.csv import load_table
from stgnn.data.sources.foursquare import TSMC_TIME_FORMAT, fetch_tsmc2014, load_tsmc2014
from stgnn.data.sources.gowalla import GOWALLA_TIME_FORMAT, fetch_gowalla, load_gowalla
from stgnn.data.sources.synthetic import generate
from stgnn.data.validate import GZIP_MAGIC, decode

NAMES = ("nyc", "tky", "gowalla", "synthetic")
_FETCH_KW = ("root", "download", "data_dir")

__all__ = ["NAMES", "load_source", "sniff_format", "load_tsmc2014", "fetch_tsmc2014",
           "load_gowalla", "fetch_gowalla", "load_table", "generate"]


def load_source(spec: str | Path, **kw: Any) -> CheckinTable:
    """Load a dataset by name or path.

    Args:
        spec: ``"nyc"``/``"tky"`` (TSMC2014, found or downloaded by :func:`fetch_tsmc2014`),
            ``"gowalla"`` (:func:`fetch_gowalla`), ``"synthetic"`` (:func:`generate`, ``kw`` are
            its arguments), or a path: TSMC2014 and Gowalla files are recognised from their
            first lines; ``.csv``/``.tsv``/``.parquet`` need ``columns=`` (see :func:`load_table`).
        kw: ``root``/``download``/``data_dir`` go to the fetcher; the rest to the loader.
    """
    fetch_kw = {k: kw.pop(k) for k in _FETCH_KW if k in kw}
    key = str(spec).lower()
    if key in ("nyc", "tky"):
        return load_tsmc2014(fetch_tsmc2014(key.upper(), **fetch_kw), **{"name": key, **kw})
    if key == "gowalla":
        return load_gowalla(fetch_gowalla(**fetch_kw), **kw)
    if key == "synthetic":
        return generate(**kw)
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"{spec!r} is neither a dataset name {NAMES} nor an existing file")
    fmt = sniff_format(path)
    if fmt == "tsmc2014":
        return load_tsmc2014(path, **kw)
    if fmt == "gowalla":
        return load_gowalla(path, **kw)
    if "columns" not in kw:
        raise ValueError(f"{path}: not TSMC2014 or Gowalla; for your own CSV/Parquet pass "
                         "columns={'user': ..., 'item': ..., 'time': ...} (see load_table)")
    return load_table(path, **kw)


def sniff_format(path: str | Path) -> str:
    """``"tsmc2014"``, ``"gowalla"`` or ``"table"`` (CSV/Parquet), from the file's first lines."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return "table"
    with open(path, "rb") as f:
        gz = f.read(2) == GZIP_MAGIC
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
        head = f.read(4096)
    # Any of the first few complete lines decides, so one broken first line does not misroute.
    lines = decode(head, path, None, CleaningReport()).split("\n")[:-1][:5]
    for line in lines:
        fields = line.rstrip("\r").split("\t")
        if len(fields) == 8 and _parses(fields[7], TSMC_TIME_FORMAT):
            return "tsmc2014"
        if len(fields) == 5 and _parses(fields[1], GOWALLA_TIME_FORMAT):
            return "gowalla"
    return "table"


def _parses(value: str, fmt: str) -> bool:
    return not pd.isna(pd.to_datetime(value, format=fmt, errors="coerce"))

