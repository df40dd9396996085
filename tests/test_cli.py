"""The command line: each sub-command on small data, exit codes and messages a user sees."""
from __future__ import annotations

import gzip

import pytest

from stgnn.cli import main

GOOD = "u1\tv1\tc1\tCoffee Shop\t40.7\t-74.0\t-240\tTue Apr 03 18:00:09 +0000 2012\n"


def test_data_check_reports_file_line_field(tmp_path, capsys):
    f = tmp_path / "bad.txt.gz"
    with gzip.open(f, "wt", encoding="utf-8") as fh:
        fh.write(GOOD + GOOD.replace("40.7", "95.0") + GOOD.replace("Tue Apr", "Tux Apr"))
    assert main(["data", "check", str(f), "--on-bad-row", "raise"]) == 2  # refused
    err = capsys.readouterr().err
    assert f"{f}:2: field 'lat'" in err and len(err.strip().splitlines()) == 1
    assert main(["data", "check", str(f)]) == 1  # default: skip, report by kind, and fail the check
    cap = capsys.readouterr()
    assert "2 bad rows skipped (lat: 1, utc_time: 1)" in cap.out and f"{f}:3: field 'utc_time'" in cap.out
    assert "CHECK FAILED: 2 bad rows" in cap.err
    clean = tmp_path / "clean.txt"
    clean.write_text(GOOD)
    assert main(["data", "check", str(clean)]) == 0
    assert "name='clean'" in capsys.readouterr().out


