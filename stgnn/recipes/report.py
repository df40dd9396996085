"""Rendering of results tables: Markdown (``table.md``) and CSV (``table.csv``) from the runs' numbers."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from stgnn.eval.metrics import TABLE_METRICS


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.4f}" if not np.isfinite(std) else f"{mean:.4f} ± {std:.4f}"


PUB_KEY = {"Acc@1": "acc1", "Acc@5": "acc5", "Acc@10": "acc10", "MRR": "mrr"}  # metric -> published.yaml field


def published_rows(published: dict[str, Any], datasets: list[str]) -> list[dict[str, Any]]:
    """The published rows of the datasets a table ran on (a row's ``dataset``, else the file's),
    names matched without case (GETNext's files give ``NYC``, the registry ``nyc``)."""
    ran = {str(d).lower() for d in datasets}
    return [p for p in published["rows"] if str(p.get("dataset", published.get("dataset"))).lower() in ran]


def information_line(results: list[dict[str, Any]]) -> str:
    """What the rows could see: the information setting(s) and which rows read the target time."""
    settings = {(r["information"]["history"], r["information"]["target_time"]) for r in results}
    readers = [r["name"] for r in results if r["information"].get("target_time_read")]
    if len(settings) == 1:
        (history, target_time), = settings
        said = f"Information setting: history={history}, target_time={target_time}"
    else:
        said = "Information settings differ by row: " + "; ".join(
            f"{r['name']} history={r['information']['history']}, target_time={r['information']['target_time']}"
            for r in results)
    read = (f"the target time reaches {', '.join(readers)} only (the other rows do not declare that they "
            "read it)" if readers else "no row reads the target time")
    return f"{said}; {read}."


def setting_lines(meta: dict[str, Any]) -> list[str]:
    """The table's named information setting and how its reference was tuned (empty when neither)."""
    lines = []
    if meta.get("setting"):
        st = meta["setting"]
        lines += [f"**Setting `{st['name']}`: history={st['history']}, target_time={st['target_time']}** "
                  "(every row runs under it unless its own protocol narrows it, as a `target_time: hidden` row "
                  "does).", ""]
    for name, t in (meta.get("tuned") or {}).items():
        kw = ", ".join(f"{k}={v}" for k, v in t["best"].items())
        what = "its options" if t["as"] == "model_kwargs" else "the reference it uses as a prior"
        lines += [f"{name}: {what} picked on validation {t['monitor']} over {t['points']} grid points under "
                  f"history={t['information']['history']}, target_time={t['information']['target_time']} "
                  f"(val {t['monitor']} {t['best_score']:.4f}): {kw}. Grid and every point's val metrics: "
                  f"`{Path(t['file']).name}` beside this table.", ""]
    return lines


def format_table(results: list[dict[str, Any]], published: dict[str, Any], meta: dict[str, Any]) -> str:
    """Markdown: our rows (mean ± std over seeds) then the published rows of the same dataset, with sources."""
    cols = ("Acc@1", "Acc@5", "Acc@10", "NDCG@10", "MRR")
    datasets = meta.get("datasets") or [meta["table"]]
    on = ", ".join(datasets)
    title = meta["table"].upper() if datasets == [meta["table"]] else f"{meta['table'].upper()} table on {on}:"
    lines = [f"# {title} next-POI results ({meta['preset']} preset, seeds {meta['seeds']})", "",
             f"Protocol: {meta['protocol']}. Full ranking over all POIs, ties counted pessimistically, "
             "previously visited POIs kept in the ranking. Ours: mean ± std over seeds (sample std).", "",
             *setting_lines(meta), information_line(results), "",
             "| model | " + " | ".join(cols) + " | source |", "|---|" + "---|" * (len(cols) + 1)]
    for r in results:
        cells = [_fmt(r["summary"][c]["mean"], r["summary"][c]["std"]) if c in r["summary"] else "—" for c in cols]
        lines.append(f"| **{r['name']}** (ours) | " + " | ".join(cells) + " | this run |")
    shown = published_rows(published, datasets)
    for p in shown:
        cells = [f"{p[PUB_KEY[c]]:.4f}" if PUB_KEY.get(c) and p.get(PUB_KEY[c]) is not None else "—" for c in cols]
        lines.append(f"| {p['model']} ({p['venue']}) | " + " | ".join(cells) + f" | {p['source']} |")
    if len(shown) < len(published["rows"]):
        ran = {str(d).lower() for d in datasets}
        other = sorted({str(p.get("dataset", published.get("dataset"))) for p in published["rows"]
                        if str(p.get("dataset", published.get("dataset"))).lower() not in ran})
        lines += ["", f"Published rows of {', '.join(other)} not shown: this table ran on {on}."]
    if meta.get("paired"):
        against = meta.get("paired_against") or {}
        other = any(v != meta["reference"] for v in against.values())   # then a `minus` column names the pair
        lines += ["", f"Paired bootstrap (1,000 resamples of the test samples, per seed) of each model minus "
                  f"{meta['reference']}: difference and 95% CI."]
        if other:
            lines += [f"A row under a narrower information setting is paired with {meta['reference']} tuned and "
                      "run under that setting (the `minus` column), so both sides had the same information."]
        lines += ["", "| model |" + (" minus |" if other else "") + " seed | ΔAcc@1 [95% CI] | ΔMRR [95% CI] |",
                  "|---|---|---|---|" + ("---|" if other else "")]
        for name, per_seed in meta["paired"].items():
            for s, d in per_seed.items():
                a, m = d["Acc@1"], d["MRR"]
                minus = f" {against.get(name, meta['reference'])} |" if other else ""
                lines.append(f"| {name} |{minus} {s} | {a['diff']:+.4f} [{a['lo']:+.4f}, {a['hi']:+.4f}] | "
                             f"{m['diff']:+.4f} [{m['lo']:+.4f}, {m['hi']:+.4f}] |")
    if any(r.get("slices") for r in results):
        lines += ["", "By slice of the test samples (stgnn/eval/slices.py; n = samples in the slice):", "",
                  "| model | slice | n | Acc@1 | Acc@10 | MRR |", "|---|---|---|---|---|---|"]
        for r in results:
            for name, d in r.get("slices", {}).items():
                cells = [_fmt(d[c]["mean"], d[c]["std"]) if c in d else "—" for c in ("Acc@1", "Acc@10", "MRR")]
                lines.append(f"| {r['name']} | {name} | {d['n']:,} | " + " | ".join(cells) + " |")
    if meta.get("paired_slices") and any(meta["paired_slices"].values()):
        lines += ["", f"Paired bootstrap on each slice, model minus {meta['reference']} (or the row it is paired "
                  "with above, 95% CI):", "",
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


def table_csv(results: list[dict[str, Any]], published: dict[str, Any], datasets: list[str]) -> str:
    """CSV: one line per row of ours (mean and std of every metric) and per published row of ``datasets``."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "origin", *[f"{m}_{s}" for m in TABLE_METRICS for s in ("mean", "std")], "source"])
    for r in results:
        vals = []
        for m in TABLE_METRICS:
            s = r["summary"].get(m)
            vals += [f"{s['mean']:.6f}", f"{s['std']:.6f}"] if s else ["", ""]
        w.writerow([r["name"], "ours", *vals, "this run"])
    for p in published_rows(published, datasets):
        vals = []
        for m in TABLE_METRICS:
            v = p.get(PUB_KEY.get(m, ""), None)
            vals += [f"{v:.4f}" if v is not None else "", ""]
        w.writerow([p["model"], "published", *vals, p["source"]])
    return buf.getvalue()
