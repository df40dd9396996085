"""DDP through torchrun: 2 Gloo ranks on CPU, tiny synthetic data.

* the gradient DDP gives every rank equals the one-process gradient of the same global batch;
* ``torchrun -m stgnn train`` trains, evaluates every sample once and writes one results folder;
* a 2-rank run killed mid-training and resumed ends exactly as an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as tmp_mp

from stgnn.train import distributed

BUDGET_S = 600  # every subprocess is bounded: a hung collective fails the test, not the suite


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- sharding (one process)
def test_train_shards_cover_each_global_batch():
    order = np.arange(10)
    shards = [distributed._shard_train(order, 4, world=2, rank=r) for r in (0, 1)]
    assert [per for _, per in shards] == [2, 2]
    (a, _), (b, _) = shards
    # step s: rank 0 and rank 1 together take global batch s (4 samples), padded by wrapping around
    steps = [sorted(np.r_[a[2 * s:2 * s + 2], b[2 * s:2 * s + 2]]) for s in range(3)]
    assert steps == [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 8, 9]]
    assert distributed.shard_train(order, 4) == (order, 4)  # one process: unchanged


def test_single_process_helpers_are_no_ops():
    assert not distributed.launched() and not distributed.is_active()
    assert distributed.setup("cpu") is None
    x = np.arange(5)
    assert distributed.shard(x) is x and distributed.gather_ranks(x) is x
    assert distributed.gather_object(3) == [3] and distributed.all_mean(2.5, 7) == 2.5
    m = torch.nn.Linear(2, 2)
    assert distributed.wrap(m, torch.device("cpu")) is m and distributed.unwrap(m) is m
    assert distributed.rng_states({"a": 1}) == {"rng": {"a": 1}}
    with pytest.raises(ValueError, match="written by 2 ranks"):
        distributed.own_rng({"rng": {}, "rng_ranks": [{}, {}]})


# ---------------------------------------------------------------------------- gradient equality
MODELS = {"stgnn": {"dim": 16, "dropout": 0.0, "graph_layers": 1},
          "sasrec": {"dim": 8, "max_len": 16, "dropout": 0.0},
          "gru4rec": {"dim": 8, "dropout": 0.0}}
#: the other trainable models: their losses draw random negatives (so no one-process twin), but
#: DDP must run them and leave every rank the same averaged gradient
OTHERS = {"mf_bpr": {"dim": 8}, "lstm": {"dim": 8, "cat_dim": 4, "time_dim": 4, "hidden": 8, "use_history": True},
          "lightgcn": {"dim": 8}, "stan": {"dim": 8, "history": 4, "max_len": 16},
          "getnext": {"user_dim": 8, "poi_dim": 8, "time_dim": 4, "cat_dim": 4, "gcn_hidden": [8], "attn_dim": 8,
                      "ffn": 16, "layers": 1, "max_len": 16}}
GLOBAL_BATCH = 24


def _build(name: str, split):
    from stgnn.registry import build_for_split

    torch.manual_seed(0)
    return build_for_split(name, split, **{**MODELS, **OTHERS}[name])


def _global_batch(split):
    from stgnn.data.batch import SampleLoader

    loader = SampleLoader(split, "train", GLOBAL_BATCH, max_len=16, hist_len=32)
    return loader, split.samples["train"][:GLOBAL_BATCH]


def _rank_grads(rank: int, world: int, port: int, split_path: str, out: str) -> None:
    """One DDP rank: its half of the global batch, backward, gradients saved."""
    from stgnn.data.split import Split

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    device = distributed.setup("cpu")
    split = Split.load(split_path)
    loader, targets = _global_batch(split)
    mine, per = distributed.shard_train(np.arange(len(targets)), GLOBAL_BATCH)
    grads = {}
    for name in (*MODELS, *OTHERS):
        model = _build(name, split).train()
        ddp = distributed.wrap(model, device)
        assert isinstance(ddp, torch.nn.parallel.DistributedDataParallel)
        distributed.loss(ddp, loader.make_batch(targets[mine[:per]])).backward()
        grads[name] = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    torch.save(grads, f"{out}/grads_{rank}.pt")
    distributed.cleanup()


def test_ddp_gradient_equals_single_process_gradient(synthetic_split, tmp_path):
    split_path = tmp_path / "split.npz"
    synthetic_split.save(split_path)
    ctx = tmp_mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_rank_grads, args=(r, 2, port, str(split_path), str(tmp_path))) for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(BUDGET_S)
        assert p.exitcode == 0, f"rank exited with {p.exitcode}"
    per_rank = [torch.load(tmp_path / f"grads_{r}.pt") for r in (0, 1)]
    torch.set_num_threads(1)
    loader, targets = _global_batch(synthetic_split)
    for name in MODELS:
        model = _build(name, synthetic_split).train()
        model.loss(loader.make_batch(targets)).backward()
        want = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
        assert set(per_rank[0][name]) == set(want), name
        for k, g in want.items():
            torch.testing.assert_close(per_rank[0][name][k], g, atol=1e-6, rtol=1e-5, msg=f"{name}.{k}")
            assert torch.equal(per_rank[0][name][k], per_rank[1][name][k])  # every rank steps alike
    for name in OTHERS:  # trained through DDP too: one averaged gradient on every rank
        assert per_rank[0][name] and per_rank[0][name].keys() == per_rank[1][name].keys(), name
        for k, g in per_rank[0][name].items():
            assert torch.equal(g, per_rank[1][name][k]), f"{name}.{k}"


# ---------------------------------------------------------------------------- torchrun runs
def _torchrun(out: Path, epochs: int, *extra: str, background: bool = False):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "stgnn",
           "train", "dataset=synthetic", "model=gru4rec", "model_kwargs={dim: 16}", f"train.epochs={epochs}",
           "train.device=cpu", "train.num_threads=1", "train.progress=false", "train.tensorboard=false",
           "train.batch_size=64", "train.patience=0", "name=ddp", f"output_dir={out}", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "STGNN_ROOT": str(out.parent / "data")}
    if background:
        return subprocess.Popen(cmd, cwd=out.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
    res = subprocess.run(cmd, cwd=out.parent, env=env, capture_output=True, text=True, timeout=BUDGET_S)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "runs"
    res = _torchrun(out, 3)
    return out, res


def _state(pid: int) -> str:
    """A process's state letter from ``/proc`` ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux ``/proc``): torchrun's ranks run in sessions of their
    own, so killing torchrun's process group leaves them running."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _started(out: Path, epochs: int) -> tuple[subprocess.Popen, list[int]]:
    """A background torchrun run, once its first checkpoint is written; with its ranks' pids
    (torchrun starts each rank in a session of its own)."""
    last = out / "ddp" / "seed_0" / "last.pt"
    proc = _torchrun(out, epochs, background=True)
    t0 = time.time()
    while not last.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() - t0 < BUDGET_S
        time.sleep(0.02)
    ranks = _descendants(proc.pid)
    assert len(ranks) >= 2, f"torchrun has {len(ranks)} worker processes"
    return proc, ranks


