"""experiments/information_settings/ensemble.py and edge_by_slice.py on tiny synthetic runs:
their scorers must reproduce the runs' own metrics before anything they add can be believed."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from stgnn import recipes

SCRIPTS = Path(__file__).resolve().parents[1] / "experiments" / "information_settings"
PRIOR = "{fusion: late, weight: 1.0, half_life: 30, transition_weight: 0.2, time_weight: 0.3, counts: visible}"
COMMON = ["dataset=synthetic", "train.epochs=1", "train.progress=false", "train.tensorboard=false",
          "train.num_threads=1", "protocol={history: all_past}"]


def _script(name: str):
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))           # the scripts import late_weight
    spec = importlib.util.spec_from_file_location(f"info_{name}", SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two STGNN runs (seeds 0, 1) with a late prior, and the reference run with the prior's options
    (trained once for the module, in a data root and folder of its own, as the ``isolated`` fixture does)."""
    root = tmp_path_factory.mktemp("info_scripts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STGNN_ROOT", str(root / "data"))
        mp.chdir(root)
        recipes.clear_caches()
        recipes.train_from_config(None, COMMON + [
            "model=stgnn", "name=st", "seeds=[0, 1]",
            f"model_kwargs={{dim: 16, graph: static, graph_layers: 1, prior: {PRIOR}}}"])
        recipes.train_from_config(None, COMMON + [
            "model=user_history", "name=uh", "seeds=[0]",
            "model_kwargs={half_life: 30, transition_weight: 0.2, time_weight: 0.3, counts: visible}"])
        res = root / "results"
        yield res / "st" / "seed_0", res / "st" / "seed_1", res / "uh" / "seed_0"   # the scripts reload the split here
        recipes.clear_caches()


def _saved(run: Path, part: str) -> np.ndarray:
    return np.load(run / "ranks.npz")[f"{part}_ranks"]


def test_ensemble_members_and_reference_rank_as_their_own_runs(runs):
    st0, st1, uh = runs
    ens = _script("ensemble")
    for part in ("val", "test"):
        rk = ens.part_ranks([st0, st1], part)
        np.testing.assert_array_equal(rk[str(st0)], _saved(st0, part))
        np.testing.assert_array_equal(rk[str(st1)], _saved(st1, part))
        np.testing.assert_array_equal(rk["reference"], _saved(uh, part))
        assert not np.array_equal(rk["ensemble"], rk[str(st0)])
    # a run averaged with itself is that run
    same = ens.part_ranks([st0, st0], "test")
    np.testing.assert_array_equal(same["ensemble"], _saved(st0, "test"))


def test_edge_by_slice_reports_the_runs_metrics_on_every_slice(runs, tmp_path, monkeypatch):
    st0, _, uh = runs
    out = tmp_path / "edge.json"
    monkeypatch.setattr(sys, "argv", ["edge_by_slice.py", str(st0), "--mix", "0.2", "--out", str(out)])
    _script("edge_by_slice").main()
    res = json.loads(out.read_text())
    for part in ("val", "test"):
        saved = json.loads((st0 / "metrics.json").read_text())[part]
        ref = json.loads((uh / "metrics.json").read_text())[part]
        by = res["metrics"][part]
        assert by["product"]["all"]["MRR"] == pytest.approx(saved["MRR"], abs=1e-6)
        assert by["reference"]["all"]["Acc@1"] == pytest.approx(ref["Acc@1"], abs=1e-6)
        assert set(by) == {"reference", "stgnn alone", "product", "mix 0.2"}
        n = {sl: d["n"] for sl, d in by["product"].items()}
        assert n["revisit"] + n["new for user"] == n["past revisit"] + n["past new"] == n["all"]
        assert res["product_minus_reference"][part]["all"]["MRR"]["diff"] == pytest.approx(
            saved["MRR"] - ref["MRR"], abs=1e-6)
    monkeypatch.setattr(sys, "argv", ["edge_by_slice.py", str(st0), "--mix", "1.0", "--out", str(out)])
    with pytest.raises(SystemExit):
        _script("edge_by_slice").main()
