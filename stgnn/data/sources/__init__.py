"""Data sources: every one returns a validated :class:`~stgnn.data.schema.CheckinTable`.

Each module of this package holds one :class:`~stgnn.data.sources.base.Source` subclass (one raw
format); :func:`source_classes` finds them by importing the package's modules, so nothing here
lists them. :func:`load_source` is the one entry point the CLI and configs use: a dataset name
(:func:`dataset_names`: ``"nyc"``, ``"tky"``, ``"gowalla"``, ``"synthetic"``) or a file path
whose format is sniffed from its first lines (own CSV/Parquet files need a column mapping).
"""
from __future__ import annotations

import gzip
import importlib
import pkgutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stgnn.data.schema import CheckinTable, CleaningReport, DataError
from stgnn.data.sources.base import Source
from stgnn.data.sources.csv import load_table
from stgnn.data.sources.foursquare import fetch_tsmc2014, load_tsmc2014
from stgnn.data.sources.gowalla import fetch_gowalla, load_gowalla
from stgnn.data.sources.synthetic import generate
from stgnn.data.textio import GZIP_MAGIC, decode, read_bytes

_FETCH_KW = ("root", "download", "data_dir")
_SNIFF_BYTES = 1 << 14
_SNIFF_LINES = 5

__all__ = ["Source", "Resolved", "source_classes", "dataset_names", "resolve", "load_source",
           "sniff_source", "sniff_format", "raw_files", "dataset_name", "load_tsmc2014", "fetch_tsmc2014",
           "load_gowalla", "fetch_gowalla", "load_table", "generate"]


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def source_classes() -> list[type[Source]]:
    """Every :class:`Source` subclass, in sniffing order: those of this package's modules (all
    imported here) and any defined elsewhere that has been imported."""
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    classes = {c for c in _subclasses(Source) if c.format}
    return sorted(classes, key=lambda c: (c.sniff_order, c.format))


def dataset_names() -> tuple[str, ...]:
    """Dataset names usable instead of a path (``nyc``, ``tky``, ``gowalla``, ``synthetic``...)."""
    return tuple(n for c in source_classes() for n in c.datasets)


def dataset_name(spec: str | Path) -> str:
    """The name a dataset goes by everywhere (``data check``, ``data stats``, caches, splits): a
    registered name as given (lower case), a file by its name up to the first dot."""
    key = str(spec).lower()
    return key if key in dataset_names() else Path(spec).name.split(".")[0]


@dataclass(frozen=True)
class Resolved:
    """A dataset spec resolved: its source class, name, and raw file (``None`` if generated)."""

    source: type[Source]
    name: str
    path: Path | None


def resolve(spec: str | Path, root: str | Path = "data", download: bool = True, *,
            columns: bool = False, data_dir: str | Path | None = None) -> Resolved:
    """Which source reads ``spec``, and its raw file (fetched when ``spec`` is a name).

    Args:
        spec: a dataset name or a file path.
        root: dataset folder whose ``raw/`` a fetcher may download into.
        download: let a fetcher download a missing raw file.
        columns: a column mapping is given, so a file is read as an own table whatever it holds.
        data_dir: folder of raw files looked in before ``root/raw`` (``None``: ``$STGNN_DATA_DIR``).

    Raises:
        FileNotFoundError: neither a dataset name nor an existing file.
        DataError: a file no source recognises (the message says why, line by line), or an own
            table without a column mapping.
    """
    key = str(spec).lower()
    for cls in source_classes():
        if key in cls.datasets:
            return Resolved(cls, key, cls.fetch(key, Path(root), download=download, data_dir=data_dir))
    path = Path(spec)
    if not columns and path.exists():
        for cls in source_classes():  # a set of files (a folder, or one file of the set)
            found = cls.file_set(path)
            if found:
                return Resolved(cls, cls.set_name(found[0]), found[0])
    if path.is_dir():
        raise FileNotFoundError(f"{spec}: is a folder, not a data file (nor a pre-split set of "
                                "<name>_train.csv, <name>_val.csv, <name>_test.csv)")
    if not path.is_file():
        raise FileNotFoundError(f"{str(spec)!r} is neither a dataset name {list(dataset_names())} nor an existing file")
    if columns:
        return Resolved(_table_source(), dataset_name(path), path)
    return Resolved(sniff_source(path), dataset_name(path), path)


def _table_source() -> type[Source]:
    return next(c for c in source_classes() if c.needs_columns)


def _head_lines(path: Path) -> list[str]:
    """The first complete lines of a (possibly gzipped) text file."""
    with open(path, "rb") as f:
        gz = f.read(2) == GZIP_MAGIC
    if path.stat().st_size == 0:
        raise DataError(path, 1, "file", "the file is empty (0 bytes)")
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            head = f.read(_SNIFF_BYTES)
    except (OSError, EOFError, zlib.error):
        read_bytes(path)  # raises the DataError that locates the damage
        raise
    text = decode(head, path, None, CleaningReport())
    lines = text.split("\n")
    if len(head) == _SNIFF_BYTES:
        lines = lines[:-1]  # the last one may be cut
    lines = [ln.rstrip("\r") for ln in lines if ln.strip()][:_SNIFF_LINES]
    if not lines:
        raise DataError(path, 1, "file", "no data lines: the file is blank")
    return lines


def sniff_source(path: str | Path) -> type[Source]:
    """The source whose format ``path`` is in, from its first lines.

    Raises:
        DataError: no source recognises the file; the message says what each expected.
    """
    path = Path(path)
    for cls in source_classes():
        if path.suffix.lower() in cls.suffixes:
            return cls
    lines = _head_lines(path)
    for cls in source_classes():
        if cls.sniff(path, lines):
            return cls
    why = "; ".join(d for c in source_classes() if (d := c.describe_mismatch(lines)))
    raise DataError(path, 1, "format", f"not a format stgnn recognises ({why}). For your own CSV/TSV/Parquet "
                    "file, give its columns: --columns user=COL,item=COL,time=COL (config: dataset.columns)")


def raw_files(path: str | Path) -> list[Path]:
    """Every file the source of ``path`` reads (``[path]`` but for a file set), for cache keys."""
    path = Path(path)
    return sniff_source(path).file_set(path) or [path]


def sniff_format(path: str | Path) -> str:
    """The format name of :func:`sniff_source` (``"tsmc2014"``, ``"gowalla"``, ``"table"``)."""
    return sniff_source(path).format


def load_source(spec: str | Path, **kw: Any) -> CheckinTable:
    """Load a dataset by name or path.

    Args:
        spec: a dataset name (:func:`dataset_names`; ``"synthetic"`` takes the generator's
            arguments as ``kw``) or a path: TSMC2014 and Gowalla files are recognised from
            their first lines; your own CSV/Parquet needs ``columns=`` (see :func:`load_table`).
        kw: ``root``/``download``/``data_dir`` go to the fetcher; the rest to the loader. The
            table is named by :func:`dataset_name` unless ``name=`` is given.
    """
    fetch_kw = {k: kw.pop(k) for k in _FETCH_KW if k in kw}
    res = resolve(spec, columns="columns" in kw, **fetch_kw)
    res.source.check_options(res.path, kw)
    kw.setdefault("name", res.name)
    return res.source.load(res.path, **kw)
