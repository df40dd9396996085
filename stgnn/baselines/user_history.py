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

Why this baseline: on NYC ~70% of test targets are revisits, so a well-tuned personal
frequency is a strong bar (close to GETNext's Acc@1) that every learned model must beat.

Leakage: the personal term is computed from the batch alone, i.e. from exactly what the loader
lets the sample see; the popularity and transition statistics come from ``part == 0``
check-ins only (:attr:`ModelInputs.stats <stgnn.inputs.ModelInputs>`, taken in
:meth:`UserHistory.prepare`), all before any val/test target. The target time
is never read (``uses_target_time = False``).
"""
from __future__ import annotations

import numpy as np
import torch

from stgnn.data.batch import Batch
from stgnn.features.time import SECONDS_PER_DAY
from stgnn.inputs import ModelInputs
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

    Shapes:
        ``score(batch)``: ``(B, P)`` float32; computed in float64 so that weights decayed over
        months do not underflow before they are normalised.
    """

    trainable = False

    def __init__(self, num_users: int, num_pois: int, *, half_life: float | None = 60.0,
                 eps: float = 1e-3, transition_weight: float = 0.0) -> None:
        super().__init__(num_users, num_pois)
        if half_life is not None and half_life <= 0:
            raise ValueError(f"half_life must be > 0 days or None, got {half_life}")
        if not (0 <= eps and 0 <= transition_weight and eps + transition_weight < 1):
            raise ValueError(f"need eps >= 0, transition_weight >= 0 and eps + transition_weight < 1, "
                             f"got eps={eps}, transition_weight={transition_weight}")
        self.half_life, self.eps, self.transition_weight = half_life, eps, transition_weight
        self.register_buffer("pop", torch.full((num_pois,), 1.0 / num_pois, dtype=torch.float64))  # (P,)
        # training transitions as CSR rows: trans_ptr (P+1,), trans_col (E,), trans_val (E,)
        self.register_buffer("trans_ptr", torch.zeros(num_pois + 1, dtype=torch.int64))
        self.register_buffer("trans_col", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("trans_val", torch.zeros(0, dtype=torch.float64))

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, half_life={self.half_life}, eps={self.eps}, "
                f"transition_weight={self.transition_weight}")

    def prepare(self, inputs: ModelInputs) -> None:
        """Popularity and last→next transition distributions of the training period."""
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

    def personal(self, batch: Batch) -> torch.Tensor:
        """``(B, P)`` float64: the recency-weighted distribution of the user's visible visits."""
        poi = torch.cat([batch.hist_poi, batch.poi], 1)                  # (B, H+L)
        ts = torch.cat([batch.hist_ts, batch.ts], 1)                     # (B, H+L)
        mask = torch.cat([batch.hist_mask, batch.mask], 1)               # (B, H+L)
        t_ref = batch.ts.gather(1, (batch.length - 1)[:, None])          # (B, 1) latest visible time
        w = mask.to(torch.float64)                                       # (B, H+L)
        if self.half_life is not None:
            age = (t_ref - ts).clamp(min=0).to(torch.float64) / SECONDS_PER_DAY     # (B, H+L) days
            w = w * torch.exp2(-age / self.half_life)
        pers = torch.zeros(len(batch), self.num_pois, dtype=torch.float64, device=poi.device)
        pers.scatter_add_(1, poi, w)                                     # (B, P)
        # the last prefix check-in has age 0 and weight 1, so every row sum is >= 1
        return pers / pers.sum(1, keepdim=True)

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

    def score(self, batch: Batch) -> torch.Tensor:
        s = (1 - self.eps - self.transition_weight) * self.personal(batch)  # (B, P)
        s = s + self.eps * self.pop.unsqueeze(0)
        if self.transition_weight > 0:
            s = s + self.transition_weight * self.transitions(batch.last_poi)
        return s.float()

    def loss(self, batch: Batch) -> torch.Tensor:
        raise TypeError("UserHistory is not trainable (trainable=False): build it from its inputs, never call loss()")
