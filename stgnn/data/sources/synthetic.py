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
import math
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
# Above this many user-days (20000 users x 75 days) "auto" uses the vectorized engine: every
# table the project's tests, fixtures and benchmark records were made from stays the loop's.
AUTO_VECTORIZED_USER_DAYS = 1_500_000

# Routine steps: (role, local hour, near "home"|"work"). Weekday gym/bar alternate by day.
WEEKDAY = ((HOME, 7.5, "home"), (COFFEE, 8.3, "home"), (OFFICE, 9.2, "work"),
           (RESTAURANT, 12.6, "work"), (None, 18.7, "home"), (HOME, 21.5, "home"))
WEEKEND = ((BAKERY, 10.5, "home"), (PARK, 13.0, "home"), (GROCERY, 16.2, "home"),
           (None, 19.8, "home"), (HOME, 22.8, "home"))


def generate(num_users: int = 50, num_pois: int = 200, num_categories: int = 8, days: int = 56,
             seed: int = 0, checkins_per_day: tuple[int, int] = (3, 6), explore: float = 0.1,
             active_prob: tuple[float, float] = (0.75, 0.95), name: str = "synthetic",
             engine: str = "auto") -> CheckinTable:
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
        engine: ``"loop"`` (one user and day at a time; the table every test and fixture was
            written against), ``"vectorized"`` (the same routines drawn for all users at once in
            numpy, with neighbourhoods scaled to the POI count: 10^7 check-ins in about a
            minute; a different table for the same seed) or ``"auto"``: vectorized above
            :data:`AUTO_VECTORIZED_USER_DAYS` ``num_users * days``.

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
    if engine not in ("auto", "loop", "vectorized"):
        raise ValueError(f"engine must be 'auto', 'loop' or 'vectorized', got {engine!r}")
    if engine == "vectorized" or (engine == "auto" and num_users * days > AUTO_VECTORIZED_USER_DAYS):
        return _generate_vectorized(num_users, num_pois, num_categories, days, seed, checkins_per_day,
                                   explore, active_prob, name)
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


# ---------------------------------------------------------------------------- vectorized engine
# The routine tables of WEEKDAY/WEEKEND as (2, 6) arrays: row 0 weekday, row 1 weekend (its 6th
# step never drawn); role -1 is the evening slot, near 0 home / 1 work.
_STEPS = 6
_ROLE = np.array([[r if r is not None else -1 for r, _, _ in WEEKDAY],
                  [r if r is not None else -1 for r, _, _ in WEEKEND] + [HOME]])
_HOUR = np.array([[h for _, h, _ in WEEKDAY], [h for _, h, _ in WEEKEND] + [23.0]])
_NEAR = np.array([[n == "work" for _, _, n in WEEKDAY], [n == "work" for _, _, n in WEEKEND] + [False]], dtype=np.int64)
_N_ROLES = BAKERY + 1
_POIS_PER_HOOD = 60
_USER_CHUNK = 16_384  # users drawn at once: bounds the (users x days x steps) temporaries


def _hood_name(h: int, n_hoods: int) -> str:
    base = NEIGHBOURHOODS[h % len(NEIGHBOURHOODS)]
    return base if n_hoods <= len(NEIGHBOURHOODS) else f"{base} {h // len(NEIGHBOURHOODS) + 1}"


