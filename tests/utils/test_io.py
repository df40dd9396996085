"""Atomic writes: streamed payloads, their digest, and nothing left behind on failure."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from stgnn.utils.io import atomic_write_bytes, atomic_write_file


def test_streamed_write_returns_size_and_sha256_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    arrays = {"x": np.arange(1000, dtype=np.int64), "y": np.linspace(0, 1, 7)}
    size, sha = atomic_write_file(path, lambda f: np.savez(f, **arrays), digest=True)
    data = path.read_bytes()
    assert size == len(data) > 8000 and sha == hashlib.sha256(data).hexdigest()
    with np.load(path) as z:
        assert np.array_equal(z["x"], arrays["x"]) and np.array_equal(z["y"], arrays["y"])
    assert atomic_write_file(tmp_path / "b", lambda f: f.write(b"abc")) == (3, None)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    atomic_write_bytes(path, b"old")

    def half(f) -> None:
        f.write(b"new, half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write_file(path, half, digest=True)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
