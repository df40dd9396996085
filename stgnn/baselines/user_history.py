"""UserHistory, the tuned no-learning reference of every table (recency-weighted personal
frequency, transitions, routine and popularity terms).

Its home is :mod:`stgnn.models.reference`, since STGNN builds it in as a prior
(:class:`~stgnn.models.prior.ReferencePrior`) and models may not import baselines; this module
keeps the baseline's import path.
"""
from __future__ import annotations

from stgnn.models.reference import UserHistory

__all__ = ["UserHistory"]
