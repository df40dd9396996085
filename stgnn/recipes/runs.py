"""Runs: one config and seed in, a run folder out; every seed of a config; re-scoring; comparisons.

* :func:`run_one` — build the model's inputs (once, :func:`run_inputs`), the model, train and
  evaluate it, write ``results/<name>/seed_<s>/``.
* :func:`run_experiment` — every seed of one config; :func:`train_from_config` — ``stgnn train``.
* :func:`evaluate_run` — ``stgnn eval``: re-score a finished run's best checkpoint
  (:func:`restored_run`: the trained model and a part's loader, for other re-scoring).
* :func:`compare_runs` — paired bootstrap of two runs' per-sample ranks.
* :func:`run_parallel` — many runs in worker processes.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from stgnn.config import ExperimentConfig, dump_config, from_dict, load_config, to_dict
from stgnn.data.split import Split
from stgnn.eval.metrics import TABLE_METRICS
from stgnn.inputs import ModelInputs
from stgnn.utils.io import atomic_write_json, atomic_write_text

_SPLITS: dict[tuple, Split] = {}
_INPUTS: dict[tuple, tuple[Split, ModelInputs]] = {}


def clear_caches() -> None:
    """Forget the splits and model inputs this process has loaded (tests and benchmarks that
    change ``STGNN_ROOT`` or time a cold start)."""
    _SPLITS.clear()
    _INPUTS.clear()


def cached_splits() -> int:
    """How many splits this process holds loaded."""
    return len(_SPLITS)


def load_split(cfg: ExperimentConfig) -> Split:
    """The split of ``cfg.dataset`` under ``cfg.protocol``, from the on-disk cache (memoised).

    Raw files are looked for in ``cfg.data_root`` (passed on as an argument; ``None``: the
    sources' own default, ``$STGNN_DATA_DIR``); processed splits live under ``$STGNN_ROOT``
    (default ``data/``).
    """
    from stgnn.data.dataset import prepare
    from stgnn.data.protocol import ProtocolConfig

    key = (cfg.dataset, json.dumps(cfg.protocol, sort_keys=True), cfg.data_root or os.environ.get("STGNN_DATA_DIR"))
    if key not in _SPLITS:
        root = Path(os.environ.get("STGNN_ROOT", "data"))
        _SPLITS[key] = prepare(cfg.dataset, ProtocolConfig.from_dict(cfg.protocol), root=root,
                               data_dir=cfg.data_root)
    return _SPLITS[key]


# keys that say where a run is kept or how it reports, not what it computes: a finished run whose
# config differs only in these is still the same run (e.g. after moving or renaming its folder)
_NOT_RESULTS = {"name", "output_dir", "train.progress", "train.tensorboard", "train.num_threads",
                "train.eval_batch_size"}


def _resolved_protocol(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with its ``protocol`` filled in with the defaults, so ``{}`` and the same options
    spelled out (``{history: train_only, ...}``) compare equal: they build the same split."""
    from stgnn.data.protocol import ProtocolConfig

    return {**cfg, "protocol": ProtocolConfig.from_dict(cfg.get("protocol") or {}).to_dict()}


def _config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts (ignoring :data:`_NOT_RESULTS`)."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if f"{prefix}{k}" in _NOT_RESULTS:
            continue
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} != {vb!r}")
    return out


def run_inputs(cfg: ExperimentConfig, split: Split) -> ModelInputs:
    """What ``cfg.model`` consumes, built from ``split`` once per process for each (split, spec):
    every seed of a run, and every row of a table whose model needs the same parts, share it."""
    from stgnn.inputs import build_inputs
    from stgnn.registry import input_spec

    spec = input_spec(cfg.model, **cfg.model_kwargs)
    key = (id(split), spec)
    if key not in _INPUTS or _INPUTS[key][0] is not split:
        _INPUTS[key] = (split, build_inputs(split, spec))
    return _INPUTS[key][1]


