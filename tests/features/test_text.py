"""Text encoders: offline loading, cache correctness, the HF mean-pooling backend."""
import hashlib
import socket
import warnings

import pytest
import torch

from stgnn.features.text import (HFEncoder, ModelNotAvailable, NullEncoder, TextEncoder, folder_fingerprint,
                                 make_text_encoder, minilm_path)

WORDS = ["Coffee Shop", "Café", "Subway"]


def _no_network(*args, **kwargs):
    raise AssertionError("a text encoder tried to open a network connection")


@pytest.fixture()
def offline(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", _no_network)


class FakeEncoder(TextEncoder):
    """Deterministic 384-d vectors from a hash of the text; counts the texts it computes."""

    model_id = "fake"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.computed: list[str] = []

    def _fingerprint(self):
        return {"seed": 1}

    def _load_dim(self):
        return 384

    def _encode_batch(self, texts):
        self.computed += texts
        seeds = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little") for t in texts]
        return torch.stack([torch.randn(384, generator=torch.Generator().manual_seed(s)) for s in seeds])


@pytest.fixture(scope="module")
def minilm_vectors(tmp_path_factory):
    """(encoder, cache dir, vectors of WORDS) with the network blocked while loading and encoding."""
    cache = tmp_path_factory.mktemp("text_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket.socket, "connect_ex", _no_network)
        enc = make_text_encoder("minilm", device="cpu", cache_dir=cache, progress=False)
        vecs = enc.encode(WORDS)
    return enc, cache, vecs


def test_minilm_offline_384d_normalised_and_sane(minilm_vectors):
    enc, _, x = minilm_vectors
    assert x.shape == (3, 384) and x.dtype == torch.float32 and enc.dim == 384
    assert torch.allclose(x.norm(dim=1), torch.ones(3), atol=1e-5)
    sim = x @ x.T
    assert sim[0, 1] > sim[0, 2] + 0.1  # "Coffee Shop" is nearer "Café" than "Subway"
    assert enc.model_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_cache_hit_loads_no_model(minilm_vectors, offline):
    _, cache, x = minilm_vectors
    again = make_text_encoder("minilm", device="cpu", cache_dir=cache, progress=False)
    y = again.encode(WORDS[::-1] + WORDS[:1])
    assert again._model is None  # served from disk
    assert torch.equal(y, torch.cat([x.flip(0), x[:1]]))
    assert again.dim == 384 and again._model is None


def test_other_model_never_gets_stale_vectors(minilm_vectors):
    minilm, cache, x = minilm_vectors
    fake = FakeEncoder(cache_dir=cache, progress=False)
    assert fake.cache_key != minilm.cache_key
    f = fake.encode(WORDS)
    assert fake.computed == sorted(WORDS, key=len)  # nothing taken from minilm's entries
    assert not torch.allclose(f, x)
    assert torch.equal(FakeEncoder(cache_dir=None).encode(WORDS), f)
    fresh = make_text_encoder("minilm", device="cpu", cache_dir=cache, progress=False)
    assert torch.equal(fresh.encode(WORDS), x) and fresh._model is None


def test_hf_backend_mean_pooling_matches_sentence_transformers(minilm_vectors, tmp_path, offline):
    _, _, x = minilm_vectors
    hf = make_text_encoder(f"hf:{minilm_path()}", device="cpu", cache_dir=tmp_path, progress=False)
    assert isinstance(hf, HFEncoder)
    assert torch.allclose(hf.encode(WORDS), x, atol=1e-5)  # MiniLM = mean pooling + L2 norm
    raw = make_text_encoder(f"hf:{minilm_path()}", cache_dir=tmp_path, normalize=False)
    assert raw.cache_key != hf.cache_key  # options that change vectors change the key


def test_dedup_order_and_batches(tmp_path):
    enc = FakeEncoder(cache_dir=tmp_path, batch_size=2, progress=False)
    texts = ["bb", "a", "ccc", "a", "", "bb"]
    out = enc.encode(texts)
    assert sorted(enc.computed) == sorted(["bb", "a", "ccc", ""])  # each unique text once
    ref = FakeEncoder(cache_dir=None)
    for i, t in enumerate(texts):
        assert torch.equal(out[i], ref.encode([t])[0])
    enc.computed.clear()
    assert torch.equal(enc.encode(["ccc", "new"])[0], out[2]) and enc.computed == ["new"]
    assert enc.encode([]).shape == (0, 384)
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        enc.encode(["ok", 3])


def test_damaged_cache_is_rebuilt(tmp_path):
    enc = FakeEncoder(cache_dir=tmp_path, progress=False)
    first = enc.encode(["x", "y"])
    store = next(tmp_path.glob("fake-*/vectors.npz"))
    store.write_bytes(b"not an npz")
    again = FakeEncoder(cache_dir=tmp_path, progress=False)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert torch.equal(again.encode(["x", "y"]), first)
    assert any("unreadable text cache" in str(m.message) for m in w)
    assert again.computed == ["x", "y"]


def test_fingerprint_follows_model_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 300_000)
    a = folder_fingerprint(tmp_path)
    with open(tmp_path / "model.safetensors", "r+b") as f:  # same size, new tail bytes
        f.seek(299_990)
        f.write(b"1")
    assert folder_fingerprint(tmp_path) != a


def test_specs_none_unknown_and_missing(offline, tmp_path):
    none = make_text_encoder("none")
    assert isinstance(none, NullEncoder) and none.dim == 0
    assert none.encode(["a", "b"]).shape == (2, 0)
    assert make_text_encoder(none) is none
    with pytest.raises(ValueError, match="valid: minilm, none"):
        make_text_encoder("bert")
    with pytest.raises(ModelNotAvailable, match="allow_download=True"):
        make_text_encoder("st:no-such-org/no-such-model-xyz", cache_dir=tmp_path)
    with pytest.raises(ModelNotAvailable, match="allow_download=True"):
        make_text_encoder("hf:/no/such/folder", cache_dir=tmp_path)


def _tiny_causal_lm(folder):
    """A 1-layer GPT-2 with a word-level tokenizer that has EOS but no pad token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "<eos>", "coffee", "shop", "bar", "night", "club"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    assert fast.pad_token is None
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    GPT2Model(GPT2Config(vocab_size=len(vocab), n_positions=16, n_embd=8, n_layer=1, n_head=2)).save_pretrained(folder)


def test_hf_causal_lm_pad_fallback_and_right_padding(tmp_path, offline):
    _tiny_causal_lm(tmp_path / "lm")
    enc = HFEncoder(tmp_path / "lm", device="cpu", cache_dir=None, batch_size=8, progress=False)
    batch = enc.encode(["coffee shop bar night club", "bar"])  # "bar" is padded in this batch
    alone = HFEncoder(tmp_path / "lm", device="cpu", cache_dir=None, batch_size=1).encode(["bar"])
    assert enc._tok.pad_token == "<eos>"
    assert batch.shape == (2, 8) and enc.dim == 8
    assert torch.allclose(batch[1], alone[0], atol=1e-6)
    assert torch.allclose(batch.norm(dim=1), torch.ones(2), atol=1e-5)
