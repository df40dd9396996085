"""The options of an evaluation protocol (:class:`ProtocolConfig`); :mod:`stgnn.data.protocol`
applies them to a check-in table."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from stgnn.data.information import HISTORY, LEGACY_TARGET_TIME_KEY, TARGET_TIME, target_time_from_legacy

_CHOICES: dict[str, tuple[Any, ...]] = {
    "protocol": ("time_cut", "leave_last", "files"),
    "filter_order": ("poi_first", "user_first"),
    "span": ("per_checkin", "split", "first", "last"),
    "seen_from": ("train_targets", "train_checkins"),
    "unseen_context": ("drop", "keep"),
    "history": HISTORY,
    "target_time": TARGET_TIME,
}


@dataclass(frozen=True)
class ProtocolConfig:
    """Options of an evaluation protocol (defaults: STHGCN/LLM4POI's NYC/TKY protocol).

    Args:
        protocol: ``"time_cut"`` (one global chronological cut), ``"leave_last"`` (per user), or
            ``"files"``: the membership a pre-split file set gives (recorded on every split built
            from one, whatever was asked; only the sample options below apply to it).
        min_user_checkins: users with fewer check-ins are dropped (STHGCN ``min_user_freq: 9``, ``>``).
        min_poi_checkins: POIs with fewer check-ins are dropped.
        filter_rounds: how many POI-then-user passes; ``0`` = repeat until nothing changes.
            STHGCN: 1 (NYC, TKY), 2 (CA).
        filter_order: ``"poi_first"`` (STHGCN) or ``"user_first"``.
        traj_gap_hours: a gap strictly longer than this starts a new trajectory.
        fractions: (train, val, test) shares of check-ins for the time cut, by count over time.
        span: a trajectory spanning a cut: ``"per_checkin"`` each check-in keeps its own part
            (STHGCN); ``"split"`` the trajectory is cut in two at the cut; ``"first"`` / ``"last"``
            the whole trajectory takes the part of its first / last check-in (then check-ins on
            the wrong side of a cut exist: ``split.cuts`` is no longer exact).
        min_traj_len: trajectories shorter than this are dropped (STHGCN: 2, isolated check-ins).
        min_train_prefix: a train sample needs this many earlier check-ins in its trajectory.
        min_eval_prefix: likewise for val/test samples (GETNext-style "length >= 3": 2).
        eval_last_only: val/test score only the last check-in of a trajectory (STHGCN
            ``only_last_metric: True``); False scores every val/test check-in with a prefix.
        seen_from: what counts as "seen in training": ``"train_targets"`` (STHGCN: train
            samples) or ``"train_checkins"`` (any ``part == 0`` check-in).
        keep_unseen: cold-start variant: keep val/test samples of unseen users/POIs, flagged.
        unseen_context: ``"drop"`` or ``"keep"`` (``part = -1``) val/test check-ins of unseen
            users/POIs that are not kept as samples (ignored when ``keep_unseen``).
        target_time: ``"known"`` (a model that declares ``uses_target_time`` reads the target
            check-in's time, as in STHGCN, whose ``LBSNDataset.get_label`` packs the target's
            local hour into each sample's label) or ``"hidden"`` (no model sees it). The old
            boolean ``allow_target_time`` is read as its alias (:meth:`from_dict`).
        history: ``"train_only"`` (DESIGN.md leakage rule, our default) or ``"all_past"``:
            which earlier check-ins a val/test sample may see. Note STHGCN's hypergraph holds
            all check-ins and bounds each sample by its previous check-in's time
            (``last_checkin_epoch_time``), which is closer to ``"all_past"``.
            ``history`` and ``target_time`` are the information setting
            (:mod:`stgnn.data.information`), enforced by :class:`~stgnn.data.batch.SampleLoader`
            and recorded here so they are part of the cache key and of every result.
    """

    protocol: Literal["time_cut", "leave_last", "files"] = "time_cut"
    min_user_checkins: int = 10
    min_poi_checkins: int = 10
    filter_rounds: int = 1
    filter_order: Literal["poi_first", "user_first"] = "poi_first"
    traj_gap_hours: float = 24.0
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    span: Literal["per_checkin", "split", "first", "last"] = "per_checkin"
    min_traj_len: int = 2
    min_train_prefix: int = 1
    min_eval_prefix: int = 1
    eval_last_only: bool = True
    seen_from: Literal["train_targets", "train_checkins"] = "train_targets"
    keep_unseen: bool = False
    unseen_context: Literal["drop", "keep"] = "drop"
    target_time: Literal["known", "hidden"] = "known"
    history: Literal["train_only", "all_past"] = "train_only"

    def __post_init__(self) -> None:
        self._check_types()
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"ProtocolConfig.{name}={getattr(self, name)!r}: choose one of {list(choices)}")
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        if len(self.fractions) != 3 or min(self.fractions) < 0 or abs(sum(self.fractions) - 1.0) > 1e-9:
            raise ValueError(f"ProtocolConfig.fractions={self.fractions}: three shares >= 0 summing to 1")
        if self.filter_rounds < 0:
            raise ValueError("ProtocolConfig.filter_rounds must be >= 0 (0 = until fixpoint)")
        if self.min_train_prefix < 1 or self.min_eval_prefix < 1:
            raise ValueError("ProtocolConfig.min_*_prefix must be >= 1 (a sample needs a prefix)")
        if not self.traj_gap_hours >= 0:  # also refuses NaN
            raise ValueError(f"ProtocolConfig.traj_gap_hours={self.traj_gap_hours}: must be >= 0 hours")
        for name, low in (("min_user_checkins", 0), ("min_poi_checkins", 0), ("min_traj_len", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"ProtocolConfig.{name}={getattr(self, name)}: must be >= {low}")

    def _check_types(self) -> None:
        """Values of the annotated types: a string where a count belongs would otherwise surface
        as a TypeError deep inside the protocol."""
        for f in dataclasses.fields(self):
            v, tp = getattr(self, f.name), f.type
            if tp in ("int", int) and (isinstance(v, bool) or not isinstance(v, int)):
                raise ValueError(f"ProtocolConfig.{f.name}={v!r}: must be an integer")
            if tp in ("float", float):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ValueError(f"ProtocolConfig.{f.name}={v!r}: must be a number")
                object.__setattr__(self, f.name, float(v))
            if tp in ("bool", bool) and not isinstance(v, bool):
                raise ValueError(f"ProtocolConfig.{f.name}={v!r}: must be true or false")
        fr = self.fractions
        if not isinstance(fr, (list, tuple)) or len(fr) != 3 or not all(type(x) in (int, float) for x in fr):
            raise ValueError(f"ProtocolConfig.fractions={fr!r}: three shares (train, val, test) summing to 1")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["fractions"] = list(self.fractions)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ProtocolConfig":
        d = dict(d)
        if LEGACY_TARGET_TIME_KEY in d:  # configs written before target_time
            legacy = target_time_from_legacy(d.pop(LEGACY_TARGET_TIME_KEY))
            if d.setdefault("target_time", legacy) != legacy:
                raise ValueError(f"protocol has target_time={d['target_time']!r} and the old allow_target_time "
                                 f"meaning {legacy!r}; keep only target_time")
        if "fractions" in d:
            d["fractions"] = tuple(d["fractions"])
        return cls(**d)
