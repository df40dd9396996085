"""``Recommender``: a trained run held in a process, answering "where next for this user, now?".

    rec = Recommender.from_run("results/reproduce_nyc_fast/runs/STGNN/seed_0", store)
    rec.recommend("42", k=10)          # top-10 with scores and explanations, from the store

The user's history comes from the :class:`~stgnn.serve.store.CheckinStore` at every request
(every stored check-in strictly before ``at``: the ``all_past`` history setting), so a check-in
written a moment ago changes the next answer without retraining. Request-independent work (graph
and POI encodings) is done once at load (:func:`stgnn.serve.loading.precompute`); a request
reads the user's rows, builds a one-sample batch (:mod:`stgnn.serve.live_batch`) and runs the
model's ``score`` on it. Any :class:`~stgnn.models.base.Recommender` model works: STGNN and every
baseline go through the same ``score(batch)``.

Cold start (a user the model has no id for, or with no stored check-in before ``at``): the most
popular POIs of the training period around the user's place (``lat``/``lon`` given, else the
user's latest stored check-in) in the query's hour of the week, flagged ``cold_start``.

Thread safety: requests may run concurrently; each keeps its own forward outputs
(thread-local), and the id maps are replaced, never mutated.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from stgnn.features.time import hour_of_week
from stgnn.serve.explain import explain_items, iso, time_of_week
from stgnn.serve.live_batch import UserContext, make_live_batch, user_context
from stgnn.serve.loading import LoadedRun, load_run
from stgnn.serve.store import CheckinStore

MAX_K = 100
MAX_TRAJECTORY_SHOWN = 20      # most recent check-ins of the current trajectory listed in a response
COLD_RADIUS_KM = 1.0           # first radius tried around a cold-start user's place (doubled until k POIs)
# the forward outputs of the model call running in this thread (STGNN returns a dict of them)
_CAPTURE = threading.local()


def _capture(module: Any, inputs: Any, output: Any) -> None:
    if isinstance(output, dict):
        _CAPTURE.out = output


class RequestError(ValueError):
    """A request the recommender cannot answer as asked (``field`` names the input, ``status`` the HTTP code)."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.status = field, status


@dataclass
class Answer:
    """Full scores for one query: what :meth:`Recommender.recommend` ranks and replay evaluates.

    ``scores (P,)`` float32 over the model's POIs (-inf: not a candidate); ``context`` the user's
    kept check-ins (``None``: cold start); ``batch``/``out`` the live batch and the model's forward
    outputs (explanations).
    """

    scores: torch.Tensor
    context: UserContext | None
    batch: Any
    out: dict[str, torch.Tensor] | None
    at: int
    at_tz: int
    cold_reason: str | None
    cold_info: dict[str, Any] | None


