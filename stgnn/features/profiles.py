"""Texts for the language-model encoder: POI profiles and trajectories rendered as text.

A POI's text is its category name plus its venue text where the dataset has one
(``split.poi_text``), optionally followed by a templated profile built from **training
check-ins only** (``split.part == 0``, the leakage rule of DESIGN.md), e.g.::

    Coffee Shop (Joe's), 2 km north-east of the centre; busiest 8–10 am on weekdays; popular.

A trajectory renders as ``"Mon 08:12 Coffee Shop, near the centre → 09:03 Office, 2 km north of
the centre → Tue 10:00 ..."`` (local times; the weekday is printed when the day changes), to be
encoded as a user-intent vector. It reads a sample's prefix only, never its target.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from stgnn.data.batch import Batch
from stgnn.data.split import PARTS, Split
from stgnn.features.space import compass_labels
from stgnn.features.time import day_of_week, hour_of_day, local_seconds

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ARROW = " → "
# Category names that carry no meaning for a language model (NYC's rebuilt file has "unknown").
UNKNOWN_CATEGORIES = frozenset({"", "unknown"})


def poi_names(split: Split) -> list[str]:
    """``(P,)`` short name of each POI: ``"Coffee Shop"`` or ``"Coffee Shop (Joe's)"`` with venue
    text; a category in :data:`UNKNOWN_CATEGORIES` reads ``"Place"``."""
    cats = np.asarray(split.category_names, dtype=object)[split.poi_category]
    out = []
    for c, t in zip(cats, split.poi_text):
        c, t = " ".join(str(c).split()), " ".join(str(t).split())
        c = "Place" if c.lower() in UNKNOWN_CATEGORIES else c
        out.append(f"{c} ({t})" if t and t != c else c)
    return out


def default_region_labels(split: Split) -> list[str]:
    """``(P,)`` coarse location of each POI relative to the median training POI (see
    :func:`~stgnn.features.space.compass_labels`)."""
    train_pois = np.unique(split.poi[split.part == PARTS["train"]])
    ref = train_pois if len(train_pois) else np.arange(split.num_pois)
    c_lat, c_lon = float(np.nanmedian(split.poi_lat[ref])), float(np.nanmedian(split.poi_lon[ref]))
    return compass_labels(split.poi_lat, split.poi_lon, c_lat, c_lon)


@dataclass
class PoiTrainStats:
    """Per-POI statistics from training check-ins only.

    Attributes:
        visits: ``(P,)`` int64 training check-ins.
        hour_counts: ``(P, 24)`` int64 training check-ins per local hour.
        weekend: ``(P,)`` int64 training check-ins on a local Saturday or Sunday.
        users: ``(P,)`` int64 distinct training users.
    """

    visits: np.ndarray
    hour_counts: np.ndarray
    weekend: np.ndarray
    users: np.ndarray


def poi_train_stats(split: Split) -> PoiTrainStats:
    """Count each POI's training check-ins (``part == 0``) by local hour and weekday."""
    m = split.part == PARTS["train"]
    poi, ts, tz, user = split.poi[m], split.ts[m], split.tz_offset_min[m], split.user[m]
    P = split.num_pois
    hour = hour_of_day(ts, tz)
    hours = np.bincount(poi * 24 + hour, minlength=P * 24).reshape(P, 24)
    weekend = np.bincount(poi, weights=(day_of_week(ts, tz) >= 5), minlength=P).astype(np.int64)
    pairs = np.unique(np.stack([poi, user], 1), axis=0) if len(poi) else np.zeros((0, 2), np.int64)
    users = np.bincount(pairs[:, 0], minlength=P)
    return PoiTrainStats(visits=hours.sum(1), hour_counts=hours, weekend=weekend, users=users)


def _clock(h: int) -> tuple[int, str]:
    h %= 24
    return (12 if h % 12 == 0 else h % 12), ("am" if h < 12 else "pm")


