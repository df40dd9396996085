"""A finished run, rebuilt: its config, its model inputs and its best weights, without its split.

A run folder holds what this needs: ``config.yaml`` (which model, with which keywords),
``inputs.pt`` (:class:`~stgnn.inputs.ModelInputs`: id spaces, training statistics, graph, text
vectors) and ``best.pt`` (or ``last.pt``). Serving and ``stgnn eval`` start here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from stgnn.config import ExperimentConfig, load_config
from stgnn.inputs import INPUTS_FILE, ModelInputs
from stgnn.models.base import Recommender
from stgnn.registry import build_model
from stgnn.train.checkpoint import BEST, LAST, load_checkpoint


@dataclass
class TrainedRun:
    """A run's resolved config, the inputs its model was built from, and the model (eval mode)."""

    config: ExperimentConfig
    inputs: ModelInputs
    model: Recommender
    checkpoint: Path | None


def load_trained(run_dir: str | Path, device: str | torch.device = "cpu",
                 inputs: ModelInputs | None = None) -> TrainedRun:
    """Rebuild ``run_dir``'s model from ``inputs.pt`` and load ``best.pt`` (else ``last.pt``).

    Args:
        run_dir: a run folder written by :func:`stgnn.recipes.run_one`.
        device: where the model goes.
        inputs: use these instead of ``run_dir/inputs.pt`` (e.g. rebuilt from the split for a
            run written before runs kept their inputs).

    Raises:
        FileNotFoundError: no ``config.yaml``, no ``inputs.pt`` (and ``inputs`` not given), or a
            trainable model without a checkpoint; the message says which.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} holds no config.yaml: not a run folder")
    cfg = load_config(run_dir / "config.yaml")
    if inputs is None:
        if not (run_dir / INPUTS_FILE).is_file():
            raise FileNotFoundError(f"{run_dir} holds no {INPUTS_FILE} (runs made before model inputs were kept "
                                    "lack it); rebuild them from the split: stgnn eval --run RUN does")
        inputs = ModelInputs.load(run_dir / INPUTS_FILE)
    model = build_model(cfg.model, inputs, **cfg.model_kwargs)
    ckpt = next((run_dir / n for n in (BEST, LAST) if (run_dir / n).is_file()), None)
    if ckpt is not None:
        model.load_state_dict(load_checkpoint(ckpt)["model"])
    elif model.trainable:
        raise FileNotFoundError(f"{run_dir} holds no {BEST} or {LAST} to load the trained weights from")
    return TrainedRun(config=cfg, inputs=inputs, model=model.to(device).eval(), checkpoint=ckpt)
