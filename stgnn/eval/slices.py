"""Metrics on slices of the evaluation samples: cold, rare and warm target POIs, cold users, revisits.

A slice is a boolean mask over a part's samples (aligned with ``split.samples[part]``, the order
:class:`~stgnn.data.batch.SampleLoader` scores them in, so it lines up with the ranks a run wrote
to ``ranks.npz``). Slices answer questions an average hides, e.g. what language-model features
add for POIs the model never saw a check-in of (run under the ``keep_unseen`` protocol, where such
samples are kept and flagged)::

    masks = slice_masks(split, "test")
    slice_metrics(ranks, masks)["cold POI"]   # {"n": 133, "Acc@1": ..., "MRR": ...}

Slices (a sample can be in several):

* ``all``: every sample.
* ``cold POI``: the target POI has no training check-in (only under ``keep_unseen``).
* ``rare POI``: the target POI has 1 to ``rare_max`` training check-ins.
* ``warm POI``: more than ``rare_max``.
* ``cold user``: the user has no training check-in (only under ``keep_unseen``).
* ``revisit`` / ``new for user``: the target POI is / is not among the user's training check-ins.
* ``past revisit`` / ``past new``: the target POI is / is not among *any* of the user's check-ins
  strictly before the target (every period: what the real-time setting, ``history: all_past``,
  can read). A POI first visited in the validation period is ``new for user`` but a ``past
  revisit`` for a later test target.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from stgnn.data.split import Split
from stgnn.eval.metrics import metrics_from_ranks

SLICES = ("all", "cold POI", "rare POI", "warm POI", "cold user", "revisit", "new for user", "past revisit",
          "past new")


def slice_masks(split: Split, part: str = "test", rare_max: int = 5) -> dict[str, np.ndarray]:
    """Boolean ``(S,)`` masks over ``split.samples[part]``, keyed by the names in :data:`SLICES`.

    Args:
        split: the split the samples come from.
        part: ``"test"`` or ``"val"``.
        rare_max: the most training check-ins a target POI may have to count as rare.

    Returns:
        every slice of :data:`SLICES`, in that order, including empty ones (``mask.sum() == 0``).
    """
    if part not in ("test", "val"):
        raise ValueError(f"slices exist for 'test' and 'val' samples, not {part!r}")
    if rare_max < 1:
        raise ValueError(f"rare_max must be >= 1, got {rare_max}")
    targets = split.samples[part]
    prefix = "" if part == "test" else "val_"
    poi_train_count = np.bincount(split.poi[split.part == 0], minlength=split.num_pois)
    count = poi_train_count[split.poi[targets]]
    revisit = np.asarray(split.flags[prefix + "revisit"], dtype=bool)
    cold_user = split.flags.get(prefix + "cold_user")
    cold_user = np.zeros(len(targets), bool) if cold_user is None else np.asarray(cold_user, dtype=bool)
    past = _seen_before(split, targets)
    return {
        "all": np.ones(len(targets), dtype=bool),
        "cold POI": count == 0,
        "rare POI": (count >= 1) & (count <= rare_max),
        "warm POI": count > rare_max,
        "cold user": cold_user,
        "revisit": revisit,
        "new for user": ~revisit,
        "past revisit": past,
        "past new": ~past,
    }


def _seen_before(split: Split, targets: np.ndarray) -> np.ndarray:
    """``(S,)`` bool: the user checked in at the target POI at some time strictly before the target."""
    pair = split.user.astype(np.int64) * split.num_pois + split.poi                          # (N,)
    order = np.lexsort((split.ts, pair))
    uniq, first = np.unique(pair[order], return_index=True)
    first_ts = split.ts[order][first]                                                       # (pairs,)
    at = np.searchsorted(uniq, pair[targets])
    return first_ts[at] < split.ts[targets]


def slice_metrics(ranks: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Full-ranking metrics per slice: ``{slice: {"n": count, "Acc@1": ..., ...}}``.

    Empty slices are reported with ``n = 0`` and no metrics.
    """
    ranks = np.asarray(ranks)
    out: dict[str, dict[str, Any]] = {}
    for name, mask in masks.items():
        if mask.shape != ranks.shape:
            raise ValueError(f"slice {name!r} has {mask.shape[0]} samples, ranks have {ranks.shape[0]}")
        n = int(mask.sum())
        out[name] = {"n": n, **(metrics_from_ranks(ranks[mask], precision_f1=False) if n else {})}
    return out
