"""Evaluation protocols: a :class:`~stgnn.data.schema.CheckinTable` in, a :class:`~stgnn.data.split.Split` out.

The default (``ProtocolConfig()``) is the protocol STHGCN (SIGIR'23) and LLM4POI (SIGIR'24) use
on Foursquare NYC/TKY, rebuilt from STHGCN's public preprocessing
(``ant-research/Spatio-Temporal-Hypergraph-Model``, ``preprocess/file_reader.py`` and
``preprocess_fn.py``, ``conf/best_conf/*.yml``). Steps, in this order:

1. **Filter** POIs with fewer than ``min_poi_checkins`` check-ins, then users with fewer than
   ``min_user_checkins`` (STHGCN: ``count > 9``, POIs first, one pass; CA twice). ``filter_rounds``
   repeats the pass; ``0`` iterates to a fixpoint, so afterwards every count is above the bar.
2. **Trajectories**: a user's time-ordered check-ins, broken where the gap exceeds
   ``traj_gap_hours`` (STHGCN ``session_time_interval: 1440`` minutes, strict ``>``).
3. **Time cut** (``protocol="time_cut"``): all filtered check-ins sorted by time;
   ``train_end`` = time of the check-in at position ``int(0.8 N)``, ``val_end`` at ``int(0.9 N)``.
   A check-in is train if ``ts < train_end``, val if ``ts < val_end``, else test (STHGCN cuts by
   position, so equal timestamps at a cut may fall on both sides there; here they all go to the
   later part, which keeps ``ts < train_end`` exact). STHGCN sorts on *local* time; we cut on
   UTC, which is the same for a one-timezone city up to DST hours (documented difference).
   The cut is computed before step 4, as STHGCN computes it before removing isolated check-ins.
4. **Short trajectories** of fewer than ``min_traj_len`` check-ins are dropped (STHGCN removes
   "isolated" check-ins: gaps > 24 h on both sides, i.e. length-1 trajectories).
5. **Samples**. Train: every train check-in with at least ``min_train_prefix`` earlier
   check-ins in its trajectory (STHGCN ``ignore_first``). Val/test: the *last* check-in of each
   trajectory whose last check-in is val/test (``eval_last_only``; STHGCN ``only_keep_last``),
   with at least ``min_eval_prefix`` earlier check-ins. A trajectory that spans a cut keeps its
   check-ins' own parts (``span="per_checkin"``, STHGCN): its train check-ins are train samples
   and its val/test last check-in is scored with the train check-ins in its prefix.
6. **Unseen** users/POIs: a val/test sample whose user or target POI is not "seen" in training
   is removed. STHGCN's "seen" = appears among the *train samples* (``seen_from="train_targets"``),
   so a POI seen only as a trajectory's first train check-in is unseen there. STHGCN keeps unseen
   POIs inside val/test prefixes as a padding id; here ``unseen_context="drop"`` (default)
   removes those check-ins (so every integer POI has training data, and the candidate set is
   the training vocabulary as in STHGCN) and ``"keep"`` keeps them with ``part == -1`` and gives
   them an integer id. A sample whose prefix falls below ``min_eval_prefix`` after dropping is
   removed and counted (``stats["<part>_removed_prefix_emptied"]``). What is left of such a
   trajectory stays, as context, even if shorter than ``min_traj_len``.

``keep_unseen=True`` is the cold-start variant: nothing is removed in step 6; cold users/POIs
get integer ids like any other (they never appear in a ``part == 0`` check-in, so a model has
no training signal for them) and ``split.flags`` marks ``cold_user`` / ``cold_poi`` per sample.
``flags["revisit"]`` (target POI in the user's training check-ins) is set under every protocol.

``protocol="files"``: the split is given by files (a pre-split set such as GETNext's
``NYC_{train,val,test}.csv``, read by :mod:`stgnn.data.sources.presplit`): membership and
trajectories come from the files, steps 1-4 do not apply, steps 5-6 do
(:mod:`stgnn.data.protocol_files`). ``make_split`` on such a table takes that path whatever the
``protocol`` option says.

``protocol="leave_last"``: per user, the last trajectory is test, the second-to-last val (users
with 2 trajectories: last = test, no val; 1 trajectory: train only), the rest train, decided after
step 4. ``split.cuts`` is empty (there is no global cut). Leakage rule unchanged: features for
val/test use ``part == 0`` check-ins only.

Integer ids: users, POIs and categories ordered by their raw id string (Python string order),
over the check-ins that remain, so ids are deterministic and independent of row order.
Per-check-in ``category`` is the check-in's own; ``poi_category`` is the POI's most frequent
category (ties: smallest id). ``poi_lat/lon``: the POI's most frequent coordinate pair (ties:
the smallest pair). ``poi_text``: most frequent non-empty text.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from stgnn.data.codes import as_text, code_of, compact, member, mode_coords, mode_per_group, rank_uniques, string_rank
from stgnn.data.protocol_config import ProtocolConfig
from stgnn.data.schema import CheckinTable
from stgnn.data.split import PARTS, Split


def _filter(user: np.ndarray, poi: np.ndarray, cfg: ProtocolConfig, stats: dict[str, Any]) -> np.ndarray:
    """Boolean ``(N,)`` mask of check-ins kept by the frequency filters; counts into ``stats``."""
    keep = np.ones(len(user), dtype=bool)
    nu, npoi = int(user.max(initial=-1)) + 1, int(poi.max(initial=-1)) + 1
    removed_poi = removed_user = 0
    rounds = 0
    while cfg.filter_rounds == 0 or rounds < cfg.filter_rounds:
        rounds += 1
        before = int(keep.sum())
        for what in (("poi", "user") if cfg.filter_order == "poi_first" else ("user", "poi")):
            codes, n, bar = (poi, npoi, cfg.min_poi_checkins) if what == "poi" else (user, nu, cfg.min_user_checkins)
            counts = np.bincount(codes[keep], minlength=n)
            drop = keep & (counts[codes] < bar)
            if what == "poi":
                removed_poi += int(drop.sum())
            else:
                removed_user += int(drop.sum())
            keep &= ~drop
        if int(keep.sum()) == before:
            break
    stats["filter_rounds_run"] = rounds
    stats["removed_by_poi_filter"] = removed_poi
    stats["removed_by_user_filter"] = removed_user
    return keep


def _n_distinct(codes: np.ndarray, n: int) -> int:
    """Distinct values among int ``codes`` in ``[0, n)``, by counting (linear, no sort)."""
    return int(np.count_nonzero(np.bincount(codes, minlength=n)))


def _traj_starts(user: np.ndarray, ts: np.ndarray, gap_s: float) -> np.ndarray:
    """``(N,)`` bool, True where a trajectory starts (rows sorted by user, then time)."""
    start = np.ones(len(user), dtype=bool)
    if len(user) > 1:
        start[1:] = (user[1:] != user[:-1]) | ((ts[1:] - ts[:-1]) > gap_s)
    return start


def _positions(start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From trajectory-start flags: ``(traj id (N,), position in traj (N,), traj length (N,))``."""
    traj = np.cumsum(start) - 1
    first = np.flatnonzero(start)
    pos = np.arange(len(start)) - first[traj] if len(start) else np.zeros(0, dtype=np.int64)
    lengths = np.diff(np.append(first, len(start)))
    return traj, pos, lengths[traj] if len(start) else np.zeros(0, dtype=np.int64)


