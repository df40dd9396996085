"""Typed run configuration: dataclass defaults in code, YAML deltas, dotted ``key=value`` overrides.

Precedence, lowest first: the defaults below ← a YAML file (holding only what differs) ← command
line overrides such as ``train.lr=1e-3`` or ``seeds=[0,1,2]``. Override values are parsed with
``yaml.safe_load``, so numbers, booleans, lists and ``null`` need no quoting. Overrides are
parsed here only (:func:`apply_overrides`, used by the CLI and the recipes); nothing reads
``sys.argv``.

``protocol`` and ``model_kwargs`` are free-form dicts: their keys belong to
:class:`stgnn.data.protocol.ProtocolConfig` and to the model's constructor (this module does not
depend on either; :mod:`stgnn.preflight` checks them before any data work). Every other unknown
key is an error that lists the valid keys.

``dataset`` is a name (``nyc``), a file path, or, for your own CSV/Parquet, a mapping
(:class:`DatasetConfig`)::

    dataset:
      path: checkins.csv
      columns: {user: uid, item: venue, time: ts, lat: lat, lon: lon}
      time_unit: s
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml


@dataclass
class TrainConfig:
    """Optimisation and evaluation options of :func:`stgnn.train.fit`.

    Attributes:
        epochs: maximum number of epochs.
        batch_size: training samples per step; ``eval_batch_size`` for val/test scoring.
        lr, weight_decay: AdamW options.
        clip_norm: max global gradient norm (``0`` or ``None`` disables clipping).
        patience: epochs without improvement of ``monitor`` before stopping (``0`` disables).
        min_delta: an improvement must exceed this.
        monitor: validation metric to maximise, e.g. ``"MRR"`` or ``"Acc@1"``.
        schedule: ``"none"``, ``"cosine"`` (to ``min_lr`` over ``epochs``), ``"step"``
            (``gamma`` every ``step_size`` epochs) or ``"plateau"`` (``gamma`` after
            ``plateau_patience`` epochs without improvement of ``monitor``).
        amp: ``"none"``, ``"bf16"`` or ``"fp16"`` autocast for training (CUDA only; ignored on CPU).
            ``fp16`` also uses a gradient scaler.
        eval_amp: autocast the val/test scoring too. Off by default: low-precision scores create
            ties, and ties are counted pessimistically.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        seed: seeds python, numpy, torch and the shuffling generator.
        max_len, hist_len: prefix and history lengths kept per sample (:class:`SampleLoader`); which
            history a sample may see is a protocol option (``split.protocol["history"]``).
        progress: show tqdm bars (only when stderr is a terminal).
        tensorboard: write TensorBoard scalars beside ``curves.csv``.
        num_threads: torch intra-op CPU threads (``0`` keeps torch's default).
        deterministic: deterministic cuDNN (slower convolutions, reproducible results).
    """

    epochs: int = 50
    batch_size: int = 256
    eval_batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-4
    clip_norm: float | None = 1.0
    patience: int = 10
    min_delta: float = 0.0
    monitor: str = "MRR"
    schedule: str = "cosine"
    min_lr: float = 0.0
    step_size: int = 10
    gamma: float = 0.5
    plateau_patience: int = 3
    amp: str = "none"
    eval_amp: bool = False
    device: str = "auto"
    seed: int = 0
    max_len: int = 64
    hist_len: int = 128
    progress: bool = True
    tensorboard: bool = True
    num_threads: int = 0
    deterministic: bool = True

    def __post_init__(self) -> None:
        _check_choice("train.schedule", self.schedule, ("none", "cosine", "step", "plateau"))
        _check_choice("train.amp", self.amp, ("none", "bf16", "fp16"))
        if self.epochs < 0 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError(f"train.epochs must be >= 0 and batch sizes >= 1, got epochs={self.epochs}, "
                              f"batch_size={self.batch_size}, eval_batch_size={self.eval_batch_size}")


@dataclass(frozen=True)
class DatasetConfig:
    """An own data file and its loader options (``dataset:`` given as a mapping).

    ``None`` means the loader's default (see :func:`stgnn.data.sources.csv.load_table`).

    Attributes:
        path: the CSV/TSV/Parquet file (or any file a source reads).
        columns: ``{user, item, time [, lat, lon, category, text, tz]: your column}``; also
            accepted as ``"user=uid,item=sku,time=ts"`` (the CLI's ``--columns``).
        time_unit: ``s``, ``ms``, ``iso``, ``auto`` or a ``strftime`` format.
        time_window: plausible ``[start, end)`` years or ISO dates of the check-ins.
        on_bad_row: ``raise`` or ``skip`` (counted and reported).
        tz_offset_min, sep, encoding: as the loader's options.
    """

    path: str
    columns: Union[dict[str, str], str] = field(default_factory=dict)
    time_unit: str | None = None
    time_window: list[Any] | None = None
    on_bad_row: str | None = None
    tz_offset_min: int | None = None
    sep: str | None = None
    encoding: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.columns, str):  # "user=uid,item=sku,time=ts"
            pairs = [p.split("=", 1) for p in self.columns.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ConfigError(f"dataset.columns={self.columns!r}: write KEY=COLUMN pairs, "
                                  "e.g. user=uid,item=sku,time=ts")
            object.__setattr__(self, "columns", {k.strip(): v.strip() for k, v in pairs})
        if self.on_bad_row is not None:
            _check_choice("dataset.on_bad_row", self.on_bad_row, ("raise", "skip"))

    def __hash__(self) -> int:  # a config value used as a cache key: hash the content
        return hash(json.dumps(dataclasses.asdict(self), sort_keys=True, default=str))

    def __str__(self) -> str:
        return self.path


@dataclass
class ExperimentConfig:
    """One experiment: data, protocol, model, training options and seeds.

    Attributes:
        name: run name (a folder under ``output_dir``).
        dataset: dataset name understood by ``stgnn.data`` (``"nyc"``, ``"tky"``, ``"synthetic"``...),
            a file path, or a :class:`DatasetConfig` (a file with its column mapping).
        data_root: folder of raw data; ``None`` means ``$STGNN_DATA_DIR``.
        protocol: :class:`stgnn.data.protocol.ProtocolConfig` fields that differ from its defaults.
        model: a registered model name or an import path ``"pkg.module.Class"``.
        model_kwargs: keyword arguments of the model's constructor.
        train: :class:`TrainConfig`.
        seeds: one run per seed; results are reported as mean ± std over them.
        output_dir: results root; a run writes to ``output_dir/name/seed_<s>``.
    """

    name: str = "run"
    dataset: Union[str, DatasetConfig] = "nyc"
    data_root: str | None = None
    protocol: dict[str, Any] = field(default_factory=dict)
    model: str = "lstm"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    seeds: list[int] = field(default_factory=lambda: [0])
    output_dir: str = "results"

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds must hold at least one seed")


class ConfigError(ValueError):
    """A configuration key or value is invalid (the message says which and what is valid)."""


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of {list(choices)}")


# ---------------------------------------------------------------------- dict <-> dataclass
def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict of a config dataclass (paths as strings)."""
    return dataclasses.asdict(cfg)


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; int→float is the only conversion."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else from_dict(tp, value, prefix=f"{key}.")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}={value!r} is not valid; choose one of {list(typing.get_args(tp))}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or (Ellipsis not in args and len(value) != len(args)):
            raise ConfigError(f"{key}={value!r} must be a list of {len(args)} values")
        inner = [args[0]] * len(value) if Ellipsis in args else list(args)
        return tuple(_coerce(f"{key}[{i}]", v, t) for i, (v, t) in enumerate(zip(value, inner)))
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(key, value, a)
            except ConfigError as e:
                errors.append(str(e))
        # a mapping given for a "str or section" key: the section's error is the useful one
        raise ConfigError(errors[-1] if errors and isinstance(value, dict) else errors[0] if errors
                          else f"{key}: cannot be None")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r} must be a list")
        (inner,) = typing.get_args(tp) or (Any,)
        return [_coerce(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={value!r} must be a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}={value!r} must be a number")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r} must be an integer")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be true or false")
        return value
    if tp is str:
        if isinstance(value, Path):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r} must be a string")
        return value
    return value


