"""Structured explanations of recommended POIs: fields, not prose.

For each recommended POI ``p`` of a user at time ``t``:

* ``memory``: the user's own earlier check-ins that drove ``p``. For a model with a pointer over
  the user's memory (STGNN's ``copy``), the check-ins at ``p`` with their pointer weight (share of
  the pointer distribution), attention weight, time and source (current trajectory or history),
  plus ``memory_share``: the part of ``p``'s probability that came through the pointer rather
  than the generate side. For :class:`~stgnn.baselines.user_history.UserHistory`: the visits that
  voted for ``p`` with their recency-decayed vote. Any other model: the user's visits to ``p``
  (no weights).
* ``relations``: how ``p`` relates to the user's current POI in the training graph:
  ``transition`` (training transitions current → ``p``, count and share of the current POI's
  outgoing ones), ``nearby`` (great-circle km; ``near`` when ``p`` is among the current POI's
  ``NEAR_K`` nearest, the graph's ``near`` relation), ``same_category``.
* ``time_of_week``: ``p``'s training check-ins in the query's local hour of the week (±1 h)
  against its average for such a window (``lift`` > 1: busier than usual then).

The model's own weights (pointer, attention, gate, votes) are attributions of this answer; the
relations and time-of-week pattern are facts of the training graph the model was trained on.
"""
from __future__ import annotations

import datetime as _dt
import functools
from typing import Any

import numpy as np
import torch

from stgnn.features.time import HOURS_PER_WEEK, hour_of_week
from stgnn.serve.catalog import Catalog

MAX_MEMORY_ITEMS = 3
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


_TIMEZONES: dict[int, _dt.timezone] = {}


def iso(ts: int, tz_min: int = 0) -> str:
    """ISO 8601 local time with its offset (``2012-04-03T14:00:09-04:00``)."""
    return _iso(int(ts), int(tz_min))


@functools.lru_cache(maxsize=1 << 16)
def _iso(ts: int, tz_min: int) -> str:
    # a request formats ~30 times of the user's recent check-ins, the same ones request after
    # request: cached (a pure function of two ints; 64k entries, a few MB)
    tz = _TIMEZONES.get(tz_min)
    if tz is None:
        tz = _TIMEZONES.setdefault(tz_min, _dt.timezone(_dt.timedelta(minutes=tz_min)))
    return _dt.datetime.fromtimestamp(ts, tz).isoformat()


def hour_label(how: int) -> str:
    return f"{DAYS[how // 24]} {how % 24:02d}:00"


def time_of_week(catalog: Catalog, pois: np.ndarray, how: int) -> list[dict[str, Any]]:
    """Per POI in ``pois``: its training check-ins near the query's hour of the week vs its average."""
    hours = [(how + d) % HOURS_PER_WEEK for d in (-1, 0, 1)]
    rows = catalog.tow[pois]                                                  # (n, 168)
    window, total = rows[:, hours].sum(1), rows.sum(1)                        # (n,), (n,)
    label = hour_label(int(how))
    return [{"hour_of_week": int(how), "label": label, "checkins_in_window": int(w), "checkins_total": int(t),
             "lift": round(float(w) / (t * 3 / HOURS_PER_WEEK), 3) if t > 0 else None}
            for w, t in zip(window.tolist(), total.tolist())]


def relations(catalog: Catalog, current: int | None, pois: np.ndarray) -> list[list[dict[str, Any]]]:
    """Per POI in ``pois``: its training-graph relations from the current POI (module docstring)."""
    if current is None:
        return [[] for _ in pois]
    km = catalog.km_list(current, pois.tolist())                             # (n,)
    near = set(catalog.near[current].tolist())
    cur_cat = int(catalog.poi_category[current])
    cats = catalog.poi_category[pois].tolist()
    out: list[list[dict[str, Any]]] = []
    for p, d, c in zip(pois.tolist(), km, cats):
        rel: list[dict[str, Any]] = []
        count, total = catalog.transition(current, p)
        if count:
            rel.append({"type": "transition", "from": str(catalog.poi_ids[current]), "count": count,
                        "share": round(count / total, 4)})
        if p == current:
            rel.append({"type": "same_poi"})
        elif d == d:                                                         # not NaN
            rel.append({"type": "nearby", "km": round(d, 3), "near": p in near})
        if c == cur_cat:
            rel.append({"type": "same_category", "category": str(catalog.category_names[cur_cat])})
        out.append(rel)
    return out