def hour_window_text(start: int, width: int = 2) -> str:
    """``8 -> "8–10 am"``, ``11 -> "11 am–1 pm"``, ``22 -> "10 pm–12 am"`` (local hours)."""
    (a, ap), (b, bp) = _clock(start), _clock(start + width)
    return f"{a}–{b} {bp}" if ap == bp and start + width < 24 else f"{a} {ap}–{b} {bp}"


def poi_profiles(split: Split, region_labels: Sequence[str] | None = None, min_visits: int = 3,
                 window: int = 2) -> list[str]:
    """``(P,)`` templated profile of each POI from training check-ins only.

    Parts: the name (:func:`poi_names`), the region label, the busiest ``window``-hour local
    time window (circular; earliest on ties) with ``"on weekdays"`` (under 15 % of visits on
    weekends), ``"on weekends"`` (at least half) or ``"all week"``, and popularity: ``"very
    popular"`` / ``"popular"`` / ``"quiet"`` for the top 10 % / next 30 % / rest of POIs by
    training visits. POIs with fewer than ``min_visits`` training visits get ``"rarely
    visited"`` and no hours.

    Args:
        region_labels: ``(P,)`` location phrase per POI (default :func:`default_region_labels`);
            pass e.g. grid region names from :mod:`stgnn.features.space`.
    """
    names = poi_names(split)
    regions = list(region_labels) if region_labels is not None else default_region_labels(split)
    if len(regions) != split.num_pois:
        raise ValueError(f"region_labels has {len(regions)} entries, the split has {split.num_pois} POIs")
    st = poi_train_stats(split)
    # circular window sums: busiest[p] = argmax_h sum_{i<window} hour_counts[p, (h+i) % 24]
    win = sum(np.roll(st.hour_counts, -i, axis=1) for i in range(window))
    busiest = win.argmax(1)
    visited = st.visits[st.visits > 0]
    q90, q60 = (np.quantile(visited, [0.9, 0.6]) if len(visited) else (np.inf, np.inf))
    out = []
    for p in range(split.num_pois):
        v = int(st.visits[p])
        parts = [f"{names[p]}, {regions[p]}"]
        if v < min_visits:
            parts.append("rarely visited" if v else "no visits recorded")
        else:
            share = st.weekend[p] / v
            days = "on weekends" if share >= 0.5 else "on weekdays" if share < 0.15 else "all week"
            parts.append(f"busiest {hour_window_text(int(busiest[p]), window)} {days}")
            parts.append("very popular" if v >= q90 else "popular" if v >= q60 else "quiet")
        out.append("; ".join(parts) + ".")
    return out


def neighbour_profiles(split: Split, base: Sequence[str] | None = None, top: int = 2) -> list[str]:
    """``(P,)`` :func:`poi_profiles` (or ``base``) plus the ``top`` most frequent categories of each
    POI's training predecessors and successors: ``"...; often visited after Gym or Office; often
    followed by Bar."`` Transitions are consecutive check-ins of one trajectory, both in the
    training period (``part == 0``), so no val/test check-in shapes a profile."""
    base = poi_profiles(split) if base is None else list(base)
    P = split.num_pois
    train = split.part == PARTS["train"]
    same = (split.traj[1:] == split.traj[:-1]) & train[1:] & train[:-1]               # (N-1,)
    pairs, n = np.unique(split.poi[:-1][same] * P + split.poi[1:][same], return_counts=True)
    cat = np.asarray(split.category_names, dtype=object)[split.poi_category]          # (P,)
    before: list[Counter] = [Counter() for _ in range(P)]
    after: list[Counter] = [Counter() for _ in range(P)]
    for pair, k in zip(pairs.tolist(), n.tolist()):                                     # sorted by (src, dst)
        s, d = divmod(pair, P)
        after[s][cat[d]] += k
        before[d][cat[s]] += k
    out = []
    for p, text in enumerate(base):
        extra = []
        if before[p]:
            extra.append("often visited after " + " or ".join(c for c, _ in before[p].most_common(top)))
        if after[p]:
            extra.append("often followed by " + " or ".join(c for c, _ in after[p].most_common(top)))
        out.append(text.rstrip(".") + ("; " + "; ".join(extra) if extra else "") + ".")
    return out