def make_split(table: CheckinTable, cfg: ProtocolConfig | None = None, name: str | None = None) -> Split:
    """Apply an evaluation protocol to a check-in table.

    Args:
        table: validated check-ins (any row order; re-sorted here).
        cfg: protocol options (default: STHGCN's NYC/TKY protocol).
        name: dataset name for the split (default ``table.name``).

    Returns:
        A :class:`Split` whose ``stats`` hold every count removed or kept along the way.
    """
    cfg = cfg or ProtocolConfig()
    if hasattr(table, "split_from_files"):  # a pre-split file set keeps its own membership
        return table.split_from_files(cfg, name)
    if cfg.protocol == "files":
        raise ValueError("ProtocolConfig.protocol='files' keeps the train/val/test membership of a pre-split "
                         "file set (e.g. GETNext's NYC_train/val/test.csv); this table has none. Use "
                         "'time_cut' or 'leave_last'")
    df = table.df
    user_code, user_uniq = string_rank(df["user"])
    poi_code, poi_uniq = string_rank(df["poi"])
    # the distinct ids counted from their codes (table.num_users would hash the column again)
    stats: dict[str, Any] = {"rows_in": len(df), "users_in": len(user_uniq), "pois_in": len(poi_uniq)}
    ts_all = df["ts"].to_numpy(np.int64)

    keep = _filter(user_code, poi_code, cfg, stats)
    rows = np.flatnonzero(keep)
    # (user string order, time, input order): the order of the final arrays. A CheckinTable is
    # time-sorted, so a stable sort by user alone gives it (one key instead of three).
    if np.all(ts_all[1:] >= ts_all[:-1]):
        rows = rows[np.argsort(user_code[rows], kind="stable")]
    else:
        rows = rows[np.lexsort((rows, ts_all[rows], user_code[rows]))]
    u, p, ts = user_code[rows], poi_code[rows], ts_all[rows]
    stats["after_filter"] = {"users": _n_distinct(u, len(user_uniq)), "pois": _n_distinct(p, len(poi_uniq)),
                             "checkins": len(rows)}

    gap_s = cfg.traj_gap_hours * 3600.0
    start = _traj_starts(u, ts, gap_s)
    cuts: dict[str, int] = {}
    if cfg.protocol == "time_cut":
        part, cuts = _time_cut(ts, cfg.fractions)
        start, part = _apply_span(start, part, cfg.span)
    stats["trajectories_after_filter"] = int(start.sum())

    # Short trajectories (STHGCN: isolated check-ins) go, whole.
    traj, pos, length = _positions(start)
    short = length < cfg.min_traj_len
    stats["short_trajectories_removed"] = int(start[short].sum())
    stats["short_trajectory_checkins_removed"] = int(short.sum())
    sel = ~short
    rows, u, p, ts, start = rows[sel], u[sel], p[sel], ts[sel], start[sel]
    if cfg.protocol == "time_cut":
        part = part[sel]
    else:
        part = _leave_last_parts(start, u)

    rows, u, p, ts, part, start, traj, train_target, eval_target, seen_u, seen_p = choose_samples(
        rows, u, p, ts, part, start, len(user_uniq), len(poi_uniq), cfg, stats)

    split = assemble_split(table, df, rows, u, p, ts, part, start, traj, train_target, eval_target,
                      seen_u, seen_p, user_uniq, poi_uniq, cfg, cuts, stats, name)
    return split


