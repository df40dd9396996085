"""Test doubles shared across test folders (importable as ``from fakes import ...``: pytest puts
``tests/`` on ``sys.path`` for its conftest)."""
from __future__ import annotations

import torch

from stgnn.features.text import TextEncoder


class FakeText(TextEncoder):
    """Offline, instant text vectors (``dim`` copies of the text's length mod 7) that remember the
    texts they were asked for; the real MiniLM path is tested in ``tests/features/test_text.py``."""

    model_id = "fake"

    def __init__(self, dim: int = 8) -> None:
        super().__init__(cache_dir=None)
        self.width, self.texts, self.calls = dim, [], 0

    def _fingerprint(self) -> dict:
        return {}

    def _load_dim(self) -> int:
        return self.width

    def encode(self, texts):
        self.calls += 1
        self.texts = list(texts)
        return super().encode(texts)

    def _encode_batch(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([[len(t) % 7] * self.width for t in texts], dtype=torch.float32)


class HashText(TextEncoder):
    """Offline text vectors that differ per text (``dim`` normals seeded by the text's SHA-256), with
    the real cache (``cache_dir``); ``computed`` lists every text the "model" had to encode."""

    model_id = "hash"

    def __init__(self, dim: int = 12, cache_dir=None) -> None:
        super().__init__(cache_dir=cache_dir, progress=False)
        self.width, self.computed = dim, []

    def _fingerprint(self) -> dict:
        return {"dim": self.width}

    def _load_dim(self) -> int:
        return self.width

    def _encode_batch(self, texts: list[str]) -> torch.Tensor:
        import hashlib

        self.computed += texts
        seeds = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little") for t in texts]
        return torch.stack([torch.randn(self.width, generator=torch.Generator().manual_seed(s)) for s in seeds])
