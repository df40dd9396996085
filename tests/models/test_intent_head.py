"""STGNN's intent head: the frozen LM vector of each sample's prefix text, learned projection into ``u``."""
import dataclasses

import numpy as np
import pytest
import torch
from fakes import HashText

from stgnn.data.batch import SampleLoader
from stgnn.features.intent import poi_labels, split_intent_texts
from stgnn.inputs import InputSpec, ModelInputs, build_inputs
from stgnn.models.intent import IntentHead
from stgnn.models.stgnn import STGNN

KW = dict(dim=16, graph="static", graph_layers=1)


@pytest.fixture(scope="module")
def built(synthetic_split, tmp_path_factory):
    enc = HashText(dim=12, cache_dir=tmp_path_factory.mktemp("text_cache"))
    inputs = build_inputs(synthetic_split, STGNN.input_spec(intent="hash", intent_items=6, **KW), text_encoder=enc)
    return enc, inputs


def model(inputs, seed=0, **kw):
    torch.manual_seed(seed)
    return STGNN.from_inputs(inputs, **{**KW, **kw})


def test_input_spec_and_missing_inputs(synthetic_split):
    assert STGNN.input_spec(intent="minilm", intent_items=5, graph="none").intent == "minilm"
    assert STGNN.input_spec(intent="minilm", intent_items=5).intent_items == 5
    assert STGNN.input_spec().intent is None
    bare = build_inputs(synthetic_split, STGNN.input_spec(**KW))
    with pytest.raises(ValueError, match=r"needs intent texts \(minilm\), which these inputs lack"):
        STGNN.from_inputs(bare, intent="minilm", **KW)


def test_builder_encodes_every_sample_once_and_training_reads_the_cache(synthetic_split, built):
    enc, inputs = built
    s = synthetic_split
    texts = split_intent_texts(s, inputs.intent_labels, 6)
    assert len(texts) == sum(len(s.samples[p]) for p in ("train", "val", "test"))
    assert sorted(enc.computed) == sorted(set(texts))                   # each distinct text encoded once
    assert inputs.intent_labels == poi_labels(s) and inputs.intent_dim == 12 and inputs.intent_encoder is enc
    m = model(inputs, intent="hash", intent_items=6)
    n = len(enc.computed)
    m.loss(SampleLoader(s, "train", 64).make_batch(s.samples["train"][:64]))
    with torch.no_grad():
        for part in ("train", "val", "test"):
            for b in SampleLoader(s, part, 1024):
                m.score(b)
    assert len(enc.computed) == n                                        # no text encoded again
    fresh = HashText(dim=12, cache_dir=enc.cache_dir)                    # another process, same disk cache
    b = SampleLoader(s, "test", 64).make_batch(s.samples["test"][:20])
    head = IntentHead("hash", inputs.intent_labels, 12, 16, 6, encoder=fresh)
    assert torch.equal(head.vectors(b), m.intent.vectors(b)) and fresh.computed == []


def test_shapes_gradients_and_the_option_changes_scores(synthetic_split, built):
    _, inputs = built
    s = synthetic_split
    b = SampleLoader(s, "train", 32).make_batch(s.samples["train"][:32])
    m = model(inputs, intent="hash", intent_items=6)
    assert isinstance(m.intent, IntentHead)
    assert m.intent.vectors(b).shape == (32, 12) and m.intent(b).shape == (32, 16)
    m.loss(b).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.intent.parameters())
    m.eval()
    with torch.no_grad():
        scores = m.score(b)
        plain = model(inputs).eval().score(b)                            # same seed, no intent
        m_zero = m.intent.mlp[-1]
        saved = m_zero.weight.clone(), m_zero.bias.clone()
        m_zero.weight.zero_(), m_zero.bias.zero_()
        without = m.score(b)                                             # the head's output removed
        m_zero.weight.copy_(saved[0]), m_zero.bias.copy_(saved[1])
    assert scores.shape == (32, s.num_pois) and torch.isfinite(scores).all()
    assert plain.shape == scores.shape and not torch.allclose(scores, without, atol=1e-4)
    # the intent head is made after every other module, so the rest of the model starts the same
    torch.testing.assert_close(without, plain)


def test_vector_ignores_the_target_and_later_checkins(synthetic_split, built):
    _, inputs = built
    s = synthetic_split
    head = model(inputs, intent="hash", intent_items=6).intent
    j = s.samples["val"][3]
    base = head.vectors(SampleLoader(s, np.array([j]), 1).make_batch(np.array([j])))
    later = s.ts > s.ts[j]
    changed = dataclasses.replace(s, poi=s.poi.copy(), ts=s.ts.copy())
    changed.poi[later] = (changed.poi[later] + 7) % s.num_pois
    changed.ts[later] += 3600
    changed.poi[j] = (s.poi[j] + 1) % s.num_pois
    after = head.vectors(SampleLoader(changed, np.array([j]), 1).make_batch(np.array([j])))
    assert torch.equal(base, after)
    moved = dataclasses.replace(s, ts=s.ts.copy())
    moved.ts[j] += 2 * 3600                                              # the target time is in the text when known
    assert not torch.equal(base, head.vectors(SampleLoader(moved, np.array([j]), 1).make_batch(np.array([j]))))
    hidden = SampleLoader(moved, np.array([j]), 1, target_time="hidden").make_batch(np.array([j]))
    hidden0 = SampleLoader(s, np.array([j]), 1, target_time="hidden").make_batch(np.array([j]))
    assert torch.equal(head.vectors(hidden), head.vectors(hidden0))     # ...and only then


def test_saved_inputs_keep_the_labels_not_the_encoder(built, tmp_path):
    _, inputs = built
    inputs.save(tmp_path / "inputs.pt")
    back = ModelInputs.load(tmp_path / "inputs.pt")
    assert back.intent_labels == inputs.intent_labels and back.intent_dim == 12 and back.intent_encoder is None
    assert back.spec == inputs.spec and back.missing(InputSpec(intent="hash")) == []
    m = STGNN.from_inputs(back, intent="hash", intent_items=6, **KW)
    assert m.intent.spec == "hash" and m.intent._encoder is None          # made from the spec on first use
