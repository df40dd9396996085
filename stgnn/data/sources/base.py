"""What a data source is: one raw format, in one file of this package, found by iteration.

A source class says which dataset names it answers to (``"nyc"``), where its raw files may lie
(``raw_file_names``), how to get them (``fetch``), how to recognise one of its files from the
first lines (``sniff``) and how to read a file into a :class:`~stgnn.data.schema.CheckinTable`
(``load``); a format of several files (a pre-split train/val/test set) also says which files
belong together (``file_set``). :func:`stgnn.data.sources.source_classes` imports every module of this package and
collects the subclasses, so adding a format is one new file (and its test); nothing else lists
sources.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, ClassVar

from stgnn.data.schema import CheckinTable


class Source:
    """Base class of a data source (all methods are class methods: a source holds no state).

    Attributes:
        format: short name of the format (``"tsmc2014"``), printed by ``stgnn data check``.
        datasets: dataset names this source answers to (``("nyc", "tky")``); ``()`` for a
            format that is only read from a path.
        sniff_order: sources are asked to :meth:`sniff` a file in increasing order.
        suffixes: file name endings that alone identify the format (a binary one: ``.parquet``).
        needs_file: ``False`` for generated data (no raw file).
        needs_columns: the file can only be read with a column mapping (own CSV/Parquet).
    """

    format: ClassVar[str] = ""
    datasets: ClassVar[tuple[str, ...]] = ()
    sniff_order: ClassVar[int] = 100
    suffixes: ClassVar[tuple[str, ...]] = ()
    needs_file: ClassVar[bool] = True
    needs_columns: ClassVar[bool] = False

    @classmethod
    def raw_file_names(cls, dataset: str) -> list[str]:
        """Relative paths, in preference order, under which ``dataset``'s raw file may lie."""
        return []

    @classmethod
    def fetch(cls, dataset: str, root: Path, *, download: bool = True,
              data_dir: str | Path | None = None) -> Path | None:
        """The local raw file of ``dataset`` (found in ``data_dir``, default ``$STGNN_DATA_DIR``,
        or ``root/raw``; else downloaded into ``root/raw``)."""
        raise NotImplementedError(f"{cls.__name__} cannot fetch {dataset!r}")

    @classmethod
    def sniff(cls, path: Path, lines: list[str]) -> bool:
        """Is ``path`` (whose first complete ``lines`` are given) a file of this format?"""
        return False

    @classmethod
    def file_set(cls, path: Path) -> list[Path] | None:
        """The files this source reads when given ``path`` (a folder, or one file of a set), its
        main file first; ``None`` when ``path`` is not such a set (every one-file format)."""
        return None

    @classmethod
    def set_name(cls, main: Path) -> str:
        """The dataset name of the file set whose main file is ``main``."""
        return main.name.split(".")[0]

    @classmethod
    def describe_mismatch(cls, lines: list[str]) -> str:
        """Why ``lines`` are not of this format, for the error when no source recognises a file."""
        return ""

    @classmethod
    def options(cls) -> list[str]:
        """Keyword options of :meth:`load` (those of the loader function ``load_fn``)."""
        params = inspect.signature(cls.load_fn).parameters.values()
        return [p.name for p in params if p.kind == p.KEYWORD_ONLY or (p.kind == p.POSITIONAL_OR_KEYWORD
                                                                       and p.name != "path")]

    @classmethod
    def check_options(cls, path: Path | None, kw: dict[str, Any]) -> None:
        """Raise a clear error before loading when ``kw`` holds an option this source does not
        take (or lacks one it needs)."""
        unknown = sorted(set(kw) - set(cls.options()))
        if unknown:
            what = f"{path} (a {cls.format} file)" if path is not None else f"the {cls.format} source"
            raise ValueError(f"option(s) {unknown} do not apply to {what}; its options are {cls.options()}")

    load_fn: ClassVar[Callable[..., CheckinTable]]

    @classmethod
    def load(cls, path: Path | None, **kw: Any) -> CheckinTable:
        """Read ``path`` (``None`` when ``needs_file`` is false) into a validated table."""
        return cls.load_fn(path, **kw) if cls.needs_file else cls.load_fn(**kw)
