"""The serving memos (sequence encoder, visible popularity) change no bit, and a new check-in misses."""
from __future__ import annotations

import copy

import numpy as np
import torch

from stgnn.serve.memo import MemoVisibleCounts, memo_sequence
from stgnn.serve.store import NewCheckin

REF = {"half_life": 30.0, "transition_weight": 0.2, "time_weight": 0.3, "eps": 0.01, "fusion": "late", "weight": 1.0}


def test_memo_sequence_returns_fresh_bits_and_copies():
    calls = []

    def f(x, mask):
        calls.append(1)
        return x * 2 + mask[..., None]

    g = memo_sequence(f, size=2)
    x, m = torch.randn(1, 3, 4), torch.ones(1, 3, dtype=torch.bool)
    a = g(x, m)
    a.add_(100)                                             # a caller writing to its answer
    b = g(x.clone(), m)                                     # same bytes, another tensor: a hit
    assert len(calls) == 1 and torch.equal(b, f(x, m)) and g.memo.hits == 1
    y = x.clone()
    y[0, 2, 3] += 1e-6                                      # one element differs: a miss
    assert torch.equal(g(y, m), f(y, m)) and g.memo.misses == 2
    g(torch.randn(1, 3, 4), m)                              # bounded: the oldest entry goes
    assert len(g.memo) == 2


def test_a_served_prior_model_scores_bit_for_bit_with_its_memos(serve_runs, seeded_store, stgnn_loaded):
    """STGNN with the late reference prior (``counts="visible"``), as the table's STGNN is served:
    the memoised model scores every live batch, asked once or again, exactly as the plain one, and
    a new check-in of the user misses the sequence memo and changes the answer."""
    from stgnn.registry import build_for_split
    from stgnn.serve.loading import precompute
    from stgnn.serve.recommender import Recommender

    split = serve_runs["split"]
    torch.manual_seed(0)
    served = build_for_split("stgnn", split, dim=16, graph="static", graph_layers=1, prior=REF).eval()
    plain = copy.deepcopy(served)
    pinned = precompute(served)
    assert {"seq one sample", "visible popularity"} <= set(pinned)
    visible = served.prior.reference.visible
    assert isinstance(visible, MemoVisibleCounts)
    rec = Recommender(stgnn_loaded, seeded_store)           # live batches as a request builds them
    # test samples (every training check-in visible: one popularity) and training ones (fewer)
    test = np.concatenate([np.asarray(split.samples["test"])[:30], np.asarray(split.samples["train"])[::400][:10]])
    with torch.inference_mode():
        for rep in range(2):
            for j in test:
                b = rec.answer(str(split.user_ids[split.user[j]]), int(split.ts[j]), int(split.tz_offset_min[j])).batch
                assert torch.equal(served.score(b), plain.score(b)), (rep, int(j))
        seq_memo = served.seq.forward.memo
        assert seq_memo.hits >= len(test) and visible.memo.hits > 0 and len(visible.memo) > 1
        assert visible.trans_memo.hits >= len(test)
        # a check-in a minute before the query: a new prefix, a miss, and still the plain model's bits
        j = int(test[0])
        user, at = str(split.user_ids[split.user[j]]), int(split.ts[j])
        before = served.score(rec.answer(user, at).batch)
        misses = seq_memo.misses
        seeded_store.add_checkins([NewCheckin(id="memo-1", user=user, poi=str(split.poi_ids[3]), ts=at - 60, tz=0)])
        b = rec.answer(user, at).batch
        after = served.score(b)
        assert seq_memo.misses == misses + 1 and torch.equal(after, plain.score(b)) and not torch.equal(after, before)


def test_memo_visible_counts_equals_the_index_for_any_query(serve_runs):
    """Popularity and transitions of one query, memoised or not, at times across the split (before
    the first check-in, between, after the last) and from POIs with and without transitions."""
    from stgnn.features.history import VisibleCounts

    split = serve_runs["split"]
    inner = VisibleCounts.from_split(split, "all_past")
    memo = MemoVisibleCounts(inner, size=8, transitions=64)
    rng = np.random.default_rng(0)
    times = np.concatenate([[0, int(split.ts.min()), int(split.ts.max()) + 10], rng.choice(split.ts, 20)])
    no_row = np.setdiff1d(np.arange(split.num_pois), inner.t_src.numpy())[:1]     # a POI never left (if any)
    pois = np.concatenate([rng.choice(split.poi, 10), no_row]).astype(np.int64)
    for _ in range(2):                                      # misses, then hits
        for t in times:
            tt = torch.tensor([int(t)])
            assert torch.equal(memo.popularity(tt), inner.popularity(tt))
            for p in pois:
                assert torch.equal(memo.transitions(torch.tensor([int(p)]), tt), inner.transitions(torch.tensor([int(p)]), tt))
    assert memo.memo.hits > 0 and memo.trans_memo.hits > 0 and len(memo.memo) <= 8 and len(memo.trans_memo) <= 64
    batch_t = torch.tensor([int(x) for x in times[:5]])
    assert torch.equal(memo.popularity(batch_t), inner.popularity(batch_t))    # batches: the index itself
