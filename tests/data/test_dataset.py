"""The processed-data cache: hits, rebuilds of bad files, keys, force_reload."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import stgnn.data.dataset as ds
from stgnn.data.dataset import prepare
from stgnn.data.protocol import ProtocolConfig

CFG = ProtocolConfig(min_user_checkins=2, min_poi_checkins=2, traj_gap_hours=12)  # one trajectory a day


def write_tsmc(path: Path, extra_days: int = 0) -> Path:
    """A small TSMC2014-format file: 3 users x 2 POIs/day over 12 (+extra) days."""
    lines = []
    start = pd.Timestamp("2012-04-03 08:00", tz="UTC")
    for day in range(12 + extra_days):
        for u in range(3):
            for k, venue in enumerate((f"v{(u + day) % 4}", f"v{(u + day + 1) % 4}")):
                t = start + pd.Timedelta(days=day, hours=u + k)
                lines.append(f"{u}\t{venue}\tc{venue}\tCat {venue}\t40.7{venue[1]}\t-73.9\t-240\t"
                             f"{t.strftime('%a %b %d %H:%M:%S +0000 %Y')}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def raw(tmp_path: Path) -> Path:
    return write_tsmc(tmp_path / "nyc_tiny.txt")


def test_second_prepare_loads_from_cache(raw: Path, tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "data"
    a = prepare(raw, CFG, root=root)
    assert a.stats["cache"]["hit"] is False and a.num_checkins == 72
    manifest = json.loads(Path(a.stats["cache"]["file"]).with_suffix(".json").read_text())
    assert manifest["split_fingerprint"] == a.fingerprint()
    assert manifest["processing_version"] == ds.PROCESSING_VERSION
    assert manifest["raw"]["sha256"] == ds.sha256_file(raw)
    assert manifest["protocol"] == CFG.to_dict()
    b = prepare(raw, CFG, root=root)
    assert b.stats["cache"]["hit"] is True and b.fingerprint() == a.fingerprint()
    assert list(b.poi_ids) == list(a.poi_ids) and b.stats["final"] == a.stats["final"]


@pytest.mark.parametrize("damage,message", [
    (lambda d: d[: len(d) // 2], "truncated"),
    (lambda d: d[:100] + bytes([d[100] ^ 0xFF]) + d[101:], "corrupt"),
])
def test_bad_processed_file_is_rebuilt(raw: Path, tmp_path: Path, capsys, damage, message: str) -> None:
    root = tmp_path / "data"
    a = prepare(raw, CFG, root=root)
    path = Path(a.stats["cache"]["file"])
    path.write_bytes(damage(path.read_bytes()))
    capsys.readouterr()
    b = prepare(raw, CFG, root=root)
    err = capsys.readouterr().err
    assert message in err and "rebuilding" in err and str(path) in err
    assert b.stats["cache"]["hit"] is False and b.fingerprint() == a.fingerprint()
    assert prepare(raw, CFG, root=root).stats["cache"]["hit"] is True


def test_manifest_mismatch_is_rebuilt(raw: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    a = prepare(raw, CFG, root=root)
    mpath = Path(a.stats["cache"]["file"]).with_suffix(".json")
    m = json.loads(mpath.read_text())
    m["split_fingerprint"] = "0" * 16
    mpath.write_text(json.dumps(m))
    assert prepare(raw, CFG, root=root).stats["cache"]["hit"] is False
    assert "fingerprint" in capsys.readouterr().err
    mpath.write_text("{not json")
    assert prepare(raw, CFG, root=root).stats["cache"]["hit"] is False
    assert "unreadable" in capsys.readouterr().err


def test_keys_protocol_raw_and_force_reload(raw: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    a = prepare(raw, CFG, root=root)
    b = prepare(raw, ProtocolConfig(min_user_checkins=2, min_poi_checkins=2, traj_gap_hours=12, min_train_prefix=1,
                                    eval_last_only=False), root=root)
    assert b.stats["cache"]["key"] != a.stats["cache"]["key"] and b.stats["cache"]["hit"] is False
    c = prepare(raw, CFG, root=root, force_reload=True)
    assert c.stats["cache"]["hit"] is False and c.stats["cache"]["key"] == a.stats["cache"]["key"]
    assert "force_reload" in capsys.readouterr().err
    write_tsmc(raw, extra_days=1)  # new content (and size) -> new raw hash -> new key
    d = prepare(raw, CFG, root=root)
    assert d.stats["cache"]["key"] != a.stats["cache"]["key"] and d.num_checkins == 78
    assert ds.cache_key("x", CFG, {}) != ds.cache_key("x", CFG, {"drop_duplicates": False})
    assert len(list((root / "processed").glob("*.npz"))) == 3


def test_synthetic_source_is_cached(tmp_path: Path) -> None:
    kw = dict(num_users=6, num_pois=20, days=10, seed=3)
    a = prepare("synthetic", CFG, root=tmp_path, **kw)
    b = prepare("synthetic", CFG, root=tmp_path, **kw)
    assert (a.stats["cache"]["hit"], b.stats["cache"]["hit"]) == (False, True)
    assert a.fingerprint() == b.fingerprint() and a.name == "synthetic"


def test_cache_round_trip_is_identical(tmp_path: Path) -> None:
    """A cache hit gives back every field as built: values, dtypes, ids, flags, stats."""
    import dataclasses

    import numpy as np

    kw = dict(num_users=8, num_pois=30, days=12, seed=5)
    a = prepare("synthetic", CFG, root=tmp_path, **kw)
    b = prepare("synthetic", CFG, root=tmp_path, **kw)
    assert (a.stats["cache"]["hit"], b.stats["cache"]["hit"]) == (False, True)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            assert (x.tolist() == y.tolist()) if x.dtype == object else np.array_equal(x, y, equal_nan=True), f.name
        elif f.name in ("samples", "flags"):
            assert list(x) == list(y), f.name
            for k in x:
                assert x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]), (f.name, k)
        elif f.name == "stats":
            assert {k: v for k, v in x.items() if k != "cache"} == {k: v for k, v in y.items() if k != "cache"}
        else:
            assert x == y, f.name
    assert len(a.samples["test"]) and a.flags["revisit"].any()


# --------------------------------------------------------------------------- robustness

def test_raw_file_edited_in_place_with_size_and_mtime_kept_gets_a_new_key(raw: Path, tmp_path: Path) -> None:
    import os

    root = tmp_path / "data"
    a = prepare(raw, CFG, root=root)
    st = raw.stat()
    text = raw.read_text()
    raw.write_text(text.replace("Cat v1", "Cat w1", 1))  # same length, other content
    os.utime(raw, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert raw.stat().st_size == st.st_size and raw.stat().st_mtime_ns == st.st_mtime_ns
    b = prepare(raw, CFG, root=root)
    assert b.stats["cache"]["hit"] is False and b.stats["cache"]["key"] != a.stats["cache"]["key"]


@pytest.mark.parametrize("content", ["[1, 2]", '"text"', '{"processed": 5, "processing_version": 2}', "{}"])
def test_wrong_shaped_manifest_is_rebuilt_with_a_message(raw: Path, tmp_path: Path, capsys, content) -> None:
    root = tmp_path / "data"
    a = prepare(raw, CFG, root=root)
    Path(a.stats["cache"]["file"]).with_suffix(".json").write_text(content)
    capsys.readouterr()
    for force in (False, True):
        b = prepare(raw, CFG, root=root, force_reload=force)
        assert b.stats["cache"]["hit"] is False and b.fingerprint() == a.fingerprint()
        Path(a.stats["cache"]["file"]).with_suffix(".json").write_text(content)
    assert "rebuilding" in capsys.readouterr().err


def test_processed_being_a_file_is_a_clear_error(raw: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "processed").write_text("oops")
    with pytest.raises(ds.CacheError, match=r"processed exists and is not a folder.*--root"):
        prepare(raw, CFG, root=tmp_path / "data")


def test_stale_temp_files_are_removed_and_pairs_written_under_a_lock(raw: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    a = prepare(raw, CFG, root=root)
    npz = Path(a.stats["cache"]["file"])
    orphan = npz.parent / f".{npz.name}.12345.zz.tmp"
    orphan.write_bytes(b"half a split")
    assert prepare(raw, CFG, root=root).stats["cache"]["hit"] is True
    assert not orphan.exists() and npz.with_suffix(".lock").exists()


def test_concurrent_prepares_leave_one_consistent_pair(raw: Path, tmp_path: Path) -> None:
    import multiprocessing as mp

    root = tmp_path / "data"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=prepare, args=(raw, CFG), kwargs={"root": root}) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    # exactly one build: the others waited for the lock and found the cache valid
    b = prepare(raw, CFG, root=root)
    assert b.stats["cache"]["hit"] is True
    manifest = json.loads(Path(b.stats["cache"]["file"]).with_suffix(".json").read_text())
    assert manifest["split_fingerprint"] == b.fingerprint()


def test_own_table_options_are_remembered(tmp_path: Path) -> None:
    from stgnn.data.schema import DataError

    f = tmp_path / "mine.csv"
    f.write_text("who,what,when\n" + "".join(f"u{i % 4},p{i % 5},{1600000000 + 3600 * i + 86400 * (i // 20)}\n"
                                             for i in range(200)))
    cfg = ProtocolConfig(min_user_checkins=2, min_poi_checkins=2, traj_gap_hours=5)
    with pytest.raises(DataError, match="field 'columns'"):
        prepare(f, cfg, root=tmp_path / "data")
    a = prepare(f, cfg, root=tmp_path / "data", columns={"user": "who", "item": "what", "time": "when"})
    b = prepare(f, cfg, root=tmp_path / "data")  # the mapping was remembered
    assert b.stats["cache"]["hit"] is True and b.fingerprint() == a.fingerprint() and b.name == "mine"
    from stgnn.config import DatasetConfig

    c = prepare(DatasetConfig(path=str(f), columns="user=who,item=what,time=when"), cfg, root=tmp_path / "data")
    assert c.fingerprint() == a.fingerprint()


def test_empty_split_names_the_filter(raw: Path, tmp_path: Path) -> None:
    from stgnn.data.usable import SplitError

    with pytest.raises(SplitError, match=r"train split is empty.*frequency filters removed all 72.*"
                                         r"min_poi_checkins=1000"):
        prepare(raw, ProtocolConfig(min_poi_checkins=1000), root=tmp_path)
    with pytest.raises(SplitError, match=r"shorter than min_traj_len=2.*traj_gap_hours=0.0"):
        prepare(raw, ProtocolConfig(min_user_checkins=2, min_poi_checkins=2, traj_gap_hours=0), root=tmp_path)
    assert not list((tmp_path / "processed").glob("*.npz"))  # nothing empty was cached
