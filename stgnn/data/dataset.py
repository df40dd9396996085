"""Processed-data cache: a source + a protocol -> a :class:`~stgnn.data.split.Split`, built once.

Layout under ``root`` (like a PyG dataset)::

    root/raw/                         raw files a fetcher downloads (local files are read in place)
    root/processed/<name>-<key>.npz   the Split (``Split.to_bytes``)
    root/processed/<name>-<key>.json  its manifest
    root/processed/raw_hashes.json    sha256 of raw files, keyed by (path, size, mtime)

``key`` = sha256 of (raw file sha256, protocol options, loader options, ``PROCESSING_VERSION``),
so a new raw file, another protocol or a change of the processing code gives a new file.
The manifest records the raw file (path, size, sha256), the protocol, the processing version,
the split's fingerprint and the processed file's size and sha256. On load, the processed file
is checked against the manifest (size, sha256, then fingerprint after parsing); a truncated,
corrupt or mismatching file is rebuilt with a message on stderr. All writes are atomic.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from stgnn.data.protocol import ProtocolConfig, make_split
from stgnn.data.schema import CheckinTable
from stgnn.data.split import Split
from stgnn.utils.io import atomic_write_bytes, atomic_write_json

# Bump when make_split or a loader changes what it produces for the same input.
PROCESSING_VERSION = 1
_HASH_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def raw_file_hash(path: Path, processed_dir: Path) -> str:
    """sha256 of a raw file, remembered by (resolved path, size, mtime_ns) so it is hashed once."""
    st = path.stat()
    index_path = processed_dir / "raw_hashes.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    entry = index.get(str(path.resolve()))
    if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
        return entry["sha256"]
    digest = sha256_file(path)
    index[str(path.resolve())] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    atomic_write_json(index_path, index)
    return digest


def resolve_raw(source: str | os.PathLike, root: Path, download: bool = True,
                data_dir: str | os.PathLike | None = None) -> tuple[str, Path | None]:
    """``(dataset name, raw file)`` of a source spec; the file is ``None`` for ``"synthetic"``."""
    from stgnn.data.sources import fetch_gowalla, fetch_tsmc2014

    key = str(source).lower()
    if key in ("nyc", "tky"):
        return key, fetch_tsmc2014(key.upper(), root=root, download=download, data_dir=data_dir)
    if key == "gowalla":
        return key, fetch_gowalla(root=root, download=download, data_dir=data_dir)
    if key == "synthetic":
        return key, None
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{source!r} is neither a dataset name nor an existing file")
    return path.name.split(".")[0], path


def cache_key(raw_sha: str, protocol: ProtocolConfig, load_kw: dict[str, Any]) -> str:
    """16-hex key of (raw content, protocol, loader options, processing version)."""
    blob = json.dumps({"raw": raw_sha, "protocol": protocol.to_dict(), "load": load_kw,
                       "version": PROCESSING_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prepare(source: str | os.PathLike, protocol: ProtocolConfig | None = None, root: str | os.PathLike = "data",
            force_reload: bool = False, download: bool = True, data_dir: str | os.PathLike | None = None,
            **load_kw: Any) -> Split:
    """The :class:`Split` of ``source`` under ``protocol``, from the cache when valid.

    Args:
        source: ``"nyc"``/``"tky"``/``"gowalla"``/``"synthetic"`` or a file path (see
            :func:`stgnn.data.sources.load_source`).
        protocol: protocol options (default :class:`ProtocolConfig()`, STHGCN's).
        root: dataset folder holding ``raw/`` and ``processed/``.
        force_reload: rebuild even if a valid processed file exists.
        download: let a fetcher download a missing raw file into ``root/raw``.
        data_dir: folder of raw files looked in before ``root/raw`` (``None``: ``$STGNN_DATA_DIR``).
        load_kw: loader options (e.g. ``drop_duplicates=False``; generator arguments for
            ``"synthetic"``); part of the cache key.

    Returns:
        the split; ``split.stats["cache"]`` says whether it was loaded or built, and the key.
    """
    protocol = protocol or ProtocolConfig()
    root = Path(root)
    processed = root / "processed"
    processed.mkdir(parents=True, exist_ok=True)
    name, raw_path = resolve_raw(source, root, download, data_dir)
    raw_sha = raw_file_hash(raw_path, processed) if raw_path is not None else "generated"
    key = cache_key(raw_sha, protocol, load_kw)
    data_path, manifest_path = processed / f"{name}-{key}.npz", processed / f"{name}-{key}.json"

    if not force_reload:
        split, problem = _load_checked(data_path, manifest_path)
        if split is not None:
            split.stats["cache"] = {"hit": True, "key": key, "file": str(data_path)}
            return split
        if problem is not None:
            print(f"stgnn: {problem}; rebuilding it", file=sys.stderr)
    elif data_path.exists():
        print(f"stgnn: force_reload: rebuilding {data_path}", file=sys.stderr)

    from stgnn.data.sources import load_source

    t0 = time.perf_counter()
    table: CheckinTable = load_source(raw_path if raw_path is not None else source, **load_kw)
    t1 = time.perf_counter()
    split = make_split(table, protocol, name=name)
    split.stats["loading"] = {"source": str(raw_path or source), "report": table.report.to_dict(),
                              "seconds_load": round(t1 - t0, 3),
                              "seconds_split": round(time.perf_counter() - t1, 3)}
    data = split.to_bytes()
    atomic_write_bytes(data_path, data)
    manifest = {
        "name": name, "key": key, "processing_version": PROCESSING_VERSION,
        "raw": {"path": str(raw_path) if raw_path else None, "sha256": raw_sha,
                "size": raw_path.stat().st_size if raw_path else None},
        "protocol": protocol.to_dict(), "load_kw": load_kw,
        "split_fingerprint": split.fingerprint(),
        "processed": {"file": data_path.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_json(manifest_path, manifest)
    split.stats["cache"] = {"hit": False, "key": key, "file": str(data_path)}
    return split


def _load_checked(data_path: Path, manifest_path: Path) -> tuple[Split | None, str | None]:
    """``(split, None)`` if the processed file matches its manifest, else ``(None, why)``.

    ``why`` is ``None`` when there is simply nothing cached yet.
    """
    if not manifest_path.exists() and not data_path.exists():
        return None, None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:
        return None, f"manifest {manifest_path} unreadable ({e})"
    if manifest.get("processing_version") != PROCESSING_VERSION:
        return None, f"{data_path} was built by processing version {manifest.get('processing_version')}"
    try:
        data = data_path.read_bytes()
    except OSError as e:
        return None, f"processed file {data_path} unreadable ({e})"
    want = manifest.get("processed", {})
    if len(data) != want.get("size"):
        return None, f"processed file {data_path} is truncated or resized ({len(data)} != {want.get('size')} bytes)"
    if hashlib.sha256(data).hexdigest() != want.get("sha256"):
        return None, f"processed file {data_path} is corrupt (sha256 differs from the manifest)"
    try:
        split = Split.from_bytes(data)
    except Exception as e:  # noqa: BLE001 - any parse failure means: rebuild
        return None, f"processed file {data_path} cannot be parsed ({type(e).__name__}: {e})"
    if split.fingerprint() != manifest.get("split_fingerprint"):
        return None, f"processed file {data_path} does not match its manifest fingerprint"
    return split, None
