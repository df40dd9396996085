"""Results tables: a table's rows (configs) over seeds -> runs -> ``table.md``/``table.csv``/``table.json``.

:func:`reproduce` runs (or, with ``resume``, reuses) every row of ``experiments/<table>/table.yaml``
for the preset's seeds, then assembles the table from the ``metrics.json``/``ranks.npz`` files the
runs wrote, never from numbers typed by hand: mean ± std per row, paired bootstrap CIs against
the table's reference row (overall and per slice), the information setting the rows ran under,
and the published numbers of the dataset the table ran on (:mod:`stgnn.recipes.report` renders).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from stgnn.config import ExperimentConfig, deep_merge, from_dict, load_config, to_dict
from stgnn.data.information import InformationSetting
from stgnn.eval.metrics import TABLE_METRICS
from stgnn.recipes.report import format_table, table_csv
from stgnn.recipes.runs import compare_runs, load_split, run_experiment, run_parallel
from stgnn.utils.io import atomic_write_json, atomic_write_text

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


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


def table_spec(table: str) -> dict[str, Any]:
    """``table.yaml`` + ``published.yaml`` of ``experiments/reproduce_<table>/`` (or of a folder path)."""
    folder = Path(table) if Path(table).is_dir() else EXPERIMENTS / f"reproduce_{table}"
    if not folder.is_dir() and (EXPERIMENTS / table / "table.yaml").is_file():
        folder = EXPERIMENTS / table  # e.g. experiments/ablation/
    if not (folder / "table.yaml").is_file():
        known = sorted(p.parent.name.removeprefix("reproduce_") for p in EXPERIMENTS.glob("*/table.yaml"))
        raise ValueError(f"no table {table!r}: expected {folder / 'table.yaml'}; known tables: {known}")
    spec = yaml.safe_load((folder / "table.yaml").read_text())
    spec["published"] = yaml.safe_load((folder / "published.yaml").read_text())
    for i, row in enumerate(spec["published"].get("rows") or []):
        if not row.get("dataset", spec["published"].get("dataset")):
            raise ValueError(f"{folder / 'published.yaml'}: row {i} ({row.get('model')!r}) names no dataset; give it "
                             "`dataset:` (or the file a top-level `dataset:`), so it is shown only beside runs on it")
    return spec


def reproduce(table: str, preset: str = "full", seeds: list[int] | None = None, models: list[str] | None = None,
              out: Path | None = None, overrides: list[str] | None = None, resume: bool = False,
              jobs: int = 1, settings: list[str] | None = None) -> str:
    """Run a table's models over seeds and write ``table.md``/``table.csv``/``table.json``.

    A ``table.yaml`` with ``settings`` (a list of ``{name, protocol, models}``: an information
    setting and the rows that run under it) makes one table per setting, each in
    ``out/<name>/`` and all in ``out/table.md``; a preset's ``settings`` (``{name: [rows]}``)
    picks the settings it runs and their rows. A ``tune`` block picks the reference row's options
    on validation under each setting first (:mod:`stgnn.recipes.tuning`).

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
        settings: run only these of the table's information settings (by ``name``); ``out/table.md``
            still holds every setting's table found in ``out``.

    Returns:
        the Markdown table(s) (also written to ``out/table.md``).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    spec = table_spec(table)
    if preset not in spec["presets"]:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(spec['presets'])}")
    pre = spec["presets"][preset] or {}
    names = {r["name"] for r in spec["models"]}
    wanted = models or pre.get("models")
    if wanted:
        unknown = sorted(set(wanted) - names)
        if unknown:
            raise ValueError(f"unknown model rows {unknown}; the table has {[r['name'] for r in spec['models']]}")
    out = Path(out or Path("results") / f"reproduce_{Path(table).name}_{preset}")
    seeds = list(seeds if seeds is not None else pre.get("seeds", [0, 1, 2]))
    if not spec.get("settings"):
        if settings:
            raise ValueError(f"settings {settings} given, but table {table!r} declares no information settings")
        rows = [r for r in spec["models"] if not wanted or r["name"] in wanted]
        return _one_table(table, spec, pre, preset, rows, seeds, out, overrides, resume, jobs, None)
    chosen = _settings(spec, pre)
    if settings:
        unknown = sorted(set(settings) - {s["name"] for s in chosen})
        if unknown:
            raise ValueError(f"settings {unknown} are not among the preset's {[s['name'] for s in chosen]}")
        chosen = [s for s in chosen if s["name"] in settings]
    mds = []
    for setting in chosen:
        keep = set(setting.get("models") or names) & set(wanted or names)
        rows = [r for r in spec["models"] if r["name"] in keep]
        if rows:
            mds.append(_one_table(table, spec, pre, preset, rows, seeds, out / setting["name"], overrides,
                                  resume, jobs, setting))
    md = "\n".join(mds)
    # every setting's table in `out`, those of an earlier call included, in the table's order
    found = [out / s["name"] / "table.md" for s in spec["settings"]]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table.md", "\n".join(f.read_text() for f in found if f.is_file()))
    return md


