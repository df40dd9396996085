"""Space features: great-circle distances, POI kNN, regions (square grid or H3), encodings.

Coordinates are WGS84 degrees. Distances are in kilometres on a sphere of radius
:data:`EARTH_RADIUS_KM` (the IUGG mean radius); the spherical error against the ellipsoid is
under 0.5 %, far below check-in GPS noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from stgnn.features.time import IntervalEncoding, log2_bucket

EARTH_RADIUS_KM = 6371.0088
N_DIST_BUCKETS = 16       # dist_bucket: log2 of 25 m units, 0 .. ~800 km
DIST_UNITS_PER_KM = 40.0  # dist_bucket's unit: 25 m
ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)


# ---------------------------------------------------------------------------------------------
# distances
# ---------------------------------------------------------------------------------------------
def haversine(lat1: ArrayT, lon1: ArrayT, lat2: ArrayT, lon2: ArrayT) -> ArrayT:
    r"""Great-circle distance in km, elementwise with broadcasting (numpy or torch).

    .. math::
        d = 2R \arcsin\sqrt{\sin^2\tfrac{\Delta\phi}{2} + \cos\phi_1\cos\phi_2\sin^2\tfrac{\Delta\lambda}{2}}

    Shapes: inputs broadcastable to ``(*)`` -> ``(*)``.
    """
    if isinstance(lat1, Tensor) or isinstance(lat2, Tensor):
        p1, l1, p2, l2 = (torch.deg2rad(torch.as_tensor(v, dtype=torch.float64 if not isinstance(v, Tensor)
                                                        else None)) for v in (lat1, lon1, lat2, lon2))
        a = torch.sin((p2 - p1) / 2) ** 2 + torch.cos(p1) * torch.cos(p2) * torch.sin((l2 - l1) / 2) ** 2
        return 2 * EARTH_RADIUS_KM * torch.asin(torch.sqrt(a.clamp(0.0, 1.0)))
    p1, l1, p2, l2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def haversine_or_zero(lat1: Tensor, lon1: Tensor, lat2: Tensor, lon2: Tensor) -> Tensor:
    """:func:`haversine` (torch) where an unknown (NaN) coordinate gives distance 0, the "near" bucket."""
    return torch.nan_to_num(haversine(lat1, lon1, lat2, lon2), nan=0.0)


def dist_bucket(km: Tensor) -> Tensor:
    """``(*)`` int64 :func:`~stgnn.features.time.log2_bucket` of a distance in 25 m units:
    0 -> 0, 25 m -> 1, 1 km -> 5, up to :data:`N_DIST_BUCKETS` - 1 (~800 km and beyond)."""
    return log2_bucket(km.clamp(min=0) * DIST_UNITS_PER_KM, N_DIST_BUCKETS)


@torch.no_grad()
def dist_bucket_table(lat: Tensor, lon: Tensor, chunk: int = 512) -> Tensor:
    """:func:`dist_bucket` of every pair of points, computed in row chunks (float64 distances).

    Shapes: ``(P,)``, ``(P,)`` -> ``(P, P)`` uint8 (25 MB for NYC's 5k POIs), on ``lat``'s device.
    """
    lat, lon = lat.double(), lon.double()
    out = torch.empty(len(lat), len(lat), dtype=torch.uint8, device=lat.device)
    for i in range(0, len(lat), chunk):
        d = haversine_or_zero(lat[i:i + chunk, None], lon[i:i + chunk, None], lat[None], lon[None])
        out[i:i + chunk] = dist_bucket(d).to(torch.uint8)
    return out


def dist_bucket_pairs(lat: Tensor, lon: Tensor, a: Tensor, b: Tensor, table: Tensor | None = None) -> Tensor:
    """:func:`dist_bucket` between points ``a`` and ``b`` (index tensors, broadcast) of
    ``(P,)`` coordinates: read from a :func:`dist_bucket_table` when one (non-empty) is given,
    else computed in float64. Shapes: ``broadcast(a, b)`` int64."""
    if table is not None and table.numel():
        return table[a, b].long()
    # gathered first: a step converts the pairs it reads, not all P coordinates
    return dist_bucket(haversine_or_zero(lat[a].double(), lon[a].double(), lat[b].double(), lon[b].double()))


def pairwise_haversine(lat1: ArrayT, lon1: ArrayT, lat2: ArrayT, lon2: ArrayT) -> ArrayT:
    """All-pairs great-circle distances in km.

    Shapes: ``(N,)`` and ``(M,)`` -> ``(N, M)``.
    """
    return haversine(lat1[:, None], lon1[:, None], lat2[None, :], lon2[None, :])


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """``(P, 3)`` points on the unit sphere; their chord length is monotone in great-circle distance."""
    p, lam = np.radians(np.asarray(lat, np.float64)), np.radians(np.asarray(lon, np.float64))
    return np.stack([np.cos(p) * np.cos(lam), np.cos(p) * np.sin(lam), np.sin(p)], axis=1)


def _check_coords(lat: np.ndarray, lon: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
    if lat.shape != lon.shape or lat.ndim != 1:
        raise ValueError(f"{what}: lat and lon must be 1-D of equal length, got {lat.shape} and {lon.shape}")
    bad = np.flatnonzero(~(np.isfinite(lat) & np.isfinite(lon)) | (np.abs(lat) > 90) | (np.abs(lon) > 180))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{what}: POI {i} has invalid coordinates ({lat[i]}, {lon[i]}); "
                         f"{len(bad)} such POIs in all (drop or fix them first)")
    return lat, lon


def knn_pois(lat: np.ndarray, lon: np.ndarray, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest other POIs of every POI by great-circle distance (exact).

    A KD-tree on 3-D unit vectors finds them: the chord length ``2 sin(d / 2R)`` is monotone in
    the great-circle distance ``d``, so nearest by chord is nearest on the sphere, with no
    planar-projection error. Ties (duplicate coordinates) are broken by the tree's order.

    Returns:
        ``edge_index`` ``(2, P*k)`` int64 in PyG's source-to-target order: row 0 the neighbour,
        row 1 the POI (so messages flow from neighbours to each POI), grouped by POI and nearest
        first; ``dist_km`` ``(P*k,)`` float32 the haversine distances.
    """
    from scipy.spatial import cKDTree

    lat, lon = _check_coords(lat, lon, "knn_pois")
    n = len(lat)
    if not 1 <= k < n:
        raise ValueError(f"knn_pois: need 1 <= k < number of POIs ({n}), got k={k}")
    xyz = unit_vectors(lat, lon)
    _, idx = cKDTree(xyz).query(xyz, k=k + 1)  # (P, k+1), usually self first
    keep = idx != np.arange(n)[:, None]
    # With more than k+1 identical points, self may fall outside the k+1 returned: drop the farthest.
    keep[keep.all(1), -1] = False
    nbr = idx[keep].reshape(n, k)  # (P, k)
    center = np.repeat(np.arange(n), k)
    src = nbr.reshape(-1)
    dist = haversine(lat[center], lon[center], lat[src], lon[src])
    edge_index = torch.from_numpy(np.stack([src, center]).astype(np.int64))
    return edge_index, torch.from_numpy(dist.astype(np.float32))


class DistanceIntervalEncoding(IntervalEncoding):
    """:class:`~stgnn.features.time.IntervalEncoding` of distances in **km** (default 10 m to 100 km)."""

    def __init__(self, dim: int, mode: str = "bucket", num_buckets: int = 32,
                 min_value: float = 0.01, max_value: float = 100.0) -> None:
        super().__init__(dim, mode, num_buckets, min_value, max_value)


# ---------------------------------------------------------------------------------------------
# regions
# ---------------------------------------------------------------------------------------------
@dataclass
class Regions:
    """A partition of POIs into regions.

    Attributes:
        region: ``(P,)`` int64 region of each POI.
        centroid_lat, centroid_lon: ``(R,)`` float64 centre of each region's cell.
        polygons: ``(R,)`` ``geopandas.GeoSeries`` of cell polygons in EPSG:4326 (lon, lat).
        names: ``(R,)`` object, a stable name per cell (grid: ``"g1km_r<row>_c<col>"``, H3: the cell id).
        method: ``"grid"`` or ``"h3"``, with its parameters in ``params``.
    """

    region: np.ndarray
    centroid_lat: np.ndarray
    centroid_lon: np.ndarray
    polygons: Any
    names: np.ndarray
    method: str
    params: dict[str, Any]

    @property
    def num_regions(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"Regions(method={self.method!r}, regions={self.num_regions}, pois={len(self.region)}, {self.params})"


def grid_regions(lat: np.ndarray, lon: np.ndarray, cell_km: float = 1.0, crs: str | None = None) -> Regions:
    """Square grid regions: cells of ``cell_km`` x ``cell_km`` in a metric projection.

    The grid is aligned to the projection's origin (cell ``(r, c)`` covers ``[c*s, (c+1)*s) x
    [r*s, (r+1)*s)`` metres, half-open), so a POI's cell does not depend on the other POIs. Only
    cells holding at least one POI become regions, numbered in ``(row, col)`` order.

    Args:
        cell_km: cell side in km.
        crs: projected CRS to draw the grid in; ``None`` picks the data's UTM zone when it spans
            at most 12 degrees of longitude (cells are true squares), else EPSG:6933 (equal-area
            world projection: equal-area cells, squares only near the equator).
    """
    import geopandas as gpd
    import shapely

    lat, lon = _check_coords(lat, lon, "grid_regions")
    if cell_km <= 0:
        raise ValueError(f"cell_km must be > 0, got {cell_km}")
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    if crs is None:
        crs = str(pts.estimate_utm_crs()) if np.ptp(lon) <= 12 else "EPSG:6933"
    proj = pts.to_crs(crs)
    size = cell_km * 1000.0
    col = np.floor(proj.x.to_numpy() / size).astype(np.int64)
    row = np.floor(proj.y.to_numpy() / size).astype(np.int64)
    cells, region = np.unique(np.stack([row, col], 1), axis=0, return_inverse=True)  # (R, 2), (P,)
    boxes = shapely.box(cells[:, 1] * size, cells[:, 0] * size, (cells[:, 1] + 1) * size, (cells[:, 0] + 1) * size)
    polys = gpd.GeoSeries(boxes, crs=crs)
    cent = polys.centroid.to_crs("EPSG:4326")
    names = np.array([f"g{cell_km:g}km_r{r}_c{c}" for r, c in cells], dtype=object)
    return Regions(region=region.reshape(-1).astype(np.int64), centroid_lat=cent.y.to_numpy(),
                   centroid_lon=cent.x.to_numpy(), polygons=polys.to_crs("EPSG:4326"), names=names,
                   method="grid", params={"cell_km": cell_km, "crs": crs})


def h3_available() -> bool:
    """True when the optional ``h3`` package imports."""
    try:
        import h3  # noqa: F401
    except ImportError:
        return False
    return True


def h3_regions(lat: np.ndarray, lon: np.ndarray, resolution: int = 8) -> Regions:
    """H3 hexagon regions (optional ``h3`` package, v3 or v4 API).

    Raises:
        ImportError: ``h3`` is not installed (``pip install h3``; or use :func:`grid_regions`).
    """
    try:
        import h3
    except ImportError as e:
        raise ImportError("H3 regions need the optional package 'h3' (pip install h3); "
                          "use method='grid' (grid_regions) without it") from e
    import geopandas as gpd
    import shapely

    lat, lon = _check_coords(lat, lon, "h3_regions")
    v4 = hasattr(h3, "latlng_to_cell")
    to_cell = h3.latlng_to_cell if v4 else h3.geo_to_h3
    to_center = h3.cell_to_latlng if v4 else h3.h3_to_geo
    to_boundary = h3.cell_to_boundary if v4 else h3.h3_to_geo_boundary
    cells = np.array([to_cell(a, b, resolution) for a, b in zip(lat, lon)], dtype=object)
    names, region = np.unique(cells.astype(str), return_inverse=True)
    centers = np.array([to_center(c) for c in names], dtype=np.float64).reshape(-1, 2)
    polys = gpd.GeoSeries([shapely.Polygon([(b, a) for a, b in to_boundary(c)]) for c in names], crs="EPSG:4326")
    return Regions(region=region.reshape(-1).astype(np.int64), centroid_lat=centers[:, 0],
                   centroid_lon=centers[:, 1], polygons=polys, names=names.astype(object),
                   method="h3", params={"resolution": resolution})


def assign_regions(lat: np.ndarray, lon: np.ndarray, method: str = "grid", **kw: Any) -> Regions:
    """Resolve ``method`` (``"grid"`` -> :func:`grid_regions`, ``"h3"`` -> :func:`h3_regions`)."""
    fns = {"grid": grid_regions, "h3": h3_regions}
    if method not in fns:
        raise ValueError(f"unknown region method {method!r}; valid: {sorted(fns)}")
    return fns[method](lat, lon, **kw)


_COMPASS = ("east", "north-east", "north", "north-west", "west", "south-west", "south", "south-east")


def compass_labels(lat: np.ndarray, lon: np.ndarray, center_lat: float, center_lon: float,
                   near_km: float = 1.0) -> list[str]:
    """Coarse human-readable locations for LM prompts: ``"3 km north-east of the centre"``.

    POIs within ``near_km`` of the centre get ``"near the centre"``; missing coordinates
    ``"at an unknown place"``. The bearing uses a local flat approximation (fine at city scale).
    """
    lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
    d = haversine(lat, lon, np.full_like(lat, center_lat), np.full_like(lon, center_lon))
    dy = lat - center_lat
    dx = (lon - center_lon) * math.cos(math.radians(center_lat))
    sector = np.round(np.nan_to_num(np.degrees(np.arctan2(dy, dx))) / 45.0).astype(np.int64) % 8
    out = []
    for di, si in zip(d, sector):
        if not np.isfinite(di):
            out.append("at an unknown place")
        elif di < near_km:
            out.append("near the centre")
        else:
            out.append(f"{di:.0f} km {_COMPASS[si]} of the centre")
    return out


# ---------------------------------------------------------------------------------------------
# coordinate encoding
# ---------------------------------------------------------------------------------------------
def standardise_coordinates(latlon: np.ndarray, ref_lat: np.ndarray, ref_lon: np.ndarray) -> np.ndarray:
    """Z-score ``(N, 2)`` lat/lon with the mean and std of reference coordinates (e.g. every
    located POI: coordinates carry no check-in information, so this leaks nothing).

    Shapes: ``(N, 2)`` -> ``(N, 2)`` float64.
    """
    mu = np.array([ref_lat.mean(), ref_lon.mean()]) if len(ref_lat) else np.zeros(2)
    sd = np.array([ref_lat.std(), ref_lon.std()]) if len(ref_lat) else np.ones(2)
    sd = np.where(sd > 0, sd, 1.0)
    return (latlon - mu) / sd


def coordinate_features(lat: np.ndarray, lon: np.ndarray, freqs: int = 4) -> np.ndarray:
    r"""Fixed multi-scale sinusoidal encoding of POI coordinates (the graph's POI node features).

    With :math:`z` the z-scored (lat, lon) (:func:`standardise_coordinates` over the located POIs),

    .. math::
        [z,\ \sin(w_f z),\ \cos(w_f z)]_{f < F},\ \text{missing}, \qquad w_f = 2^f \pi / 4,

    so the lowest frequency spans about ±4 std without wrapping. Rows of POIs without (finite)
    coordinates are zero with the missing flag set.

    Shapes: ``(P,)``, ``(P,)`` -> ``(P, 2 + 4 F + 1)`` float64.
    """
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    valid = np.isfinite(lat) & np.isfinite(lon)
    z = np.zeros((len(lat), 2))
    z[valid] = standardise_coordinates(np.stack([lat[valid], lon[valid]], 1), lat[valid], lon[valid])
    parts = [z]
    for f in range(freqs):
        w = (2.0 ** f) * math.pi / 4.0
        parts += [np.sin(w * z), np.cos(w * z)]
    enc = np.concatenate(parts, axis=1)
    enc[~valid] = 0.0
    return np.concatenate([enc, (~valid)[:, None].astype(np.float64)], axis=1)
