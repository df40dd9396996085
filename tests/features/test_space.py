import math

import numpy as np
import pytest
import torch

from stgnn.features.space import (EARTH_RADIUS_KM, DistanceIntervalEncoding, assign_regions, compass_labels,
                                  coordinate_features, dist_bucket, grid_regions, h3_available, h3_regions,
                                  haversine, haversine_or_zero, knn_pois, pairwise_haversine)

DEG_KM = EARTH_RADIUS_KM * math.pi / 180  # 111.195 km per degree of a great circle


def test_haversine_known_distances():
    assert haversine(0.0, 0.0, 1.0, 0.0) == pytest.approx(DEG_KM)
    assert haversine(0.0, 0.0, 0.0, 90.0) == pytest.approx(math.pi * EARTH_RADIUS_KM / 2)
    assert haversine(40.7128, -74.0060, 34.0522, -118.2437) == pytest.approx(3936, abs=2)  # NYC - LA
    assert haversine(0.0, 179.9, 0.0, -179.9) == pytest.approx(0.2 * DEG_KM)  # across the antimeridian


def test_haversine_torch_matches_numpy_and_pairwise():
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-60, 60, 7), rng.uniform(-180, 180, 7)
    d_np = pairwise_haversine(lat, lon, lat[:4], lon[:4])
    d_t = pairwise_haversine(torch.from_numpy(lat), torch.from_numpy(lon), torch.from_numpy(lat[:4]),
                             torch.from_numpy(lon[:4]))
    assert d_np.shape == (7, 4)
    np.testing.assert_allclose(d_t.numpy(), d_np, rtol=1e-9)
    np.testing.assert_allclose(np.diag(d_np[:4]), 0.0, atol=1e-9)
    np.testing.assert_allclose(d_np[:4], d_np[:4].T)
    np.testing.assert_allclose(haversine(lat, lon, lat[::-1], lon[::-1]), d_np_rev := pairwise_haversine(
        lat, lon, lat[::-1], lon[::-1]).diagonal())
    assert d_np_rev.shape == (7,)


def test_knn_on_a_line_hand_checked():
    lon = np.array([0.0, 1.0, 3.0, 7.0])
    edge_index, dist = knn_pois(np.zeros(4), lon, k=1)
    # row 0 = neighbour (source), row 1 = POI (target)
    assert edge_index.tolist() == [[1, 0, 1, 2], [0, 1, 2, 3]]
    np.testing.assert_allclose(dist.numpy(), np.array([1, 1, 2, 4]) * DEG_KM, rtol=1e-6)
    edge_index, dist = knn_pois(np.zeros(4), lon, k=2)
    assert edge_index.shape == (2, 8)
    assert edge_index[0].tolist() == [1, 2, 0, 2, 1, 0, 2, 1]
    assert edge_index[1].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_knn_exact_against_brute_force_and_antimeridian():
    rng = np.random.default_rng(1)
    lat = rng.uniform(40.5, 40.9, 200)
    lon = rng.uniform(-74.2, -73.7, 200)
    lat[:2], lon[:2] = 0.0, [179.95, -179.95]  # neighbours across the antimeridian
    k = 5
    edge_index, dist = knn_pois(lat, lon, k)
    d = pairwise_haversine(lat, lon, lat, lon)
    np.fill_diagonal(d, np.inf)
    best = np.sort(d, axis=1)[:, :k]
    np.testing.assert_allclose(dist.numpy().reshape(-1, k), best, rtol=1e-5)
    assert edge_index[0, 0].item() == 1 and edge_index[0, k].item() == 0


def test_knn_duplicates_never_self_loop():
    lat = np.array([1.0, 1.0, 1.0, 1.0, 2.0])
    lon = np.zeros(5)
    edge_index, dist = knn_pois(lat, lon, 2)
    assert (edge_index[0] != edge_index[1]).all()
    assert edge_index.shape == (2, 10)
    assert torch.all(dist[:8] == 0)
    with pytest.raises(ValueError, match="POI 1 has invalid"):
        knn_pois(np.array([1.0, np.nan, 2.0]), np.zeros(3), 1)
    with pytest.raises(ValueError, match="k"):
        knn_pois(lat, lon, 5)


def _utm18_to_latlon(x, y):
    import geopandas as gpd

    g = gpd.GeoSeries(gpd.points_from_xy(x, y), crs="EPSG:32618").to_crs("EPSG:4326")
    return g.y.to_numpy(), g.x.to_numpy()


