"""Baseline recommenders, one file each, all behind :class:`stgnn.models.base.Recommender`.

Config names resolve through the one registry, :mod:`stgnn.registry` (``"pop"``,
``"user_history"``...); this package only holds the classes.
"""
from __future__ import annotations

from stgnn.baselines.getnext import GETNext
from stgnn.baselines.gru4rec import GRU4Rec
from stgnn.baselines.lightgcn import LightGCN
from stgnn.baselines.lstm import LSTM
from stgnn.baselines.mf_bpr import MFBPR
from stgnn.baselines.pop import Pop
from stgnn.baselines.sasrec import SASRec
from stgnn.baselines.stan import STAN
from stgnn.baselines.user_history import UserHistory

__all__ = ["GETNext", "GRU4Rec", "LSTM", "LightGCN", "MFBPR", "Pop", "SASRec", "STAN", "UserHistory"]