PROFILES = (False, True, "neighbours")


def poi_texts(split: Split, profile: bool | str = False, region_labels: Sequence[str] | None = None) -> list[str]:
    """``(P,)`` text of each POI to encode: :func:`poi_names` (``profile=False``), :func:`poi_profiles`
    (``True``) or :func:`neighbour_profiles` (``"neighbours"``: + typical predecessors/successors)."""
    if profile == "neighbours":
        return neighbour_profiles(split, poi_profiles(split, region_labels))
    if profile not in (False, True):
        raise ValueError(f"text_profile={profile!r}: choose one of {list(PROFILES)}")
    return poi_profiles(split, region_labels) if profile else poi_names(split)


# ---------------------------------------------------------------------------------------------
# trajectories as text
# ---------------------------------------------------------------------------------------------
def render_trajectory(pois: np.ndarray, ts: np.ndarray, tz: np.ndarray, names: Sequence[str],
                      region_labels: Sequence[str] | None = None) -> str:
    """One trajectory as text, oldest first: ``"Mon 08:12 Coffee Shop, near the centre → 09:03 Office"``.

    Shapes: ``pois``, ``ts``, ``tz`` ``(L,)`` (already masked to the real positions).
    """
    loc = local_seconds(np.asarray(ts, np.int64), np.asarray(tz, np.int64))
    day_idx = loc // 86400
    steps, last_day = [], None
    for p, s, d in zip(np.asarray(pois), loc, day_idx):
        when = f"{(s % 86400) // 3600:02d}:{(s % 3600) // 60:02d}"
        if d != last_day:
            when = f"{DAYS[(d + 3) % 7]} {when}"
            last_day = d
        where = f", {region_labels[p]}" if region_labels is not None else ""
        steps.append(f"{when} {names[p]}{where}")
    return ARROW.join(steps)


def trajectory_texts(split: Split, targets: np.ndarray, names: Sequence[str] | None = None,
                     region_labels: Sequence[str] | None = None, max_items: int = 20) -> list[str]:
    """``(S,)`` text of each sample's prefix (the earlier check-ins of its trajectory, at most
    ``max_items`` most recent); the target itself is never shown."""
    names = poi_names(split) if names is None else names
    targets = np.asarray(targets, np.int64)
    starts = np.maximum(split.prefix_start(targets), targets - max_items)
    return [render_trajectory(split.poi[a:b], split.ts[a:b], split.tz_offset_min[a:b], names, region_labels)
            for a, b in zip(starts, targets)]


def batch_trajectory_texts(batch: Batch, names: Sequence[str], region_labels: Sequence[str] | None = None,
                           source: str = "prefix") -> list[str]:
    """``(B,)`` text of each row of a :class:`~stgnn.data.batch.Batch`: its prefix (default) or,
    with ``source="history"``, its history (``hist_*`` fields)."""
    if source not in ("prefix", "history"):
        raise ValueError(f"source must be 'prefix' or 'history', got {source!r}")
    if source == "prefix":
        poi, ts, tz, mask = batch.poi, batch.ts, batch.tz, batch.mask
    else:
        poi, ts, tz, mask = batch.hist_poi, batch.hist_ts, batch.hist_tz, batch.hist_mask
    poi, ts, tz, mask = (x.cpu().numpy() for x in (poi, ts, tz, mask))
    return [render_trajectory(poi[i][mask[i]], ts[i][mask[i]], tz[i][mask[i]], names, region_labels)
            for i in range(len(poi))]


def user_intent_vectors(split: Split, targets: np.ndarray, encoder, names: Sequence[str] | None = None,
                        region_labels: Sequence[str] | None = None, max_items: int = 20):
    """``(S, D)`` language-model vector of each sample's rendered prefix (a "user intent").

    Args:
        encoder: a :class:`~stgnn.features.text.TextEncoder` (its disk cache makes repeats free).
        Other arguments as :func:`trajectory_texts`; the target is never rendered.
    """
    return encoder.encode(trajectory_texts(split, targets, names, region_labels, max_items))
