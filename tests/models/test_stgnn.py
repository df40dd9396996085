"""STGNN: shapes, gradients, permutation invariance, leakage, determinism, ablations, explanations."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from fakes import FakeText
from modelkit import LargestTensor

from stgnn.data.batch import SampleLoader
from stgnn.data.split import PARTS
from stgnn.features.profiles import poi_texts
from stgnn.graph.hetero import build_hetero_graph
from stgnn.inputs import InputSpec, build_inputs
from stgnn.models.graph_encoder import HeteroGraphEncoder
from stgnn.models.sampled_encoding import needed_nodes
from stgnn.models.stgnn import STGNN
from stgnn.registry import build_for_split


@pytest.fixture(scope="module")
def graph(synthetic_split):
    return build_hetero_graph(synthetic_split, parts=(0,))


@pytest.fixture(scope="module")
def batch(synthetic_split):
    return SampleLoader(synthetic_split, "test", batch_size=16).make_batch(synthetic_split.samples["test"][:16])


def make(split, g, seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("dim", 16)
    m = STGNN(split.num_users, split.num_pois, **kw)
    m.attach_coordinates(torch.as_tensor(split.poi_lat), torch.as_tensor(split.poi_lon))
    m.attach_graph(g)
    return m


def test_score_is_a_log_distribution_over_all_pois(synthetic_split, graph, batch):
    m = make(synthetic_split, graph).eval()
    s = m.score(batch)
    assert s.shape == (16, synthetic_split.num_pois)
    assert torch.allclose(s.exp().sum(1), torch.ones(16), atol=1e-4)
    assert m.loss(batch).ndim == 0


def test_pointer_puts_mass_on_visited_pois(synthetic_split, graph, batch):
    m = make(synthetic_split, graph).eval()
    out = m(batch)
    visited = torch.zeros_like(out["p_copy"]).scatter_reduce(1, out["mem_poi"], out["mem_mask"].float(), "amax") > 0
    assert torch.allclose(out["p_copy"].sum(1), torch.ones(16), atol=1e-5)
    assert (out["p_copy"][~visited] == 0).all()


def test_gradients_reach_every_parameter(synthetic_split, graph, batch):
    emb = torch.randn(synthetic_split.num_pois, 12)
    m = make(synthetic_split, graph, text_emb=emb)
    m.train()
    m.loss(batch).backward()
    # exactly-zero gradients by construction, derived from the graph: a relation without edge
    # times feeds phi(0) = cos(b) with b = 0 (d/d omega = d/d b = 0); a relation giving each
    # destination one edge (region, category -> poi) has softmax weight 1 whatever q and k are
    def key(et):
        return "<" + "___".join(et) + ">"
    untimed = [key(et) for et in graph.edge_types if "time" not in graph[et]]
    single = [key(et) for et in graph.edge_types
              if torch.bincount(graph[et].edge_index[1]).max() == 1]
    def exempt(n):
        return (any(r in n for r in untimed) and ".time_enc." in n) or \
            (any(r in n for r in single) and any(f".{w}." in n for w in ("lin_q", "lin_kx", "lin_ke")))
    missing = [n for n, p in m.named_parameters()
               if not exempt(n) and (p.grad is None or p.grad.abs().sum() == 0)]
    # 20 time-encoder params of the 10 untimed convs + 20 q/k params of the 4 single-edge convs
    assert sum(map(exempt, dict(m.named_parameters()))) == 40
    assert missing == []


def test_graph_encoder_is_invariant_to_node_permutation(graph):
    torch.manual_seed(0)
    enc = HeteroGraphEncoder(graph.metadata(), 8, "time_attention", num_layers=2, dropout=0.0).eval()
    x = {t: torch.randn(graph[t].num_nodes, 8) for t in graph.node_types}
    P = graph["poi"].num_nodes
    perm = torch.randperm(P)                    # new node i is old node perm[i]
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(P)
    g2 = graph.clone()
    for et in graph.edge_types:
        ei = graph[et].edge_index.clone()
        if et[0] == "poi":
            ei[0] = inv[ei[0]]
        if et[2] == "poi":
            ei[1] = inv[ei[1]]
        g2[et].edge_index = ei
    x2 = dict(x, poi=x["poi"][perm])
    out, out2 = enc(x, graph), enc(x2, g2)
    assert torch.allclose(out["poi"][perm], out2["poi"], atol=1e-5)
    assert torch.allclose(out["user"], out2["user"], atol=1e-5)


def _append_future(split, n=5):
    """A copy of ``split`` with ``n`` later test-period check-ins of its last user appended."""
    u = split.num_users - 1
    last = split.user_ptr[-1] - 1
    rng = np.random.default_rng(0)
    pois = rng.integers(0, split.num_pois, n)
    extra = dict(
        user=np.full(n, u), poi=pois, category=split.poi_category[pois],
        ts=split.ts.max() + 3600 * np.arange(1, n + 1), tz_offset_min=np.zeros(n, np.int32),
        traj=np.full(n, split.num_trajectories), part=np.full(n, PARTS["test"], np.int8))
    kw = {k: np.concatenate([getattr(split, k), v.astype(getattr(split, k).dtype)]) for k, v in extra.items()}
    ptr = np.concatenate([split.traj_ptr, [split.traj_ptr[-1] + n]])
    user_ptr = split.user_ptr.copy()
    user_ptr[-1] += n
    assert split.user[last] == u
    return dataclasses.replace(split, **kw, traj_ptr=ptr, traj_user=np.concatenate([split.traj_user, [u]]),
                               user_ptr=user_ptr)


@pytest.mark.parametrize("kw", [
    dict(graph="none"), dict(graph="static"), dict(graph="static", layer="gcn"), dict(layer="gat"),
    dict(seq_encoder="lstm"), dict(seq_encoder="gru"), dict(seq_encoder="none"), dict(attention="none"),
    dict(copy="none"), dict(time_enc="none"), dict(space_enc="none"), dict(text="none"),
])
def test_each_ablation_switch_changes_the_scores(synthetic_split, graph, batch, kw):
    """Same seed, one switch changed: the scores move (a switch that kept the parameters but were
    ignored by ``forward`` would leave them bit-identical), and stay a distribution over all POIs."""
    text = torch.randn(synthetic_split.num_pois, 6)
    with torch.no_grad():
        full = make(synthetic_split, graph, text_emb=text).eval().score(batch)
        s = make(synthetic_split, graph, text_emb=text, **kw).eval().score(batch)
    assert s.shape == (16, synthetic_split.num_pois) and torch.isfinite(s).all()
    assert torch.allclose(s.exp().sum(1), torch.ones(16), atol=1e-4)
    assert not torch.allclose(s, full, atol=1e-4)


def test_bad_switch_names_the_choices(synthetic_split):
    with pytest.raises(ValueError, match=r"graph='dynamic'.*'none', 'static', 'temporal'"):
        STGNN(synthetic_split.num_users, synthetic_split.num_pois, graph="dynamic")


def test_text_embeddings_change_poi_inputs_only_when_enabled(synthetic_split, graph, batch):
    emb = torch.randn(synthetic_split.num_pois, 12)
    on = make(synthetic_split, graph, text_emb=emb)
    off = make(synthetic_split, graph, text_emb=emb, text="none")
    assert on.text_proj is not None and off.text_proj is None
    assert not torch.allclose(on.node_inputs()["poi"], off.node_inputs()["poi"])


def test_sampled_softmax_loss_is_finite_and_differs(synthetic_split, graph, batch):
    full = make(synthetic_split, graph).train()
    torch.manual_seed(0)
    lf = full.loss(batch)
    samp = make(synthetic_split, graph, num_sampled=5).train()
    torch.manual_seed(0)
    ls = samp.loss(batch)
    assert torch.isfinite(ls) and ls < lf  # 6-way softmax is easier than a P-way one


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_autocast_keeps_loss_and_scores_finite(synthetic_split, graph, batch, dtype):
    # regression: a float32-min mask value overflowed bf16/fp16 logits on an H100 under AMP
    m = make(synthetic_split, graph)
    with torch.autocast("cpu", dtype=dtype):
        loss = m.loss(batch)
        scores = m.score(batch)
    assert torch.isfinite(loss) and torch.isfinite(scores).all()
    assert scores.dtype == torch.float32  # ranking in full precision: fewer artificial ties
    loss.backward()


def test_training_reduces_the_loss(synthetic_split, graph):
    m = make(synthetic_split, graph)
    opt = torch.optim.Adam(m.parameters(), 5e-3)
    b = SampleLoader(synthetic_split, "train", batch_size=64).make_batch(synthetic_split.samples["train"][:64])
    first = m.loss(b).item()
    for _ in range(8):
        opt.zero_grad()
        m.loss(b).backward()
        opt.step()
    assert m.loss(b).item() < 0.8 * first


def test_explain_returns_memory_checkins_and_graph_neighbours(synthetic_split, graph, batch):
    m = make(synthetic_split, graph)
    ex = m.explain(batch, k=3)
    assert len(ex) == 16 and m.training  # mode restored
    rel_names = {"__".join(et) for et in graph.edge_types}
    for e, b in zip(ex, range(16)):
        assert len(e["top_pois"]) == 3 and e["log_prob"] == sorted(e["log_prob"], reverse=True)
        w = [c["weight"] for c in e["checkins"]]
        assert w == sorted(w, reverse=True) and 0 < sum(w) <= 1 + 1e-5
        visible = set(batch.poi[b][batch.mask[b]].tolist()) | set(batch.hist_poi[b][batch.hist_mask[b]].tolist())
        assert {c["poi"] for c in e["checkins"]} <= visible
        assert all(n["relation"] in rel_names for n in e["neighbors"]) and len(e["neighbors"]) <= 3
    assert any(e["neighbors"] for e in ex)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_scores_match_cpu(synthetic_split, graph, batch):
    m = make(synthetic_split, graph).eval()
    cpu = m.score(batch)
    gpu = m.to("cuda").score(batch.to("cuda"))
    assert gpu.device.type == "cuda" and torch.allclose(cpu, gpu.cpu(), atol=1e-4)


def test_text_vectors_come_from_the_builder_when_a_text_model_is_named(synthetic_split):
    assert STGNN.input_spec(graph="none", text_model="fake-spec", text_profile=False) == \
        InputSpec(graph=False, text="fake-spec", text_profile=False, dist_table_max_pois=20_000)
    assert STGNN.input_spec(text_model="fake-spec", text="none").text is None   # text switched off
    assert STGNN.input_spec().text is None and STGNN.input_spec(snapshots=3).snapshots == 3
    fake = FakeText(dim=5)
    m = build_for_split(STGNN, synthetic_split, text_encoder=fake, dim=8, graph="none", text_model="fake-spec",
                        text_profile=False)
    assert fake.calls == 1 and len(fake.texts) == synthetic_split.num_pois
    assert fake.texts == poi_texts(synthetic_split, profile=False)
    assert m.text_emb.shape == (synthetic_split.num_pois, 5) and m.text_proj.in_features == 5
    plain = build_for_split(STGNN, synthetic_split, dim=8, graph="none")
    assert plain.text_emb is None


def test_prepare_says_what_the_inputs_lack(synthetic_split):
    bare = build_inputs(synthetic_split)   # statistics only
    with pytest.raises(ValueError, match=r"STGNN needs graph, which these inputs lack; build them with"):
        STGNN.from_inputs(bare, dim=8)
    with pytest.raises(ValueError, match=r"needs snapshots \(2 x 7.0 days\), which"):
        STGNN.from_inputs(bare, dim=8, graph="none", snapshots=2)


def test_cold_pois_get_scores_and_their_text_reaches_them(cold_split):
    """Under keep_unseen, POIs without a training check-in are nodes of the graph (category,
    region, nearby POIs) and are scored; their text embedding moves their own representation."""
    split = cold_split
    cold = np.setdiff1d(np.arange(split.num_pois), split.poi[split.part == 0])
    assert len(cold) > 0 and split.flags["cold_poi"].any()
    g = build_hetero_graph(split, parts=(0,))
    text = torch.randn(split.num_pois, 6)
    m = make(split, g, text_emb=text).eval()
    targets = split.samples["test"][split.flags["cold_poi"]][:4]
    b = SampleLoader(split, "test", batch_size=4).make_batch(targets)
    with torch.no_grad():
        scores = m.score(b)
        assert torch.isfinite(scores).all() and scores.shape == (len(targets), split.num_pois)
        before = m.encode_graph()["poi"][cold].clone()
        m.text_emb[cold] += 1.0
        after = m.encode_graph()["poi"][cold]
    assert (after - before).abs().sum(-1).min() > 1e-4


def _copy_weights(src, dst):
    dst.load_state_dict(src.state_dict())
    return dst


def test_sampled_graph_with_full_fanout_equals_full_batch(synthetic_split, graph, batch):
    kw = dict(graph_layers=2, dropout=0.0)  # no dropout: the training losses are compared too
    full = make(synthetic_split, graph, sampling="full", **kw)
    sampled = _copy_weights(full, make(synthetic_split, graph, sampling="sampled", fanout=[10_000, 10_000],
                                       sample_chunk=7, **kw))
    assert full.sampler is None and sampled.sampler is not None
    b = SampleLoader(synthetic_split, "train", batch_size=32).make_batch(synthetic_split.samples["train"][:32])
    torch.testing.assert_close(sampled.loss(b), full.loss(b), atol=1e-5, rtol=1e-5)
    full.eval(), sampled.eval()
    with torch.no_grad():
        torch.testing.assert_close(sampled.score(batch), full.score(batch), atol=1e-4, rtol=1e-4)


def test_sampled_graph_trains_with_sampled_softmax_and_caches_eval(synthetic_split, graph, batch):
    m = make(synthetic_split, graph, graph_layers=2, sampling="sampled", fanout=[3, 2], num_sampled=16)
    opt = torch.optim.Adam(m.parameters(), 5e-3)
    b = SampleLoader(synthetic_split, "train", batch_size=64).make_batch(synthetic_split.samples["train"][:64])
    need = needed_nodes(b, m.num_pois, m.num_sampled)
    assert len(need["poi"]) < synthetic_split.num_pois  # only what the step reads is encoded
    for _ in range(3):
        opt.zero_grad()
        loss = m.loss(b)
        loss.backward()
        opt.step()
    assert torch.isfinite(loss)
    grads = [p.grad for p in m.graph_encoder.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)  # the sampled encoder is trained
    m.eval()
    with torch.no_grad():
        s1 = m.score(batch)
        cached = m._eval_nodes
        s2 = m.score(batch)
    assert cached is not None and m._eval_nodes is cached  # encoded once per evaluation
    torch.testing.assert_close(s1, s2)
    m.train()
    assert m._eval_nodes is None
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m.score(batch), s1)  # the eval sampler seed is fixed


def test_auto_sampling_follows_the_edge_count(synthetic_split, graph):
    assert make(synthetic_split, graph, sampling="auto").sampler is None
    assert make(synthetic_split, graph, sampling="auto", auto_edges=10).sampler is not None
    with pytest.raises(ValueError, match="one entry per graph layer"):
        make(synthetic_split, graph, graph_layers=2, fanout=[5])
    with pytest.raises(ValueError, match="sampling='x'"):
        make(synthetic_split, graph, sampling="x")


def test_distances_without_the_pair_table_match(synthetic_split, graph, batch):
    table = make(synthetic_split, graph).eval()
    onfly = _copy_weights(table, make(synthetic_split, graph, dist_matrix_max_pois=0)).eval()
    assert onfly.poi_dist_bucket.numel() == 0 and table.poi_dist_bucket.numel() == synthetic_split.num_pois ** 2
    with torch.no_grad():
        torch.testing.assert_close(onfly.score(batch), table.score(batch))


@pytest.mark.parametrize("cell", ["graph_gru", "gconvgru", "tgcn", "evolvegcno"])
def test_snapshot_cells_train_and_ignore_the_future(synthetic_split, graph, batch, cell):
    from stgnn.graph.snapshots import transition_snapshots

    def build(split, g):
        m = make(split, g, snapshots=3, temporal_cell=cell)
        m.attach_snapshots(transition_snapshots(split, 7.0, 3))
        return m

    m = build(synthetic_split, graph)
    assert len(m.snapshot_edges) == 3
    b = SampleLoader(synthetic_split, "train", batch_size=32).make_batch(synthetic_split.samples["train"][:32])
    m.loss(b).backward()
    cell_grads = [p.grad for p in m.cell.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in cell_grads)
    later = _append_future(synthetic_split)
    b2 = SampleLoader(later, "test", batch_size=16).make_batch(synthetic_split.samples["test"][:16])
    m.eval()
    m2 = build(later, build_hetero_graph(later, parts=(0,))).eval()
    with torch.no_grad():
        assert torch.equal(m.score(batch), m2.score(b2))


def test_id_dropout_scores_unseen_pois_from_content_only(cold_split):
    """DropoutNet-style cold start: at evaluation a POI without training check-ins is scored
    without its id embedding and bias (trained only as negatives), a seen POI with them."""
    split = cold_split
    g = build_hetero_graph(split, parts=(0,))
    m = make(split, g, id_dropout=0.3)
    m.prepare(build_inputs(split, InputSpec(graph=True)))
    cold = torch.as_tensor(np.setdiff1d(np.arange(split.num_pois), split.poi[split.part == 0]))
    assert len(cold) > 0 and int((~m.poi_seen).sum()) == len(cold) and not m.poi_seen[cold].any()
    targets = split.samples["test"][split.flags["cold_poi"]][:4]
    b = SampleLoader(split, "test", batch_size=4).make_batch(targets)
    m.eval()
    with torch.no_grad():
        before = m.score(b)
        m.poi_emb.weight[cold] += 5.0
        m.poi_bias[cold] += 5.0
        torch.testing.assert_close(m.score(b), before)
        seen = m.poi_seen.nonzero()[:3, 0]
        m.poi_emb.weight[seen] += 5.0
        assert not torch.allclose(m.score(b), before)


def test_id_dropout_drops_ids_in_training_steps_only(synthetic_split, graph, batch):
    m = make(synthetic_split, graph, id_dropout=0.5)
    m.prepare(build_inputs(synthetic_split, InputSpec(graph=True)))
    m.train()
    torch.manual_seed(1)
    m.loss(batch).backward()
    keep = m._id_keep
    assert keep is not None and 0.25 < keep.float().mean() < 0.75
    assert m.poi_emb.weight.grad[~keep].abs().sum() == 0 and m.poi_emb.weight.grad[keep].abs().sum() > 0
    assert m.poi_bias.grad[~keep].abs().sum() == 0 and m.content_bias.grad is not None
    m.eval()
    assert m._poi_keep() is m.poi_seen and bool(m.poi_seen.all())   # default protocol: every POI seen
    plain = make(synthetic_split, graph)                              # off: same parameters and state as before
    assert plain.content_bias is None and "poi_seen" not in plain.state_dict() and "poi_seen" in m.state_dict()
    with pytest.raises(ValueError, match="id_dropout"):
        make(synthetic_split, graph, id_dropout=1.0)


def test_hidden_target_time_queries_at_the_last_checkin(synthetic_split, graph):
    """``target_time: hidden``: the batch carries no target time and STGNN asks "where next, from
    the last check-in's time" - the same scores as a batch whose target time is that time."""
    m = make(synthetic_split, graph).eval()
    targets = synthetic_split.samples["test"][:16]
    hidden = SampleLoader(synthetic_split, "test", target_time="hidden").make_batch(targets)
    known = SampleLoader(synthetic_split, "test").make_batch(targets)
    with torch.no_grad():
        s_hidden, s_known = m.score(hidden), m.score(known)
        known.target_ts, known.target_tz = hidden.query_time()
        s_last = m.score(known)
    assert hidden.target_ts is None and torch.equal(s_hidden, s_last)
    assert not torch.allclose(s_hidden, s_known)   # the known target time is read


