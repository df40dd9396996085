"""Seeded synthetic check-ins with planted routines, for tests and quick experiments.

The world: POIs clustered in neighbourhoods inside a small box around Manhattan, each with a
category (``"Coffee Shop"``, ``"Office"`` ...) and a short text. Every user lives in one
neighbourhood and works in another, has a home POI, an office POI and a few favourite POIs per
category near home or work, and follows a weekly routine:

* weekdays: home -> coffee near home -> office -> lunch near work -> (gym on Mon/Wed/Fri,
  bar on Tue/Thu) near home -> home;
* weekends: bakery/coffee -> park -> grocery -> restaurant or bar -> home, all near home.

Each active day keeps a random ordered subset of the day's steps (``checkins_per_day``), and a
small ``explore`` fraction of visits goes to a random POI of the same category. So a user's next
POI is predictable from the previous POI and the time (a personal frequency baseline beats global
popularity by far), yet not trivially. Local time is New York summer time (UTC-4).
"""
from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd

from stgnn.data.schema import CheckinTable, CleaningReport
from stgnn.data.sources.base import Source

CATEGORY_NAMES = ("Residential Building", "Coffee Shop", "Office", "Restaurant", "Gym", "Bar",
                  "Park", "Grocery Store", "Bakery", "Museum", "Bookstore", "Cinema")
HOME, COFFEE, OFFICE, RESTAURANT, GYM, BAR, PARK, GROCERY, BAKERY = range(9)
NEIGHBOURHOODS = ("Chelsea", "SoHo", "Tribeca", "Harlem", "Midtown", "Astoria", "Williamsburg",
                  "Greenpoint", "Flatiron", "Gramercy", "Nolita", "Bushwick", "Dumbo", "Inwood",
                  "Murray Hill", "Hell's Kitchen")
BOX = ((40.70, 40.80), (-74.02, -73.93))  # (lat range, lon range), around Manhattan
TZ_OFFSET_MIN = -240
START_UTC = int(pd.Timestamp("2012-04-02 00:00", tz="UTC").timestamp())  # a Monday

# Routine steps: (role, local hour, near "home"|"work"). Weekday gym/bar alternate by day.
WEEKDAY = ((HOME, 7.5, "home"), (COFFEE, 8.3, "home"), (OFFICE, 9.2, "work"),
           (RESTAURANT, 12.6, "work"), (None, 18.7, "home"), (HOME, 21.5, "home"))
WEEKEND = ((BAKERY, 10.5, "home"), (PARK, 13.0, "home"), (GROCERY, 16.2, "home"),
           (None, 19.8, "home"), (HOME, 22.8, "home"))


