"""Recipes end to end on the synthetic dataset: runs write their files, tables come from them."""
from __future__ import annotations

import json

import pytest
import yaml

from stgnn import recipes
from stgnn.config import load_config


def _table(folder):
    folder.mkdir()
    (folder / "table.yaml").write_text(yaml.safe_dump({
        "base": {"dataset": "synthetic", "train": {"progress": False, "tensorboard": False}},
        "models": [{"name": "Pop", "config": {"model": "pop"}},
                   {"name": "UserHistory", "config": {"model": "user_history"}},
                   {"name": "MF-BPR", "config": {"model": "mf_bpr", "train": {"epochs": 2, "batch_size": 512}}}],
        "presets": {"tiny": {"seeds": [0, 1]}},
        "reference": "UserHistory",
    }))
    (folder / "published.yaml").write_text(yaml.safe_dump({
        "protocol": "test protocol", "dataset": "synthetic",
        "rows": [{"model": "Paper", "venue": "X'24", "acc1": 0.5, "acc5": None, "acc10": None, "mrr": 0.6,
                  "source": "a citation"}]}))
    return folder


def test_reproduce_writes_table_from_run_files(isolated):
    table = _table(isolated / "reproduce_toy")
    md = recipes.reproduce(str(table), preset="tiny", out=isolated / "out")
    out = isolated / "out"
    assert (out / "table.md").read_text() == md
    data = json.loads((out / "table.json").read_text())
    names = [r["name"] for r in data["results"]]
    assert names == ["Pop", "UserHistory", "MF-BPR"]
    for r in data["results"]:
        for seed in (0, 1):
            run = out / "runs" / r["name"] / f"seed_{seed}"
            for f in ("config.yaml", "env.json", "metrics.json", "curves.csv"):
                assert (run / f).is_file(), (run, f)
            metrics = json.loads((run / "metrics.json").read_text())
            assert metrics["test"]["Acc@1"] == pytest.approx(r["per_seed"][str(seed)]["Acc@1"]
                                                              if str(seed) in r["per_seed"] else
                                                              r["per_seed"][seed]["Acc@1"])
    pop = data["results"][0]["summary"]["Acc@1"]
    assert pop["std"] == 0.0  # a count model does not depend on the seed
    # the personal-history baseline beats popularity on planted routines
    assert data["results"][1]["summary"]["MRR"]["mean"] > pop["mean"] + 0.1
    assert "| Paper (X'24) | 0.5000 | — | — | — | 0.6000 | a citation |" in md
    assert "**Pop** (ours)" in md
    paired = data["meta"]["paired"]
    assert sorted(paired) == ["MF-BPR", "Pop"]
    d = paired["Pop"]["0"]["MRR"]
    assert d["hi"] < 0 and d["lo"] <= d["diff"] <= d["hi"]  # Pop is clearly worse than UserHistory
    assert "| Pop | 0 |" in md
    csv_lines = (out / "table.csv").read_text().splitlines()
    assert csv_lines[0].startswith("model,origin,Acc@1_mean,Acc@1_std")
    assert len(csv_lines) == 1 + 3 + 1


def test_row_config_is_what_reproduce_trains(isolated):
    """Benchmarks build a row's config with ``row_config``: it must be the config the table trains."""
    from stgnn.config import to_dict
    from stgnn.recipes.runs import _config_diff

    table = _table(isolated / "reproduce_toy")
    spec = yaml.safe_load((table / "table.yaml").read_text())
    spec["presets"]["tiny"]["per_model"] = {"MF-BPR": {"train": {"epochs": 1}}}
    (table / "table.yaml").write_text(yaml.safe_dump(spec))
    recipes.reproduce(str(table), preset="tiny", models=["MF-BPR"], seeds=[0], out=isolated / "out")
    trained = yaml.safe_load((isolated / "out" / "runs" / "MF-BPR" / "seed_0" / "config.yaml").read_text())
    cfg = recipes.row_config(str(table), "MF-BPR", preset="tiny", out=isolated / "out")
    assert _config_diff(trained, to_dict(cfg)) == [] and cfg.train.epochs == 1
    assert recipes.row_config(str(table), "MF-BPR").train.epochs == 2  # no preset: the row's own
    with pytest.raises(ValueError, match="no row 'LSTM'"):
        recipes.row_config(str(table), "LSTM")
    with pytest.raises(ValueError, match="unknown preset"):
        recipes.row_config(str(table), "Pop", preset="nope")


