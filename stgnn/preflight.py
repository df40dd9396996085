"""Checks of a run's config before any data work: a mistyped key fails in a second, by name.

:func:`check_experiment` resolves the model and checks ``model_kwargs`` against its constructor
(and ``from_inputs``), ``protocol`` against :class:`~stgnn.data.protocol.ProtocolConfig`, the device
against the machine and the dataset spec against the known names and files. Used by ``stgnn
train`` and, through :func:`stgnn.config.apply_overrides` callers, by ``stgnn reproduce``. It sits
above the models and the data layer (like the recipes), so :mod:`stgnn.config` stays free of both.
"""
from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any

from stgnn.config import ConfigError, DatasetConfig, ExperimentConfig, check_type, from_dict


def check_experiment(cfg: ExperimentConfig) -> None:
    """Raise :class:`ConfigError` naming the first bad key of ``cfg`` (cheap: no data is read)."""
    check_protocol(cfg.protocol)
    check_model_kwargs(check_model(cfg.model), cfg.model_kwargs)
    check_device(cfg.train.device)
    check_dataset(cfg.dataset)


def check_protocol(protocol: dict[str, Any]) -> None:
    """``protocol.<key>`` must be a :class:`ProtocolConfig` field of the right type and value."""
    from stgnn.data.information import LEGACY_TARGET_TIME_KEY
    from stgnn.data.protocol import ProtocolConfig

    if LEGACY_TARGET_TIME_KEY in protocol:  # the old name of target_time, read as its alias
        try:
            ProtocolConfig.from_dict({k: protocol[k] for k in (LEGACY_TARGET_TIME_KEY, "target_time") if k in protocol})
        except ValueError as e:
            raise ConfigError(f"protocol.{LEGACY_TARGET_TIME_KEY}: {e}") from None
        protocol = {k: v for k, v in protocol.items() if k != LEGACY_TARGET_TIME_KEY}
    from_dict(ProtocolConfig, protocol, prefix="protocol.")


def check_model(model: str | type) -> type:
    """The model class of ``model`` (a registered name, a class or ``"pkg.module.Class"``)."""
    from stgnn.models.base import Recommender
    from stgnn.registry import MODELS, resolve_model

    try:
        cls = resolve_model(model)
    except (ImportError, AttributeError, TypeError, ValueError) as e:
        raise ConfigError(f"model={model!r} cannot be used ({type(e).__name__}: {e}); give a registered name "
                          f"({', '.join(sorted(MODELS))}) or an importable 'package.module.Class'") from None
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ConfigError(f"model={model!r} is {cls!r}, not a Recommender subclass (stgnn.models.base.Recommender)")
    return cls


def model_parameters(cls: type) -> tuple[dict[str, inspect.Parameter], bool]:
    """The keyword arguments ``model_kwargs`` may set on ``cls``, and whether any is accepted.

    :func:`stgnn.registry.build_model` calls ``cls.from_inputs(inputs, **kw)`` when the class
    has it, else ``cls(num_users, num_pois, **kw)``. A ``from_inputs`` that forwards ``**kwargs``
    forwards them to the constructor, so both signatures count; the class's ``input_options``
    (builder options such as ``text_model``) count too.
    """
    init = list(inspect.signature(cls.__init__).parameters.values())[1:]  # drop self
    params: dict[str, inspect.Parameter] = {}
    open_ended = False
    for name in getattr(cls, "input_options", ()):
        params[name] = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY)
    if hasattr(cls, "from_inputs"):
        fs = list(inspect.signature(cls.from_inputs).parameters.values())[1:]  # drop inputs
        params.update({p.name: p for p in fs if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)})
        forwards = any(p.kind == p.VAR_KEYWORD for p in fs)
    else:
        forwards = True
    if forwards:
        filled = {"num_users", "num_pois"}
        params.update({p.name: p for p in init
                       if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in filled})
        open_ended = any(p.kind == p.VAR_KEYWORD for p in init)
    return params, open_ended


def check_model_kwargs(cls: type, kwargs: dict[str, Any]) -> None:
    """Every ``model_kwargs`` key must be an argument of the model (and of a plain type that fits
    its annotation, where it has one we can check)."""
    params, open_ended = model_parameters(cls)
    unknown = sorted(set(kwargs) - set(params))
    if unknown and not open_ended:
        raise ConfigError(f"model_kwargs.{unknown[0]}: not an argument of {cls.__module__}.{cls.__qualname__}; "
                          f"valid: {sorted(params)}")
    hints: dict[str, Any] = {}
    for fn in (cls.__init__, getattr(cls, "from_inputs", None)):
        try:
            hints.update(typing.get_type_hints(fn) if fn is not None else {})
        except Exception:  # noqa: BLE001 - annotations that do not resolve are simply not checked
            pass
    for key, value in kwargs.items():
        if key in hints and key in params:
            check_type(f"model_kwargs.{key}", value, hints[key])


def check_device(device: str) -> None:
    """``train.device`` must name a device this machine has (``auto`` always does)."""
    if device == "auto":
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"train.device={device!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ConfigError(f"train.device={device!r} but this machine has no usable CUDA device; "
                              "use train.device=auto or cpu")
        if dev.index is not None and dev.index >= n:
            raise ConfigError(f"train.device={device!r} but this machine has {n} CUDA device(s) (0..{n - 1})")
    elif dev.type != "cpu":
        raise ConfigError(f"train.device={device!r}: only auto, cpu and cuda[:N] are supported")


def check_dataset(dataset: str | DatasetConfig) -> None:
    """A dataset name, an existing file, or a file with valid loader options."""
    from stgnn.data.sources import dataset_names
    from stgnn.data.sources.csv import TIME_UNITS, parse_columns
    from stgnn.data.validate import time_window_seconds

    if isinstance(dataset, DatasetConfig):
        path = dataset.path
        try:
            if dataset.columns:
                parse_columns(dataset.columns)
            time_window_seconds(dataset.time_window)
        except ValueError as e:
            raise ConfigError(f"dataset: {e}") from None
        if dataset.time_unit is not None and dataset.time_unit not in TIME_UNITS and "%" not in dataset.time_unit:
            raise ConfigError(f"dataset.time_unit={dataset.time_unit!r}: choose one of {list(TIME_UNITS)} "
                              "or a strftime format")
    else:
        path = dataset
        if str(dataset).lower() in dataset_names():
            return
    if Path(path).is_dir():
        from stgnn.data.schema import DataError
        from stgnn.data.sources import source_classes

        try:
            if any(c.file_set(Path(path)) for c in source_classes()):
                return  # a pre-split set of <name>_train/val/test.csv
        except DataError as e:
            raise ConfigError(f"dataset={path!r}: {e}") from None
        raise ConfigError(f"dataset={path!r} is a folder; give a data file, a folder holding one pre-split set "
                          f"(<name>_train.csv, <name>_val.csv, <name>_test.csv) or a name {list(dataset_names())}")
    if not Path(path).is_file():
        raise ConfigError(f"dataset={path!r} is neither a dataset name {list(dataset_names())} nor an existing file")
