"""POI coordinates and the distance buckets between POIs, as STGNN reads them.

:class:`PoiDistances` is a mixin for a :class:`~torch.nn.Module` that registers the buffers
``poi_lat``/``poi_lon`` ``(P,)`` (float32 degrees) and ``poi_dist_bucket`` (a ``(P, P)`` uint8
table, or ``(0, 0)`` when distances are computed per batch) and sets ``num_pois`` and
``dist_matrix_max_pois``. The table costs ``P^2`` bytes (25 MB for NYC, 10 GB for 10^5 POIs), so
above ``dist_matrix_max_pois`` POIs it is not built and :meth:`dist_pairs` computes haversine
buckets for just the pairs a step reads.
"""
from __future__ import annotations

import torch
from torch import Tensor

from stgnn.features.space import dist_bucket_pairs, dist_bucket_table


class PoiDistances:
    """Distance-bucket look-ups over the model's POIs (module docstring)."""

    num_pois: int
    dist_matrix_max_pois: int
    poi_lat: Tensor
    poi_lon: Tensor
    poi_dist_bucket: Tensor

    def attach_coordinates(self, lat: Tensor, lon: Tensor, dist_table: Tensor | None = None,
                           build_table: bool = True) -> None:
        """Set the ``(P,)`` POI coordinates (degrees; NaN = unknown) and their ``(P, P)``
        distance-bucket table: ``dist_table`` when given (the builder's), else computed when
        ``build_table`` and ``num_pois <= dist_matrix_max_pois`` (else distances are computed per
        batch, if at all)."""
        if lat.shape != (self.num_pois,) or lon.shape != (self.num_pois,):
            raise ValueError(f"coordinates must be ({self.num_pois},), got {tuple(lat.shape)} and {tuple(lon.shape)}")
        self.poi_lat = lat.to(self.poi_lat.device, torch.float32)
        self.poi_lon = lon.to(self.poi_lon.device, torch.float32)
        if dist_table is None and build_table and self.num_pois <= self.dist_matrix_max_pois:
            dist_table = dist_bucket_table(self.poi_lat, self.poi_lon)
        self.poi_dist_bucket = (dist_table if dist_table is not None else self.poi_dist_bucket[:0, :0]).to(
            self.poi_lat.device)

    @property
    def has_dist_table(self) -> bool:
        """Whether the ``(P, P)`` distance-bucket table is held (else distances per batch)."""
        return self.poi_dist_bucket.numel() > 0

    def dist_rows(self, a: Tensor) -> Tensor:
        """``(*a, P)`` int64 distance bucket from each POI in ``a`` to every POI."""
        if self.has_dist_table:
            return self.poi_dist_bucket[a].long()
        return self.dist_pairs(a[..., None], torch.arange(self.num_pois, device=a.device))

    def dist_pairs(self, a: Tensor, b: Tensor) -> Tensor:
        """Distance bucket between POIs ``a`` and ``b`` (broadcast shapes), int64."""
        return dist_bucket_pairs(self.poi_lat, self.poi_lon, a, b, self.poi_dist_bucket)


__all__ = ["PoiDistances"]
