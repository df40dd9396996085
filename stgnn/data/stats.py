"""Counts of a :class:`~stgnn.data.split.Split` (``stgnn data stats``), beside published figures."""
from __future__ import annotations

from typing import Any

import numpy as np

from stgnn.data.split import PARTS, Split

# STHGCN's preprocessed datasets (ant-research/Spatio-Temporal-Hypergraph-Model README; see
# /work/shared/REFERENCES.md). Its NYC set is GETNext's NYC_{train,val,test}.csv, not a
# re-run of its own pipeline on the 147,938-row file, so our counts differ (see tests/data/test_nyc_real.py).
PUBLISHED: dict[str, dict[str, int]] = {
    "nyc": {"users": 1048, "pois": 4981, "checkins": 103941, "test_samples": 1347},
    "tky": {"users": 2282, "pois": 7833, "checkins": 405000, "test_samples": 7038},
}
PUBLISHED_SOURCE = "STHGCN (SIGIR'23) README, preprocessed data"


def split_stats(split: Split) -> dict[str, Any]:
    """Counts per part and in total, recomputed from the arrays, plus the protocol's removals.

    Returns:
        ``{"total": {...}, "train"|"val"|"test"|"context": {...}, "removed": {...}, "cold": {...}}``
        with ints only (JSON-able).
    """
    last = np.ones(split.num_checkins, dtype=bool)
    last[:-1] = split.traj[1:] != split.traj[:-1]
    out: dict[str, Any] = {"total": {
        "users": split.num_users, "pois": split.num_pois, "categories": split.num_categories,
        "checkins": split.num_checkins, "trajectories": split.num_trajectories,
        "samples": int(sum(len(v) for v in split.samples.values())),
    }}
    for k, code in (*PARTS.items(), ("context", -1)):
        m = split.part == code
        out[k] = {"users": int(np.unique(split.user[m]).size), "pois": int(np.unique(split.poi[m]).size),
                  "categories": int(np.unique(split.category[m]).size), "checkins": int(m.sum()),
                  "trajectories": int((m & last).sum()), "samples": int(len(split.samples.get(k, ())))}
    s = split.stats
    out["removed"] = {
        "rows_in": s.get("rows_in"), "by_poi_filter": s.get("removed_by_poi_filter"),
        "by_user_filter": s.get("removed_by_user_filter"),
        "short_trajectory_checkins": s.get("short_trajectory_checkins_removed"),
        "unseen_context_checkins": s.get("unseen_context_checkins", 0),
        **{f"{k}_{why}": s.get(f"{k}_removed_{why}", 0) for k in ("val", "test")
           for why in ("unseen_user", "unseen_poi", "prefix_emptied")},
    }
    out["cold"] = {}
    for k, prefix in (("test", ""), ("val", "val_")):
        for f in ("cold_user", "cold_poi", "revisit"):
            flag = split.flags.get(prefix + f)
            out["cold"][f"{k}_{f}"] = int(flag.sum()) if flag is not None else 0
    return out


def format_stats(split: Split, published: bool = True) -> str:
    """A plain-text table of :func:`split_stats`; for NYC/TKY with the published figures beside ours."""
    st = split_stats(split)
    cols = ("users", "pois", "categories", "checkins", "trajectories", "samples")
    lines = [f"{split.name}: protocol {split.protocol.get('protocol', '?')}, fingerprint {split.fingerprint()}",
             f"{'part':<8}" + "".join(f"{c:>14}" for c in cols)]
    for k in ("train", "val", "test", "context", "total"):
        if k == "context" and st[k]["checkins"] == 0:
            continue
        lines.append(f"{k:<8}" + "".join(f"{st[k][c]:>14,}" for c in cols))
    lines.append("removed: " + ", ".join(f"{k}={v:,}" for k, v in st["removed"].items() if v is not None))
    lines.append("test/val flags: " + ", ".join(f"{k}={v:,}" for k, v in st["cold"].items()))
    ref = PUBLISHED.get(split.name.lower()) if published else None
    if ref:
        ours = {"users": st["total"]["users"], "pois": st["total"]["pois"],
                "checkins": st["total"]["checkins"], "test_samples": st["test"]["samples"]}
        lines.append(f"vs {PUBLISHED_SOURCE}:")
        lines.append(f"{'':<14}{'ours':>10}{'published':>11}{'diff':>9}{'diff %':>9}")
        for k, v in ref.items():
            lines.append(f"{k:<14}{ours[k]:>10,}{v:>11,}{ours[k] - v:>+9,}{100.0 * (ours[k] - v) / v:>+8.1f}%")
    return "\n".join(lines)
