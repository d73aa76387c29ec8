"""Zonal statistics with windowed reads against direct numpy computations."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Point, Polygon, box

from geocluster.assets.zonal import zonal_stats
from geocluster.errors import InvalidInput
from geocluster.io.raster import open_raster, write_cog

CRS = "EPSG:32635"
X0, Y0, RES = 380_000.0, 6_680_000.0, 10.0  # top-left corner, 10 m pixels
H, W = 300, 200
NODATA = -1.0


@pytest.fixture(scope="module")
def raster(tmp_path_factory):
    """300 x 200 float raster with value row * 1000 + col and a nodata block."""
    rows, cols = np.mgrid[0:H, 0:W]
    arr = (rows * 1000 + cols).astype("float64")
    arr[100:110, 50:60] = NODATA
    path = tmp_path_factory.mktemp("zonal") / "values.tif"
    write_cog(path, arr, transform=from_origin(X0, Y0, RES, RES), crs=CRS, nodata=NODATA)
    return path, arr


def _pixel_box(r0, r1, c0, c1):
    """Polygon covering pixel rows r0:r1 and cols c0:c1 exactly."""
    return box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


class _ReadSpy:
    """A dataset proxy that records the size of every window read."""

    def __init__(self, ds):
        self._ds = ds
        self.windows = []

    def read(self, *args, window=None, **kwargs):
        assert window is not None, "zonal_stats must never read without a window"
        self.windows.append((int(window.height), int(window.width)))
        return self._ds.read(*args, window=window, **kwargs)

    def __getattr__(self, name):
        return getattr(self._ds, name)


def _centres():
    rows, cols = np.mgrid[0:H, 0:W]
    return X0 + (cols + 0.5) * RES, Y0 - (rows + 0.5) * RES


def test_rectangle_and_triangle_match_numpy_with_small_windows(raster):
    path, arr = raster
    valid = arr != NODATA
    rect = (40, 180, 30, 170)  # rows 40..179, cols 30..169: covers the nodata block
    # Vertices off the pixel lattice so that no pixel centre lies exactly on an edge
    # (on-edge centres are a tie the rasteriser may break either way).
    tri = Polygon(
        [
            (X0 + 20.3 * RES, Y0 - 20.7 * RES),
            (X0 + 190.1 * RES, Y0 - 30.2 * RES),
            (X0 + 60.4 * RES, Y0 - 290.9 * RES),
        ]
    )
    geoms = gpd.GeoSeries([_pixel_box(*rect), tri], crs=CRS, index=["rect", "tri"])
    with open_raster(path) as ds:
        spy = _ReadSpy(ds)
        got = zonal_stats(
            spy, geoms, stats=("count", "sum", "mean", "min", "max", "std", "median"), block_size=32
        )
    # every read was at most one 32 x 32 block, and there were many of them
    assert max(max(h, w) for h, w in spy.windows) <= 32
    assert len(spy.windows) > 20

    # direct numpy: pixel slice for the pixel-aligned rectangle
    r0, r1, c0, c1 = rect
    sel = arr[r0:r1, c0:c1][valid[r0:r1, c0:c1]]
    # direct numpy: pixel centres inside the triangle (half-plane tests)
    cx, cy = _centres()
    (ax, ay), (bx, by), (qx, qy) = list(tri.exterior.coords)[:3]

    def side(px, py, x1, y1, x2, y2):
        return (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)

    s1, s2, s3 = (
        side(cx, cy, ax, ay, bx, by),
        side(cx, cy, bx, by, qx, qy),
        side(cx, cy, qx, qy, ax, ay),
    )
    inside = ((s1 > 0) & (s2 > 0) & (s3 > 0)) | ((s1 < 0) & (s2 < 0) & (s3 < 0))
    tsel = arr[inside & valid]
    for name, ref in (("rect", sel), ("tri", tsel)):
        row = got.loc[name]
        assert row["count"] == ref.size
        np.testing.assert_allclose(row["sum"], ref.sum(), rtol=1e-12)
        np.testing.assert_allclose(row["mean"], ref.mean(), rtol=1e-12)
        np.testing.assert_allclose(row["std"], ref.std(), rtol=1e-9)
        assert row["median"] == np.median(ref)
        assert row["min"] == ref.min() and row["max"] == ref.max()


def test_block_size_does_not_change_the_answer(raster):
    path, _ = raster
    geoms = gpd.GeoSeries([Point(X0 + 1000, Y0 - 1500).buffer(700)], crs=CRS)
    with open_raster(path) as ds:
        small = zonal_stats(ds, geoms, stats=("count", "sum", "std"), block_size=7)
        large = zonal_stats(ds, geoms, stats=("count", "sum", "std"), block_size=4096)
    np.testing.assert_allclose(small.to_numpy(), large.to_numpy(), rtol=1e-12)


def test_polygons_partly_or_fully_outside_and_other_crs(raster):
    path, arr = raster
    # extends 50 px beyond the left and top edges: only the inside part counts
    partial = box(X0 - 500, Y0 - 200, X0 + 100, Y0 + 500)
    outside = box(X0 - 5000, Y0 - 5000, X0 - 4000, Y0 - 4000)
    geoms = gpd.GeoSeries([partial, outside, None], crs=CRS)
    with open_raster(path) as ds:
        got = zonal_stats(ds, geoms, stats=("count", "sum", "mean"))
    ref = arr[0:20, 0:10]
    assert got.iloc[0]["count"] == ref.size
    np.testing.assert_allclose(got.iloc[0]["sum"], ref.sum())
    assert (
        got.iloc[1]["count"] == 0 and np.isnan(got.iloc[1]["sum"]) and np.isnan(got.iloc[1]["mean"])
    )
    assert got.iloc[2]["count"] == 0
    # the same rectangle given in lon/lat is transformed to the raster CRS first
    rect = _pixel_box(10, 60, 10, 60)
    ll = gpd.GeoSeries([rect], crs=CRS).to_crs("EPSG:4326")
    with open_raster(path) as ds:
        a = zonal_stats(ds, gpd.GeoSeries([rect], crs=CRS), stats=("count", "sum"))
        b = zonal_stats(ds, ll, stats=("count", "sum"))
    # reprojection moves edges by far less than a pixel centre's half-width
    assert a.iloc[0]["count"] == b.iloc[0]["count"] == 2500
    np.testing.assert_allclose(a.iloc[0]["sum"], b.iloc[0]["sum"])


def test_categorical_majority_and_shares(tmp_path):
    # land cover: class 1 on the left 60 columns, 2 in the middle 30, 3 on the right 10
    arr = np.zeros((50, 100), dtype="uint8")
    arr[:, :60] = 1
    arr[:, 60:90] = 2
    arr[:, 90:] = 3
    arr[:5, :] = 255  # nodata stripe
    path = write_cog(
        tmp_path / "lc.tif", arr, transform=from_origin(X0, Y0, RES, RES), crs=CRS, nodata=255
    )
    geoms = gpd.GeoSeries(
        [box(X0, Y0 - 500, X0 + 1000, Y0), box(X0 + 500, Y0 - 500, X0 + 1000, Y0)], crs=CRS
    )
    with open_raster(path) as ds:
        got = zonal_stats(ds, geoms, stats=("majority", "shares", "count"), block_size=16)
    valid = arr[5:, :]
    assert got.iloc[0]["count"] == valid.size
    assert got.iloc[0]["majority"] == 1
    np.testing.assert_allclose(
        got.iloc[0][["share_1", "share_2", "share_3"]].to_numpy(float), [0.6, 0.3, 0.1]
    )
    assert got.iloc[1]["majority"] == 2  # cols 50..99: 10 of class 1, 30 of 2, 10 of 3
    np.testing.assert_allclose(
        got.iloc[1][["share_1", "share_2", "share_3"]].to_numpy(float), [0.2, 0.6, 0.2]
    )


def test_continuous_raster_refused_for_shares_and_bad_stats(raster):
    path, _ = raster
    geoms = gpd.GeoSeries([_pixel_box(0, 100, 0, 100)], crs=CRS)
    with open_raster(path) as ds:
        with pytest.raises(InvalidInput, match="categorical"):
            zonal_stats(ds, geoms, stats=("shares",))
        with pytest.raises(InvalidInput, match="mode"):
            zonal_stats(ds, geoms, stats=("mode",))
        with pytest.raises(InvalidInput, match="band"):
            zonal_stats(ds, geoms, stats=("sum",), band=2)


def test_nan_nodata_float_raster(tmp_path):
    arr = np.ones((20, 20), "float32")
    arr[0, :] = np.nan
    path = write_cog(
        tmp_path / "nan.tif", arr, transform=from_origin(X0, Y0, RES, RES), crs=CRS, nodata=np.nan
    )
    with rasterio.open(path) as ds:
        assert np.isnan(ds.nodata)
    with open_raster(path) as ds:
        got = zonal_stats(
            ds, gpd.GeoSeries([_pixel_box(0, 20, 0, 20)], crs=CRS), stats=("count", "sum")
        )
    assert got.iloc[0]["count"] == 380 and got.iloc[0]["sum"] == 380


def _box_px(c0, r0, c1, r1):
    """Box in pixel coordinates (fractional columns/rows)."""
    return box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


def test_fraction_coverage_matches_exact_overlap(raster):
    path, arr = raster
    # edges at multiples of 1/8 pixel: the 8 x 8 sub-pixel estimate is then exact
    c0, r0, c1, r1 = 120.375, 30.625, 161.125, 77.875
    geoms = gpd.GeoSeries([_box_px(c0, r0, c1, r1)], crs=CRS)
    with open_raster(path) as ds:
        got = zonal_stats(
            ds, geoms, stats=("count", "sum", "mean", "median"), coverage="fraction", block_size=16
        )
    # reference: exact overlap of each pixel with the box, per axis
    cols = np.arange(W)
    rows = np.arange(H)
    fx = np.clip(np.minimum(cols + 1, c1) - np.maximum(cols, c0), 0, 1)
    fy = np.clip(np.minimum(rows + 1, r1) - np.maximum(rows, r0), 0, 1)
    frac = np.outer(fy, fx)
    valid = arr != NODATA
    np.testing.assert_allclose(got.iloc[0]["count"], frac[valid].sum(), rtol=1e-12)
    np.testing.assert_allclose(got.iloc[0]["sum"], (arr * frac)[valid].sum(), rtol=1e-12)
    np.testing.assert_allclose(
        got.iloc[0]["mean"], (arr * frac)[valid].sum() / frac[valid].sum(), rtol=1e-12
    )
    # weighted lower median of the covered pixels
    v, w = arr[(frac > 0) & valid], frac[(frac > 0) & valid]
    order = np.argsort(v)
    cum = np.cumsum(w[order])
    assert got.iloc[0]["median"] == v[order][np.searchsorted(cum, cum[-1] / 2)]


def test_population_in_a_small_buffer(tmp_path):
    # 100 people per 100 m cell; a 330 m buffer covers ~34 cells: the centre rule is off by
    # whole cells, the area-weighted sum is within 1 % of people x area
    arr = np.full((40, 40), 100.0, dtype="float32")
    path = write_cog(
        tmp_path / "pop.tif", arr, transform=from_origin(X0, Y0, 100.0, 100.0), crs=CRS, nodata=-1
    )
    circle = Point(X0 + 2_013.0, Y0 - 1_987.0).buffer(330.0, quad_segs=64)
    geoms = gpd.GeoSeries([circle], crs=CRS)
    with open_raster(path) as ds:
        frac = zonal_stats(ds, geoms, stats=("sum",), coverage="fraction").iloc[0]["sum"]
        centre = zonal_stats(ds, geoms, stats=("sum",)).iloc[0]["sum"]
    expected = 100.0 * circle.area / 100.0**2
    np.testing.assert_allclose(frac, expected, rtol=0.01)
    assert centre % 100 == 0


def test_touched_coverage_counts_a_zone_smaller_than_a_pixel(raster):
    path, arr = raster
    tiny = gpd.GeoSeries([_box_px(10.2, 20.2, 10.4, 20.4)], crs=CRS)
    with open_raster(path) as ds:
        assert zonal_stats(ds, tiny, stats=("count",)).iloc[0]["count"] == 0
        touched = zonal_stats(ds, tiny, stats=("count", "sum"), coverage="touched").iloc[0]
        with pytest.raises(InvalidInput, match="coverage"):
            zonal_stats(ds, tiny, coverage="most")
    assert touched["count"] == 1 and touched["sum"] == arr[20, 10]
