"""The :class:`TextEncoder` interface: deduplicate, batch, cache; backends implement three methods."""
from __future__ import annotations

import hashlib
import json
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from stgnn.features.text.cache import VectorStore

DEFAULT_CACHE_DIR = Path("data/processed/text_cache")
CACHE_FORMAT_VERSION = 1


class ModelNotAvailable(RuntimeError):
    """A language model is not on this machine and downloading was not allowed."""


# ---------------------------------------------------------------------------------------------
# interface
# ---------------------------------------------------------------------------------------------
class TextEncoder(ABC):
    """Turn texts into fixed-size vectors, with an on-disk cache keyed by model and text.

    Subclasses implement :meth:`_fingerprint` (what identifies the vectors they produce),
    :meth:`_encode_batch` and :meth:`_load_dim`; the base class deduplicates, batches, shows a
    progress bar and caches.

    Args:
        batch_size: texts per forward pass.
        cache_dir: folder of the vector cache; ``None`` disables caching.
        progress: show a tqdm bar (``None``: only on a terminal).

    Shapes:
        ``encode(texts)``: ``N`` texts -> ``(N, dim)`` float32 CPU tensor.
    """

    model_id: str = ""

    def __init__(self, batch_size: int = 64, cache_dir: str | os.PathLike | None = DEFAULT_CACHE_DIR,
                 progress: bool | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.progress = progress
        self._dim: int | None = None
        self._key: str | None = None

    # -- what subclasses provide
    @abstractmethod
    def _fingerprint(self) -> dict[str, Any]:
        """JSON-able description of everything that determines the vectors (cheap: no model load)."""

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> torch.Tensor:
        """``(len(texts), dim)`` float32 CPU vectors of one batch."""

    @abstractmethod
    def _load_dim(self) -> int:
        """Vector width (may load the model)."""

    # -- public API
    @property
    def dim(self) -> int:
        """Vector width ``D``; read from the cache when possible, else from the model."""
        if self._dim is None:
            stored = self._store().dim if self.cache_dir is not None else None
            self._dim = stored if stored is not None else self._load_dim()
        return self._dim

    @property
    def cache_key(self) -> str:
        """Hex digest identifying this encoder's vectors (model files + options)."""
        if self._key is None:
            blob = json.dumps({"format": CACHE_FORMAT_VERSION, "class": type(self).__name__,
                               "model_id": self.model_id, **self._fingerprint()}, sort_keys=True)
            self._key = hashlib.sha256(blob.encode()).hexdigest()
        return self._key

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Encode ``texts`` (duplicates computed once; cached vectors reused).

        Returns:
            ``(N, dim)`` float32 tensor on the CPU, rows in the order of ``texts``.
        """
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
        if not texts:
            return torch.zeros(0, self.dim)
        keys = text_keys(texts)
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)  # (U,) sorted
        store = self._store() if self.cache_dir is not None else None
        vecs, found = store.lookup(uniq) if store is not None else (None, np.zeros(len(uniq), bool))
        missing = np.flatnonzero(~found)
        if len(missing):
            new = self._encode_all([texts[i] for i in first[missing]])  # (M, D)
            if vecs is None:
                vecs = np.zeros((len(uniq), new.shape[1]), dtype=np.float32)
            vecs[missing] = new
            if store is not None:
                store.add(uniq[missing], new, meta=self._meta())
        self._dim = int(vecs.shape[1])
        return torch.from_numpy(vecs[inverse.reshape(-1)])

    # -- helpers
    def _encode_all(self, texts: list[str]) -> np.ndarray:
        # Length-sorted batches: far less padding, same vectors (each text is encoded on its own row).
        order = np.argsort([len(t) for t in texts], kind="stable")
        out: np.ndarray | None = None
        for start, vec in self._batches([texts[i] for i in order]):
            if out is None:
                out = np.zeros((len(texts), vec.shape[1]), dtype=np.float32)
            out[order[start:start + len(vec)]] = vec.detach().float().cpu().numpy()
        assert out is not None
        return out

    def _batches(self, texts: list[str]) -> Iterator[tuple[int, torch.Tensor]]:
        from tqdm.auto import tqdm

        starts = range(0, len(texts), self.batch_size)
        bar = tqdm(starts, desc=f"encode {self.model_id}", unit="batch",
                   disable=None if self.progress is None else not self.progress)
        with torch.inference_mode():
            for s in bar:
                yield s, self._encode_batch(texts[s:s + self.batch_size])

    def _store(self) -> "VectorStore":
        assert self.cache_dir is not None
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model_id.rstrip("/").split("/")[-1])[:40] or "model"
        return VectorStore(self.cache_dir / f"{slug}-{self.cache_key[:16]}")

    def _meta(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "class": type(self).__name__, "key": self.cache_key,
                **self._fingerprint()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, batch_size={self.batch_size})"


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """``(N,)`` ``S32`` array: SHA-256 of each text's UTF-8 bytes (the cache key of a text)."""
    return np.array([hashlib.sha256(t.encode("utf-8")).digest() for t in texts], dtype="S32")