def _curves(run: Path) -> list[dict]:
    import csv

    rows = list(csv.DictReader((run / "curves.csv").read_text().splitlines()))
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_two_ranks_train_evaluate_once_and_write_one_folder(uninterrupted):
    out, res = uninterrupted
    assert sorted(p.name for p in (out / "ddp").iterdir()) == ["config.yaml", "seed_0", "summary.json"]
    run = out / "ddp" / "seed_0"
    env = json.loads((run / "env.json").read_text())
    assert env["distributed"] == {"world_size": 2, "backend": "gloo"}
    m = json.loads((run / "metrics.json").read_text())
    ranks = np.load(run / "ranks.npz")
    # every val/test sample scored once, in order: the two ranks' blocks gathered
    assert m["num_test"] == len(ranks["test_index"]) == len(np.unique(ranks["test_index"]))
    assert np.all(np.diff(ranks["test_index"]) > 0) and ranks["test_ranks"].min() >= 1
    assert m["epochs_run"] == 3 and len(_curves(run)) == 3
    assert res.stdout.count('"Acc@1"') == 1  # one rank printed the summary


def test_ddp_run_resumes_after_a_kill(uninterrupted, tmp_path):
    ref, _ = uninterrupted
    out = tmp_path / "runs"
    proc, ranks = _started(out, 3)
    for pid in [proc.pid, *ranks]:        # torchrun and both ranks, mid-run
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(60)
    t0 = time.time()
    while any(os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" for pid in ranks):  # gone before resuming
        assert time.time() - t0 < 60, "a killed rank is still running"
        time.sleep(0.05)
    assert not (out / "ddp" / "seed_0" / "metrics.json").exists()
    _torchrun(out, 3, "--resume")
    run, want = out / "ddp" / "seed_0", ref / "ddp" / "seed_0"
    assert _curves(run) == _curves(want)
    got, exp = (json.loads((r / "metrics.json").read_text()) for r in (run, want))
    assert got["test"] == exp["test"] and got["val"] == exp["val"] and got["best_epoch"] == exp["best_epoch"]


def test_killing_torchrun_alone_takes_its_ranks_with_it(tmp_path):
    """A SIGKILL of torchrun (``kill -9``, the OOM killer) must not leave its ranks training into
    the run folder: each rank asked the kernel for SIGKILL when its launcher dies."""
    out = tmp_path / "runs"
    proc, ranks = _started(out, 50)
    os.kill(proc.pid, signal.SIGKILL)  # torchrun alone
    proc.wait(60)
    t0 = time.time()
    while any(os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" for pid in ranks):
        assert time.time() - t0 < 60, "a rank outlived its torchrun by a minute"
        time.sleep(0.05)
    assert not (out / "ddp" / "seed_0" / "metrics.json").exists()


@pytest.mark.parametrize("ok", [True, False])
def test_cli_leaves_the_process_group_before_exit(tmp_path, monkeypatch, ok):
    """Left to exit-time destruction, a Gloo group sometimes aborts its rank (SIGABRT, "terminate
    called without an active exception") after the work is written: the CLI leaves it first,
    whether the command succeeded or failed."""
    import torch.distributed as td

    from stgnn import cli

    monkeypatch.chdir(tmp_path)
    td.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = "pop" if ok else "no_such_model"
        rc = cli.main(["train", "dataset=synthetic", f"model={model}", "name=p", f"output_dir={tmp_path}",
                       "train.progress=false", "train.tensorboard=false"])
        assert rc == (0 if ok else 2)
        assert not td.is_initialized()
    finally:
        if td.is_initialized():
            td.destroy_process_group()
