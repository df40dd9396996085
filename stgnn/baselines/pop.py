"""Popularity: rank every POI by its number of training-period check-ins.

The classic non-personalised floor. Counts come from check-ins with ``part == 0`` only, so a
val/test sample never sees a check-in at or after its own time (all val/test targets lie after
the training cut). Ties are *not* broken: POIs with equal counts get equal scores and the
tie-aware metrics (pessimistic ties) rank the target below all of them. A tie-breaker by POI id
would add an arbitrary, id-dependent signal to a baseline meant to be the plain count.
"""
from __future__ import annotations

import torch

from stgnn.data.batch import Batch
from stgnn.inputs import ModelInputs
from stgnn.models.base import Recommender


class Pop(Recommender):
    """Training-period POI popularity (non-trainable).

    Args:
        num_users, num_pois: id-space sizes of the split.

    Shapes:
        ``score(batch)``: ``(B, P)`` float32, the same row (training counts) for every sample.
    """

    trainable = False

    def __init__(self, num_users: int, num_pois: int) -> None:
        super().__init__(num_users, num_pois)
        self.register_buffer("counts", torch.zeros(num_pois, dtype=torch.float32))  # (P,)

    def prepare(self, inputs: ModelInputs) -> None:
        """Check-ins per POI over the training period (``part == 0``)."""
        self.counts.copy_(inputs.stats.poi_count.float())                   # (P,)

    def score(self, batch: Batch) -> torch.Tensor:
        return self.counts.unsqueeze(0).expand(len(batch), -1).clone()  # (B, P)

    def loss(self, batch: Batch) -> torch.Tensor:
        raise TypeError("Pop is not trainable (trainable=False): build it from its inputs, never call loss()")
