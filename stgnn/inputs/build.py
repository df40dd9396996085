"""The builder: a :class:`~stgnn.data.split.Split` in, the :class:`ModelInputs` a model asked for out.

Everything here reads the training period only (``part == 0`` check-ins) plus static POI
metadata (coordinates, categories, texts), so what a model is built from predates every
val/test target (the leakage rule of DESIGN.md). The one exception, asked for with
``InputSpec.visible_counts``, is an index of every check-in a sample may see under the split's
history setting, which the model queries strictly before each sample's query time
(:class:`~stgnn.features.history.VisibleCounts`). Recipes call :func:`build_inputs` once per run
(or once for all runs that share a split and a spec) and hand the result to every model.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stgnn.data.information import InformationSetting
from stgnn.data.split import PARTS, Split
from stgnn.features.history import VisibleCounts
from stgnn.features.intent import poi_labels, split_intent_texts
from stgnn.features.profiles import poi_texts
from stgnn.features.space import dist_bucket_table
from stgnn.features.text import TextEncoder, make_text_encoder
from stgnn.graph.hetero import build_hetero_graph
from stgnn.graph.snapshots import transition_snapshots
from stgnn.inputs.model_inputs import InputSpec, ModelInputs, TrainStats

TRAIN_PARTS = (PARTS["train"],)


def train_stats(split: Split) -> TrainStats:
    """Counts, transitions, (user, POI) pairs and the longest trajectory span of the training period."""
    P = split.num_pois
    train = split.part == PARTS["train"]
    counts = np.bincount(split.poi[train], minlength=P)                              # (P,)
    same = (split.traj[1:] == split.traj[:-1]) & train[1:] & train[:-1]              # (N-1,)
    src, dst = split.poi[:-1][same], split.poi[1:][same]
    pairs, n = np.unique(src * P + dst, return_counts=True)                          # sorted by (src, dst)
    visits = np.unique(np.stack((split.user[train], split.poi[train]), 1), axis=0)   # (V, 2)
    t = torch.from_numpy
    return TrainStats(
        poi_count=t(counts.astype(np.int64)),
        trans_src=t((pairs // P).astype(np.int64)), trans_dst=t((pairs % P).astype(np.int64)),
        trans_count=t(n.astype(np.int64)),
        visit_user=t(visits[:, 0].astype(np.int64)), visit_poi=t(visits[:, 1].astype(np.int64)),
        longest_trajectory_s=_longest_span_s(split, train))


def _longest_span_s(split: Split, train: np.ndarray) -> int:
    """Longest first-to-last time span (s) of a trajectory, over training check-ins only."""
    traj, ts = split.traj[train], split.ts[train]
    if len(traj) == 0:
        return 0
    first = np.full(split.num_trajectories, np.iinfo(np.int64).max)
    last = np.full(split.num_trajectories, np.iinfo(np.int64).min)
    np.minimum.at(first, traj, ts)
    np.maximum.at(last, traj, ts)
    ok = last >= first
    return int((last[ok] - first[ok]).max())


def poi_text_vectors(split: Split, encoder: str | TextEncoder, profile: bool = True) -> torch.Tensor:
    """``(P, D)`` float32 vectors of every POI's text (its training-period profile when ``profile``)."""
    return make_text_encoder(encoder).encode(poi_texts(split, profile=profile))


def build_inputs(split: Split, spec: InputSpec | None = None, *,
                 text_encoder: TextEncoder | None = None) -> ModelInputs:
    """Build what a model asked for with ``spec``, from ``split``'s training period.

    Args:
        split: the data.
        spec: the model's :class:`InputSpec` (``Recommender.input_spec(**kwargs)``); default:
            statistics and POI metadata only.
        text_encoder: an encoder to use instead of ``make_text_encoder(spec.text)`` (e.g. one
            already loaded, or a test double); used for ``spec.text`` and ``spec.intent``.

    Returns:
        :class:`ModelInputs` holding exactly the parts ``spec`` names.
    """
    spec = spec or InputSpec()
    out = ModelInputs(
        num_users=split.num_users, num_pois=split.num_pois, num_categories=split.num_categories,
        poi_lat=torch.as_tensor(np.asarray(split.poi_lat, dtype=np.float64)),
        poi_lon=torch.as_tensor(np.asarray(split.poi_lon, dtype=np.float64)),
        poi_category=torch.as_tensor(np.asarray(split.poi_category, dtype=np.int64)),
        stats=train_stats(split), spec=spec, source=_source(split),
        user_ids=[str(u) for u in split.user_ids], poi_ids=[str(p) for p in split.poi_ids],
        category_names=[str(c) for c in split.category_names])
    if spec.graph:
        out.graph = build_hetero_graph(split, parts=TRAIN_PARTS)
    if spec.snapshots > 0:
        out.snapshots = transition_snapshots(split, spec.snapshot_days, spec.snapshots, parts=TRAIN_PARTS)
    if 0 < split.num_pois <= spec.dist_table_max_pois:
        # from float32 coordinates, as a model holds them, so both compute the same table
        out.dist_table = dist_bucket_table(out.poi_lat.float(), out.poi_lon.float())
    if spec.text is not None:
        out.text = poi_text_vectors(split, text_encoder if text_encoder is not None else spec.text, spec.text_profile)
    if spec.intent is not None:
        enc = make_text_encoder(text_encoder if text_encoder is not None else spec.intent)
        out.intent_labels = poi_labels(split)
        # every sample's text in one call: the training loop then only reads the vector cache
        enc.encode(split_intent_texts(split, out.intent_labels, spec.intent_items))
        out.intent_dim, out.intent_encoder = enc.dim, enc
    if spec.visible_counts:
        out.visible = VisibleCounts.from_split(split, InformationSetting.from_protocol(split.protocol).history)
    return out


def _source(split: Split) -> dict[str, Any]:
    return {"split": split.name, "fingerprint": split.fingerprint(), "protocol": dict(split.protocol)}
