"""Shared by the sequence-baseline tests: a minimal training loop and a "rewrite the future" helper.

Imported as ``from trainkit import ...`` (pytest puts this folder on ``sys.path``); not a test file.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from stgnn.data.batch import SampleLoader
from stgnn.data.split import Split
from stgnn.models.base import Recommender
from stgnn.registry import build_for_split


def train_steps(model: Recommender, split: Split, epochs: int, lr: float, seed: int = 0,
                max_steps: int = 10 ** 9, **loader_kw) -> Recommender:
    """Adam over shuffled training batches of 64 (``loader_kw`` go to :class:`SampleLoader`)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = SampleLoader(split, "train", batch_size=64, shuffle=True,
                          generator=torch.Generator().manual_seed(seed), **loader_kw)
    model.train()
    for _ in range(epochs):
        for step, batch in enumerate(loader):
            if step == max_steps:
                break
            loss = model.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def perturb(split: Split, parts: tuple[int, ...], seed: int = 0) -> Split:
    """A copy whose check-ins in ``parts`` go to random POIs (the future, rewritten)."""
    rng = np.random.default_rng(seed)
    sel = np.isin(split.part, parts)
    poi = split.poi.copy()
    poi[sel] = rng.integers(0, split.num_pois, int(sel.sum()))
    return dataclasses.replace(split, poi=poi, category=split.poi_category[poi])


def metrics_vs_pop(model: Recommender, split: Split, **loader_kw) -> tuple[dict, dict]:
    """``(model's test metrics, Pop's test metrics)`` on the same samples."""
    from stgnn.baselines.pop import Pop
    from stgnn.eval.evaluate import evaluate

    test = SampleLoader(split, "test", batch_size=256, **loader_kw)
    pop = build_for_split(Pop, split)
    return evaluate(model, test)[0], evaluate(pop, test)[0]


def assert_seed_determinism(train, split: Split, **loader_kw) -> None:
    """``train(split, epochs=1, seed=s, max_steps=3)`` twice with one seed: identical scores; another
    seed: different scores."""
    batch = SampleLoader(split, "val", **loader_kw).make_batch(split.samples["val"][:16])
    models = [train(split, epochs=1, seed=s, max_steps=3) for s in (3, 3, 4)]
    with torch.no_grad():
        a, b, c = (m.score(batch) for m in models)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def assert_scores_all_pois_and_ignores_padding(model: Recommender, split: Split, max_len: int) -> None:
    """``model`` (in eval mode) scores 32 test samples over all POIs, finitely, and the shortest
    prefix scored alone (no padding) gets exactly the scores it gets inside the padded batch."""
    loader = SampleLoader(split, "test", batch_size=32, max_len=max_len)
    targets = loader.targets[:32]
    batch = loader.make_batch(targets)
    with torch.no_grad():
        scores = model.score(batch)
        i = int(batch.length.argmin())
        alone = model.score(loader.make_batch(targets[i:i + 1]))
    assert scores.shape == (32, split.num_pois) and torch.isfinite(scores).all()
    assert batch.length[i] < batch.poi.shape[1]
    torch.testing.assert_close(alone[0], scores[i])


def assert_val_blind_to_test_period(build, split: Split, max_len: int) -> None:
    """A model built by ``build(split)`` (seeded the same way twice) gives bit-identical val scores
    when every test-period check-in is rewritten to a random POI."""
    from stgnn.data.split import PARTS

    changed = perturb(split, (PARTS["test"],))
    assert (changed.poi != split.poi).any()
    scores = []
    for s in (split, changed):
        torch.manual_seed(0)
        model = build(s).eval()
        with torch.no_grad():
            scores.append(model.score(SampleLoader(s, "val", max_len=max_len).make_batch(split.samples["val"])))
    torch.testing.assert_close(scores[0], scores[1], rtol=0, atol=0)
