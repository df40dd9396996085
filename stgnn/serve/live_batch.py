"""A live :class:`~stgnn.data.batch.Batch` from the check-in store, as the offline loader builds it.

For a user asked about at time ``at`` the model sees exactly what a sample of the ``all_past``
history setting sees offline (:class:`~stgnn.data.batch.SampleLoader` with
``history="all_past"``), with the stored check-ins strictly before ``at`` standing in for the
split's:

* **prefix** = the user's current trajectory: the stored check-ins since the last trajectory
  start, its most recent ``max_len``. Seeded check-ins keep the split's own trajectory
  boundaries; check-ins written later start a trajectory when the gap to the previous one
  exceeds the protocol's ``traj_gap_hours`` (strictly greater, as :mod:`stgnn.data.protocol`).
* **history** = the user's check-ins before that trajectory, the most recent ``hist_len``.
* check-ins at POIs the model has no id for (registered after training) are left out, and a
  trajectory whose first check-in is left out starts at its next kept one, as the protocol's
  ``unseen_context="drop"`` does.
* the target time is ``at`` (and its tz) when the model is given it (the run's information
  setting), else the batch carries none, as the loader does.

The batch itself is :meth:`stgnn.data.batch.Batch.from_sequences` (right padding, masks, widths
of the longest kept range); this module only decides which stored check-ins go where. Pads hold
0 there and check-in 0's values in the offline loader: models read pads only through the mask.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from stgnn.data.batch import Batch
from stgnn.serve.store import UserRows


@dataclass(frozen=True)
class UserContext:
    """A user's kept check-ins before ``at`` in model ids, oldest first, and where the current
    trajectory starts. Shapes: every array ``(n,)``; ``start`` in ``[0, n)`` (``n >= 1``)."""

    poi: np.ndarray
    category: np.ndarray
    ts: np.ndarray
    tz: np.ndarray
    start: int
    dropped: int            # check-ins left out: POIs the model has no id for

    @property
    def prefix_len(self) -> int:
        return len(self.ts) - self.start


def user_context(rows: UserRows, poi_map: np.ndarray, cat_map: np.ndarray, gap_s: float,
                 hist_len: int, poi_category: np.ndarray | None = None) -> UserContext | None:
    """Split ``rows`` into history and current trajectory (module docstring).

    Args:
        rows: the user's stored check-ins before ``at``, oldest first (store keys).
        poi_map, cat_map: ``(K,)`` store key → model id (-1: the model has none).
        gap_s: the trajectory gap in seconds.
        hist_len: history the caller needs; decides whether an incomplete ``rows`` suffices.
        poi_category: ``(P,)`` the model's category of each POI, used for a check-in whose
            category name the model does not know (else 0).

    Returns:
        The context, ``None`` when no check-in is kept (cold start), or raises ``LookupError``
        when ``rows`` is a truncated window that does not reach back far enough (the caller
        fetches more).
    """
    n = len(rows)
    if n == 0:
        return None
    starts = rows.traj_start.copy()                                         # (n,) 1/0, -1: gap rule
    gaps = np.diff(rows.ts, prepend=rows.ts[0])                            # (n,)
    rule = starts < 0
    starts[rule] = (gaps[rule] > gap_s).astype(np.int64)
    # the first row of a truncated window decides its start from a row outside the window
    first_known = rows.complete or not rule[0]
    starts[0] = 1 if rows.complete else starts[0]
    traj = np.cumsum(starts)                                                # (n,) trajectory number
    pk = rows.poi_key.astype(np.int64)
    poi = np.where(pk < len(poi_map), poi_map[np.minimum(pk, len(poi_map) - 1)], -1)
    keep = poi >= 0
    if not keep.any():
        if rows.complete:
            return None
        raise LookupError("no check-in the model knows in the window; fetch more")
    ck = rows.category_key.astype(np.int64)
    cat = np.where(ck < len(cat_map), cat_map[np.minimum(ck, len(cat_map) - 1)], -1)
    unknown_cat = keep & (cat < 0)
    if unknown_cat.any():
        cat[unknown_cat] = poi_category[poi[unknown_cat]] if poi_category is not None else 0
    traj_k = traj[keep]
    first = int(np.searchsorted(traj_k, traj_k[-1], side="left"))          # current trajectory's first kept
    if not rows.complete:
        raw_start = int(np.searchsorted(traj, traj_k[-1], side="left"))    # its first row, kept or not
        starts_in_window = raw_start > 0 or (first_known and starts[0] == 1)
        if not starts_in_window or first < hist_len:
            raise LookupError("the window does not reach the trajectory's start or hist_len rows before it")
    return UserContext(poi=poi[keep], category=cat[keep], ts=rows.ts[keep], tz=rows.tz[keep], start=first,
                       dropped=int((~keep).sum()))


def make_live_batch(contexts: Sequence[UserContext], users: Sequence[int], at: Sequence[int], at_tz: Sequence[int],
                    *, max_len: int, hist_len: int, poi_category: np.ndarray, poi_lat: np.ndarray,
                    poi_lon: np.ndarray, target_time_known: bool) -> Batch:
    """A :class:`Batch` of ``B = len(contexts)`` live samples: :meth:`Batch.from_sequences` of each
    context's current trajectory (prefix) and the check-ins before it (history).

    Args:
        contexts: from :func:`user_context`, one per sample.
        users: ``(B,)`` model user ids.
        at, at_tz: ``(B,)`` query times (UTC s) and their tz offsets (minutes).
        max_len, hist_len: the run's ``train.max_len`` / ``train.hist_len``.
        poi_category, poi_lat, poi_lon: ``(P,)`` the model's POI table.
        target_time_known: give the batch ``at`` as its target time (else it carries none).
    """
    def part(c: UserContext, sl: slice) -> tuple[np.ndarray, ...]:
        return c.poi[sl], c.ts[sl], c.tz[sl], c.category[sl]

    return Batch.from_sequences(
        users, [part(c, slice(c.start, None)) for c in contexts], [part(c, slice(0, c.start)) for c in contexts],
        poi_category, poi_lat, poi_lon, max_len=max_len, hist_len=hist_len,
        query_times=list(zip(at, at_tz)) if target_time_known else None)
