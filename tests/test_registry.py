"""The one registry, and the checks every registered model must pass (neural or not, STGNN included).

Per model (tiny sizes in :data:`TINY`; a registry entry without one fails
:func:`test_every_registry_entry_is_covered`): ``score`` is ``(B, P)``, finite, float32; no
leakage (check-ins appended after a val/test sample, or test-period check-ins rewritten, leave its
scores unchanged); padding does not change scores; a model that does not declare
``uses_target_time`` never reads it, and one that does also scores without it; deterministic given
the seed; the model is rebuilt from saved inputs alone (no split), as serving does.

Adding a baseline: its file in ``stgnn/baselines/``, its line in ``stgnn.registry.MODELS``, its
tiny sizes here, and the tests of what is particular to it.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import torch
from modelkit import Trajectory, perturb, tiny_split, train_steps

import stgnn.baselines
import stgnn.models
from stgnn.baselines import LSTM, MFBPR, Pop, UserHistory
from stgnn.data.batch import Batch, SampleLoader
from stgnn.data.split import PARTS, Split
from stgnn.inputs import InputSpec, ModelInputs, build_inputs
from stgnn.models.base import Recommender
from stgnn.registry import MODELS, build_model, input_spec, resolve_model

#: constructor keywords that make each registered model tiny (and, for variants, a second config)
TINY: dict[str, dict] = {
    "pop": {},
    "user_history": {"half_life": 2.0, "eps": 0.01, "transition_weight": 0.1},
    "mf_bpr": {"dim": 8},
    "lstm": {"dim": 8, "cat_dim": 4, "time_dim": 4, "hidden": 8},
    "gru4rec": {"dim": 8},
    "sasrec": {"dim": 8, "max_len": 16},
    "stan": {"dim": 8, "history": 4, "max_len": 16},
    "getnext": {"user_dim": 8, "poi_dim": 8, "time_dim": 4, "cat_dim": 4, "gcn_hidden": [8], "attn_dim": 8,
                "ffn": 16, "layers": 1, "max_len": 16},
    "lightgcn": {"dim": 8, "num_layers": 2},
    "stgnn": {"dim": 8, "graph_layers": 1, "dropout": 0.1},
}
VARIANTS: dict[str, tuple[str, dict]] = {      # configs whose code paths differ enough to check too
    "lstm_history": ("lstm", {**TINY["lstm"], "use_history": True}),
    "stgnn_snapshots": ("stgnn", {**TINY["stgnn"], "snapshots": 2, "graph": "static"}),
    # the tuned reference: reads the target time (routine term) and counts as of the query time
    "user_history_tuned": ("user_history", {**TINY["user_history"], "time_weight": 0.3, "counts": "visible"}),
    "stgnn_late_prior": ("stgnn", {**TINY["stgnn"], "prior": {**TINY["user_history"], "time_weight": 0.3,
                                                               "fusion": "late", "weight": 1.0}}),
}
CASES = {**{name: (name, kw) for name, kw in TINY.items()}, **VARIANTS}


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- data

def _base_trajectories() -> list[Trajectory]:
    """4 users, 8 POIs: routines in training, then val (days 20-25) and test (days 25+)."""
    rng = np.random.default_rng(0)
    trajs: list[Trajectory] = []
    for u in range(4):
        for d in range(0, 20, 2):  # training period
            trajs.append((u, "train", [(int(p), d + 0.1 * i) for i, p in enumerate(rng.integers(0, 6, 4))]))
        trajs.append((u, "val", [(u, 21.0 + u * 0.1), ((u + 1) % 6, 21.05 + u * 0.1), (u + 2, 21.08 + u * 0.1)]))
        trajs.append((u, "test", [(u + 1, 26.0 + u * 0.1), (u + 2, 26.02 + u * 0.1), (u, 26.05 + u * 0.1)]))
    return trajs


def _future_trajectories() -> list[Trajectory]:
    """The base data plus check-ins after every val/test sample (POI 7 made very popular)."""
    trajs = []
    for u, name, visits in _base_trajectories():
        if name == "test":
            visits = visits + [(7, visits[-1][1] + 0.01 * (i + 1)) for i in range(5)]
        trajs.append((u, name, visits))
    for u in range(4):
        trajs.append((u, "test", [(7, 30.0 + u), (6, 30.1 + u), (7, 30.2 + u)]))
    return trajs


@pytest.fixture(scope="module")
def base_split() -> Split:
    return tiny_split(_base_trajectories(), num_users=4, num_pois=8)


@pytest.fixture(scope="module")
def future_split() -> Split:
    return tiny_split(_future_trajectories(), num_users=4, num_pois=8)


def _build(case: str, split: Split, seed: int = 0, inputs: ModelInputs | None = None) -> Recommender:
    """The case's model for ``split`` (from ``inputs`` when given), trained 2 epochs if trainable."""
    name, kw = CASES[case]
    inputs = inputs if inputs is not None else build_inputs(split, input_spec(name, **kw))
    torch.manual_seed(seed)
    model = build_model(name, inputs, **kw)
    if model.trainable:
        train_steps(model, split, epochs=2, seed=seed, reseed=True)
    return model.eval()