def choose_samples(rows: np.ndarray, u: np.ndarray, p: np.ndarray, ts: np.ndarray, part: np.ndarray,
                   start: np.ndarray, n_users: int, n_pois: int, cfg: ProtocolConfig, stats: dict[str, Any]
                   ) -> tuple[np.ndarray, ...]:
    """Steps 5 and 6: train and val/test targets, and what unseen users/POIs remove.

    Args: ``(N,)`` arrays of the check-ins in final order (grouped by trajectory, ``start`` True
    at each trajectory's first check-in), ``part`` per check-in, the code ranges ``n_users`` /
    ``n_pois`` of ``u`` / ``p``. Counts go into ``stats``.

    Returns:
        ``(rows, u, p, ts, part, start, traj, train_target, eval_target, seen_u, seen_p)``: the
        check-in arrays after dropping unseen context, the ``(N,)`` target masks and the
        ``(n_users,)`` / ``(n_pois,)`` seen masks.
    """
    traj, pos, length = _positions(start)
    # Seen users/POIs and sample candidates.
    train_target = (part == 0) & (pos >= cfg.min_train_prefix)
    seen_rows = train_target if cfg.seen_from == "train_targets" else (part == 0)
    seen_u = np.zeros(n_users, dtype=bool)
    seen_u[u[seen_rows]] = True
    seen_p = np.zeros(n_pois, dtype=bool)
    seen_p[p[seen_rows]] = True
    is_last = pos == length - 1
    eval_target = (part > 0) & (pos >= cfg.min_eval_prefix) & (is_last if cfg.eval_last_only else True)
    ok = seen_u[u] & seen_p[p]
    stats["val_removed_prefix_emptied"] = stats["test_removed_prefix_emptied"] = 0
    for k in ("val", "test"):
        in_k = eval_target & (part == PARTS[k])
        stats[f"{k}_candidates"] = int(in_k.sum())
        stats[f"{k}_removed_unseen_user"] = 0 if cfg.keep_unseen else int((in_k & ~seen_u[u]).sum())
        stats[f"{k}_removed_unseen_poi"] = 0 if cfg.keep_unseen else int((in_k & seen_u[u] & ~seen_p[p]).sum())
    if not cfg.keep_unseen:
        eval_target &= ok
        context = (part > 0) & ~ok
        stats["unseen_context_checkins"] = int(context.sum())
        stats["unseen_context_action"] = cfg.unseen_context
        if cfg.unseen_context == "keep":
            part = part.copy()
            part[context] = -1
        else:
            sel = ~context
            rows, u, p, ts, part, start = rows[sel], u[sel], p[sel], ts[sel], part[sel], start[sel]
            train_target, eval_target = train_target[sel], eval_target[sel]
            # A dropped first check-in passes its trajectory start on to the next kept one.
            traj_old = traj[sel]
            start = np.ones(len(traj_old), dtype=bool)
            start[1:] = traj_old[1:] != traj_old[:-1]
            traj, pos, length = _positions(start)
            emptied = eval_target & (pos < cfg.min_eval_prefix)
            for k in ("val", "test"):
                stats[f"{k}_removed_prefix_emptied"] = int((emptied & (part == PARTS[k])).sum())
            eval_target &= ~emptied
    traj, pos, length = _positions(start)
    return rows, u, p, ts, part, start, traj, train_target, eval_target, seen_u, seen_p


