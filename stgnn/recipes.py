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


def run_one(cfg: ExperimentConfig, seed: int, run_dir: Path, split: Split | None = None,
            resume: bool = False) -> dict[str, Any]:
    """Train and evaluate one model with one seed; write the run folder; return metrics.json."""
    from stgnn.models.registry import build_model
    from stgnn.train.loop import fit
    from stgnn.train.logging import write_run
    from stgnn.train.seed import seed_everything
    from stgnn.utils.env import environment

    split = split if split is not None else load_split(cfg)
    train_cfg = from_dict(type(cfg.train), {**to_dict(cfg.train), "seed": seed})
    seed_everything(seed, train_cfg.deterministic)  # model init is seeded too, not only training
    model = build_model(cfg.model, split, **cfg.model_kwargs)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_cfg = from_dict(ExperimentConfig, {**to_dict(cfg), "train": to_dict(train_cfg), "seeds": [seed]})
    history = fit(model, split, train_cfg, run_dir, resume=resume)
    write_run(run_dir, run_cfg, history, environment(history.device))
    return json.loads((run_dir / "metrics.json").read_text())


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


def compare_runs(run_a: Path, run_b: Path, part: str = "test", n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Paired bootstrap of ``A - B`` (Acc@1, MRR) from two finished runs' per-sample ranks.

    The offline form of an A/B test: both runs must have scored the same samples (same split
    fingerprint), so each sample's pair of ranks is compared directly.
    """
    from stgnn.eval.significance import paired_bootstrap

    ra, rb = (np.load(Path(r) / "ranks.npz") for r in (run_a, run_b))
    if not np.array_equal(ra[f"{part}_index"], rb[f"{part}_index"]):
        raise ValueError(f"{run_a} and {run_b} scored different {part} samples; compare runs of the same split")
    return paired_bootstrap(ra[f"{part}_ranks"], rb[f"{part}_ranks"], n_boot=n_boot, seed=seed)


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


def reproduce(table: str, preset: str = "full", seeds: list[int] | None = None, models: list[str] | None = None,
              out: Path | None = None, overrides: list[str] | None = None) -> str:
    """Run a table's models over seeds and write ``table.md``/``table.csv``/``table.json``.

    Args:
        table: ``"nyc"`` (``experiments/reproduce_nyc/``) or a folder holding ``table.yaml`` and
            ``published.yaml``.
        preset: a key of the table's ``presets`` (``fast`` for ``make run``, ``full``).
        seeds: override the preset's seeds.
        models: a subset of the table's rows (by ``name``).
        out: output folder (default ``results/reproduce_<table>_<preset>``).
        overrides: dotted ``key=value`` applied to every row's config.

    Returns:
        the Markdown table (also written to ``out/table.md``).
    """
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
    for row in rows:
        base = _deep_merge(to_dict(ExperimentConfig()), spec.get("base", {}))
        delta = _deep_merge(row.get("config", {}), (pre.get("per_model", {}) or {}).get(row["name"], {}))
        data = _deep_merge(_deep_merge(base, pre.get("all", {}) or {}), delta)
        data.update(name=row["name"], seeds=seeds, output_dir=str(out / "runs"))
        cfg = from_dict(ExperimentConfig, data)
        if overrides:
            cfg = _apply_overrides(cfg, overrides)
        print(f"[reproduce {table}/{preset}] {row['name']} ({cfg.model}) seeds={seeds}", flush=True)
        res = run_experiment(cfg)
        per_seed = {s: r["test"] for s, r in res["runs"].items()}
        timing = {s: r["timings"] for s, r in res["runs"].items()}
        results.append({"name": row["name"], "model": cfg.model, "summary": res["summary"],
                        "per_seed": per_seed, "timings": timing,
                        "best_epochs": {s: r["best_epoch"] for s, r in res["runs"].items()}})
    ref = spec.get("reference")
    paired = {}
    if ref and ref in {r["name"] for r in results}:
        for r in results:
            if r["name"] != ref:
                paired[r["name"]] = {s: compare_runs(out / "runs" / r["name"] / f"seed_{s}",
                                                      out / "runs" / ref / f"seed_{s}") for s in seeds}
    meta = {"table": Path(table).name.removeprefix("reproduce_"), "reference": ref, "paired": paired, "preset": preset, "seeds": seeds, "seconds": round(time.perf_counter() - t0, 1),
            "protocol": spec["published"].get("protocol"), "base": spec.get("base", {})}
    md = format_table(results, spec["published"], meta)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table.md", md)
    atomic_write_text(out / "table.csv", _table_csv(results, spec["published"]))
    atomic_write_json(out / "table.json", {"meta": meta, "results": results, "published": spec["published"]})
    return md


def _apply_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    from stgnn.config import _set_path, parse_override

    delta: dict[str, Any] = {}
    for text in overrides:
        keys, value = parse_override(text)
        _set_path(delta, keys, value, ExperimentConfig)
    return from_dict(ExperimentConfig, _deep_merge(to_dict(cfg), delta))


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
