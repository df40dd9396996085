"""The training engine: one loop for every :class:`~stgnn.models.base.Recommender`.

``fit`` takes a model already built from its inputs (``Recommender.from_inputs``; it never
rebuilds them) and, for trainable models, optimises ``model.loss`` with AdamW, evaluates the
validation samples after every epoch, keeps the best epoch by ``cfg.monitor`` (early stopping
with ``cfg.patience``), and finally evaluates the best weights on val and test. Nothing here
branches on a model's name.

Reproducibility: every random source is seeded from ``cfg.seed``; ``last.pt`` holds the complete
state (all RNGs, the shuffle generator, optimizer, scheduler, scaler, counters), so a killed run
resumed with ``resume=True`` ends with exactly the metrics and weights of an uninterrupted run
on CPU. The scheduler's own options (e.g. cosine ``T_max``) are restored from the checkpoint.

Started by ``torchrun`` (:mod:`stgnn.train.distributed`), the same loop runs DistributedDataParallel:
each rank trains on its share of every global batch (``cfg.batch_size`` stays the global batch),
val/test are scored in blocks and gathered, rank 0 alone writes ``last.pt``/``best.pt``/curves, and
``last.pt`` holds every rank's RNG state. In one process none of this changes anything.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from stgnn.config import TrainConfig
from stgnn.data.batch import SampleLoader
from stgnn.data.information import InformationSetting
from stgnn.data.split import Split
from stgnn.eval.evaluate import autocast, evaluate
from stgnn.eval.metrics import metric_names, metrics_from_ranks
from stgnn.models.base import Recommender
from stgnn.train import distributed
from stgnn.train.checkpoint import BEST, LAST, load_checkpoint, save_checkpoint
from stgnn.train.history import History
from stgnn.train.logging import RunLogger
from stgnn.train.seed import rng_state, seed_everything, set_rng_state

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """A training loss was NaN or inf; names the epoch, step and the batch's sample indices.

    Attributes:
        epoch, step: 1-based epoch, 0-based step within it.
        sample_indices: ``(B,)`` target check-in indices of the offending batch.
    """

    def __init__(self, epoch: int, step: int, sample_indices: np.ndarray, value: float) -> None:
        self.epoch, self.step, self.sample_indices, self.value = epoch, step, sample_indices, value
        shown = sample_indices[:64].tolist()
        more = f" ... ({len(sample_indices)} in all)" if len(sample_indices) > 64 else ""
        super().__init__(f"non-finite training loss {value} at epoch {epoch}, step {step}; batch sample "
                         f"indices {shown}{more}. The last good checkpoint (last.pt) is unchanged; "
                         "lower train.lr, set train.clip_norm or train.amp=none, or inspect these samples.")


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` when available else ``cpu``; anything else is taken as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name!r} but CUDA is not available; use device=auto or cpu")
    return dev


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """The per-epoch LR schedule named by ``cfg.schedule`` (``None`` for ``"none"``)."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1), eta_min=cfg.min_lr)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=cfg.gamma,
                                                          patience=cfg.plateau_patience, min_lr=cfg.min_lr)
    return None


