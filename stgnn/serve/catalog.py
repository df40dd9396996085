"""What a served model knows about its world besides its weights: ids, POIs, training statistics.

A :class:`Catalog` holds the id maps of the model's vocabulary (raw user / POI / category ids →
the model's integers), the POI table (category, coordinates, text) and a few training-period
statistics used by cold-start answers and explanations: popularity, last→next transition counts,
check-ins per local hour of the week, and the ``k`` nearest POIs. Leakage rule as everywhere:
the statistics count ``part == 0`` check-ins only. Built once per loaded run; no request changes it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stgnn.data.split import PARTS
from stgnn.features.space import haversine, knn_pois
from stgnn.features.time import HOURS_PER_WEEK, hour_of_week

NEAR_K = 10   # the graph's ``(poi, near, poi)`` relation: the 10 nearest POIs (stgnn.graph.hetero)


@dataclass
class Catalog:
    """Ids, POI attributes and training statistics of one run's split (module docstring).

    Shapes: ``P`` POIs, ``U`` users, ``C`` categories; ``trans_ptr (P+1,)``, ``trans_dst (E,)``,
    ``trans_count (E,)`` a CSR of training transitions grouped by source POI; ``tow (P, 168)``
    training check-ins per local hour of the week; ``near (P, NEAR_K)`` nearest POIs, nearest first.
    """

    name: str
    protocol: dict[str, Any]
    user_ids: np.ndarray
    poi_ids: np.ndarray
    category_names: np.ndarray
    poi_category: np.ndarray
    poi_lat: np.ndarray
    poi_lon: np.ndarray
    poi_text: np.ndarray
    popularity: np.ndarray
    trans_ptr: np.ndarray
    trans_dst: np.ndarray
    trans_count: np.ndarray
    tow: np.ndarray
    near: np.ndarray
    train_end: int | None
    default_tz: int = 0

    def __post_init__(self) -> None:
        self.user_index = {str(u): i for i, u in enumerate(self.user_ids)}
        self.poi_index = {str(p): i for i, p in enumerate(self.poi_ids)}
        self.category_index = {str(c): i for i, c in enumerate(self.category_names)}
        # O(1) lookups for explanations: transition counts by (src, dst), out-degree, neighbour sets
        src = np.repeat(np.arange(self.num_pois), np.diff(self.trans_ptr))
        self._trans = dict(zip((src * self.num_pois + self.trans_dst).tolist(), self.trans_count.tolist()))
        self._trans_out = np.bincount(src, weights=self.trans_count, minlength=self.num_pois).astype(np.int64)

    @property
    def num_pois(self) -> int:
        return len(self.poi_ids)

    @classmethod
    def from_split(cls, split: Any) -> "Catalog":
        """Build from a :class:`~stgnn.data.split.Split` (training-period check-ins only for statistics)."""
        P = split.num_pois
        train = split.part == PARTS["train"]
        popularity = np.bincount(split.poi[train], minlength=P).astype(np.int64)             # (P,)
        same = (split.traj[1:] == split.traj[:-1]) & train[1:] & train[:-1]                # (N-1,)
        pairs, n = np.unique(split.poi[:-1][same] * P + split.poi[1:][same], return_counts=True)
        src, dst = pairs // P, pairs % P
        ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=P))]).astype(np.int64)
        how = hour_of_week(split.ts[train], split.tz_offset_min[train])                      # (N_train,)
        tow = np.zeros((P, HOURS_PER_WEEK), np.int32)
        np.add.at(tow, (split.poi[train], how), 1)
        lat, lon = np.asarray(split.poi_lat, np.float64), np.asarray(split.poi_lon, np.float64)
        k = min(NEAR_K, P - 1)
        if k >= 1 and np.isfinite(lat).all() and np.isfinite(lon).all():
            ei, _ = knn_pois(lat, lon, k)
            near = ei[0].numpy().reshape(P, k)
        else:
            near = np.zeros((P, 0), np.int64)
        return cls(name=split.name, protocol=dict(split.protocol), user_ids=np.asarray(split.user_ids, object),
                   poi_ids=np.asarray(split.poi_ids, object), category_names=np.asarray(split.category_names, object),
                   poi_category=np.asarray(split.poi_category, np.int64), poi_lat=lat, poi_lon=lon,
                   poi_text=np.asarray(split.poi_text, object), popularity=popularity, trans_ptr=ptr,
                   trans_dst=dst.astype(np.int64), trans_count=n.astype(np.int64), tow=tow, near=near,
                   train_end=split.cuts.get("train_end"), default_tz=_mode(split.tz_offset_min[train]))

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    # ------------------------------------------------------------------ lookups
    def transition(self, src: int, dst: int) -> tuple[int, int]:
        """``(count of src→dst, all transitions out of src)`` in the training period."""
        return self._trans.get(src * self.num_pois + dst, 0), int(self._trans_out[src])

    def km(self, a: int, b: np.ndarray | int) -> np.ndarray:
        """Great-circle km from POI ``a`` to POI(s) ``b``."""
        return haversine(self.poi_lat[a], self.poi_lon[a], self.poi_lat[b], self.poi_lon[b])

    def km_from(self, lat: float, lon: float) -> np.ndarray:
        """``(P,)`` km from a place to every POI."""
        return haversine(np.float64(lat), np.float64(lon), self.poi_lat, self.poi_lon)

    def tow_window(self, hour: int, width: int = 1) -> np.ndarray:
        """``(P,)`` training check-ins within ``±width`` hours (wrapping the week) of ``hour``."""
        hours = [(hour + d) % HOURS_PER_WEEK for d in range(-width, width + 1)]
        return self.tow[:, hours].sum(1)


def _mode(values: np.ndarray) -> int:
    """Most frequent value (0 for none): the tz offset a query without one is read in."""
    if not len(values):
        return 0
    v, n = np.unique(values, return_counts=True)
    return int(v[np.argmax(n)])