def _scores_by_key(model: Recommender, split: Split, part: str, *, alone: bool = True,
                   **kw) -> dict[tuple[int, int], torch.Tensor]:
    """Scores of each sample keyed by its (user, target ts), which survive re-indexing.

    ``alone``: score each sample in a batch of its own, so that padding to another sample's
    length cannot change floating-point rounding (tested separately, with a tolerance).
    """
    targets = split.samples[part]
    loader = SampleLoader(split, targets, **kw)
    with torch.no_grad():
        if alone:
            s = torch.cat([model.score(loader.make_batch(targets[i:i + 1])) for i in range(len(targets))])
        else:
            s = model.score(loader.make_batch(targets))
    return {(int(split.user[j]), int(split.ts[j])): s[i] for i, j in enumerate(targets)}


def _assert_same(a: dict, b: dict, **tol) -> None:
    for key, s in a.items():
        torch.testing.assert_close(b[key], s, **(tol or {"rtol": 0, "atol": 0}))


# ----------------------------------------------------------------------------- the registry

def test_every_registry_entry_is_covered():
    assert set(TINY) == set(MODELS), "give every registry entry its tiny sizes in TINY (and vice versa)"


def _recommender_classes() -> set[type]:
    found = set()
    for pkg in (stgnn.baselines, stgnn.models):
        for info in pkgutil.iter_modules(pkg.__path__):
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            found |= {c for _, c in inspect.getmembers(module, inspect.isclass)
                      if issubclass(c, Recommender) and c is not Recommender and c.__module__ == module.__name__}
    return found


def test_every_model_class_is_registered():
    registered = {resolve_model(name) for name in MODELS}
    missing = sorted(c.__name__ for c in _recommender_classes() - registered)
    assert not missing, f"add {missing} to stgnn.registry.MODELS"


def test_resolve():
    assert resolve_model("pop") is Pop and resolve_model("MF-BPR") is MFBPR
    assert resolve_model("user_history") is UserHistory and resolve_model(LSTM) is LSTM
    assert resolve_model("stgnn.baselines.lstm.LSTM") is LSTM
    with pytest.raises(ValueError, match=r"unknown model 'no_such_model'; valid names: .*lstm, mf_bpr, pop"):
        resolve_model("no_such_model")
    with pytest.raises(TypeError, match="is not a class"):
        resolve_model("stgnn.features.time.hour_of_week")


def test_input_options_go_to_the_builder_not_the_constructor(base_split):
    assert input_spec("pop") == InputSpec()
    assert input_spec("stgnn", graph="none", space_enc="none") == InputSpec()
    assert input_spec("stgnn", snapshots=3, text_model="minilm", dist_matrix_max_pois=9) == \
        InputSpec(graph=True, snapshots=3, text="minilm", dist_table_max_pois=9)
    inputs = build_inputs(base_split, input_spec("stgnn", graph="none"))
    model = build_model("stgnn", inputs, dim=8, graph="none", text_profile=False)  # not a constructor keyword
    assert model.text_emb is None


# ----------------------------------------------------------------------------- conformance

@pytest.mark.parametrize("case", sorted(CASES))
def test_shape_finite_and_capabilities(case: str, base_split: Split) -> None:
    model = _build(case, base_split)
    batch = next(iter(SampleLoader(base_split, "train", batch_size=5)))
    s = model.score(batch)
    assert s.shape == (5, base_split.num_pois) and s.dtype == torch.float32 and torch.isfinite(s).all()
    caps = model.capabilities()
    assert set(caps) == {"needs_graph", "needs_snapshots", "needs_text", "uses_target_time", "trainable"}
    assert caps["trainable"] is bool(list(model.parameters()))
    assert f"num_pois={base_split.num_pois}" in repr(model)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("part", ["val", "test"])