def loader_options(info: InformationSetting, cfg: TrainConfig, uses_target_time: bool) -> dict[str, Any]:
    """:class:`SampleLoader` keywords for a model under ``info``: the protocol decides what a sample
    may see, and the target time reaches a model only if it declares ``uses_target_time``."""
    return dict(max_len=cfg.max_len, hist_len=cfg.hist_len, **info.for_model(uses_target_time).loader_kwargs())


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _train_epoch(model: Recommender, loader: SampleLoader, opt: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, cfg: TrainConfig, device: torch.device, epoch: int) -> float:
    """One pass over the training samples; returns the sample-weighted mean loss."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total, count = 0.0, 0
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not (cfg.progress and sys.stderr.isatty()))
    for step, batch in enumerate(bar):
        batch = batch.to(device, non_blocking=True)
        with autocast(device, cfg.amp):
            loss = distributed.loss(model, batch)  # model.loss(batch); through DDP's forward when wrapped
        value = distributed.all_mean(float(loss.detach()), len(batch))  # every rank sees the same value
        if not math.isfinite(value):
            raise NonFiniteLossError(epoch, step, batch.index.cpu().numpy(), value)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.clip_norm:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
        scaler.step(opt)
        scaler.update()
        total += value * len(batch)
        count += len(batch)
        bar.set_postfix(loss=f"{value:.4f}")
    return total / max(count, 1)


def fit(model: Recommender, split: Split, cfg: TrainConfig, run_dir: str | Path | None = None, *,
        resume: bool = False) -> History:
    """Train (if trainable) and evaluate ``model`` on ``split``.

    Args:
        model: a :class:`Recommender` built from its inputs; moved to the chosen device.
        split: the samples; training uses ``samples["train"]``, early stopping ``samples["val"]``;
            ``split.protocol`` names the information setting the loaders enforce.
        cfg: :class:`~stgnn.config.TrainConfig`.
        run_dir: folder for ``last.pt``, ``best.pt``, ``curves.csv`` and ``tb/`` (``None``: keep the
            best weights in memory and write nothing).
        resume: continue from ``run_dir/last.pt`` when it exists (else start fresh).

    Returns:
        :class:`History` with curves, best epoch, val/test metrics and per-sample ranks.

    Raises:
        NonFiniteLossError: a NaN/inf loss; ``last.pt`` still holds the previous epoch.
    """
    t_start = time.perf_counter()
    device = distributed.setup(cfg.device) or resolve_device(cfg.device)  # torchrun: this rank's device
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    valid = metric_names()
    if cfg.monitor not in valid:
        raise ValueError(f"train.monitor={cfg.monitor!r} is not a metric; choose one of {valid}")
    run_dir = Path(run_dir) if run_dir is not None else None
    if resume and run_dir is None:
        raise ValueError("resume=True needs a run_dir holding last.pt")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    gen = seed_everything(cfg.seed, cfg.deterministic)
    distributed.seed_rank(cfg.seed)  # under torchrun: each rank its own dropout/negatives stream

    model.to(device)
    info = InformationSetting.from_protocol(split.protocol)
    kw = loader_options(info, cfg, model.uses_target_time)
    # under torchrun each rank scores its block of the samples; _evaluate gathers the ranks
    val_loader = SampleLoader(split, distributed.shard(split.samples["val"]), cfg.eval_batch_size, **kw)
    test_loader = SampleLoader(split, distributed.shard(split.samples["test"]), cfg.eval_batch_size, **kw)
    eval_amp = cfg.amp if cfg.eval_amp else "none"

    rows: list[dict[str, Any]] = []
    best_score, best_epoch, stopped = -math.inf, 0, False
    if model.trainable:
        if len(split.samples["val"]) == 0:
            raise ValueError(f"{split!r} has no validation samples; early stopping needs them")
        rows, best_score, best_epoch, stopped = _train(model, split, cfg, run_dir, resume, device, gen, kw,
                                                       val_loader, eval_amp)

    val_metrics, val_ranks = _evaluate(model, val_loader, device, eval_amp)
    test_metrics, test_ranks = _evaluate(model, test_loader, device, eval_amp)
    if not model.trainable:
        best_score = val_metrics[cfg.monitor]
    return History(
        rows=rows, monitor=cfg.monitor, best_epoch=best_epoch, best_score=float(best_score),
        val_metrics=val_metrics, test_metrics=test_metrics, val_ranks=val_ranks, test_ranks=test_ranks,
        val_index=split.samples["val"].copy(), test_index=split.samples["test"].copy(),
        seconds_per_epoch=[float(r["seconds"]) for r in rows], total_seconds=time.perf_counter() - t_start,
        peak_rss_mb=peak_rss_mb(),
        peak_gpu_mb=torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        device=str(device), stopped_early=stopped, protocol=dict(split.protocol),
        split_fingerprint=split.fingerprint(), dataset=split.name,
        information={**info.to_dict(), "target_time_read": kw["target_time"] == "known"},
    )


def _evaluate(model: Recommender, loader: SampleLoader, device: torch.device, amp: str
              ) -> tuple[dict[str, float], np.ndarray]:
    """:func:`evaluate` of this rank's samples; under torchrun the ranks of every rank are
    gathered, so metrics (and early stopping) are the same everywhere."""
    metrics, ranks = evaluate(model, loader, device, amp)
    if distributed.is_active():
        ranks = distributed.gather_ranks(ranks)
        metrics = metrics_from_ranks(ranks)
    return metrics, ranks


# options that may change between a run and its resumption without breaking exactness
_RESUME_FREE = {"epochs", "patience", "progress", "tensorboard", "device", "num_threads", "eval_batch_size"}


def _check_resume(run_dir: Path, st: dict[str, Any], cfg: TrainConfig) -> None:
    """Warn about changed options; rewrite ``best.pt`` if a kill fell between it and ``last.pt``."""
    old = st.get("train_config", {})
    changed = {k: (old[k], v) for k, v in dataclasses.asdict(cfg).items()
               if k in old and k not in _RESUME_FREE and old[k] != v}
    if changed:
        log.warning("resuming %s with changed train options %s (old, new): the result will differ "
                    "from an uninterrupted run", run_dir, changed)
    best = run_dir / BEST
    if st["best_epoch"] == st["epoch"] and (not best.is_file() or load_checkpoint(best)["epoch"] != st["epoch"]):
        val = {k[4:]: v for k, v in st["rows"][-1].items() if k.startswith("val_")}
        save_checkpoint(best, {"model": st["model"], "epoch": st["epoch"], "val": val})


def _train(model: Recommender, split: Split, cfg: TrainConfig, run_dir: Path | None, resume: bool,
           device: torch.device, gen: torch.Generator, kw: dict[str, Any], val_loader: SampleLoader,
           eval_amp: str) -> tuple[list[dict[str, Any]], float, int, bool]:
    """The epoch loop; leaves ``model`` holding the best weights. Returns rows, best score/epoch, stopped."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} is trainable but has no parameters requiring grad")
    train_loader = distributed.epochs(SampleLoader(split, "train", cfg.batch_size, shuffle=True, generator=gen, **kw))
    step_model = distributed.wrap(model, device)  # DDP around model.loss under torchrun, else model
    main = distributed.is_main()                   # rank 0 alone writes checkpoints and curves
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = make_scheduler(opt, cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16" and device.type == "cuda")

    rows: list[dict[str, Any]] = []
    best_score, best_epoch, bad, stopped, start = -math.inf, 0, 0, False, 1
    best_state: dict[str, torch.Tensor] | None = None
    last = run_dir / LAST if run_dir is not None else None
    if resume and last is not None and last.is_file():
        st = load_checkpoint(last)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        if sched is not None:
            sched.load_state_dict(st["scheduler"])
        scaler.load_state_dict(st["scaler"])
        rows, best_score, best_epoch = list(st["rows"]), float(st["best_score"]), int(st["best_epoch"])
        bad, stopped, start = int(st["bad_epochs"]), bool(st["stopped"]), int(st["epoch"]) + 1
        set_rng_state(distributed.own_rng(st))
        gen.set_state(st["shuffle_rng"])
        if main:
            _check_resume(run_dir, st, cfg)
        log.info("resumed %s at epoch %d (best %s=%.5f at epoch %d)", last, start, cfg.monitor, best_score, best_epoch)
    elif resume:
        log.info("resume: no %s yet; starting fresh", last)

    logger = RunLogger(run_dir if main else None, cfg.tensorboard, start_epoch=start)
    try:
        for epoch in range(start, cfg.epochs + 1):
            if stopped:
                break
            t0 = time.perf_counter()
            train_loss = _train_epoch(step_model, train_loader, opt, scaler, cfg, device, epoch)
            val, _ = _evaluate(model, val_loader, device, eval_amp)
            score = val[cfg.monitor]
            lr = opt.param_groups[0]["lr"]
            improved = score > best_score + cfg.min_delta
            if improved:
                best_score, best_epoch, bad = score, epoch, 0
                if run_dir is None:
                    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(score)
            elif sched is not None:
                sched.step()
            stopped = cfg.patience > 0 and bad >= cfg.patience
            rows.append({"epoch": epoch, "train_loss": train_loss, **{f"val_{k}": v for k, v in val.items()},
                         "lr": lr, "seconds": time.perf_counter() - t0})
            rngs = distributed.rng_states(rng_state())  # {"rng": ...} (+ every rank's under torchrun)
            if run_dir is not None and main:
                save_checkpoint(last, {
                    "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict() if sched is not None else {}, "scaler": scaler.state_dict(),
                    "epoch": epoch, "best_score": best_score, "best_epoch": best_epoch, "bad_epochs": bad,
                    "stopped": stopped, "rows": rows, **rngs, "shuffle_rng": gen.get_state(),
                    "train_config": dataclasses.asdict(cfg),
                })
                # after last.pt: a kill in between is repaired on resume (last.pt's model is the best)
                if improved:
                    save_checkpoint(run_dir / BEST, {"model": model.state_dict(), "epoch": epoch, "val": val})
            logger.log(rows)
            log.info("epoch %d loss %.4f val %s %.5f%s", epoch, train_loss, cfg.monitor, score,
                     " (best)" if best_epoch == epoch else "")
    finally:
        logger.close()

    if best_epoch > 0:
        distributed.barrier()  # rank 0 has written best.pt
        if run_dir is not None:
            best_state = load_checkpoint(run_dir / BEST)["model"]
        assert best_state is not None  # set whenever best_epoch > 0
        model.load_state_dict(best_state)
    return rows, best_score, best_epoch, stopped
