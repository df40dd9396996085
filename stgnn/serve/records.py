"""What a check-in write is, and how its fields are validated (errors name the field).

Used by :mod:`stgnn.serve.store` (every write) and :mod:`stgnn.serve.app` (request parsing), so
a bad value gets the same message whichever way it arrives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_TS = 4_102_444_800        # 2100-01-01 UTC: later (or negative) times are input errors
MAX_TZ_MIN = 14 * 60          # UTC-14 .. UTC+14
MAX_ID_LEN = 128
MAX_TEXT_LEN = 2_000


class StoreError(ValueError):
    """A write the store refuses; ``field`` names the offending input field, ``status`` the HTTP code."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.status = field, status


@dataclass(frozen=True)
class NewCheckin:
    """One check-in to write. ``poi`` is a raw POI id; ``tz`` minutes east of UTC (``None``: the
    POI's most recent check-in's, else 0). ``poi_info`` registers a POI the store does not know:
    ``{"category": str, "lat": float, "lon": float, "text": str}``."""

    id: str
    user: str
    poi: str
    ts: int
    tz: int | None = None
    poi_info: dict[str, Any] | None = None


def check_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise StoreError(f"{field} must be a non-empty string, got {value!r}", field)
    if len(value) > MAX_ID_LEN:
        raise StoreError(f"{field} is {len(value)} characters long; at most {MAX_ID_LEN}", field)
    if any(ord(c) < 32 for c in value):
        raise StoreError(f"{field} contains control characters", field)
    return value


def check_ts(value: Any, field: str = "ts") -> int:
    """A UTC time in whole seconds within 1970..2100, or a :class:`StoreError` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise StoreError(f"{field} must be an integer number of UTC seconds, got {value!r}", field)
    if not 0 <= int(value) < MAX_TS:
        raise StoreError(f"{field}={value} is outside 1970-01-01 .. 2100-01-01 (UTC seconds)", field)
    return int(value)


def check_tz(value: Any, field: str = "tz_offset_min") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or abs(int(value)) > MAX_TZ_MIN:
        raise StoreError(f"{field} must be whole minutes east of UTC within ±{MAX_TZ_MIN}, got {value!r}", field)
    return int(value)


def check_coord(value: Any, field: str, bound: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or abs(value) > bound:
        raise StoreError(f"{field} must be a finite number within ±{bound:g} degrees, got {value!r}", field)
    return float(value)
