import calendar
import math

import numpy as np
import pytest
import torch

from stgnn.features.time import (HourOfWeekEmbedding, IntervalEncoding, Time2Vec, TimeIntervalEncoding, day_fraction,
                                 day_of_week, hour_of_day, hour_of_week, log_bucket, time_bucket, time_of_week_hours)


def utc(*args) -> int:
    return calendar.timegm(args)


# (UTC time, tz offset minutes, expected local hour of week); Monday 00:00 = 0.
KNOWN = [
    (utc(1970, 1, 1, 0, 0, 0), 0, 3 * 24),             # the epoch was a Thursday
    (utc(2012, 4, 3, 18, 0, 9), -240, 1 * 24 + 14),    # Tue 14:00:09 in New York (EDT)
    (utc(2023, 12, 31, 15, 0, 0), 540, 0),             # Mon 2024-01-01 00:00 in Tokyo
    (utc(2012, 4, 9, 2, 0, 0), -300, 6 * 24 + 21),     # Monday 02:00 UTC is Sunday 21:00 at UTC-5
    (utc(1969, 12, 31, 23, 30, 0), 0, 2 * 24 + 23),    # before the epoch: Wednesday 23:30
    (utc(2024, 3, 3, 23, 59, 59), 0, 167),             # Sunday 23:59:59 is the last hour
]


@pytest.mark.parametrize("ts,tz,how", KNOWN)
def test_hour_of_week_known_dates(ts, tz, how):
    assert int(hour_of_week(np.array([ts]), np.array([tz]))[0]) == how
    assert int(hour_of_week(torch.tensor([ts]), torch.tensor([tz]))[0]) == how


def test_day_and_hour_numpy_matches_torch():
    ts = np.array([k[0] for k in KNOWN], dtype=np.int64)
    tz = np.array([k[1] for k in KNOWN], dtype=np.int32)
    np.testing.assert_array_equal(day_of_week(ts, tz), day_of_week(torch.from_numpy(ts), torch.from_numpy(tz)).numpy())
    np.testing.assert_array_equal(hour_of_day(ts, tz), [0, 14, 0, 21, 23, 23])
    np.testing.assert_array_equal(day_of_week(ts, tz), [3, 1, 0, 6, 2, 6])


def test_time_of_week_hours_is_fractional():
    ts, tz = KNOWN[1][0], KNOWN[1][1]
    assert time_of_week_hours(np.array([ts]), np.array([tz]))[0] == pytest.approx(38 + 9 / 3600)
    t = time_of_week_hours(torch.tensor([ts]), torch.tensor([tz]))
    assert float(t[0]) == pytest.approx(38 + 9 / 3600, abs=1e-4)


def test_time2vec_init_values_and_shapes():
    t2v = Time2Vec(8, min_period=1.0, max_period=168.0)
    tau = torch.tensor([[0.25, 42.0]])  # (1, 2)
    out = t2v(tau)
    assert out.shape == (1, 2, 8)
    assert out[0, 1, 0].item() == pytest.approx(42.0 / 168.0)                 # linear channel
    assert out[0, 0, 1].item() == pytest.approx(1.0, abs=1e-6)               # period 1: sin(2pi * 0.25)
    assert out[0, 1, -1].item() == pytest.approx(math.sin(2 * math.pi * 42 / 168), abs=1e-6)  # period 168
    out.sum().backward()
    assert t2v.weight.grad is not None and t2v.bias.grad is not None


def test_time2vec_reset_and_repr():
    t2v = Time2Vec(4)
    before = t2v.weight.detach().clone()
    with torch.no_grad():
        t2v.weight.add_(1.0)
        t2v.bias.add_(1.0)
    t2v.reset_parameters()
    assert torch.equal(t2v.weight, before) and torch.all(t2v.bias == 0)
    assert repr(t2v) == "Time2Vec(4, min_period=1, max_period=168)"
    with pytest.raises(ValueError):
        Time2Vec(1)


def test_log_bucket_edges():
    x = np.array([-5.0, 0.0, 1.0, 9.9, 10.0, 99.0, 100.0, 1e6, np.nan])
    expected = [0, 0, 0, 0, 1, 1, 2, 2, 0]  # 3 buckets, log-spaced over [1, 100]
    np.testing.assert_array_equal(log_bucket(x, 3, 1.0, 100.0), expected)
    np.testing.assert_array_equal(log_bucket(torch.tensor(x), 3, 1.0, 100.0).numpy(), expected)
    with pytest.raises(ValueError):
        log_bucket(x, 3, 0.0, 1.0)


def test_interval_encoding_bucket_uses_table_rows():
    enc = TimeIntervalEncoding(4, num_buckets=3, min_value=1.0, max_value=100.0)
    out = enc(torch.tensor([0.5, 50.0, 1e9]))
    w = enc.embedding.weight
    assert torch.equal(out, torch.stack([w[0], w[1], w[2]]))
    assert repr(enc) == "TimeIntervalEncoding(4, mode='bucket', num_buckets=3, range=[1, 100])"


def test_interval_encoding_continuous_values():
    enc = IntervalEncoding(3, mode="continuous", min_value=60.0)
    gap = torch.tensor([0.0, 60.0 * (math.e - 1), -10.0])  # log1p(gap / 60) = 0, 1, 0 (clamped)
    out = enc(gap)
    assert out.shape == (3, 3)
    assert torch.allclose(out[0], torch.ones(3)) and torch.allclose(out[2], torch.ones(3))
    # frequencies start at 1, 0.1, 0.01
    assert torch.allclose(out[1], torch.cos(torch.tensor([1.0, 0.1, 0.01])), atol=1e-6)
    with torch.no_grad():
        enc.weight.mul_(3)
    enc.reset_parameters()
    assert torch.allclose(enc(gap), out)
    with pytest.raises(ValueError):
        IntervalEncoding(3, mode="log")


def test_hour_of_week_embedding():
    emb = HourOfWeekEmbedding(5)
    how = hour_of_week(torch.tensor([KNOWN[1][0]]), torch.tensor([KNOWN[1][1]]))
    assert torch.equal(emb(how), emb.embedding.weight[38:39])
    assert repr(emb) == "HourOfWeekEmbedding(5)"
    emb.reset_parameters()


def test_time_bucket_hand_checked():
    # log2(1 + minutes): 0 s -> 0, 1 min -> 1, 3 min -> 2, 1 h -> floor(log2 61) = 5; negative -> 0
    assert time_bucket(torch.tensor([0, 60, 180, 3600, -60])).tolist() == [0, 1, 2, 5, 0]
    assert time_bucket(torch.tensor([10 ** 12])).item() == 23  # clamped to the last bucket


def test_day_fraction_is_local_time_of_day():
    # 1970-01-02 06:00 UTC at UTC-5 is 01:00 local; 23:59:59 UTC at UTC+0 is just below 1
    ts, tz = torch.tensor([86400 + 6 * 3600, 86399]), torch.tensor([-300, 0])
    assert day_fraction(ts, tz).tolist() == pytest.approx([1 / 24, 86399 / 86400])