def _settings(spec: dict[str, Any], pre: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's information settings the preset runs, each with its rows."""
    settings = spec["settings"]
    for i, s in enumerate(settings):
        if not s.get("name") or not isinstance(s.get("protocol", {}), dict):
            raise ValueError(f"table.yaml: settings[{i}] needs a `name` and a `protocol` mapping, got {s!r}")
        unknown = sorted(set(s.get("models") or []) - {r["name"] for r in spec["models"]})
        if unknown:
            raise ValueError(f"table.yaml: setting {s['name']!r} names unknown rows {unknown}")
    chosen = pre.get("settings")
    if chosen is None:
        return settings
    by_name = {s["name"]: s for s in settings}
    unknown = sorted(set(chosen) - set(by_name))
    if unknown:
        raise ValueError(f"preset settings {unknown} are not in the table's settings {sorted(by_name)}")
    return [{**by_name[n], **({"models": chosen[n]} if isinstance(chosen, dict) and chosen[n] else {})}
            for n in chosen]


def _row_config(spec: dict[str, Any], pre: dict[str, Any], row: dict[str, Any], setting: dict[str, Any] | None,
                seeds: list[int], out: Path, overrides: list[str] | None) -> ExperimentConfig:
    """A row's config: defaults <- base <- the setting's protocol <- preset ``all`` <- row <- preset ``per_model``."""
    base = deep_merge(to_dict(ExperimentConfig()), spec.get("base", {}))
    if setting is not None:
        base = deep_merge(base, {"protocol": setting.get("protocol") or {}})
    delta = deep_merge(row.get("config", {}), (pre.get("per_model", {}) or {}).get(row["name"], {}))
    data = deep_merge(deep_merge(base, pre.get("all", {}) or {}), delta)
    data.update(name=row["name"], seeds=seeds, output_dir=str(out / "runs"))
    cfg = from_dict(ExperimentConfig, data)
    return checked_overrides(cfg, overrides) if overrides else cfg


def row_config(table: str, row: str, *, preset: str | None = None, setting: str | None = None,
               seeds: list[int] | None = None, out: Path | str = "results", overrides: list[str] | None = None,
               reference: dict[str, Any] | None = None) -> ExperimentConfig:
    """The config :func:`reproduce` trains for one row, for tools that run a row on their own
    (``benchmarks/``): defaults <- base <- the setting's protocol <- the preset's deltas <- row.

    Args:
        table: a table name or folder (:func:`table_spec`).
        row: the row's name.
        preset: apply this preset's ``all`` / ``per_model`` deltas (``None``: none).
        setting: one of the table's information settings by name (``None``: the base protocol).
        seeds, out, overrides: as in :func:`reproduce` (``out``: the table's folder).
        reference: ``UserHistory`` keywords for a row with a ``prior`` (and for the tuned row
            itself). :func:`reproduce` tunes them on validation first; ``None`` leaves the
            reference's defaults, which cost the same but do not score the same.

    Raises:
        ValueError: an unknown row, preset or setting.
    """
    spec = table_spec(table)
    found = next((r for r in spec["models"] if r["name"] == row), None)
    if found is None:
        raise ValueError(f"no row {row!r} in table {table!r}; rows: {[r['name'] for r in spec['models']]}")
    if preset is not None and preset not in spec["presets"]:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(spec['presets'])}")
    pre = (spec["presets"][preset] or {}) if preset is not None else {}
    chosen = None
    if setting is not None:
        by_name = {s.get("name"): s for s in spec.get("settings") or []}
        if setting not in by_name:
            raise ValueError(f"unknown setting {setting!r}; the table has {sorted(by_name)}")
        chosen = by_name[setting]
    cfg = _row_config(spec, pre, found, chosen, list(seeds if seeds is not None else [0]), Path(out), overrides)
    is_tuned_row = (spec.get("tune") or {}).get("row") == row
    if found.get("prior") or (reference is not None and is_tuned_row):
        _give_reference(cfg, found, is_tuned_row, reference or {})
    return cfg


