"""Full-ranking, tie-aware metrics for next-POI recommendation (one target per sample).

**Rank.** Every sample is scored against ALL ``P`` POIs. The target's rank is
``1 + #{other POIs with score >= target score}``: ties are counted *pessimistically*, a POI
scoring the same as the target ranks above it. So a constant model ranks every target last
(``P``), never first, and low-precision scores cannot inflate results.

**No masking of visited POIs.** Previously visited POIs stay in the ranking. Next-POI targets are
mostly revisits: on Foursquare NYC under the default protocol 71.1% of test targets and 70.2% of
val targets are POIs the user visited before (``split.flags["revisit"]``). Masking a user's history
(RecBole's default in its full-ranking evaluation of general recommenders) therefore changes the
task: the project's earlier comparison on this data saw MF-BPR Acc@1 go from 0.19 to 0.48 with it. The published NYC/TKY protocols (STHGCN, LLM4POI)
rank over all POIs, and so does this module.

**Metrics** (means over samples; ``r`` = rank, ``hit@k = [r <= k]``):

* ``Acc@k = mean hit@k``. With a single relevant item this equals **Recall@k** (the fraction of
  relevant items retrieved) and the "HR@k" of other papers. Acc@k is reported instead of a
  separate Recall@k column.
* ``NDCG@k = mean hit@k / log2(r + 1)`` (the ideal DCG is 1 with one target).
* ``MRR = mean 1 / r`` over the full ranking (not truncated at any k).
* ``Precision@k = mean hit@k / k``: the fraction of the k recommended POIs that is right.
* ``F1@k``: harmonic mean of Precision@k and Recall@k, ``2 * Acc@k / (k + 1)``. Averaging the
  per-sample F1 gives the same number, so the "accuracy / recall / F1" vocabulary of
  classification-style papers (the seed article) maps onto these columns without ambiguity.

``ranks`` runs in torch on any device and needs no sort: a rank is a comparison count,
computed in row chunks to bound memory. ``ranks_numpy`` / ``reference_metrics`` are a separate,
sort-based numpy implementation used to cross-check it in tests.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20)
DEFAULT_NDCG_KS: tuple[int, ...] = (5, 10)
#: Columns of result tables, in order.
TABLE_METRICS: tuple[str, ...] = ("Acc@1", "Acc@5", "Acc@10", "Acc@20", "NDCG@5", "NDCG@10", "MRR")


@torch.no_grad()
def ranks(scores: torch.Tensor, target: torch.Tensor, chunk_elems: int = 1 << 24) -> torch.Tensor:
    """Pessimistic 1-based rank of each target among all POIs.

    Args:
        scores: ``(B, P)`` scores, higher is better (any float dtype, any device).
        target: ``(B,)`` int target POI of each row.
        chunk_elems: compare at most this many scores at once (bounds the ``(b, P)`` bool temp).

    Returns:
        ``(B,)`` int64 ranks in ``[1, P]`` on the device of ``scores``.

    Raises:
        ValueError: a score is NaN (a NaN would silently compare False and rank the target first),
            or the shapes do not match.
    """
    if scores.dim() != 2 or target.dim() != 1 or scores.shape[0] != target.shape[0]:
        raise ValueError(f"scores must be (B, P) and target (B,), got {tuple(scores.shape)} and {tuple(target.shape)}")
    if scores.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    num_pois = scores.shape[1]
    target = target.to(scores.device, torch.long)
    if bool(((target < 0) | (target >= num_pois)).any()):
        raise ValueError(f"target ids must be in [0, {num_pois}), got min {int(target.min())}, max {int(target.max())}")
    if bool(torch.isnan(scores).any()):
        bad = torch.isnan(scores).any(1).nonzero().flatten()[:10].tolist()
        raise ValueError(f"NaN scores in rows {bad} (first 10) of a ({scores.shape[0]}, {num_pois}) batch")
    rows = max(1, chunk_elems // max(num_pois, 1))
    out = torch.empty(scores.shape[0], dtype=torch.long, device=scores.device)
    for i in range(0, scores.shape[0], rows):
        s = scores[i:i + rows]
        t = s.gather(1, target[i:i + rows, None])  # (b, 1)
        # count includes the target itself (s >= s): that is the "1 +" of the rank
        out[i:i + rows] = (s >= t).sum(1)
    return out


def _as_numpy_ranks(r: torch.Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    if isinstance(r, torch.Tensor):
        r = r.detach().cpu().numpy()
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"ranks must be 1-D, got shape {r.shape}")
    if len(r) and r.min() < 1:
        raise ValueError(f"ranks are 1-based; got min {r.min()}")
    return r


def per_sample(ranks_: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    """``(S,)`` float64 per-sample value of metric ``name`` (``Acc@k``, ``NDCG@k``, ``MRR``,
    ``Precision@k``, ``Recall@k``, ``F1@k``); its mean is the reported metric."""
    r = _as_numpy_ranks(ranks_)
    if name == "MRR":
        return 1.0 / r
    if "@" not in name:
        raise ValueError(f"unknown metric {name!r}; use Acc@k, NDCG@k, MRR, Precision@k, Recall@k or F1@k")
    kind, k_text = name.split("@", 1)
    k = int(k_text)
    hit = (r <= k).astype(np.float64)
    if kind in ("Acc", "Recall"):
        return hit
    if kind == "NDCG":
        return hit / np.log2(r + 1.0)
    if kind == "Precision":
        return hit / k
    if kind == "F1":
        return hit * 2.0 / (k + 1)
    raise ValueError(f"unknown metric {name!r}; use Acc@k, NDCG@k, MRR, Precision@k, Recall@k or F1@k")


def metric_names(ks: Iterable[int] = DEFAULT_KS, ndcg_ks: Iterable[int] = DEFAULT_NDCG_KS,
                 precision_f1: bool = True) -> list[str]:
    """Names produced by :func:`metrics_from_ranks`, in order."""
    names = [f"Acc@{k}" for k in ks] + [f"NDCG@{k}" for k in ndcg_ks] + ["MRR"]
    if precision_f1:
        names += [f"Precision@{k}" for k in ks] + [f"F1@{k}" for k in ks]
    return names


def metrics_from_ranks(ranks_: torch.Tensor | np.ndarray, ks: Iterable[int] = DEFAULT_KS,
                       ndcg_ks: Iterable[int] = DEFAULT_NDCG_KS, precision_f1: bool = True) -> dict[str, float]:
    """Mean metrics of ``(S,)`` 1-based ranks (module docstring for definitions).

    Returns ``{"Acc@1": ..., "NDCG@5": ..., "MRR": ..., "Precision@1": ..., "F1@1": ...}``;
    NaN for every metric when there are no samples.
    """
    r = _as_numpy_ranks(ranks_)
    names = metric_names(ks, ndcg_ks, precision_f1)
    if len(r) == 0:
        return {n: float("nan") for n in names}
    return {n: float(per_sample(r, n).mean()) for n in names}


# ---------------------------------------------------------------------- numpy reference
def ranks_numpy(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Reference ranks by sorting: descending score, the target placed after its ties.

    Independent of :func:`ranks` (sort position instead of a comparison count); for tests.
    """
    scores = np.asarray(scores, dtype=np.float64)
    target = np.asarray(target, dtype=np.int64)
    if np.isnan(scores).any():
        raise ValueError("NaN scores")
    out = np.empty(len(target), dtype=np.int64)
    cols = np.arange(scores.shape[1])
    for i, (row, t) in enumerate(zip(scores, target)):
        is_target = (cols == t).astype(np.int64)
        order = np.lexsort((is_target, -row))  # primary: score desc; ties: target last
        out[i] = int(np.flatnonzero(order == t)[0]) + 1
    return out


def reference_metrics(scores: np.ndarray, target: np.ndarray, ks: Iterable[int] = DEFAULT_KS,
                      ndcg_ks: Iterable[int] = DEFAULT_NDCG_KS) -> dict[str, float]:
    """Reference metrics from top-k lists, written from the textbook definitions (for tests)."""
    r = ranks_numpy(scores, target)
    n = len(r)
    out: dict[str, float] = {}
    for k in ks:
        hits = sum(1 for x in r if x <= k)
        out[f"Acc@{k}"] = hits / n
    for k in ndcg_ks:
        out[f"NDCG@{k}"] = sum(1.0 / np.log2(x + 1) for x in r if x <= k) / n
    out["MRR"] = sum(1.0 / x for x in r) / n
    for k in ks:
        precision = out[f"Acc@{k}"] / k
        recall = out[f"Acc@{k}"]
        out[f"Precision@{k}"] = precision
        out[f"F1@{k}"] = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return out
