"""Time features: local calendar indices and learnable time / interval encodings.

Local time is ``ts + tz_offset_min * 60`` (UTC seconds shifted to the venue's clock). Day 0 of
the epoch, 1970-01-01, was a **Thursday**, so with Monday = 0 the weekday of a local second
``s`` is ``(s // 86400 + 3) % 7``. Every index function accepts numpy arrays or torch tensors
(integer seconds) and returns the same kind; floor division keeps times before 1970 right.
"""
from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)

SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400
HOURS_PER_WEEK = 168
N_TIME_BUCKETS = 24  # time_bucket: log2 minutes, 0 .. ~16 years
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def local_seconds(ts: ArrayT, tz_offset_min: ArrayT | int) -> ArrayT:
    """Local wall-clock seconds since the epoch: ``ts + tz_offset_min * 60`` (int64)."""
    if isinstance(ts, Tensor):
        tz = tz_offset_min if isinstance(tz_offset_min, Tensor) else torch.as_tensor(tz_offset_min)
        return ts.long() + tz.long() * 60
    return np.asarray(ts, dtype=np.int64) + np.asarray(tz_offset_min, dtype=np.int64) * 60


def day_of_week(ts: ArrayT, tz_offset_min: ArrayT | int) -> ArrayT:
    """Local weekday, Monday = 0 ... Sunday = 6."""
    return weekday_of_local(local_seconds(ts, tz_offset_min))


def weekday_of_local(local_s: ArrayT) -> ArrayT:
    """Weekday (Monday = 0) of local seconds from :func:`local_seconds`."""
    return (local_s // SECONDS_PER_DAY + _EPOCH_WEEKDAY) % 7


def hour_of_day(ts: ArrayT, tz_offset_min: ArrayT | int) -> ArrayT:
    """Local hour, 0..23."""
    return (local_seconds(ts, tz_offset_min) % SECONDS_PER_DAY) // SECONDS_PER_HOUR


def hour_of_week(ts: ArrayT, tz_offset_min: ArrayT | int) -> ArrayT:
    """Local hour of the week, 0..167: Monday 00:00-00:59 is 0, Sunday 23:00-23:59 is 167."""
    s = local_seconds(ts, tz_offset_min)            # once: a served request calls this 3-4 times
    return weekday_of_local(s) * 24 + (s % SECONDS_PER_DAY) // SECONDS_PER_HOUR


def day_fraction(ts: Tensor, tz_offset_min: Tensor) -> Tensor:
    """Local time of day as a float fraction in ``[0, 1)`` (midnight = 0)."""
    return (local_seconds(ts, tz_offset_min) % SECONDS_PER_DAY).float() / float(SECONDS_PER_DAY)


def time_of_week_hours(ts: ArrayT, tz_offset_min: ArrayT | int) -> ArrayT:
    """Local time of the week as float hours in ``[0, 168)`` (the input :class:`Time2Vec` expects)."""
    s = local_seconds(ts, tz_offset_min)
    week = 7 * SECONDS_PER_DAY
    r = (s + _EPOCH_WEEKDAY * SECONDS_PER_DAY) % week  # seconds since local Monday 00:00
    return r.float() / 3600.0 if isinstance(r, Tensor) else r.astype(np.float64) / 3600.0


class Time2Vec(nn.Module):
    r"""Learnable periodic encoding of a scalar time (Time2Vec, `Kazemi et al. 2019
    <https://arxiv.org/abs/1907.05321>`_).

    .. math::
        \mathbf{t2v}(\tau)_0 = \omega_0 \tau + \varphi_0, \qquad
        \mathbf{t2v}(\tau)_i = \sin(\omega_i \tau + \varphi_i), \quad 1 \le i < d

    The periodic frequencies start at :math:`2\pi / p_i` with periods :math:`p_i` spaced
    geometrically over ``[min_period, max_period]`` (in the units of :math:`\tau`), so that with
    :math:`\tau` = :func:`time_of_week_hours` the defaults cover 1 h to one week and include
    the day and week rhythms from the first step; all frequencies and phases are learned.

    Args:
        dim: output size :math:`d` (>= 2: one linear and ``d - 1`` periodic channels).
        min_period, max_period: initial period range (same unit as :math:`\tau`).

    Shapes:
        - input: :math:`\tau` ``(*)`` float
        - output: ``(*, dim)``
    """

    def __init__(self, dim: int, min_period: float = 1.0, max_period: float = 168.0) -> None:
        super().__init__()
        if dim < 2:
            raise ValueError(f"Time2Vec needs dim >= 2, got {dim}")
        if not 0 < min_period <= max_period:
            raise ValueError(f"need 0 < min_period <= max_period, got {min_period}, {max_period}")
        self.dim, self.min_period, self.max_period = dim, float(min_period), float(max_period)
        self.weight = nn.Parameter(torch.empty(dim))  # omega
        self.bias = nn.Parameter(torch.empty(dim))  # phi
        self.reset_parameters()

    def reset_parameters(self) -> None:
        periods = torch.logspace(math.log10(self.min_period), math.log10(self.max_period), self.dim - 1)
        with torch.no_grad():
            # linear channel: tau / max_period keeps it O(1) over the input range
            self.weight[0] = 1.0 / self.max_period
            self.weight[1:] = 2 * math.pi / periods
            self.bias.zero_()

    def forward(self, tau: Tensor) -> Tensor:
        z = tau.float().unsqueeze(-1) * self.weight + self.bias  # (*, dim)
        return torch.cat([z[..., :1], torch.sin(z[..., 1:])], dim=-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim}, min_period={self.min_period:g}, max_period={self.max_period:g})"