def test_row_config_of_the_nyc_table_carries_setting_and_prior():
    ref = {"half_life": 60, "transition_weight": 0.2}
    cfg = recipes.row_config("nyc", "STGNN", setting="realtime", reference=ref)
    assert cfg.protocol == {"history": "all_past", "target_time": "known"}
    assert cfg.model_kwargs["prior"] == {**ref, "fusion": "late", "weight": 1.0}
    assert cfg.train.epochs == 12
    assert recipes.row_config("nyc", "UserHistory", reference=ref).model_kwargs == ref
    assert recipes.row_config("nyc", "STGNN").model_kwargs["prior"] == {"fusion": "late", "weight": 1.0}
    with pytest.raises(ValueError, match="unknown setting 'live'"):
        recipes.row_config("nyc", "STGNN", setting="live")


def test_reproduce_rejects_unknown_rows_and_presets(isolated):
    table = _table(isolated / "reproduce_toy")
    with pytest.raises(ValueError, match="unknown preset"):
        recipes.reproduce(str(table), preset="nope")
    with pytest.raises(ValueError, match="unknown model rows"):
        recipes.reproduce(str(table), preset="tiny", models=["LSTM"])
    with pytest.raises(ValueError, match="known tables"):
        recipes.reproduce("no_such_table")


def test_train_then_eval_same_metrics(isolated):
    res = recipes.train_from_config(None, ["dataset=synthetic", "model=mf_bpr", "name=mf", "train.epochs=2",
                                           "train.progress=false", "train.tensorboard=false", "seeds=[3]"])
    run = isolated / "results" / "mf" / "seed_3"
    saved = json.loads((run / "metrics.json").read_text())
    assert res["Acc@1"]["mean"] == pytest.approx(saved["test"]["Acc@1"])
    cfg = load_config(run / "config.yaml")
    assert cfg.seeds == [3] and cfg.train.seed == 3 and cfg.model == "mf_bpr"
    again = recipes.evaluate_run(run, part="test")
    assert again["MRR"] == pytest.approx(saved["test"]["MRR"], abs=1e-6)


def test_reproduce_resume_reuses_finished_runs_and_refuses_a_changed_config(isolated, monkeypatch):
    table = _table(isolated / "reproduce_toy")
    recipes.reproduce(str(table), preset="tiny", models=["Pop", "MF-BPR"], out=isolated / "out")
    run = isolated / "out" / "runs" / "MF-BPR" / "seed_0"
    before = (run / "metrics.json").read_bytes()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("stgnn.train.loop.fit", no_training)
    md = recipes.reproduce(str(table), preset="tiny", models=["Pop", "MF-BPR"], out=isolated / "out", resume=True)
    assert (run / "metrics.json").read_bytes() == before
    assert "**MF-BPR** (ours)" in md
    # a moved run folder is the same run: where it lives is not part of what it computed
    import shutil

    shutil.move(isolated / "out", isolated / "moved")
    recipes.reproduce(str(table), preset="tiny", models=["MF-BPR"], out=isolated / "moved", resume=True,
                      overrides=["train.progress=true"])
    shutil.move(isolated / "moved", isolated / "out")
    # so is a run trained by `stgnn train` under another name, its protocol's defaults left implicit
    saved_cfg = (run / "config.yaml").read_text()
    cfg = yaml.safe_load(saved_cfg)
    explicit = dict(cfg["protocol"])
    cfg["name"], cfg["protocol"] = "my_mf_run", {}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    recipes.reproduce(str(table), preset="tiny", models=["MF-BPR"], out=isolated / "out", resume=True)
    cfg["protocol"] = {**explicit, "history": "all_past"}  # but not one whose split differs
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=r"different config \(protocol.history: 'all_past' != 'train_only'"):
        recipes.reproduce(str(table), preset="tiny", models=["MF-BPR"], out=isolated / "out", resume=True)
    (run / "config.yaml").write_text(saved_cfg)
    with pytest.raises(ValueError, match=r"different config \(.*train.lr"):
        recipes.reproduce(str(table), preset="tiny", models=["MF-BPR"], out=isolated / "out", resume=True,
                          overrides=["train.lr=0.5"])
    assert (run / "metrics.json").read_bytes() == before