def _give_reference(cfg: ExperimentConfig, row: dict[str, Any], is_tuned_row: bool, best: dict[str, Any]) -> None:
    """The reference's options ``best`` into ``cfg``: as the tuned row's own keywords, or as the
    ``prior`` of a row that asks for one (its ``fusion``/``weight`` over them)."""
    if is_tuned_row:
        cfg.model_kwargs = dict(best)
    else:
        cfg.model_kwargs = {**cfg.model_kwargs, "prior": {**best, **row["prior"]}}


def _apply_tuning(spec: dict[str, Any], pre: dict[str, Any], rows: list[dict[str, Any]], cfgs: list[ExperimentConfig],
                  setting: dict[str, Any] | None, seeds: list[int], out: Path, overrides: list[str] | None,
                  resume: bool) -> tuple[dict[str, Any], dict[tuple[str, str], dict[str, Any]]]:
    """Tune the ``tune`` row under each information setting the rows need; give the chosen
    keywords to that row and, as their prior, to rows with a row-level ``prior``. Returns
    ``{row name: tuning summary}`` for the table's record and ``{(history, target_time): the
    tuning record}``."""
    from stgnn.recipes.tuning import summary, tune_spec, tuned_kwargs

    block = tune_spec(spec, pre)
    if block is None:
        if any(r.get("prior") for r in rows):
            raise ValueError("table.yaml: a row asks for the tuned reference as its `prior`, but there is no `tune` block")
        return {}, {}
    by_name = {r["name"]: r for r in spec["models"]}
    if block["row"] not in by_name:
        raise ValueError(f"table.yaml: tune.row {block['row']!r} is not a row of the table")
    tune_row = by_name[block["row"]]
    done: dict[tuple[str, str], dict[str, Any]] = {}
    record: dict[str, Any] = {}
    for row, cfg in zip(rows, cfgs):
        if row["name"] != block["row"] and not row.get("prior"):
            continue
        base = _row_config(spec, pre, tune_row, setting, seeds, out, overrides)
        base.protocol = dict(cfg.protocol)   # tuned under the information setting of the row it serves
        info = InformationSetting.from_protocol(base.protocol)
        key = (info.history, info.target_time)
        if key not in done:
            done[key] = tuned_kwargs(block, base, out, resume)
        _give_reference(cfg, row, row["name"] == block["row"], done[key]["best"])
        record[row["name"]] = {**summary(done[key]), "as": "model_kwargs" if row["name"] == block["row"] else "prior"}
    return record, done