def _pick(rng: np.random.Generator, members: np.ndarray, ptr: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One uniformly drawn member of each ``group`` (``members`` sorted by group, CSR ``ptr``)."""
    size = ptr[group + 1] - ptr[group]
    return members[ptr[group] + (rng.random(len(group)) * size).astype(np.int64)]


def _generate_vectorized(num_users: int, num_pois: int, num_categories: int, days: int, seed: int,
                         checkins_per_day: tuple[int, int], explore: float,
                         active_prob: tuple[float, float], name: str) -> CheckinTable:
    """The routines of :func:`generate` drawn for many users at once (``engine="vectorized"``).

    The same weekly routine, favourites near home/work, activity and exploration as the loop
    engine, with two changes so that it scales: neighbourhoods hold about 60 POIs each (so
    10^5 POIs make ~1,700 neighbourhoods over a box grown to keep their density, rather than
    16 neighbourhoods whose nearest POIs every user would share) and POIs are dealt to
    neighbourhoods and categories round-robin, so every neighbourhood has every category;
    favourites are drawn among the POIs of the category in the home or work neighbourhood.
    Memory is O(check-ins): users are drawn in chunks of :data:`_USER_CHUNK`.
    """
    lo_k, hi_k = checkins_per_day
    rng = np.random.default_rng(seed)
    n_cat = num_categories
    n_hoods = max(1, min(max(2, num_pois // _POIS_PER_HOOD), num_pois // n_cat))
    grow = max(1.0, math.sqrt(n_hoods / len(NEIGHBOURHOODS)))  # same density as the loop's 16 hoods
    (la0, la1), (lo0, lo1) = BOX
    half_lat, half_lon = (la1 - la0) / 2 * grow - 0.01, (lo1 - lo0) / 2 * grow - 0.01
    centers = np.column_stack([rng.uniform((la0 + la1) / 2 - half_lat, (la0 + la1) / 2 + half_lat, n_hoods),
                               rng.uniform((lo0 + lo1) / 2 - half_lon, (lo0 + lo1) / 2 + half_lon, n_hoods)])
    ids = np.arange(num_pois)
    poi_hood, poi_cat = ids % n_hoods, (ids // n_hoods) % n_cat  # every (hood, category) non-empty
    poi_xy = centers[poi_hood] + rng.normal(0.0, 0.003, (num_pois, 2))  # (P, 2)
    group = poi_hood * n_cat + poi_cat
    by_group = np.argsort(group, kind="stable")
    group_ptr = np.searchsorted(group[by_group], np.arange(n_hoods * n_cat + 1))
    by_cat = np.argsort(poi_cat, kind="stable")
    cat_ptr = np.searchsorted(poi_cat[by_cat], np.arange(n_cat + 1))

    # Users: home and work neighbourhoods, favourites (U, role, near, 2) and how many (1 or 2).
    home = rng.integers(0, n_hoods, num_users)
    work = (home + rng.integers(1, n_hoods, num_users)) % n_hoods if n_hoods > 1 else home
    anchor = np.stack([home, work], 1)  # (U, 2)
    roles = np.arange(_N_ROLES)
    g = anchor[:, None, :, None] * n_cat + (roles % n_cat)[None, :, None, None]  # (U, R, 2, 1)
    g = np.broadcast_to(g, (num_users, _N_ROLES, 2, 2)).ravel()
    fav = _pick(rng, by_group, group_ptr, g).reshape(num_users, _N_ROLES, 2, 2).astype(np.int32)
    n_fav = rng.integers(1, 3, (num_users, _N_ROLES, 2))
    n_fav[:, [HOME, OFFICE]] = 1
    p_active = rng.uniform(*active_prob, num_users)
    evening = np.where(rng.random(num_users) < 0.5, 0, 1)[:, None] == np.array([[0, 1]])
    evening = np.where(evening, GYM, BAR)  # (U, 2): role of the evening slot on even / odd weekdays

    out_u, out_p, out_t = [], [], []
    for a in range(0, num_users, _USER_CHUNK):
        n = min(_USER_CHUNK, num_users - a)
        uu, dd = np.nonzero(rng.random((n, days)) < p_active[a:a + n, None])  # active user-days
        uu += a
        wd = dd % 7
        weekend = (wd >= 5).astype(np.int64)
        k = np.minimum(rng.integers(lo_k, hi_k + 1, len(uu)), np.where(weekend == 1, len(WEEKEND), len(WEEKDAY)))
        keys = rng.random((len(uu), _STEPS))
        keys[weekend == 1, _STEPS - 1] = 2.0  # the weekend has 5 steps
        chosen = keys.argsort(1).argsort(1) < k[:, None]  # a random k-subset, kept in routine order
        hours = np.clip(_HOUR[weekend] + rng.normal(0.0, 0.3, keys.shape), 0.0, 23.4)
        hours = np.maximum.accumulate(np.where(chosen, hours, -np.inf), 1) + (np.cumsum(chosen, 1) - 1) * (5 / 60)
        r, step = np.nonzero(chosen)  # (R,) check-ins, by user-day then step
        user, we = uu[r], weekend[r]
        role = _ROLE[we, step]
        slot = role < 0
        role[slot] = np.where(we[slot] == 0, evening[user[slot], wd[r][slot] % 2],
                              np.where(rng.random(int(slot.sum())) < 0.5, RESTAURANT, BAR))
        near = _NEAR[we, step]
        cat = role % n_cat
        pick = (rng.random(len(r)) * n_fav[user, role, near]).astype(np.int64)
        poi = fav[user, role, near, pick]
        wander = rng.random(len(r)) < explore
        poi[wander] = _pick(rng, by_cat, cat_ptr, cat[wander])
        local = dd[r] * 86400 + (hours[r, step] * 3600).astype(np.int64) + rng.integers(0, 60, len(r))
        out_u.append(user.astype(np.int32))
        out_p.append(poi)
        out_t.append(START_UTC + local - TZ_OFFSET_MIN * 60)
    user, poi, ts = np.concatenate(out_u), np.concatenate(out_p), np.concatenate(out_t)

    # Strings only per distinct id, shared by reference across rows (8 bytes a row, not ~60).
    user_names = np.array([f"u{i}" for i in range(num_users)], dtype=object)
    poi_names = np.array([f"p{i}" for i in range(num_pois)], dtype=object)
    user_rank = np.argsort(np.argsort(user_names.astype(str), kind="stable"), kind="stable")
    order = np.lexsort((user_rank[user], ts))  # the table's (ts, user) order, made here once
    user, poi, ts = user[order], poi[order], ts[order]
    texts = np.array([f"{CATEGORY_NAMES[c]} in {_hood_name(h, n_hoods)}" for h in range(n_hoods)
                      for c in range(n_cat)], dtype=object)
    df = pd.DataFrame({
        "user": user_names[user], "poi": poi_names[poi],
        "category": np.array(CATEGORY_NAMES[:n_cat], dtype=object)[poi_cat[poi]],
        "lat": poi_xy[poi, 0], "lon": poi_xy[poi, 1], "ts": ts,
        "tz_offset_min": np.full(len(ts), TZ_OFFSET_MIN, dtype=np.int32),
        "poi_text": texts[group[poi]],
    })
    report = CleaningReport(rows_read=len(df), notes=[f"synthetic seed={seed} engine=vectorized"])
    source = (f"synthetic(num_users={num_users}, num_pois={num_pois}, num_categories={num_categories}, "
              f"days={days}, seed={seed}, checkins_per_day={checkins_per_day}, explore={explore}, "
              "engine=vectorized)")
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
