"""Tables per information setting with a tuned reference (``settings`` and ``tune`` in table.yaml)."""
from __future__ import annotations

import json

import pytest
import yaml

from stgnn import recipes
from stgnn.config import load_config

SPACE = [{"half_life": [7, None], "transition_weight": [0.0, 0.2]},
         {"half_life": [7], "transition_weight": [0.2], "time_weight": [0.3], "time_sigma": [2.0]}]
STGNN = {"model": "stgnn", "model_kwargs": {"dim": 8, "graph": "static", "graph_layers": 1},
         "train": {"epochs": 1, "batch_size": 512, "max_len": 8, "hist_len": 16}}


def _table(folder, **extra):
    folder.mkdir()
    spec = {
        "base": {"dataset": "synthetic", "train": {"progress": False, "tensorboard": False}},
        "models": [{"name": "Pop", "config": {"model": "pop"}},
                   {"name": "UserHistory", "config": {"model": "user_history"}},
                   {"name": "UH-hidden", "config": {"model": "user_history", "protocol": {"target_time": "hidden"}}},
                   {"name": "STGNN-hidden", "config": {**STGNN, "protocol": {"target_time": "hidden"}},
                    "prior": {"fusion": "late", "weight": 1.0}}],
        # one STGNN run in all (it is the slow row): the hidden one, in the second table
        "settings": [{"name": "default", "protocol": {"history": "train_only", "target_time": "known"},
                      "models": ["Pop", "UserHistory", "UH-hidden"]},
                     {"name": "realtime", "protocol": {"history": "all_past", "target_time": "known"},
                      "models": ["Pop", "UserHistory", "STGNN-hidden"]}],
        "tune": {"row": "UserHistory", "monitor": "MRR", "space": SPACE},
        "presets": {"tiny": {"seeds": [0]},
                    "cheap": {"seeds": [0], "models": ["Pop", "UserHistory"],
                              "settings": {"realtime": None}, "tune": {"space": {"half_life": [7, 30]}}}},
        "reference": "UserHistory", **extra}
    (folder / "table.yaml").write_text(yaml.safe_dump(spec))
    (folder / "published.yaml").write_text(yaml.safe_dump({"protocol": "p", "dataset": "synthetic", "rows": []}))
    return folder


def test_one_table_per_setting_with_the_reference_tuned_on_validation_under_it(isolated):
    table = _table(isolated / "reproduce_toy")
    md = recipes.reproduce(str(table), preset="tiny", out=isolated / "out")
    out = isolated / "out"
    assert (out / "table.md").read_text() == md
    assert "**Setting `default`: history=train_only, target_time=known**" in md
    assert "**Setting `realtime`: history=all_past, target_time=known**" in md
    default = json.loads((out / "default" / "table.json").read_text())
    realtime = json.loads((out / "realtime" / "table.json").read_text())
    assert [r["name"] for r in default["results"]] == ["Pop", "UserHistory", "UH-hidden"]
    # the time-hidden STGNN row brings the reference tuned and run without the target time, its pair
    assert [r["name"] for r in realtime["results"]] == ["Pop", "UserHistory", "STGNN-hidden", "UserHistory-hidden"]
    for data, history, hidden in ((default, "train_only", "UH-hidden"), (realtime, "all_past", "STGNN-hidden")):
        info = {r["name"]: r["information"] for r in data["results"]}
        assert all(i["history"] == history for i in info.values())
        assert info[hidden]["target_time"] == "hidden" and not info[hidden]["target_time_read"]
        assert data["meta"]["setting"]["history"] == history
        # the reference row runs with the choice recorded in the tuning file of its setting
        tuned = data["meta"]["tuned"]["UserHistory"]
        record = json.loads((out / ("default" if history == "train_only" else "realtime") /
                             f"tune_{history}_known.json").read_text())
        assert tuned["best"] == record["best"] and tuned["points"] == len(record["grid"]) == 5
        best_val = max(p["val"]["MRR"] for p in record["grid"])
        assert record["best_score"] == pytest.approx(best_val)
        assert record["information"] == {"history": history, "target_time": "known"}
        run = data["results"][1]
        cfg = load_config(out / ("default" if history == "train_only" else "realtime") / "runs" / "UserHistory"
                          / "seed_0" / "config.yaml")
        assert cfg.model_kwargs == record["best"]
        assert run["information"]["target_time_read"] == ("time_weight" in record["best"])
        assert sorted(data["meta"]["paired"]) == sorted(n for n in info if n != "UserHistory")
    # the STGNN row carries as its late prior the reference tuned under its own setting (target time hidden)
    cfg = load_config(out / "realtime" / "runs" / "STGNN-hidden" / "seed_0" / "config.yaml")
    record = json.loads((out / "realtime" / "tune_all_past_hidden.json").read_text())
    assert record["information"] == {"history": "all_past", "target_time": "hidden"}
    assert cfg.model_kwargs["prior"] == {**record["best"], "fusion": "late", "weight": 1.0}
    assert realtime["meta"]["tuned"]["STGNN-hidden"]["as"] == "prior"
    hidden_ref = load_config(out / "realtime" / "runs" / "UserHistory-hidden" / "seed_0" / "config.yaml")
    assert hidden_ref.model_kwargs == record["best"] and hidden_ref.protocol["target_time"] == "hidden"
    assert realtime["meta"]["tuned"]["UserHistory-hidden"]["best"] == record["best"]
    assert realtime["meta"]["paired_against"] == {"Pop": "UserHistory", "STGNN-hidden": "UserHistory-hidden",
                                                  "UserHistory-hidden": "UserHistory"}
    # the default table's UH-hidden row has no prior, so no tuned hidden reference: paired with UserHistory
    assert set(default["meta"]["paired_against"].values()) == {"UserHistory"}
    runs = out / "realtime" / "runs"
    pair = recipes.compare_runs(runs / "STGNN-hidden" / "seed_0", runs / "UserHistory-hidden" / "seed_0")
    assert realtime["meta"]["paired"]["STGNN-hidden"]["0"]["MRR"]["diff"] == pytest.approx(pair["MRR"]["diff"])
    assert "| STGNN-hidden | UserHistory-hidden | 0 |" in md
    assert "STGNN-hidden: the reference it uses as a prior picked on validation MRR" in md
    assert "UserHistory: its options picked on validation MRR over 5 grid points" in md