def test_grid_regions_hand_checked_cells():
    y0 = 4_510_500.0  # inside a 1 km row of UTM zone 18N (New York)
    lat, lon = _utm18_to_latlon(np.array([584_500.0, 585_200.0, 585_900.0, 587_100.0]), np.full(4, y0))
    regions = grid_regions(lat, lon, cell_km=1.0)
    assert regions.params == {"cell_km": 1.0, "crs": "EPSG:32618"}  # auto: the data's UTM zone
    assert regions.region.tolist() == [0, 1, 1, 2]
    assert list(regions.names) == ["g1km_r4510_c584", "g1km_r4510_c585", "g1km_r4510_c587"]
    c_lat, c_lon = _utm18_to_latlon(np.array([585_500.0]), np.array([4_510_500.0]))
    assert regions.centroid_lat[1] == pytest.approx(c_lat[0], abs=1e-9)
    assert regions.centroid_lon[1] == pytest.approx(c_lon[0], abs=1e-9)
    import geopandas as gpd

    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    assert all(regions.polygons.iloc[r].contains(pts.iloc[i]) for i, r in enumerate(regions.region))
    assert regions.polygons.crs.to_epsg() == 4326
    coarse = assign_regions(lat, lon, method="grid", cell_km=10.0)  # one cell: [580, 590) km
    assert coarse.num_regions == 1
    with pytest.raises(ValueError, match="valid"):
        assign_regions(lat, lon, method="voronoi")


def test_h3_regions_optional():
    if not h3_available():
        with pytest.raises(ImportError, match="pip install h3"):
            h3_regions(np.array([40.7]), np.array([-74.0]))
        pytest.skip("optional package h3 not installed: H3 path checked to fail with a clear message")
    lat = np.array([40.7580, 40.7581, 40.6892])
    lon = np.array([-73.9855, -73.9856, -74.0445])
    regions = h3_regions(lat, lon, resolution=9)
    assert regions.region[0] == regions.region[1] != regions.region[2]
    assert regions.num_regions == 2
    assert haversine(regions.centroid_lat[regions.region[0]], regions.centroid_lon[regions.region[0]],
                     lat[0], lon[0]) < 0.3


def test_distance_interval_encoding():
    enc = DistanceIntervalEncoding(4, num_buckets=3, min_value=0.1, max_value=10.0)
    out = enc(torch.tensor([0.05, 1.0, 50.0]))
    assert torch.equal(out, enc.embedding.weight[[0, 1, 2]])
    assert repr(enc) == "DistanceIntervalEncoding(4, mode='bucket', num_buckets=3, range=[0.1, 10])"


def test_coordinate_features_values():
    lat, lon = np.array([40.0, 42.0, np.nan]), np.array([-74.0, -72.0, 0.0])
    enc = coordinate_features(lat, lon, freqs=1)
    assert enc.shape == (3, 2 + 4 + 1)
    # z-scores of two points are -1 and +1; w_0 = pi / 4
    w = math.pi / 4
    np.testing.assert_allclose(enc[0], [-1, -1, math.sin(-w), math.sin(-w), math.cos(w), math.cos(w), 0.0])
    np.testing.assert_allclose(enc[1], [1, 1, math.sin(w), math.sin(w), math.cos(w), math.cos(w), 0.0])
    np.testing.assert_array_equal(enc[2], [0, 0, 0, 0, 0, 0, 1.0])  # unknown place: zeros + missing flag


def test_compass_labels():
    labels = compass_labels(np.array([40.0, 40.02, 40.0, np.nan]), np.array([-74.0, -73.97, -73.9, 0.0]), 40.0, -74.0)
    assert labels[0] == "near the centre"
    assert labels[1] == "3 km north-east of the centre"  # 2.2 km north, 2.6 km east
    assert labels[2] == "9 km east of the centre"
    assert labels[3] == "at an unknown place"


def test_dist_bucket_hand_checked():
    # log2(1 + km * 40): 0 -> 0, 25 m -> 1, 1 km -> floor(log2 41) = 5, far -> last bucket
    assert dist_bucket(torch.tensor([0.0, 0.025, 1.0, 1e6])).tolist() == [0, 1, 5, 15]


def test_haversine_or_zero_puts_unknown_coordinates_near():
    lat = torch.tensor([40.7, float("nan")], dtype=torch.float64)
    lon = torch.tensor([-74.0, -74.0], dtype=torch.float64)
    d = haversine_or_zero(lat, lon, torch.tensor(40.8, dtype=torch.float64), torch.tensor(-74.0, dtype=torch.float64))
    assert d[0].item() == pytest.approx(11.12, abs=0.01) and d[1].item() == 0.0