def generate(num_users: int = 50, num_pois: int = 200, num_categories: int = 8, days: int = 56,
             seed: int = 0, checkins_per_day: tuple[int, int] = (3, 6), explore: float = 0.1,
             active_prob: tuple[float, float] = (0.75, 0.95), name: str = "synthetic") -> CheckinTable:
    """Generate a :class:`CheckinTable` with planted spatial and temporal regularity.

    Args:
        num_users, num_pois: sizes; ``num_pois >= 2 * num_categories``.
        num_categories: categories used (at most ``len(CATEGORY_NAMES)``); routine roles beyond
            it wrap around, so fewer categories still give a routine.
        days: length of the period, starting Monday 2012-04-02 (local time).
        seed: everything is drawn from ``numpy.random.default_rng(seed)``; same seed, same table.
        checkins_per_day: inclusive range of check-ins on an active day.
        explore: probability that a visit goes to a random POI of the category instead of a
            favourite.
        active_prob: each user is active on a day with a probability drawn from this range.

    Returns:
        about ``num_users * days * mean(active_prob) * mean(checkins_per_day)`` check-ins.
    """
    if not 1 <= num_categories <= len(CATEGORY_NAMES):
        raise ValueError(f"num_categories must be in [1, {len(CATEGORY_NAMES)}], got {num_categories}")
    if num_pois < 2 * num_categories:
        raise ValueError(f"num_pois={num_pois} must be >= 2 * num_categories={2 * num_categories}")
    lo_k, hi_k = checkins_per_day
    if not 1 <= lo_k <= hi_k:
        raise ValueError(f"checkins_per_day must be (lo, hi) with 1 <= lo <= hi, got {checkins_per_day}")
    rng = np.random.default_rng(seed)

    # Neighbourhoods and POIs.
    n_hoods = int(np.clip(num_pois // 15, 2, len(NEIGHBOURHOODS)))
    (la0, la1), (lo0, lo1) = BOX
    centers = np.column_stack([rng.uniform(la0 + 0.01, la1 - 0.01, n_hoods),
                               rng.uniform(lo0 + 0.01, lo1 - 0.01, n_hoods)])  # (H, 2)
    poi_cat = np.arange(num_pois) % num_categories  # balanced categories
    rng.shuffle(poi_cat)
    poi_hood = rng.integers(0, n_hoods, num_pois)
    poi_xy = centers[poi_hood] + rng.normal(0.0, 0.003, (num_pois, 2))  # (P, 2) lat, lon
    poi_text = np.array([f"{CATEGORY_NAMES[c]} in {NEIGHBOURHOODS[h]}" for c, h in zip(poi_cat, poi_hood)],
                        dtype=object)
    by_cat = [np.flatnonzero(poi_cat == c) for c in range(num_categories)]

    def favourites(cat: int, anchor: np.ndarray, k: int) -> np.ndarray:
        """``k`` POIs of ``cat``, drawn among the nearest few to ``anchor`` (a (2,) lat/lon)."""
        cand = by_cat[cat]
        near = cand[np.argsort(((poi_xy[cand] - anchor) ** 2).sum(1))[: max(k + 1, 3)]]
        return rng.choice(near, size=min(k, len(near)), replace=False)

    rows_u, rows_p, rows_t = [], [], []
    for u in range(num_users):
        home_h, work_h = rng.choice(n_hoods, size=2, replace=False)
        anchor = {"home": centers[home_h], "work": centers[work_h]}
        # Home and office are single anchor POIs; other roles have 1-2 favourites near home/work.
        fav: dict[tuple[int, str], np.ndarray] = {}
        for role, near in ((HOME, "home"), (OFFICE, "work")):
            fav[role, near] = favourites(role % num_categories, anchor[near], 1)
        for role in (COFFEE, RESTAURANT, GYM, BAR, PARK, GROCERY, BAKERY):
            for near in ("home", "work"):
                fav[role, near] = favourites(role % num_categories, anchor[near], int(rng.integers(1, 3)))
        p_active = rng.uniform(*active_prob)
        evening = (GYM, BAR) if rng.random() < 0.5 else (BAR, GYM)

        for d in range(days):
            if rng.random() > p_active:
                continue
            weekday = d % 7
            steps = WEEKDAY if weekday < 5 else WEEKEND
            k = min(int(rng.integers(lo_k, hi_k + 1)), len(steps))
            chosen = np.sort(rng.choice(len(steps), size=k, replace=False))
            hours = np.array([steps[i][1] for i in chosen]) + rng.normal(0.0, 0.3, k)
            # increasing, at least 5 min apart, and before midnight (at most 23.4 h + 25 min + 59 s)
            hours = np.maximum.accumulate(np.clip(hours, 0.0, 23.4)) + np.arange(k) * (5 / 60)
            for i, h in zip(chosen, hours):
                role, _, near = steps[i]
                if role is None:  # evening slot: gym / bar alternate on weekdays, restaurant or bar on weekends
                    role = (evening[weekday % 2] if weekday < 5
                            else (RESTAURANT if rng.random() < 0.5 else BAR))
                cat = role % num_categories
                if rng.random() < explore:
                    poi = int(rng.choice(by_cat[cat]))
                else:
                    poi = int(rng.choice(fav[role, near]))
                local = d * 86400 + int(h * 3600) + int(rng.integers(0, 60))
                rows_u.append(u)
                rows_p.append(poi)
                rows_t.append(START_UTC + local - TZ_OFFSET_MIN * 60)

    users = np.asarray(rows_u, dtype=np.int64)
    pois = np.asarray(rows_p, dtype=np.int64)
    df = pd.DataFrame({
        "user": np.char.add("u", users.astype(str)).astype(object),
        "poi": np.char.add("p", pois.astype(str)).astype(object),
        "category": np.array(CATEGORY_NAMES[:num_categories], dtype=object)[poi_cat[pois]],
        "lat": poi_xy[pois, 0], "lon": poi_xy[pois, 1],
        "ts": np.asarray(rows_t, dtype=np.int64),
        "tz_offset_min": TZ_OFFSET_MIN,
        "poi_text": poi_text[pois],
    })
    report = CleaningReport(rows_read=len(df), notes=[f"synthetic seed={seed}"])
    source = (f"synthetic(num_users={num_users}, num_pois={num_pois}, num_categories={num_categories}, "
              f"days={days}, seed={seed}, checkins_per_day={checkins_per_day}, explore={explore})")
    return CheckinTable(df, name=name, source=source, report=report)


class Synthetic(Source):
    """``synthetic``: :func:`generate` (its arguments are the loader options); no raw file."""

    format = "synthetic"
    datasets = ("synthetic",)
    needs_file = False

    @classmethod
    def fetch(cls, dataset: str, root: Path, *, download: bool = True, data_dir: str | Path | None = None) -> None:
        return None

    load_fn = staticmethod(generate)

    @classmethod
    def options(cls) -> list[str]:
        return list(inspect.signature(generate).parameters)
