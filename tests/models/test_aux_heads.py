"""STGNN's auxiliary category/region heads: the loss they add, bit-identity when off, unchanged scores, errors."""
from __future__ import annotations

import pytest
import torch

from stgnn.data.batch import SampleLoader
from stgnn.inputs import build_inputs
from stgnn.models.aux_heads import AuxHeads, parse_aux
from stgnn.models.stgnn import STGNN

KW = dict(dim=16, graph="static", graph_layers=1)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def inputs(synthetic_split):
    return build_inputs(synthetic_split, STGNN.input_spec(**KW))


@pytest.fixture(scope="module")
def batch(synthetic_split):
    return SampleLoader(synthetic_split, "train", batch_size=48).make_batch(synthetic_split.samples["train"][:48])


def model(inputs, seed=0, **kw):
    torch.manual_seed(seed)
    return STGNN.from_inputs(inputs, **{**KW, **kw})


def _nll_by_hand(m, b):
    """The full-softmax NLL of the target under ``m``'s generate/copy mixture."""
    return -m.log_probs(m(b)).gather(1, b.target_poi[:, None]).mean()


def _ce_by_hand(u, head, labels):
    """Mean cross-entropy of ``head(u)`` against ``labels`` over the rows with a label (>= 0)."""
    logp = (u @ head.weight.T + head.bias).log_softmax(-1)
    ok = labels >= 0
    return -logp[ok].gather(1, labels[ok][:, None]).mean()


def test_parse_aux_validates_and_drops_zero_weights():
    assert parse_aux(None) == {} and parse_aux({}) == {}
    assert parse_aux({"category": 0.2, "region": 0}) == {"category": 0.2}
    assert parse_aux({"region": 1}) == {"region": 1.0}
    with pytest.raises(ValueError, match=r"unknown key 'poi'; choose among \['category', 'region'\]"):
        parse_aux({"poi": 0.1})
    with pytest.raises(ValueError, match=r"aux.category=-0.1.*finite number >= 0"):
        parse_aux({"category": -0.1})
    for bad in (float("nan"), float("inf"), True, "0.2"):
        with pytest.raises(ValueError, match="finite number >= 0"):
            parse_aux({"region": bad})
    with pytest.raises(ValueError, match="a mapping like"):
        parse_aux([0.2, 0.2])


def test_bad_options_fail_at_construction(synthetic_split):
    with pytest.raises(ValueError, match="unknown key 'cat'"):
        STGNN(synthetic_split.num_users, synthetic_split.num_pois, aux={"cat": 0.1})


def test_region_needs_the_graph_and_input_spec_asks_for_it(synthetic_split):
    assert STGNN.input_spec(graph="none", aux={"region": 0.2}).graph
    assert not STGNN.input_spec(graph="none", aux={"category": 0.2}).graph
    assert not STGNN.input_spec(graph="none", aux={"region": 0.0}).graph
    bare = build_inputs(synthetic_split, STGNN.input_spec(graph="none"))
    with pytest.raises(ValueError, match=r"aux.region\): these inputs have no POI regions"):
        STGNN.from_inputs(bare, dim=16, graph="none", aux={"region": 0.2})
    m = STGNN.from_inputs(bare, dim=16, graph="none", aux={"category": 0.2})   # categories need no graph
    assert list(m.aux.heads) == ["category"]


def test_heads_have_one_class_per_category_and_region(synthetic_split, inputs):
    m = model(inputs, aux={"category": 0.2, "region": 0.3})
    n_regions = inputs.graph["region"].num_nodes
    assert n_regions > 1
    assert m.aux.heads["category"].out_features == synthetic_split.num_categories
    assert m.aux.heads["region"].out_features == n_regions
    assert torch.equal(m.aux.category_of_poi, torch.as_tensor(synthetic_split.poi_category))
    assert torch.equal(m.aux.region_of_poi, inputs.graph["poi"].region)
    assert m.aux.weights == {"category": 0.2, "region": 0.3}


