"""A pre-split train/val/test set (GETNext's NYC_*.csv, or STHGCN's names for them): the split is
the files', not our time cut.

The fixture ``tests/data/presplit/getnext/`` (hand-made, 29 check-ins, times UTC-4) holds:

* user 1: train ``1_1`` A B C, ``1_2`` A D; val ``1_3`` B C; test ``1_4`` A B D and ``1_5`` Y A
  (Y occurs nowhere else: under ``unseen_context="drop"`` the prefix of ``1_5`` empties);
* user 2: train ``2_1`` B C E A; ``2_2`` starts in the train file (A) and ends in the test file (B);
  val ``2_3`` C X (X unseen);
* user 3: train ``3_1`` A C; val ``3_4`` B A; test ``3_2`` E A on 2012-04-02, the earliest day of
  the whole set (a time cut would make it train), and ``3_3`` D (one check-in);
* user 4: val ``4_1`` A B only (an unseen user).

``tests/data/presplit/sthgcn/`` is the same rows under STHGCN's column names.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from stgnn.data.dataset import prepare
from stgnn.data.protocol import ProtocolConfig, check_split, make_split
from stgnn.data.protocol_files import PresplitTable
from stgnn.data.schema import CheckinTable, DataError
from stgnn.data.sources import load_source, resolve, sniff_format
from stgnn.data.split import PARTS

HERE = Path(__file__).resolve().parent / "presplit"
GETNEXT, STHGCN = HERE / "getnext", HERE / "sthgcn"
POI = {"A": "4ca65", "B": "4cb66", "C": "4cc67", "D": "4cd68", "E": "4ce69", "X": "4cx88", "Y": "4cy89"}
NAME = {v: k for k, v in POI.items()}


def _targets(split, part: str) -> list[tuple[str, str]]:
    """``(user, POI letter)`` of each sample of ``part``, in sample order."""
    return [(str(split.user_ids[split.user[j]]), NAME[str(split.poi_ids[split.poi[j]])])
            for j in split.samples[part]]


def _prefix(split, j: int) -> list[str]:
    return [NAME[str(split.poi_ids[p])] for p in split.poi[split.prefix_start(np.array([j]))[0]:j]]


@pytest.fixture(scope="module")
def table() -> PresplitTable:
    return load_source(GETNEXT)


def test_any_file_of_the_set_or_its_folder_names_the_set():
    for spec in (GETNEXT, GETNEXT / "NYC_val.csv", GETNEXT / "NYC_test.csv", STHGCN / "NYC_train.csv"):
        res = resolve(spec)
        assert res.source.format == "presplit" and res.name == "NYC" and res.path.name == "NYC_train.csv"
    assert sniff_format(GETNEXT / "NYC_test.csv") == "presplit"


def test_the_table_keeps_each_check_in_s_file_and_trajectory(table):
    assert isinstance(table, PresplitTable) and len(table) == 29 and table.name == "NYC"
    assert np.bincount(table.part).tolist() == [12, 8, 9]  # rows of NYC_train / val / test.csv
    df = table.df
    assert df["ts"].is_monotonic_increasing and df["tz_offset_min"].eq(-240).all()
    first = df.index[0]  # user 3's test trajectory is the earliest check-in of all
    assert (df["user"][first], table.traj_id[first], table.part[first]) == ("3", "3_2", PARTS["test"])
    assert df["ts"][first] == 1333375200  # 2012-04-02 14:00 UTC = 10:00 local
    assert sorted(set(table.traj_id[df["user"].to_numpy() == "2"])) == ["2_1", "2_2", "2_3"]


def test_exact_samples_and_targets_under_sthgcn_rules(table):
    split = make_split(table)
    check_split(split)
    assert split.protocol["protocol"] == "files" and split.cuts == {}
    assert _targets(split, "train") == [("1", "B"), ("1", "C"), ("1", "D"), ("2", "C"), ("2", "E"), ("2", "A"),
                                        ("3", "C")]
    assert _targets(split, "val") == [("1", "C"), ("3", "A")]
    assert _targets(split, "test") == [("1", "D"), ("2", "B"), ("3", "A")]
    s = split.stats
    assert (s["val_candidates"], s["val_removed_unseen_user"], s["val_removed_unseen_poi"]) == (4, 1, 1)
    assert (s["test_candidates"], s["test_removed_prefix_emptied"]) == (4, 1)  # 1_5: Y dropped, prefix empty
    assert s["unseen_context_checkins"] == 4  # X, Y and user 4's two check-ins
    assert (split.num_users, split.num_pois, split.num_checkins, split.num_trajectories) == (3, 5, 25, 12)
    # prefixes are the earlier check-ins of the file's trajectory, across files
    test = dict(zip(_targets(split, "test"), split.samples["test"]))
    assert _prefix(split, test["1", "D"]) == ["A", "B"]
    assert _prefix(split, test["2", "B"]) == ["A"] and split.part[test["2", "B"] - 1] == PARTS["train"]
    assert _prefix(split, test["3", "A"]) == ["E"]


def test_keep_unseen_context_gives_sthgcn_s_counts(table):
    split = make_split(table, ProtocolConfig(unseen_context="keep"))
    check_split(split)
    assert len(split.samples["test"]) == 4 and len(split.samples["val"]) == 2  # nothing emptied
    j = dict(zip(_targets(split, "test"), split.samples["test"]))["1", "A"]
    assert _prefix(split, j) == ["Y"] and split.part[j - 1] == -1
    assert int((split.part == -1).sum()) == 4


def test_membership_follows_the_files_not_a_time_cut(table):
    split = make_split(table)
    first = np.argmin(split.ts)  # 2012-04-02, user 3's test trajectory
    assert split.part[first] == PARTS["test"] and split.ts[first] == table.df["ts"].min()
    # the same check-ins cut by time: that trajectory becomes training data
    plain = make_split(CheckinTable(table.df.copy(), name="NYC"),
                       ProtocolConfig(min_user_checkins=1, min_poi_checkins=1))
    assert plain.protocol["protocol"] == "time_cut" and plain.part[np.argmin(plain.ts)] == PARTS["train"]
    assert _targets(plain, "test") != _targets(split, "test")
    # each split trajectory is one trajectory id of the files
    key = {(u, t): tid for u, t, tid in zip(table.df["user"], table.df["ts"], table.traj_id)}
    for t in range(split.num_trajectories):
        sl = slice(split.traj_ptr[t], split.traj_ptr[t + 1])
        ids = {key[str(split.user_ids[u]), int(ts)] for u, ts in zip(split.user[sl], split.ts[sl])}
        assert len(ids) == 1


def test_sthgcn_names_read_the_same_split(table):
    a, b = make_split(table), make_split(load_source(STHGCN))
    assert a.fingerprint() == b.fingerprint()


def test_utc_times_in_the_raw_tsmc_spelling_read_the_same(table, tmp_path):
    folder = _copy(tmp_path, {"test": ("2012-04-12 13:00:00+00:00", "Thu Apr 12 13:00:00 +0000 2012")})
    assert make_split(load_source(folder)).fingerprint() == make_split(table).fingerprint()


def test_options_that_a_file_split_cannot_apply(table):
    with pytest.raises(ValueError, match="leave_last cannot apply"):
        make_split(table, ProtocolConfig(protocol="leave_last"))
    with pytest.raises(ValueError, match="protocol='files'.*has none"):
        make_split(CheckinTable(table.df.copy()), ProtocolConfig(protocol="files"))
    # filters and the time cut do not apply: the files are the benchmark
    same = make_split(table, ProtocolConfig(min_user_checkins=50, fractions=(0.5, 0.25, 0.25), traj_gap_hours=1))
    ref = make_split(table)
    assert same.protocol["protocol"] == "files" and same.stats["presplit"]["ignored_options"][0] == "min_user_checkins"
    for k in ("user", "poi", "ts", "part", "traj_ptr"):
        assert np.array_equal(getattr(same, k), getattr(ref, k)), k
    assert all(np.array_equal(same.samples[k], ref.samples[k]) for k in PARTS)


def test_prepare_caches_and_every_file_is_in_the_key(tmp_path):
    folder = tmp_path / "nyc"
    shutil.copytree(GETNEXT, folder)
    a = prepare(folder, root=tmp_path / "data")
    b = prepare(folder / "NYC_test.csv", root=tmp_path / "data")
    assert (a.stats["cache"]["hit"], b.stats["cache"]["hit"]) == (False, True)
    assert a.stats["cache"]["key"] == b.stats["cache"]["key"] and len(b.samples["test"]) == 3
    val = folder / "NYC_val.csv"
    val.write_text(val.read_text().replace("2012-04-10 14:00:00+00:00", "2012-04-10 14:30:00+00:00"))
    c = prepare(folder, root=tmp_path / "data")
    assert not c.stats["cache"]["hit"] and c.stats["cache"]["key"] != a.stats["cache"]["key"]


# --------------------------------------------------------------------------- bad sets

def _copy(tmp_path: Path, edit: dict[str, tuple[str, str]] | None = None, drop: str | None = None) -> Path:
    """The fixture in ``tmp_path/set``, with ``{part: (old, new)}`` replaced in a file's text."""
    out = tmp_path / "set"
    shutil.copytree(GETNEXT, out)
    for part, (old, new) in (edit or {}).items():
        f = out / f"NYC_{part}.csv"
        assert old in f.read_text()
        f.write_text(f.read_text().replace(old, new, 1))
    if drop:
        (out / f"NYC_{drop}.csv").unlink()
    return out


