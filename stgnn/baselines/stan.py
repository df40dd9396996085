"""STAN: spatio-temporal interval-aware self-attention + an interval-aware matching layer.

Luo, Liu & Liu, "STAN: Spatio-Temporal Attention Network for Next Location Recommendation",
WWW 2021 (https://arxiv.org/abs/2102.04095); reference code:
yingtaoluo/Spatial-Temporal-Attention-Network-for-POI-Recommendation.

For a sequence of ``M`` check-ins (user ``u``, POIs ``l_i``, times ``t_i``):

    e_i      = E_user[u] + E_poi[l_i] + E_hour[hour_of_week(t_i)]                 (B, M, d)
    D_ij     = I_s(dist(l_i, l_j)) + I_t(|t_i - t_j|)                              (B, M, M)
    h        = softmax_j(Q e . (K e)^T + D) V e         (self-attention, padded keys masked)
    N_ci     = I_s(dist(c, l_i)) + I_t(t_target - t_i)  for every candidate POI c  (B, P, M)
    score(c) = sum_i w_i * (E_poi[c] . h_i) * N_ci                                  (B, P)

``I_s``/``I_t`` are STAN's *linearly interpolated interval embeddings*: two learned vectors
``v_lo, v_hi`` per kind, ``I(x) = sum_k [v_lo,k (hi - x) + v_hi,k (x - lo)] / (hi - lo)``.
The original materialises ``(B, M, P, d)`` of them and then sums over ``d``; the sum commutes
with the interpolation, so we compute the same numbers from the summed vectors and never
build the ``d`` axis. The matching layer is evaluated in chunks of candidates (with activation
checkpointing while training), so full scoring over all ``P`` POIs needs
``O(B * M * chunk)`` memory: ``P ~ 5,000, B = 256`` fits in a few hundred MB.

What differs from the original, and why:

* **Sequence.** STAN reads a user's whole recent sequence (up to 100 check-ins). We read the
  current trajectory prefix, preceded by the user's most recent ``history`` visible check-ins
  from ``batch.hist_*`` (train-period only under the default protocol), truncated to
  ``max_len`` positions. ``history=0`` gives the trajectory-only variant.
* **Target time.** The original's candidate time interval is from each check-in to the time
  of the target (``uses_target_time = True``). Under ``target_time: hidden`` the batch carries
  no target time, and we measure it to the last prefix check-in instead, i.e. assume the next
  visit follows immediately: no information about the target leaks in.
* **Loss.** The original uses cross-entropy over the target and 10 sampled negatives
  ("balanced sampler"); we use full softmax cross-entropy over all POIs (exact at ~5k POIs,
  the same loss as every other model here).
* **Position weights.** The matching layer's ``Linear(max_len, 1)`` over sequence positions is
  kept, but indexed from the *most recent* position backwards so that right padding does not
  change which weight a check-in gets. The self-attention softmax is masked properly (the
  original applies the mask after the softmax, so padded keys still take probability mass).
* **Interval bounds.** ``lo = 0`` and ``hi`` from the training period (:meth:`STAN.prepare`):
  ``hi_s`` = twice the largest distance of a training POI from their centroid (an upper
  bound of every pairwise distance), ``hi_t`` = the longest training trajectory span plus one
  day. Intervals are clamped to ``[lo, hi]``, which the original never needed because its
  bounds were the data's own min/max.
* **Distances** are great-circle kilometres computed from unit vectors (a float64 dot product
  per pair, exact to centimetres), times in hours.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from stgnn.data.batch import Batch
from stgnn.features.space import EARTH_RADIUS_KM, unit_vectors
from stgnn.features.time import HOURS_PER_WEEK, SECONDS_PER_HOUR, hour_of_week
from stgnn.inputs import ModelInputs
from stgnn.models.base import Recommender


def great_circle_km(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distances (km) between unit vectors ``a (..., M, 3)`` and ``b (..., N, 3)`` -> ``(..., M, N)``.

    Squared chord from a float64 dot product, then ``2 R asin(chord / 2)``: the great-circle
    distance, as haversine gives, at one matrix product per batch.
    """
    # float64 only where it matters: 2 - 2 a.b cancels for nearby points (float32 would be off
    # by kilometres); the result keeps full relative precision in float32 for sqrt/asin.
    chord2 = (2.0 - 2.0 * (a @ b.transpose(-1, -2))).float().clamp(min=0.0)
    return 2.0 * EARTH_RADIUS_KM * torch.asin((chord2.sqrt() / 2).clamp(max=1.0))


