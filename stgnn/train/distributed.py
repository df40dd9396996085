"""Several processes, one training: ``torch.distributed`` as ``torchrun`` sets it up.

``torchrun --nproc_per_node N -m stgnn train ...`` starts ``N`` copies of the same command with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous in the environment; :func:`setup` joins
the process group (Gloo on CPU, NCCL on GPU) and everything else here is a no-op in a plain
single process, so the single-process path stays exactly what it was. No home-made
distribution: the processes are torchrun's, the gradients are averaged by
:class:`~torch.nn.parallel.DistributedDataParallel`.

What the fit loop needs of it:

* :class:`LossModule`: DDP synchronises gradients of what its ``forward`` computed, while our loop
  trains ``model.loss(batch)``; the wrapper's ``forward`` *is* the loss, so DDP sees it.
* :func:`shard_train`: each rank's share of one epoch's (globally shuffled) sample order, padded
  so every rank runs the same number of steps (a rank with one step fewer would hang the others).
* :func:`shard` / :func:`gather_ranks`: evaluation split in contiguous blocks and gathered back in
  the original order, so metrics (and early stopping) are the same on every rank.
* :func:`gather_object`: per-rank RNG states into rank 0's checkpoint.
"""
from __future__ import annotations

import ctypes
import datetime
import os
import signal
import sys
from typing import Any

import numpy as np
import torch
import torch.distributed as td
from torch import nn

#: torchrun's environment variables: present means "started by torchrun".
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched() -> bool:
    """Started by ``torchrun`` (or anything that sets its environment) with more than one rank."""
    return all(k in os.environ for k in _ENV) and int(os.environ["WORLD_SIZE"]) > 1


def is_active() -> bool:
    """A process group of more than one rank is up."""
    return td.is_available() and td.is_initialized() and td.get_world_size() > 1


