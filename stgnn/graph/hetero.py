"""The spatiotemporal heterogeneous graph of a :class:`~stgnn.data.split.Split`.

Node types and what they carry (``P`` POIs, ``U`` users, ``C`` categories, ``R`` regions):

=========== ====================================================================================
``user``    ``x (U, 1)`` log1p of the user's check-ins counted (activity)
``poi``     ``x (P, D_text + D_coord + 1)`` = [text embedding if given, coordinate encoding,
            log1p popularity]; also ``text``, ``coord``, ``popularity (P, 1)``, ``count (P,)``,
            ``pos (P, 2)`` lat/lon degrees, ``category (P,)``, ``region (P,)`` (-1: no coordinates)
``category`` ``x``: the category text embedding if given, else one-hot ``(C, C)``
``region``  ``x (R, 3)`` = [standardised centroid lat, lon, log1p #POIs]; ``pos (R, 2)`` degrees
=========== ====================================================================================

Edge types (``edge_index[0]`` is the source):

* ``(user, visits, poi)``: one edge per visited pair; ``count (E,)``, ``edge_attr (E, 1)`` = count,
  ``time (E,)`` = the **last** counted visit (UTC s).
* ``(poi, next, poi)``: consecutive check-ins of one trajectory; ``count``, ``time`` = the last
  counted transition's arrival time, ``edge_attr (E, 3)`` = [count, mean, median] of the
  log1p gap in minutes.
* ``(poi, near, poi)``: the ``knn_k`` nearest POIs by great-circle distance (source = the
  neighbor, destination = the POI, so every POI receives ``k`` messages); ``edge_attr (E, 1)`` km.
* ``(poi, in, region)``: grid cell of ``region_cell_km``; ``(poi, is_a, category)``.
* ``(dst, rev_<rel>, src)`` for each of them (``add_reverse``), same attributes.

Leakage rule: only check-ins with ``part in parts`` (default: the training period) and
``since_ts <= ts < until_ts`` (when given) make visits, transitions, counts and popularity.
``time`` is the last contributing check-in, so a temporal sampler that keeps edges with
``time < t`` never shows anything counted at or after ``t``. near / in / is_a come from
coordinates and categories only (static, no check-in information).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from stgnn.data.split import Split
from stgnn.features.space import coordinate_features, grid_regions, knn_pois, standardise_coordinates

VISITS = ("user", "visits", "poi")
NEXT = ("poi", "next", "poi")
NEAR = ("poi", "near", "poi")
IN_REGION = ("poi", "in", "region")
IS_A = ("poi", "is_a", "category")


@dataclass
class StaticParts:
    """What does not depend on check-ins: coordinates, kNN, regions (shared by snapshots).

    Shapes: ``coord (P, D_coord)`` float32, ``near_index (2, E_near)``, ``near_km (E_near,)``,
    ``poi_region (P,)`` (-1: no coordinates), ``region_pos (R, 2)`` cell centres in degrees,
    ``region_x (R, 3)``.
    """

    coord: Tensor
    near_index: Tensor
    near_km: Tensor
    poi_region: Tensor
    region_pos: Tensor
    region_x: Tensor


def checkin_mask(split: Split, parts: Sequence[int] = (0,), until_ts: int | None = None,
                 since_ts: int | None = None) -> np.ndarray:
    """``(N,)`` bool: the check-ins a graph may use (``part in parts``, ``since <= ts < until``)."""
    m = np.isin(split.part, np.asarray(list(parts), dtype=split.part.dtype))
    if until_ts is not None:
        m &= split.ts < until_ts
    if since_ts is not None:
        m &= split.ts >= since_ts
    return m


# ---------------------------------------------------------------------- static parts
def static_parts(split: Split, *, knn_k: int = 10, region_cell_km: float = 1.0,
                 coord_freqs: int = 4) -> StaticParts:
    """Coordinate encoding, kNN edges and grid regions of ``split``'s POIs."""
    lat = np.asarray(split.poi_lat, dtype=np.float64)
    lon = np.asarray(split.poi_lon, dtype=np.float64)
    valid = np.isfinite(lat) & np.isfinite(lon)
    coord = coordinate_features(lat, lon, coord_freqs)
    src, dst, km = _knn(lat, lon, valid, knn_k)
    region, region_pos, n_in = _regions(lat, lon, valid, region_cell_km)
    rz = standardise_coordinates(region_pos, lat[valid], lon[valid]) if len(region_pos) else np.zeros((0, 2))
    region_x = np.concatenate([rz, np.log1p(n_in)[:, None]], axis=1) if len(region_pos) else np.zeros((0, 3))
    return StaticParts(
        coord=torch.from_numpy(coord).float(),
        near_index=torch.from_numpy(np.stack([src, dst])).long(),
        near_km=torch.from_numpy(km).float(),
        poi_region=torch.from_numpy(region).long(),
        region_pos=torch.from_numpy(region_pos).float(),
        region_x=torch.from_numpy(region_x).float(),
    )


