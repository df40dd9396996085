"""Processed-data cache: a source + a protocol -> a :class:`~stgnn.data.split.Split`, built once.

Layout under ``root`` (like a PyG dataset)::

    root/raw/                         raw files a fetcher downloads (local files are read in place)
    root/processed/<name>-<key>.npz   the Split (``Split.write``: uncompressed npz)
    root/processed/<name>-<key>.json  its manifest
    root/processed/<name>-<key>.lock  taken (``fcntl.flock``) while the pair is checked or written
    root/processed/tables.json        loader options (column mapping...) of own table files

``key`` = sha256 of (raw file sha256, protocol options, loader options, ``PROCESSING_VERSION``),
so a new raw file, another protocol or a change of the processing code gives a new file. The raw
file is hashed by its content, streamed, on every call (about 2 ms per MB): a file edited in
place with its size and mtime kept still gets a new key. The manifest records the raw file (path,
size, sha256), the protocol, the processing version, the split's fingerprint and the processed
file's size and sha256. On load, the manifest's shape and the processed file are checked
(size, sha256, then fingerprint after parsing); a truncated, corrupt, wrong-shaped or
mismatching pair is rebuilt with a message on stderr. The npz and its manifest are written as one
unit under the key's lock, so concurrent prepares never leave a pair from two writers; temp files
left by a killed writer are removed under the same lock.

A pre-split set (``NYC_train.csv``, ``NYC_val.csv``, ``NYC_test.csv``; see
:mod:`stgnn.data.sources.presplit`) is named by its folder or any of its files; its key hashes all
three files.

Own CSV/Parquet files need loader options (``columns``, ``time_unit``...). Given once (``stgnn
data prepare my.csv --columns ...`` or ``dataset.columns`` in a config), they are remembered in
``tables.json`` for that file, so ``stgnn train dataset=my.csv`` finds them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from stgnn.data.protocol import ProtocolConfig, make_split
from stgnn.data.usable import require_usable
from stgnn.data.schema import CheckinTable
from stgnn.data.split import Split
from stgnn.utils.io import atomic_write_file, atomic_write_json, file_lock, remove_stale_temps

# Bump when make_split or a loader changes what it produces for the same input.
# 2: plausibility window on times, control characters refused in ids, per-line encodings.
PROCESSING_VERSION = 2
_HASH_CHUNK = 1 << 20
TABLES_FILE = "tables.json"


class CacheError(OSError):
    """The cache folder cannot be used (e.g. ``processed`` is a file); the message says what to do."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's content, streamed in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def split_spec(source: Any) -> tuple[str | os.PathLike, dict[str, Any]]:
    """``(name or path, loader options)`` of a dataset spec: a name, a path, or a mapping (or
    dataclass, e.g. :class:`stgnn.config.DatasetConfig`) with ``path`` and loader options such as
    ``columns``, ``time_unit``, ``time_window``, ``on_bad_row``."""
    if dataclasses.is_dataclass(source) and not isinstance(source, type):
        source = dataclasses.asdict(source)
    if isinstance(source, Mapping):
        opts = {k: v for k, v in source.items() if v is not None and v != {}}
        if "path" not in opts:
            raise ValueError(f"dataset spec {dict(source)!r} has no 'path'")
        path = opts.pop("path")
        if "time_window" in opts:
            opts["time_window"] = list(opts["time_window"])
        return path, opts
    return source, {}


def raw_digest(raw_path: Path, columns: bool = False) -> str:
    """sha256 of the raw file; of a pre-split file set, of its files' names and sha256s (so
    editing any of the three gives a new cache key)."""
    from stgnn.data.sources import raw_files

    files = [raw_path] if columns else raw_files(raw_path)
    if len(files) == 1:
        return sha256_file(raw_path)
    blob = json.dumps([[f.name, sha256_file(f)] for f in files])
    return hashlib.sha256(blob.encode()).hexdigest()


def resolve_raw(source: str | os.PathLike, root: Path, download: bool = True,
                columns: bool = False, data_dir: str | os.PathLike | None = None) -> tuple[str, Path | None]:
    """``(dataset name, raw file)`` of a source spec; the file is ``None`` for generated data.
    ``data_dir``: folder of raw files looked in before ``root/raw`` (``None``: ``$STGNN_DATA_DIR``)."""
    from stgnn.data.sources import resolve

    res = resolve(source, root, download, columns=columns, data_dir=data_dir)
    return res.name, res.path


