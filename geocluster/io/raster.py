"""Raster I/O: validation, Cloud-Optimised GeoTIFF writing and windowed reads.

Every raster geocluster keeps is a COG (tiled, DEFLATE, internal overviews,
nodata set) so that tile serving (rio-tiler) and windowed zonal statistics read
only the blocks they need. This module is the only place that opens raster
files; computation (``geocluster.assets.zonal``) receives an open dataset.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.transform import Affine
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from geocluster.errors import CRSError, InvalidInput, UnusableFile

__all__ = [
    "MAX_BANDS",
    "MAX_PIXELS",
    "MAX_SIDE",
    "COG_BLOCKSIZE",
    "open_raster",
    "raster_info",
    "to_cog",
    "validate_raster",
    "write_cog",
]

#: Largest accepted width or height in pixels (a global 30 m grid is ~1.3 M wide;
#: anything beyond this is not a layer a territorial analysis needs).
MAX_SIDE = 100_000
#: Largest accepted number of pixels per band.
MAX_PIXELS = 2_000_000_000
#: Largest accepted number of bands.
MAX_BANDS = 64
#: Internal tile size of the COGs geocluster writes.
COG_BLOCKSIZE = 256

# Formats whose content is a pointer to other files or network services: opening
# an uploaded one could read arbitrary server files, so they are refused.
_REFERENCING_DRIVERS = frozenset(
    {
        "VRT",
        "GTI",
        "WMS",
        "WMTS",
        "WCS",
        "DERIVED",
        "PLMosaic",
        "EEDAI",
        "DAAS",
        "OGCAPI",
        "STACIT",
        "STACTA",
    }
)

_COG_OPTIONS = {
    "COMPRESS": "DEFLATE",
    "PREDICTOR": "YES",
    "BLOCKSIZE": str(COG_BLOCKSIZE),
    "BIGTIFF": "IF_SAFER",
    "NUM_THREADS": "1",
}


def _overview_resampling(dtype: str) -> str:
    # Integer rasters are often categorical (land cover): averaging classes
    # would invent classes that do not exist, so take the nearest value.
    return "AVERAGE" if np.dtype(dtype).kind == "f" else "NEAREST"


def _cog_copy(src: Any, dst_path: Path, *, overviews: bool) -> None:
    """Copy an open dataset (or a path) to ``dst_path`` as a COG, atomically."""
    dtype = src.dtypes[0] if hasattr(src, "dtypes") else "float32"
    options = dict(_COG_OPTIONS)
    options["OVERVIEWS"] = "AUTO" if overviews else "NONE"
    options["OVERVIEW_RESAMPLING"] = _overview_resampling(dtype)
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tif", prefix=".cog-", dir=dst_path.parent)
    os.close(fd)
    try:
        rasterio.shutil.copy(src, tmp, driver="COG", **options)
        os.replace(tmp, dst_path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_cog(
    path: str | os.PathLike[str],
    array2d: np.ndarray,
    *,
    transform: Affine,
    crs: Any,
    nodata: float | int | None,
    overviews: bool = True,
) -> Path:
    """Write a single-band array as a Cloud-Optimised GeoTIFF.

    Parameters
    ----------
    path : path-like
        Destination file; written atomically (temporary file then rename).
    array2d : ndarray, shape (rows, cols)
        Cell values, row 0 at the top (north) as in ``transform``.
    transform : affine.Affine
        Pixel-to-CRS transform (e.g. ``rasterio.transform.from_origin``).
    crs : str or CRS
        The raster's CRS (anything ``rasterio.crs.CRS.from_user_input`` accepts).
    nodata : float, int or None
        Value marking cells without data; ``NaN`` allowed for float arrays.
    overviews : bool, default True
        Build internal overviews (only built when the raster is larger than
        one 256-pixel block, as GDAL's COG driver does).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    arr = np.asarray(array2d)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidInput(f"expected a non-empty 2-D array, got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype("uint8")
    if arr.dtype.kind not in "uif":
        raise InvalidInput(f"expected a numeric array, got dtype {arr.dtype}")
    if arr.dtype == np.float16:
        arr = arr.astype("float32")
    if arr.dtype.kind == "i" and arr.dtype.itemsize == 8:
        arr = arr.astype("float64")  # GTiff int64 is poorly supported by readers
    if crs is None:
        raise CRSError("expected a CRS for the raster, got None")
    try:
        crs_obj = rasterio.crs.CRS.from_user_input(crs)
    except Exception as exc:  # rasterio raises its own CRSError subclasses
        raise CRSError(f"expected a valid CRS, got {crs!r}: {exc}") from exc
    out = Path(path)
    profile = {
        "driver": "GTiff",
        "height": arr.shape[0],
        "width": arr.shape[1],
        "count": 1,
        "dtype": arr.dtype.name,
        "crs": crs_obj,
        "transform": transform,
        "nodata": nodata,
    }
    with rasterio.MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(arr, 1)
        with mem.open() as src:
            _cog_copy(src, out, overviews=overviews)
    return out


#: First bytes of a TIFF or BigTIFF, little- or big-endian.
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def open_raster(path: str | os.PathLike[str]) -> rasterio.io.DatasetReader:
    """Open a GeoTIFF for reading, turning GDAL failures into :class:`UnusableFile`.

    Only GDAL's GTiff driver may open the file (the file must also start with a TIFF
    signature), so a VRT or any other description pointing at files or services is
    refused before GDAL reads it; GDAL's network access is off
    (:func:`geocluster.io._gdal.harden`). The caller closes the dataset (use it as a
    context manager).
    """
    from geocluster.io._gdal import check_user_string, clean_detail, harden

    harden()
    check_user_string(path, "raster path")
    p = Path(path)
    if not p.exists():
        raise UnusableFile(f"not a raster: {p.name} does not exist")
    if p.is_dir():
        raise UnusableFile(f"not a raster: {p.name} is a directory")
    with open(p, "rb") as fh:
        head = fh.read(512)
    if not head.startswith(_TIFF_MAGIC):
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
            raise UnusableFile(
                f"not a raster: {p.name} is XML (such as a GDAL VRT description that points "
                "at other files or services); expected a self-contained GeoTIFF"
            )
        raise UnusableFile(
            f"not a raster: {p.name} is not a GeoTIFF (no TIFF signature); geocluster "
            "registers GeoTIFF/COG rasters"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(p, driver="GTiff")
    except (RasterioIOError, RasterioError) as exc:
        # GDAL quotes the full path; a user must not see server paths.
        reason = clean_detail(exc, paths=(p, p.parent))
        raise UnusableFile(
            f"not a raster: {p.name} could not be opened as a GeoTIFF/GDAL raster ({reason})"
        ) from exc
    if ds.driver in _REFERENCING_DRIVERS:
        ds.close()
        raise UnusableFile(
            f"not a raster: {p.name} is a {ds.driver} description that points at other "
            "files or services; expected a self-contained raster file such as a GeoTIFF"
        )
    return ds


def raster_info(ds: rasterio.io.DatasetReader) -> dict[str, Any]:
    """Describe an open raster as a JSON-ready dict.

    Keys: ``width``, ``height``, ``count``, ``dtype``, ``dtypes``, ``crs``,
    ``transform`` (6 GDAL-order numbers a, b, c, d, e, f of the Affine),
    ``res`` (x, y), ``bounds`` (in the raster CRS), ``bbox`` (lon/lat),
    ``nodata``, ``driver``, ``tiled``, ``blocksize``, ``overviews`` (factors of
    band 1), ``compression``.
    """
    crs = ds.crs
    crs_str = None
    bbox = None
    if crs is not None:
        epsg = crs.to_epsg()
        crs_str = f"EPSG:{epsg}" if epsg else crs.to_string()
        try:
            bbox = [
                float(v) for v in transform_bounds(crs, "EPSG:4326", *ds.bounds, densify_pts=21)
            ]
        except Exception:  # a CRS PROJ cannot transform: leave the bbox unknown
            bbox = None
    nodata = ds.nodata
    if nodata is not None and np.isnan(nodata):
        nodata_out: float | None | str = "nan"
    else:
        nodata_out = None if nodata is None else float(nodata)
    block = ds.block_shapes[0] if ds.count else None
    return {
        "width": int(ds.width),
        "height": int(ds.height),
        "count": int(ds.count),
        "dtype": ds.dtypes[0] if ds.count else None,
        "dtypes": list(ds.dtypes),
        "crs": crs_str,
        "transform": [float(v) for v in tuple(ds.transform)[:6]],
        "res": [float(ds.res[0]), float(ds.res[1])],
        "bounds": [float(v) for v in ds.bounds],
        "bbox": bbox,
        "nodata": nodata_out,
        "driver": ds.driver,
        "tiled": bool(ds.profile.get("tiled", False)),
        "layout": ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT"),
        "blocksize": list(block) if block else None,
        "overviews": list(ds.overviews(1)) if ds.count else [],
        "compression": ds.compression.value if ds.compression is not None else None,
    }


def validate_raster(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check that ``path`` is a usable georeferenced raster and describe it.

    Parameters
    ----------
    path : path-like
        A file GDAL can open as a raster (GeoTIFF, COG, …).

    Returns
    -------
    dict
        :func:`raster_info` of the file.

    Raises
    ------
    UnusableFile
        Not a raster ("not a raster: ..."), zero-sized, wider or taller than
        :data:`MAX_SIDE`, more than :data:`MAX_PIXELS` pixels or more than
        :data:`MAX_BANDS` bands.
    CRSError
        The raster has no CRS (not georeferenced).
    """
    p = Path(path)
    with open_raster(p) as ds:
        w, h, n = int(ds.width), int(ds.height), int(ds.count)
        if w <= 0 or h <= 0 or n <= 0:
            raise UnusableFile(
                f"raster {p.name} has absurd dimensions: expected at least 1 x 1 pixel and "
                f"1 band, got {w} x {h} pixels and {n} bands"
            )
        if w > MAX_SIDE or h > MAX_SIDE:
            raise UnusableFile(
                f"raster {p.name} has absurd dimensions: expected at most {MAX_SIDE} pixels "
                f"per side, got {w} x {h}"
            )
        if w * h > MAX_PIXELS:
            raise UnusableFile(
                f"raster {p.name} has absurd dimensions: expected at most {MAX_PIXELS:,} "
                f"pixels, got {w} x {h} = {w * h:,}"
            )
        if n > MAX_BANDS:
            raise UnusableFile(
                f"raster {p.name} has absurd dimensions: expected at most {MAX_BANDS} bands, got {n}"
            )
        if ds.crs is None:
            raise CRSError(
                f"raster {p.name} has no CRS: expected a georeferenced raster "
                "(GeoTIFF with a CRS), got none"
            )
        if ds.transform == Affine.identity():
            raise CRSError(
                f"raster {p.name} is not georeferenced: expected a geotransform, got the identity"
            )
        return raster_info(ds)


def to_cog(src_path: str | os.PathLike[str], dst_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Validate any GDAL raster and convert it to a COG at ``dst_path``.

    Parameters
    ----------
    src_path, dst_path : path-like
        Source raster and destination (written atomically; may equal nothing
        existing yet; parent directories are created).

    Returns
    -------
    dict
        :func:`raster_info` of the written COG.

    Raises
    ------
    UnusableFile, CRSError
        As :func:`validate_raster`.
    """
    info = validate_raster(src_path)
    dst = Path(dst_path)
    if _is_usable_cog(info):
        # Already a COG with overviews (e.g. written by write_cog): re-encoding would
        # only cost time, so copy the bytes (atomically, like the conversion).
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".tif", prefix=".cog-", dir=dst.parent)
        os.close(fd)
        try:
            shutil.copyfile(src_path, tmp)
            os.replace(tmp, dst)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with open_raster(dst) as ds:
            return raster_info(ds)
    with open_raster(src_path) as src:
        try:
            _cog_copy(src, dst, overviews=True)
        except RasterioError as exc:
            raise UnusableFile(
                f"raster {Path(src_path).name} could not be converted to a COG: {exc}"
            ) from exc
    with open_raster(dst) as ds:
        return raster_info(ds)


def _is_usable_cog(info: dict[str, Any]) -> bool:
    """A GeoTIFF already laid out as a COG, with overviews unless it is one block."""
    if info.get("driver") != "GTiff" or info.get("layout") != "COG" or not info.get("tiled"):
        return False
    small = max(info["width"], info["height"]) <= 2 * COG_BLOCKSIZE
    return bool(info.get("overviews")) or small


def iter_blocks(
    ds: rasterio.io.DatasetReader, window: Window, *, block_size: int = 1024
) -> Iterator[Window]:
    """Split ``window`` into sub-windows of at most ``block_size`` x ``block_size`` pixels.

    Used by windowed zonal statistics so that a large polygon never makes a
    whole-raster read; ``block_size`` is a parameter so tests can force many
    blocks on a small raster.
    """
    if block_size < 1:
        raise InvalidInput(f"expected block_size >= 1, got {block_size}")
    col0, row0 = int(window.col_off), int(window.row_off)
    width, height = int(window.width), int(window.height)
    for r in range(row0, row0 + height, block_size):
        h = min(block_size, row0 + height - r)
        for c in range(col0, col0 + width, block_size):
            w = min(block_size, col0 + width - c)
            yield Window(c, r, w, h)