def check_type(key: str, value: Any, tp: Any) -> None:
    """Raise :class:`ConfigError` when ``value`` does not fit annotation ``tp`` (types this module
    does not know, e.g. a tensor, are not checked)."""
    _coerce(key, value, tp)


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a (partial) nested dict; unknown keys raise :class:`ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown config key(s) {[prefix + k for k in unknown]}; "
                          f"valid keys: {[prefix + n for n in names]}")
    kw: dict[str, Any] = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kw[name] = from_dict(tp, value, prefix=f"{prefix}{name}.")
        else:
            kw[name] = _coerce(prefix + name, value, tp)
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in kw
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"config key {prefix + missing[0]!r} is required")
    try:
        return cls(**kw)
    except ConfigError:
        raise
    except ValueError as e:  # a dataclass's own check, e.g. ProtocolConfig's choices
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {e}") from None


def deep_merge(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in delta.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-3"`` → ``(["train", "lr"], 0.001)``; the value is parsed by ``yaml.safe_load``."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. train.lr=1e-3)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key part")
    value = yaml.safe_load(raw) if raw.strip() else ""
    # YAML 1.1 reads "1e-3" (no dot) as a string; accept it as the float a user means.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in "eE.") and value.strip() != "" else value
        except ValueError:
            pass
    return key.split("."), value


def _section_type(tp: Any) -> type | None:
    """The dataclass a key's annotation holds (``DatasetConfig`` in ``str | DatasetConfig``)."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (Union, types.UnionType):
        return next((a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)), None)
    return None


def _set_path(d: dict[str, Any], path: list[str], value: Any, cls: type | None) -> None:
    """Set ``d[path[0]]...[path[-1]] = value`` in a config dict, checking each key against
    dataclass ``cls``. A dict value merges into a dict already there (as a YAML delta does)."""
    node, tp, prefix = d, cls, ""
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if tp is not None:
            names = [f.name for f in dataclasses.fields(tp)]
            if part not in names:
                raise ConfigError(f"unknown config key {prefix + part!r}; valid keys: {[prefix + n for n in names]}")
        if last:
            node[part] = deep_merge(node[part], value) if isinstance(value, dict) and isinstance(
                node.get(part), dict) else value
            return
        child_tp = typing.get_type_hints(tp)[part] if tp is not None else None
        section = _section_type(child_tp)
        free = any(t is dict or typing.get_origin(t) is dict  # protocol, model_kwargs, dataset.columns
                   for t in (child_tp, *typing.get_args(child_tp)))
        if tp is not None and section is None and not free:
            raise ConfigError(f"config key {prefix + part!r} is not a section; cannot set {'.'.join(path)}")
        if isinstance(node.get(part), str) and section is not None:
            node[part] = {"path": node[part]}  # dataset=my.csv, then dataset.columns.user=uid
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"config key {prefix + part!r} is not a mapping")
        tp = section
        prefix += part + "."


def apply_overrides(cfg: Any, overrides: list[str] | tuple[str, ...]) -> Any:
    """A copy of config dataclass ``cfg`` with dotted ``key=value`` overrides applied, checked.

    The one override parser: ``stgnn train``, ``stgnn reproduce`` (every row of a table) and
    ``stgnn data --set`` (on a :class:`~stgnn.data.protocol.ProtocolConfig`) all use it.

    Raises:
        ConfigError: a malformed override, an unknown key (listing the valid ones) or a value
            of the wrong type.
    """
    cls = type(cfg)
    data = to_dict(cfg)
    for text in overrides:
        keys, value = parse_override(text)
        _set_path(data, keys, value, cls)
    return from_dict(cls, data)


def _read_yaml(path: str | Path) -> Any:
    """A YAML file's content; errors name the file (and line) and what to do."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--config {path}: is a folder; give a YAML file (e.g. {path}/<name>.yaml)")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--config {path}: cannot read it ({e})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {what}") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Defaults ← YAML file ``path`` (optional) ← dotted ``key=value`` ``overrides``.

    Raises:
        ConfigError: unknown key (the message lists the valid ones), a value of the wrong type,
            an unreadable file or invalid YAML (naming the file and line).
    """
    data: dict[str, Any] = to_dict(ExperimentConfig())
    if path is not None:
        loaded = _read_yaml(path) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping of config keys")
        try:
            from_dict(ExperimentConfig, {k: v for k, v in loaded.items()})  # key/type check naming the file
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        data = deep_merge(data, loaded)
    return apply_overrides(from_dict(ExperimentConfig, data), overrides or [])


def dump_config(cfg: Any) -> str:
    """The resolved config as YAML (every field, defaults included)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)
