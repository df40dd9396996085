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
* the target time is ``at`` (and its tz) when the model reads it and the protocol allows it,
  else zero-filled, as the loader does.

Conventions of :mod:`stgnn.data.batch`: right padding, ``mask``/``hist_mask`` True at real
positions, widths = the longest kept range (at least 1). Pads hold 0 here; the offline loader's
pads hold check-in 0's values. Neither is meaningful: models read pads only through the mask.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from stgnn.data.batch import Batch
from stgnn.serve.store import UserRows


# Batch fields this module does not know (a newer Batch contract) fail loudly in make_live_batch,
# in the serve tests, rather than silently defaulting.
_BATCH_FIELDS = frozenset(f.name for f in dataclasses.fields(Batch))


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
                    *, max_len: int, hist_len: int, poi_lat: np.ndarray, poi_lon: np.ndarray,
                    target_time_known: bool, index: Sequence[int] | None = None,
                    target_poi: Sequence[int] | None = None) -> Batch:
    """A :class:`Batch` of ``B = len(contexts)`` live samples (module docstring for what each holds).

    Args:
        contexts: from :func:`user_context`, one per sample.
        users: ``(B,)`` model user ids.
        at, at_tz: ``(B,)`` query times (UTC s) and their tz offsets (minutes).
        max_len, hist_len: the run's ``train.max_len`` / ``train.hist_len``.
        poi_lat, poi_lon: ``(P,)`` the model's POI coordinates (degrees).
        target_time_known: fill ``target_ts``/``target_tz`` with ``at`` (else zeros).
        index, target_poi: ``(B,)`` sample identity when known (replay, tests); live: -1 and 0.
    """
    B = len(contexts)
    plen = np.array([min(c.prefix_len, max_len) for c in contexts], np.int64)          # (B,)
    hlen = np.array([min(c.start, hist_len) for c in contexts], np.int64)              # (B,)
    L = max(int(plen.max()) if B else 0, 1)
    H = max(int(hlen.max()) if B and hist_len > 0 else 0, 1)
    poi, cat, ts, tz = (np.zeros((B, L), np.int64) for _ in range(4))
    hpoi, hcat, hts, htz = (np.zeros((B, H), np.int64) for _ in range(4))
    mask, hmask = np.zeros((B, L), bool), np.zeros((B, H), bool)
    for b, c in enumerate(contexts):
        n, m = int(plen[b]), int(hlen[b]) if hist_len > 0 else 0
        sl = slice(len(c.ts) - n, len(c.ts))                                  # last n of the trajectory
        poi[b, :n], cat[b, :n], ts[b, :n], tz[b, :n] = c.poi[sl], c.category[sl], c.ts[sl], c.tz[sl]
        mask[b, :n] = True
        hs = slice(c.start - m, c.start)                                      # last m before it
        hpoi[b, :m], hcat[b, :m], hts[b, :m], htz[b, :m] = c.poi[hs], c.category[hs], c.ts[hs], c.tz[hs]
        hmask[b, :m] = True
    lat = np.where(mask, poi_lat[poi], 0.0).astype(np.float32)                # (B, L)
    lon = np.where(mask, poi_lon[poi], 0.0).astype(np.float32)
    known = bool(target_time_known)
    t = torch.from_numpy
    values = dict(
        index=t(np.asarray(index if index is not None else [-1] * B, np.int64)),
        user=t(np.asarray(users, np.int64)),
        poi=t(poi), category=t(cat), ts=t(ts), tz=t(tz), lat=t(lat), lon=t(lon),
        mask=t(mask), length=t(plen.copy()),
        hist_poi=t(hpoi), hist_category=t(hcat), hist_ts=t(hts), hist_tz=t(htz), hist_mask=t(hmask),
        target_poi=t(np.asarray(target_poi if target_poi is not None else [0] * B, np.int64)),
        target_ts=t(np.asarray(at, np.int64) if known else np.zeros(B, np.int64)),
        target_tz=t(np.asarray(at_tz, np.int64) if known else np.zeros(B, np.int64)),
    )
    if "target_time_known" in _BATCH_FIELDS:
        values["target_time_known"] = torch.full((B,), known, dtype=torch.bool)
    missing = _BATCH_FIELDS - set(values)
    if missing:
        raise TypeError(f"stgnn.serve.live_batch does not fill Batch field(s) {sorted(missing)}; update it")
    return Batch(**values)
