"""The ``tune`` block of a table: the reference row's options picked on validation, per information setting.

A table compares every row with its reference row (``reference:`` in ``table.yaml``). A
reference with options (``UserHistory``'s half-life, transition, routine and popularity terms)
must be tuned like any model before that comparison means anything, and under the same
information setting as the rows it is compared with. The block::

    tune:
      row: UserHistory          # the row whose model_kwargs are tuned (a non-trainable model)
      monitor: MRR              # validation metric maximised
      space: [{half_life: [30, 60], transition_weight: [0.0, 0.2]}, ...]   # stgnn.train.tune.expand_grid

runs :func:`stgnn.train.tune.tune` (validation samples only) once per information setting a
table needs, writes ``tune_<history>_<target_time>.json`` (the grid, every point's validation
metrics, the choice) beside the table's runs, and hands the chosen keywords to the row, and to
any row that asks for the tuned reference as its prior (``prior:`` at row level, e.g.
``{fusion: late, weight: 1.0}``, see :class:`stgnn.models.prior.ReferencePrior`). A preset may
replace the block's ``space`` (a smaller grid for ``make run``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stgnn.config import ExperimentConfig
from stgnn.data.information import InformationSetting
from stgnn.recipes.runs import load_split
from stgnn.utils.io import atomic_write_json


def tune_spec(spec: dict[str, Any], preset: dict[str, Any]) -> dict[str, Any] | None:
    """The table's ``tune`` block with the preset's ``tune`` keys on top (``None``: no tuning)."""
    block = spec.get("tune")
    if not block:
        return None
    block = {"monitor": "MRR", **block, **(preset.get("tune") or {})}
    for key in ("row", "space"):
        if not block.get(key):
            raise ValueError(f"table.yaml: tune needs `{key}` (got {block!r})")
    return block


def tuned_kwargs(block: dict[str, Any], cfg: ExperimentConfig, folder: Path, resume: bool) -> dict[str, Any]:
    """The tune row's chosen keywords under ``cfg``'s information setting (``cfg``: the tune
    row's config with that setting's protocol); reuses ``folder``'s record of the same search
    when ``resume``. Returns the record (``best``, ``best_score``, ``grid``...) with its ``file``."""
    from stgnn.train.tune import tune

    info = InformationSetting.from_protocol(cfg.protocol)
    path = folder / f"tune_{info.history}_{info.target_time}.json"
    asked = {"model": cfg.model, "base_kwargs": dict(cfg.model_kwargs), "space": block["space"],
             "monitor": block["monitor"], "dataset": cfg.dataset, "protocol": dict(cfg.protocol)}
    if resume and path.is_file():
        old = json.loads(path.read_text())
        if old.get("asked") == json.loads(json.dumps(asked)):
            return {**old, "file": str(path)}
    split = load_split(cfg)
    result = tune(cfg.model, split, block["space"], base_kwargs=cfg.model_kwargs, cfg=cfg.train,
                  monitor=block["monitor"])
    record = {"asked": asked, "information": info.to_dict(), **result.to_dict()}
    atomic_write_json(path, record)
    print(f"[tune] {cfg.model} under {info}: {len(result.grid)} points on validation {block['monitor']}, "
          f"chose {result.best} ({block['monitor']} {result.best_score:.4f}) -> {path}", flush=True)
    return {**json.loads(json.dumps(record)), "file": str(path)}


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """What a table keeps of a tuning record (the grid itself stays in its file)."""
    return {"file": record["file"], "information": record["information"], "monitor": record["monitor"],
            "best": record["best"], "best_score": record["best_score"], "points": len(record["grid"])}


__all__ = ["summary", "tune_spec", "tuned_kwargs"]
