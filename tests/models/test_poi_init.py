"""LM-initialised POI embeddings (``poi_init="text"``): the init is the scaled PCA of the text
vectors, the builder supplies them, and the default init is unchanged."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fakes import FakeText

from stgnn.inputs import build_inputs
from stgnn.models.poi_init import text_projection
from stgnn.models.stgnn import STGNN
from stgnn.registry import build_for_split


def _text(P: int = 30, D: int = 12, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # anisotropic, so the principal directions are well separated
    return torch.randn(P, D, generator=g) * torch.linspace(3.0, 0.2, D) + 1.5


def test_projection_is_the_scaled_pca_of_the_text_vectors():
    x = _text()
    out = text_projection(x, 8)
    assert out.shape == (30, 8) and out.dtype == torch.float32
    # reference PCA from numpy's eigen-decomposition of the covariance
    xc = x.double().numpy() - x.double().numpy().mean(0)
    w, v = np.linalg.eigh(xc.T @ xc)
    v = v[:, np.argsort(w)[::-1][:8]]                                   # (D, 8) top directions
    ref = xc @ v
    ref *= math.sqrt(8) / np.linalg.norm(ref, axis=1).mean()
    # columns agree up to each direction's sign
    sign = np.sign((ref * out.double().numpy()).sum(0))
    assert np.allclose(out.double().numpy(), ref * sign, atol=1e-5)
    assert out.norm(dim=1).mean().item() == pytest.approx(math.sqrt(8), rel=1e-5)
    # the sign rule fixes each direction (largest loading positive), so negated texts project to -out
    assert torch.allclose(text_projection(-x, 8), -out, atol=1e-5)


def test_projection_pads_with_zeros_beyond_the_text_rank():
    out = text_projection(_text(D=5), 8)
    assert out[:, 5:].abs().max().item() == 0.0 and (out[:, :5].abs().sum(0) > 0).all()


def test_text_init_sets_the_poi_embedding_and_nothing_else(synthetic_split):
    P, U = synthetic_split.num_pois, synthetic_split.num_users
    text = _text(P=P)
    torch.manual_seed(0)
    default = STGNN(U, P, dim=16, graph="none")
    torch.manual_seed(0)
    rand = STGNN(U, P, dim=16, graph="none", text_emb=text, poi_init="random")
    torch.manual_seed(0)
    lm = STGNN(U, P, dim=16, graph="none", text_emb=text, text="none", poi_init="text")
    assert torch.equal(lm.poi_emb.weight, text_projection(text, 16))
    assert lm.text_emb is None and lm.text_proj is None            # text="none": init only, no text input
    d, r, t = default.state_dict(), rand.state_dict(), lm.state_dict()
    # the default is poi_init="random": same draws, bit for bit
    assert torch.equal(d["poi_emb.weight"], r["poi_emb.weight"])
    assert not torch.equal(d["poi_emb.weight"], t["poi_emb.weight"])
    assert d.keys() == t.keys()
    assert all(torch.equal(d[k], t[k]) for k in d if k != "poi_emb.weight")


def test_builder_supplies_text_vectors_for_the_init(synthetic_split):
    spec = STGNN.input_spec(graph="none", text_model="fake-spec", text="none", poi_init="text")
    assert spec.text == "fake-spec"
    assert STGNN.input_spec(graph="none", text_model="fake-spec", text="none").text is None
    fake = FakeText(dim=6)
    m = build_for_split(STGNN, synthetic_split, text_encoder=fake, dim=8, graph="none", text_model="fake-spec",
                        text="none", poi_init="text")
    vecs = build_inputs(synthetic_split, spec, text_encoder=FakeText(dim=6)).text
    assert fake.calls == 1 and torch.equal(m.poi_emb.weight.detach(), text_projection(vecs, 8))
    assert m.text_emb is None


def test_bad_poi_init_options_say_what_to_do(synthetic_split):
    P, U = synthetic_split.num_pois, synthetic_split.num_users
    with pytest.raises(ValueError, match=r"poi_init='pca'\): choose one of \['random', 'text'\]"):
        STGNN(U, P, dim=8, graph="none", poi_init="pca")
    with pytest.raises(ValueError, match=r"needs POI text vectors: set model_kwargs.text_model"):
        build_for_split(STGNN, synthetic_split, dim=8, graph="none", poi_init="text")
    with pytest.raises(ValueError, match=r"5 text vectors for"):
        STGNN(U, P, dim=8, graph="none", text_emb=torch.randn(5, 4), poi_init="text")
