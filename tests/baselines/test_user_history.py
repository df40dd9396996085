"""UserHistory: hand-checked decayed frequencies, prior, transitions; beats Pop on planted data."""
from __future__ import annotations

import pytest
import torch
from modelkit import acc_mrr, ranks, tiny_split

from stgnn.baselines import Pop, UserHistory
from stgnn.data.batch import SampleLoader
from stgnn.registry import build_for_split


@pytest.fixture()
def split():
    # user 0: history POI 0 (day 0) then POI 1 (day 1); test trajectory POI 2 (day 2) -> POI 1
    # user 1: training trajectory 3 -> 0 -> 0, used for popularity and transitions
    return tiny_split([
        (0, "train", [(0, 0.0)]),
        (0, "train", [(1, 1.0)]),
        (1, "train", [(3, 0.5), (0, 0.6), (0, 0.7)]),
        (1, "train", [(2, 1.5), (1, 1.6)]),
        (0, "test", [(2, 2.0), (1, 2.1)]),
    ], num_users=2, num_pois=5)


def _test_batch(split):
    return SampleLoader(split, "test").make_batch(split.samples["test"])


def test_decayed_personal_frequency_by_hand(split) -> None:
    model = build_for_split(UserHistory, split, half_life=1.0, eps=0.0)
    # ages at day 2: POI 0 two days (w 1/4), POI 1 one day (w 1/2), POI 2 now (w 1); sum 7/4
    expected = torch.tensor([[1 / 7, 2 / 7, 4 / 7, 0.0, 0.0]])
    torch.testing.assert_close(model.score(_test_batch(split)), expected)


def test_no_decay_is_plain_frequency(split) -> None:
    model = build_for_split(UserHistory, split, half_life=None, eps=0.0)
    torch.testing.assert_close(model.score(_test_batch(split)), torch.tensor([[1 / 3, 1 / 3, 1 / 3, 0.0, 0.0]]))


def test_popularity_prior_ranks_unseen_pois(split) -> None:
    model = build_for_split(UserHistory, split, half_life=1.0, eps=0.1)
    # training counts: POI 0 x3, 1 x2, 2 x1, 3 x1, 4 x0 (of 7)
    pop = torch.tensor([3, 2, 1, 1, 0], dtype=torch.float64) / 7
    torch.testing.assert_close(model.pop, pop)
    s = model.score(_test_batch(split))[0]
    torch.testing.assert_close(s, (0.9 * torch.tensor([1 / 7, 2 / 7, 4 / 7, 0, 0], dtype=torch.float64)
                                   + 0.1 * pop).float())
    assert s[3] > s[4]  # unseen POIs ordered by popularity, not tied


def test_transition_term(split) -> None:
    model = build_for_split(UserHistory, split, half_life=1.0, eps=0.0, transition_weight=0.5)
    # training transitions: 3->0, 0->0, 2->1 (trajectories of one check-in have none)
    torch.testing.assert_close(model.transitions(torch.tensor([2, 3, 4])), torch.tensor(
        [[0, 1.0, 0, 0, 0], [1.0, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.float64))
    s = model.score(_test_batch(split))  # last prefix POI is 2 -> next POI 1
    expected = 0.5 * torch.tensor([[1 / 7, 2 / 7, 4 / 7, 0, 0]]) + 0.5 * torch.tensor([[0, 1.0, 0, 0, 0]])
    torch.testing.assert_close(s, expected)


def test_transition_rows_are_normalised() -> None:
    split = tiny_split([(0, "train", [(0, 0.0), (1, 0.1), (0, 0.2), (2, 0.3), (0, 0.4), (1, 0.5)])],
                       num_users=1, num_pois=3)
    model = build_for_split(UserHistory, split, transition_weight=0.1)
    # from 0: ->1 twice, ->2 once; from 1: ->0 once; from 2: ->0 once
    torch.testing.assert_close(model.transitions(torch.tensor([0, 1, 2])), torch.tensor(
        [[0, 2 / 3, 1 / 3], [1.0, 0, 0], [1.0, 0, 0]], dtype=torch.float64))


def test_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="half_life"):
        UserHistory(2, 3, half_life=0.0)
    with pytest.raises(ValueError, match="eps"):
        UserHistory(2, 3, eps=0.6, transition_weight=0.5)


def test_beats_pop_on_planted_routines(synthetic_split) -> None:
    pop = build_for_split(Pop, synthetic_split)
    uh = build_for_split(UserHistory, synthetic_split)
    acc_pop, mrr_pop = acc_mrr(ranks(pop, synthetic_split, "test"))
    acc_uh, mrr_uh = acc_mrr(ranks(uh, synthetic_split, "test"))
    assert mrr_uh > 2 * mrr_pop and acc_uh > acc_pop + 0.1, (acc_pop, mrr_pop, acc_uh, mrr_uh)