def _time_cut(ts: np.ndarray, fractions: tuple[float, float, float]) -> tuple[np.ndarray, dict[str, int]]:
    """``(part (N,) int8, cuts)`` from a global cut by check-in count over time."""
    order = np.sort(ts)
    n = len(order)
    cuts: dict[str, int] = {}
    for key, share in (("train_end", fractions[0]), ("val_end", fractions[0] + fractions[1])):
        i = int(n * share)
        cuts[key] = int(order[i]) if i < n else int(order[-1]) + 1 if n else 0
    part = np.where(ts < cuts["train_end"], 0, np.where(ts < cuts["val_end"], 1, 2)).astype(np.int8)
    return part, cuts


def _apply_span(start: np.ndarray, part: np.ndarray, span: str) -> tuple[np.ndarray, np.ndarray]:
    """Resolve trajectories that span a cut (see ``ProtocolConfig.span``)."""
    if span == "per_checkin":
        return start, part
    if span == "split":
        start = start.copy()
        start[1:] |= part[1:] != part[:-1]
        return start, part
    traj, _, _ = _positions(start)
    first = np.flatnonzero(start)
    ends = np.append(first[1:], len(start)) - 1
    anchor = first if span == "first" else ends
    return start, part[anchor][traj].astype(np.int8)


def _leave_last_parts(start: np.ndarray, user: np.ndarray) -> np.ndarray:
    """``(N,)`` parts of the leave-last protocol: last trajectory test, second-to-last val."""
    traj, _, _ = _positions(start)
    first = np.flatnonzero(start)
    t_user = user[first]
    n_t = len(first)
    # Trajectories per user and each trajectory's rank from the user's end.
    user_last = np.ones(n_t, dtype=bool)
    if n_t > 1:
        user_last[:-1] = t_user[1:] != t_user[:-1]
    last_idx = np.flatnonzero(user_last)
    grp = np.cumsum(np.append(True, user_last[:-1])) - 1
    from_end = last_idx[grp] - np.arange(n_t)
    count = np.bincount(grp)[grp]
    t_part = np.zeros(n_t, dtype=np.int8)
    t_part[(from_end == 0) & (count >= 2)] = PARTS["test"]
    t_part[(from_end == 1) & (count >= 3)] = PARTS["val"]
    return t_part[traj]


