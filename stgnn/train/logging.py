"""Run outputs: per-epoch curves (CSV + TensorBoard) and the final files of a run.

A run folder holds ``config.yaml`` (resolved), ``env.json``, ``metrics.json``, ``curves.csv``,
``ranks.npz`` (per-sample val/test ranks, for paired comparisons), ``best.pt`` / ``last.pt``
and ``tb/`` (TensorBoard). Tables are made from these files, never typed by hand.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from stgnn.train.history import History
from stgnn.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text


def curves_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of per-epoch rows; columns in first-seen order, missing values empty."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


class RunLogger:
    """Writes per-epoch rows to ``curves.csv`` (rewritten atomically) and TensorBoard scalars.

    Args:
        run_dir: the run folder (``None``: log nothing).
        tensorboard: also write ``run_dir/tb`` event files.
        start_epoch: first epoch this process logs; TensorBoard events of later epochs left by a
            killed run are purged so a resumed run's curves have no duplicates.
    """

    def __init__(self, run_dir: Path | None, tensorboard: bool = True, start_epoch: int = 1) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.writer = None
        if self.run_dir is not None and tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # slow import; only when asked

            self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=start_epoch)

    def log(self, rows: list[dict[str, Any]]) -> None:
        """Log the newest row of ``rows`` to TensorBoard and rewrite the CSV with all of them."""
        if self.run_dir is None or not rows:
            return
        atomic_write_text(self.run_dir / "curves.csv", curves_csv(rows))
        if self.writer is not None:
            row = rows[-1]
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)) and not math.isnan(float(v)):
                    self.writer.add_scalar(k.replace("@", "_at_"), float(v), int(row["epoch"]))
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def write_run(run_dir: str | Path, cfg: Any, history: History, env: dict[str, Any]) -> None:
    """Write the resolved ``config.yaml``, ``env.json``, ``metrics.json``, ``curves.csv`` and
    ``ranks.npz`` of a finished run (all atomic). ``fit`` already wrote the checkpoints.

    Args:
        run_dir: the run folder.
        cfg: the resolved config dataclass (:class:`~stgnn.config.ExperimentConfig` or
            :class:`~stgnn.config.TrainConfig`).
        history: what :func:`stgnn.train.fit` returned.
        env: :func:`stgnn.utils.env.environment` of this process.
    """
    from stgnn.config import dump_config

    run_dir = Path(run_dir)
    atomic_write_text(run_dir / "config.yaml", dump_config(cfg))
    atomic_write_json(run_dir / "env.json", env)
    atomic_write_json(run_dir / "metrics.json", history.summary())
    atomic_write_text(run_dir / "curves.csv", curves_csv(history.rows))
    buf = io.BytesIO()
    np.savez(buf, test_ranks=history.test_ranks, test_index=history.test_index,
             val_ranks=history.val_ranks, val_index=history.val_index)
    atomic_write_bytes(run_dir / "ranks.npz", buf.getvalue())
