"""The language model inside STGNN: a learned projection of each sample's intent-text vector.

STGNN with ``intent="<encoder spec>"`` renders every batch row's prefix (and the query time when
the batch carries the target time) as text (:func:`stgnn.features.intent.intent_texts`), embeds
it with the **frozen** text encoder (vectors come from its on-disk cache, which the builder
filled for every sample of the split; new texts, e.g. live requests, are encoded on demand and
cached atomically), and adds ``MLP(vector)`` to the user/query state ``u`` before ``u`` scores
every POI and drives the pointer's gate. The encoder is never trained, only the MLP.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from stgnn.data.batch import Batch
from stgnn.features.intent import intent_texts
from stgnn.features.text import TextEncoder, make_text_encoder
from stgnn.inputs import ModelInputs


class IntentHead(nn.Module):
    """``(B, dim)`` learned contribution of the frozen LM vector of each row's intent text.

    Args:
        spec: text-encoder spec (``"minilm"``, ``"st:<path>"``...), used when no ``encoder`` is given.
        labels: ``(P,)`` POI labels the texts are rendered with.
        text_dim: the encoder's vector width ``D``.
        dim: the model width.
        max_items: most recent prefix check-ins per text.
        dropout: dropout inside the MLP.
        encoder: an encoder object to use (the builder's); else one is made from ``spec`` on first use.

    Shapes:
        ``vectors(batch) -> (B, D)``; ``forward(batch) -> (B, dim)``.
    """

    def __init__(self, spec: str, labels: Sequence[str], text_dim: int, dim: int, max_items: int = 8,
                 dropout: float = 0.1, encoder: TextEncoder | None = None) -> None:
        super().__init__()
        if len(labels) == 0 or text_dim < 1:
            raise ValueError("IntentHead needs the POI labels and vector width the builder records "
                             "(build the inputs with STGNN.input_spec(intent=...))")
        self.spec, self.labels, self.max_items, self._encoder = spec, list(labels), max_items, encoder
        self.norm = nn.LayerNorm(text_dim)
        self.mlp = nn.Sequential(nn.Linear(text_dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim))

    @classmethod
    def for_model(cls, inputs: ModelInputs, model: nn.Module) -> "IntentHead":
        """The head of an STGNN (its ``dim``, ``intent_items``, ``dropout``), on the model's device."""
        head = cls(inputs.spec.intent or "", inputs.intent_labels, inputs.intent_dim, model.dim, model.intent_items,
                   model.dropout, inputs.intent_encoder)
        return head.to(model.poi_bias.device)

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = make_text_encoder(self.spec, device="cpu", progress=False)
        return self._encoder

    def vectors(self, batch: Batch) -> Tensor:
        """``(B, D)`` frozen encoder vectors of the rows' intent texts, on the model's device."""
        texts = intent_texts(batch, self.labels, self.max_items)
        with torch.no_grad():
            v = self.encoder.encode(texts)
        return v.to(self.norm.weight.device, torch.float32)

    def forward(self, batch: Batch) -> Tensor:
        return self.mlp(self.norm(self.vectors(batch)))

    def extra_repr(self) -> str:
        return f"spec={self.spec!r}, max_items={self.max_items}"


__all__ = ["IntentHead"]
