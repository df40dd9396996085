"""Bad configs and command lines: each must be refused in one line naming the key, exit 2.

Shared by ``tests/test_bad_configs.py`` (which asserts) and ``report.py`` (README table). Every
case runs ``stgnn ARGS`` in a fresh folder holding the files :func:`setup` writes; ``{tmp}`` in
an argument is that folder. ``want`` must appear in the one-line error.
"""
from __future__ import annotations

import os
from pathlib import Path

from corpus import Outcome, run_cli

T = ["train", "train.progress=false", "train.tensorboard=false"]
CSV_FILE = "{tmp}/own.csv"

CASES: list[tuple[str, list[str], str]] = [
    # model and its arguments
    ("model_kwargs unknown", [*T, "model_kwargs.bogus=1"], "model_kwargs.bogus"),
    ("model_kwargs unknown (stgnn)", [*T, "model=stgnn", "model_kwargs.bogus=1"], "model_kwargs.bogus"),
    ("model_kwargs wrong type", [*T, "model=lstm", "model_kwargs.dim=abc"], "model_kwargs.dim"),
    ("model_kwargs not a mapping", [*T, "model_kwargs=5"], "model_kwargs"),
    ("model module missing", [*T, "model=foo.bar.Baz"], "model='foo.bar.Baz'"),
    ("model is a module", [*T, "model=os.path"], "model='os.path'"),
    ("model not a recommender", [*T, "model=stgnn.data.split.Split"], "not a Recommender"),
    ("model unknown name", [*T, "model=nosuch"], "model='nosuch'"),
    # protocol
    ("protocol unknown key", [*T, "protocol.bogus=1"], "protocol.bogus"),
    ("protocol count not a number", [*T, "protocol.min_poi_checkins=abc"], "protocol.min_poi_checkins"),
    ("protocol bad choice", [*T, "protocol.protocol=random"], "protocol.protocol"),
    ("protocol fractions length", [*T, "protocol.fractions=[0.5,0.5]"], "protocol.fractions"),
    ("protocol fractions sum", [*T, "protocol.fractions=[0.5,0.6,0.1]"], "fractions"),
    ("protocol prefix zero", [*T, "protocol.min_train_prefix=0"], "min_*_prefix"),
    ("protocol negative gap", [*T, "protocol.traj_gap_hours=-5"], "traj_gap_hours"),
    ("protocol bool", [*T, "protocol.keep_unseen=maybe"], "protocol.keep_unseen"),
    ("protocol not a mapping", [*T, "protocol=[1]"], "protocol"),
    # training options
    ("device not present", [*T, "train.device=cuda:99"], "train.device"),
    ("device unknown", [*T, "train.device=tpu"], "train.device"),
    ("epochs not an int", [*T, "train.epochs=ten"], "train.epochs"),
    ("schedule choice", [*T, "train.schedule=linear"], "train.schedule"),
    ("amp choice", [*T, "train.amp=fp8"], "train.amp"),
    ("batch size zero", [*T, "train.batch_size=0"], "batch_size"),
    ("unknown train key", [*T, "train.lrr=1"], "train.lrr"),
    ("unknown nested key", [*T, "train.x.y=1"], "train.x"),
    ("not a section", [*T, "name.sub=1"], "not a section"),
    ("override without =", [*T, "train.lr"], "key=value"),
    ("override empty key", [*T, "train..lr=1"], "empty key part"),
    ("no seeds", [*T, "seeds=[]"], "seeds"),
    ("seeds not a list", [*T, "seeds=abc"], "seeds"),
    # dataset
    ("dataset unknown", [*T, "dataset=nosuch"], "dataset='nosuch'"),
    ("dataset a folder", [*T, "dataset={tmp}/adir"], "is a folder"),
    ("dataset columns missing", [*T, f"dataset={CSV_FILE}", "dataset.columns=user=a"], "missing ['item', 'time']"),
    ("dataset time_unit", [*T, f"dataset={CSV_FILE}", "dataset.time_unit=weeks"], "dataset.time_unit"),
    ("dataset on_bad_row", [*T, f"dataset={CSV_FILE}", "dataset.on_bad_row=maybe"], "dataset.on_bad_row"),
    ("dataset time_window", [*T, f"dataset={CSV_FILE}", "dataset.time_window=[2100,2000]"], "time_window"),
    ("dataset mapping without path", [*T, "dataset={columns: {user: a}}"], "dataset.path"),
    ("own csv without mapping", [*T, f"dataset={CSV_FILE}"], "field 'columns'"),
    # config files
    ("config missing", [*T, "--config", "{tmp}/nope.yaml"], "no such file"),
    ("config a folder", [*T, "--config", "{tmp}/adir"], "is a folder"),
    ("config invalid yaml", [*T, "--config", "{tmp}/invalid.yaml"], "invalid.yaml:3: invalid YAML"),
    ("config not a mapping", [*T, "--config", "{tmp}/list.yaml"], "top level must be a mapping"),
    ("config unknown key", [*T, "--config", "{tmp}/unknown.yaml"], "unknown.yaml: unknown config key(s) ['modle']"),
    ("config bad value", [*T, "--config", "{tmp}/badvalue.yaml"], "train.epochs"),
    # runs
    ("resume a missing run", [*T, "--resume", "name=nothing_here"], "no run named 'nothing_here'"),
    ("eval a missing run", ["eval", "--run", "{tmp}/norun"], "no config.yaml"),
    # data commands
    ("data --set unknown", ["data", "stats", "synthetic", "--root", "{tmp}/d", "--set", "no_such_option=1"],
     "no_such_option"),
    ("data --set without =", ["data", "stats", "synthetic", "--root", "{tmp}/d", "--set", "min_poi_checkins"],
     "key=value"),
    ("data --set bad value", ["data", "stats", "synthetic", "--root", "{tmp}/d", "--set", "min_poi_checkins=abc"],
     "min_poi_checkins"),
    ("data --protocol", ["data", "stats", "synthetic", "--root", "{tmp}/d", "--protocol", "nope"], "protocol"),
    ("data empty split", ["data", "stats", "synthetic", "--root", "{tmp}/d", "--set", "min_user_checkins=100000"],
     "min_user_checkins=100000"),
    ("data root is a file", ["data", "stats", "synthetic", "--root", "{tmp}/afile"], "not a folder"),
    ("data columns for synthetic", ["data", "prepare", "synthetic", "--root", "{tmp}/d", "--columns",
                                    "user=a,item=b,time=c"], "do not apply"),
    ("check columns incomplete", ["data", "check", CSV_FILE, "--columns", "user=uid"], "missing ['item', 'time']"),
    ("check columns malformed", ["data", "check", CSV_FILE, "--columns", "user"], "KEY=COLUMN"),
    ("check time window", ["data", "check", CSV_FILE, "--columns", "user=uid,item=sku,time=ts", "--time-window",
                           "2100,2000"], "time_window"),
    ("check time unit", ["data", "check", CSV_FILE, "--columns", "user=uid,item=sku,time=ts", "--time-unit",
                         "weeks"], "time_unit"),
    ("check missing file", ["data", "check", "{tmp}/nope.txt"], "neither a dataset name"),
    # tables
    ("reproduce preset", ["reproduce", "nyc", "--preset", "nope"], "unknown preset"),
    ("reproduce table", ["reproduce", "no_such_table"], "no table"),
    ("reproduce jobs", ["reproduce", "nyc", "--jobs", "0"], "jobs"),
    ("reproduce model_kwargs", ["reproduce", "nyc", "--preset", "fast", "--models", "LSTM", "model_kwargs.bogus=1"],
     "model_kwargs.bogus"),
    ("reproduce rows", ["reproduce", "nyc", "--preset", "fast", "--models", "NoSuchRow"], "unknown model rows"),
]


