"""Residual learning over a no-learning reference: its log-probabilities as a fixed prior.

A tuned :class:`~stgnn.models.reference.UserHistory` (personal frequency, routine,
transitions, popularity) is already a strong next-POI scorer. Rather than relearn it, a model can
take its distribution ``r`` as an input and learn only what it misses::

    log p(poi) = log_softmax( log q(poi) + lam(u) * log(r(poi) + floor) )

``q`` is the model's own distribution (for STGNN the pointer/generate mixture), ``u`` its
per-sample query vector and ``lam(u) = softplus(w . u + b) >= 0`` how much the sample trusts the
reference (``b`` starts where ``lam = 1``, an even product of the two). ``floor`` keeps POIs the
reference gives no mass (never visited, never a transition) in play. The reference has no
trained parameters; gradients flow into ``q`` and ``lam`` only.

``fusion="joint"`` (above) trains the model through the product. ``fusion="late"`` trains the
model alone (its loss ignores the prior, so training is exactly the model's without it) and
multiplies by ``r ** weight`` only when scoring: a product of experts of two scorers fitted
separately. On NYC the late product was the better of the two (experiments/information_settings/).

Leakage: the reference is built with ``counts="visible"`` (popularity and transitions counted
strictly before each sample's query time, under the protocol's history setting), so a training
sample's prior never counts its own target; its personal and routine terms read only the batch.
It reads the target time exactly when the batch carries it (the host model declares
``uses_target_time`` and the protocol allows it), else the last prefix time.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stgnn.data.batch import Batch
from stgnn.inputs import ModelInputs
from stgnn.models.reference import UserHistory


class ReferencePrior(nn.Module):
    """Multiply a model's distribution by a reference distribution raised to a learned power.

    Args:
        num_users, num_pois: id-space sizes.
        dim: width of the host model's query vector ``u``.
        reference: :class:`UserHistory` keywords (e.g. the tuned ones); ``counts`` is forced to
            ``"visible"`` (see the module docstring).
        floor: added to the reference's probabilities before the log.
        fusion: ``"joint"`` (trained through the product, ``lam`` learned per sample) or
            ``"late"`` (the model trains alone; the product with ``lam = weight`` is taken at scoring).
        weight: the fixed ``lam`` of ``fusion="late"``.

    Shapes:
        ``forward(batch, u (B, dim), logq (B, P)) -> (B, P)`` log-probabilities.
    """

    def __init__(self, num_users: int, num_pois: int, dim: int, reference: Mapping[str, Any] | None = None,
                 floor: float = 1e-4, fusion: str = "joint", weight: float = 1.0) -> None:
        super().__init__()
        if floor <= 0 or weight < 0:
            raise ValueError(f"need floor > 0 and weight >= 0, got floor={floor}, weight={weight}")
        if fusion not in ("joint", "late"):
            raise ValueError(f"fusion must be 'joint' or 'late', got {fusion!r}")
        self.fusion, self.weight = fusion, weight
        kwargs = {**(reference or {}), "counts": "visible"}
        self.reference = UserHistory(num_users, num_pois, **kwargs)
        self.floor = floor
        # lam(u) = softplus(lam_weight . u + lam_bias); made without drawing random numbers, so
        # the host model's own parameters start exactly as they would without the prior
        self.lam_weight = nn.Parameter(torch.zeros(dim), requires_grad=fusion == "joint")
        self.lam_bias = nn.Parameter(torch.zeros(()), requires_grad=fusion == "joint")
        self.reset_parameters()

    @classmethod
    def from_option(cls, option: Mapping[str, Any] | None, num_users: int, num_pois: int, dim: int,
                    num_sampled: int = 0) -> "ReferencePrior | None":
        """The prior a host model's ``prior`` option asks for (``None``: none).

        ``option``: :class:`UserHistory` keywords (e.g. the tuned reference's) plus this class's
        ``fusion`` (``"joint"``: trained through, weight learned per sample; ``"late"``: trained
        alone, product at scoring), ``weight`` and ``floor``. ``num_sampled``: the host's sampled
        softmax negatives; ``fusion="joint"`` renormalises over every POI and refuses them.
        """
        if option is None:
            return None
        if num_sampled > 0 and option.get("fusion", "joint") == "joint":
            raise ValueError("prior with fusion='joint' renormalises over every POI; it needs num_sampled=0")
        opts = {k: option[k] for k in ("fusion", "weight", "floor") if k in option}
        return cls(num_users, num_pois, dim, {k: v for k, v in option.items() if k not in opts}, **opts)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.lam_weight.zero_()
            self.lam_bias.fill_(math.log(math.e - 1.0))   # softplus(b) = 1: an even product at the start

    def prepare(self, inputs: ModelInputs) -> None:
        """The reference's statistics (``inputs`` built with ``visible_counts``)."""
        self.reference.prepare(inputs)

    def log_reference(self, batch: Batch) -> Tensor:
        """``(B, P)`` float32 ``log(r + floor)``; no gradient."""
        with torch.no_grad():
            return torch.log(self.reference.score(batch).float() + self.floor)

    def forward(self, batch: Batch, u: Tensor, logq: Tensor) -> Tensor:
        if self.fusion == "late":
            return (logq.float() + self.weight * self.log_reference(batch)).log_softmax(-1)  # (B, P)
        lam = F.softplus(u.float() @ self.lam_weight + self.lam_bias)[:, None]  # (B, 1)
        return (logq.float() + lam * self.log_reference(batch)).log_softmax(-1)  # (B, P)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(fusion={self.fusion}, weight={self.weight}, floor={self.floor}, "
                f"reference={self.reference.extra_repr()})")


__all__ = ["ReferencePrior"]
