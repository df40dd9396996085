"""Environment capture for results (``env.json``) and an install check (``--check``)."""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import subprocess
import sys
from typing import Any


def _version(mod: str) -> str | None:
    try:
        return getattr(importlib.import_module(mod), "__version__", "unknown")
    except Exception:  # noqa: BLE001 - an optional package that fails to import is "absent"
        return None


def git_sha(cwd: str | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=cwd or os.path.dirname(os.path.abspath(__file__)))
        sha = out.stdout.strip()
        if out.returncode != 0 or len(sha) != 40:  # not a git checkout (e.g. a copied tree)
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=cwd or os.path.dirname(os.path.abspath(__file__)))
        return sha + ("-dirty" if dirty.stdout.strip() else "")
    except Exception:  # noqa: BLE001
        return None


def environment(device: str | None = None) -> dict[str, Any]:
    """Versions, device and provenance of a run (written as ``env.json``)."""
    import torch

    cuda = torch.cuda.is_available()
    dist = torch.distributed
    ranks = ({"distributed": {"world_size": dist.get_world_size(), "backend": dist.get_backend()}}
             if dist.is_available() and dist.is_initialized() else {})  # under torchrun only
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_geometric": _version("torch_geometric"),
        "torch_scatter": _version("torch_scatter"),
        "torch_sparse": _version("torch_sparse"),
        "pyg_lib": _version("pyg_lib"),
        "numpy": _version("numpy"),
        "cuda": torch.version.cuda,
        "cuda_available": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "device": device or ("cuda" if cuda else "cpu"),
        "num_threads": torch.get_num_threads(),
        "git_sha": git_sha(),
        "command": " ".join(sys.argv),
        **ranks,
    }


def check_install(expected_torch: str | None = None) -> list[str]:
    """Problems with the installed stack (empty list = fine)."""
    problems: list[str] = []
    import torch

    if expected_torch and not torch.__version__.startswith(expected_torch):
        problems.append(f"torch is {torch.__version__}, expected {expected_torch}")
    for mod in ("torch_geometric", "torch_scatter", "torch_sparse", "torch_geometric_temporal",
                "sentence_transformers", "geopandas"):
        if _version(mod) is None:
            problems.append(f"cannot import {mod}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--check", action="store_true", help="verify the installed stack; exit 1 on problems")
    p.add_argument("--torch", default=os.environ.get("STGNN_EXPECT_TORCH"), help="expected torch version prefix")
    args = p.parse_args(argv)
    info = environment()
    for k in ("python", "torch", "torch_geometric", "torch_scatter", "torch_sparse", "cuda", "device"):
        print(f"{k:16s} {info[k]}")
    if args.check:
        problems = check_install(args.torch)
        for pr in problems:
            print(f"ERROR: {pr}", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