def setup(tmp: Path) -> None:
    """The files the cases refer to."""
    (tmp / "adir").mkdir()
    (tmp / "afile").write_text("not a folder\n")
    (tmp / "invalid.yaml").write_text("train:\n  lr: [1, 2\n")
    (tmp / "list.yaml").write_text("- a\n- b\n")
    (tmp / "unknown.yaml").write_text("modle: lstm\n")
    (tmp / "badvalue.yaml").write_text("train:\n  epochs: many\n")
    (tmp / "own.csv").write_text("uid,sku,ts\na,x,1600000000\nb,y,1600000100\n")


def judge(name: str, argv: list[str], want: str, tmp: Path) -> Outcome:
    """Run one case in ``tmp`` (the current folder during the run)."""
    args = [a.replace("{tmp}", str(tmp)) for a in argv]
    old = os.getcwd()
    os.chdir(tmp)
    try:
        rc, out, err = run_cli(args)
    finally:
        os.chdir(old)
    got = f"exit {rc}; stderr: {err.strip()[:400]!r}"
    if rc == 3 or "Traceback" in err:
        return Outcome(name, "refuse", "traceback", got)
    lines = err.strip().splitlines()
    ok = rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and want.replace(
        "{tmp}", str(tmp)) in lines[0]
    return Outcome(name, "refuse", "refused" if ok else "wrong", f"want {want!r}; {got}")


def run_all(tmp: Path) -> list[Outcome]:
    """Every case, each in its own sub-folder of ``tmp`` (so no case sees another's files)."""
    out = []
    for i, (name, argv, want) in enumerate(CASES):
        folder = tmp / f"case{i:02d}"
        folder.mkdir()
        setup(folder)
        out.append(judge(name, argv, want, folder))
    return out