def setup(device: str = "auto", timeout_s: float = 1800.0) -> torch.device | None:
    """Join torchrun's process group once (no-op when not launched by torchrun).

    Args:
        device: the run's ``train.device``: ``cpu`` (Gloo), ``cuda``/``auto`` with GPUs present
            (NCCL, one GPU per local rank).
        timeout_s: how long a collective may wait for the other ranks.

    Returns:
        The device this rank must use (``cuda:<local rank>`` or ``cpu``), or ``None`` when not
        launched by torchrun.

    Raises:
        RuntimeError: ``device=cuda`` with fewer visible GPUs than local ranks.
    """
    if not launched():
        return None
    _die_with_launcher()
    local = int(os.environ["LOCAL_RANK"])
    gpu = device != "cpu" and torch.cuda.is_available()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={device!r} under torchrun but CUDA is not available; use device=cpu (Gloo)")
    if gpu and local >= torch.cuda.device_count():
        raise RuntimeError(f"local rank {local} has no GPU: {torch.cuda.device_count()} visible; "
                           "start at most one process per GPU (--nproc_per_node)")
    if not td.is_initialized():
        td.init_process_group("nccl" if gpu else "gloo", timeout=datetime.timedelta(seconds=timeout_s))
    if gpu:
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _die_with_launcher() -> None:
    """Linux: have the kernel SIGKILL this rank when the process that started it (torchrun) dies.

    torchrun starts each rank in a session of its own, so a SIGKILL of torchrun alone (``kill -9``,
    the OOM killer) used to leave the ranks training and writing into the run folder that a
    ``--resume`` of the same run then shares. Elsewhere (no ``prctl``) nothing changes.

    Raises:
        RuntimeError: the launcher died before this rank could ask (its parent is already init).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1  # <linux/prctl.h>
        if libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:
        raise RuntimeError("the torchrun that started this rank has already exited; not starting a rank without it")


def rank() -> int:
    return td.get_rank() if is_active() else 0


def world_size() -> int:
    return td.get_world_size() if is_active() else 1


def is_main() -> bool:
    """Rank 0, the one that writes results and checkpoints (always true in a single process)."""
    return rank() == 0


def barrier() -> None:
    if is_active():
        td.barrier()


def shard(samples: np.ndarray) -> np.ndarray:
    """This rank's contiguous block of ``samples`` (``np.array_split``: blocks differ by at most
    one); :func:`gather_ranks` puts the blocks back in order."""
    return np.array_split(np.asarray(samples), world_size())[rank()] if is_active() else samples


def shard_train(order: np.ndarray, batch_size: int) -> tuple[np.ndarray, int]:
    """This rank's share of one epoch's sample ``order`` and its per-rank batch size.

    ``batch_size`` is the global batch: each step, every rank takes ``ceil(batch_size / W)`` of
    it, so a run keeps its number of optimizer steps per epoch whatever the world size. The order
    is padded (by wrapping around, as ``DistributedSampler`` does) to a whole number of global
    batches' worth per rank, so every rank runs the same number of steps.

    Returns:
        ``(rank's samples in step order, per-rank batch size)``; unchanged in one process.
    """
    if world_size() == 1:
        return order, batch_size
    return _shard_train(order, batch_size, world_size(), rank())


def _shard_train(order: np.ndarray, batch_size: int, world: int, rank: int) -> tuple[np.ndarray, int]:
    per = -(-batch_size // world)
    steps = -(-len(order) // batch_size)
    padded = np.resize(order, steps * per * world) if len(order) else order
    # step s, rank r takes padded[(s * w + r) * per : ... + per]: global batch s, split in w
    return padded.reshape(steps, world, per)[:, rank].reshape(-1), per


def gather_object(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in one process)."""
    if not is_active():
        return [obj]
    out: list[Any] = [None] * world_size()
    td.all_gather_object(out, obj)
    return out


def gather_ranks(local: np.ndarray) -> np.ndarray:
    """Concatenate every rank's ``(S_r,)`` array in rank order (the inverse of :func:`shard`)."""
    if not is_active():
        return local
    return np.concatenate(gather_object(np.asarray(local)))


def all_mean(value: float, weight: float) -> float:
    """The ``weight``-weighted mean of ``value`` over ranks (``value`` in one process)."""
    if not is_active():
        return value
    t = torch.tensor([value * weight, weight], dtype=torch.float64)
    td.all_reduce(t)
    return float(t[0] / t[1]) if float(t[1]) else float("nan")


def seed_rank(seed: int) -> None:
    """Give each rank its own stream of the global RNGs (dropout, sampled negatives), derived from
    ``seed``; rank 0 keeps ``seed``'s. No-op in one process (nothing is reseeded)."""
    if not is_active() or rank() == 0:
        return
    from stgnn.train.seed import seed_everything

    s = seed + _RANK_SEED_STRIDE * rank()
    seed_everything(s, torch.are_deterministic_algorithms_enabled())


_RANK_SEED_STRIDE = 1_000_003


def rng_states(own: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint stores of the RNGs: ``{"rng": own}``, plus ``"rng_ranks"`` (every rank's,
    gathered to all) under torchrun, so a resumed run restores each rank's stream."""
    if not is_active():
        return {"rng": own}
    return {"rng": own, "rng_ranks": gather_object(own)}


def own_rng(state: dict[str, Any]) -> dict[str, Any]:
    """This rank's RNG state from a checkpoint written by :func:`rng_states`.

    Raises:
        ValueError: the checkpoint was written by another number of ranks (its RNG streams
            cannot be dealt out again; start the run afresh or resume with the same world size).
    """
    ranks = state.get("rng_ranks")
    if not is_active():
        if ranks is not None and len(ranks) > 1:
            raise ValueError(f"this checkpoint was written by {len(ranks)} ranks; resume it under torchrun "
                             f"with --nproc_per_node {len(ranks)} (in all)")
        return state["rng"]
    if ranks is None or len(ranks) != world_size():
        raise ValueError(f"this checkpoint was written by {1 if ranks is None else len(ranks)} rank(s), this run "
                         f"has {world_size()}; resume with the same number of processes")
    return ranks[rank()]


class ShardedEpochs:
    """A shuffling :class:`~stgnn.data.batch.SampleLoader` seen by one rank: each epoch draws the
    same global permutation on every rank (one ``randperm`` from the loader's generator, as in
    one process, so the generator state in checkpoints is the same everywhere) and yields this
    rank's share of every global batch (:func:`shard_train`)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.targets, self.batch_size = loader.targets, loader.batch_size

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Any:
        order = torch.randperm(len(self.targets), generator=self.loader.generator).numpy()
        mine, per = shard_train(order, self.batch_size)
        for i in range(0, len(mine), per):
            yield self.loader.make_batch(self.targets[mine[i:i + per]])


def epochs(loader: Any) -> Any:
    """``loader`` itself in one process; its :class:`ShardedEpochs` under torchrun."""
    return ShardedEpochs(loader) if is_active() else loader


class LossModule(nn.Module):
    """``forward(batch) = model.loss(batch)``: what DDP wraps, so that the gradient it averages
    is the training loss's (DDP only synchronises what goes through its ``forward``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> torch.Tensor:
        return self.model.loss(batch)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` as DDP of its :class:`LossModule` (``model`` itself in one process).

    ``find_unused_parameters``: a step may leave parameters without gradient (a node type no
    sampled neighbourhood reached, a switched-off branch), differently on each rank.
    ``broadcast_buffers=False``: buffers (distance tables, coordinates) are built from the data,
    identically on every rank; broadcasting them at every step would only cost time.
    """
    if not is_active():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(LossModule(model), device_ids=ids, find_unused_parameters=True,
                                               broadcast_buffers=False)


def unwrap(model: nn.Module) -> nn.Module:
    """The recommender inside a :func:`wrap` result (or ``model`` itself)."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return model.model if isinstance(model, LossModule) else model


def loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """The training loss through DDP when wrapped, else ``model.loss(batch)`` as before."""
    return model(batch) if isinstance(model, nn.parallel.DistributedDataParallel) else model.loss(batch)


def cleanup() -> None:
    """Leave the process group (no-op when none is up). Every process that joined one must call
    this before it exits: see :func:`stgnn.cli._leave_process_group`."""
    if td.is_available() and td.is_initialized():
        td.destroy_process_group()
