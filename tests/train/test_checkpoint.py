import random

import numpy as np
import pytest
import torch

from stgnn.train.checkpoint import load_checkpoint, save_checkpoint
from stgnn.train.seed import rng_state, seed_everything, set_rng_state


def draws():
    return (random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(3).tolist())


def test_rng_state_roundtrip_through_checkpoint(tmp_path):
    seed_everything(3)
    np.random.randn()  # leave a cached gaussian in numpy's state
    save_checkpoint(tmp_path / "s.pt", {"rng": rng_state()})
    first = draws()
    set_rng_state(load_checkpoint(tmp_path / "s.pt")["rng"])  # weights_only load
    assert draws() == first


def test_seed_everything_is_repeatable():
    g1 = seed_everything(7)
    a = draws(), torch.randperm(10, generator=g1).tolist()
    g2 = seed_everything(7)
    b = draws(), torch.randperm(10, generator=g2).tolist()
    assert a == b
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    seed_everything(8)
    assert draws() != a[0]


def test_save_load_and_atomicity(tmp_path):
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(lin.parameters(), lr=0.1)
    lin(torch.ones(1, 3)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "c.pt", {"model": lin.state_dict(), "optimizer": opt.state_dict(), "epoch": 4,
                                        "rows": [{"epoch": 1, "val_MRR": 0.25}], "best": -float("inf")})
    st = load_checkpoint(tmp_path / "c.pt")
    assert st["epoch"] == 4 and st["rows"] == [{"epoch": 1, "val_MRR": 0.25}] and st["best"] == -float("inf")
    assert torch.equal(st["model"]["weight"], lin.weight.detach())
    opt2 = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    opt2.load_state_dict(st["optimizer"])
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"format": 999}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="format 999"):
        load_checkpoint(tmp_path / "old.pt")


@pytest.mark.parametrize("damage", [lambda d: d[: len(d) // 2], lambda d: b"", lambda d: b"not a zip" + d[9:]])
def test_a_corrupt_checkpoint_is_a_clear_error_naming_the_file(tmp_path, damage):
    from stgnn.train.checkpoint import CheckpointError

    save_checkpoint(tmp_path / "last.pt", {"epoch": 1, "model": torch.nn.Linear(2, 2).state_dict()})
    (tmp_path / "last.pt").write_bytes(damage((tmp_path / "last.pt").read_bytes()))
    with pytest.raises(CheckpointError, match=rf"{tmp_path / 'last.pt'}: cannot read this checkpoint.*delete it"):
        load_checkpoint(tmp_path / "last.pt")


def test_orphaned_temp_files_of_dead_writers_are_removed(tmp_path):
    import os
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid that has just exited
    orphan = tmp_path / f".last.pt.{dead}.abc123.tmp"
    live = tmp_path / f".last.pt.{os.getppid()}.def456.tmp"  # a running process's write in progress
    other = tmp_path / ".other.pt.1.x.tmp"
    for f in (orphan, live, other):
        f.write_bytes(b"partial")
    save_checkpoint(tmp_path / "last.pt", {"epoch": 2})
    assert not orphan.exists() and live.exists() and other.exists()
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
