"""Atomic file writes: caches, checkpoints and results are never left half-written.

A write goes to ``.<name>.<pid>.<random>.tmp`` in the same folder, is fsynced and renamed over
``<name>``. A process killed in between leaves the temp file behind; :func:`remove_stale_temps`
removes such orphans: those whose writer process is gone (the pid in the name), or all of them
where the caller holds the lock every writer takes. JSON is always valid:
NaN and infinities (e.g. the std of one seed) are written as ``null``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

try:  # POSIX advisory locks; elsewhere concurrent writers are simply not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock on ``path`` (created if missing) for the ``with`` block; without
    POSIX locks (Windows) a no-op, and atomic writes still keep each file whole."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a reader sees the old file or the new one, never half."""
    atomic_write_file(path, lambda f: f.write(data))


def atomic_write_file(path: str | os.PathLike, write: Callable[[BinaryIO], Any], *,
                      digest: bool = False) -> tuple[int, str | None]:
    """Atomically write what ``write(f)`` writes into the open binary file ``f`` (seekable; e.g.
    :func:`numpy.savez`), so a large payload is streamed to disk without one ``bytes`` copy of it.

    Args:
        digest: also return the sha256 of the written file (read back in chunks from the synced
            temp file, before the rename: what a reader will find).

    Returns:
        ``(size in bytes, hex sha256 or None)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            size = os.fstat(f.fileno()).st_size
            sha = None
            if digest:
                f.seek(0)
                sha = hashlib.file_digest(f, "sha256").hexdigest()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return size, sha


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf, numpy ones included) replaced by ``None``,
    so ``json.dumps`` writes standard JSON (``null``) instead of ``NaN``."""
    kind = getattr(getattr(obj, "dtype", None), "kind", "") if getattr(obj, "ndim", 1) == 0 else ""
    if isinstance(obj, float) or kind == "f":
        return float(obj) if math.isfinite(float(obj)) else None
    if kind in "iub" and kind:  # numpy scalars: as the plain numbers they are
        return bool(obj) if kind == "b" else int(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def dumps_json(obj: Any, **kw: Any) -> str:
    """``json.dumps`` of :func:`json_safe` ``(obj)``: standard JSON, no ``NaN``."""
    return json.dumps(json_safe(obj), allow_nan=False, default=str, **kw)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj, indent=2, sort_keys=True) + "\n")


_NO_PID_AGE_S = 600  # a temp file without a pid (older versions) is an orphan once this old


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: the process exists, it is someone else's
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, names: Iterable[str], *, all_writers: bool = False
                       ) -> list[Path]:
    """Delete orphaned temp files that :func:`atomic_write_bytes` left for ``names`` in ``folder``.

    Args:
        all_writers: remove every temp file of ``names``: only where the caller holds a lock that
            all writers take. Otherwise only those of writers no longer running (the pid in the
            name, on this machine) or of this process (which is not writing while it cleans), and
            pid-less ones (older versions) over 10 minutes old.

    Returns:
        the files removed.
    """
    folder, removed = Path(folder), []
    for name in names:
        for tmp in folder.glob(f".{name}.*.tmp"):
            pid_part = tmp.name[len(name) + 2:].split(".", 1)[0]
            pid = int(pid_part) if pid_part.isdigit() else None
            try:
                old = time.time() - tmp.stat().st_mtime > _NO_PID_AGE_S
            except FileNotFoundError:
                continue
            if all_writers or pid == os.getpid() or (not _alive(pid) if pid is not None else old):
                try:
                    tmp.unlink()
                    removed.append(tmp)
                except FileNotFoundError:  # removed meanwhile by someone else
                    pass
    return removed
