"""What a sample's information setting lets a scorer read, as of its query time.

Two pieces shared by the no-learning reference (:class:`~stgnn.models.reference.UserHistory`)
and any model that wants the same signals; both are taken at a sample's query time,
``batch.query_time()`` (the target's time when the batch carries it, i.e.
``batch.target_time_known``, else the last prefix check-in's):

* :func:`time_of_day_kernel`: how close two local times are in the daily routine, a Gaussian
  of the circular hour-of-day distance, damped by ``weekend_factor`` when one falls on a
  weekday and the other on a weekend.
* :class:`VisibleCounts`: popularity and POI-to-POI transition counts over the check-ins a
  sample may see *as of its query time*: strictly before it, and under ``history="train_only"``
  training-period check-ins only (``history="all_past"``: every period). Because every count is
  bounded by the query time, the same statistics are leakage-safe for training samples too (a
  training sample never counts its own target or anything after it).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from stgnn.data.information import HISTORY as HISTORY_SETTINGS
from stgnn.data.split import PARTS, Split
from stgnn.features.time import SECONDS_PER_DAY, local_seconds, weekday_of_local

HOURS_PER_DAY = 24


def time_of_day_kernel(ts: Tensor, tz: Tensor, q_ts: Tensor, q_tz: Tensor, sigma_hours: float,
                       weekend_factor: float) -> Tensor:
    """Similarity of each check-in's local time to its sample's query time, in ``(0, 1]``.

    ``exp(-d^2 / (2 sigma^2))`` with ``d`` the circular distance in hours between the two local
    times of day (so 23:30 and 00:30 are one hour apart), times ``weekend_factor`` when one is on
    a weekday and the other on a weekend (Saturday or Sunday).

    Shapes: ``ts, tz`` ``(B, M)``; ``q_ts, q_tz`` ``(B,)`` -> ``(B, M)`` float64.
    """
    if sigma_hours <= 0 or not 0 <= weekend_factor <= 1:
        raise ValueError(f"need sigma_hours > 0 and 0 <= weekend_factor <= 1, got {sigma_hours}, {weekend_factor}")
    s, q_s = local_seconds(ts, tz), local_seconds(q_ts, q_tz)                       # (B, M), (B,)
    hours = (s % SECONDS_PER_DAY).double() / 3600.0                                 # (B, M)
    q_hours = (q_s % SECONDS_PER_DAY).double() / 3600.0                             # (B,)
    d = (hours - q_hours[:, None]).abs()
    d = torch.minimum(d, HOURS_PER_DAY - d)                                         # (B, M) circular
    k = torch.exp(-d.square() / (2.0 * sigma_hours ** 2))
    weekend = weekday_of_local(s) >= 5                                              # (B, M)
    q_weekend = weekday_of_local(q_s) >= 5                                          # (B,)
    return torch.where(weekend == q_weekend[:, None], k, k * weekend_factor)


class VisibleCounts:
    """Popularity and transition counts over the check-ins visible as of each query time.

    A check-in is visible to a sample scored at time ``t`` if ``ts < t`` and, under
    ``history="train_only"``, it is a training-period check-in (``part == 0``). A transition is
    two consecutive check-ins of one trajectory, both visible; it counts once its second
    check-in is visible.

    Built by the model-input builder (:func:`stgnn.inputs.build_inputs`, ``InputSpec.visible_counts``)
    with :meth:`from_split`; saved with the run's inputs as :meth:`to_state`.

    Args:
        history: ``"train_only"`` or ``"all_past"`` (the protocol's history setting).
        num_pois: ``P``.
        ts, poi: ``(N,)`` int64 the visible-ever check-ins, sorted by time.
        t_src, t_dst, t_ts: ``(E,)`` int64 transitions (second check-in's time), sorted by
            (source, time).
        span: an integer above every time stamp (the sort key of a transition is
            ``src * span + ts``).

    Shapes:
        ``popularity(t (B,)) -> (B, P)``; ``transitions(src (B,), t (B,)) -> (B, P)``; float64 counts.
    """

    def __init__(self, history: str, num_pois: int, ts: Tensor, poi: Tensor, t_src: Tensor, t_dst: Tensor,
                 t_ts: Tensor, span: int) -> None:
        if history not in HISTORY_SETTINGS:
            raise ValueError(f"history must be one of {list(HISTORY_SETTINGS)}, got {history!r}")
        self.history, self.num_pois = history, int(num_pois)
        self.ts, self.poi = ts.long(), poi.long()
        self.t_src, self.t_dst, self.t_ts = t_src.long(), t_dst.long(), t_ts.long()
        # one sortable key per transition: rows of a source are contiguous and time-ordered
        self._span = int(span)
        self.t_key = self.t_src * self._span + self.t_ts                              # (E,)

    @classmethod
    def from_split(cls, split: Split, history: str) -> "VisibleCounts":
        """The index of ``split``'s check-ins a sample may ever see under ``history``."""
        if history not in HISTORY_SETTINGS:
            raise ValueError(f"history must be one of {list(HISTORY_SETTINGS)}, got {history!r}")
        ok = split.part == PARTS["train"] if history == "train_only" else np.ones(len(split.part), bool)
        order = np.argsort(split.ts[ok], kind="stable")
        same = (split.traj[1:] == split.traj[:-1]) & ok[1:] & ok[:-1]                # (N_all - 1,)
        src, dst, t = split.poi[:-1][same], split.poi[1:][same], split.ts[1:][same]
        by_src = np.lexsort((t, src))                                                # by source, then time
        a = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))    # noqa: E731
        return cls(history, split.num_pois, a(split.ts[ok][order]), a(split.poi[ok][order]),
                   a(src[by_src]), a(dst[by_src]), a(t[by_src]), int(max(split.ts.max(initial=0), 0)) + 1)

    def to_state(self) -> dict:
        """Tensors, numbers and strings (what :meth:`from_state` reads)."""
        return {"history": self.history, "num_pois": self.num_pois, "ts": self.ts, "poi": self.poi,
                "t_src": self.t_src, "t_dst": self.t_dst, "t_ts": self.t_ts, "span": self._span}

    @classmethod
    def from_state(cls, state: dict) -> "VisibleCounts":
        return cls(**state)

    def popularity(self, t: Tensor) -> Tensor:
        """``(B, P)`` visible check-ins per POI as of each time in ``t`` ``(B,)`` (int64 UTC seconds)."""
        t = _seconds(t)
        order = torch.argsort(t)
        n = torch.searchsorted(self.ts, t[order], side="left")                        # (B,) visible prefix
        out = torch.zeros(len(t), self.num_pois, dtype=torch.float64)
        if len(t) and int(n[-1]) > 0:
            # check-in i first becomes visible at the earliest sorted query whose prefix holds it
            first = torch.searchsorted(n, torch.arange(int(n[-1])), side="right")    # (n_max,)
            out.index_put_((first, self.poi[:int(n[-1])]), torch.ones(int(n[-1]), dtype=torch.float64),
                           accumulate=True)
            out = out.cumsum(0)
        result = torch.empty_like(out)
        result[order] = out
        return result

    def transitions(self, src: Tensor, t: Tensor) -> Tensor:
        """``(B, P)`` visible transitions out of each POI in ``src`` ``(B,)`` as of each ``t`` ``(B,)``."""
        src, t = src.cpu().long(), _seconds(t)
        start = torch.searchsorted(self.t_key, src * self._span, side="left")        # (B,)
        end = torch.searchsorted(self.t_key, src * self._span + t.clamp(min=0, max=self._span), side="left")
        n = end - start                                                              # (B,)
        row = torch.repeat_interleave(torch.arange(len(src)), n)                     # (E_b,)
        pos = torch.repeat_interleave(start - (torch.cumsum(n, 0) - n), n) + torch.arange(int(n.sum()))
        out = torch.zeros(len(src), self.num_pois, dtype=torch.float64)
        out.index_put_((row, self.t_dst[pos]), torch.ones(len(pos), dtype=torch.float64), accumulate=True)
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(history={self.history}, checkins={len(self.ts)}, "
                f"transitions={len(self.t_key)})")


def _seconds(t: Tensor) -> Tensor:
    """Query times as int64 CPU seconds; float times would lose whole seconds at epoch scale."""
    if t.is_floating_point():
        raise TypeError("query times must be integer UTC seconds (int64), got a float tensor")
    return t.cpu().long()


def normalise_rows(x: Tensor, fallback: Tensor | None = None) -> Tensor:
    """Rows of ``x`` ``(B, P)`` scaled to sum to 1; an all-zero row becomes ``fallback`` ``(P,)``
    (or stays zero)."""
    total = x.sum(1, keepdim=True)
    out = x / total.clamp(min=torch.finfo(x.dtype).tiny)
    if fallback is not None:
        out = torch.where(total > 0, out, fallback.to(x.dtype).expand_as(x))
    return out


__all__ = ["HISTORY_SETTINGS", "VisibleCounts", "normalise_rows", "time_of_day_kernel"]
