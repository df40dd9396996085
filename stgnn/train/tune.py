"""Grid search for models without trained parameters, scored on validation samples only.

A reference scorer must be tuned like any model before a table compares against it, and with
the same rule: its options are chosen on validation, never on test. :func:`tune` builds the
model for every point of a grid from the split's inputs (:mod:`stgnn.inputs`, built once per
distinct :class:`~stgnn.inputs.InputSpec`), scores the split's validation samples under the
split's information setting (history scope; the target time only if it is ``known`` and the
model instance declares ``uses_target_time``) and
returns the best point together with every point's validation metrics, as a record to keep
beside the results::

    space = {"half_life": [30, 60, 120], "transition_weight": [0.0, 0.1, 0.2]}
    result = tune("user_history", split, space)
    result.best         # {"half_life": 60, "transition_weight": 0.2}
    result.to_dict()    # JSON-able: monitor, best, best_score, every grid point's val metrics

The test samples are never built, let alone scored: the selection cannot see them.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from stgnn.config import TrainConfig
from stgnn.data.batch import SampleLoader
from stgnn.data.information import InformationSetting
from stgnn.data.split import Split
from stgnn.eval.evaluate import evaluate
from stgnn.eval.metrics import metric_names
from stgnn.inputs import InputSpec, ModelInputs, build_inputs
from stgnn.models.base import Recommender
from stgnn.registry import build_model, input_spec
from stgnn.train.loop import loader_options, resolve_device
from stgnn.utils.io import atomic_write_json


@dataclass
class TuneResult:
    """What :func:`tune` returns.

    Attributes:
        model: the model name or path tuned.
        monitor: the validation metric maximised.
        best: the chosen constructor keywords (``base_kwargs`` merged with the best grid point).
        best_score: ``val[monitor]`` of ``best``.
        grid: one dict per grid point, in grid order: ``{"kwargs": point, "val": metrics}`` or,
            for a point the model rejected, ``{"kwargs": point, "error": message}``.
        protocol: the split's protocol options (its information setting included).
        num_val: validation samples scored per point.
        seconds: wall time of the search.
    """

    model: str
    monitor: str
    best: dict[str, Any]
    best_score: float
    grid: list[dict[str, Any]] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    num_val: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "monitor": self.monitor, "best": self.best, "best_score": self.best_score,
                "num_val": self.num_val, "protocol": self.protocol, "seconds": self.seconds, "grid": self.grid}

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON (atomically)."""
        atomic_write_json(Path(path), self.to_dict())


Space = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]]


def expand_grid(space: Space) -> list[dict[str, Any]]:
    """Every combination of ``space``'s values, the last key varying fastest; a list of such
    mappings is the union of their grids, in order (so options that only matter together, like a
    term's weight and its width, need not be crossed with the term switched off).

    ``{"a": [1, 2], "b": [0]}`` -> ``[{"a": 1, "b": 0}, {"a": 2, "b": 0}]``.
    """
    if not isinstance(space, Mapping):
        return [point for sub in space for point in expand_grid(sub)]
    for k, v in space.items():
        if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or len(v) == 0:
            raise ValueError(f"grid option {k!r} needs a non-empty list of values, got {v!r}")
    keys = list(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def eval_loader(model: Recommender, split: Split, part: str, cfg: TrainConfig) -> SampleLoader:
    """A non-shuffling loader of ``part`` under the split's information setting, as :func:`stgnn.train.fit`
    builds it: the protocol's history scope; the target time only if it is known and the model
    instance declares ``uses_target_time``."""
    info = InformationSetting.from_protocol(split.protocol)
    return SampleLoader(split, part, cfg.eval_batch_size, **loader_options(info, cfg, model.uses_target_time))


def tune(model: str | type[Recommender], split: Split, space: Space, *,
         base_kwargs: Mapping[str, Any] | None = None, cfg: TrainConfig | None = None,
         monitor: str = "MRR") -> TuneResult:
    """Pick the constructor keywords of a non-trainable ``model`` that maximise ``monitor`` on
    ``split``'s validation samples.

    Args:
        model: a registered name, class or dotted path (:func:`stgnn.registry.build_model`).
        split: the data; only ``samples["val"]`` are scored.
        space: ``{keyword: [values...]}`` (or a list of them), expanded by :func:`expand_grid`.
        base_kwargs: keywords shared by every point (a grid point overrides them).
        cfg: loader options (``eval_batch_size``, ``max_len``, ``hist_len``, ``device``); defaults
            of :class:`~stgnn.config.TrainConfig`.
        monitor: a metric name (``"MRR"``, ``"Acc@1"``...). Ties keep the earlier grid point.

    Returns:
        :class:`TuneResult`.

    Raises:
        ValueError: a trainable model (tune it with :func:`stgnn.train.fit` per point instead),
            an unknown metric, no validation samples, or no grid point the model accepts.
    """
    t0 = time.perf_counter()
    cfg = cfg or TrainConfig()
    if monitor not in metric_names():
        raise ValueError(f"monitor={monitor!r} is not a metric; choose one of {metric_names()}")
    if len(split.samples["val"]) == 0:
        raise ValueError(f"{split!r} has no validation samples to tune on")
    device = resolve_device(cfg.device)
    name = model if isinstance(model, str) else f"{model.__module__}.{model.__qualname__}"
    records: list[dict[str, Any]] = []
    best, best_score = None, float("-inf")
    built: dict[InputSpec, ModelInputs] = {}   # grid points that ask for the same inputs share them
    for point in expand_grid(space):
        kwargs = {**(base_kwargs or {}), **point}
        try:
            spec = input_spec(model, **kwargs)
            if spec not in built:
                built[spec] = build_inputs(split, spec)
            m = build_model(model, built[spec], **kwargs)
        except ValueError as e:  # e.g. weights of a mixture that sum past 1: recorded, not fatal
            records.append({"kwargs": point, "error": str(e)})
            continue
        if m.trainable:
            raise ValueError(f"tune() is for models without trained parameters; {type(m).__name__} is "
                             "trainable: run stgnn.train.fit for each point and compare their val metrics")
        m.to(device)
        metrics, _ = evaluate(m, eval_loader(m, split, "val", cfg), device)
        records.append({"kwargs": point, "val": metrics})
        if metrics[monitor] > best_score:
            best, best_score = kwargs, metrics[monitor]
    if best is None:
        raise ValueError(f"no grid point was accepted by {name}: {records[0]['error'] if records else 'empty grid'}")
    return TuneResult(model=name, monitor=monitor, best=best, best_score=float(best_score), grid=records,
                      protocol=dict(split.protocol), num_val=int(len(split.samples["val"])),
                      seconds=time.perf_counter() - t0)


__all__ = ["Space", "TuneResult", "eval_loader", "expand_grid", "tune"]