def test_reproduce_reports_slices_with_paired_cis(isolated):
    table = _table(isolated / "reproduce_toy")
    spec = yaml.safe_load((table / "table.yaml").read_text())
    spec["base"]["protocol"] = {"keep_unseen": True}
    spec["slices"] = ["cold POI", "warm POI", "revisit"]
    (table / "table.yaml").write_text(yaml.safe_dump(spec))
    recipes.reproduce(str(table), preset="tiny", models=["Pop", "UserHistory"], out=isolated / "out")
    data = json.loads((isolated / "out" / "table.json").read_text())
    md = (isolated / "out" / "table.md").read_text()
    pop, hist = data["results"]
    saved = json.loads((isolated / "out" / "runs" / "Pop" / "seed_0" / "slices.json").read_text())["test"]
    assert sorted(pop["slices"]) == ["cold POI", "revisit", "warm POI"]
    assert pop["slices"]["warm POI"]["n"] == saved["warm POI"]["n"] > 0
    assert pop["slices"]["warm POI"]["MRR"]["mean"] == pytest.approx(saved["warm POI"]["MRR"])
    assert saved["all"]["MRR"] == pytest.approx(pop["per_seed"]["0"]["MRR"])  # the "all" slice is the run
    paired = data["meta"]["paired_slices"]["Pop"]
    assert paired["revisit"]["0"]["MRR"]["hi"] < 0  # history wins on revisits by construction
    assert paired["revisit"]["0"]["MRR"]["n"] == pop["slices"]["revisit"]["n"]
    assert "| Pop | revisit | 0 |" in md and "| UserHistory | warm POI |" in md


def test_reproduce_in_parallel_processes_gives_the_sequential_table(isolated):
    table = _table(isolated / "reproduce_toy")
    one = ["train.num_threads=1"]   # same thread count either way: the runs are then bit-identical
    recipes.reproduce(str(table), preset="tiny", models=["UserHistory", "MF-BPR"], out=isolated / "seq",
                      overrides=one)
    md = recipes.reproduce(str(table), preset="tiny", models=["UserHistory", "MF-BPR"], out=isolated / "par",
                           overrides=one, jobs=2)
    seq, par = (json.loads((isolated / d / "table.json").read_text()) for d in ("seq", "par"))
    assert [r["per_seed"] for r in par["results"]] == [r["per_seed"] for r in seq["results"]]
    assert par["meta"]["paired"] == seq["meta"]["paired"]
    assert "MF-BPR" in md
    for seed in (0, 1):
        assert (isolated / "par" / "runs" / "MF-BPR" / f"seed_{seed}" / "metrics.json").is_file()


