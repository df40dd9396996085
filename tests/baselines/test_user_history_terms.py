"""UserHistory's tuned-reference terms: the routine (time-of-day) term, counts as of the query time."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from modelkit import tiny_split

from stgnn.baselines import UserHistory
from stgnn.data.batch import SampleLoader
from stgnn.registry import build_for_split

H = 1 / 24  # one hour in days


@pytest.fixture()
def split():
    # user 0: POI 0 at 08:00 (day 0), POI 1 at 20:00 (day 1); test trajectory: POI 2 at 06:00 on
    # day 3 (a Sunday, like every day here is read in UTC: day 0 = Thursday) -> target at 08:00
    return tiny_split([
        (0, "train", [(0, 8 * H), (3, 8.5 * H)]),
        (0, "train", [(1, 1 + 20 * H), (3, 1 + 20.5 * H)]),
        (1, "train", [(2, 2 + 6 * H), (4, 2 + 7 * H)]),
        (0, "test", [(2, 3 + 6 * H), (0, 3 + 8 * H)]),
    ], num_users=2, num_pois=5)


def _batch(split, target_time: str = "known", history: str = "train_only"):
    return SampleLoader(split, "test", history=history, target_time=target_time).make_batch(split.samples["test"])


def _model(split, **kw) -> UserHistory:
    return build_for_split("user_history", split, **kw)


def _future_trajectories(cut: float | None = None):
    """Four users with training, val and test trajectories; check-ins after day 30 (after every
    val/test sample, POI 7 made popular) unless ``cut`` drops trajectories starting after it."""
    trajs = []
    for u in range(4):
        for d in range(0, 20, 4):
            trajs.append((u, "train", [((u + d) % 6, d + 0.1), ((u + d + 1) % 6, d + 0.2), ((u + 2) % 6, d + 0.3)]))
        trajs.append((u, "val", [(u, 21.0 + u * 0.1), ((u + 1) % 6, 21.05 + u * 0.1), (u + 2, 21.08 + u * 0.1)]))
        trajs.append((u, "test", [(u + 1, 26.0 + u * 0.1), (u + 2, 26.02 + u * 0.1), (u, 26.05 + u * 0.1)]))
        trajs.append((u, "test", [(7, 30.0 + u), (6, 30.1 + u), (7, 30.2 + u)]))
    return [t for t in trajs if cut is None or t[2][0][1] < cut]


def test_target_time_is_declared_only_with_the_routine_term() -> None:
    assert not UserHistory(2, 5).uses_target_time
    assert UserHistory(2, 5, time_weight=0.3).uses_target_time
    assert "time_weight=0.3" in repr(UserHistory(2, 5, time_weight=0.3)) and "counts=train" in repr(UserHistory(2, 5))


def test_routine_term_by_hand(split) -> None:
    model = _model(split, half_life=None, eps=0.0, time_weight=0.5, time_sigma=2.0, weekend_factor=1.0)
    # memory: POI 0 @08:00, 3 @08:30, 1 @20:00, 3 @20:30, 2 @06:00; query 08:00 (the target's time)
    k = [math.exp(-d ** 2 / 8) for d in (0.0, 0.5, 12.0, 11.5, 2.0)]
    routine = torch.tensor([k[0], k[2], k[4], k[1] + k[3], 0.0], dtype=torch.float64) / sum(k)
    torch.testing.assert_close(model.routine(_batch(split)), routine[None])
    personal = torch.tensor([1, 1, 1, 2, 0], dtype=torch.float64) / 5
    torch.testing.assert_close(model.score(_batch(split)), (0.5 * personal + 0.5 * routine).float()[None])
    # without the target time the query is the last prefix check-in (06:00): POI 2 moves above POI 0
    known, hidden = model.score(_batch(split))[0], model.score(_batch(split, target_time="hidden"))[0]
    assert known[0] > known[2] and hidden[2] > hidden[0]


def test_switches_change_scores(split) -> None:
    def scores(**kw):
        return _model(split, eps=0.01, transition_weight=0.2, **kw).score(_batch(split))
    base = scores()
    assert not torch.equal(base, scores(time_weight=0.3))
    assert not torch.equal(scores(time_weight=0.3, time_sigma=1.0), scores(time_weight=0.3, time_sigma=4.0))
    with pytest.raises(ValueError, match="sum < 1"):
        UserHistory(2, 5, eps=0.1, transition_weight=0.5, time_weight=0.4)
    with pytest.raises(ValueError, match="counts"):
        UserHistory(2, 5, counts="everything")


def test_visible_counts_equal_training_counts_for_test_samples_under_train_only(split) -> None:
    # the test prefix starts after every training check-in, so both count the same check-ins
    a = _model(split, eps=0.1, transition_weight=0.3)
    b = _model(split, eps=0.1, transition_weight=0.3, counts="visible")
    torch.testing.assert_close(a.score(_batch(split)), b.score(_batch(split)))


@pytest.mark.parametrize("history", ["train_only", "all_past"])
def test_visible_counts_never_see_the_sample_or_later(history: str) -> None:
    base = tiny_split(_future_trajectories(cut=30), num_users=4, num_pois=8)
    future = tiny_split(_future_trajectories(), num_users=4, num_pois=8)
    base, future = (dataclasses.replace(s, protocol={"history": history}) for s in (base, future))
    kw = dict(eps=0.2, transition_weight=0.3, time_weight=0.2, counts="visible")
    on_base, on_future = _model(base, **kw), _model(future, **kw)
    assert on_base.visible.history == history
    for part in ("train", "val", "test"):
        keep = base.samples[part]
        before = on_base.score(SampleLoader(base, part, history=history).make_batch(keep))
        # the same samples, with check-ins after all of them added
        idx = [int(j) for j in future.samples[part] if (future.user[j], future.ts[j]) in
               {(base.user[k], base.ts[k]) for k in keep}]
        after = on_future.score(SampleLoader(future, part, history=history).make_batch(idx))
        torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_visible_counts_of_a_training_sample_exclude_its_own_transition() -> None:
    s = tiny_split([(0, "train", [(0, 0.0), (1, 0.1)]), (1, "train", [(0, 1.0), (2, 1.1)])],
                   num_users=2, num_pois=3)
    train_counts = _model(s, eps=0.0, transition_weight=0.5)
    visible = _model(s, eps=0.0, transition_weight=0.5, counts="visible")
    batch = SampleLoader(s, "train").make_batch(s.samples["train"][1:])   # 0 -> 2 at day 1.1
    # all training transitions out of POI 0: 0->1 and the sample's own 0->2; before day 1.1 only 0->1
    torch.testing.assert_close(train_counts.score(batch), torch.tensor([[0.5, 0.25, 0.25]]))
    torch.testing.assert_close(visible.score(batch), torch.tensor([[0.5, 0.5, 0.0]]))
    torch.testing.assert_close(visible.transitions(torch.tensor([0])), train_counts.transitions(torch.tensor([0])))


def test_visible_counts_need_their_inputs_and_survive_saving(split, tmp_path) -> None:
    from stgnn.inputs import ModelInputs, build_inputs

    with pytest.raises(ValueError, match="visible_counts=True"):
        UserHistory.from_inputs(build_inputs(split), counts="visible")
    inputs = build_inputs(split, UserHistory.input_spec(counts="visible"))
    inputs.save(tmp_path / "inputs.pt")
    again = UserHistory.from_inputs(ModelInputs.load(tmp_path / "inputs.pt"), counts="visible", transition_weight=0.3)
    torch.testing.assert_close(again.score(_batch(split)), _model(split, counts="visible", transition_weight=0.3)
                               .score(_batch(split)), rtol=0, atol=0)
