"""ReferencePrior and STGNN(prior=...): residual learning over the no-learning reference."""
from __future__ import annotations

import pytest
import torch

from stgnn.data.batch import SampleLoader
from stgnn.inputs import InputSpec, build_inputs
from stgnn.models.prior import ReferencePrior
from stgnn.models.stgnn import STGNN
from stgnn.registry import build_for_split

REF = {"half_life": 30.0, "transition_weight": 0.2, "time_weight": 0.3, "eps": 0.01}


@pytest.fixture(scope="module")
def batch(synthetic_split):
    return SampleLoader(synthetic_split, "test", batch_size=16).make_batch(synthetic_split.samples["test"][:16])


def test_prior_alone_ranks_like_the_reference(synthetic_split, batch) -> None:
    prior = ReferencePrior(synthetic_split.num_users, synthetic_split.num_pois, dim=8, reference=REF, floor=1e-6)
    prior.prepare(build_inputs(synthetic_split, InputSpec(visible_counts=True)))
    ref = build_for_split("user_history", synthetic_split, **{**REF, "counts": "visible"})
    u = torch.randn(len(batch), 8)
    logp = prior(batch, u, torch.zeros(len(batch), synthetic_split.num_pois))   # a flat model
    assert torch.allclose(logp.exp().sum(1), torch.ones(len(batch)), atol=1e-5)
    # lam starts at 1 for every sample (zero weights), so the prior is the reference, renormalised
    expected = torch.log(ref.score(batch) + 1e-6).log_softmax(-1)
    torch.testing.assert_close(logp, expected, rtol=1e-5, atol=1e-5)
    assert prior.reference.counts == "visible" and "floor=1e-06" in repr(prior)


def test_stgnn_with_prior_trains_lam_and_changes_scores(synthetic_split, batch) -> None:
    def make(**kw):
        torch.manual_seed(0)
        return build_for_split("stgnn", synthetic_split, dim=16, graph="static", graph_layers=1, **kw)
    plain, residual = make(), make(prior=REF)
    assert plain.prior is None and isinstance(residual.prior, ReferencePrior)
    assert STGNN.input_spec(prior=REF).visible_counts and not STGNN.input_spec().visible_counts
    # the prior draws no random numbers: the model's own weights start identical
    theirs = residual.state_dict()
    for k, a in plain.state_dict().items():
        assert torch.equal(a, theirs[k]), k
    plain.eval(), residual.eval()
    s = residual.score(batch)
    assert torch.allclose(s.exp().sum(1), torch.ones(len(batch)), atol=1e-4)
    assert not torch.allclose(s, plain.score(batch))
    residual.train()
    loss = residual.loss(batch)
    loss.backward()
    assert residual.prior.lam_bias.grad is not None and residual.prior.lam_bias.grad.abs() > 0
    assert not any(p.requires_grad for p in residual.prior.reference.parameters())
    with pytest.raises(ValueError, match="num_sampled=0"):
        STGNN(4, 5, num_sampled=3, prior=REF)


def test_late_fusion_trains_like_the_plain_model_and_multiplies_at_scoring(synthetic_split, batch) -> None:
    def make(**kw):
        torch.manual_seed(0)
        return build_for_split("stgnn", synthetic_split, dim=16, graph="static", graph_layers=1, **kw)
    plain, late = make(), make(prior={**REF, "fusion": "late", "weight": 0.5})
    assert late.prior.fusion == "late" and not any(p.requires_grad for p in late.prior.parameters())
    plain.train(), late.train()
    torch.manual_seed(1)
    a = plain.loss(batch)
    torch.manual_seed(1)
    b = late.loss(batch)
    assert torch.equal(a, b)          # training never sees the prior
    plain.eval(), late.eval()
    expected = (plain.score(batch) + 0.5 * late.prior.log_reference(batch)).log_softmax(-1)
    torch.testing.assert_close(late.score(batch), expected)
    with pytest.raises(ValueError, match="fusion"):
        STGNN(4, 5, prior={"fusion": "early"})
