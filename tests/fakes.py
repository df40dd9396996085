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