def test_bad_values_are_located_by_file_line_field(tmp_path):
    bad = _copy(tmp_path, {"val": ("2012-04-09 15:00:00+00:00", "2012-04-31 15:00:00+00:00")})
    with pytest.raises(DataError, match=r"NYC_val.csv:5: field 'UTC_time': cannot parse '2012-04-31"):
        load_source(bad)
    bad = _copy(tmp_path / "b", {"test": ("40.7604,-73.9604", "140.7604,-73.9604")})
    with pytest.raises(DataError, match=r"NYC_test.csv:4: field 'lat'"):
        load_source(bad / "NYC_train.csv")


def test_a_trajectory_of_two_users_or_overlapping_trajectories_are_refused(tmp_path):
    shared = _copy(tmp_path, {"test": (",3_3,", ",1_5,")})  # user 3's check-in under user 1's trajectory id
    with pytest.raises(DataError, match=r"NYC_test.csv:10: field 'trajectory_id': trajectory '1_5' holds "
                                        r"check-ins of user '3' and of user '1' \(NYC_test.csv:5\)"):
        load_source(shared)
    # user 1's val trajectory 1_3 moved inside 1_1 (2012-04-03 10:00-12:00 local)
    overlap = _copy(tmp_path / "o", {"val": ("2012-04-10 13:00:00+00:00", "2012-04-03 14:30:00+00:00")})
    with pytest.raises(DataError, match=r"field 'trajectory_id'.*trajectories of user '1' overlap in time"):
        load_source(overlap)


