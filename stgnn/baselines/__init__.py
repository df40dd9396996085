"""Baseline recommenders, one file each, all behind :class:`stgnn.models.base.Recommender`.

``resolve`` (= :func:`stgnn.models.registry.resolve_model`) turns a config value into a model
class: a short name (``"pop"``), a class (passed through untouched) or a dotted import path
(``"mypkg.models.MyRec"``), so an outside model needs no registration.
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
from stgnn.models.base import Recommender
from stgnn.models.registry import resolve_model

BASELINES: dict[str, type[Recommender]] = {
    "pop": Pop,
    "user_history": UserHistory,
    "mf_bpr": MFBPR,
    "lstm": LSTM,
    "gru4rec": GRU4Rec,
    "sasrec": SASRec,
    "stan": STAN,
    "getnext": GETNext,
    "lightgcn": LightGCN,
}


# one resolver for every model name (baselines and the project's own), see stgnn/models/registry.py
resolve = resolve_model


__all__ = ["BASELINES", "GETNext", "GRU4Rec", "LSTM", "LightGCN", "MFBPR", "Pop", "SASRec", "STAN", "UserHistory",
           "resolve"]
