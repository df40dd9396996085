"""LSTM: padding/masking, history prepending, learns a planted sequence rule."""
from __future__ import annotations

import pytest
import torch
from modelkit import acc_mrr, ranks, tiny_split, train_steps

from stgnn.baselines import LSTM, Pop
from stgnn.baselines.lstm import _left_compact
from stgnn.data.batch import SampleLoader
from stgnn.registry import build_for_split


def test_left_compact() -> None:
    mask = torch.tensor([[True, False, True, True, False], [False, False, True, False, False]])
    x = torch.tensor([[1, 0, 2, 3, 0], [0, 0, 9, 0, 0]])
    m, y = _left_compact(mask, x)
    assert m.tolist() == [[True, True, True, False, False], [True, False, False, False, False]]
    assert y[m].tolist() == [1, 2, 3, 9]


@pytest.fixture(scope="module")
def cycle():
    """Every trajectory walks POIs p, p+1, p+2, ... (mod 10): the next POI is last + 1."""
    trajs = []
    for u in range(5):
        for d in range(16):
            start = (3 * d + u) % 10
            trajs.append((u, "train", [((start + i) % 10, d + 0.05 * i) for i in range(2 + (d + u) % 4)]))
        trajs.append((u, "test", [((u + i) % 10, 30 + 0.05 * i) for i in range(3)]))
    return tiny_split(trajs, num_users=5, num_pois=10)


@pytest.mark.parametrize("use_history", [False, True])
def test_padded_positions_are_ignored(cycle, use_history: bool) -> None:
    torch.manual_seed(0)
    model = build_for_split(LSTM, cycle, dim=8, cat_dim=4, time_dim=4, hidden=8, use_history=use_history).eval()
    batch = SampleLoader(cycle, "train", hist_len=5).make_batch(cycle.samples["train"][:20])
    assert (~batch.mask).any() and (~batch.hist_mask).any()
    noisy = SampleLoader(cycle, "train", hist_len=5).make_batch(cycle.samples["train"][:20])
    for name, m in (("poi", noisy.mask), ("hist_poi", noisy.hist_mask)):
        getattr(noisy, name)[~m] = 7
    noisy.ts[~noisy.mask] = 10 ** 9
    with torch.no_grad():
        torch.testing.assert_close(model.score(noisy), model.score(batch), rtol=0, atol=0)


def test_history_changes_the_input(cycle) -> None:
    torch.manual_seed(0)
    model = build_for_split(LSTM, cycle, dim=8, hidden=8, use_history=True).eval()
    batch = SampleLoader(cycle, "test").make_batch(cycle.samples["test"])
    mask, poi, *_ = model._sequence(batch)
    n_hist = batch.hist_mask.sum(1)
    assert mask.sum(1).tolist() == (n_hist + batch.length).tolist()
    # the prefix comes last, right after the history
    for b in range(len(batch)):
        real = poi[b][mask[b]]
        assert real[-int(batch.length[b]):].tolist() == batch.poi[b][batch.mask[b]].tolist()
        assert real[:int(n_hist[b])].tolist() == batch.hist_poi[b][batch.hist_mask[b]].tolist()


def test_learns_planted_sequence_rule(cycle) -> None:
    pop = build_for_split(Pop, cycle)
    torch.manual_seed(0)
    model = train_steps(build_for_split(LSTM, cycle, dim=16, cat_dim=0, time_dim=0, hidden=16, dropout=0.0),
                        cycle, epochs=40, lr=0.02, batch_size=32, reseed=True)
    acc_lstm, _ = acc_mrr(ranks(model, cycle, "test"))
    acc_pop, _ = acc_mrr(ranks(pop, cycle, "test"))
    assert acc_lstm == 1.0 and acc_pop <= 0.2, (acc_lstm, acc_pop)


def test_beats_pop_on_synthetic(synthetic_split) -> None:
    pop = build_for_split(Pop, synthetic_split)
    torch.manual_seed(0)
    model = train_steps(build_for_split(LSTM, synthetic_split, dim=16, cat_dim=4, time_dim=8, hidden=32),
                        synthetic_split,
                        epochs=2, lr=0.01, batch_size=128, max_len=16, hist_len=0, reseed=True)
    _, mrr_pop = acc_mrr(ranks(pop, synthetic_split, "test"))
    _, mrr_lstm = acc_mrr(ranks(model, synthetic_split, "test", max_len=16, hist_len=0))
    assert mrr_lstm > 1.5 * mrr_pop, (mrr_pop, mrr_lstm)
