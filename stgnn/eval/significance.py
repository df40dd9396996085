"""Paired comparison of two models on the same test samples, and mean ± std over seeds.

Both models' per-sample ranks must come from the same samples in the same order (what
:func:`stgnn.eval.evaluate.evaluate` returns for one split). The paired bootstrap resamples
*samples* (with replacement) and recomputes the difference of the means, which keeps the
correlation between the two models on each sample (most of the variance) out of the interval.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

from stgnn.eval.metrics import per_sample


def paired_bootstrap(ranks_a: np.ndarray | torch.Tensor, ranks_b: np.ndarray | torch.Tensor,
                     metrics: Sequence[str] = ("Acc@1", "MRR"), n_boot: int = 1000, seed: int = 0,
                     alpha: float = 0.05, chunk: int = 1 << 24) -> dict[str, dict[str, float]]:
    """Paired bootstrap of ``metric(A) - metric(B)``.

    Args:
        ranks_a, ranks_b: ``(S,)`` 1-based ranks of models A and B on the same samples.
        metrics: metric names understood by :func:`stgnn.eval.metrics.per_sample`.
        n_boot: bootstrap resamples.
        seed: seed of the resampling (the result is a deterministic function of it).
        alpha: ``1 - alpha`` two-sided percentile interval (0.05 → 95% CI).
        chunk: bound on ``n_boot * S`` index entries drawn at once (memory).

    Returns:
        ``{metric: {"a", "b", "diff", "lo", "hi", "p", "n"}}``: the two means, their difference,
        the percentile CI of the difference, and ``p``: twice the smaller fraction of resampled
        differences on either side of zero (a bootstrap two-sided p-value; 1.0 when A and B
        never differ).

    Raises:
        ValueError: different numbers of samples, or none.
    """
    a = np.asarray(ranks_a.cpu() if isinstance(ranks_a, torch.Tensor) else ranks_a)
    b = np.asarray(ranks_b.cpu() if isinstance(ranks_b, torch.Tensor) else ranks_b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired ranks must be two (S,) arrays of the same samples, got {a.shape} and {b.shape}")
    n = len(a)
    if n == 0:
        raise ValueError("no samples to compare")
    rng = np.random.default_rng(seed)
    # one set of resampled indices shared by every metric, drawn in row chunks
    rows = max(1, chunk // n)
    diffs = {m: per_sample(a, m) - per_sample(b, m) for m in metrics}
    boots = {m: np.empty(n_boot) for m in metrics}
    for i in range(0, n_boot, rows):
        idx = rng.integers(0, n, size=(min(rows, n_boot - i), n))  # (rows, S)
        for m, d in diffs.items():
            boots[m][i:i + len(idx)] = d[idx].mean(1)
    out: dict[str, dict[str, float]] = {}
    for m, d in diffs.items():
        bs = boots[m]
        lo, hi = np.quantile(bs, [alpha / 2, 1 - alpha / 2])
        p = min(1.0, 2.0 * min(float((bs <= 0).mean()), float((bs >= 0).mean())))
        out[m] = {"a": float(per_sample(a, m).mean()), "b": float(per_sample(b, m).mean()),
                  "diff": float(d.mean()), "lo": float(lo), "hi": float(hi), "p": p, "n": float(n)}
    return out


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) over seeds; std is NaN for one value."""
    v = np.asarray(list(values), dtype=np.float64)
    if len(v) == 0:
        raise ValueError("mean_std of no values")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")