def test_loss_is_nll_plus_weighted_cross_entropies(inputs, batch):
    m = model(inputs, aux={"category": 0.2, "region": 0.5}).eval()
    y = batch.target_poi
    with torch.no_grad():
        got = m.loss(batch)
        u = m(batch)["u"]
        ce_c = _ce_by_hand(u, m.aux.heads["category"], inputs.poi_category[y])
        ce_r = _ce_by_hand(u, m.aux.heads["region"], inputs.graph["poi"].region[y])
        want = _nll_by_hand(m, batch) + 0.2 * ce_c + 0.5 * ce_r
    assert ce_c > 0.5 and ce_r > 0.5                     # untrained heads: far from certain
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_targets_without_a_label_are_left_out_of_the_mean(inputs, batch):
    m = model(inputs, aux={"region": 1.0}).eval()
    y = batch.target_poi
    m.aux.region_of_poi[y[:10]] = -1                     # e.g. POIs without coordinates
    with torch.no_grad():
        u = m(batch)["u"]
        labels = m.aux.region_of_poi[y]
        assert (labels == -1).sum() >= 10 and (labels >= 0).any()
        torch.testing.assert_close(m.aux(u, y), _ce_by_hand(u, m.aux.heads["region"], labels))
        m.aux.region_of_poi[:] = -1                      # no label in the batch: the term is 0, not NaN
        assert m.aux(u, y).item() == 0.0
    assert (inputs.graph["poi"].region[y[:10]] >= 0).all()   # the heads' table is a copy, not the inputs'


def test_off_or_zero_weight_is_bit_identical_and_heads_leave_scores_unchanged(inputs, batch):
    base = model(inputs)
    zero = model(inputs, aux={"category": 0.0, "region": 0.0})
    on = model(inputs, aux={"category": 0.2, "region": 0.2})
    assert base.aux is None and zero.aux is None
    sd_base, sd_on = base.state_dict(), on.state_dict()
    assert list(zero.state_dict()) == list(sd_base)
    assert all(torch.equal(zero.state_dict()[k], v) for k, v in sd_base.items())
    # the heads are made last: every other parameter starts exactly as without them
    assert sorted(set(sd_on) - set(sd_base)) == ["aux.heads.category.bias", "aux.heads.category.weight",
                                                 "aux.heads.region.bias", "aux.heads.region.weight"]
    assert all(torch.equal(sd_on[k], v) for k, v in sd_base.items())
    for m in (base, zero, on):
        m.eval()
    with torch.no_grad():
        s = base.score(batch)
        assert torch.equal(zero.score(batch), s) and torch.equal(on.score(batch), s)
        assert torch.equal(zero.loss(batch), base.loss(batch))
        assert on.loss(batch) > base.loss(batch)
    # training mode (dropout on): the same seed gives the same NLL draw; the heads add their term only
    for m in (base, zero, on):
        m.train()
    torch.manual_seed(5)
    l_base = base.loss(batch)
    torch.manual_seed(5)
    l_zero = zero.loss(batch)
    torch.manual_seed(5)
    l_on = on.loss(batch)
    torch.manual_seed(5)
    u = on(batch)["u"]
    assert torch.equal(l_zero, l_base)
    torch.testing.assert_close(l_on, l_base + on.aux(u, batch.target_poi))


def test_sampled_softmax_training_adds_the_same_aux_term(inputs, batch):
    m = model(inputs, aux={"category": 0.3, "region": 0.1}, num_sampled=7, dropout=0.0).train()
    assert m.num_sampled == 7
    torch.manual_seed(3)
    got = m.loss(batch)
    heads, m.aux = m.aux, None
    torch.manual_seed(3)
    nll = m.loss(batch)                                  # the sampled NLL with the same negatives
    m.aux = heads
    u = m(batch)["u"]
    torch.testing.assert_close(got, nll + heads(u, batch.target_poi), rtol=1e-5, atol=1e-5)
    got.backward()
    assert heads.heads["category"].weight.grad.abs().sum() > 0 and m.fuse[0].weight.grad.abs().sum() > 0


def test_gradients_reach_the_heads_and_state_dict_round_trips(inputs, batch):
    m = model(inputs, aux={"category": 0.2, "region": 0.2})
    m.loss(batch).backward()
    for name in ("category", "region"):
        assert m.aux.heads[name].weight.grad.abs().sum() > 0
    fresh = model(inputs, seed=1, aux={"category": 0.2, "region": 0.2})
    fresh.load_state_dict(m.state_dict())               # what restore.load_trained does
    m.eval(), fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh.loss(batch), m.loss(batch))


def test_aux_heads_reject_labels_outside_the_classes():
    with pytest.raises(ValueError, match=r"aux category: labels must lie in \[-1, 3\)"):
        AuxHeads({"category": 1.0}, {"category": torch.tensor([0, 3])}, {"category": 3}, dim=4)
    with pytest.raises(ValueError, match="at least one target"):
        AuxHeads({}, {}, {}, dim=4)
