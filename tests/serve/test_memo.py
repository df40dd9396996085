"""The serving memos (prefix state, visible popularity and transitions) change no bit, and a new check-in misses."""
from __future__ import annotations

import copy

import numpy as np
import torch

from stgnn.serve.memo import MemoVisibleCounts, memo_prefix
from stgnn.serve.store import NewCheckin

REF = {"half_life": 30.0, "transition_weight": 0.2, "time_weight": 0.3, "eps": 0.01, "fusion": "late", "weight": 1.0}


def _prefix_batch(poi, ts, tz):
    from types import SimpleNamespace
    poi, ts, tz = (torch.tensor([v], dtype=torch.int64) for v in (poi, ts, tz))
    return SimpleNamespace(poi=poi, ts=ts, tz=tz, mask=torch.ones_like(poi, dtype=torch.bool),
                           length=torch.tensor([poi.shape[1]]), target_ts=torch.tensor([999]))


def test_memo_prefix_returns_fresh_bits_and_copies():
    calls = []

    def f(batch, rows):
        calls.append(1)
        return rows(batch.poi).sum(1) + batch.ts.float().sum(1, keepdim=True) + batch.tz.float()[:, -1:]

    emb = torch.randn(10, 4)
    rows = lambda idx: emb[idx]                             # noqa: E731 pinned encodings
    g = memo_prefix(f, size=2)
    b = _prefix_batch([1, 2, 3], [10, 20, 30], [0, 0, 60])
    a = g(b, rows)
    a.add_(100)                                             # a caller writing to its answer
    again = _prefix_batch([1, 2, 3], [10, 20, 30], [0, 0, 60])
    again.target_ts = torch.tensor([5])                     # another query time: not read, still a hit
    assert torch.equal(g(again, rows), f(b, rows)) and len(calls) == 2 and g.memo.hits == 1
    for other in (_prefix_batch([1, 2, 4], [10, 20, 30], [0, 0, 60]),    # one POI, time or tz differs: a miss
                  _prefix_batch([1, 2, 3], [10, 20, 31], [0, 0, 60]),
                  _prefix_batch([1, 2, 3], [10, 20, 30], [0, 0, 0])):
        assert torch.equal(g(other, rows), f(other, rows))
    assert g.memo.misses == 4 and len(g.memo) == 2          # bounded: the oldest entries went
    two = _prefix_batch([1, 2, 3], [10, 20, 30], [0, 0, 60])
    two.poi = two.poi.expand(2, -1)                          # several samples: encoded as asked, not memoised
    g(two, rows)
    assert g.memo.misses == 4 and g.memo.hits == 1


def test_a_served_prior_model_scores_bit_for_bit_with_its_memos(serve_runs, seeded_store, stgnn_loaded):
    """STGNN with the late reference prior (``counts="visible"``), as the table's STGNN is served:
    the memoised model scores every live batch, asked once or again, exactly as the plain one, and
    a new check-in of the user misses the prefix memo and changes the answer."""
    from stgnn.registry import build_for_split
    from stgnn.serve.loading import precompute
    from stgnn.serve.recommender import Recommender

    split = serve_runs["split"]
    torch.manual_seed(0)
    served = build_for_split("stgnn", split, dim=16, graph="static", graph_layers=1, prior=REF).eval()
    plain = copy.deepcopy(served)
    pinned = precompute(served)
    assert {"seq one sample", "prefix state", "visible popularity"} <= set(pinned)
    visible = served.prior.reference.visible_memo
    assert isinstance(visible, MemoVisibleCounts)
    rec = Recommender(stgnn_loaded, seeded_store)           # live batches as a request builds them
    # test samples (every training check-in visible: one popularity) and training ones (fewer)
    test = np.concatenate([np.asarray(split.samples["test"])[:30], np.asarray(split.samples["train"])[::400][:10]])
    with torch.inference_mode():
        for rep in range(2):
            for j in test:
                b = rec.answer(str(split.user_ids[split.user[j]]), int(split.ts[j]), int(split.tz_offset_min[j])).batch
                assert torch.equal(served.score(b), plain.score(b)), (rep, int(j))
        seq_memo = served.encode_prefix.memo
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


def test_memo_visible_counts_equals_the_reference_for_any_query(serve_runs):
    """Popularity and transition distributions of one query, memoised or not, at times across the
    split (before the first check-in, between, after the last) and from POIs with and without
    transitions; a batch of queries goes to the reference itself."""
    from stgnn.features.history import VisibleCounts
    from stgnn.models.reference import UserHistory

    split = serve_runs["split"]
    ref = UserHistory(split.num_users, split.num_pois, transition_weight=0.2, counts="visible")
    ref.visible = VisibleCounts.from_split(split, "all_past")
    memo = MemoVisibleCounts(ref, size=8, transitions=64)
    rng = np.random.default_rng(0)
    times = np.concatenate([[0, int(split.ts.min()), int(split.ts.max()) + 10], rng.choice(split.ts, 20)])
    no_row = np.setdiff1d(np.arange(split.num_pois), ref.visible.t_src.numpy())[:1]     # a POI never left (if any)
    pois = np.concatenate([rng.choice(split.poi, 10), no_row]).astype(np.int64)
    for _ in range(2):                                      # misses, then hits
        for t in times:
            tt = torch.tensor([int(t)])
            got = memo.visible_popularity(tt)
            assert torch.equal(got, ref.visible_popularity(tt))
            got.add_(1)                                     # a caller writing to its answer changes no entry
            assert torch.equal(memo.visible_popularity(tt), ref.visible_popularity(tt))
            for p in pois:
                src = torch.tensor([int(p)])
                assert torch.equal(memo.visible_transitions(src, tt), ref.visible_transitions(src, tt))
    assert memo.memo.hits > 0 and memo.trans_memo.hits > 0 and len(memo.memo) <= 8 and len(memo.trans_memo) <= 64
    after_all = torch.tensor([int(times[2])])              # every check-in visible: some rows are distributions
    assert any(abs(float(ref.visible_transitions(torch.tensor([int(p)]), after_all).sum()) - 1) < 1e-12 for p in pois)
    batch_t = torch.tensor([int(x) for x in times[:5]])
    assert torch.equal(memo.visible_popularity(batch_t), ref.visible_popularity(batch_t))   # batches: the reference
