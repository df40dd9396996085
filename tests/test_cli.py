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
    with pytest.raises(SystemExit):
        parse(["reproduce", "nyc", "--preset", "fast", "--no-such-flag"])
    with pytest.raises(SystemExit):
        parse(["reproduce", "nyc", "--preset", "fast", "not_an_override"])
