"""Replay A/B: two served models on the same replayed stream of check-ins (``stgnn replay``).

The offline form of an online A/B test before a model swap. A fresh store is seeded with the
dataset's check-ins before ``start``; then every check-in with ``start <= ts < end`` is streamed
in time order: before it is ingested, each :class:`~stgnn.serve.recommender.Recommender` is asked
for the user at that moment (exactly what a live request would get: every stored check-in strictly
before it, the ``all_past`` history setting), and the rank of the POI the user really went to is
recorded (pessimistic ties, over all POIs; a POI the model has no id for is a miss). Then the
check-in is written, and the next question sees it.

Reported per model: online Acc@1/5/10 and MRR over every streamed check-in, latency per request
(scores + top-k, no explanations; p50/p90/p99), cold-start answers; and the paired bootstrap 95%
CI of A − B (:func:`stgnn.eval.significance.paired_bootstrap`, resampling check-ins).

Unlike the offline protocol (last check-in of each test trajectory, training-period history),
every check-in of the period is a question here, including a trajectory's first, whose "current
trajectory" is the user's previous one.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from stgnn.eval.metrics import metrics_from_ranks, ranks
from stgnn.eval.significance import paired_bootstrap
from stgnn.serve.loading import load_split_of_run
from stgnn.serve.recommender import Recommender
from stgnn.serve.store import CheckinStore, NewCheckin

METRICS = ("Acc@1", "Acc@5", "Acc@10", "MRR")


def _rank(scores: torch.Tensor, target: int | None) -> int:
    """Pessimistic 1-based rank of ``target`` in ``scores (P,)`` (:func:`stgnn.eval.metrics.ranks`);
    ``P + 1`` when the model has no id for it."""
    if target is None:
        return len(scores) + 1
    return int(ranks(scores[None], torch.tensor([target]))[0])


def stream(split: Any, start: int, end: int, limit: int | None = None) -> np.ndarray:
    """Indices of ``split``'s check-ins with ``start <= ts < end``, in time order (ties: split order)."""
    idx = np.flatnonzero((split.ts >= start) & (split.ts < end))
    idx = idx[np.lexsort((idx, split.ts[idx]))]
    return idx[:limit] if limit is not None else idx


