"""Sequence encoders: length buckets give the unbucketed outputs at real steps, zeros at pads."""
from __future__ import annotations

import pytest
import torch

from stgnn.models.encoders import SEQ_ENCODERS, by_length, make_sequence_encoder


def _batch(lengths: list[int], L: int = 16, D: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(len(lengths), L, D, generator=g)
    mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    return x, mask


@pytest.mark.parametrize("kind", SEQ_ENCODERS)
def test_buckets_match_the_padded_computation(kind: str) -> None:
    torch.manual_seed(0)
    enc = make_sequence_encoder(kind, 8, heads=2, layers=2, dropout=0.1).eval()
    x, mask = _batch([1, 2, 3, 5, 8, 9, 16, 4, 1, 13])
    out = enc(x, mask)                                                   # bucketed
    ref = enc._forward(x, mask) if hasattr(enc, "_forward") else x * mask[..., None]  # one padded call
    assert out.shape == x.shape
    torch.testing.assert_close(out, ref * mask[..., None], rtol=1e-5, atol=1e-5)
    assert out[~mask].abs().max() == 0


def test_by_length_cuts_each_bucket_to_its_longest_sample() -> None:
    seen: list[tuple[int, int]] = []

    def fn(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape[:2]))
        assert mask.all(dim=0)[0] and mask[:, -1].any()                    # no all-pad column at the end
        return x + 1

    x, mask = _batch([1, 1, 2, 3, 4, 5, 16])
    out = by_length(fn, x, mask)
    assert seen == [(2, 1), (1, 2), (2, 4), (1, 5), (1, 16)]            # buckets (0,1], (1,2], (2,4], ...
    torch.testing.assert_close(out[mask], x[mask] + 1)
    assert out[~mask].abs().max() == 0


def test_gradients_flow_through_the_buckets() -> None:
    enc = make_sequence_encoder("transformer", 8)
    x, mask = _batch([2, 7, 16])
    x.requires_grad_(True)
    enc(x, mask).sum().backward()
    assert x.grad is not None and x.grad[mask].abs().sum() > 0
    assert x.grad[~mask].abs().max() == 0                                # pads never reach the output
    assert all(p.grad is not None for n, p in enc.named_parameters() if not n.startswith("pos"))


def test_left_padding_is_refused() -> None:
    x, mask = _batch([3, 4])
    with pytest.raises(ValueError, match="right-padded"):
        by_length(lambda a, m: a, x, mask.flip(1))


@pytest.mark.parametrize("kind", ["transformer", "gru"])
def test_autocast_and_empty_batches(kind: str) -> None:
    enc = make_sequence_encoder(kind, 8).eval()
    x, mask = _batch([3, 9, 16])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x, mask)
    assert out.shape == x.shape and torch.isfinite(out.float()).all()
    empty = enc(x[:0], mask[:0])
    assert empty.shape == (0, 16, 8)