def run_one(cfg: ExperimentConfig, seed: int, run_dir: Path, split: Split | None = None,
            resume: bool = False) -> dict[str, Any]:
    """Train and evaluate one model with one seed; write the run folder; return metrics.json.

    The model is built from :func:`run_inputs` (made once, kept in the run folder as
    ``inputs.pt`` so the run can be served without its split) and trained by
    :func:`stgnn.train.loop.fit`, which never rebuilds them.

    With ``resume=True`` a run folder that already holds ``metrics.json`` for the same resolved
    config is reused as it is (a table interrupted after some runs picks up where it stopped), and
    an unfinished one continues from its ``last.pt``. A finished run with a different config is an
    error naming the differing keys: results are never overwritten silently.
    """
    from stgnn.inputs import INPUTS_FILE
    from stgnn.registry import build_model
    from stgnn.train import distributed
    from stgnn.train.loop import fit
    from stgnn.train.logging import write_run
    from stgnn.train.seed import seed_everything
    from stgnn.utils.env import environment

    split = split if split is not None else load_split(cfg)
    train_cfg = from_dict(type(cfg.train), {**to_dict(cfg.train), "seed": seed})
    run_cfg = from_dict(ExperimentConfig, {**to_dict(cfg), "train": to_dict(train_cfg), "seeds": [seed]})
    if resume and (run_dir / "metrics.json").is_file():
        done = yaml.safe_load((run_dir / "config.yaml").read_text())
        diff = _config_diff(_resolved_protocol(done), _resolved_protocol(to_dict(run_cfg)))
        if diff:
            raise ValueError(f"{run_dir} holds a finished run of a different config ({'; '.join(diff)}); "
                             "move it away or choose another output folder")
        print(f"  reusing finished run {run_dir}", flush=True)
    else:
        inputs = run_inputs(cfg, split)
        seed_everything(seed, train_cfg.deterministic)  # model init is seeded too, not only training
        model = build_model(cfg.model, inputs, **cfg.model_kwargs)
        run_dir.mkdir(parents=True, exist_ok=True)
        history = fit(model, split, train_cfg, run_dir, resume=resume)
        if distributed.is_main():  # under torchrun, rank 0 alone writes the run
            inputs.save(run_dir / INPUTS_FILE)
            write_run(run_dir, run_cfg, history, environment(history.device))
    if distributed.is_main() and not (run_dir / "slices.json").is_file():
        write_slices(run_dir, split)
    distributed.barrier()
    return json.loads((run_dir / "metrics.json").read_text())


def write_slices(run_dir: Path, split: Split, part: str = "test") -> dict[str, Any]:
    """Per-slice metrics (:mod:`stgnn.eval.slices`) of a finished run's ranks → ``slices.json``."""
    from stgnn.eval.slices import slice_masks, slice_metrics

    ranks = np.load(run_dir / "ranks.npz")
    if not np.array_equal(ranks[f"{part}_index"], split.samples[part]):
        raise ValueError(f"{run_dir}/ranks.npz scored other {part} samples than split {split.name!r} holds")
    result = {part: slice_metrics(ranks[f"{part}_ranks"], slice_masks(split, part))}
    atomic_write_json(run_dir / "slices.json", result)
    return result


def run_experiment(cfg: ExperimentConfig, resume: bool = False) -> dict[str, Any]:
    """Every seed of ``cfg``; returns ``{"runs": {seed: metrics}, "summary": mean/std}``."""
    from stgnn.eval.significance import mean_std

    out_dir = Path(cfg.output_dir) / cfg.name
    runs = {s: run_one(cfg, s, out_dir / f"seed_{s}", resume=resume) for s in cfg.seeds}
    summary = {}
    for m in TABLE_METRICS:
        vals = [r["test"][m] for r in runs.values() if m in r["test"]]
        if vals:
            mu, sd = mean_std(vals)
            summary[m] = {"mean": mu, "std": sd}
    from stgnn.train import distributed

    if distributed.is_main():  # under torchrun, rank 0 alone writes
        atomic_write_text(out_dir / "config.yaml", dump_config(cfg))
        atomic_write_json(out_dir / "summary.json", {"seeds": cfg.seeds, "test": summary})
    return {"runs": runs, "summary": summary}


def train_from_config(path: str | None, overrides: list[str], resume: bool = False) -> dict[str, Any]:
    """``stgnn train``: defaults ← YAML ← overrides, run every seed."""
    cfg = load_config(path, overrides)
    return run_experiment(cfg, resume=resume)["summary"]