# ---------------------------------------------------------------------------- large POI sets
def _reference_sampled_loss(ref, b, neg):
    """The sampled-softmax loss from the full (B, P) logits and pointer of ``ref``."""
    y = b.target_poi
    out = ref(b)
    gen = out["gen"]
    logits = torch.cat([gen.gather(1, y[:, None]), gen[:, neg].masked_fill(neg[None, :] == y[:, None], float("-inf"))], 1)
    p_copy = out["p_copy"].gather(1, y[:, None])
    return -ref._mix(out, logits.log_softmax(-1)[:, :1], p_copy).mean()


@pytest.mark.parametrize("mode", ["none", "full", "sampled"])
def test_candidate_loss_equals_the_loss_from_full_logits(synthetic_split, graph, mode):
    """Training with sampled negatives scores only the step's columns; the loss is the one the
    full (B, P) logits and pointer give for the same negatives."""
    kw = dict(graph_layers=2, dropout=0.0, num_sampled=7, graph="none" if mode == "none" else "temporal")
    ref = make(synthetic_split, graph, sampling="full", **kw).train()
    m = ref if mode != "sampled" else _copy_weights(ref, make(synthetic_split, graph, sampling="sampled",
                                                               fanout=[10_000, 10_000], **kw).train())
    b = SampleLoader(synthetic_split, "train", batch_size=48).make_batch(synthetic_split.samples["train"][:48])
    torch.manual_seed(3)
    got = m.loss(b)
    torch.manual_seed(3)
    neg = torch.randint(0, synthetic_split.num_pois, (7,))  # the loss's first draw
    torch.testing.assert_close(got, _reference_sampled_loss(ref, b, neg), atol=1e-5, rtol=1e-5)
    got.backward()
    assert m.poi_emb.weight.grad.abs().sum() > 0



