"""Batches of samples: trajectory prefixes (+ the user's longer history) with their targets.

A sample is the index ``j`` of its target check-in in a :class:`~stgnn.data.split.Split`.
:class:`SampleLoader` turns sample indices into :class:`Batch` objects, vectorised in numpy.

Padding convention: sequences are **right-padded**; padded positions hold index 0 and are
``False`` in the mask. Models must use the mask (never rely on a pad index).

The loader enforces the information setting (:mod:`stgnn.data.information`):

* ``history``: the user's check-ins strictly before the current trajectory that a sample may
  see. ``"train_only"`` (default, the leakage rule of DESIGN.md): training-period check-ins
  only, also for val/test samples. ``"all_past"``: every earlier check-in of the user, whatever
  its period.
* ``target_time``: ``"known"`` fills ``target_ts``/``target_tz``; ``"hidden"`` leaves them
  ``None``, so no model can read them. ``batch.target_time_known`` says which; a model never
  infers it from the values. Give a model ``InformationSetting.for_model(uses_target_time)``:
  a model that does not declare it reads the target time gets ``"hidden"``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterator, Sequence

import numpy as np
import torch

from stgnn.data.information import HISTORY, TARGET_TIME
from stgnn.data.split import PARTS, Split


@dataclass
class Batch:
    """A batch of ``B`` samples; ``L`` = prefix length, ``H`` = history length (both padded).

    Attributes:
        index: ``(B,)`` target check-in index in the split (identifies the sample).
        user: ``(B,)`` user id.
        poi, category: ``(B, L)`` prefix POIs / categories, oldest first.
        ts: ``(B, L)`` UTC seconds; ``tz``: ``(B, L)`` tz offset minutes.
        lat, lon: ``(B, L)`` float coordinates of the prefix POIs.
        mask: ``(B, L)`` bool, True at real positions; every sample has >= 1 (``length``).
        length: ``(B,)`` number of real prefix positions.
        hist_poi, hist_category, hist_ts, hist_tz, hist_mask: ``(B, H)`` the user's earlier
            check-ins (most recent ``H``), oldest first, right-padded.
        target_poi: ``(B,)`` the label.
        target_ts, target_tz: ``(B,)`` the target's time (UTC s, tz offset minutes) when
            ``target_time_known``, else ``None`` (module docstring).
        target_time_known: whether the loader gave the target time to this batch.
    """

    index: torch.Tensor
    user: torch.Tensor
    poi: torch.Tensor
    category: torch.Tensor
    ts: torch.Tensor
    tz: torch.Tensor
    lat: torch.Tensor
    lon: torch.Tensor
    mask: torch.Tensor
    length: torch.Tensor
    hist_poi: torch.Tensor
    hist_category: torch.Tensor
    hist_ts: torch.Tensor
    hist_tz: torch.Tensor
    hist_mask: torch.Tensor
    target_poi: torch.Tensor
    target_ts: torch.Tensor | None
    target_tz: torch.Tensor | None
    target_time_known: bool

    def __post_init__(self) -> None:
        given = (self.target_ts is not None, self.target_tz is not None)
        if given != (self.target_time_known, self.target_time_known):
            raise ValueError("a Batch carries target_ts and target_tz exactly when target_time_known is True")

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return Batch(**{f.name: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
                        for f in fields(self) for v in (getattr(self, f.name),)})

    @property
    def last_poi(self) -> torch.Tensor:
        """``(B,)`` the most recent check-in of the prefix."""
        return self.poi.gather(1, (self.length - 1).clamp(min=0)[:, None]).squeeze(1)

    @classmethod
    def from_sequences(cls, users: Sequence[int], prefixes: Sequence[Checkins], histories: Sequence[Checkins] | None,
                       poi_category: np.ndarray, poi_lat: np.ndarray, poi_lon: np.ndarray, *, max_len: int = 64,
                       hist_len: int = 128, query_times: Sequence[tuple[int, int]] | None = None) -> "Batch":
        """A batch from raw check-in sequences, without a split (a live request, a replay).

        Each prefix / history is ``(poi, ts, tz)`` (three equal-length 1-D arrays, oldest first;
        a 4th array, per-check-in categories, is optional: default the POI's ``poi_category``).
        The history is what the sample may see (the caller's store enforces the information
        setting); the last ``max_len`` / ``hist_len`` check-ins are kept, right-padded with zeros.
        ``query_times`` ``[(ts, tz), ...]``: the time each answer is for (``target_time_known``);
        ``None``: unknown, and models query at the last check-in. ``target_poi`` is 0 (no label)
        and ``index`` is -1 (no split sample).
        """
        if any(len(p[0]) == 0 for p in prefixes):
            raise ValueError("every request needs at least one check-in in its prefix")
        if hist_len == 0 or histories is None:
            histories = [(np.zeros(0, np.int64),) * 3 for _ in prefixes]
        B, t = len(users), torch.from_numpy
        pre, pmask = _pad([_tail(p, max_len, poi_category) for p in prefixes])
        hist, hmask = _pad([_tail(h, hist_len, poi_category) for h in histories])
        known = query_times is not None
        q = np.asarray(query_times if known else np.zeros((B, 2)), dtype=np.int64).reshape(B, 2)
        return cls(index=t(np.full(B, -1, np.int64)), user=t(np.asarray(users, dtype=np.int64)),
                   poi=t(pre[0]), category=t(pre[3]), ts=t(pre[1]), tz=t(pre[2]),
                   lat=t(np.asarray(poi_lat, np.float32)[pre[0]]), lon=t(np.asarray(poi_lon, np.float32)[pre[0]]),
                   mask=t(pmask), length=t(pmask.sum(1).astype(np.int64)),
                   hist_poi=t(hist[0]), hist_category=t(hist[3]), hist_ts=t(hist[1]), hist_tz=t(hist[2]),
                   hist_mask=t(hmask), target_poi=torch.zeros(B, dtype=torch.int64),
                   target_ts=t(q[:, 0].copy()) if known else None, target_tz=t(q[:, 1].copy()) if known else None,
                   target_time_known=known)

    def query_time(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B,)`` time and ``(B,)`` tz offset the scores are asked for: the target's when it is
        known, else the last prefix check-in's ("where next, from here and now")."""
        if self.target_time_known:
            return self.target_ts, self.target_tz
        last = (self.length - 1).clamp(min=0)[:, None]
        return self.ts.gather(1, last)[:, 0], self.tz.gather(1, last)[:, 0]


Checkins = tuple[np.ndarray, ...]  # (poi, ts, tz[, category]) 1-D arrays of one sequence, oldest first


def _tail(seq: Checkins, n: int, poi_category: np.ndarray) -> list[np.ndarray]:
    """The last ``n`` check-ins of ``seq`` as int64 (poi, ts, tz, category) arrays."""
    poi, ts, tz = (np.asarray(a, dtype=np.int64)[max(len(seq[0]) - n, 0):] for a in seq[:3])
    cat = np.asarray(seq[3], dtype=np.int64)[max(len(seq[0]) - n, 0):] if len(seq) > 3 else \
        np.asarray(poi_category, dtype=np.int64)[poi]
    return [poi, ts, tz, cat]


def _pad(seqs: list[list[np.ndarray]]) -> tuple[list[np.ndarray], np.ndarray]:
    """Right-pad sequences of (poi, ts, tz, category) arrays to ``(B, W)`` each (``W >= 1``) and their mask."""
    width = max([len(s[0]) for s in seqs] + [1])
    mask = np.arange(width)[None, :] < np.array([len(s[0]) for s in seqs])[:, None]   # (B, W)
    out = [np.zeros((len(seqs), width), dtype=np.int64) for _ in range(4)]
    for i, s in enumerate(seqs):
        for k in range(4):
            out[k][i, :len(s[k])] = s[k]
    return out, mask


def _gather_padded(starts: np.ndarray, ends: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Index matrix of the last ``max_len`` positions of each ``[start, end)`` range.

    Returns ``(idx, mask)`` both ``(S, W)`` with ``W = min(max_len, longest range)``; padded
    entries of ``idx`` are 0. Ranges keep their order, oldest first, right-padded.
    """
    lengths = np.minimum(ends - starts, max_len)
    width = max(int(lengths.max()) if len(lengths) else 0, 1)
    first = ends - lengths
    offs = np.arange(width)[None, :]
    mask = offs < lengths[:, None]
    idx = np.where(mask, first[:, None] + offs, 0)
    return idx, mask


class SampleLoader:
    """Iterate a split's samples of one part as :class:`Batch` objects.

    Args:
        split: the data.
        part: ``"train"``, ``"val"`` or ``"test"`` (or an explicit ``(S,)`` array of indices).
        batch_size: samples per batch.
        shuffle: reshuffle each epoch, from ``generator`` (seed it for reproducibility).
        max_len: keep at most this many most recent prefix check-ins.
        hist_len: keep at most this many history check-ins (0 disables history).
        history: ``"train_only"`` or ``"all_past"`` (module docstring).
        target_time: ``"known"`` (fill ``target_ts``/``target_tz``) or ``"hidden"`` (``None``).
        generator: a ``torch.Generator`` for shuffling.
    """

    def __init__(self, split: Split, part: str | np.ndarray, batch_size: int = 256, shuffle: bool = False,
                 max_len: int = 64, hist_len: int = 128, history: str = "train_only",
                 target_time: str = "known", generator: torch.Generator | None = None) -> None:
        if history not in HISTORY:
            raise ValueError(f"history must be one of {list(HISTORY)}, got {history!r}")
        if target_time not in TARGET_TIME:
            raise ValueError(f"target_time must be one of {list(TARGET_TIME)}, got {target_time!r}")
        self.split, self.batch_size, self.shuffle = split, batch_size, shuffle
        self.max_len, self.hist_len, self.history = max_len, hist_len, history
        self.target_time, self.generator = target_time, generator
        self.targets = np.asarray(split.samples[part] if isinstance(part, str) else part, dtype=np.int64)

    def __len__(self) -> int:
        return (len(self.targets) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        order = np.arange(len(self.targets))
        if self.shuffle:
            order = torch.randperm(len(order), generator=self.generator).numpy()
        for i in range(0, len(order), self.batch_size):
            yield self.make_batch(self.targets[order[i:i + self.batch_size]])

    def make_batch(self, targets: np.ndarray) -> Batch:
        """Build one :class:`Batch` for the target check-in indices ``targets`` ``(B,)``."""
        s = self.split
        targets = np.asarray(targets, dtype=np.int64)
        pstart = s.prefix_start(targets)
        idx, mask = _gather_padded(pstart, targets, self.max_len)
        if (mask.sum(1) == 0).any():
            raise ValueError("a sample has an empty prefix; protocols only emit samples with >= 1 prior check-in")
        user = s.user[targets]
        if self.hist_len > 0:
            hstart = s.user_ptr[user]
            hend = pstart
            hidx, hmask = self._history(hstart, hend)
        else:
            hidx, hmask = np.zeros((len(targets), 1), np.int64), np.zeros((len(targets), 1), bool)
        t = torch.from_numpy
        known = self.target_time == "known"
        return Batch(
            index=t(targets), user=t(user),
            poi=t(s.poi[idx]), category=t(s.category[idx]),
            ts=t(s.ts[idx]), tz=t(s.tz_offset_min[idx].astype(np.int64)),
            lat=t(s.poi_lat[s.poi[idx]].astype(np.float32)), lon=t(s.poi_lon[s.poi[idx]].astype(np.float32)),
            mask=t(mask), length=t(mask.sum(1).astype(np.int64)),
            hist_poi=t(s.poi[hidx]), hist_category=t(s.category[hidx]), hist_ts=t(s.ts[hidx]),
            hist_tz=t(s.tz_offset_min[hidx].astype(np.int64)), hist_mask=t(hmask),
            target_poi=t(s.poi[targets]),
            target_ts=t(s.ts[targets].astype(np.int64)) if known else None,
            target_tz=t(s.tz_offset_min[targets].astype(np.int64)) if known else None,
            target_time_known=known,
        )

    def _history(self, hstart: np.ndarray, hend: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = self.split
        if self.history == "all_past":
            return _gather_padded(hstart, hend, self.hist_len)
        # train_only: the user's block is time-ordered and train check-ins come first in time,
        # but a user's earlier val trajectory may sit before a test prefix; keep train ones only.
        idx, mask = _gather_padded(hstart, hend, 10 ** 9)
        mask &= s.part[idx] == PARTS["train"]
        # keep the most recent hist_len allowed positions, left-aligned
        counts = mask.sum(1)
        keep_from = np.maximum(counts - self.hist_len, 0)
        rank = np.cumsum(mask, axis=1) - 1
        mask &= rank >= keep_from[:, None]
        width = max(int(np.minimum(counts, self.hist_len).max()) if len(counts) else 0, 1)
        order = np.argsort(~mask, axis=1, kind="stable")[:, :width]
        idx = np.take_along_axis(idx, order, 1)
        mask = np.take_along_axis(mask, order, 1)
        return np.where(mask, idx, 0), mask
