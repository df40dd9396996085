"""Recipes: build from config, call the library, write results. The CLI calls these.

* :func:`run_experiment` — one config, every seed: ``results/<name>/seed_<s>/`` per run.
* :func:`train_from_config` — ``stgnn train``.
* :func:`evaluate_run` — ``stgnn eval``: re-score a finished run's best checkpoint.
* :func:`reproduce` — ``stgnn reproduce nyc``: a table's models over seeds → ``table.md``,
  ``table.csv``, ``table.json``, with the published numbers in adjacent rows, each cited.

Tables are built from the ``metrics.json`` files the runs wrote, never typed by hand.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from stgnn.config import ExperimentConfig, _deep_merge, dump_config, from_dict, load_config, to_dict
from stgnn.data.split import Split
from stgnn.utils.io import atomic_write_json, atomic_write_text

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
TABLE_METRICS = ("Acc@1", "Acc@5", "Acc@10", "Acc@20", "NDCG@5", "NDCG@10", "MRR")
_SPLITS: dict[tuple, Split] = {}


def load_split(cfg: ExperimentConfig) -> Split:
    """The split of ``cfg.dataset`` under ``cfg.protocol``, from the on-disk cache (memoised)."""
    from stgnn.data.dataset import prepare
    from stgnn.data.protocol import ProtocolConfig

    if cfg.data_root:
        os.environ["STGNN_DATA_DIR"] = str(cfg.data_root)
    key = (cfg.dataset, json.dumps(cfg.protocol, sort_keys=True), os.environ.get("STGNN_DATA_DIR"))
    if key not in _SPLITS:
        root = Path(os.environ.get("STGNN_ROOT", "data"))
        _SPLITS[key] = prepare(cfg.dataset, ProtocolConfig.from_dict(cfg.protocol), root=root)
    return _SPLITS[key]


# keys that say where a run is kept or how it reports, not what it computes: a finished run whose
# config differs only in these is still the same run (e.g. after moving its folder)
_NOT_RESULTS = {"output_dir", "train.progress", "train.tensorboard", "train.num_threads", "train.eval_batch_size"}


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


def run_one(cfg: ExperimentConfig, seed: int, run_dir: Path, split: Split | None = None,
            resume: bool = False) -> dict[str, Any]:
    """Train and evaluate one model with one seed; write the run folder; return metrics.json.

    With ``resume=True`` a run folder that already holds ``metrics.json`` for the same resolved
    config is reused as it is (a table interrupted after some runs picks up where it stopped), and
    an unfinished one continues from its ``last.pt``. A finished run with a different config is an
    error naming the differing keys: results are never overwritten silently.
    """
    from stgnn.models.registry import build_model
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
        diff = _config_diff(done, to_dict(run_cfg))
        if diff:
            raise ValueError(f"{run_dir} holds a finished run of a different config ({'; '.join(diff)}); "
                             "move it away or choose another output folder")
        print(f"  reusing finished run {run_dir}", flush=True)
    else:
        seed_everything(seed, train_cfg.deterministic)  # model init is seeded too, not only training
        model = build_model(cfg.model, split, **cfg.model_kwargs)
        run_dir.mkdir(parents=True, exist_ok=True)
        history = fit(model, split, train_cfg, run_dir, resume=resume)
        if distributed.is_main():  # under torchrun, rank 0 alone writes the run
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

    if distributed.is_main():
        atomic_write_text(out_dir / "config.yaml", dump_config(cfg))
        atomic_write_json(out_dir / "summary.json", {"seeds": cfg.seeds, "test": summary})
    return {"runs": runs, "summary": summary}


def train_from_config(path: str | None, overrides: list[str], resume: bool = False) -> dict[str, Any]:
    """``stgnn train``: defaults ← YAML ← overrides, run every seed."""
    cfg = load_config(path, overrides)
    return run_experiment(cfg, resume=resume)["summary"]


def evaluate_run(run_dir: Path, part: str = "test") -> dict[str, float]:
    """Re-score ``run_dir/best.pt`` (or ``last.pt``) on ``part`` with the run's own config."""
    import torch

    from stgnn.data.batch import SampleLoader
    from stgnn.eval.evaluate import evaluate
    from stgnn.models.registry import build_model
    from stgnn.train.loop import resolve_device

    cfg = load_config(run_dir / "config.yaml")
    split = load_split(cfg)
    model = build_model(cfg.model, split, **cfg.model_kwargs)
    model.fit_data(split)
    ckpt = next((run_dir / n for n in ("best.pt", "last.pt") if (run_dir / n).exists()), None)
    if ckpt is not None:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
    elif model.trainable:
        raise FileNotFoundError(f"{run_dir} holds no best.pt or last.pt to evaluate")
    device = resolve_device(cfg.train.device)
    model.to(device)
    allow_tt = bool(model.uses_target_time and split.protocol.get("allow_target_time", False))
    loader = SampleLoader(split, part, cfg.train.eval_batch_size, max_len=cfg.train.max_len,
                          hist_len=cfg.train.hist_len, history=split.protocol.get("history", "train_only"),
                          allow_target_time=allow_tt)
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


