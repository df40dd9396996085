"""The ``Split`` contract: integer-indexed check-ins, trajectories and samples of one protocol.

A :class:`Split` is what :func:`stgnn.data.protocol.make_split` returns and every model,
graph builder and feature extractor consumes. Check-ins are stored as flat arrays **grouped by
trajectory**, trajectories ordered by ``(user, start time)``, check-ins time-ordered within a
trajectory. So

* trajectory ``t`` is the slice ``traj_ptr[t]:traj_ptr[t+1]`` of the check-in arrays,
* a user's check-ins form one contiguous, time-ordered block ``user_ptr[u]:user_ptr[u+1]``,
* a *sample* is the index ``j`` of its target check-in; its prefix is
  ``traj_ptr[traj[j]]:j`` (the earlier check-ins of the same trajectory).

``part`` says which period each check-in belongs to (0 train, 1 val, 2 test, -1 kept only as
context, e.g. a check-in of an unseen POI inside a test trajectory under a protocol that keeps
it). Graphs, counts and popularity for val/test samples use only ``part == 0`` check-ins
(leakage rule in DESIGN.md).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from stgnn.utils.io import atomic_write_file

PARTS = {"train": 0, "val": 1, "test": 2}
SPLIT_FORMAT_VERSION = 1


@dataclass
class Split:
    """Integer-indexed data of one dataset under one protocol.

    Shapes: ``U`` users, ``P`` POIs, ``C`` categories, ``N`` check-ins, ``T`` trajectories.

    Attributes:
        name: dataset name.
        protocol: the resolved protocol options (a JSON-able dict), part of the cache key.
        user_ids: ``(U,)`` raw user id of each integer user.
        poi_ids: ``(P,)`` raw POI id of each integer POI.
        category_names: ``(C,)`` category name of each integer category.
        poi_category: ``(P,)`` int64 category of each POI.
        poi_lat, poi_lon: ``(P,)`` float64 canonical coordinates (NaN when unknown).
        poi_text: ``(P,)`` object, free text of each POI ("" when none).
        user, poi, category: ``(N,)`` int64 per check-in.
        ts: ``(N,)`` int64 UTC seconds; ``tz_offset_min``: ``(N,)`` int32.
        traj: ``(N,)`` int64 trajectory of each check-in.
        part: ``(N,)`` int8 period of each check-in (0/1/2, -1 context only).
        traj_ptr: ``(T+1,)`` int64 CSR pointer of trajectories into the check-in arrays.
        traj_user: ``(T,)`` int64 user of each trajectory.
        user_ptr: ``(U+1,)`` int64 CSR pointer of users into the check-in arrays.
        samples: ``{"train"|"val"|"test": (S,) int64}`` target check-in index of each sample.
        flags: ``{name: (S_test,) bool}`` per-test-sample flags (``cold_user``, ``cold_poi``,
            ``revisit``), aligned with ``samples["test"]``; ``val_`` prefixed ones likewise.
        cuts: ``{"train_end": ts, "val_end": ts}`` the global time cuts (UTC s): train check-ins
            have ``ts < train_end``.
        stats: counts recorded while building (removed rows, etc.) for ``stgnn data stats``.
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
    user: np.ndarray
    poi: np.ndarray
    category: np.ndarray
    ts: np.ndarray
    tz_offset_min: np.ndarray
    traj: np.ndarray
    part: np.ndarray
    traj_ptr: np.ndarray
    traj_user: np.ndarray
    user_ptr: np.ndarray
    samples: dict[str, np.ndarray]
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    cuts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ sizes
    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_pois(self) -> int:
        return len(self.poi_ids)

    @property
    def num_categories(self) -> int:
        return len(self.category_names)

    @property
    def num_checkins(self) -> int:
        return len(self.poi)

    @property
    def num_trajectories(self) -> int:
        return len(self.traj_user)

    def prefix_start(self, targets: np.ndarray) -> np.ndarray:
        """``(S,)`` index of the first check-in of each target's trajectory."""
        return self.traj_ptr[self.traj[targets]]

    def train_mask(self) -> np.ndarray:
        """``(N,)`` bool: check-ins of the training period (what val/test features may use)."""
        return self.part == PARTS["train"]

    def __repr__(self) -> str:
        s = ", ".join(f"{k}={len(v)}" for k, v in self.samples.items())
        return (f"Split(name={self.name!r}, users={self.num_users}, pois={self.num_pois}, "
                f"categories={self.num_categories}, checkins={self.num_checkins}, "
                f"trajectories={self.num_trajectories}, samples[{s}])")

    # ------------------------------------------------------------------ (de)serialisation
    def write(self, f: BinaryIO) -> None:
        """Serialise into the open binary file ``f`` as ``.npz`` (arrays, uncompressed) with a
        JSON header (dicts); the arrays are streamed, not first gathered in one ``bytes``."""
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {"format": SPLIT_FORMAT_VERSION}
        for f_ in fields(self):
            v = getattr(self, f_.name)
            if isinstance(v, np.ndarray):
                arrays[f_.name] = v.astype(str) if v.dtype == object else v
                meta.setdefault("object_arrays", [])
                if v.dtype == object:
                    meta["object_arrays"].append(f_.name)
            elif f_.name in ("samples", "flags"):
                meta[f_.name] = list(v)  # the dict's own order, restored by read
                for k, a in v.items():
                    arrays[f"{f_.name}.{k}"] = a
            else:
                meta[f_.name] = v
        arrays["__meta__"] = np.frombuffer(json.dumps(meta, default=_json_default).encode(), dtype=np.uint8)
        np.savez(f, **arrays)

    def to_bytes(self) -> bytes:
        """The bytes :meth:`write` writes."""
        buf = io.BytesIO()
        self.write(buf)
        return buf.getvalue()

    @classmethod
    def read(cls, f: BinaryIO) -> "Split":
        """The Split :meth:`write` wrote into ``f`` (an open binary file, seekable): each array
        is read once into its own memory, with no copy of the whole file."""
        with np.load(f, allow_pickle=False) as z:
            meta = json.loads(bytes(z["__meta__"]).decode())
            if meta.get("format") != SPLIT_FORMAT_VERSION:
                raise ValueError(f"Split format {meta.get('format')} != {SPLIT_FORMAT_VERSION}")
            kw: dict[str, Any] = {}
            for f_ in fields(cls):
                if f_.name in ("samples", "flags"):
                    kw[f_.name] = {k: z[f"{f_.name}.{k}"] for k in meta[f_.name]}
                elif f_.name in z.files:
                    a = z[f_.name]
                    kw[f_.name] = a.astype(object) if f_.name in meta.get("object_arrays", []) else a
                else:
                    kw[f_.name] = meta[f_.name]
        return cls(**kw)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Split":
        return cls.read(io.BytesIO(data))

    def save(self, path: str | os.PathLike) -> None:
        """Atomic write (temp file in the same folder, then rename)."""
        atomic_write_file(path, self.write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Split":
        with open(path, "rb") as f:
            return cls.read(f)

    def fingerprint(self) -> str:
        """A short content hash (protocol + arrays), written into every run's results."""
        h = hashlib.sha256(json.dumps(self.protocol, sort_keys=True, default=_json_default).encode())
        for a in (self.poi, self.user, self.ts, self.part, *(self.samples[k] for k in sorted(self.samples))):
            h.update(np.ascontiguousarray(a))  # the array's buffer itself: no bytes copy
        return h.hexdigest()[:16]


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")
