"""Information settings: what a sample may see besides its own trajectory prefix.

Two named protocol options, printed with every number a run reports:

* ``history``: ``"train_only"`` (the user's training-period check-ins plus the current trajectory;
  the leakage rule of DESIGN.md, our default) or ``"all_past"`` (every check-in of the user
  strictly before the current trajectory, as a live service has).
* ``target_time``: ``"known"`` (the time of the check-in to predict is given, as STHGCN's
  samples carry it: "where will the user be at 18:00?") or ``"hidden"`` (only the past is given:
  "where next?").

:class:`InformationSetting` reads them from a protocol dict (a :class:`~stgnn.data.split.Split`'s
``protocol`` or a config's), and :meth:`InformationSetting.for_model` narrows it to what one model
gets: the target time reaches only models that declare ``uses_target_time``. The loader enforces
the result (:class:`~stgnn.data.batch.SampleLoader`): under ``hidden`` a batch carries no target
time at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

HISTORY = ("train_only", "all_past")
TARGET_TIME = ("known", "hidden")
LEGACY_TARGET_TIME_KEY = "allow_target_time"  # the boolean the target_time option replaced


def target_time_from_legacy(allowed: Any) -> str:
    """``allow_target_time`` (a bool, in configs and results written before ``target_time``)
    as the ``target_time`` value it meant."""
    if not isinstance(allowed, bool):
        raise ValueError(f"protocol.allow_target_time={allowed!r} must be true or false "
                         "(it is the old name of protocol.target_time: known | hidden)")
    return "known" if allowed else "hidden"


@dataclass(frozen=True)
class InformationSetting:
    """The information setting of a run (module docstring).

    Args:
        history: ``"train_only"`` or ``"all_past"``.
        target_time: ``"known"`` or ``"hidden"``.
    """

    history: str = "train_only"
    target_time: str = "known"

    def __post_init__(self) -> None:
        if self.history not in HISTORY:
            raise ValueError(f"history={self.history!r}: choose one of {list(HISTORY)}")
        if self.target_time not in TARGET_TIME:
            raise ValueError(f"target_time={self.target_time!r}: choose one of {list(TARGET_TIME)}")

    @classmethod
    def from_protocol(cls, protocol: Mapping[str, Any]) -> "InformationSetting":
        """The setting named in a protocol dict; missing keys take the defaults. The old key
        ``allow_target_time`` is read as ``target_time`` (an error if both disagree)."""
        target_time = protocol.get("target_time")
        if LEGACY_TARGET_TIME_KEY in protocol:
            legacy = target_time_from_legacy(protocol[LEGACY_TARGET_TIME_KEY])
            if target_time is not None and target_time != legacy:
                raise ValueError(f"protocol has target_time={target_time!r} and the old "
                                 f"allow_target_time={protocol[LEGACY_TARGET_TIME_KEY]!r}, which disagree; "
                                 "keep only target_time")
            target_time = legacy
        return cls(history=protocol.get("history", "train_only"), target_time=target_time or "known")

    def for_model(self, uses_target_time: bool) -> "InformationSetting":
        """What a model gets: the target time only when it is known and the model declares it reads it."""
        if self.target_time == "known" and not uses_target_time:
            return InformationSetting(self.history, "hidden")
        return self

    def loader_kwargs(self) -> dict[str, str]:
        """Keyword arguments of :class:`~stgnn.data.batch.SampleLoader` that enforce this setting."""
        return {"history": self.history, "target_time": self.target_time}

    def to_dict(self) -> dict[str, str]:
        return {"history": self.history, "target_time": self.target_time}

    def __str__(self) -> str:
        return f"history={self.history}, target_time={self.target_time}"