def _memory_items(catalog: Catalog, poi: list[int], ts: list[int], tz: list[int], hist_width: int,
                  positions: list[int], weights: dict[str, list[float]]) -> list[dict[str, Any]]:
    # plain lists (made once per request): indexing them costs a fraction of numpy scalars
    items = []
    for m in positions[:MAX_MEMORY_ITEMS]:
        item: dict[str, Any] = {"poi": catalog.card(poi[m])[0], "ts": ts[m], "time": iso(ts[m], tz[m]),
                                "source": "history" if m < hist_width else "current_trajectory"}
        for k, w in weights.items():
            item[k] = round(w[m], 5)
        items.append(item)
    return items


def explain_items(model: Any, catalog: Catalog, batch: Any, out: dict[str, torch.Tensor] | None,
                  pois: list[int], current: int | None, at: int, at_tz: int) -> list[dict[str, Any]]:
    """One explanation dict per POI in ``pois`` for sample 0 of ``batch`` (module docstring).

    Args:
        model: the served model (its public attributes decide the memory explanation).
        batch: the live batch (one sample) the scores came from.
        out: the model's forward outputs for it when the model returns a dict (STGNN), else ``None``.
        pois: model POI ids to explain; current: the user's current POI (``None``: cold start).
        at, at_tz: the query time and tz.
    """
    H = batch.hist_poi.shape[1]
    # the memory (history, then prefix) as the model laid it out; STGNN's outputs carry most of it
    o = out if out is not None and "mem_poi" in out else {}
    mem_poi = (o["mem_poi"] if o else torch.cat([batch.hist_poi, batch.poi], 1))[0].numpy()    # (M,)
    mem_ts = (o["mem_ts"] if o else torch.cat([batch.hist_ts, batch.ts], 1))[0].numpy()
    mem_mask = (o["mem_mask"] if o else torch.cat([batch.hist_mask, batch.mask], 1))[0].numpy()
    mem_tz = torch.cat([batch.hist_tz, batch.tz], 1)[0].numpy()
    how = int(hour_of_week(np.int64(at), np.int64(at_tz)))
    weights: dict[str, np.ndarray] = {}
    share: dict[int, float] | None = None
    kind = "visits"
    if out is not None and "copy_w" in out:
        kind = "pointer"
        weights["pointer_weight"] = out["copy_w"][0].float().numpy()
        weights["attention_weight"] = out["att_w"][0].float().numpy()
        g = float(out["gate"][0])
        idx = torch.as_tensor(pois, dtype=torch.long)
        p_gen = out["gen"][0].float().softmax(-1)[idx].numpy()              # (n,)
        p_copy = out["p_copy"][0].float()[idx].numpy()                      # (n,)
        share = dict(zip(pois, (g * p_copy / np.maximum(g * p_copy + (1 - g) * p_gen, 1e-30)).tolist()))
    elif out is not None and "att_w" in out:
        kind = "attention"
        weights["attention_weight"] = out["att_w"][0].float().numpy()
    elif hasattr(model, "half_life") and hasattr(model, "eps"):              # UserHistory's votes
        kind = "votes"
        w = mem_mask.astype(np.float64)
        t_ref = int(batch.ts[0, int(batch.length[0]) - 1])
        if model.half_life is not None:
            w = w * np.exp2(-np.maximum(t_ref - mem_ts, 0) / 86400.0 / model.half_life)
        weights["vote"] = (1 - model.eps - model.transition_weight) * w / max(w.sum(), 1e-300)
    pois_a = np.asarray(pois, np.int64)
    rels, tows = relations(catalog, current, pois_a), time_of_week(catalog, pois_a, how)
    key = next(iter(weights), None)
    # memory positions of each explained POI in one pass over the memory (not one scan per POI)
    wanted, hits = set(pois), {}
    real = np.flatnonzero(mem_mask)
    for m, q in zip(real.tolist(), mem_poi[real].tolist()):
        if q in wanted:
            hits.setdefault(q, []).append(m)
    as_lists = (mem_poi.tolist(), mem_ts.tolist(), mem_tz.tolist(), H)
    weight_lists = {k: w.tolist() for k, w in weights.items()}
    order_by = weight_lists.get(key) if key is not None else None
    result = []
    for p, rel, tw in zip(pois, rels, tows):
        at_p = hits.get(p, [])                                              # oldest first
        if order_by is not None and len(at_p) > 1:                          # heaviest first, ties oldest first
            at_p = sorted(at_p, key=lambda m: -order_by[m])
        elif order_by is None:
            at_p = at_p[::-1]                                               # most recent first
        memory = {"kind": kind, "visits": len(at_p),
                  "checkins": _memory_items(catalog, *as_lists, at_p, weight_lists)}
        if share is not None:
            memory["memory_share"] = round(float(share[p]), 4)
        if kind == "votes":
            memory["vote_total"] = round(float(weights["vote"][np.asarray(at_p, np.int64)].sum()), 5)
        result.append({"memory": memory, "relations": rel, "time_of_week": tw})
    return result
