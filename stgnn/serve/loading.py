"""The one place that turns a run folder into a model ready to serve.

A run is rebuilt by :func:`stgnn.train.restore.load_trained` from its ``config.yaml``,
``inputs.pt`` (the :class:`~stgnn.inputs.ModelInputs` the model was built from: id spaces,
training statistics, graph, text vectors) and ``best.pt``: no split, no training samples. A run
written before runs kept their inputs gets them rebuilt once from its split (as ``stgnn eval``
does), and the split is dropped again. Everything else in :mod:`stgnn.serve` (store, live
batches, HTTP, explanations, replay, hot swap) takes the :class:`LoadedRun` returned here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stgnn.serve.catalog import Catalog
from stgnn.serve.memo import memo_prefix, memo_visible_counts

CHECKPOINTS = ("best.pt", "last.pt")


@dataclass
class LoadedRun:
    """A served model and what it needs at inference.

    Attributes:
        model: the :class:`~stgnn.models.base.Recommender`, in eval mode, on CPU.
        catalog: id maps, POI table and training statistics from the run's inputs (a
            :class:`~stgnn.serve.recommender.Recommender` adds the store's part).
        max_len, hist_len: the run's prefix / history lengths (``train.max_len`` / ``train.hist_len``).
        target_time_known: the model is given the query time as the target time (the run's
            information setting narrowed to the model: :mod:`stgnn.data.information`).
        name: the run's name (``config.yaml``'s ``name``), ``run_dir`` its folder.
        checkpoint: the file the weights came from (``None`` for a model without weights).
        inputs_rebuilt: the run kept no ``inputs.pt``; they were rebuilt from its split.
    """

    model: nn.Module
    catalog: Catalog
    max_len: int
    hist_len: int
    target_time_known: bool
    name: str
    run_dir: Path
    checkpoint: Path | None
    inputs_rebuilt: bool = False


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
    """Is the model given the query time as the target time (the protocol's setting, narrowed to the
    models that declare ``uses_target_time``)."""
    from stgnn.data.information import InformationSetting

    info = InformationSetting.from_protocol(protocol).for_model(bool(getattr(model, "uses_target_time", False)))
    return info.target_time == "known"


class _Pinned(nn.Module):
    """``module(x)`` for one fixed input ``x`` computed once (identity check), else computed."""

    def __init__(self, module: nn.Module, key: torch.Tensor) -> None:
        super().__init__()
        self.module, self.key = module, key
        with torch.no_grad():
            self.value = module(key)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value if x is self.key else self.module(x)


def _one_sample_seq(seq: nn.Module) -> None:
    """Let a length-bucketed sequence encoder (:func:`stgnn.models.encoders.by_length`) take one
    full-length sample straight to its ``_forward``.

    A live batch is one sample as wide as its prefix (mask all True): ``by_length`` would make one
    bucket of the whole sample and run ``_forward`` on a copy of it, then multiply by the mask. The
    shortcut runs the same ops on the same values (bit-identical, tested) without the bucketing's
    ~20 small tensor ops (~0.3 ms of a NYC request's CPU). Anything else goes through ``by_length``.
    """
    bucketed = seq.forward

    def forward(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1 and bool(mask.all()):
            return seq._forward(x, mask) * mask[..., None]
        return bucketed(x, mask)

    seq.forward = forward                       # instance attribute shadows the method


def precompute(model: nn.Module) -> list[str]:
    """Compute the request-independent encodings once and pin them; returns what was pinned.

    For a model with a graph encoder (``encode_graph``): the node encodings of the training graph
    and the POI side of the generate score (``out_poi`` of the POI encodings), so a request
    computes only its own sequence, memory and one ``(d,) x (d, P)`` product; a length-bucketed
    sequence encoder takes a one-sample batch directly (:func:`_one_sample_seq`). Scores stay
    bit-identical to the unpinned model's (tested). With the POI encodings pinned, the prefix
    state of a one-sample batch is memoised on the user's trajectory
    (:func:`stgnn.serve.memo.memo_prefix`). A reference prior's (or a served UserHistory's)
    ``counts="visible"`` popularity and transitions are memoised on their visible prefix
    (:class:`stgnn.serve.memo.MemoVisibleCounts`). The model is for inference only afterwards
    (gradients off; do not train or save it).
    """
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    pinned: list[str] = []
    if callable(getattr(model, "encode_graph", None)):
        with torch.no_grad():
            encoded = model.encode_graph()

        def pinned_encode(need: dict[str, torch.Tensor] | None = None, compact: bool = False) -> dict[str, torch.Tensor]:
            # the method's signature: ``compact`` asks for the ``need`` rows only, in their order
            return {t: v[need[t]] for t, v in encoded.items() if t in need} if compact else encoded

        model.encode_graph = pinned_encode                # instance attribute shadows the method
        pinned.append("encode_graph")
        out_poi = getattr(model, "out_poi", None)
        if isinstance(out_poi, nn.Module) and "poi" in encoded:
            model.out_poi = _Pinned(out_poi, encoded["poi"])
            pinned.append("out_poi")
    from stgnn.models.encoders import RNNSeqEncoder, TransformerSeqEncoder

    seq = getattr(model, "seq", None)
    if isinstance(seq, (TransformerSeqEncoder, RNNSeqEncoder)):
        _one_sample_seq(seq)
        pinned.append("seq one sample")
    if "encode_graph" in pinned and callable(getattr(model, "encode_prefix", None)):
        model.encode_prefix = memo_prefix(model.encode_prefix)   # instance attribute shadows the method
        pinned.append("prefix state")
    if memo_visible_counts(model):
        pinned.append("visible popularity")
    return pinned


def load_run(run_dir: str | Path) -> LoadedRun:
    """Load ``run_dir`` for serving: model + weights + catalog, encodings precomputed."""
    from stgnn.inputs import INPUTS_FILE
    from stgnn.train.restore import load_trained

    run_dir = resolve_run_dir(run_dir)
    inputs = None
    if not (run_dir / INPUTS_FILE).is_file():
        inputs = _rebuild_inputs(run_dir)
    run = load_trained(run_dir, "cpu", inputs=inputs)
    cfg, model = run.config, run.model
    precompute(model)
    catalog = Catalog.from_inputs(run.inputs)
    if not catalog.protocol:            # inputs name the split's full protocol; a config only its overrides
        catalog.protocol = dict(cfg.protocol)
    return LoadedRun(model=model, catalog=catalog, max_len=cfg.train.max_len, hist_len=cfg.train.hist_len,
                     target_time_known=target_time_known(model, catalog.protocol), name=cfg.name, run_dir=run_dir,
                     checkpoint=run.checkpoint, inputs_rebuilt=inputs is not None)


def _rebuild_inputs(run_dir: Path) -> Any:
    """The :class:`~stgnn.inputs.ModelInputs` of a run that did not keep ``inputs.pt``, from its split."""
    from stgnn.config import load_config
    from stgnn.inputs import build_inputs
    from stgnn.registry import input_spec

    cfg = load_config(run_dir / "config.yaml")
    return build_inputs(load_split_of_run(run_dir), input_spec(cfg.model, **cfg.model_kwargs))


def load_split_of_run(run_dir: str | Path) -> Any:
    """The run's :class:`~stgnn.data.split.Split` (to seed a store, or replay its held-out period),
    from the processed-split cache under ``$STGNN_ROOT`` (default ``data/``), as the run's recipe
    read it."""
    import os

    from stgnn.config import load_config
    from stgnn.data.dataset import prepare
    from stgnn.data.protocol import ProtocolConfig

    cfg = load_config(resolve_run_dir(run_dir) / "config.yaml")
    return prepare(cfg.dataset, ProtocolConfig.from_dict(cfg.protocol), root=Path(os.environ.get("STGNN_ROOT", "data")),
                   data_dir=cfg.data_root)
