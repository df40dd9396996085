"""Is a split usable? An empty or degenerate split is an error naming the step that emptied it.

:func:`stgnn.data.dataset.prepare` calls :func:`require_usable` on every split it returns (and
never caches one that fails), so ``stgnn train`` on a protocol that filters everything away stops
with a message, not with NaN metrics.
"""
from __future__ import annotations

import numpy as np

from stgnn.data.split import Split


class SplitError(ValueError):
    """A protocol left a split empty or degenerate; the message names the step that emptied it."""


def require_usable(split: Split) -> None:
    """Refuse a split no model can be trained or evaluated on, naming the filter that emptied it.

    Required: at least 2 POIs, train and test samples, and val samples unless the protocol asks
    for no validation period (``fractions[1] == 0``).

    Raises:
        SplitError: the first empty part, with the counts that explain it and what to change.
    """
    p = split.protocol
    needed = ["train", "test"] + ([] if p.get("protocol") == "time_cut" and p["fractions"][1] == 0 else ["val"])
    for part in needed:
        if len(split.samples.get(part, ())) == 0:
            raise SplitError(f"dataset {split.name!r}: the {part} split is empty: {_why_empty(split, part)}")
    if split.num_pois < 2:
        raise SplitError(f"dataset {split.name!r}: only {split.num_pois} POI is left after the filters, so there "
                         "is nothing to rank; lower min_poi_checkins / min_user_checkins")


def _why_empty(split: Split, part: str) -> str:
    """The step of :func:`make_split` that left ``part`` without samples, and what to change."""
    s, p = split.stats, split.protocol
    n_in, after = s.get("rows_in", 0), s.get("after_filter", {}).get("checkins", 0)
    if n_in == 0:
        return "the table holds no check-ins"
    if after == 0:
        return (f"the frequency filters removed all {n_in:,} check-ins (POI filter min_poi_checkins="
                f"{p['min_poi_checkins']}: {s.get('removed_by_poi_filter', 0):,}, user filter min_user_checkins="
                f"{p['min_user_checkins']}: {s.get('removed_by_user_filter', 0):,}); lower them, "
                "e.g. --set min_poi_checkins=2 --set min_user_checkins=2")
    if s.get("short_trajectory_checkins_removed", 0) >= after:
        return (f"all {after:,} check-ins left by the filters fell in trajectories shorter than min_traj_len="
                f"{p['min_traj_len']} (a gap over traj_gap_hours={p['traj_gap_hours']} h starts a new "
                "trajectory); raise traj_gap_hours or lower min_traj_len")
    in_part = s.get(part, {}).get("checkins", 0)
    if p.get("protocol") == "files":  # membership came from the files
        files = s.get("presplit", {}).get("files", [])
        return (f"the pre-split set ({', '.join(files)}) gives {s.get('presplit', {}).get(f'{part}_file_checkins', 0):,} "
                f"{part} check-ins, {s.get(f'{part}_candidates', in_part):,} of them candidates "
                f"({s.get(f'{part}_removed_unseen_user', 0):,} removed as unseen users, "
                f"{s.get(f'{part}_removed_unseen_poi', 0):,} as unseen POIs); check the {part} file")
    if part == "train":
        if in_part == 0:
            distinct = len(np.unique(split.ts))
            return (f"the time cut put no check-in before train_end={split.cuts.get('train_end')} ("
                    f"{distinct} distinct timestamp{'s' * (distinct != 1)} among {split.num_checkins:,} "
                    "check-ins); the data needs times spread over a period")
        return (f"no train check-in has min_train_prefix={p['min_train_prefix']} earlier check-ins in its "
                "trajectory; lower min_train_prefix or raise traj_gap_hours")
    cand = s.get(f"{part}_candidates", 0)
    if cand == 0:
        return (f"no trajectory ends in the {part} period with min_eval_prefix={p['min_eval_prefix']} earlier "
                f"check-ins ({in_part:,} {part} check-ins); use more data, or change fractions / min_eval_prefix")
    return (f"all {cand:,} {part} candidates were removed: {s.get(f'{part}_removed_unseen_user', 0):,} of users and "
            f"{s.get(f'{part}_removed_unseen_poi', 0):,} of POIs unseen in training, "
            f"{s.get(f'{part}_removed_prefix_emptied', 0):,} whose prefix was emptied; keep_unseen=true keeps "
            "cold-start samples")
