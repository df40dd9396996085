"""Fixtures of the serving tests: two trained runs on the synthetic dataset and a seeded store.

``serve_runs`` trains (once per session, ~15 s on 2 busy cores) a small STGNN (1 epoch) and a
UserHistory run with :func:`stgnn.recipes.run_one`, in a temporary results folder, so the tests
load real run folders exactly as ``stgnn serve`` does.
"""
from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory):
    """``{"STGNN": run_dir, "UserHistory": run_dir, "split": Split}`` on the synthetic dataset."""
    from stgnn import recipes
    from stgnn.config import ExperimentConfig, from_dict

    root = tmp_path_factory.mktemp("serve_runs")
    old = os.environ.get("STGNN_ROOT")
    os.environ["STGNN_ROOT"] = str(root / "data")
    threads = torch.get_num_threads()
    try:
        out: dict = {}
        for name, model, kw, train in [
            ("STGNN", "stgnn", {"graph_layers": 1, "graph": "static", "dim": 32}, {"epochs": 1, "batch_size": 256}),
            ("UserHistory", "user_history", {"transition_weight": 0.1}, {}),
        ]:
            cfg = from_dict(ExperimentConfig, {
                "name": name, "dataset": "synthetic", "model": model, "model_kwargs": kw,
                "train": {"progress": False, "tensorboard": False, "num_threads": 1, **train},
                "output_dir": str(root / "runs")})
            run = root / "runs" / name / "seed_0"
            recipes.run_one(cfg, 0, run)
            out[name] = run
        out["split"] = recipes.load_split(cfg)
        # served runs are rebuilt from the files a run keeps (inputs.pt), never from the split
        assert all((out[n] / "inputs.pt").is_file() for n in ("STGNN", "UserHistory"))
        out["root"] = root
        yield out
    finally:
        torch.set_num_threads(threads)
        if old is None:
            os.environ.pop("STGNN_ROOT", None)
        else:
            os.environ["STGNN_ROOT"] = old


@pytest.fixture()
def seeded_store(tmp_path, serve_runs):
    """A fresh durable store holding every check-in of the synthetic split."""
    from stgnn.serve.store import CheckinStore

    store = CheckinStore(tmp_path / "store.sqlite")
    store.seed_from_split(serve_runs["split"])
    yield store
    store.close()


@pytest.fixture(scope="session")
def stgnn_loaded(serve_runs):
    """The synthetic STGNN run loaded for serving (shared: do not mutate)."""
    from stgnn.serve.loading import load_run

    return load_run(serve_runs["STGNN"])


@pytest.fixture(scope="session")
def user_history_loaded(serve_runs):
    from stgnn.serve.loading import load_run

    return load_run(serve_runs["UserHistory"])

