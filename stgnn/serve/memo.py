"""Bounded memos of a served model's request work whose inputs repeat from request to request.

Each memo is keyed by exactly what its result is a function of, so a hit returns the bits a miss
would have computed and nothing needs invalidating: a new check-in changes the key.

* :func:`memo_sequence` (one-sample batches of a sequence encoder): the encoder's output for an
  input tensor, keyed by the tensor's bytes. The input is the user's current trajectory (POIs,
  times, gaps, distances, not the query time), so a user asking again before their next check-in
  skips the transformer; a new check-in makes a new input, hence a miss.
* :class:`MemoVisibleCounts` (a reference prior's ``counts="visible"``): one query's popularity
  counts depend only on how many indexed check-ins precede its time; for every query after the
  index's last check-in (live traffic) that is one vector, which costs a scatter over every
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

import torch
from torch import Tensor, nn

SEQ_ENTRIES = 2048              # ~16 KB each for NYC's fast STGNN (64 x 64 float32): ~32 MB at most
POPULARITY_ENTRIES = 16         # one per distinct visible-prefix length asked about
TRANSITION_ENTRIES = 512        # (last POI, visible part of its row): P float64 each, ~40 KB on NYC


class _Fifo:
    """A small bounded map, first in first out (a hit does not refresh an entry); ``hits`` and
    ``misses`` count for tests and logs."""

    def __init__(self, size: int) -> None:
        self.size, self.hits, self.misses = size, 0, 0
        self._d: OrderedDict[Any, Tensor] = OrderedDict()
        self._lock = threading.Lock()            # insert + evict as one step (requests run in threads)

    def get(self, key: Any, make: Callable[[], Tensor]) -> Tensor:
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
        return value.clone()

    def __len__(self) -> int:
        return len(self._d)


def memo_sequence(forward: Callable[[Tensor, Tensor], Tensor], size: int = SEQ_ENTRIES,
                  ) -> Callable[[Tensor, Tensor], Tensor]:
    """``forward(x (1, L, d), mask (1, L))`` memoised on the bytes of ``x`` and ``mask``.

    For an encoder in eval mode with frozen weights (deterministic: the same input gives the same
    bits). The key is the input's shape, dtype and a 16-byte BLAKE2b digest of its bytes (a collision
    of two inputs is a 2^-128 chance, no practical concern); ``.memo`` on the returned function
    holds the map.
    """
    memo = _Fifo(size)

    def memoised(x: Tensor, mask: Tensor) -> Tensor:
        xd, md = x.detach(), mask.detach()
        h = hashlib.blake2b(xd.contiguous().numpy().tobytes(), digest_size=16)
        h.update(md.contiguous().numpy().tobytes())
        key = (tuple(xd.shape), str(xd.dtype), h.digest())
        return memo.get(key, lambda: forward(x, mask))

    memoised.memo = memo                                    # type: ignore[attr-defined]
    return memoised


class MemoVisibleCounts:
    """A :class:`~stgnn.features.history.VisibleCounts` whose one-query popularity is memoised.

    ``popularity(t)`` of one query counts the first ``n`` indexed check-ins, ``n`` the number
    before ``t``: the memo's key. ``transitions(src, t)`` of one query counts a prefix of the
    index's ``src`` row: keyed by ``src`` and where that prefix ends. Batches go to the index itself.
    """

    def __init__(self, visible: Any, size: int = POPULARITY_ENTRIES, transitions: int = TRANSITION_ENTRIES) -> None:
        self.inner, self.memo, self.trans_memo = visible, _Fifo(size), _Fifo(transitions)

    def popularity(self, t: Tensor) -> Tensor:
        if t.numel() != 1 or t.is_floating_point():      # the index's own checks and batch path
            return self.inner.popularity(t)
        n = int(torch.searchsorted(self.inner.ts, t.cpu().long().reshape(1), side="left")[0])
        return self.memo.get(n, lambda: self.inner.popularity(t))

    def transitions(self, src: Tensor, t: Tensor) -> Tensor:
        """One query's visible transitions out of ``src``: those of the index's ``src`` row up to
        its first at or after ``t``, so ``(src, where that row stops)`` is the memo's key."""
        if src.numel() != 1 or t.numel() != 1 or t.is_floating_point():
            return self.inner.transitions(src, t)
        v, s = self.inner, int(src.reshape(-1)[0])
        q = torch.tensor([s * v._span + min(max(int(t.reshape(-1)[0]), 0), v._span)])
        end = int(torch.searchsorted(v.t_key, q, side="left")[0])
        return self.trans_memo.get((s, end), lambda: v.transitions(src, t))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"Memo({self.inner!r})"


def memo_visible_counts(model: nn.Module) -> int:
    """Wrap the ``visible`` count index of every module of ``model`` that has one (a served
    UserHistory, or STGNN's reference prior) in :class:`MemoVisibleCounts`; returns how many."""
    n = 0
    for m in model.modules():
        v = getattr(m, "visible", None)
        if v is not None and not isinstance(v, MemoVisibleCounts) and callable(getattr(v, "popularity", None)):
            m.visible = MemoVisibleCounts(v)
            n += 1
    return n


__all__ = ["MemoVisibleCounts", "memo_sequence", "memo_visible_counts"]
