"""benchmarks/scale.py and benchmarks/peers.py: argument handling, the fitted exponents, the
RecBole export, and a tiny end-to-end scale run (single process and under torchrun)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_exponents_are_log_log_slopes():
    scale = _load("scale")
    rows = [{"n": 10 ** 5, "checkins": 10 ** 5, "t": 2.0, "m": 100.0},
            {"n": 10 ** 6, "checkins": 10 ** 6, "t": 20.0, "m": 100.0},
            {"n": 10 ** 7, "checkins": 10 ** 7, "t": 400.0, "m": 100.0}]
    exps = scale.exponents(rows, ("t", "m", "absent"))
    assert exps["t"]["1e5-1e6"] == 1.0 and exps["t"]["1e6-1e7"] == pytest.approx(1.301, abs=1e-3)
    assert exps["t"]["all"] == pytest.approx(1.151, abs=1e-3)  # least squares over the three
    assert exps["m"] == {"1e5-1e6": 0.0, "1e6-1e7": 0.0, "all": 0.0} and "absent" not in exps


@pytest.mark.parametrize("args", [["--device", "cuda"], ["--amp", "bf16"], ["--ddp", "2", "--device", "cuda:0"]])
def test_gpu_variant_refuses_clearly_without_a_gpu(args):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the GPU variant would run")
    res = _run("--sizes", "1000", *args, timeout=120)
    assert res.returncode == 2 and "need a CUDA device; none is visible here" in res.stderr


def test_memory_guard_skips_a_size_that_does_not_fit(tmp_path):
    res = _run("--sizes", "1e7", "--gb-per-1e7", "100000", "--out", str(tmp_path / "r.json"), timeout=120)
    assert res.returncode == 0 and "1e7: skipped" in res.stdout
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == []


@pytest.mark.slow
def test_tiny_scale_run_single_and_ddp(tmp_path):
    """A 3,000-check-in size end to end, then the same under torchrun with 2 Gloo ranks."""
    common = ["--sizes", "3000", "--model", "gru4rec", "--model-kwargs", '{"dim": 8}', "--train-samples", "300",
              "--val-samples", "50", "--eval-samples", "100", "--batch-size", "64", "--work", str(tmp_path / "w")]
    res = _run(*common, "--out", str(tmp_path / "single.json"))
    assert res.returncode == 0, res.stderr[-3000:]
    single = json.loads((tmp_path / "single.json").read_text())
    (row,) = single["rows"]
    assert row["checkins"] > 2000 and row["world_size"] == 1
    assert row["eval_samples"] == min(100, row["test_samples_total"]) > 0
    for k in ("prepare_s", "cache_load_s", "train_s", "train_cpu_s", "eval_s", "peak_rss_mb", "generate_s"):
        assert row[k] > 0, k
    assert "train s/1e5" in res.stdout and "exponent b" in res.stdout  # the table was printed
    res = _run(*common, "--ddp", "2", "--baseline", str(tmp_path / "single.json"), "--out", str(tmp_path / "ddp.json"))
    assert res.returncode == 0, res.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    assert ddp["rows"][0]["world_size"] == 2 and len(ddp["rows"][0]["peak_rss_mb_per_rank"]) == 2
    assert ddp["rows"][0]["eval_samples"] == row["eval_samples"] and set(ddp["speedup_train"]) == {"3000"}
    assert "training speed-up over" in res.stdout


def test_recbole_export_holds_our_samples(synthetic_split, tmp_path):
    peers = _load("peers")
    counts = peers.export_atomic(synthetic_split, tmp_path, max_len=3)
    assert counts == {k: len(v) for k, v in synthetic_split.samples.items()}
    lines = (tmp_path / "nyc_seq" / "nyc_seq.test.inter").read_text().splitlines()
    assert lines[0] == "user_id:token\titem_id_list:token_seq\titem_id:token" and len(lines) == counts["test"] + 1
    j = int(synthetic_split.samples["test"][0])
    start = max(int(synthetic_split.prefix_start([j])[0]), j - 3)
    user, prefix, target = lines[1].split("\t")
    assert user == f"u{synthetic_split.user[j]}" and target == f"p{synthetic_split.poi[j]}"
    assert prefix.split() == [f"p{p}" for p in synthetic_split.poi[start:j]]  # the last 3 of the prefix
    gen = (tmp_path / "nyc_gen" / "nyc_gen.train.inter").read_text().splitlines()
    assert gen[0] == "user_id:token\titem_id:token" and len(gen) == counts["train"] + 1