def test_incomplete_or_foreign_sets_say_what_is_missing(tmp_path):
    with pytest.raises(DataError, match=r"needs \['NYC_val.csv'\] beside NYC_train.csv"):
        load_source(_copy(tmp_path, drop="val") / "NYC_train.csv")
    no_time = _copy(tmp_path / "t")
    for f in no_time.iterdir():
        f.write_text(f.read_text().replace("UTC_time", "utc"))
    with pytest.raises(DataError, match=r"NYC_train.csv:1: field 'UTC_time': column 'UTC_time' missing"):
        load_source(no_time)
    derived = tmp_path / "train_sample.csv"  # STHGCN's derived sample file: local times only
    derived.write_text("check_ins_id,UTCTimeOffset,UTCTimeOffsetEpoch,pseudo_session_trajectory_id,UserId,"
                       "Latitude,Longitude,PoiId,PoiCategoryId,PoiCategoryName\n"
                       "0,2012-04-03 10:00:00,1333447200,0,0,40.73,-73.99,0,0,Bar\n")
    assert sniff_format(derived) == "presplit"
    with pytest.raises(DataError, match=r"train_sample.csv:1: field 'UTCTime': column 'UTCTime' missing from "
                                        r"this sthgcn header \(STHGCN's derived sample files hold local times only"):
        load_source(derived)
    lone = tmp_path / "mine.csv"
    lone.write_text((GETNEXT / "NYC_val.csv").read_text())
    with pytest.raises(DataError, match=r"mine.csv: field 'file': a pre-split set is three files named"):
        load_source(lone)