def _slice_summary(model_dir: Path, seeds: list[int], names: list[str]) -> dict[str, Any]:
    """Mean ± std over seeds of each slice's metrics, from the runs' ``slices.json``."""
    from stgnn.eval.significance import mean_std

    if not names:
        return {}
    per_seed = [json.loads((model_dir / f"seed_{s}" / "slices.json").read_text())["test"] for s in seeds]
    out: dict[str, Any] = {}
    for name in names:
        if name not in per_seed[0]:
            raise ValueError(f"unknown slice {name!r} in table.yaml; slices are {list(per_seed[0])}")
        entry: dict[str, Any] = {"n": per_seed[0][name]["n"]}
        for m in TABLE_METRICS:
            vals = [p[name][m] for p in per_seed if m in p[name]]
            if vals:
                mu, sd = mean_std(vals)
                entry[m] = {"mean": mu, "std": sd}
        out[name] = entry
    return out


def _slice_masks(out: Path, seeds: list[int], names: list[str], ref: str) -> dict[str, np.ndarray]:
    """The table's slice masks over the test samples (rebuilt from the reference run's split)."""
    from stgnn.eval.slices import slice_masks

    if not names:
        return {}
    cfg = load_config(out / "runs" / ref / f"seed_{seeds[0]}" / "config.yaml")
    masks = slice_masks(load_split(cfg), "test")
    return {n: masks[n] for n in names}


# ---------------------------------------------------------------------------- tables

def _table_spec(table: str) -> dict[str, Any]:
    """``table.yaml`` + ``published.yaml`` of ``experiments/reproduce_<table>/`` (or of a folder path)."""
    folder = Path(table) if Path(table).is_dir() else EXPERIMENTS / f"reproduce_{table}"
    if not folder.is_dir() and (EXPERIMENTS / table / "table.yaml").is_file():
        folder = EXPERIMENTS / table  # e.g. experiments/ablation/
    if not (folder / "table.yaml").is_file():
        known = sorted(p.parent.name.removeprefix("reproduce_") for p in EXPERIMENTS.glob("*/table.yaml"))
        raise ValueError(f"no table {table!r}: expected {folder / 'table.yaml'}; known tables: {known}")
    spec = yaml.safe_load((folder / "table.yaml").read_text())
    spec["published"] = yaml.safe_load((folder / "published.yaml").read_text())
    return spec


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