def test_a_sampled_training_step_costs_the_batch_not_the_pois(synthetic_split):
    """The same batch over 20,000 and 200,000 POIs: no tensor of a step grows with the POIs."""
    b = SampleLoader(synthetic_split, "train", batch_size=32).make_batch(synthetic_split.samples["train"][:32])
    largest = {}
    for P in (20_000, 200_000):
        torch.manual_seed(0)
        m = STGNN(synthetic_split.num_users, P, dim=8, graph="none", num_sampled=64, dist_matrix_max_pois=0).train()
        g = torch.Generator().manual_seed(0)
        m.attach_coordinates(40.7 + torch.rand(P, generator=g) / 10, -74.0 + torch.rand(P, generator=g) / 10)
        with LargestTensor() as spy:
            loss = m.loss(b)
        assert torch.isfinite(loss)
        largest[P] = spy.largest
    assert largest[20_000] == largest[200_000] < 20_000


def test_num_sampled_auto_switches_above_the_bar():
    from stgnn.models.sampled_softmax import AUTO_NUM_SAMPLED, AUTO_SAMPLED_POIS

    assert STGNN(5, AUTO_SAMPLED_POIS, dim=4, dist_matrix_max_pois=0).num_sampled == 0
    assert STGNN(5, AUTO_SAMPLED_POIS + 1, dim=4, dist_matrix_max_pois=0).num_sampled == AUTO_NUM_SAMPLED
    assert STGNN(5, 30, dim=4, num_sampled=3).num_sampled == 3
    for bad in (-1, "some", 2.5, True):
        with pytest.raises(ValueError, match="num_sampled"):
            STGNN(5, 30, dim=4, num_sampled=bad)


@pytest.mark.parametrize("layer", ["time_attention", "sage", "gatv2", "gat"])
def test_layerwise_encoding_equals_the_full_graph_forward(synthetic_split, graph, layer):
    """Evaluation of a sampled model encodes every node on its whole neighbourhood, block by block
    in destination chunks: the full-batch forward's result, whatever the chunk."""
    m = make(synthetic_split, graph, layer=layer, graph_layers=2).eval()
    x = {t: v for t, v in m.node_inputs().items() if t in m.graph_encoder.node_types}
    with torch.no_grad():
        want = m.graph_encoder(x, graph)
        for chunk in (7, 50, 100_000):
            got = m.graph_encoder.forward_layerwise(x, graph, chunk)
            for t in ("user", "poi"):
                torch.testing.assert_close(got[t], want[t], atol=1e-5, rtol=1e-5)
