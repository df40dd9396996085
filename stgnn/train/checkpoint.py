"""Checkpoints: atomic ``torch.save`` of the whole training state, loaded with ``weights_only``.

``last.pt`` (written every epoch) holds everything needed to continue a killed run exactly:
model, optimizer, scheduler and grad-scaler states, epoch, best score and epoch, early-stop
counter, the history rows so far, every global RNG state and the shuffle generator state.
``best.pt`` holds the model weights of the best validation epoch. Both are written to a temp
file in the same folder and renamed, so a crash never leaves a half-written checkpoint.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from stgnn.utils.io import atomic_write_bytes

CHECKPOINT_FORMAT = 1
LAST, BEST = "last.pt", "best.pt"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (tensors, numbers, strings, lists, dicts only) to ``path``."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (no arbitrary code: ``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {state.get('format')} != {CHECKPOINT_FORMAT}")
    return state