def test_a_failing_parallel_run_is_named(isolated):
    table = _table(isolated / "reproduce_toy")
    spec = yaml.safe_load((table / "table.yaml").read_text())
    spec["models"].append({"name": "Broken", "config": {"model": "mf_bpr", "model_kwargs": {"no_such_option": 1}}})
    (table / "table.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(RuntimeError, match="'Broken' seed [01] failed"):
        recipes.reproduce(str(table), preset="tiny", models=["Pop", "Broken"], out=isolated / "out", jobs=2)
    with pytest.raises(ValueError, match="jobs"):
        recipes.reproduce(str(table), preset="tiny", jobs=0)


def test_graph_snapshots_and_text_are_built_once_per_run(isolated, monkeypatch):
    """Two seeds of a graph + snapshots + text STGNN: each input is built once, fit builds nothing,
    and re-evaluating the run rebuilds nothing (it reads the run's inputs.pt)."""
    import stgnn.inputs.build as build
    from fakes import FakeText

    calls = {"graph": 0, "snapshots": 0, "text": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(build, "build_hetero_graph", counted("graph", build.build_hetero_graph))
    monkeypatch.setattr(build, "transition_snapshots", counted("snapshots", build.transition_snapshots))
    monkeypatch.setattr(build, "make_text_encoder", counted("text", lambda spec: FakeText()))
    over = ["dataset=synthetic", "model=stgnn", "name=st", "train.epochs=1", "train.progress=false",
            "train.tensorboard=false", "seeds=[0,1]", "model_kwargs={dim: 8, graph_layers: 1, snapshots: 2, "
            "text_model: fake}"]
    recipes.train_from_config(None, over)
    assert calls == {"graph": 1, "snapshots": 1, "text": 1}
    run = isolated / "results" / "st" / "seed_1"
    assert (run / "inputs.pt").is_file()
    saved = json.loads((run / "metrics.json").read_text())
    again = recipes.evaluate_run(run, part="test")
    assert calls == {"graph": 1, "snapshots": 1, "text": 1}
    assert again["MRR"] == pytest.approx(saved["test"]["MRR"], abs=1e-6)


def test_table_names_its_dataset_and_information_and_shows_only_its_published_rows(isolated):
    table = _table(isolated / "reproduce_toy")
    md = recipes.reproduce(str(table), preset="tiny", models=["Pop", "UserHistory"], seeds=[0], out=isolated / "a")
    assert md.startswith("# TOY table on synthetic: next-POI results (tiny preset, seeds [0])")
    assert ("Information setting: history=train_only, target_time=known; no row reads the target time." in md)
    assert "| Paper (X'24) |" in md                      # published on the dataset this table ran on
    data = json.loads((isolated / "a" / "table.json").read_text())
    assert data["meta"]["datasets"] == ["synthetic"]
    assert data["results"][0]["information"] == {"history": "train_only", "target_time": "known",
                                                 "target_time_read": False}
    # the same table on another dataset (the synthetic check-ins as a TSMC2014 file), target time hidden
    import datetime as dt

    from stgnn.data.sources.synthetic import generate

    path = isolated / "checkins.txt"
    cat_id: dict[str, str] = {}
    with open(path, "w") as f:
        for r in generate(num_users=40, num_pois=120, days=56, seed=0).df.itertuples():
            when = dt.datetime.fromtimestamp(r.ts, dt.timezone.utc).strftime("%a %b %d %H:%M:%S +0000 %Y")
            cid = cat_id.setdefault(r.category, f"{len(cat_id):024x}")
            f.write(f"{r.user}\t{r.poi}\t{cid}\t{r.category}\t{r.lat}\t{r.lon}\t{r.tz_offset_min}\t{when}\n")
    md = recipes.reproduce(str(table), preset="tiny", models=["Pop"], seeds=[0], out=isolated / "b",
                           overrides=[f"dataset={path}", "protocol.target_time=hidden"])
    assert md.startswith("# TOY table on checkins: next-POI results")
    assert "| Paper (X'24) |" not in md and "Published rows of synthetic not shown: this table ran on checkins." in md
    assert "target_time=hidden" in md
    assert (isolated / "b" / "table.csv").read_text().count("published") == 0
    metrics = json.loads((isolated / "b" / "runs" / "Pop" / "seed_0" / "metrics.json").read_text())
    assert metrics["dataset"] == "checkins" and metrics["information"]["target_time"] == "hidden"


def test_published_rows_must_name_their_dataset(isolated):
    table = _table(isolated / "reproduce_toy")
    pub = yaml.safe_load((table / "published.yaml").read_text())
    del pub["dataset"]
    (table / "published.yaml").write_text(yaml.safe_dump(pub))
    with pytest.raises(ValueError, match=r"row 0 \('Paper'\) names no dataset"):
        recipes.reproduce(str(table), preset="tiny")


def test_published_rows_match_their_dataset_without_case():
    """GETNext's benchmark files name the dataset ``NYC``; published.yaml says ``nyc``: same rows."""
    from stgnn.recipes.report import published_rows

    pub = {"dataset": "nyc", "rows": [{"model": "A"}, {"model": "B", "dataset": "tky"}]}
    assert [p["model"] for p in published_rows(pub, ["NYC"])] == ["A"]
    assert [p["model"] for p in published_rows(pub, ["TKY", "nyc"])] == ["A", "B"]
    assert published_rows(pub, ["ca"]) == []
