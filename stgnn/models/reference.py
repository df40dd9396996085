"""UserHistory: the user's own recency-weighted visit frequency, with a popularity prior.

For a sample of user ``u`` whose latest visible check-in is at time ``t`` (the end of the
prefix), every visible check-in ``i`` of ``u`` (``batch.hist_*`` plus the prefix
``batch.poi``/``batch.mask``) votes for its POI with weight ``2 ** (-(t - t_i) / half_life)``:

    personal(p) = sum_{i: poi_i = p} w_i / sum_i w_i                    (a distribution over POIs)
    score(p)    = (1 - eps - beta) * personal(p) + beta * trans(last, p) + eps * pop(p)

``pop`` is the training-period popularity distribution, so never-visited POIs are ranked by
popularity instead of tied at zero; ``trans(last, .)`` is the row-normalised training-period
transition distribution out of the prefix's last POI (``beta = transition_weight``, default 0:
off). ``half_life=None`` gives plain (undecayed) frequency.

Tuned-reference terms (all off by default; :mod:`stgnn.train.tune` picks them on validation):

* ``time_weight = gamma > 0`` adds ``gamma * routine(p)``, the same decayed visits weighted
  by how close each check-in's local time of day is to the query time
  (:func:`~stgnn.features.history.time_of_day_kernel`, width ``time_sigma`` hours, times
  ``weekend_factor`` across weekday/weekend), normalised. The query time is the target's time
  when the batch carries it (the model then declares ``uses_target_time`` and the protocol
  decides), else the last prefix check-in's time; the first weight becomes ``1 - eps - beta - gamma``.
* ``counts="visible"`` computes ``pop`` and ``trans`` per sample from the check-ins its
  information setting allows as of its query time (:class:`~stgnn.features.history.VisibleCounts`:
  strictly before it; training period only under ``history=train_only``, every period under
  ``all_past``), instead of from the whole training period (``counts="train"``).

Why this baseline: on NYC ~70% of test targets are revisits, so a well-tuned personal
frequency is a strong bar (close to GETNext's Acc@1) that every learned model must beat.

Leakage: the personal term is computed from the batch alone, i.e. from exactly what the loader
lets the sample see; the popularity and transition statistics come from ``part == 0``
check-ins only (:attr:`ModelInputs.stats <stgnn.inputs.ModelInputs>`, taken in
:meth:`UserHistory.prepare`), all before any val/test target, or with ``counts="visible"`` from
check-ins strictly before the query time (``inputs.visible``). The target time is read only by
the routine term (``time_weight > 0`` sets ``uses_target_time`` on the instance, and the loader
honours the instance's flag).

It lives with the models (not in ``baselines/``) because :class:`~stgnn.models.prior.ReferencePrior`
builds it into STGNN; ``stgnn.baselines.user_history`` re-exports it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stgnn.data.batch import Batch
from stgnn.features.history import VisibleCounts, normalise_rows, time_of_day_kernel
from stgnn.features.time import SECONDS_PER_DAY
from stgnn.inputs import InputSpec, ModelInputs
from stgnn.models.base import Recommender


class UserHistory(Recommender):
    """Recency-decayed personal frequency + popularity prior (+ optional transitions).

    Args:
        num_users, num_pois: id-space sizes of the split.
        half_life: decay half-life in days (``None``: no decay). Default 60: the best validation
            MRR on NYC (default protocol, full training history) among 0.25, 0.5, 1, 2, 4, 7, 14,
            30, 60, 120 days and no decay; short half-lives do badly because the history a val/test
            sample may see ends at the training cut, days to weeks before it.
        eps: weight of the popularity prior, in ``[0, 1)``; it only orders POIs the user has not
            visited (1e-4 to 5e-2 gave the same NYC validation MRR).
        transition_weight: weight ``beta`` of the last-POI transition term (0 disables it; 0.1 to
            0.2 added ~0.01 validation MRR on NYC, kept off by default for a pure personal baseline).
        time_weight: weight ``gamma`` of the routine (time-of-day) term; 0 disables it.
        time_sigma: width in hours of its time-of-day kernel.
        weekend_factor: kernel factor between a weekday and a weekend time, in ``[0, 1]``.
        counts: ``"train"`` (popularity and transitions from every training check-in) or
            ``"visible"`` (as of each sample's query time, under the split's history setting).

    Shapes:
        ``score(batch)``: ``(B, P)`` float32; computed in float64 so that weights decayed over
        months do not underflow before they are normalised.
    """

    trainable = False

    def __init__(self, num_users: int, num_pois: int, *, half_life: float | None = 60.0,
                 eps: float = 1e-3, transition_weight: float = 0.0, time_weight: float = 0.0,
                 time_sigma: float = 1.5, weekend_factor: float = 0.3, counts: str = "train") -> None:
        super().__init__(num_users, num_pois)
        if half_life is not None and half_life <= 0:
            raise ValueError(f"half_life must be > 0 days or None, got {half_life}")
        if not (0 <= eps and 0 <= transition_weight and 0 <= time_weight and eps + transition_weight + time_weight < 1):
            raise ValueError(f"need eps, transition_weight, time_weight >= 0 with a sum < 1, got eps={eps}, "
                             f"transition_weight={transition_weight}, time_weight={time_weight}")
        if time_sigma <= 0 or not 0 <= weekend_factor <= 1:
            raise ValueError(f"need time_sigma > 0 hours and 0 <= weekend_factor <= 1, "
                             f"got {time_sigma}, {weekend_factor}")
        if counts not in ("train", "visible"):
            raise ValueError(f"counts must be 'train' or 'visible', got {counts!r}")
        self.half_life, self.eps, self.transition_weight = half_life, eps, transition_weight
        self.time_weight, self.time_sigma = time_weight, time_sigma
        self.weekend_factor, self.counts = weekend_factor, counts
        # the routine term is the only reader of the target time (the protocol decides if it may)
        self.uses_target_time = time_weight > 0
        self.visible: VisibleCounts | None = None  # counts="visible": taken from the inputs by prepare
        self.register_buffer("pop", torch.full((num_pois,), 1.0 / num_pois, dtype=torch.float64))  # (P,)
        # training transitions as CSR rows: trans_ptr (P+1,), trans_col (E,), trans_val (E,)
        self.register_buffer("trans_ptr", torch.zeros(num_pois + 1, dtype=torch.int64))
        self.register_buffer("trans_col", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("trans_val", torch.zeros(0, dtype=torch.float64))

    @classmethod
    def input_spec(cls, *, counts: str = "train", **_: Any) -> InputSpec:
        """Training statistics; with ``counts="visible"`` also the per-query-time count index."""
        return InputSpec(visible_counts=counts == "visible")

    def extra_repr(self) -> str:
        extra = (f", time_weight={self.time_weight}, time_sigma={self.time_sigma}, "
                 f"weekend_factor={self.weekend_factor}" if self.time_weight > 0 else "")
        return (f"{super().extra_repr()}, half_life={self.half_life}, eps={self.eps}, "
                f"transition_weight={self.transition_weight}{extra}, counts={self.counts}")

    def prepare(self, inputs: ModelInputs) -> None:
        """Popularity and last→next transition distributions of the training period (and, with
        ``counts="visible"``, the index that counts them per sample as of its query time)."""
        if self.counts == "visible":
            if inputs.visible is None:
                raise ValueError("UserHistory(counts='visible') needs inputs built with "
                                 "InputSpec(visible_counts=True): "
                                 "build_inputs(split, UserHistory.input_spec(**kwargs))")
            self.visible = inputs.visible
        st = inputs.stats
        counts = st.poi_count.numpy().astype(np.float64)                       # (P,)
        pop = counts / counts.sum() if counts.sum() > 0 else np.full(self.num_pois, 1.0 / self.num_pois)
        self.pop = torch.from_numpy(pop)
        # transitions as CSR rows (trans_src is sorted), row-normalised
        src, col, n = st.trans_src.numpy(), st.trans_dst.numpy(), st.trans_count.numpy()
        ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=self.num_pois))])  # (P+1,)
        val = n / np.bincount(src, weights=n, minlength=self.num_pois)[src]
        self.trans_ptr = torch.from_numpy(ptr.astype(np.int64))
        self.trans_col = torch.from_numpy(col.astype(np.int64))
        self.trans_val = torch.from_numpy(val.astype(np.float64))

    def _memory(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The visible check-ins ``poi, ts, tz`` ``(B, H+L)`` and their decay weights ``(B, H+L)``
        float64 (0 at padding; 1 for the last prefix check-in)."""
        poi = torch.cat([batch.hist_poi, batch.poi], 1)                  # (B, H+L)
        ts = torch.cat([batch.hist_ts, batch.ts], 1)                     # (B, H+L)
        tz = torch.cat([batch.hist_tz, batch.tz], 1)                     # (B, H+L)
        mask = torch.cat([batch.hist_mask, batch.mask], 1)               # (B, H+L)
        t_ref = batch.ts.gather(1, (batch.length - 1)[:, None])          # (B, 1) latest visible time
        w = mask.to(torch.float64)                                       # (B, H+L)
        if self.half_life is not None:
            age = (t_ref - ts).clamp(min=0).to(torch.float64) / SECONDS_PER_DAY     # (B, H+L) days
            w = w * torch.exp2(-age / self.half_life)
        return poi, ts, tz, w

    def personal(self, batch: Batch, memory: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        """``(B, P)`` float64: the recency-weighted distribution of the user's visible visits
        (``memory``: :meth:`_memory` of ``batch`` when the caller has it)."""
        poi, _, _, w = self._memory(batch) if memory is None else memory
        pers = torch.zeros(len(batch), self.num_pois, dtype=torch.float64, device=poi.device)
        pers.scatter_add_(1, poi, w)                                     # (B, P)
        # the last prefix check-in has age 0 and weight 1, so every row sum is >= 1
        return pers / pers.sum(1, keepdim=True)

    def routine(self, batch: Batch, memory: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        """``(B, P)`` float64: the decayed visits weighted by closeness to the query's time of day."""
        poi, ts, tz, w = self._memory(batch) if memory is None else memory
        q_ts, q_tz = batch.query_time()                                   # (B,), (B,)
        w = w * time_of_day_kernel(ts, tz, q_ts, q_tz, self.time_sigma, self.weekend_factor)  # (B, H+L)
        out = torch.zeros(len(batch), self.num_pois, dtype=torch.float64, device=poi.device)
        out.scatter_add_(1, poi, w)                                      # (B, P)
        return normalise_rows(out)

    def transitions(self, last: torch.Tensor) -> torch.Tensor:
        """``(B, P)`` float64: training transition distribution out of each POI in ``last`` ``(B,)``."""
        start, end = self.trans_ptr[last], self.trans_ptr[last + 1]     # (B,), (B,)
        n = end - start                                                  # (B,) out-degree
        row = torch.repeat_interleave(torch.arange(len(last), device=last.device), n)  # (E_b,)
        first = torch.repeat_interleave(torch.cumsum(n, 0) - n, n)       # (E_b,) offset of each row
        pos = torch.repeat_interleave(start, n) + torch.arange(len(row), device=last.device) - first
        out = torch.zeros(len(last), self.num_pois, dtype=torch.float64, device=last.device)
        out[row, self.trans_col[pos]] = self.trans_val[pos]
        return out

    def visible_popularity(self, q_ts: torch.Tensor) -> torch.Tensor:
        """``(B, P)`` float64 popularity distribution as of each query time ``(B,)`` (``counts="visible"``;
        uniform where nothing is visible yet)."""
        uniform = torch.full((self.num_pois,), 1.0 / self.num_pois, dtype=torch.float64)
        return normalise_rows(self.visible.popularity(q_ts.cpu()), uniform)

    def visible_transitions(self, last: torch.Tensor, q_ts: torch.Tensor) -> torch.Tensor:
        """``(B, P)`` float64 transition distribution out of each POI in ``last`` ``(B,)`` as of each
        query time (``counts="visible"``; a zero row where no transition is visible)."""
        return normalise_rows(self.visible.transitions(last.cpu(), q_ts.cpu()))

    def score(self, batch: Batch) -> torch.Tensor:
        memory = self._memory(batch)             # shared by the personal and routine terms
        s = (1 - self.eps - self.transition_weight - self.time_weight) * self.personal(batch, memory)  # (B, P)
        if self.visible is None:
            s = s + self.eps * self.pop.unsqueeze(0)
            if self.transition_weight > 0:
                s = s + self.transition_weight * self.transitions(batch.last_poi)
        else:  # counts="visible": statistics as of each sample's query time
            q_ts, _ = batch.query_time()
            s = s + self.eps * self.visible_popularity(q_ts).to(s.device)
            if self.transition_weight > 0:
                s = s + self.transition_weight * self.visible_transitions(batch.last_poi, q_ts).to(s.device)
        if self.time_weight > 0:
            s = s + self.time_weight * self.routine(batch, memory)
        return s.float()

    def loss(self, batch: Batch) -> torch.Tensor:
        raise TypeError("UserHistory is not trainable (trainable=False): build it from its inputs, never call loss()")
