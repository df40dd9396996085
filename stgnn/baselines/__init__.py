"""Baseline recommenders, one file each, all behind :class:`stgnn.models.base.Recommender`.

``resolve`` turns a config value into a model class: a short name (``"pop"``), a class (passed
through untouched) or a dotted import path (``"mypkg.models.MyRec"``), so an outside model
needs no registration.
"""
from __future__ import annotations

import importlib

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


def resolve(model: str | type[Recommender]) -> type[Recommender]:
    """The recommender class named by ``model``.

    Args:
        model: a class (returned as is), a name in :data:`BASELINES` (case and ``-``/``_``
            insensitive), or a dotted path ``"package.module.Class"``.

    Raises:
        ValueError: unknown name, listing the valid ones.
        ImportError / AttributeError: a dotted path that does not import.
    """
    if isinstance(model, type):
        return model
    if not isinstance(model, str):
        raise TypeError(f"expected a model name, class or dotted path, got {type(model).__name__}")
    key = model.strip().lower().replace("-", "_")
    if key in BASELINES:
        return BASELINES[key]
    if "." in model:
        module, _, name = model.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        if not isinstance(cls, type):
            raise TypeError(f"{model!r} is not a class")
        return cls
    raise ValueError(f"unknown baseline {model!r}; valid names: {', '.join(sorted(BASELINES))} "
                     "(or pass a class or a dotted path 'package.module.Class')")


__all__ = ["BASELINES", "GETNext", "GRU4Rec", "LSTM", "LightGCN", "MFBPR", "Pop", "SASRec", "STAN", "UserHistory",
           "resolve"]
