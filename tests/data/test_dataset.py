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
