"""Checkpoints: atomic ``torch.save`` of the whole training state, loaded with ``weights_only``.

``last.pt`` (written every epoch) holds everything needed to continue a killed run exactly:
model, optimizer, scheduler and grad-scaler states, epoch, best score and epoch, early-stop
counter, the history rows so far, every global RNG state and the shuffle generator state.
``best.pt`` holds the model weights of the best validation epoch. Both are written to a temp
file in the same folder and renamed, so a crash never leaves a half-written checkpoint; the
temp files a killed writer left (``.last.pt.<pid>.*.tmp``) are removed by the next save or load
in that folder. A checkpoint that cannot be read is a :class:`CheckpointError` naming the file.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from stgnn.utils.io import atomic_write_bytes, remove_stale_temps

CHECKPOINT_FORMAT = 1
LAST, BEST = "last.pt", "best.pt"


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be used; the message names it and says what to do."""


def remove_orphans(folder: str | os.PathLike) -> list[Path]:
    """Remove temp files of ``last.pt``/``best.pt`` whose writer is no longer running."""
    return remove_stale_temps(folder, (LAST, BEST)) if Path(folder).is_dir() else []


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (tensors, numbers, strings, lists, dicts only) to ``path``."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buf)
    atomic_write_bytes(path, buf.getvalue())
    remove_orphans(Path(path).parent)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (no arbitrary code: ``weights_only``).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated, corrupt or not a checkpoint of this format.
    """
    path = Path(path)
    remove_orphans(path.parent)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    todo = (f"delete it to start this run from scratch{' (best.pt is kept)' if path.name == LAST else ''}, "
            "or restore it from a copy")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, EOFError, UnpicklingError...
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{path}: cannot read this checkpoint ({type(e).__name__}: {first}); it is "
                              f"corrupt or truncated: {todo}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: checkpoint format {got} != {CHECKPOINT_FORMAT}; {todo}")
    return state
