"""The one interface every recommender implements, neural or not.

``score(batch) -> (B, P)`` scores every POI for each sample; higher is better. Trainable
models also implement ``loss(batch) -> scalar``. Capability flags tell the engine what a model
needs, so nothing ever branches on a model's name:

* ``needs_graph``: call :meth:`Recommender.attach_graph` with the leakage-safe graph first.
* ``needs_text``: the POI text embeddings must be computed and attached.
* ``uses_target_time``: the model reads ``batch.target_ts`` when the batch carries it; the
  protocol option ``target_time`` (``known``/``hidden``) decides whether it does, and the loader
  gives the target time to no model that does not declare this (written into every result).
* ``trainable``: has parameters optimised by :func:`stgnn.train.fit`.

Non-neural models learn their statistics in :meth:`Recommender.fit_data` from the training
period of a split (check-ins with ``part == 0``), never from val/test.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from stgnn.data.batch import Batch
from stgnn.data.split import Split


class Recommender(nn.Module):
    """Base class: a plain ``nn.Module`` with the scoring contract.

    Args:
        num_users, num_pois: sizes of the id spaces of the split.
    """

    needs_graph: ClassVar[bool] = False
    needs_text: ClassVar[bool] = False
    uses_target_time: ClassVar[bool] = False
    trainable: ClassVar[bool] = True

    def __init__(self, num_users: int, num_pois: int) -> None:
        super().__init__()
        self.num_users, self.num_pois = num_users, num_pois

    def fit_data(self, split: Split) -> None:
        """Precompute what the model needs from the training period (counts, graphs)."""

    def score(self, batch: Batch) -> torch.Tensor:
        """``(B, P)`` scores over all POIs (higher = more likely next)."""
        raise NotImplementedError

    def loss(self, batch: Batch) -> torch.Tensor:
        """Scalar training loss; default: full softmax cross-entropy over all POIs."""
        return nn.functional.cross_entropy(self.score(batch).float(), batch.target_poi)

    def extra_repr(self) -> str:
        return f"num_users={self.num_users}, num_pois={self.num_pois}"

    @classmethod
    def capabilities(cls) -> dict[str, Any]:
        return {k: getattr(cls, k) for k in ("needs_graph", "needs_text", "uses_target_time", "trainable")}