def assemble_split(table: CheckinTable, df: pd.DataFrame, rows: np.ndarray, u: np.ndarray, p: np.ndarray,
              ts: np.ndarray, part: np.ndarray, start: np.ndarray, traj: np.ndarray,
              train_target: np.ndarray, eval_target: np.ndarray, seen_u: np.ndarray, seen_p: np.ndarray,
              user_uniq: np.ndarray, poi_uniq: np.ndarray, cfg: ProtocolConfig, cuts: dict[str, int],
              stats: dict[str, Any], name: str | None) -> Split:
    """Integer ids, POI attributes, CSR pointers, samples, flags and final counts."""
    u_keep, u_new = compact(u, len(user_uniq))
    p_keep, p_new = compact(p, len(poi_uniq))
    cat_new, cat_names = string_rank(df["category"], rows) if len(rows) else (np.zeros(0, np.int64),
                                                                              np.zeros(0, object))
    n_users, n_pois = len(u_keep), len(p_keep)

    poi_category = mode_per_group(p_new, cat_new, n_pois)
    lat = df["lat"].to_numpy()[rows]
    lon = df["lon"].to_numpy()[rows]
    poi_lat, poi_lon = mode_coords(p_new, lat, lon, n_pois)
    text_code, text_uniq = pd.factorize(as_text(df["poi_text"]), sort=False)
    text_code = text_code[rows].astype(np.int64, copy=False)
    text_uniq = np.asarray(text_uniq, dtype=object)
    poi_text = np.full(n_pois, "", dtype=object)
    has_text = text_code != code_of(text_uniq, "")
    if has_text.any():
        t_code, t_uniq = rank_uniques(text_code[has_text], text_uniq)
        t_pick = mode_per_group(p_new[has_text], t_code, n_pois)
        poi_text[t_pick >= 0] = t_uniq[t_pick[t_pick >= 0]]

    first = np.flatnonzero(start)
    traj_ptr = np.append(first, len(rows)).astype(np.int64)
    traj_user = u_new[first].astype(np.int64)
    user_ptr = np.searchsorted(u_new, np.arange(n_users + 1), side="left").astype(np.int64)

    # Keys in sorted order: Split.fingerprint hashes samples in dict order and cache files of
    # format 1 written before 2026-11-30 restore them sorted, so any other order would change
    # the fingerprint on a round trip through such a file.
    samples = {"test": np.flatnonzero(eval_target & (part == 2)).astype(np.int64),
               "train": np.flatnonzero(train_target & (part == 0)).astype(np.int64),
               "val": np.flatnonzero(eval_target & (part == 1)).astype(np.int64)}
    # Revisit: target POI among the user's training check-ins. Only pairs of a val/test user and
    # a val/test target POI can match, so only those are compared (a linear pre-filter).
    # The (few) val/test pairs are sorted; each candidate training pair is looked up among them.
    ev = np.concatenate([samples["test"], samples["val"]])
    cand = (part == 0) & member(u_new, u_new[ev], n_users) & member(p_new, p_new[ev], n_pois)
    ev_pairs = np.unique(u_new[ev].astype(np.int64) * n_pois + p_new[ev])                  # (E,) sorted
    tr_pairs = u_new[cand].astype(np.int64) * n_pois + p_new[cand]
    at = np.minimum(np.searchsorted(ev_pairs, tr_pairs), max(len(ev_pairs) - 1, 0))
    seen_pair = np.zeros(len(ev_pairs), dtype=bool)
    seen_pair[at[ev_pairs[at] == tr_pairs] if len(ev_pairs) else at[:0]] = True
    flags: dict[str, np.ndarray] = {}
    for k, prefix in (("test", ""), ("val", "val_")):
        t = samples[k]
        flags[prefix + "cold_user"] = ~seen_u[u[t]]
        flags[prefix + "cold_poi"] = ~seen_p[p[t]]
        pairs = u_new[t].astype(np.int64) * n_pois + p_new[t]
        flags[prefix + "revisit"] = seen_pair[np.searchsorted(ev_pairs, pairs)] if len(t) else np.zeros(0, bool)

    _final_stats(stats, part, traj, u_new, p_new, cat_new, samples, flags, n_users, n_pois, len(cat_names))
    # copy=False: every array here is this function's own (no second 80 MB copy at 10^7 rows)
    return Split(
        name=name or table.name, protocol=cfg.to_dict(),
        user_ids=user_uniq[u_keep], poi_ids=poi_uniq[p_keep], category_names=cat_names,
        poi_category=poi_category.astype(np.int64, copy=False),
        poi_lat=poi_lat.astype(np.float64, copy=False), poi_lon=poi_lon.astype(np.float64, copy=False),
        poi_text=poi_text, user=u_new.astype(np.int64, copy=False), poi=p_new.astype(np.int64, copy=False),
        category=cat_new.astype(np.int64, copy=False), ts=ts.astype(np.int64, copy=False),
        tz_offset_min=df["tz_offset_min"].to_numpy()[rows].astype(np.int32, copy=False),
        traj=traj.astype(np.int64, copy=False), part=part.astype(np.int8, copy=False),
        traj_ptr=traj_ptr, traj_user=traj_user,
        user_ptr=user_ptr, samples=samples, flags=flags, cuts=cuts, stats=stats,
    )


