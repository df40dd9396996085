"""The one place that turns a run folder into a model ready to serve.

Everything else in :mod:`stgnn.serve` (store, live batches, HTTP, explanations, replay, hot
swap) takes the model this module returns and never asks how it was built.

BUILDER SWITCH POINT. Today a model can only be built from the training :class:`Split`
(``build_model`` → ``cls.from_split`` / ``fit_data`` build the leakage-safe graph, coordinates,
text vectors and statistics inside the model). When the architecture refactor lands (a builder
makes those inputs from the split as the model's declared needs say and hands them in; the
batch carries ``target_time_known``; the protocol option ``allow_target_time`` becomes
``target_time: known|hidden``), only :func:`load_model` and :func:`target_time_known` change:

1. ``load_model``: replace ``build_model(...)`` + ``model.fit_data(split)`` by the builder's
   call (inputs built once from the split, handed to the model's constructor), then load the
   checkpoint as now.
2. ``target_time_known``: read ``protocol["target_time"] == "known"`` instead of
   ``protocol["allow_target_time"]``.
3. :func:`precompute` may call a model method for its request-independent encodings, if the
   refactor adds one, instead of pinning ``encode_graph`` and ``out_poi`` from outside.

The split is still read here (to build the model and the :class:`~stgnn.serve.catalog.Catalog`)
and then dropped: the served process keeps no training samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stgnn.serve.catalog import Catalog

CHECKPOINTS = ("best.pt", "last.pt")


@dataclass
class LoadedRun:
    """A served model and what it needs at inference.

    Attributes:
        model: the :class:`~stgnn.models.base.Recommender`, in eval mode, on CPU.
        catalog: id maps, POI table and training statistics.
        max_len, hist_len: the run's prefix / history lengths (``train.max_len`` / ``train.hist_len``).
        target_time_known: the model reads the query time as the target time.
        name: the run's name (``config.yaml``'s ``name``), ``run_dir`` its folder.
        checkpoint: the file the weights came from (``None`` for a model without weights).
    """

    model: nn.Module
    catalog: Catalog
    max_len: int
    hist_len: int
    target_time_known: bool
    name: str
    run_dir: Path
    checkpoint: Path | None


def resolve_run_dir(run_dir: str | Path) -> Path:
    """A run folder holding ``config.yaml``; a table row's folder with one ``seed_*`` inside is
    accepted too. Raises ``FileNotFoundError`` saying what was expected."""
    p = Path(run_dir)
    if (p / "config.yaml").is_file() and any((p / c).is_file() for c in CHECKPOINTS):
        return p
    seeds = sorted(p.glob("seed_*/config.yaml"))
    if seeds:
        return seeds[0].parent
    if (p / "config.yaml").is_file():
        return p
    raise FileNotFoundError(f"{p} is not a run folder: expected {p}/config.yaml (and best.pt for a trained "
                            "model), e.g. results/reproduce_nyc_fast/runs/STGNN/seed_0")


def target_time_known(model: nn.Module, protocol: dict[str, Any]) -> bool:
    """Does the model read the query time as the target time (its flag and the protocol's)."""
    return bool(getattr(model, "uses_target_time", False) and protocol.get("allow_target_time", False))


def load_model(run_dir: Path) -> tuple[nn.Module, Any, Any, Path | None]:
    """``(model with weights, split, config, checkpoint path)`` of a run (module docstring: the
    piece to switch to the builder contract)."""
    from stgnn.config import load_config
    from stgnn.models.registry import build_model
    from stgnn.recipes import load_split

    cfg = load_config(run_dir / "config.yaml")
    split = load_split(cfg)
    model = build_model(cfg.model, split, **cfg.model_kwargs)
    model.fit_data(split)
    ckpt = next((run_dir / c for c in CHECKPOINTS if (run_dir / c).is_file()), None)
    if ckpt is not None:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
    elif getattr(model, "trainable", True):
        raise FileNotFoundError(f"{run_dir} holds no best.pt or last.pt for the trainable model {cfg.model!r}")
    return model.cpu().eval(), split, cfg, ckpt


class _Pinned(nn.Module):
    """``module(x)`` for one fixed input ``x`` computed once (identity check), else computed."""

    def __init__(self, module: nn.Module, key: torch.Tensor) -> None:
        super().__init__()
        self.module, self.key = module, key
        with torch.no_grad():
            self.value = module(key)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value if x is self.key else self.module(x)


def precompute(model: nn.Module) -> list[str]:
    """Compute the request-independent encodings once and pin them; returns what was pinned.

    For a model with a graph encoder (``encode_graph``): the node encodings of the training graph
    and the POI side of the generate score (``out_poi`` of the POI encodings), so a request
    computes only its own sequence, memory and one ``(d,) x (d, P)`` product. The model is for
    inference only afterwards (gradients off; do not train or save it).
    """
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    pinned: list[str] = []
    if callable(getattr(model, "encode_graph", None)):
        with torch.no_grad():
            encoded = model.encode_graph()
        model.encode_graph = lambda need=None: encoded    # instance attribute shadows the method
        pinned.append("encode_graph")
        out_poi = getattr(model, "out_poi", None)
        if isinstance(out_poi, nn.Module) and "poi" in encoded:
            model.out_poi = _Pinned(out_poi, encoded["poi"])
            pinned.append("out_poi")
    return pinned


def load_run(run_dir: str | Path) -> LoadedRun:
    """Load ``run_dir`` for serving: model + weights + catalog, encodings precomputed."""
    run_dir = resolve_run_dir(run_dir)
    model, split, cfg, ckpt = load_model(run_dir)
    catalog = Catalog.from_split(split)
    precompute(model)
    return LoadedRun(model=model, catalog=catalog, max_len=cfg.train.max_len, hist_len=cfg.train.hist_len,
                     target_time_known=target_time_known(model, split.protocol), name=cfg.name,
                     run_dir=run_dir, checkpoint=ckpt)


def load_split_of_run(run_dir: str | Path) -> Any:
    """The run's :class:`~stgnn.data.split.Split` (to seed a store or replay its held-out period)."""
    from stgnn.config import load_config
    from stgnn.recipes import load_split

    return load_split(load_config(resolve_run_dir(run_dir) / "config.yaml"))
