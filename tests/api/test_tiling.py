"""The MVT point encoder and the Z-order point index, against references.

The encoder replaces ``mapbox_vector_tile.encode`` for points, so its output is decoded
with ``mapbox_vector_tile.decode`` and compared value by value; the index's counts are
compared with a brute-force assignment of points to tiles.
"""

from __future__ import annotations

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.mvt import EncodedColumn, encode_point_layer
from api.tiling import PointIndex, TileOptions, lonlat_to_unit, morton


def test_point_layer_round_trip_through_mapbox_vector_tile():
    rng = np.random.default_rng(0)
    n = 500
    x = rng.integers(-300, 4400, n)
    y = rng.integers(-300, 4400, n)
    emp = rng.random(n) * 100
    emp[::7] = np.nan
    sector = np.array(["15", "26", "A", "ñandú"], dtype=object)[rng.integers(0, 4, n)]
    sector[::5] = None
    count = rng.integers(-1000, 2**40, n)
    flag = rng.random(n) < 0.5
    names = EncodedColumn([f"firm {i}" for i in range(n * 2)])
    idx = rng.choice(n * 2, n, replace=False)
    props = {"count": count, "sector": sector, "emp": emp, "flag": flag, "name": names.take(idx)}
    tile = encode_point_layer("pts", x, y, props, extent=4096)
    layer = mapbox_vector_tile.decode(tile, default_options={"y_coord_down": True})["pts"]
    assert layer["extent"] == 4096 and len(layer["features"]) == n
    for i, f in enumerate(layer["features"]):
        assert f["geometry"] == {"type": "Point", "coordinates": [int(x[i]), int(y[i])]}
        p = f["properties"]
        assert p["count"] == count[i]
        assert p["flag"] is bool(flag[i])
        assert p.get("sector") == sector[i]
        assert ("emp" not in p) if np.isnan(emp[i]) else p["emp"] == emp[i]
        assert p["name"] == f"firm {idx[i]}"


def test_empty_layer():
    tile = encode_point_layer("e", np.array([], dtype=int), np.array([], dtype=int), {})
    assert mapbox_vector_tile.decode(tile)["e"]["features"] == []


def _frame(lon, lat) -> gpd.GeoDataFrame:
    n = len(lon)
    return gpd.GeoDataFrame(
        {"firm_id": [f"f{i}" for i in range(n)], "employees": np.arange(n, dtype=float)},
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
    )


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    z=st.integers(0, 22),
    spread=st.sampled_from([0.001, 0.1, 5.0, 60.0]),
)
def test_tile_counts_match_brute_force(seed, z, spread):
    rng = np.random.default_rng(seed)
    lon = np.clip(rng.normal(-99.0, spread, 300), -180, 180)
    lat = np.clip(rng.normal(19.4, spread, 300), -85, 85)
    index = PointIndex(_frame(lon, lat), "default")
    u, v = lonlat_to_unit(lon, lat)
    n = 1 << z
    tx, ty = np.floor(u * n).astype(int), np.floor(v * n).astype(int)
    for x, y in {(int(a), int(b)) for a, b in zip(tx[:5], ty[:5])}:
        expected = (tx == x) & (ty == y)
        assert index.count(z, x, y) == expected.sum()
        cells = index.cells(z, x, y, 16, buffer_cells=0)
        assert cells["count"].sum() == expected.sum()
        assert cells["employees"].sum() == pytest.approx(np.arange(300)[expected].sum())


def test_morton_interleaves_x_on_even_bits():
    assert morton(np.array([1]), np.array([0]))[0] == 1
    assert morton(np.array([0]), np.array([1]))[0] == 2
    assert morton(np.array([3]), np.array([3]))[0] == 15
    assert morton(np.array([2**23]), np.array([0]))[0] == 2**46


def test_aggregation_threshold_and_cap():
    lon = np.full(50, -99.1) + np.linspace(0, 1e-4, 50)
    lat = np.full(50, 19.4)
    index = PointIndex(_frame(lon, lat), "default")
    u, v = lonlat_to_unit(lon[:1], lat[:1])
    z = 15
    x, y = int(u[0] * (1 << z)), int(v[0] * (1 << z))
    opts = TileOptions(points_min_zoom=12, max_features=100)
    feats = mapbox_vector_tile.decode(index.tile(z, x, y, opts))["default"]["features"]
    assert len(feats) == 50 and "firm_id" in feats[0]["properties"]
    capped = TileOptions(points_min_zoom=12, max_features=10)
    feats = mapbox_vector_tile.decode(index.tile(z, x, y, capped))["default"]["features"]
    assert all(f["properties"]["aggregated"] for f in feats)
    assert sum(f["properties"]["count"] for f in feats) == 50