def test_data_stats_and_prepare_synthetic(tmp_path, capsys):
    root = str(tmp_path / "data")
    assert main(["data", "prepare", "synthetic", "--root", root]) == 0
    assert "Split(name='synthetic'" in capsys.readouterr().out
    assert main(["data", "stats", "synthetic", "--root", root, "--set", "min_poi_checkins=5"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "test" in out and "total" in out
    assert len(list((tmp_path / "data" / "processed").glob("synthetic-*.npz"))) == 2  # two protocols, two keys


def test_unknown_protocol_option_is_an_error(tmp_path, capsys):
    assert main(["data", "stats", "synthetic", "--root", str(tmp_path), "--set", "no_such_option=1"]) == 2
    err = capsys.readouterr().err
    assert "no_such_option" in err and "min_poi_checkins" in err


def test_graph_stats_synthetic(tmp_path, capsys):
    assert main(["graph", "stats", "synthetic", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for et in ("user__visits__poi", "poi__next__poi", "poi__near__poi", "poi__in__region", "poi__is_a__category"):
        assert et in out


def test_overrides_may_follow_options():
    from stgnn.cli import parse

    args = parse(["reproduce", "nyc", "--preset", "fast", "train.lr=0.01", "--models", "Pop", "--jobs", "2"])
    assert (args.table, args.preset, args.models, args.jobs, args.overrides) == ("nyc", "fast", ["Pop"], 2,
                                                                                 ["train.lr=0.01"])
    args = parse(["reproduce", "nyc", "a.b=1", "--preset", "fast", "c.d=2"])
    assert args.overrides == ["a.b=1", "c.d=2"]
    args = parse(["reproduce", "nyc", "a.b=1", "--settings", "realtime", "--resume"])
    assert (args.settings, args.overrides, args.resume) == (["realtime"], ["a.b=1"], True)
    with pytest.raises(SystemExit):
        parse(["reproduce", "nyc", "--preset", "fast", "--no-such-flag"])
    with pytest.raises(SystemExit):
        parse(["reproduce", "nyc", "--preset", "fast", "not_an_override"])


# --------------------------------------------------------------------------- own data, end to end

def _strict_json(text: str):
    """``json.loads`` that refuses NaN/Infinity (Python's default accepts them; JSON does not)."""
    import json

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture()
def own_csv(tmp_path, monkeypatch, synthetic_table):
    """The synthetic check-ins as someone's own CSV (own column names, epoch milliseconds)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STGNN_ROOT", str(tmp_path / "data"))
    df = synthetic_table.df
    out = tmp_path / "my.csv"
    out.write_text("visitor,place,when_ms,y,x,kind\n" + "".join(
        f"{u},{p},{t * 1000},{la},{lo},{c}\n" for u, p, t, la, lo, c in
        zip(df["user"], df["poi"], df["ts"], df["lat"], df["lon"], df["category"])))
    from stgnn import recipes

    recipes.clear_caches()
    yield out
    recipes.clear_caches()


def test_own_csv_prepare_then_train_then_reproduce(own_csv, tmp_path, capsys):
    cols = "user=visitor,item=place,time=when_ms,lat=y,lon=x,category=kind"
    assert main(["data", "prepare", str(own_csv)]) == 2  # no mapping yet: says which columns exist
    err = capsys.readouterr().err
    assert "field 'columns'" in err and "'visitor', 'place', 'when_ms'" in err and "--columns" in err
    assert main(["data", "prepare", str(own_csv), "--columns", cols, "--set", "min_poi_checkins=3",
                 "--set", "min_user_checkins=5"]) == 0
    assert "Split(name='my'" in capsys.readouterr().out
    # the mapping (and the ms unit it detected) is remembered: train and reproduce name the file only
    overrides = ["dataset=my.csv", "model=user_history", "protocol.min_poi_checkins=3",
                 "protocol.min_user_checkins=5", "train.progress=false", "train.tensorboard=false", "name=mine"]
    assert main(["train", *overrides]) == 0
    summary = _strict_json(capsys.readouterr().out)
    assert summary["MRR"]["mean"] > 0.1 and summary["MRR"]["std"] is None  # one seed: null, not NaN
    assert _strict_json((tmp_path / "results" / "mine" / "summary.json").read_text())["test"]["MRR"]["std"] is None
    metrics = _strict_json((tmp_path / "results" / "mine" / "seed_0" / "metrics.json").read_text())
    assert metrics["num_test"] > 0
    table = tmp_path / "reproduce_mine"
    table.mkdir()
    import yaml

    (table / "table.yaml").write_text(yaml.safe_dump({
        "base": {"train": {"progress": False, "tensorboard": False},
                 "protocol": {"min_poi_checkins": 3, "min_user_checkins": 5}},
        "models": [{"name": "UserHistory", "config": {"model": "user_history"}}],
        "presets": {"tiny": {"seeds": [0]}}}))
    (table / "published.yaml").write_text(yaml.safe_dump({"protocol": "p", "rows": []}))
    assert main(["reproduce", str(table), "--preset", "tiny", "--out", str(tmp_path / "rep"), "dataset=my.csv"]) == 0
    assert "UserHistory" in capsys.readouterr().out
    cfg = yaml.safe_load((tmp_path / "rep" / "runs" / "UserHistory" / "seed_0" / "config.yaml").read_text())
    assert cfg["dataset"] == "my.csv"


def test_dataset_columns_in_a_config_file(own_csv, tmp_path, capsys):
    (tmp_path / "exp.yaml").write_text(
        "dataset:\n  path: my.csv\n  columns: user=visitor,item=place,time=when_ms\n  time_unit: ms\n"
        "protocol: {min_poi_checkins: 3, min_user_checkins: 5}\nmodel: pop\nname: cfgrun\n"
        "train: {progress: false, tensorboard: false}\n")
    assert main(["train", "--config", str(tmp_path / "exp.yaml")]) == 0
    assert _strict_json(capsys.readouterr().out)["Acc@1"]["mean"] >= 0
    (tmp_path / "exp.yaml").write_text("dataset:\n  path: my.csv\n  columns: user=visitor,item=place\n")
    assert main(["train", "--config", str(tmp_path / "exp.yaml")]) == 2
    assert "missing ['time']" in capsys.readouterr().err


# --------------------------------------------------------------------------- refusals and bugs

def test_empty_split_is_refused_naming_the_filter(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STGNN_ROOT", str(tmp_path / "data"))
    assert main(["train", "dataset=synthetic", "model=pop", "protocol.min_poi_checkins=100000"]) == 2
    err = capsys.readouterr().err
    assert "train split is empty" in err and "min_poi_checkins=100000" in err
    assert not (tmp_path / "results" / "run" / "seed_0" / "metrics.json").exists()  # no NaN metrics written
    assert main(["data", "stats", "synthetic", "--root", str(tmp_path), "--set", "traj_gap_hours=-5"]) == 2
    assert "traj_gap_hours=-5.0: must be >= 0" in capsys.readouterr().err


def test_an_unexpected_error_is_reported_as_a_bug(monkeypatch, capsys):
    import stgnn.cli as cli

    def broken(args):
        return [][1]  # an IndexError inside stgnn: a bug, not bad input

    monkeypatch.setattr(cli, "cmd_data_stats", broken)
    assert main(["data", "stats", "synthetic"]) == 3
    err = capsys.readouterr().err
    assert "this is a bug" in err and "Traceback" in err and "IndexError" in err


def test_resume_needs_a_run_and_a_readable_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STGNN_ROOT", str(tmp_path / "data"))
    base = ["dataset=synthetic", "model=mf_bpr", "train.epochs=1", "train.progress=false",
            "train.tensorboard=false", "protocol.min_poi_checkins=3", "protocol.min_user_checkins=5"]
    assert main(["train", "--resume", "name=typo", *base]) == 2
    assert "no run named 'typo'" in capsys.readouterr().err
    assert main(["train", "name=real", *base]) == 0
    capsys.readouterr()
    run = tmp_path / "results" / "real" / "seed_0"
    (run / "metrics.json").unlink()  # unfinished: resume continues from last.pt
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:100])
    orphan = run / ".last.pt.999999999.abcd.tmp"  # left by a writer that is gone
    orphan.write_bytes(b"half")
    assert main(["train", "--resume", "name=real", *base]) == 2
    err = capsys.readouterr().err
    assert "results/real/seed_0/last.pt: cannot read this checkpoint" in err and "delete it" in err
    assert not orphan.exists()