def reproduce(table: str, preset: str = "full", seeds: list[int] | None = None, models: list[str] | None = None,
              out: Path | None = None, overrides: list[str] | None = None, resume: bool = False,
              jobs: int = 1) -> str:
    """Run a table's models over seeds and write ``table.md``/``table.csv``/``table.json``.

    Args:
        table: ``"nyc"`` (``experiments/reproduce_nyc/``) or a folder holding ``table.yaml`` and
            ``published.yaml``.
        preset: a key of the table's ``presets`` (``fast`` for ``make run``, ``full``).
        seeds: override the preset's seeds.
        models: a subset of the table's rows (by ``name``).
        out: output folder (default ``results/reproduce_<table>_<preset>``).
        overrides: dotted ``key=value`` applied to every row's config.
        resume: reuse the finished runs already in ``out`` (same resolved config) and continue
            unfinished ones from ``last.pt``; the table then covers old and new runs alike.
        jobs: train the runs in this many processes side by side (:func:`run_parallel`), then
            build the table from their folders.

    Returns:
        the Markdown table (also written to ``out/table.md``).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    spec = _table_spec(table)
    if preset not in spec["presets"]:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(spec['presets'])}")
    pre = spec["presets"][preset] or {}
    rows = spec["models"]
    wanted = models or pre.get("models")
    if wanted:
        unknown = sorted(set(wanted) - {r["name"] for r in rows})
        if unknown:
            raise ValueError(f"unknown model rows {unknown}; the table has {[r['name'] for r in rows]}")
        rows = [r for r in rows if r["name"] in wanted]
    out = Path(out or Path("results") / f"reproduce_{Path(table).name}_{preset}")
    seeds = list(seeds if seeds is not None else pre.get("seeds", [0, 1, 2]))
    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    cfgs = []
    for row in rows:
        base = _deep_merge(to_dict(ExperimentConfig()), spec.get("base", {}))
        delta = _deep_merge(row.get("config", {}), (pre.get("per_model", {}) or {}).get(row["name"], {}))
        data = _deep_merge(_deep_merge(base, pre.get("all", {}) or {}), delta)
        data.update(name=row["name"], seeds=seeds, output_dir=str(out / "runs"))
        cfg = from_dict(ExperimentConfig, data)
        cfgs.append(_apply_overrides(cfg, overrides) if overrides else cfg)
    if jobs > 1:
        print(f"[reproduce {table}/{preset}] {len(cfgs)} rows x {len(seeds)} seeds in {jobs} processes", flush=True)
        run_parallel(cfgs, jobs, resume=resume)
        resume = True  # the table is assembled from the runs just made
    for row, cfg in zip(rows, cfgs):
        print(f"[reproduce {table}/{preset}] {row['name']} ({cfg.model}) seeds={seeds}", flush=True)
        res = run_experiment(cfg, resume=resume)
        per_seed = {s: r["test"] for s, r in res["runs"].items()}
        timing = {s: r["timings"] for s, r in res["runs"].items()}
        results.append({"name": row["name"], "model": cfg.model, "summary": res["summary"],
                        "per_seed": per_seed, "timings": timing,
                        "best_epochs": {s: r["best_epoch"] for s, r in res["runs"].items()},
                        "slices": _slice_summary(out / "runs" / row["name"], seeds, spec.get("slices", []))})
    ref = spec.get("reference")
    paired: dict[str, Any] = {}
    paired_slices: dict[str, Any] = {}
    if ref and ref in {r["name"] for r in results}:
        masks = _slice_masks(out, seeds, spec.get("slices", []), ref)
        for r in results:
            if r["name"] == ref:
                continue
            run_a, run_b = (out / "runs" / n for n in (r["name"], ref))
            paired[r["name"]] = {s: compare_runs(run_a / f"seed_{s}", run_b / f"seed_{s}") for s in seeds}
            paired_slices[r["name"]] = {
                name: {s: compare_runs(run_a / f"seed_{s}", run_b / f"seed_{s}", mask=mask) for s in seeds}
                for name, mask in masks.items() if mask.any()}
    meta = {"table": Path(table).name.removeprefix("reproduce_"), "reference": ref, "paired": paired,
            "paired_slices": paired_slices, "preset": preset, "seeds": seeds,
            "seconds": round(time.perf_counter() - t0, 1),
            "protocol": spec["published"].get("protocol"), "base": spec.get("base", {})}
    md = format_table(results, spec["published"], meta)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table.md", md)
    atomic_write_text(out / "table.csv", _table_csv(results, spec["published"]))
    atomic_write_json(out / "table.json", {"meta": meta, "results": results, "published": spec["published"]})
    return md


def _apply_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    from stgnn.config import apply_overrides
    from stgnn.preflight import check_experiment

    cfg = apply_overrides(cfg, overrides)
    check_experiment(cfg)  # every row's model_kwargs/protocol/device, before any data work
    return cfg


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.4f}" if not np.isfinite(std) else f"{mean:.4f} ± {std:.4f}"


def format_table(results: list[dict[str, Any]], published: dict[str, Any], meta: dict[str, Any]) -> str:
    """Markdown: our rows (mean ± std over seeds) then the published rows, with sources."""
    cols = ("Acc@1", "Acc@5", "Acc@10", "NDCG@10", "MRR")
    pub_key = {"Acc@1": "acc1", "Acc@5": "acc5", "Acc@10": "acc10", "MRR": "mrr"}
    lines = [f"# {meta['table'].upper()} next-POI results ({meta['preset']} preset, seeds {meta['seeds']})", "",
             f"Protocol: {meta['protocol']}. Full ranking over all POIs, ties counted pessimistically, "
             "previously visited POIs kept in the ranking. Ours: mean ± std over seeds (sample std).", "",
             "| model | " + " | ".join(cols) + " | source |", "|---|" + "---|" * (len(cols) + 1)]
    for r in results:
        cells = [_fmt(r["summary"][c]["mean"], r["summary"][c]["std"]) if c in r["summary"] else "—" for c in cols]
        lines.append(f"| **{r['name']}** (ours) | " + " | ".join(cells) + " | this run |")
    for p in published["rows"]:
        cells = [f"{p[pub_key[c]]:.4f}" if pub_key.get(c) and p.get(pub_key[c]) is not None else "—" for c in cols]
        lines.append(f"| {p['model']} ({p['venue']}) | " + " | ".join(cells) + f" | {p['source']} |")
    if meta.get("paired"):
        lines += ["", f"Paired bootstrap (1,000 resamples of the test samples, per seed) of each model minus "
                  f"{meta['reference']}: difference and 95% CI.", "",
                  "| model | seed | ΔAcc@1 [95% CI] | ΔMRR [95% CI] |", "|---|---|---|---|"]
        for name, per_seed in meta["paired"].items():
            for s, d in per_seed.items():
                a, m = d["Acc@1"], d["MRR"]
                lines.append(f"| {name} | {s} | {a['diff']:+.4f} [{a['lo']:+.4f}, {a['hi']:+.4f}] | "
                             f"{m['diff']:+.4f} [{m['lo']:+.4f}, {m['hi']:+.4f}] |")
    if any(r.get("slices") for r in results):
        lines += ["", "By slice of the test samples (stgnn/eval/slices.py; n = samples in the slice):", "",
                  "| model | slice | n | Acc@1 | Acc@10 | MRR |", "|---|---|---|---|---|---|"]
        for r in results:
            for name, d in r.get("slices", {}).items():
                cells = [_fmt(d[c]["mean"], d[c]["std"]) if c in d else "—" for c in ("Acc@1", "Acc@10", "MRR")]
                lines.append(f"| {r['name']} | {name} | {d['n']:,} | " + " | ".join(cells) + " |")
    if meta.get("paired_slices") and any(meta["paired_slices"].values()):
        lines += ["", f"Paired bootstrap on each slice, model minus {meta['reference']} (95% CI):", "",
                  "| model | slice | seed | ΔAcc@1 [95% CI] | ΔMRR [95% CI] |", "|---|---|---|---|---|"]
        for name, by_slice in meta["paired_slices"].items():
            for sl, per_seed in by_slice.items():
                for s, d in per_seed.items():
                    a, m = d["Acc@1"], d["MRR"]
                    lines.append(f"| {name} | {sl} | {s} | {a['diff']:+.4f} [{a['lo']:+.4f}, {a['hi']:+.4f}] | "
                                 f"{m['diff']:+.4f} [{m['lo']:+.4f}, {m['hi']:+.4f}] |")
    lines += ["", f"Wall time: {meta['seconds']} s. Per-run folders under `runs/` hold config.yaml, env.json, "
              "metrics.json, curves.csv and checkpoints."]
    return "\n".join(lines) + "\n"


def _table_csv(results: list[dict[str, Any]], published: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "origin", *[f"{m}_{s}" for m in TABLE_METRICS for s in ("mean", "std")], "source"])
    for r in results:
        vals = []
        for m in TABLE_METRICS:
            s = r["summary"].get(m)
            vals += [f"{s['mean']:.6f}", f"{s['std']:.6f}"] if s else ["", ""]
        w.writerow([r["name"], "ours", *vals, "this run"])
    pub_key = {"Acc@1": "acc1", "Acc@5": "acc5", "Acc@10": "acc10", "MRR": "mrr"}
    for p in published["rows"]:
        vals = []
        for m in TABLE_METRICS:
            v = p.get(pub_key.get(m, ""), None)
            vals += [f"{v:.4f}" if v is not None else "", ""]
        w.writerow([p["model"], "published", *vals, p["source"]])
    return buf.getvalue()