def _knn(lat: np.ndarray, lon: np.ndarray, valid: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges ``neighbor -> poi`` to each located POI's ``k`` nearest others, distances in km."""
    idx_valid = np.flatnonzero(valid)
    k = min(k, len(idx_valid) - 1)
    if k <= 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0)
    edge_index, km = knn_pois(lat[idx_valid], lon[idx_valid], k)  # indices into idx_valid
    ei = idx_valid[edge_index.numpy()]
    return ei[0], ei[1], km.numpy().astype(np.float64)


def _regions(lat: np.ndarray, lon: np.ndarray, valid: np.ndarray, cell_km: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid regions: ``(P,)`` region of each POI (-1 without coordinates), ``(R, 2)`` cell
    centres (lat, lon), ``(R,)`` #POIs. Only non-empty cells are regions (see ``grid_regions``)."""
    region = np.full(len(lat), -1, dtype=np.int64)
    if not valid.any():
        return region, np.zeros((0, 2)), np.zeros(0)
    regions = grid_regions(lat[valid], lon[valid], cell_km)
    region[valid] = regions.region
    pos = np.stack([regions.centroid_lat, regions.centroid_lon], 1)
    n_in = np.bincount(regions.region, minlength=regions.num_regions).astype(np.float64)
    return region, pos, n_in


# ---------------------------------------------------------------------- check-in derived parts
def _group_sorted(key: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort by ``(key, value)``; return sorted values, unique keys, group starts, group sizes."""
    order = np.lexsort((value, key))
    k, v = key[order], value[order]
    uniq, start, size = np.unique(k, return_index=True, return_counts=True)
    return v, uniq, start, size


def _visit_edges(user: np.ndarray, poi: np.ndarray, ts: np.ndarray, num_pois: int):
    """``(user, poi)`` pairs with counts and last visit time."""
    key = user * num_pois + poi
    t_sorted, uniq, start, size = _group_sorted(key, ts)
    last = t_sorted[start + size - 1] if len(uniq) else np.zeros(0, dtype=np.int64)
    return uniq // num_pois, uniq % num_pois, size, last


def transition_edges(split: Split, mask: np.ndarray):
    """Consecutive counted check-ins of one trajectory -> ``(src, dst, count, last time, mean, median)``."""
    P = split.num_pois
    j = np.flatnonzero((split.traj[:-1] == split.traj[1:]) & mask[:-1] & mask[1:])
    src, dst = split.poi[j], split.poi[j + 1]
    gap_min = (split.ts[j + 1] - split.ts[j]).astype(np.float64) / 60.0
    lg = np.log1p(np.maximum(gap_min, 0.0))
    key = src * P + dst
    lg_sorted, uniq, start, size = _group_sorted(key, lg)
    if not len(uniq):
        z = np.zeros(0)
        return z.astype(np.int64), z.astype(np.int64), z.astype(np.int64), z.astype(np.int64), z, z
    mean = np.add.reduceat(lg_sorted, start) / size
    median = 0.5 * (lg_sorted[start + (size - 1) // 2] + lg_sorted[start + size // 2])
    t_sorted, _, tstart, tsize = _group_sorted(key, split.ts[j + 1])
    last = t_sorted[tstart + tsize - 1]
    return uniq // P, uniq % P, size, last, mean, median


# ---------------------------------------------------------------------- build
def build_hetero_graph(
    split: Split,
    *,
    until_ts: int | None = None,
    since_ts: int | None = None,
    parts: Sequence[int] = (0,),
    poi_text_emb: Tensor | None = None,
    category_text_emb: Tensor | None = None,
    knn_k: int = 10,
    region_cell_km: float = 1.0,
    coord_freqs: int = 4,
    add_reverse: bool = True,
    static: StaticParts | None = None,
) -> HeteroData:
    """Build the heterogeneous graph of ``split`` from the check-ins the leakage rule allows.

    Args:
        split: the integer-indexed data.
        until_ts: only check-ins with ``ts < until_ts`` count (UTC s; ``None``: no bound).
        since_ts: only check-ins with ``ts >= since_ts`` count (sliding snapshots).
        parts: which periods count (default ``(0,)``: training only).
        poi_text_emb: ``(P, D)`` POI text embeddings (computed elsewhere), prepended to ``poi.x``.
        category_text_emb: ``(C, D')`` category embeddings; default one-hot.
        knn_k: neighbors per POI of ``(poi, near, poi)``.
        region_cell_km: grid cell size of the regions.
        coord_freqs: sin/cos octaves of the coordinate encoding.
        add_reverse: add ``(dst, rev_<rel>, src)`` for every edge type.
        static: precomputed :func:`static_parts` (snapshots reuse one).

    Returns:
        a :class:`~torch_geometric.data.HeteroData` (see the module docstring for its contents);
        ``data.graph_info`` records the window, parts and the number of check-ins used.
    """
    P, U, C = split.num_pois, split.num_users, split.num_categories
    if static is None:
        static = static_parts(split, knn_k=knn_k, region_cell_km=region_cell_km, coord_freqs=coord_freqs)
    if poi_text_emb is not None and tuple(poi_text_emb.shape[:1]) != (P,):
        raise ValueError(f"poi_text_emb has {poi_text_emb.shape[0]} rows; the split has {P} POIs")
    if category_text_emb is not None and tuple(category_text_emb.shape[:1]) != (C,):
        raise ValueError(f"category_text_emb has {category_text_emb.shape[0]} rows; the split has {C} categories")

    mask = checkin_mask(split, parts, until_ts, since_ts)
    user, poi, ts = split.user[mask], split.poi[mask], split.ts[mask]
    data = HeteroData()

    # Nodes ---------------------------------------------------------------------------------
    poi_count = np.bincount(poi, minlength=P)
    pop = torch.from_numpy(np.log1p(poi_count)).float().view(-1, 1)  # (P, 1)
    xs = [static.coord, pop]
    if poi_text_emb is not None:
        data["poi"].text = poi_text_emb.float()
        xs.insert(0, poi_text_emb.float())
    data["poi"].x = torch.cat(xs, dim=1)
    data["poi"].coord = static.coord
    data["poi"].popularity = pop
    data["poi"].count = torch.from_numpy(poi_count).long()
    data["poi"].pos = torch.from_numpy(np.stack([split.poi_lat, split.poi_lon], 1)).float()
    data["poi"].category = torch.from_numpy(np.asarray(split.poi_category)).long()
    data["poi"].region = static.poi_region

    data["user"].x = torch.from_numpy(np.log1p(np.bincount(user, minlength=U))).float().view(-1, 1)
    data["category"].x = (category_text_emb.float() if category_text_emb is not None
                          else torch.eye(C, dtype=torch.float32))
    data["region"].x = static.region_x
    data["region"].pos = static.region_pos

    # Edges ---------------------------------------------------------------------------------
    vu, vp, vc, vt = _visit_edges(user, poi, ts, P)
    data[VISITS].edge_index = torch.from_numpy(np.stack([vu, vp])).long()
    data[VISITS].count = torch.from_numpy(vc).long()
    data[VISITS].edge_attr = torch.from_numpy(vc).float().view(-1, 1)
    data[VISITS].time = torch.from_numpy(vt).long()

    ns, nd, nc, nt, nmean, nmed = transition_edges(split, mask)
    data[NEXT].edge_index = torch.from_numpy(np.stack([ns, nd])).long()
    data[NEXT].count = torch.from_numpy(nc).long()
    data[NEXT].edge_attr = torch.from_numpy(np.stack([nc, nmean, nmed], 1)).float().view(-1, 3)
    data[NEXT].time = torch.from_numpy(nt).long()

    data[NEAR].edge_index = static.near_index
    data[NEAR].edge_attr = static.near_km.view(-1, 1)

    has_region = static.poi_region >= 0
    data[IN_REGION].edge_index = torch.stack([torch.nonzero(has_region).view(-1), static.poi_region[has_region]])

    cat = data["poi"].category
    has_cat = cat >= 0
    data[IS_A].edge_index = torch.stack([torch.nonzero(has_cat).view(-1), cat[has_cat]])

    if add_reverse:
        for et in list(data.edge_types):
            src, rel, dst = et
            rev = data[dst, f"rev_{rel}", src]
            for key, value in data[et].items():
                rev[key] = value.flip(0) if key == "edge_index" else value

    data.graph_info = {
        "parts": [int(p) for p in parts],
        "until_ts": None if until_ts is None else int(until_ts),
        "since_ts": None if since_ts is None else int(since_ts),
        "num_checkins": int(mask.sum()),
    }
    return data