def log_bucket(x: ArrayT, num_buckets: int, min_value: float, max_value: float) -> ArrayT:
    """Bucket non-negative values on a log scale: ``0`` for ``x <= min_value``, ``num_buckets - 1``
    for ``x >= max_value``, evenly spaced in ``log(x)`` in between (a value on an edge goes to
    the upper bucket). NaN and negatives go to 0.

    Shapes: ``(*)`` -> ``(*)`` int64 in ``[0, num_buckets)``.
    """
    if num_buckets < 2 or not 0 < min_value < max_value:
        raise ValueError(f"need num_buckets >= 2 and 0 < min_value < max_value, got "
                         f"{num_buckets}, {min_value}, {max_value}")
    span = math.log(max_value) - math.log(min_value)
    # +1e-9 puts values on a bucket edge in the upper bucket despite log round-off (log 1 / log 100 * 2).
    eps = 1e-9
    if isinstance(x, Tensor):
        xf = torch.nan_to_num(x.double(), nan=0.0).clamp(min=min_value, max=max_value)
        b = ((xf.log() - math.log(min_value)) / span * (num_buckets - 1) + eps).floor().long()
        return b.clamp(0, num_buckets - 1)
    xf = np.clip(np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0), min_value, max_value)
    b = np.floor((np.log(xf) - math.log(min_value)) / span * (num_buckets - 1) + eps).astype(np.int64)
    return np.clip(b, 0, num_buckets - 1)


def log2_bucket(x: Tensor, num_buckets: int) -> Tensor:
    """One bucket per doubling: ``floor(log2(1 + x))`` clamped to ``[0, num_buckets)``.

    ``x`` is a non-negative float tensor in the caller's unit (the unit sets the first bucket's
    width). Unlike :func:`log_bucket` there is no upper range to choose, only a bucket count.

    Shapes: ``(*)`` -> ``(*)`` int64.
    """
    return torch.log2(1.0 + x).floor().long().clamp(0, num_buckets - 1)