def _one_table(table: str, spec: dict[str, Any], pre: dict[str, Any], preset: str, rows: list[dict[str, Any]],
               seeds: list[int], out: Path, overrides: list[str] | None, resume: bool, jobs: int,
               setting: dict[str, Any] | None) -> str:
    """Every row of one table (one information setting) over ``seeds``; writes ``out/table.*``."""
    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    cfgs = [_row_config(spec, pre, row, setting, seeds, out, overrides) for row in rows]
    tuned, by_setting = _apply_tuning(spec, pre, rows, cfgs, setting, seeds, out, overrides, resume)
    rows, cfgs, against = _same_information_references(spec, pre, rows, cfgs, by_setting, tuned, setting, seeds,
                                                       out, overrides)
    if jobs > 1:
        print(f"[reproduce {table}/{preset}] {len(cfgs)} rows x {len(seeds)} seeds in {jobs} processes", flush=True)
        run_parallel(cfgs, jobs, resume=resume)
        resume = True  # the table is assembled from the runs just made
    for row, cfg in zip(rows, cfgs):
        print(f"[reproduce {table}/{preset}] {row['name']} ({cfg.model}) seeds={seeds}", flush=True)
        res = run_experiment(cfg, resume=resume)
        per_seed = {s: r["test"] for s, r in res["runs"].items()}
        timing = {s: r["timings"] for s, r in res["runs"].items()}
        first = next(iter(res["runs"].values()))
        results.append({"name": row["name"], "model": cfg.model, "summary": res["summary"],
                        "dataset": first.get("dataset") or _dataset_name(cfg.dataset),
                        "information": _information(first, cfg), "per_seed": per_seed, "timings": timing,
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
            run_a, run_b = (out / "runs" / n for n in (r["name"], against.get(r["name"], ref)))
            paired[r["name"]] = {s: compare_runs(run_a / f"seed_{s}", run_b / f"seed_{s}") for s in seeds}
            paired_slices[r["name"]] = {
                name: {s: compare_runs(run_a / f"seed_{s}", run_b / f"seed_{s}", mask=mask) for s in seeds}
                for name, mask in masks.items() if mask.any()}
    meta = {"table": Path(table).name.removeprefix("reproduce_"), "reference": ref, "paired": paired,
            "paired_against": {n: against.get(n, ref) for n in paired},
            "paired_slices": paired_slices, "preset": preset, "seeds": seeds,
            "seconds": round(time.perf_counter() - t0, 1),
            "protocol": spec["published"].get("protocol"), "base": spec.get("base", {}),
            "datasets": sorted({r["dataset"] for r in results}), "tuned": tuned}
    if setting is not None:
        protocol = deep_merge(spec.get("base", {}).get("protocol") or {}, setting.get("protocol") or {})
        meta["setting"] = {"name": setting["name"], **InformationSetting.from_protocol(protocol).to_dict()}
    md = format_table(results, spec["published"], meta)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table.md", md)
    atomic_write_text(out / "table.csv", table_csv(results, spec["published"], meta["datasets"]))
    atomic_write_json(out / "table.json", {"meta": meta, "results": results, "published": spec["published"]})
    return md


def _same_information_references(spec: dict[str, Any], pre: dict[str, Any], rows: list[dict[str, Any]],
                                 cfgs: list[ExperimentConfig], by_setting: dict[tuple[str, str], dict[str, Any]],
                                 tuned: dict[str, Any], setting: dict[str, Any] | None, seeds: list[int], out: Path,
                                 overrides: list[str] | None
                                 ) -> tuple[list[dict[str, Any]], list[ExperimentConfig], dict[str, str]]:
    """Every row is compared with a reference that had the same information. A row whose
    protocol narrows the table's setting (``target_time: hidden``) gets the tuned reference run
    under that narrower setting as an extra row, ``<reference>-<target_time>`` (its options: the
    search already made for the row's prior). Returns the rows and configs with the extra ones
    appended, and ``{row name: the row it is paired with}`` for rows not paired with the reference;
    ``tuned`` (the table's record of tuned rows) gets the extra rows."""
    from stgnn.recipes.tuning import summary

    ref = spec.get("reference")
    names = [r["name"] for r in rows]
    if not ref or ref not in names or (spec.get("tune") or {}).get("row") != ref:
        return rows, cfgs, {}
    ref_cfg = cfgs[names.index(ref)]
    ref_info = InformationSetting.from_protocol(ref_cfg.protocol)
    extra_rows, extra_cfgs, against = [], [], {}
    for row, cfg in zip(rows, cfgs):
        info = InformationSetting.from_protocol(cfg.protocol)
        key = (info.history, info.target_time)
        if info == ref_info or key not in by_setting:
            continue
        differs = [v for v, w in zip(key, (ref_info.history, ref_info.target_time)) if v != w]
        name = "-".join([ref, *differs])
        if name not in names and name not in [r["name"] for r in extra_rows]:
            extra = {**next(r for r in spec["models"] if r["name"] == ref), "name": name}
            extra_cfg = _row_config(spec, pre, extra, setting, seeds, out, overrides)
            extra_cfg.protocol = dict(cfg.protocol)
            _give_reference(extra_cfg, extra, True, by_setting[key]["best"])
            extra_rows.append(extra)
            extra_cfgs.append(extra_cfg)
            tuned[name] = {**summary(by_setting[key]), "as": "model_kwargs"}
        against[row["name"]] = name
    return rows + extra_rows, cfgs + extra_cfgs, against


def _dataset_name(dataset: str) -> str:
    """The split name a dataset spec gets (a file path's stem, else the name itself)."""
    return Path(dataset).name.split(".")[0].lower()


def _information(metrics: dict[str, Any], cfg: ExperimentConfig) -> dict[str, Any]:
    """A run's information setting, from its ``metrics.json`` (rebuilt from its protocol and the
    model's flag for runs written before metrics.json recorded it)."""
    if metrics.get("information"):
        return metrics["information"]
    from stgnn.registry import resolve_model

    info = InformationSetting.from_protocol(metrics.get("protocol") or cfg.protocol)
    # the class's flag: such old runs predate models that declare it per instance
    return {**info.to_dict(), "target_time_read": info.for_model(resolve_model(cfg.model).uses_target_time)
            .target_time == "known"}


def checked_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """``cfg`` with ``overrides`` applied (:func:`stgnn.config.apply_overrides`) and the result
    preflight-checked (every row's model_kwargs, protocol and device, before any data work)."""
    from stgnn.config import apply_overrides
    from stgnn.preflight import check_experiment

    cfg = apply_overrides(cfg, overrides)
    check_experiment(cfg)  # every row's model_kwargs/protocol/device, before any data work
    return cfg
