"""The on-disk vector store: one ``vectors.npz`` of sorted text keys and vectors per model key.

Writes are atomic and merged under a file lock, so concurrent writers lose no entries; reads are
memoised by file stamp (:data:`_MEMO`), so a process reads a store once until it changes.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from stgnn.utils.io import atomic_write_bytes, atomic_write_json

_MEMO: dict[str, tuple[tuple[int, int], np.ndarray, np.ndarray]] = {}


class VectorStore:
    """Sorted text keys ``(M,) S32`` and vectors ``(M, D)`` of one model, in one ``.npz``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "vectors.npz"

    def _read(self) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        memo = _MEMO.get(str(self.path))
        if memo is not None and memo[0] == stamp:
            return memo[1], memo[2]
        try:
            with np.load(self.path, allow_pickle=False) as z:
                keys, vecs = z["keys"], z["vecs"]
            if keys.dtype != np.dtype("S32") or vecs.ndim != 2 or len(keys) != len(vecs):
                raise ValueError("unexpected arrays")
        except Exception as e:  # noqa: BLE001 - a damaged cache is rebuilt, never trusted
            warnings.warn(f"{self.path}: unreadable text cache ({e}); it will be rebuilt", stacklevel=3)
            return None
        _MEMO[str(self.path)] = (stamp, keys, vecs)
        return keys, vecs

    @property
    def dim(self) -> int | None:
        got = self._read()
        return None if got is None else int(got[1].shape[1])

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Vectors ``(K, D)`` (zeros where absent) and a ``(K,)`` found mask for sorted ``keys``."""
        got = self._read()
        if got is None or not len(got[0]):
            return None, np.zeros(len(keys), bool)
        skeys, svecs = got
        pos = np.minimum(np.searchsorted(skeys, keys), len(skeys) - 1)
        found = skeys[pos] == keys
        vecs = np.zeros((len(keys), svecs.shape[1]), dtype=np.float32)
        vecs[found] = svecs[pos[found]]
        return vecs, found

    def add(self, keys: np.ndarray, vecs: np.ndarray, meta: dict[str, Any]) -> None:
        """Merge new entries into the store (re-read under a lock so no writer's entries are lost)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with _locked(self.folder / ".lock"):
            old = self._read()
            if old is not None and old[1].shape[1] == vecs.shape[1]:
                keys = np.concatenate([old[0], keys])
                vecs = np.concatenate([old[1], vecs.astype(np.float32)])
            keys, idx = np.unique(keys, return_index=True)  # sorted, first (= existing) entry wins
            vecs = np.ascontiguousarray(vecs[idx], dtype=np.float32)
            buf = io.BytesIO()
            np.savez(buf, keys=keys, vecs=vecs)
            atomic_write_bytes(self.path, buf.getvalue())
            atomic_write_json(self.folder / "meta.json", {**meta, "entries": int(len(keys)),
                                                          "dim": int(vecs.shape[1])})
            st = self.path.stat()
            _MEMO[str(self.path)] = ((st.st_mtime_ns, st.st_size), keys, vecs)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): atomic writes still keep the file whole
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
