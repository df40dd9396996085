"""A split given by files: a pre-split train/val/test set keeps its own membership and trajectories.

GETNext's ``NYC_train.csv`` / ``NYC_val.csv`` / ``NYC_test.csv`` are the files STHGCN, LLM4POI,
GNPR-SID and GA-LLM evaluate on (STHGCN's ``preprocess_nyc`` reads them, renames the columns by
position and concatenates them). :mod:`stgnn.data.sources.presplit` reads such a set into a
:class:`PresplitTable`: a :class:`~stgnn.data.schema.CheckinTable` plus, per check-in, the file
it came from (its part) and its trajectory id. :func:`stgnn.data.protocol.make_split` hands such a
table to :func:`make_file_split`, which builds the :class:`~stgnn.data.split.Split` as STHGCN's
NYC preprocessing forms samples:

* **Membership** is the file's: train file -> part 0, val -> 1, test -> 2. No frequency filter,
  no trajectory gap, no time cut, no short-trajectory removal: the files are already the
  benchmark (``min_*_checkins``, ``filter_*``, ``traj_gap_hours``, ``fractions``, ``span`` and
  ``min_traj_len`` do not apply; the split records ``protocol="files"``).
* **Trajectories** are the files' trajectory ids, over all three files (one id in the train and
  the test file is one trajectory, as STHGCN concatenates the files before grouping by it),
  ordered by UTC time within a trajectory; trajectories of a user by their first check-in.
* **Samples** (steps 5 and 6 of :mod:`stgnn.data.protocol`, shared code): train = every train
  check-in with ``min_train_prefix`` earlier check-ins in its trajectory (STHGCN
  ``ignore_first``); val/test = the last check-in of each trajectory if it lies in the val/test
  file, with ``min_eval_prefix`` earlier ones (``only_keep_last``); val/test samples of a user or
  POI absent from the train samples are removed (``remove_unseen_user_poi``;
  ``seen_from="train_targets"``).

Differences from STHGCN's code, stated: STHGCN orders by *local* time (``UTCTimeOffset``), we by
UTC (the same order inside a trajectory unless it crosses a DST change). STHGCN keeps an unseen
POI inside a val/test prefix as a padding id; under ``unseen_context="drop"`` (our default) such
check-ins leave the prefix and a sample whose prefix empties is removed (counted in
``stats["test_removed_prefix_emptied"]``); ``unseen_context="keep"`` keeps them as context
(``part == -1``) and removes no sample, so the sample counts are STHGCN's.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stgnn.data.codes import string_rank
from stgnn.data.protocol import ProtocolConfig, assemble_split, choose_samples
from stgnn.data.schema import CheckinTable
from stgnn.data.split import PARTS, Split

#: options of :class:`ProtocolConfig` that a split given by files ignores
IGNORED_OPTIONS = ("min_user_checkins", "min_poi_checkins", "filter_rounds", "filter_order", "traj_gap_hours",
                   "fractions", "span", "min_traj_len")


@dataclass(repr=False, eq=False)  # CheckinTable's short repr; arrays have no ==
class PresplitTable(CheckinTable):
    """Check-ins of a pre-split file set with their membership (aligned with ``df``'s rows).

    Args:
        part: ``(N,)`` int8 0 train / 1 val / 2 test: the file each check-in came from.
        traj_id: ``(N,)`` object, the file's trajectory id of each check-in.
        files: the train, val and test file paths, in that order.

    ``df`` must already be in the contract's ``(ts, user)`` order (the loader sorts it once), so
    :class:`CheckinTable` does not reorder it and the arrays stay aligned (checked).
    """

    part: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    traj_id: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        users, ts = self.df["user"].astype(str).to_numpy(), self.df["ts"].to_numpy()
        super().__post_init__()
        if not (len(self.df) == len(self.part) == len(self.traj_id)
                and np.array_equal(self.df["ts"].to_numpy(), ts)
                and np.array_equal(self.df["user"].astype(str).to_numpy(), users)):
            raise ValueError("PresplitTable: rows must come in (ts, user) order with part/traj_id aligned")

    def split_from_files(self, cfg: ProtocolConfig | None = None, name: str | None = None) -> Split:
        return make_file_split(self, cfg, name)


def make_file_split(table: PresplitTable, cfg: ProtocolConfig | None = None, name: str | None = None) -> Split:
    """The :class:`Split` of a pre-split file set (see the module docstring for the rules).

    Args:
        table: the check-ins with their files' membership and trajectory ids.
        cfg: protocol options; only the sample options apply (``min_train_prefix``,
            ``min_eval_prefix``, ``eval_last_only``, ``seen_from``, ``keep_unseen``,
            ``unseen_context``) besides the information setting (``history``, ``target_time``).
        name: dataset name (default ``table.name``).

    Raises:
        ValueError: ``cfg.protocol == "leave_last"`` (a split given by files cannot be re-cut).
    """
    cfg = cfg or ProtocolConfig()
    if cfg.protocol == "leave_last":
        raise ValueError(f"protocol=leave_last cannot apply to {table.source}: a pre-split file set keeps the "
                         "membership of its files (protocol 'files'); drop the protocol option")
    cfg = dataclasses.replace(cfg, protocol="files")
    df = table.df
    stats: dict[str, Any] = {"rows_in": len(df), "users_in": table.num_users, "pois_in": table.num_pois,
                             "presplit": {"files": list(table.files), "ignored_options": list(IGNORED_OPTIONS),
                                          **{f"{k}_file_checkins": int((table.part == c).sum())
                                             for k, c in PARTS.items()}}}
    user_code, user_uniq = string_rank(df["user"])
    poi_code, poi_uniq = string_rank(df["poi"])
    traj_code, _ = string_rank(table.traj_id)
    ts_all = df["ts"].to_numpy(np.int64)
    n = len(df)
    # Trajectories of a user by their first check-in (ties: trajectory id), check-ins by time, then
    # file order (train, val, test) and row: the loader has refused overlapping trajectories, so
    # each user's block is time-ordered too.
    t_start = np.full(int(traj_code.max(initial=-1)) + 1, np.iinfo(np.int64).max)
    np.minimum.at(t_start, traj_code, ts_all)
    rows = np.lexsort((np.arange(n), table.part, ts_all, traj_code, t_start[traj_code], user_code))
    u, p, ts, part, tc = user_code[rows], poi_code[rows], ts_all[rows], table.part[rows].astype(np.int8), traj_code[rows]
    start = np.ones(n, dtype=bool)
    start[1:] = tc[1:] != tc[:-1]
    stats["after_filter"] = {"users": len(user_uniq), "pois": len(poi_uniq), "checkins": n}
    stats["trajectories_after_filter"] = int(start.sum())
    stats["short_trajectories_removed"] = stats["short_trajectory_checkins_removed"] = 0
    stats["removed_by_poi_filter"] = stats["removed_by_user_filter"] = 0

    rows, u, p, ts, part, start, traj, train_target, eval_target, seen_u, seen_p = choose_samples(
        rows, u, p, ts, part, start, len(user_uniq), len(poi_uniq), cfg, stats)
    return assemble_split(table, df, rows, u, p, ts, part, start, traj, train_target, eval_target,
                     seen_u, seen_p, user_uniq, poi_uniq, cfg, {}, stats, name)