def restored_run(run_dir: Path, part: str = "test", device: str | None = None) -> tuple[Any, Any, Any]:
    """``(model, loader, device)``: ``run_dir/best.pt`` (or ``last.pt``) with the run's own config
    and inputs (rebuilt from the split for runs that did not keep ``inputs.pt``), and the
    evaluation loader of ``part`` under the run's information setting.

    ``device``: ``None`` takes the run's ``train.device``.
    """
    from stgnn.data.batch import SampleLoader
    from stgnn.data.information import InformationSetting
    from stgnn.inputs import INPUTS_FILE
    from stgnn.train.loop import loader_options, resolve_device
    from stgnn.train.restore import load_trained

    cfg = load_config(run_dir / "config.yaml")
    split = load_split(cfg)
    inputs = None if (run_dir / INPUTS_FILE).is_file() else run_inputs(cfg, split)
    dev = resolve_device(device or cfg.train.device)
    model = load_trained(run_dir, dev, inputs=inputs).model
    info = InformationSetting.from_protocol(split.protocol)
    loader = SampleLoader(split, part, cfg.train.eval_batch_size,
                          **loader_options(info, cfg.train, model.uses_target_time))
    return model, loader, dev


def evaluate_run(run_dir: Path, part: str = "test") -> dict[str, float]:
    """Re-score ``run_dir/best.pt`` (or ``last.pt``) on ``part`` (:func:`restored_run`)."""
    from stgnn.eval.evaluate import evaluate

    model, loader, device = restored_run(run_dir, part)
    metrics, _ = evaluate(model, loader, device)
    return metrics


def compare_runs(run_a: Path, run_b: Path, part: str = "test", n_boot: int = 1000, seed: int = 0,
                 mask: np.ndarray | None = None) -> dict[str, Any]:
    """Paired bootstrap of ``A - B`` (Acc@1, MRR) from two finished runs' per-sample ranks.

    The offline form of an A/B test: both runs must have scored the same samples (same split
    fingerprint), so each sample's pair of ranks is compared directly. ``mask`` (``(S,)`` bool,
    e.g. a slice of :func:`stgnn.eval.slices.slice_masks`) restricts the comparison to a subset.
    """
    from stgnn.eval.significance import paired_bootstrap

    ra, rb = (np.load(Path(r) / "ranks.npz") for r in (run_a, run_b))
    if not np.array_equal(ra[f"{part}_index"], rb[f"{part}_index"]):
        raise ValueError(f"{run_a} and {run_b} scored different {part} samples; compare runs of the same split")
    a, b = ra[f"{part}_ranks"], rb[f"{part}_ranks"]
    if mask is not None:
        a, b = a[mask], b[mask]
    return paired_bootstrap(a, b, n_boot=n_boot, seed=seed)


def _run_job(cfg_dict: dict[str, Any], seed: int, run_dir: str, resume: bool, threads: int) -> None:
    """One run in a worker process of :func:`run_parallel` (module level, so ``spawn`` can pickle it)."""
    train = {**cfg_dict["train"], "num_threads": cfg_dict["train"].get("num_threads") or threads}
    run_one(from_dict(ExperimentConfig, {**cfg_dict, "train": train}), seed, Path(run_dir), resume=resume)


def run_parallel(cfgs: list[ExperimentConfig], jobs: int, resume: bool = False) -> None:
    """Train every seed of every config in ``jobs`` worker processes, each with ``cores // jobs``
    threads (unless ``train.num_threads`` says otherwise); the runs land in their usual folders.

    Used by :func:`reproduce` before it assembles the table from the run folders. Thread count is
    not part of a run's identity (a 1-thread and a 2-thread CPU run differ in the last digits),
    so the table may mix runs made either way; ``env.json`` of each run records it.

    Raises:
        RuntimeError: naming the config and seed of the first run that failed (the others are
            cancelled; finished runs stay on disk for ``resume``).
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    for cfg in cfgs:  # prepare (and cache) each split once, before the workers all try to
        load_split(cfg)
    todo = [(cfg, s) for cfg in cfgs for s in cfg.seeds]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        futs = {pool.submit(_run_job, to_dict(cfg), s, str(Path(cfg.output_dir) / cfg.name / f"seed_{s}"),
                            resume, threads): (cfg.name, s) for cfg, s in todo}
        for i, fut in enumerate(as_completed(futs), 1):
            name, s = futs[fut]
            try:
                fut.result()
            except Exception as e:
                for f in futs:
                    f.cancel()
                raise RuntimeError(f"run {name!r} seed {s} failed: {type(e).__name__}: {e}") from e
            print(f"  done {name} seed {s} ({i}/{len(todo)})", flush=True)