def replay(recs: dict[str, Recommender], split: Any, store: CheckinStore, start: int, end: int, k: int = 10,
           limit: int | None = None, progress: Callable[[str], None] | None = None,
           n_boot: int = 1000) -> dict[str, Any]:
    """Stream ``split``'s check-ins in ``[start, end)`` through ``recs`` (two, sharing ``store``).

    ``store`` must hold the history before ``start`` (e.g. ``store.seed_from_split(split, start)``).
    Returns the JSON-able result (module docstring); the first two models are compared as A − B.
    """
    events = stream(split, start, end, limit)
    names = list(recs)
    got = {n: np.zeros(len(events), np.int64) for n in names}
    lat = {n: np.zeros(len(events)) for n in names}
    cold = {n: 0 for n in names}
    t_start = time.perf_counter()
    for i, j in enumerate(events.tolist()):
        user, poi = str(split.user_ids[split.user[j]]), str(split.poi_ids[split.poi[j]])
        ts, tz = int(split.ts[j]), int(split.tz_offset_min[j])
        for n, rec in recs.items():
            t0 = time.perf_counter()
            a = rec.answer(user, ts, tz)
            a.scores.topk(min(k, len(a.scores)))          # what a request also does: its top-k
            lat[n][i] = time.perf_counter() - t0
            got[n][i] = _rank(a.scores, rec.catalog.poi_index.get(poi))
            cold[n] += a.cold_reason is not None
        store.add_checkins([NewCheckin(id=f"replay:{j}", user=user, poi=poi, ts=ts, tz=tz)])
        if progress and (i + 1) % 1000 == 0:
            acc = "  ".join(f"{n} Acc@1 {np.mean(got[n][:i + 1] == 1):.4f}" for n in names)
            progress(f"  {i + 1}/{len(events)} check-ins replayed  {acc}  "
                     f"({time.perf_counter() - t_start:.0f} s)")
    out: dict[str, Any] = {"start": int(start), "end": int(end), "checkins": int(len(events)), "k": k,
                           "seconds": round(time.perf_counter() - t_start, 1), "models": {},
                           "torch_threads": torch.get_num_threads(),
                           "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    for n, rec in recs.items():
        m = metrics_from_ranks(got[n], ks=(1, 5, 10), ndcg_ks=(), precision_f1=False) if len(events) else {}
        ms = lat[n] * 1e3
        out["models"][n] = {
            "run": str(rec.loaded.run_dir), "model": type(rec.model).__name__,
            "metrics": {key: m.get(key) for key in METRICS}, "cold_start_answers": cold[n],
            "latency_ms": {"p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
                           "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean())} if len(ms) else {}}
    if len(names) >= 2 and len(events):
        a, b = names[0], names[1]
        out["comparison"] = {"a": a, "b": b, "n_boot": n_boot,
                             "diff": paired_bootstrap(got[a], got[b], metrics=METRICS, n_boot=n_boot)}
    out["ranks"] = {n: r.tolist() for n, r in got.items()}
    out["event_index"] = events.tolist()
    return out


def run_replay(run_a: str | Path, run_b: str | Path, start: int | None = None, end: int | None = None,
               k: int = 10, limit: int | None = None, store_path: str | Path | None = None,
               progress: Callable[[str], None] | None = print, n_boot: int = 1000) -> dict[str, Any]:
    """``stgnn replay``: load both runs, seed a throw-away store from run A's split before ``start``
    (default: the split's ``val_end``, i.e. the test period) and replay until ``end`` (default: the end)."""
    split = load_split_of_run(run_a)
    if start is None:
        if "val_end" not in split.cuts:
            raise ValueError(f"split {split.name!r} has no global time cut (protocol {split.protocol.get('protocol')}); "
                             "give --from")
        start = int(split.cuts["val_end"])
    end = int(split.ts.max()) + 1 if end is None else int(end)
    if end <= start:
        raise ValueError(f"--to ({end}) must be after --from ({start})")
    tmp = None
    if store_path is None:
        tmp = tempfile.TemporaryDirectory(prefix="stgnn-replay-")
        store_path = Path(tmp.name) / "replay.sqlite"
    elif Path(store_path).exists():
        raise ValueError(f"replay store {store_path} exists; give a new path (a replay starts from a fresh store)")
    try:
        with CheckinStore(store_path, durable=False) as store:
            n = store.seed_from_split(split, until=start)
            if progress:
                progress(f"store seeded with {n} check-ins before {start}; loading {run_a} and {run_b}")
            recs = {"A": Recommender.from_run(run_a, store), "B": Recommender.from_run(run_b, store)}
            res = replay(recs, split, store, start, end, k=k, limit=limit, progress=progress, n_boot=n_boot)
    finally:
        if tmp is not None:
            tmp.cleanup()
    res["models"]["A"]["name"] = recs["A"].loaded.name
    res["models"]["B"]["name"] = recs["B"].loaded.name
    return res


def format_replay(res: dict[str, Any]) -> str:
    """A small Markdown report of :func:`replay`'s result."""
    lines = [f"Replay of {res['checkins']} check-ins, {res['start']} .. {res['end']} (UTC s), "
             f"each asked before it was ingested; {res['seconds']} s with {res.get('torch_threads')} torch "
             f"thread(s), load average {res.get('load_average_at_end')} at the end.", "",
             "| model | run | Acc@1 | Acc@5 | Acc@10 | MRR | latency p50 / p99 (ms) | cold-start answers |",
             "|---|---|---|---|---|---|---|---|"]
    for n, m in res["models"].items():
        mm, lt = m["metrics"], m["latency_ms"]
        lines.append(f"| {n}: {m.get('name', m['model'])} | {m['run']} | " + " | ".join(
            f"{mm[k]:.4f}" for k in METRICS) + f" | {lt['p50']:.2f} / {lt['p99']:.2f} | {m['cold_start_answers']} |")
    if "comparison" in res:
        c = res["comparison"]
        lines += ["", f"Paired bootstrap ({c['n_boot']} resamples of the check-ins), A − B with 95% CI:", ""]
        for metric, d in c["diff"].items():
            lines.append(f"- {metric}: {d['diff']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] (p={d['p']:.3f})")
    return "\n".join(lines)