def test_no_leakage_from_future_checkins(case: str, part: str, base_split: Split, future_split: Split) -> None:
    model = _build(case, base_split)
    before = _scores_by_key(model, base_split, part)
    name, kw = CASES[case]
    model.prepare(build_inputs(future_split, input_spec(name, **kw)))   # statistics and graph rebuilt
    after = _scores_by_key(model, future_split, part)
    assert set(before) <= set(after)
    _assert_same(before, after)


@pytest.mark.parametrize("case", sorted(CASES))
def test_val_scores_do_not_see_the_test_period(case: str, base_split: Split) -> None:
    changed = perturb(base_split, (PARTS["test"],))
    assert (changed.poi != base_split.poi).any()
    _assert_same(_scores_by_key(_build(case, base_split), base_split, "val"),
                 _scores_by_key(_build(case, changed), changed, "val"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_padding_does_not_change_scores(case: str, base_split: Split) -> None:
    model = _build(case, base_split)
    _assert_same(_scores_by_key(model, base_split, "train", alone=True),
                 _scores_by_key(model, base_split, "train", alone=False), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_target_time(case: str, base_split: Split) -> None:
    """A model that does not declare ``uses_target_time`` gives the same scores with and without
    it in the batch; one that declares it also scores when it is hidden."""
    model = _build(case, base_split)
    known = _scores_by_key(model, base_split, "test", target_time="known")
    hidden = _scores_by_key(model, base_split, "test", target_time="hidden")
    assert all(torch.isfinite(s).all() for s in hidden.values())
    if not model.uses_target_time:
        _assert_same(known, hidden)


@pytest.mark.parametrize("case", sorted(CASES))
def test_deterministic_given_seed(case: str, base_split: Split) -> None:
    a = _scores_by_key(_build(case, base_split, seed=3), base_split, "test")
    _assert_same(a, _scores_by_key(_build(case, base_split, seed=3), base_split, "test"))
    if _build(case, base_split).trainable:
        c = _scores_by_key(_build(case, base_split, seed=4), base_split, "test")
        assert any(not torch.equal(a[k], c[k]) for k in a), "the seed must matter for a trained model"


@pytest.mark.parametrize("case", sorted(CASES))
def test_rebuilt_from_saved_inputs_without_the_split(case: str, base_split: Split, tmp_path) -> None:
    """What serving does: inputs.pt + the constructor keywords + the weights give the same scores."""
    name, kw = CASES[case]
    inputs = build_inputs(base_split, input_spec(name, **kw))
    trained = _build(case, base_split, inputs=inputs)
    inputs.save(tmp_path / "inputs.pt")
    torch.manual_seed(123)                                    # other initial weights, overwritten below
    served = build_model(name, ModelInputs.load(tmp_path / "inputs.pt"), **kw)
    served.load_state_dict(trained.state_dict())
    _assert_same(_scores_by_key(trained, base_split, "test"), _scores_by_key(served.eval(), base_split, "test"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_batch_from_raw_sequences_scores_like_the_loaders(case: str, base_split: Split) -> None:
    """What serving does per request: the prefix, the visible history and (for a model that reads
    it) the query time, from a store instead of a split, give the loader's scores."""
    s = base_split
    model = _build(case, s)
    time_known = model.uses_target_time
    targets = s.samples["test"]
    loader = SampleLoader(s, targets, target_time="known" if time_known else "hidden")

    def seq(idx):
        return s.poi[idx], s.ts[idx], s.tz_offset_min[idx], s.category[idx]

    prefixes, histories = [], []
    for j in targets:
        start, u = s.prefix_start(np.array([j]))[0], s.user[j]
        hist = np.arange(s.user_ptr[u], start)
        prefixes.append(seq(np.arange(start, j)))
        histories.append(seq(hist[s.part[hist] == PARTS["train"]]))   # what train_only lets it see
    live = Batch.from_sequences(s.user[targets], prefixes, histories, s.poi_category, s.poi_lat, s.poi_lon,
                                max_len=loader.max_len, hist_len=loader.hist_len,
                                query_times=list(zip(s.ts[targets], s.tz_offset_min[targets])) if time_known else None)
    with torch.no_grad():
        torch.testing.assert_close(model.score(live), model.score(loader.make_batch(targets)), rtol=1e-5, atol=1e-6)
