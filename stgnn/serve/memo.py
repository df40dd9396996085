"""Bounded memos of a served model's request work whose inputs repeat from request to request.

Each memo is keyed by exactly what its result is a function of, so a hit returns the bits a miss
would have computed and nothing needs invalidating: a new check-in changes the key.

* :func:`memo_prefix` (one-sample batches of STGNN's ``encode_prefix``): the sequence state at
  the end of the user's current trajectory, keyed by the bytes of the trajectory's POIs, times
  and mask (not the query time, which it does not read), so a user asking again before their
  next check-in skips the step embeddings and the transformer; a new check-in makes a new key,
  hence a miss.
* :class:`MemoVisibleCounts` (a reference prior's ``counts="visible"``): one query's popularity
  distribution depends only on how many indexed check-ins precede its time; for every query after
  the index's last check-in (live traffic) that is one vector, which costs a scatter over every
  training check-in (~1 ms on NYC) when computed. Its transitions out of the last POI likewise
  depend only on that POI and how much of its row precedes the query time.

Each hands out copies (a caller may write to what it gets) and is bounded (first in, first out);
a hit takes no lock, and two threads missing together both compute the same value.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

PREFIX_ENTRIES = 65536          # (d,) float32 each: 256 B for NYC's STGNN, ~16 MB at most
POPULARITY_ENTRIES = 16         # one per distinct visible-prefix length asked about
TRANSITION_ENTRIES = 65536      # (last POI, visible part of its row): its non-zero counts, ~1 KB on NYC


class _Fifo:
    """A small bounded map, first in first out (a hit does not refresh an entry); ``hits`` and
    ``misses`` count for tests and logs."""

    def __init__(self, size: int) -> None:
        self.size, self.hits, self.misses = size, 0, 0
        self._d: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()            # insert + evict as one step (requests run in threads)

    def get(self, key: Any, make: Callable[[], Any], copy: bool = True) -> Any:
        """The value for ``key`` (made by ``make()`` on a miss); a copy unless ``copy=False`` (for
        values the caller only reads)."""
        value = self._d.get(key)
        if value is None:
            self.misses += 1
            value = make()                       # outside the lock: two threads may both compute it
            with self._lock:
                self._d[key] = value
                while len(self._d) > self.size:
                    self._d.popitem(last=False)
        else:
            self.hits += 1
        return value.clone() if copy else value

    def __len__(self) -> int:
        return len(self._d)


def memo_prefix(encode: Callable[[Any, Any], Tensor], size: int = PREFIX_ENTRIES) -> Callable[[Any, Any], Tensor]:
    """A model's ``encode_prefix(batch, rows) -> (B, d)`` memoised for one-sample batches on the
    bytes of what it reads: ``batch.poi, ts, tz, mask`` and ``length``
    (:func:`stgnn.models.prefix.encode_prefix`).

    For a model in eval mode with frozen weights and pinned POI encodings (``rows`` the same
    function of the same tensor at every call), so the same trajectory gives the same bits. The
    key is the prefix width and a 16-byte BLAKE2b digest of the five tensors' bytes (a collision
    of two inputs is a 2^-128 chance, no practical concern); ``.memo`` on the returned function
    holds the map. A batch of several samples is encoded as asked.
    """
    memo = _Fifo(size)

    def memoised(batch: Any, rows: Any) -> Tensor:
        if batch.poi.shape[0] != 1:
            return encode(batch, rows)
        h = hashlib.blake2b(digest_size=16)
        for t in (batch.poi, batch.ts, batch.tz, batch.mask, batch.length):
            h.update(t.detach().contiguous().numpy().tobytes())
        return memo.get((tuple(batch.poi.shape), h.digest()), lambda: encode(batch, rows))

    memoised.memo = memo                                    # type: ignore[attr-defined]
    return memoised


class MemoVisibleCounts:
    """A :class:`~stgnn.models.reference.UserHistory` (``counts="visible"``) whose one-query
    popularity and transition distributions are memoised.

    ``visible_popularity(t)`` of one query normalises the first ``n`` indexed check-ins' counts,
    ``n`` the number before ``t``: the memo's key. ``visible_transitions(src, t)`` of one query
    normalises a prefix of the index's ``src`` row: keyed by ``src`` and where that prefix ends,
    and kept sparse (the row's destinations and their shares, a few per POI), so every POI users
    stand at fits (a dense memo of 512 rows missed on every request once the users' current POIs
    outnumbered it). A share is its integer count over their integer total, the same bits as the
    dense row's. Keys are found with numpy's ``searchsorted`` on views of the index. Batches of
    several queries go to the reference's own methods.
    """

    def __init__(self, reference: nn.Module, size: int = POPULARITY_ENTRIES, transitions: int = TRANSITION_ENTRIES) -> None:
        self.visible = reference.visible
        self._popularity, self._transitions = reference.visible_popularity, reference.visible_transitions
        self.memo, self.trans_memo = _Fifo(size), _Fifo(transitions)
        self._ts = self.visible.ts.numpy()             # (N,) views, not copies
        self._t_key = self.visible.t_key.numpy()       # (E,)

    def visible_popularity(self, t: Tensor) -> Tensor:
        if t.numel() != 1 or t.is_floating_point():      # the reference's own checks and batch path
            return self._popularity(t)
        n = int(np.searchsorted(self._ts, int(t.reshape(-1)[0]), side="left"))
        return self.memo.get(n, lambda: self._popularity(t))

    def visible_transitions(self, src: Tensor, t: Tensor) -> Tensor:
        if src.numel() != 1 or t.numel() != 1 or t.is_floating_point():
            return self._transitions(src, t)
        v, s = self.visible, int(src.reshape(-1)[0])
        end = int(np.searchsorted(self._t_key, s * v._span + min(max(int(t.reshape(-1)[0]), 0), v._span), side="left"))
        cols, shares = self.trans_memo.get((s, end), lambda: self._row_shares(s, end), copy=False)
        out = torch.zeros(1, v.num_pois, dtype=torch.float64)
        out[0, cols] = shares
        return out

    def _row_shares(self, s: int, end: int) -> tuple[Tensor, Tensor]:
        """The visible part of the index's row ``s`` (its entries before ``end``) as destinations and
        shares: integer counts over their integer total, both exact in float64, so the division
        gives the bits of the reference's dense ``normalise_rows``."""
        v = self.visible
        start = int(np.searchsorted(self._t_key, s * v._span, side="left"))
        cols, counts = np.unique(v.t_dst.numpy()[start:end], return_counts=True)
        counts = counts.astype(np.float64)
        return torch.from_numpy(cols.astype(np.int64)), torch.from_numpy(counts / counts.sum())

    def __repr__(self) -> str:
        return f"Memo({self.visible!r})"


def memo_visible_counts(model: nn.Module) -> int:
    """Memoise the visible popularity and transitions of every module of ``model`` that counts
    them (a served UserHistory, or STGNN's reference prior): its ``visible_popularity`` and
    ``visible_transitions`` become a :class:`MemoVisibleCounts`'s (kept as ``visible_memo``).
    Returns how many."""
    n = 0
    for m in model.modules():
        if getattr(m, "visible", None) is not None and callable(getattr(m, "visible_popularity", None)) \
                and getattr(m, "visible_memo", None) is None:
            memo = MemoVisibleCounts(m)
            m.visible_memo = memo
            m.visible_popularity, m.visible_transitions = memo.visible_popularity, memo.visible_transitions
            n += 1
    return n


__all__ = ["MemoVisibleCounts", "memo_prefix", "memo_visible_counts"]
