"""Tests of geocluster.io.raster: COG writing, validation and rejection of bad files."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from geocluster.errors import CRSError, InvalidInput, UnusableFile
from geocluster.io.raster import (
    MAX_BANDS,
    MAX_SIDE,
    iter_blocks,
    to_cog,
    validate_raster,
    write_cog,
)

UTM35 = "EPSG:32635"
TRANSFORM = from_origin(385000.0, 6675000.0, 100.0, 100.0)


def test_write_cog_is_a_valid_cog(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.random((700, 600)).astype("float32")
    arr[0, 0] = -9999.0
    path = write_cog(tmp_path / "pop.tif", arr, transform=TRANSFORM, crs=UTM35, nodata=-9999.0)
    with rasterio.open(path) as ds:
        assert ds.driver == "GTiff"
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.profile["tiled"] is True
        assert ds.block_shapes[0] == (256, 256)
        assert ds.overviews(1), "a 700 x 600 COG must carry internal overviews"
        assert ds.nodata == -9999.0
        assert ds.compression.value == "DEFLATE"
        assert ds.crs.to_epsg() == 32635
        assert ds.transform == TRANSFORM
        np.testing.assert_array_equal(ds.read(1), arr)
        masked = ds.read(1, masked=True)
        assert masked.mask[0, 0] and masked.mask.sum() == 1
    # The validator reports the same facts.
    info = validate_raster(path)
    assert info["layout"] == "COG" and info["tiled"] and info["overviews"] == [2, 4]
    assert info["width"] == 600 and info["height"] == 700 and info["crs"] == UTM35
    lon0, lat0, lon1, lat1 = info["bbox"]
    assert 24 < lon0 < lon1 < 27 and 59 < lat0 < lat1 < 61  # southern Finland, UTM 35N


def test_write_cog_without_overviews_and_integer_nodata(tmp_path):
    arr = np.arange(600 * 600, dtype="int32").reshape(600, 600) % 7
    path = write_cog(
        tmp_path / "lc.tif", arr, transform=TRANSFORM, crs=UTM35, nodata=0, overviews=False
    )
    with rasterio.open(path) as ds:
        assert ds.overviews(1) == []
        assert ds.nodata == 0
        np.testing.assert_array_equal(ds.read(1), arr)


def test_write_cog_rejects_bad_input(tmp_path):
    with pytest.raises(InvalidInput, match="2-D"):
        write_cog(tmp_path / "x.tif", np.zeros(5), transform=TRANSFORM, crs=UTM35, nodata=None)
    with pytest.raises(CRSError):
        write_cog(tmp_path / "x.tif", np.zeros((2, 2)), transform=TRANSFORM, crs=None, nodata=None)
    with pytest.raises(CRSError):
        write_cog(
            tmp_path / "x.tif",
            np.zeros((2, 2)),
            transform=TRANSFORM,
            crs="EPSG:999999",
            nodata=None,
        )
    assert not (tmp_path / "x.tif").exists()


def test_to_cog_converts_a_striped_gtiff(tmp_path):
    src = tmp_path / "plain.tif"
    arr = np.random.default_rng(2).integers(0, 200, size=(300, 520)).astype("uint8")
    with rasterio.open(
        src,
        "w",
        driver="GTiff",
        width=520,
        height=300,
        count=1,
        dtype="uint8",
        crs=UTM35,
        transform=TRANSFORM,
        nodata=255,
    ) as ds:
        ds.write(arr, 1)
    info = to_cog(src, tmp_path / "out" / "cog.tif")
    assert info["layout"] == "COG" and info["tiled"] and info["nodata"] == 255.0
    with rasterio.open(tmp_path / "out" / "cog.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), arr)


def test_not_a_raster_is_rejected(tmp_path):
    bad = tmp_path / "firms.tif"
    bad.write_text("firm_id,lon,lat\n1,24.9,60.1\n")
    with pytest.raises(UnusableFile, match="not a raster: firms.tif"):
        validate_raster(bad)
    geojson = tmp_path / "zones.geojson"
    geojson.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(UnusableFile, match="not a raster"):
        validate_raster(geojson)
    with pytest.raises(UnusableFile, match="does not exist"):
        validate_raster(tmp_path / "missing.tif")
    # no server path leaks into the message
    with pytest.raises(UnusableFile) as err:
        validate_raster(bad)
    assert str(tmp_path) not in str(err.value)


def test_vrt_pointing_at_other_files_is_rejected(tmp_path):
    vrt = tmp_path / "evil.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="10" rasterYSize="1"><VRTRasterBand dataType="Byte" band="1">'
        "<SimpleSource><SourceFilename>/etc/passwd</SourceFilename></SimpleSource>"
        "</VRTRasterBand></VRTDataset>"
    )
    with pytest.raises(UnusableFile, match="VRT"):
        validate_raster(vrt)


def _sparse_gtiff(path, width, height, count=1, crs=UTM35):
    # SPARSE_OK leaves unwritten blocks out of the file: huge declared sizes, tiny files.
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=count,
        dtype="uint8",
        crs=crs,
        transform=TRANSFORM,
        sparse_ok=True,
    ):
        pass
    return path


def test_absurd_dimensions_are_rejected(tmp_path):
    wide = _sparse_gtiff(tmp_path / "wide.tif", MAX_SIDE + 1, 1)
    with pytest.raises(UnusableFile, match="absurd dimensions.*per side"):
        validate_raster(wide)
    huge = _sparse_gtiff(tmp_path / "huge.tif", 50_000, 50_000)
    assert huge.stat().st_size < 5_000_000
    with pytest.raises(UnusableFile, match="absurd dimensions.*pixels"):
        validate_raster(huge)
    bands = _sparse_gtiff(tmp_path / "bands.tif", 2, 2, count=MAX_BANDS + 1)
    with pytest.raises(UnusableFile, match="absurd dimensions.*bands"):
        validate_raster(bands)
    # the limit itself is accepted
    ok = _sparse_gtiff(tmp_path / "ok.tif", 3, 2, count=MAX_BANDS)
    assert validate_raster(ok)["count"] == MAX_BANDS


def test_missing_crs_is_a_crs_error(tmp_path):
    path = tmp_path / "nocrs.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8", transform=TRANSFORM
    ) as ds:
        ds.write(np.ones((1, 4, 4), "uint8"))
    with pytest.raises(CRSError, match="no CRS"):
        validate_raster(path)
    with pytest.raises(CRSError):
        to_cog(path, tmp_path / "never.tif")
    assert not (tmp_path / "never.tif").exists()


def test_iter_blocks_tiles_a_window_exactly():
    win = Window(3, 5, 10, 7)
    blocks = list(iter_blocks(None, win, block_size=4))
    assert len(blocks) == 3 * 2
    cover = np.zeros((20, 20), int)
    for b in blocks:
        assert b.width <= 4 and b.height <= 4
        cover[
            int(b.row_off) : int(b.row_off + b.height), int(b.col_off) : int(b.col_off + b.width)
        ] += 1
    expected = np.zeros((20, 20), int)
    expected[5:12, 3:13] = 1
    np.testing.assert_array_equal(cover, expected)
    with pytest.raises(InvalidInput):
        list(iter_blocks(None, win, block_size=0))


def test_to_cog_keeps_an_existing_cog_byte_for_byte(tmp_path):
    arr = np.random.default_rng(4).random((600, 700)).astype("float32")
    src = write_cog(tmp_path / "kde.tif", arr, transform=TRANSFORM, crs=UTM35, nodata=-1.0)
    info = to_cog(src, tmp_path / "copy.tif")
    assert (tmp_path / "copy.tif").read_bytes() == src.read_bytes()
    assert info["layout"] == "COG" and info["overviews"]
    # a COG without overviews for a large raster is re-encoded with them
    bare = write_cog(
        tmp_path / "bare.tif", arr, transform=TRANSFORM, crs=UTM35, nodata=-1.0, overviews=False
    )
    info = to_cog(bare, tmp_path / "fixed.tif")
    assert info["overviews"] == [2, 4]
    with rasterio.open(tmp_path / "fixed.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), arr)
