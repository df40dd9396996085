"""Time-windowed snapshots of the heterogeneous graph, and their torch-geometric-temporal view.

Snapshot ``i`` ends at ``end_i = t0 + window + i * stride`` (``t0``: the first counted check-in,
unless ``start_ts`` is given) and uses only check-ins with ``ts < end_i`` (``"cumulative"``)
or ``end_i - window <= ts < end_i`` (``"sliding"``), always within ``parts`` (default: training
period). Snapshots continue until one ends after the last counted check-in, so every counted
check-in is inside the last cumulative snapshot.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch_geometric.data import HeteroData

from stgnn.data.split import Split
from stgnn.graph.hetero import NEXT, build_hetero_graph, checkin_mask, static_parts

DAY_S = 86_400
MODES = ("cumulative", "sliding")


def snapshot_ends(split: Split, window_days: float, stride_days: float, *, parts: Sequence[int] = (0,),
                  start_ts: int | None = None, end_ts: int | None = None) -> list[int]:
    """End times (UTC s, exclusive) of the snapshots :func:`make_snapshots` builds."""
    if window_days <= 0 or stride_days <= 0:
        raise ValueError(f"window_days and stride_days must be > 0; got {window_days}, {stride_days}")
    ts = split.ts[checkin_mask(split, parts, end_ts)]
    if not len(ts):
        return []
    t0 = int(ts.min()) if start_ts is None else int(start_ts)
    last = int(ts.max())
    window, stride = int(round(window_days * DAY_S)), int(round(stride_days * DAY_S))
    ends, e = [], t0 + window
    while True:
        ends.append(e if end_ts is None else min(e, int(end_ts)))
        if e > last or (end_ts is not None and e >= end_ts):
            break
        e += stride
    return ends


def make_snapshots(split: Split, window_days: float, stride_days: float, mode: str = "cumulative", *,
                   parts: Sequence[int] = (0,), start_ts: int | None = None, end_ts: int | None = None,
                   **build_kwargs: Any) -> list[HeteroData]:
    """One :func:`~stgnn.graph.hetero.build_hetero_graph` per window (static parts computed once).

    Args:
        split: the data.
        window_days: window length; in cumulative mode only the first snapshot's span.
        stride_days: distance between consecutive snapshot ends.
        mode: ``"cumulative"`` (everything before the end) or ``"sliding"`` (the last window).
        parts: periods that count (default training only).
        start_ts, end_ts: optional bounds (UTC s) of the timeline.
        **build_kwargs: passed to ``build_hetero_graph`` (``poi_text_emb``, ``knn_k``, ...).

    Returns:
        the snapshots, each with ``snapshot_start`` / ``snapshot_end`` (UTC s) attributes.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; choose one of {MODES}")
    static = static_parts(split, knn_k=build_kwargs.pop("knn_k", 10),
                          region_cell_km=build_kwargs.pop("region_cell_km", 1.0),
                          coord_freqs=build_kwargs.pop("coord_freqs", 4))
    window = int(round(window_days * DAY_S))
    out = []
    for end in snapshot_ends(split, window_days, stride_days, parts=parts, start_ts=start_ts, end_ts=end_ts):
        since = end - window if mode == "sliding" else start_ts
        g = build_hetero_graph(split, until_ts=end, since_ts=since, parts=parts, static=static, **build_kwargs)
        g.snapshot_start = since
        g.snapshot_end = end
        out.append(g)
    return out


def to_temporal_signal(snapshots: Sequence[HeteroData], edge_type: tuple[str, str, str] = NEXT, *,
                       weight: str = "log_count", features: str = "x", target: str = "next_popularity"):
    """Homogeneous POI view of the snapshots as a ``DynamicGraphTemporalSignal``.

    Step ``i`` carries snapshot ``i``'s ``edge_type`` edges (``edge_index (2, E_i)``), their
    weights (``"count"``, ``"log_count"`` = log1p(count), or ``"ones"``), POI features
    ``(P, F)`` (the ``poi`` store's ``features`` attribute) and a target ``(P,)``:

    * ``"next_popularity"``: the *next* snapshot's ``poi.popularity`` (log1p of its counted check-ins;
      a forecasting target, so the signal has ``len(snapshots) - 1`` steps);
    * ``"popularity"``: the snapshot's own ``poi.popularity`` (``len(snapshots)`` steps).

    Recurrent cells of ``torch_geometric_temporal.nn.recurrent`` (GConvGRU, TGCN, EvolveGCNO)
    iterate over it directly.
    """
    from torch_geometric_temporal.signal import DynamicGraphTemporalSignal

    if edge_type[0] != "poi" or edge_type[2] != "poi":
        raise ValueError(f"edge_type must join POIs to POIs for a homogeneous POI signal; got {edge_type}")
    if target not in ("next_popularity", "popularity"):
        raise ValueError(f"target={target!r}; choose 'next_popularity' or 'popularity'")
    steps = len(snapshots) - 1 if target == "next_popularity" else len(snapshots)
    edge_indices, edge_weights, feats, targets = [], [], [], []
    for i in range(max(steps, 0)):
        g = snapshots[i]
        store = g[edge_type]
        count = store["count"].float() if "count" in store else torch.ones(store.edge_index.size(1))
        w = {"count": count, "log_count": torch.log1p(count), "ones": torch.ones_like(count)}.get(weight)
        if w is None:
            raise ValueError(f"weight={weight!r}; choose 'count', 'log_count' or 'ones'")
        edge_indices.append(store.edge_index.numpy())
        edge_weights.append(w.numpy().astype(np.float32))
        feats.append(g["poi"][features].numpy().astype(np.float32))
        if target == "popularity":
            targets.append(g["poi"].popularity.view(-1).numpy().astype(np.float32))
        else:
            targets.append(snapshots[i + 1]["poi"].popularity.view(-1).numpy().astype(np.float32))
    return DynamicGraphTemporalSignal(edge_indices, edge_weights, feats, targets)


def transition_snapshots(split: Split, window_days: float = 7.0, count: int = 8, *,
                         parts: Sequence[int] = (0,)) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The POI→POI transition graphs of the last ``count`` sliding windows, oldest first.

    A light alternative to :func:`make_snapshots` for models that only need the dynamic
    transition graph (e.g. a recurrent graph cell over weeks): window ``i`` holds the
    consecutive check-in pairs of one trajectory with both check-ins in
    ``[end_i - window, end_i)`` and in ``parts`` (training only by default, so leakage-safe).

    Returns:
        ``[(edge_index (2, E_i) int64, count (E_i,) int64), ...]``, at most ``count`` entries.
    """
    from stgnn.graph.hetero import transition_edges

    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    window = int(round(window_days * DAY_S))
    out = []
    for end in snapshot_ends(split, window_days, window_days, parts=parts)[-count:]:
        src, dst, n, *_ = transition_edges(split, checkin_mask(split, parts, until_ts=end, since_ts=end - window))
        out.append((torch.from_numpy(np.stack([src, dst])).long().view(2, -1), torch.from_numpy(n).long()))
    return out
