"""The envelope index of a GeoParquet layer answers what the row-group scan answers.

Reference: the scan with statistics pruning and the exact row mask
(:func:`geocluster.store.geoparquet._row_mask`), reached by adding a filter that every
row passes, so :func:`read_layer` takes its scan path, never the index.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geocluster.store import geoparquet as gp


def _layer(tmp_path, geoms, name="l"):
    n = len(geoms)
    frame = gpd.GeoDataFrame({"k": np.arange(n)}, geometry=geoms, crs="EPSG:4326")
    written = gp.write_layer(frame, tmp_path, name, row_group_rows=512)
    return [tmp_path / f for f in written.files]


def _scan(paths, bbox, **kw):
    return gp.read_layer(paths, columns=["k"], filters=[("k", ">=", 0)], bbox=bbox, **kw)


def _boxes(rng, k=60):
    x = rng.uniform(-5, 5, (k, 2))
    y = rng.uniform(-5, 5, (k, 2))
    out = [(min(a), min(b), max(a), max(b)) for a, b in zip(x, y)]
    return out + [(0.5, 0.5, 0.5, 0.5), (-100, -100, 100, 100), (3, 3, 2, 2), (20, 20, 30, 30)]


@pytest.mark.parametrize("kind", ["points", "polygons"])
def test_index_rows_equal_the_scan(tmp_path, kind):
    rng = np.random.default_rng(11)
    n = 6000
    x, y = np.round(rng.normal(0, 2, n), 1), np.round(rng.normal(0, 2, n), 1)
    if kind == "points":
        geoms = shapely.points(x, y)
    else:
        w = rng.uniform(0, 0.8, n)
        geoms = shapely.box(x, y, x + w, y + w)
        geoms[::50] = shapely.box(-4, -4, 4, 4)  # a few wide envelopes
    geoms[7] = None  # missing and empty geometries never match a box
    geoms[8] = shapely.Point() if kind == "points" else shapely.Polygon()
    paths = _layer(tmp_path, geoms)
    index = gp.envelope_index(paths)
    assert index.points == (kind == "points")
    for bbox in _boxes(rng):
        want = _scan(paths, bbox)["k"].to_pylist()
        assert gp.read_layer(paths, columns=["k"], bbox=bbox)["k"].to_pylist() == want
        assert gp.count_rows(paths, bbox=bbox) == len(want)
        page = gp.read_layer(paths, columns=["k"], bbox=bbox, limit=25, offset=10)
        assert page["k"].to_pylist() == want[10:35]


def test_point_geometry_is_packed_byte_for_byte(tmp_path):
    rng = np.random.default_rng(5)
    geoms = shapely.points(rng.uniform(-3, 3, 3000), rng.uniform(-3, 3, 3000))
    paths = _layer(tmp_path, geoms)
    bbox = (-1.0, -1.0, 1.5, 0.5)
    fast = gp.read_layer(paths, columns=["k", gp.GEOMETRY], bbox=bbox)
    slow = _scan(paths, bbox).column("k")
    assert fast["k"].to_pylist() == slow.to_pylist()
    wkb = gp.read_layer(paths, columns=["k", gp.GEOMETRY], filters=[("k", ">=", 0)], bbox=bbox)
    assert fast[gp.GEOMETRY].to_pylist() == wkb[gp.GEOMETRY].to_pylist()
    assert fast.schema == wkb.schema
