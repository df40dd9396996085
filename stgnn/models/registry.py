"""Model names → classes, for configs. Outside models need no registration: pass a class or a
dotted import path ``"package.module.Class"``.

Entries are import paths, imported only when asked for, so a model with an optional dependency
never slows down or breaks the others.
"""
from __future__ import annotations

import importlib

from stgnn.data.split import Split
from stgnn.models.base import Recommender

MODELS: dict[str, str] = {
    "pop": "stgnn.baselines.pop.Pop",
    "user_history": "stgnn.baselines.user_history.UserHistory",
    "mf_bpr": "stgnn.baselines.mf_bpr.MFBPR",
    "lstm": "stgnn.baselines.lstm.LSTM",
    "gru4rec": "stgnn.baselines.gru4rec.GRU4Rec",
    "sasrec": "stgnn.baselines.sasrec.SASRec",
    "stan": "stgnn.baselines.stan.STAN",
    "getnext": "stgnn.baselines.getnext.GETNext",
    "lightgcn": "stgnn.baselines.lightgcn.LightGCN",
    "stgnn": "stgnn.models.stgnn.STGNN",
}


def _import(path: str) -> type:
    module, _, name = path.rpartition(".")
    if not module:
        raise ValueError(f"{path!r} is not a dotted path 'package.module.Class'")
    obj = getattr(importlib.import_module(module), name)
    if not isinstance(obj, type):
        raise TypeError(f"{path!r} is not a class")
    return obj


def resolve_model(model: str | type[Recommender]) -> type[Recommender]:
    """The class for a short name (see :data:`MODELS`), a class, or a dotted import path.

    Raises:
        ValueError: an unknown short name; the message lists the valid ones.
    """
    if isinstance(model, type):
        return model
    key = model.strip().lower().replace("-", "_")
    if key in MODELS:
        return _import(MODELS[key])
    if "." in model:
        return _import(model)
    raise ValueError(f"unknown model {model!r}; valid names: {', '.join(sorted(MODELS))} "
                     "(or a class, or a dotted path 'package.module.Class')")


def build_model(model: str | type[Recommender], split: Split, **kwargs) -> Recommender:
    """Instantiate a model for ``split``: ``cls.from_split(split, **kwargs)`` when the class has
    it (models needing coordinates, categories or graphs), else ``cls(num_users, num_pois, **kwargs)``."""
    cls = resolve_model(model)
    if hasattr(cls, "from_split"):
        return cls.from_split(split, **kwargs)
    return cls(split.num_users, split.num_pois, **kwargs)
