"""The one model registry: config names -> classes, for the project's model and every baseline.

It sits above ``models/`` and ``baselines/`` (neither imports it). Entries are import paths,
imported only when asked for, so a model with an optional dependency never slows down or
breaks the others. Outside models need no registration: pass a class or a dotted import path
``"package.module.Class"``.

Adding a baseline: one file in ``stgnn/baselines/`` with a :class:`~stgnn.models.base.Recommender`
subclass, its line in :data:`MODELS`, and its tiny test sizes in ``tests/test_registry.py``
(the shared conformance suite then runs on it; a test fails until both lines exist).

    inputs = build_inputs(split, input_spec("stgnn", **kwargs))   # once per run
    model = build_model("stgnn", inputs, **kwargs)
"""
from __future__ import annotations

import importlib
from typing import Any

from stgnn.data.split import Split
from stgnn.features.text import TextEncoder
from stgnn.inputs import InputSpec, ModelInputs, build_inputs
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


def input_spec(model: str | type[Recommender], **kwargs: Any) -> InputSpec:
    """What the builder must make for ``model`` built with ``kwargs`` (its ``model_kwargs``)."""
    cls = resolve_model(model)
    return cls.input_spec(**kwargs) if hasattr(cls, "input_spec") else InputSpec()


def build_model(model: str | type[Recommender], inputs: ModelInputs, **kwargs: Any) -> Recommender:
    """Instantiate ``model`` from built ``inputs``: ``cls.from_inputs(inputs, **constructor keywords)``
    (the model's ``input_options`` in ``kwargs`` were the builder's; they are not passed on). A
    class that is not a :class:`Recommender` subclass is called as ``cls(num_users, num_pois, **kwargs)``."""
    cls = resolve_model(model)
    if not hasattr(cls, "from_inputs"):
        return cls(inputs.num_users, inputs.num_pois, **kwargs)
    ctor = {k: v for k, v in kwargs.items() if k not in cls.input_options}
    return cls.from_inputs(inputs, **ctor)


def build_for_split(model: str | type[Recommender], split: Split, *, text_encoder: TextEncoder | None = None,
                    **kwargs: Any) -> Recommender:
    """:func:`build_inputs` for what ``model`` needs, then :func:`build_model`: one call for
    scripts and tests (``text_encoder``: see :func:`build_inputs`). Runs that build several models
    of one split should build the inputs once."""
    inputs = build_inputs(split, input_spec(model, **kwargs), text_encoder=text_encoder)
    return build_model(model, inputs, **kwargs)