class IntervalEmbedding(nn.Module):
    """STAN's linear interpolation between a lower and an upper interval embedding, summed.

    ``I(x) = sum_k [lo_k (hi - x) + up_k (x - lo)] / (hi - lo)`` for ``x`` clamped to
    ``[lo, hi]`` (the bounds are buffers set from training data).

    Shapes: ``x (...)`` -> ``(...)``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.v_lo = nn.Parameter(torch.empty(dim))
        self.v_hi = nn.Parameter(torch.empty(dim))
        self.register_buffer("bounds", torch.tensor([0.0, 1.0]))  # (lo, hi)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # entries ~N(0, 1/d): the summed scalar the model uses starts ~N(0, 1)
        nn.init.normal_(self.v_lo, std=self.v_lo.numel() ** -0.5)
        nn.init.normal_(self.v_hi, std=self.v_hi.numel() ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.bounds[0], self.bounds[1]
        x = torch.minimum(torch.maximum(x, lo), hi)
        return (self.v_lo.sum() * (hi - x) + self.v_hi.sum() * (x - lo)) / (hi - lo)

    def extra_repr(self) -> str:
        return f"dim={self.v_lo.numel()}, lo={self.bounds[0].item():g}, hi={self.bounds[1].item():g}"


def merge_history(batch: Batch, history: int, max_len: int) -> tuple[torch.Tensor, ...]:
    """The user's last ``history`` visible earlier check-ins followed by the prefix.

    Returns ``poi, ts, tz, mask`` each ``(B, M)``, right-padded, oldest first, keeping the
    ``max_len`` most recent positions (``M <= max_len``).
    """
    if history > 0:
        hm = batch.hist_mask.clone()
        # keep only the `history` most recent real history positions (they are left-aligned)
        n = hm.sum(1, keepdim=True)
        rank = torch.cumsum(hm.long(), 1) - 1
        hm &= rank >= (n - history)
        poi = torch.cat((batch.hist_poi, batch.poi), 1)
        ts = torch.cat((batch.hist_ts, batch.ts), 1)
        tz = torch.cat((batch.hist_tz, batch.tz), 1)
        mask = torch.cat((hm, batch.mask), 1)
    else:
        poi, ts, tz, mask = batch.poi, batch.ts, batch.tz, batch.mask
    # compact real positions to the left (stable), then keep the last max_len of them
    length = mask.sum(1)
    keep_from = (length - max_len).clamp(min=0)
    rank = torch.cumsum(mask.long(), 1) - 1
    mask = mask & (rank >= keep_from[:, None])
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    width = max(int(mask.sum(1).max()), 1)
    order = order[:, :width]
    return tuple(torch.gather(x, 1, order) for x in (poi, ts, tz, mask))


class STAN(Recommender):
    """STAN with chunked, memory-bounded full scoring over all POIs.

    Args:
        num_users, num_pois: id-space sizes of the split.
        dim: embedding size ``d``.
        history: earlier (train-period) check-ins of the user prepended to the prefix.
        max_len: longest sequence read; also the number of matching position weights.
        dropout: dropout on the joint input embedding.
        chunk: candidate POIs scored per chunk of the matching layer.

    Shapes:
        ``score(batch)``: ``(B, P)``; peak extra memory ``O(B * max_len * chunk)``.

    Build with :meth:`from_inputs` (:meth:`prepare` sets the POI coordinates and interval bounds).
    """

    uses_target_time = True

    def __init__(self, num_users: int, num_pois: int, *, dim: int = 64, history: int = 32,
                 max_len: int = 64, dropout: float = 0.1, chunk: int = 1024) -> None:
        super().__init__(num_users, num_pois)
        self.dim, self.history, self.max_len, self.chunk = dim, history, max_len, chunk
        self.emb_user = nn.Embedding(num_users, dim)
        self.emb_poi = nn.Embedding(num_pois, dim)
        self.emb_hour = nn.Embedding(HOURS_PER_WEEK, dim)
        self.space = IntervalEmbedding(dim)
        self.time = IntervalEmbedding(dim)
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.pos_weight = nn.Parameter(torch.empty(max_len))
        self.drop = nn.Dropout(dropout)
        # POI unit vectors (P, 3) float64: fixed metadata, set by prepare
        self.register_buffer("poi_xyz", torch.zeros(num_pois, 3, dtype=torch.float64))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in (self.emb_user, self.emb_poi, self.emb_hour):
            nn.init.normal_(emb.weight, std=self.dim ** -0.5)
        self.space.reset_parameters()
        self.time.reset_parameters()
        for lin in (self.query, self.key, self.value):
            lin.reset_parameters()
        nn.init.constant_(self.pos_weight, 1.0 / self.max_len)

    def prepare(self, inputs: ModelInputs) -> None:
        """POI coordinates, and interval bounds from the training period (``part == 0``)."""
        lat, lon = inputs.poi_lat.numpy(), inputs.poi_lon.numpy()
        xyz = torch.from_numpy(unit_vectors(np.nan_to_num(lat), np.nan_to_num(lon)))  # (P, 3)
        self.poi_xyz.copy_(xyz)
        pois = np.flatnonzero(inputs.stats.poi_count.numpy() > 0)               # training POIs, sorted
        if len(pois) == 0:
            raise ValueError(f"STAN: the inputs ({inputs.source.get('split', '?')}) hold no training check-ins")
        centre = xyz[torch.from_numpy(pois)].mean(0, keepdim=True)
        centre = centre / centre.norm()
        radius = float(great_circle_km(xyz[torch.from_numpy(pois)], centre).max())
        span_h = float(inputs.stats.longest_trajectory_s) / SECONDS_PER_HOUR
        self.space.bounds.copy_(torch.tensor([0.0, max(2.0 * radius, 1e-3)]))
        self.time.bounds.copy_(torch.tensor([0.0, span_h + 24.0]))

    # ------------------------------------------------------------------ forward pieces
    def encode(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """Self-attention over the sequence.

        Returns ``h (B, M, d)`` (zero at padding), ``poi, mask (B, M)`` the sequence read,
        ``w (B, M)`` the matching weight of each position (0 at padding) and ``t_bias (B, M)``
        the time-interval term from each check-in to the reference time.
        """
        poi, ts, tz, mask = merge_history(batch, self.history, self.max_len)  # (B, M) each
        B, M = poi.shape
        user = batch.user[:, None].expand(B, M)
        joint = self.emb_user(user) + self.emb_poi(poi) + self.emb_hour(hour_of_week(ts, tz))
        joint = self.drop(joint)                                                  # (B, M, d)
        xyz = self.poi_xyz[poi]                                                   # (B, M, 3)
        ds = great_circle_km(xyz, xyz)                                            # (B, M, M)
        dt = (ts[:, :, None] - ts[:, None, :]).abs().float() / SECONDS_PER_HOUR    # (B, M, M)
        bias = self.space(ds) + self.time(dt)                                     # (B, M, M)
        logits = self.query(joint) @ self.key(joint).transpose(1, 2) + bias       # (B, M, M)
        logits = logits.masked_fill(~mask[:, None, :], float("-inf"))
        h = torch.softmax(logits, -1) @ self.value(joint) * mask[..., None]       # (B, M, d)
        length = mask.sum(1)                                                      # (B,)
        back = (length[:, None] - 1 - torch.arange(M, device=poi.device)).clamp(min=0)  # (B, M)
        w = self.pos_weight[back] * mask                                          # (B, M)
        last_ts = ts.gather(1, (length - 1)[:, None]).squeeze(1)                  # (B,)
        # no target time in the batch (target_time: hidden): measure to the last check-in
        ref_ts = batch.target_ts if batch.target_time_known else last_ts
        dt_ref = (ref_ts[:, None] - ts).float().clamp(min=0) / SECONDS_PER_HOUR    # (B, M)
        t_bias = self.time(dt_ref) * mask                                         # (B, M)
        return h, poi, mask, w, t_bias

    def _match(self, h: torch.Tensor, seq_xyz: torch.Tensor, w: torch.Tensor, t_bias: torch.Tensor,
               mask: torch.Tensor, cand_emb: torch.Tensor, cand_xyz: torch.Tensor) -> torch.Tensor:
        """Matching scores of ``C`` candidates: ``(B, C)``.

        ``h (B, M, d)``, ``seq_xyz (B, M, 3)``, ``w, t_bias, mask (B, M)``,
        ``cand_emb (C, d)``, ``cand_xyz (C, 3)``.
        """
        g = h @ cand_emb.t()                                                      # (B, M, C)
        ds = great_circle_km(seq_xyz, cand_xyz.expand(h.shape[0], -1, -1))       # (B, M, C)
        n = (self.space(ds) + t_bias[..., None]) * mask[..., None]                # (B, M, C)
        return (g * n * w[..., None]).sum(1)                                      # (B, C)

    def score(self, batch: Batch) -> torch.Tensor:
        h, poi, mask, w, t_bias = self.encode(batch)
        seq_xyz = self.poi_xyz[poi]                                               # (B, M, 3)
        out = []
        for c0 in range(0, self.num_pois, self.chunk):
            cand_emb = self.emb_poi.weight[c0:c0 + self.chunk]                    # (C, d)
            cand_xyz = self.poi_xyz[c0:c0 + self.chunk]                           # (C, 3)
            args = (h, seq_xyz, w, t_bias, mask, cand_emb, cand_xyz)
            if torch.is_grad_enabled() and self.training:
                # recompute each chunk in backward: memory O(B * M * chunk), not O(B * M * P)
                out.append(checkpoint(self._match, *args, use_reentrant=False))
            else:
                out.append(self._match(*args))
        return torch.cat(out, 1)                                                  # (B, P)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, dim={self.dim}, history={self.history}, "
                f"max_len={self.max_len}, chunk={self.chunk}")