def cache_key(raw_sha: str, protocol: ProtocolConfig, load_kw: dict[str, Any]) -> str:
    """16-hex key of (raw content, protocol, loader options, processing version)."""
    blob = json.dumps({"raw": raw_sha, "protocol": protocol.to_dict(), "load": load_kw,
                       "version": PROCESSING_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def processed_dir(root: str | os.PathLike) -> Path:
    """``root/processed``, created if missing.

    Raises:
        CacheError: ``root`` or ``root/processed`` exists and is not a folder.
    """
    processed = Path(root) / "processed"
    for p in (Path(root), processed):
        if p.exists() and not p.is_dir():
            raise CacheError(f"{p} exists and is not a folder, so the processed-data cache cannot live there; "
                             "move it away or pass another --root (STGNN_ROOT)")
    processed.mkdir(parents=True, exist_ok=True)
    return processed


def prepare(source: Any, protocol: ProtocolConfig | None = None, root: str | os.PathLike = "data",
            force_reload: bool = False, download: bool = True, remember: bool = True,
            data_dir: str | os.PathLike | None = None,
            **load_kw: Any) -> Split:
    """The :class:`Split` of ``source`` under ``protocol``, from the cache when valid.

    Args:
        source: a dataset name (``"nyc"``, ``"synthetic"``... see
            :func:`stgnn.data.sources.dataset_names`), a file path, or a mapping / dataclass with
            ``path`` and loader options (see :func:`split_spec`).
        protocol: protocol options (default :class:`ProtocolConfig()`, STHGCN's).
        root: dataset folder holding ``raw/`` and ``processed/``.
        force_reload: rebuild even if a valid processed file exists.
        download: let a fetcher download a missing raw file into ``root/raw``.
        remember: remember an own table's loader options for later calls without them.
        data_dir: folder of raw files looked in before ``root/raw`` (``None``: ``$STGNN_DATA_DIR``).
        load_kw: loader options (e.g. ``columns=``, ``time_unit=``, ``on_bad_row=``,
            ``drop_duplicates=False``; generator arguments for ``"synthetic"``); part of the key.

    Returns:
        the split; ``split.stats["cache"]`` says whether it was loaded or built, and the key.

    Raises:
        DataError: a bad raw file (``file:line: field``); SplitError: the protocol left an empty
        or degenerate split (naming the step); CacheError: an unusable cache folder.
    """
    protocol = protocol or ProtocolConfig()
    spec, spec_kw = split_spec(source)
    load_kw = {**spec_kw, **load_kw}
    processed = processed_dir(root)
    name, raw_path = resolve_raw(spec, Path(root), download, columns="columns" in load_kw,
                                 data_dir=data_dir)
    if raw_path is not None and "columns" not in load_kw:
        from stgnn.data.sources import sniff_source

        if sniff_source(raw_path).needs_columns:
            load_kw = {**remembered_options(processed, raw_path), **load_kw}
    if raw_path is not None and "columns" in load_kw and remember:
        remember_options(processed, raw_path, load_kw)
    raw_sha = raw_digest(raw_path, columns="columns" in load_kw) if raw_path is not None else "generated"
    key = cache_key(raw_sha, protocol, load_kw)
    data_path, manifest_path = processed / f"{name}-{key}.npz", processed / f"{name}-{key}.json"

    with file_lock(processed / f"{name}-{key}.lock"):
        # Under the lock no other process writes this pair: its temp files are orphans.
        remove_stale_temps(processed, (data_path.name, manifest_path.name), all_writers=True)
        if not force_reload:
            split, problem = _load_checked(data_path, manifest_path)
            if split is not None:
                require_usable(split)
                split.stats["cache"] = {"hit": True, "key": key, "file": str(data_path)}
                return split
            if problem is not None:
                print(f"stgnn: {problem}; rebuilding it", file=sys.stderr)
        elif data_path.exists():
            print(f"stgnn: force_reload: rebuilding {data_path}", file=sys.stderr)

        split = _build(spec, raw_path, name, protocol, load_kw)
        require_usable(split)  # an empty split is an error, never a cached result
        manifest = {
            "name": name, "key": key, "processing_version": PROCESSING_VERSION,
            "raw": {"path": str(raw_path) if raw_path else None, "sha256": raw_sha,
                    "size": raw_path.stat().st_size if raw_path else None},
            "protocol": protocol.to_dict(), "load_kw": load_kw,
            "split_fingerprint": split.fingerprint(),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        # streamed to disk (no bytes copy of the file); size and sha256 of what was written
        size, sha = atomic_write_file(data_path, split.write, digest=True)
        manifest["processed"] = {"file": data_path.name, "size": size, "sha256": sha}
        atomic_write_json(manifest_path, manifest)
    split.stats["cache"] = {"hit": False, "key": key, "file": str(data_path)}
    return split


def _build(spec: Any, raw_path: Path | None, name: str, protocol: ProtocolConfig,
           load_kw: dict[str, Any]) -> Split:
    from stgnn.data.sources import load_source

    t0 = time.perf_counter()
    table: CheckinTable = load_source(raw_path if raw_path is not None else spec, **{"name": name, **load_kw})
    t1 = time.perf_counter()
    split = make_split(table, protocol, name=name)
    split.stats["loading"] = {"source": str(raw_path or spec), "report": table.report.to_dict(),
                              "seconds_load": round(t1 - t0, 3),
                              "seconds_split": round(time.perf_counter() - t1, 3)}
    return split


# ---------------------------------------------------------------------------- own tables

def _read_json_dict(path: Path) -> tuple[dict[str, Any], str | None]:
    """``(content, None)``, or ``({}, why)`` for a missing, unreadable or non-mapping file."""
    if not path.exists():
        return {}, None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return {}, f"{path} unreadable ({e})"
    if not isinstance(data, dict):
        return {}, f"{path} holds a {type(data).__name__}, not a mapping"
    return data, None


def remembered_options(processed: Path, raw_path: Path) -> dict[str, Any]:
    """Loader options remembered for own table ``raw_path`` (``{}`` if none)."""
    index, problem = _read_json_dict(processed / TABLES_FILE)
    if problem:
        print(f"stgnn: {problem}; ignoring it", file=sys.stderr)
    entry = index.get(str(raw_path.resolve()))
    return dict(entry) if isinstance(entry, dict) and isinstance(entry.get("columns"), dict) else {}


def remember_options(processed: Path, raw_path: Path, load_kw: dict[str, Any]) -> None:
    """Record an own table's loader options (so later commands need not repeat them)."""
    with file_lock(processed / f"{TABLES_FILE}.lock"):
        index, problem = _read_json_dict(processed / TABLES_FILE)
        if problem:
            print(f"stgnn: {problem}; rewriting it", file=sys.stderr)
        keep = {k: v for k, v in load_kw.items() if k in _REMEMBERED}
        if index.get(str(raw_path.resolve())) != keep:
            index[str(raw_path.resolve())] = keep
            atomic_write_json(processed / TABLES_FILE, index)


_REMEMBERED = ("columns", "time_unit", "time_window", "tz_offset_min", "sep", "encoding", "on_bad_row")


# ---------------------------------------------------------------------------- checking

def _load_checked(data_path: Path, manifest_path: Path) -> tuple[Split | None, str | None]:
    """``(split, None)`` if the processed file matches its manifest, else ``(None, why)``.

    ``why`` is ``None`` when there is simply nothing cached yet.
    """
    if not manifest_path.exists() and not data_path.exists():
        return None, None
    manifest, problem = _read_json_dict(manifest_path)
    if problem or not manifest:
        return None, f"manifest {problem or f'{manifest_path} missing'}"
    want = manifest.get("processed")
    if (manifest.get("processing_version") != PROCESSING_VERSION or not isinstance(want, dict)
            or not isinstance(want.get("size"), int) or not isinstance(want.get("sha256"), str)):
        return None, (f"manifest {manifest_path} is of another processing version or shape "
                      f"(version {manifest.get('processing_version')!r})")
    # One open file: checked (size, then sha256 in chunks) and parsed array by array, so no
    # copy of the whole file is held; the lock keeps writers out meanwhile.
    try:
        with open(data_path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size != want["size"]:
                return None, f"processed file {data_path} is truncated or resized ({size} != {want['size']} bytes)"
            if hashlib.file_digest(f, "sha256").hexdigest() != want["sha256"]:
                return None, f"processed file {data_path} is corrupt (sha256 differs from the manifest)"
            f.seek(0)
            try:
                split = Split.read(f)
            except Exception as e:  # noqa: BLE001 - any parse failure means: rebuild
                return None, f"processed file {data_path} cannot be parsed ({type(e).__name__}: {e})"
    except OSError as e:
        return None, f"processed file {data_path} unreadable ({e})"
    if split.fingerprint() != manifest.get("split_fingerprint"):
        return None, f"processed file {data_path} does not match its manifest fingerprint"
    return split, None