def _final_stats(stats: dict[str, Any], part: np.ndarray, traj: np.ndarray, u: np.ndarray, p: np.ndarray,
                 cat: np.ndarray, samples: dict[str, np.ndarray], flags: dict[str, np.ndarray],
                 n_users: int, n_pois: int, n_cats: int) -> None:
    """Per-part and total counts into ``stats`` (all plain ints, JSON-able)."""
    stats["final"] = {"users": n_users, "pois": n_pois, "categories": n_cats, "checkins": int(len(u)),
                      "trajectories": int(traj.max(initial=-1)) + 1}
    last = np.ones(len(traj), dtype=bool)
    last[:-1] = traj[1:] != traj[:-1]
    for k, code in (*PARTS.items(), ("context", -1)):
        m = part == code
        stats[k] = {"checkins": int(m.sum()), "users": _n_distinct(u[m], n_users), "pois": _n_distinct(p[m], n_pois),
                    "categories": _n_distinct(cat[m], n_cats),
                    "trajectories_ending_here": int((m & last).sum())}
        if k in samples:
            stats[k]["samples"] = int(len(samples[k]))
    for k, prefix in (("test", ""), ("val", "val_")):
        stats[k]["cold_user"] = int(flags[prefix + "cold_user"].sum())
        stats[k]["cold_poi"] = int(flags[prefix + "cold_poi"].sum())
        stats[k]["revisit"] = int(flags[prefix + "revisit"].sum())


def check_split(split: Split) -> None:
    """Raise ``AssertionError`` naming the first broken invariant of the Split contract.

    Cheap (vectorised); used by tests and after loading a cached split.
    """
    n, t = split.num_checkins, split.num_trajectories
    for f in ("user", "poi", "category", "ts", "tz_offset_min", "traj", "part"):
        assert len(getattr(split, f)) == n, f"{f}: length {len(getattr(split, f))} != {n}"
    assert split.traj_ptr[0] == 0 and split.traj_ptr[-1] == n and np.all(np.diff(split.traj_ptr) > 0), "traj_ptr"
    assert np.array_equal(split.traj, np.repeat(np.arange(t), np.diff(split.traj_ptr))), "traj vs traj_ptr"
    assert np.array_equal(split.traj_user, split.user[split.traj_ptr[:-1]]), "traj_user"
    assert np.all(np.diff(split.user) >= 0), "check-ins not grouped by user"
    assert len(split.user_ptr) == split.num_users + 1 and split.user_ptr[-1] == n, "user_ptr length/end"
    assert np.array_equal(np.repeat(np.arange(split.num_users), np.diff(split.user_ptr)), split.user), "user_ptr"
    same = split.traj[1:] == split.traj[:-1]
    assert np.all(np.diff(split.ts)[same] >= 0), "check-ins not time-ordered within a trajectory"
    starts = split.ts[split.traj_ptr[:-1]]
    same_user = split.traj_user[1:] == split.traj_user[:-1]
    assert np.all(np.diff(starts)[same_user] >= 0), "trajectories not ordered by (user, start time)"
    assert split.poi.min(initial=0) >= 0 and split.poi.max(initial=-1) < split.num_pois, "poi id range"
    assert split.category.max(initial=-1) < split.num_categories, "category id range"
    for k, code in PARTS.items():
        s = split.samples[k]
        assert np.all(split.part[s] == code), f"samples[{k}] target not in part {code}"
        assert np.all(s > split.prefix_start(s)), f"samples[{k}] with an empty prefix"
        assert np.all(np.diff(s) > 0), f"samples[{k}] not sorted/unique"