def test_a_preset_picks_settings_rows_and_a_smaller_grid_and_resume_reuses_the_search(isolated, monkeypatch):
    table = _table(isolated / "reproduce_toy")
    md = recipes.reproduce(str(table), preset="cheap", out=isolated / "out")
    assert "`realtime`" in md and "`default`" not in md
    record = json.loads((isolated / "out" / "realtime" / "tune_all_past_known.json").read_text())
    assert [p["kwargs"] for p in record["grid"]] == [{"half_life": 7}, {"half_life": 30}]
    # resuming reuses the recorded search instead of running it again

    def no_tuning(*a, **k):
        raise AssertionError("tuned again")

    monkeypatch.setattr("stgnn.train.tune.tune", no_tuning)
    again = recipes.reproduce(str(table), preset="cheap", out=isolated / "out", resume=True)
    assert again.split("Wall time")[0] == md.split("Wall time")[0]


def test_bad_settings_and_tune_blocks_are_refused(isolated):
    table = _table(isolated / "reproduce_toy", tune={"row": "Nope", "space": SPACE})
    with pytest.raises(ValueError, match="tune.row 'Nope' is not a row"):
        recipes.reproduce(str(table), preset="cheap", out=isolated / "a")
    table = _table(isolated / "t2", settings=[{"name": "x", "protocol": {}, "models": ["Ghost"]}])
    with pytest.raises(ValueError, match=r"setting 'x' names unknown rows \['Ghost'\]"):
        recipes.reproduce(str(table), preset="tiny", out=isolated / "b")
    table = _table(isolated / "t3")
    spec = yaml.safe_load((table / "table.yaml").read_text())
    spec["presets"]["tiny"]["settings"] = ["nowhere"]
    (table / "table.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match=r"preset settings \['nowhere'\]"):
        recipes.reproduce(str(table), preset="tiny", out=isolated / "c")


def test_the_nyc_table_declares_both_settings_tuning_and_hidden_rows(synthetic_split):
    import torch

    from stgnn.data.batch import SampleLoader
    from stgnn.recipes import EXPERIMENTS
    from stgnn.registry import build_for_split
    from stgnn.train.tune import expand_grid

    spec = yaml.safe_load((EXPERIMENTS / "reproduce_nyc" / "table.yaml").read_text())
    settings = {s["name"]: s for s in spec["settings"]}
    assert settings["default"]["protocol"] == {"history": "train_only", "target_time": "known"}
    assert settings["realtime"]["protocol"] == {"history": "all_past", "target_time": "known"}
    assert {"Pop", "UserHistory", "MF-BPR", "GETNext", "STGNN", "STGNN-hidden"} <= set(settings["realtime"]["models"])
    rows = {r["name"]: r for r in spec["models"]}
    assert rows["STGNN-hidden"]["config"]["protocol"] == {"target_time": "hidden"}
    assert spec["tune"]["row"] == spec["reference"] == "UserHistory"
    # make run stays cheap: the real-time table of the fast preset has only the no-training rows
    assert spec["presets"]["fast"]["settings"]["realtime"] == ["Pop", "UserHistory"]
    for preset_space in (spec["tune"]["space"], spec["presets"]["fast"]["tune"]["space"]):
        points = expand_grid(preset_space)
        refused = 0
        for p in points:   # a grid point is a reference, or one whose weights sum past 1 (tune records it)
            try:
                build_for_split("user_history", synthetic_split, **p)
            except ValueError as e:
                assert "sum < 1" in str(e) and p["transition_weight"] + p["time_weight"] >= 0.999
                refused += 1
        assert refused < len(points) / 4
    assert len(expand_grid(spec["tune"]["space"])) == 320
    # the rows with a prior build and score with the first grid point as their reference
    batch = SampleLoader(synthetic_split, "test", 8).make_batch(synthetic_split.samples["test"][:8])
    first = expand_grid(spec["tune"]["space"])[0]
    for name in ("STGNN", "STGNN-hidden"):
        kw = {**rows[name]["config"]["model_kwargs"], "dim": 8, "prior": {**first, **rows[name]["prior"]}}
        model = build_for_split("stgnn", synthetic_split, **kw).eval()
        with torch.no_grad():
            assert torch.isfinite(model.score(batch)).all() and model.prior.fusion == "late"


def test_settings_runs_only_the_named_tables_and_keeps_the_others_in_table_md(isolated):
    table = _table(isolated / "reproduce_toy")
    out = isolated / "out"
    first = recipes.reproduce(str(table), preset="tiny", out=out, models=["Pop"], settings=["default"])
    assert "`default`" in first and "`realtime`" not in first
    assert not (out / "realtime").exists()
    later = recipes.reproduce(str(table), preset="tiny", out=out, models=["Pop"], settings=["realtime"])
    assert "`realtime`" in later and "`default`" not in later
    assert not (out / "default" / "tune_all_past_known.json").exists()
    whole = (out / "table.md").read_text()
    assert whole.index("`default`") < whole.index("`realtime`")
    assert whole == (out / "default" / "table.md").read_text() + "\n" + (out / "realtime" / "table.md").read_text()
    with pytest.raises(ValueError, match=r"settings \['live'\] are not among the preset's \['default', 'realtime'\]"):
        recipes.reproduce(str(table), preset="tiny", out=out, settings=["live"])


def test_rows_that_read_no_history_score_the_same_in_both_history_settings(synthetic_split):
    """The NYC table's realtime setting lists only the rows whose scores depend on it: every other
    row, as the table configures it, reads the trajectory prefix alone, so its numbers are the
    default table's (the MF-BPR and GETNext rows of the 12-epoch record match digit for digit)."""
    import torch

    from stgnn.data.batch import SampleLoader
    from stgnn.recipes import EXPERIMENTS
    from stgnn.registry import build_for_split
    from stgnn.train.seed import seed_everything

    spec = yaml.safe_load((EXPERIMENTS / "reproduce_nyc" / "table.yaml").read_text())
    realtime = set(next(s for s in spec["settings"] if s["name"] == "realtime")["models"])
    targets = synthetic_split.samples["test"][:16]

    def batch(history, max_len):
        return SampleLoader(synthetic_split, "test", 16, history=history, max_len=max_len).make_batch(targets)

    assert not torch.equal(batch("train_only", 64).hist_poi, batch("all_past", 64).hist_poi)
    same = {}
    for row in spec["models"]:
        cfg = row["config"]
        kw = dict(cfg.get("model_kwargs") or {})
        if row.get("prior"):
            kw["prior"] = {**row["prior"], "half_life": 60, "transition_weight": 0.2}
        scores = []
        for h in ("train_only", "all_past"):
            seed_everything(0)
            model = build_for_split(cfg["model"], synthetic_split, **kw).eval()
            with torch.no_grad():
                scores.append(model.score(batch(h, (cfg.get("train") or {}).get("max_len", 64))))
        same[row["name"]] = torch.equal(*scores)
    # the history readers are exactly the rows with their own realtime numbers (Pop, MF-BPR and
    # GETNext are listed too: the record shows their equality on NYC)
    assert {n for n, s in same.items() if not s} == {"UserHistory", "STGNN", "STGNN-hidden"}
    assert {n for n, s in same.items() if not s} <= realtime