def time_bucket(dt_s: Tensor) -> Tensor:
    """``(*)`` int64 :func:`log2_bucket` of an interval in minutes (``dt_s`` in seconds; negative
    intervals count as 0): 0 s -> 0, 1 min -> 1, 1 h -> 5, up to :data:`N_TIME_BUCKETS` - 1."""
    minutes = dt_s.clamp(min=0).double() / 60.0
    return log2_bucket(minutes, N_TIME_BUCKETS)


class IntervalEncoding(nn.Module):
    r"""Encode a non-negative gap (time in seconds, distance in km, ...).

    ``mode="bucket"``: :func:`log_bucket` then a learned embedding table.
    ``mode="continuous"``: the functional encoding of TGAT (`Xu et al. 2020
    <https://arxiv.org/abs/2002.07962>`_) on the log-scaled gap,

    .. math::
        \phi(\Delta) = \cos(\boldsymbol{\omega}\, \log(1 + \Delta / \Delta_{\min}) + \boldsymbol{\varphi}),

    with learnable frequencies initialised to :math:`\omega_i = 10^{-2i/(d-1)}` (1 down to 0.01)
    and zero phases. Negative gaps are clamped to 0 (callers compute gaps of
    time-ordered events).

    Args:
        dim: output size.
        mode: ``"bucket"`` or ``"continuous"``.
        num_buckets: buckets in bucket mode.
        min_value, max_value: gap range of the buckets (and the continuous scale ``min_value``).

    Shapes:
        - input: gaps ``(*)``
        - output: ``(*, dim)``
    """

    def __init__(self, dim: int, mode: str = "bucket", num_buckets: int = 32,
                 min_value: float = 60.0, max_value: float = 30 * 86400.0) -> None:
        super().__init__()
        if mode not in ("bucket", "continuous"):
            raise ValueError(f"mode must be 'bucket' or 'continuous', got {mode!r}")
        log_bucket(np.zeros(1), num_buckets, min_value, max_value)  # validates the range
        self.dim, self.mode, self.num_buckets = dim, mode, num_buckets
        self.min_value, self.max_value = float(min_value), float(max_value)
        if mode == "bucket":
            self.embedding = nn.Embedding(num_buckets, dim)
        else:
            self.weight = nn.Parameter(torch.empty(dim))
            self.bias = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.mode == "bucket":
            self.embedding.reset_parameters()
            return
        with torch.no_grad():
            self.weight.copy_(torch.logspace(0, -2, self.dim))
            self.bias.zero_()

    def forward(self, gap: Tensor) -> Tensor:
        if self.mode == "bucket":
            return self.embedding(log_bucket(gap, self.num_buckets, self.min_value, self.max_value))
        g = torch.log1p(torch.nan_to_num(gap.float(), nan=0.0).clamp(min=0) / self.min_value)  # (*)
        return torch.cos(g.unsqueeze(-1) * self.weight + self.bias)  # (*, dim)

    def __repr__(self) -> str:
        extra = f", num_buckets={self.num_buckets}" if self.mode == "bucket" else ""
        return (f"{type(self).__name__}({self.dim}, mode={self.mode!r}{extra}, "
                f"range=[{self.min_value:g}, {self.max_value:g}])")


class TimeIntervalEncoding(IntervalEncoding):
    """:class:`IntervalEncoding` of time gaps in **seconds** (default range 1 minute to 30 days)."""

    def __init__(self, dim: int, mode: str = "bucket", num_buckets: int = 32,
                 min_value: float = 60.0, max_value: float = 30 * 86400.0) -> None:
        super().__init__(dim, mode, num_buckets, min_value, max_value)


class HourOfWeekEmbedding(nn.Module):
    """A learned vector per local hour of the week (168 slots; index from :func:`hour_of_week`).

    Shapes:
        - input: ``(*)`` int64 in ``[0, 168)``
        - output: ``(*, dim)``
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.embedding = nn.Embedding(HOURS_PER_WEEK, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()

    def forward(self, how: Tensor) -> Tensor:
        return self.embedding(how.long())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim})"