# --------------------------------------------------------------------------- end to end

def test_train_and_stats_on_the_set_from_the_command_line(tmp_path, monkeypatch, capsys):
    import json

    from stgnn import recipes
    from stgnn.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STGNN_ROOT", str(tmp_path / "data"))
    recipes.clear_caches()
    assert main(["data", "stats", str(GETNEXT)]) == 0
    out = capsys.readouterr().out
    assert "NYC: protocol files" in out and "test_prefix_emptied=1" in out
    for model in ("pop", "user_history"):
        assert main(["train", f"dataset={GETNEXT}", f"model={model}", f"name={model}", "train.progress=false",
                     "train.tensorboard=false"]) == 0
        capsys.readouterr()
        metrics = json.loads((tmp_path / "results" / model / "seed_0" / "metrics.json").read_text())
        assert metrics["num_test"] == 3 and 0 < metrics["test"]["MRR"] <= 1
    recipes.clear_caches()


def test_preflight_takes_a_folder_holding_a_set(tmp_path):
    from stgnn.config import ConfigError
    from stgnn.preflight import check_dataset

    check_dataset(str(GETNEXT))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="is a folder; give a data file, a folder holding one pre-split set"):
        check_dataset(str(tmp_path / "empty"))
    two = tmp_path / "two"
    shutil.copytree(GETNEXT, two)
    for f in GETNEXT.iterdir():
        shutil.copy(f, two / f.name.replace("NYC", "NYC2"))
    with pytest.raises(ConfigError, match=r"holds 2 pre-split sets \(NYC2_train.csv, NYC_train.csv\)"):
        check_dataset(str(two))


def test_an_empty_test_file_is_refused_naming_the_files(tmp_path):
    from stgnn.data.usable import SplitError

    folder = _copy(tmp_path)
    test = folder / "NYC_test.csv"
    test.write_text(test.read_text().split("\n", 1)[0] + "\n")
    with pytest.raises(SplitError, match=r"test split is empty: the pre-split set .*NYC_test.csv\) gives 0 test"):
        prepare(folder, root=tmp_path / "data")


def test_trajectories_starting_together_are_ordered_by_id(tmp_path, table):
    # user 3's one-check-in trajectory 3_3 moved to the start of its 3_1 (2012-04-06 14:00 UTC):
    # ordered by id, 3_1 (14:00, 15:00) then 3_3 (14:00) would go back in time, so it is refused
    same = _copy(tmp_path, {"test": ("2012-04-13 14:00:00+00:00", "2012-04-06 14:00:00+00:00")})
    with pytest.raises(DataError, match=r"NYC_test.csv:10: field 'trajectory_id'.*overlap in time"):
        load_source(same)
    # under the id 3_0 it comes first: 3_0 (14:00), 3_1 (14:00, 15:00) is time-ordered and kept
    f = same / "NYC_test.csv"
    f.write_text(f.read_text().replace(",3_3,", ",3_0,"))
    split = make_split(load_source(same))
    check_split(split)
    u = list(split.user_ids).index("3")
    block = slice(split.user_ptr[u], split.user_ptr[u + 1])
    assert np.all(np.diff(split.ts[block]) >= 0) and len(split.samples["train"]) == 7
