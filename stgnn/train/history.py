"""What a run's training and evaluation produced: :class:`History`, written as ``metrics.json``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class History:
    """What :func:`fit` returns; :meth:`summary` is the JSON written as ``metrics.json``.

    Attributes:
        rows: per-epoch dicts ``epoch, train_loss, val_<metric>..., lr, seconds``.
        monitor: the validation metric early stopping maximised.
        best_epoch: epoch of the weights evaluated at the end (0: not trained).
        best_score: ``val[monitor]`` at ``best_epoch``.
        val_metrics, test_metrics: metrics of the best weights.
        val_ranks, test_ranks: ``(S,)`` per-sample ranks aligned with ``val_index`` / ``test_index``.
        seconds_per_epoch: wall time of each epoch (training + validation).
        total_seconds: wall time of this ``fit`` call (a resumed call counts only its own part).
        peak_rss_mb: peak resident memory of the process; ``peak_gpu_mb`` on CUDA.
        stopped_early: patience ran out before ``cfg.epochs``.
        protocol, split_fingerprint, dataset: what the run was evaluated on.
        information: the information setting (``history``, ``target_time``) and whether this
            model read the target time (``target_time_read``: known and declared by the model).
    """

    rows: list[dict[str, Any]]
    monitor: str
    best_epoch: int
    best_score: float
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    val_ranks: np.ndarray
    test_ranks: np.ndarray
    val_index: np.ndarray
    test_index: np.ndarray
    seconds_per_epoch: list[float]
    total_seconds: float
    peak_rss_mb: float
    peak_gpu_mb: float | None
    device: str
    stopped_early: bool
    protocol: dict[str, Any] = field(default_factory=dict)
    split_fingerprint: str = ""
    dataset: str = ""
    information: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-able results (everything but the per-sample arrays)."""
        return {
            "val": self.val_metrics, "test": self.test_metrics, "monitor": self.monitor,
            "best_epoch": self.best_epoch, "best_score": self.best_score, "epochs_run": len(self.rows),
            "stopped_early": self.stopped_early, "num_val": int(len(self.val_ranks)),
            "num_test": int(len(self.test_ranks)),
            "timings": {"seconds_per_epoch": self.seconds_per_epoch, "total_seconds": self.total_seconds,
                        "mean_seconds_per_epoch": (float(np.mean(self.seconds_per_epoch))
                                                   if self.seconds_per_epoch else None)},
            "memory": {"peak_rss_mb": self.peak_rss_mb, "peak_gpu_mb": self.peak_gpu_mb},
            "device": self.device, "protocol": self.protocol, "split_fingerprint": self.split_fingerprint,
            "dataset": self.dataset, "information": self.information,
        }