class Recommender:
    """A loaded run + the check-in store (module docstring).

    Args:
        loaded: from :func:`stgnn.serve.loading.load_run`.
        store: the user-history source of truth.
    """

    def __init__(self, loaded: LoadedRun, store: CheckinStore) -> None:
        self.loaded, self.model, self.store = loaded, loaded.model, store
        self.catalog = loaded.catalog.with_store(store)      # + POI names and hour-of-week traffic
        self.gap_s = float(self.catalog.protocol.get("traj_gap_hours", 24.0)) * 3600.0
        self.loaded_at = time.time()
        self._maps: tuple[int, np.ndarray, np.ndarray] = (-1, np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._maps_lock = threading.Lock()
        # the model's forward outputs, kept per thread for explanations (one hook per model object)
        if not getattr(self.model, "_serve_capture_hook", False):
            self.model.register_forward_hook(_capture)
            self.model._serve_capture_hook = True

    @classmethod
    def from_run(cls, run_dir: str | Path, store: CheckinStore) -> "Recommender":
        """Load ``run_dir`` (config, ``inputs.pt``, checkpoint: :func:`stgnn.train.restore.load_trained`;
        encodings precomputed) over ``store``."""
        return cls(load_run(run_dir), store)

    def info(self) -> dict[str, Any]:
        """What is being served (for ``/healthz`` and responses)."""
        l = self.loaded
        return {"name": l.name, "model": type(self.model).__name__, "run_dir": str(l.run_dir),
                "checkpoint": str(l.checkpoint) if l.checkpoint else None, "loaded_at": iso(int(self.loaded_at)),
                "num_pois": self.catalog.num_pois, "num_users": self.catalog.num_users,
                "history": "all_past", "target_time_known": l.target_time_known,
                "dataset": self.catalog.name}

    # ------------------------------------------------------------------ store keys -> model ids
    def _id_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """``(poi_map (K,), cat_map (K_c,))`` store key → model id (-1: none), rebuilt when the store's
        POIs or categories changed."""
        version, pmap, cmap = self._maps
        if version == self.store.version:
            return pmap, cmap
        with self._maps_lock:
            version = self.store.version
            pmap = _key_map(self.store.poi_keys(), self.catalog.poi_index)
            cmap = _key_map(self.store.category_keys(), self.catalog.category_index)
            self._maps = (version, pmap, cmap)
        return pmap, cmap

    def context(self, user: str, at: int) -> UserContext | None:
        """The user's kept check-ins before ``at`` (history + current trajectory), ``None``: none."""
        pmap, cmap = self._id_maps()
        limit = self.loaded.hist_len + self.loaded.max_len + 64
        while True:
            rows = self.store.user_rows(user, at, limit)
            try:
                return user_context(rows, pmap, cmap, self.gap_s, self.loaded.hist_len, self.catalog.poi_category)
            except LookupError:      # the window did not reach far enough back: read more
                limit *= 4

    # ------------------------------------------------------------------ answering
    def answer(self, user: str, at: int | None = None, at_tz: int | None = None,
               lat: float | None = None, lon: float | None = None) -> Answer:
        """Scores over every POI for ``user`` at ``at`` (default: now), or a cold-start answer."""
        at = int(time.time()) if at is None else int(at)
        ctx = self.context(user, at)
        uid = self.catalog.user_index.get(user)
        if at_tz is None:
            at_tz = int(ctx.tz[-1]) if ctx is not None else self._last_tz(user, at)
        if uid is None or ctx is None:
            reason = "user unknown to the model" if uid is None else "no check-in before this time"
            scores, info = self._cold_scores(user, at, at_tz, lat, lon)
            return Answer(scores, ctx, None, None, at, at_tz, reason, info)
        batch = make_live_batch([ctx], [uid], [at], [at_tz], max_len=self.loaded.max_len,
                                hist_len=self.loaded.hist_len, poi_category=self.catalog.poi_category,
                                poi_lat=self.catalog.poi_lat, poi_lon=self.catalog.poi_lon,
                                target_time_known=self.loaded.target_time_known)
        _CAPTURE.out = None
        with torch.inference_mode():
            scores = self.model.score(batch)[0].float()                          # (P,)
        out, _CAPTURE.out = _CAPTURE.out, None
        return Answer(scores, ctx, batch, out, at, at_tz, None, None)

    def _last_tz(self, user: str, at: int) -> int:
        last = self.store.user_checkins(user, limit=1, before=at)
        return int(last[0]["tz_offset_min"]) if last else self.catalog.default_tz

    def _cold_scores(self, user: str, at: int, at_tz: int, lat: float | None, lon: float | None,
                     ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Popular POIs of the training period near a place at this hour of the week (module docstring)."""
        cat = self.catalog
        how = int(hour_of_week(np.int64(at), np.int64(at_tz)))
        window, total = cat.tow_window(how, 1), cat.popularity                  # (P,), (P,)
        score = np.log1p(window + 0.1 * total)                                  # (P,)
        info: dict[str, Any] = {"strategy": "popular in the training period at this hour of the week",
                                "hour_of_week": how}
        place = (lat, lon) if lat is not None and lon is not None else None
        if place is None:
            last = self.store.user_checkins(user, limit=1, before=at)
            if last and last[0]["lat"] is not None and last[0]["lon"] is not None:
                place = (last[0]["lat"], last[0]["lon"])
                info["place_from"] = "latest stored check-in"
        elif place is not None:
            info["place_from"] = "request"
        if place is not None:
            km = cat.km_from(*place)                                            # (P,)
            radius = COLD_RADIUS_KM
            while (km <= radius).sum() < min(10, cat.num_pois) and radius < 200:
                radius *= 2
            score = np.where(km <= radius, score, -np.inf)
            info.update(strategy="popular within radius_km of the place at this hour of the week",
                        lat=place[0], lon=place[1], radius_km=radius)
        return torch.from_numpy(score.astype(np.float32)), info

    def recommend(self, user: str, at: int | None = None, k: int = 10, exclude: Sequence[str] = (), *,
                  at_tz: int | None = None, lat: float | None = None, lon: float | None = None,
                  explain: bool = True) -> dict[str, Any]:
        """Top-``k`` POIs for ``user`` at ``at`` with scores and explanations (a JSON-able dict).

        Raises:
            RequestError: ``k`` out of ``1..MAX_K``, or an ``exclude`` id the model does not know.
        """
        t0 = time.perf_counter()
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise RequestError(f"k must be an integer in 1..{MAX_K}, got {k!r}", "k")
        drop = []
        for i, p in enumerate(exclude):
            idx = self.catalog.poi_index.get(p)
            if idx is None:
                raise RequestError(f"exclude[{i}]: unknown POI {p!r}", f"exclude[{i}]", status=404)
            drop.append(idx)
        a = self.answer(user, at, at_tz, lat, lon)
        scores = a.scores.clone() if drop else a.scores
        if drop:
            scores[drop] = -torch.inf
        n_cand = int(torch.isfinite(scores).sum())
        top_s, top_p = scores.topk(min(k, n_cand))
        top = top_p.tolist()
        current = int(a.context.poi[-1]) if a.context is not None and a.cold_reason is None else None
        if explain and a.cold_reason is None:
            expl = explain_items(self.model, self.catalog, a.batch, a.out, top, current, a.at, a.at_tz)
        elif explain:
            expl = self._cold_explanations(top, a)
        else:
            expl = [None] * len(top)
        card = self.catalog.card
        items = []
        for r, (p, s, e) in enumerate(zip(top, top_s.tolist(), expl)):
            pid, name, c, lat, lon = card(p)
            items.append({"rank": r + 1, "poi": pid, "name": name, "category": c, "lat": lat, "lon": lon,
                          "score": round(s, 6), **({"explanation": e} if explain else {})})
        out = {"user": user, "at": a.at, "time": iso(a.at, a.at_tz), "tz_offset_min": a.at_tz, "k": k,
               "cold_start": a.cold_reason is not None, "model": self.loaded.name, "items": items,
               "context": self._context_summary(a)}
        if a.cold_reason is not None:
            out["cold_start_reason"] = a.cold_reason
            out["context"]["cold_start"] = a.cold_info
        out["elapsed_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
        return out

    def _context_summary(self, a: Answer) -> dict[str, Any]:
        ctx = a.context
        if ctx is None:
            return {"trajectory": [], "history_checkins": 0}
        card = self.catalog.card
        n = min(ctx.prefix_len, self.loaded.max_len, MAX_TRAJECTORY_SHOWN)
        traj = []
        for p, t, z in zip(ctx.poi[-n:].tolist(), ctx.ts[-n:].tolist(), ctx.tz[-n:].tolist()):
            pid, _, c, lat, lon = card(p)
            traj.append({"poi": pid, "ts": t, "time": iso(t, z), "lat": lat, "lon": lon, "category": c})
        last_ts = int(ctx.ts[-1])
        return {"trajectory": traj, "trajectory_length": ctx.prefix_len, "current_poi": traj[-1]["poi"],
                "history_checkins": min(ctx.start, self.loaded.hist_len),
                "seconds_since_last_checkin": a.at - last_ts,
                "stale": a.at - last_ts > self.gap_s, "left_out_checkins": ctx.dropped}

    def _cold_explanations(self, pois: list[int], a: Answer) -> list[dict[str, Any]]:
        info = a.cold_info or {}
        p = np.asarray(pois, np.int64)
        tows = time_of_week(self.catalog, p, int(info.get("hour_of_week", 0)))
        km = self.catalog.km_from(info["lat"], info["lon"])[p] if "lat" in info else None
        out = []
        for i, q in enumerate(pois):
            rel = [] if km is None else [{"type": "nearby", "km": round(float(km[i]), 3),
                                          "near": bool(km[i] <= info["radius_km"])}]
            out.append({"memory": {"kind": "none", "visits": 0, "checkins": []}, "relations": rel,
                        "time_of_week": tows[i], "popularity": {"train_checkins": int(self.catalog.popularity[q])}})
        return out


def _key_map(keys: dict[str, int], index: dict[str, int]) -> np.ndarray:
    """``(max key + 1,)`` int64: the model id of each store key (-1 when the model has none)."""
    n = max(keys.values(), default=-1) + 1
    out = np.full(n, -1, np.int64)
    for raw, key in keys.items():
        out[key] = index.get(raw, -1)
    return out
