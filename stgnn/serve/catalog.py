"""What a served model knows about its world besides its weights: ids, POIs, training statistics.

A :class:`Catalog` holds the id maps of the model's vocabulary (raw user / POI / category ids →
the model's integers), the POI table (category, coordinates, name) and a few training-period
statistics used by cold-start answers and explanations: popularity, last→next transition counts,
check-ins per local hour of the week, and the ``k`` nearest POIs.

Two sources, no split: :meth:`Catalog.from_inputs` takes the ids, coordinates, categories,
popularity and transitions from the run's :class:`~stgnn.inputs.ModelInputs` (training period
only, as the model was built); :meth:`Catalog.with_store` adds what inputs do not keep from the
check-in store: POI names, and check-ins per hour of the week and the usual tz offset, counted
over the stored check-ins before the training period's end (recorded when the store was seeded
from the split; a store not seeded from a split counts every stored check-in). Built once per
loaded run and store; no request changes it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from stgnn.features.space import EARTH_RADIUS_KM, haversine, knn_pois
from stgnn.features.time import HOURS_PER_WEEK, hour_of_week

if TYPE_CHECKING:
    from stgnn.inputs import ModelInputs
    from stgnn.serve.store import CheckinStore

NEAR_K = 10   # the graph's ``(poi, near, poi)`` relation: the 10 nearest POIs (stgnn.graph.hetero)


@dataclass
class Catalog:
    """Ids, POI attributes and training statistics of one served run (module docstring).

    Shapes: ``P`` POIs, ``U`` users, ``C`` categories; ``trans_ptr (P+1,)``, ``trans_dst (E,)``,
    ``trans_count (E,)`` a CSR of training transitions grouped by source POI; ``tow (P, 168)``
    check-ins per local hour of the week (``tow_source`` says which); ``near (P, NEAR_K)`` nearest
    POIs, nearest first.
    """

    name: str
    protocol: dict[str, Any]
    user_ids: np.ndarray
    poi_ids: np.ndarray
    category_names: np.ndarray
    poi_category: np.ndarray
    poi_lat: np.ndarray
    poi_lon: np.ndarray
    popularity: np.ndarray
    trans_ptr: np.ndarray
    trans_dst: np.ndarray
    trans_count: np.ndarray
    near: np.ndarray
    poi_text: np.ndarray
    tow: np.ndarray
    default_tz: int = 0
    tow_source: str = "none"

    def __post_init__(self) -> None:
        self.user_index = {str(u): i for i, u in enumerate(self.user_ids)}
        self.poi_index = {str(p): i for i, p in enumerate(self.poi_ids)}
        self.category_index = {str(c): i for i, c in enumerate(self.category_names)}
        # O(1) lookups for explanations: transition counts by (src, dst), out-degree, neighbour sets
        src = np.repeat(np.arange(self.num_pois), np.diff(self.trans_ptr))
        self._trans = dict(zip((src * self.num_pois + self.trans_dst).tolist(), self.trans_count.tolist()))
        self._trans_out = np.bincount(src, weights=self.trans_count, minlength=self.num_pois).astype(np.int64)
        self._cards: list[tuple[str, str, str, float | None, float | None]] | None = None
        self._coords: tuple[list[float], list[float]] | None = None     # radians, for km_list

    @property
    def num_pois(self) -> int:
        return len(self.poi_ids)

    @classmethod
    def from_inputs(cls, inputs: "ModelInputs") -> "Catalog":
        """What the run's inputs hold (training-period statistics); names and hour-of-week traffic
        are empty until :meth:`with_store`."""
        P = inputs.num_pois
        st = inputs.stats
        src = st.trans_src.numpy()                                                 # (E,) sorted by (src, dst)
        ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=P))]).astype(np.int64)
        lat, lon = inputs.poi_lat.numpy().astype(np.float64), inputs.poi_lon.numpy().astype(np.float64)
        k = min(NEAR_K, P - 1)
        if k >= 1 and np.isfinite(lat).all() and np.isfinite(lon).all():
            ei, _ = knn_pois(lat, lon, k)
            near = ei[0].numpy().reshape(P, k)
        else:
            near = np.zeros((P, 0), np.int64)
        return cls(name=str(inputs.source.get("split", "")), protocol=dict(inputs.source.get("protocol") or {}),
                   user_ids=np.asarray(inputs.user_ids, object), poi_ids=np.asarray(inputs.poi_ids, object),
                   category_names=np.asarray(inputs.category_names, object),
                   poi_category=inputs.poi_category.numpy().astype(np.int64), poi_lat=lat, poi_lon=lon,
                   popularity=st.poi_count.numpy().astype(np.int64), trans_ptr=ptr,
                   trans_dst=st.trans_dst.numpy().astype(np.int64), trans_count=st.trans_count.numpy().astype(np.int64),
                   near=near, poi_text=np.full(P, "", object), tow=np.zeros((P, HOURS_PER_WEEK), np.int32))

    def with_store(self, store: "CheckinStore") -> "Catalog":
        """A copy with POI names and hour-of-week traffic from ``store`` (module docstring)."""
        table = store.poi_table()
        index = np.array([self.poi_index.get(str(p), -1) for p in table["poi"]], np.int64)     # (K,) store row -> id
        text = np.full(self.num_pois, "", object)
        text[index[index >= 0]] = table["text"][index >= 0]
        key_to_id = np.full(int(table["key"].max()) + 1 if len(table["key"]) else 0, -1, np.int64)
        key_to_id[table["key"]] = index
        train_end = store.meta().get("train_end") or ""
        pk, ts, tz = store.checkin_times(int(train_end) if train_end else None)              # (n,) each
        pid = key_to_id[pk] if len(pk) else pk
        keep = pid >= 0
        tow = np.zeros((self.num_pois, HOURS_PER_WEEK), np.int32)
        np.add.at(tow, (pid[keep], hour_of_week(ts[keep], tz[keep])), 1)
        source = (f"stored check-ins before the training period's end ({int(train_end)})" if train_end
                  else "every stored check-in at load")
        return dataclasses.replace(self, poi_text=text, tow=tow, default_tz=_mode(tz[keep]), tow_source=source)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    # ------------------------------------------------------------------ lookups
    def card(self, p: int) -> tuple[str, str, str, float | None, float | None]:
        """``(id, name, category, lat, lon)`` of POI ``p`` as answers show it (name: its text, else
        its category; NaN coordinates: ``None``), made once per catalog rather than per request."""
        if self._cards is None:
            cats = [str(c) for c in self.category_names]
            self._cards = [(str(i), str(t) or cats[c], cats[c], _num(la), _num(lo)) for i, t, c, la, lo in zip(
                self.poi_ids, self.poi_text, self.poi_category.tolist(), self.poi_lat.tolist(), self.poi_lon.tolist())]
        return self._cards[p]

    def transition(self, src: int, dst: int) -> tuple[int, int]:
        """``(count of src→dst, all transitions out of src)`` in the training period."""
        return self._trans.get(src * self.num_pois + dst, 0), int(self._trans_out[src])

    def km(self, a: int, b: np.ndarray | int) -> np.ndarray:
        """Great-circle km from POI ``a`` to POI(s) ``b``."""
        return haversine(self.poi_lat[a], self.poi_lon[a], self.poi_lat[b], self.poi_lon[b])

    def km_list(self, a: int, b: list[int]) -> list[float]:
        """:meth:`km` for a short list (an answer's top-k), in plain Python floats: the same formula
        with the ``math`` module, a few microseconds per POI where numpy's fixed cost per call
        dominates (NaN coordinates give NaN)."""
        if self._coords is None:
            self._coords = (np.radians(self.poi_lat).tolist(), np.radians(self.poi_lon).tolist())
        lat, lon = self._coords
        p1, l1 = lat[a], lon[a]
        cos1, out = math.cos(p1), []
        for q in b:
            p2, l2 = lat[q], lon[q]
            h = math.sin((p2 - p1) / 2) ** 2 + cos1 * math.cos(p2) * math.sin((l2 - l1) / 2) ** 2
            out.append(2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(max(h, 0.0), 1.0))) if h == h else math.nan)
        return out

    def km_from(self, lat: float, lon: float) -> np.ndarray:
        """``(P,)`` km from a place to every POI."""
        return haversine(np.float64(lat), np.float64(lon), self.poi_lat, self.poi_lon)

    def tow_window(self, hour: int, width: int = 1) -> np.ndarray:
        """``(P,)`` training check-ins within ``±width`` hours (wrapping the week) of ``hour``."""
        hours = [(hour + d) % HOURS_PER_WEEK for d in range(-width, width + 1)]
        return self.tow[:, hours].sum(1)


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _mode(values: np.ndarray) -> int:
    """Most frequent value (0 for none): the tz offset a query without one is read in."""
    if not len(values):
        return 0
    v, n = np.unique(values, return_counts=True)
    return int(v[np.argmax(n)])
