"""Zonal statistics of a raster over polygons, with windowed reads.

For each polygon only the raster window covering its bounds is read
(``rasterio.windows.from_bounds``), and a window larger than
``block_size`` × ``block_size`` pixels is read block by block, so memory stays
bounded by one block whatever the raster or polygon size; the whole raster is
never read. A pixel belongs to a polygon when its *centre* is inside
(``rasterio.features.geometry_mask``), when the polygon touches it
(``coverage="touched"``), or in proportion to its area inside
(``coverage="fraction"``, for counts such as population in a buffer).
Nodata pixels (and NaN in float rasters) are skipped.

The function receives an open dataset: opening files is
:mod:`geocluster.io.raster`'s job (``open_raster``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.features import geometry_mask
from rasterio.io import DatasetReader
from rasterio.transform import Affine
from rasterio.windows import Window, from_bounds

from geocluster.errors import CRSError, InvalidInput
from geocluster.io.raster import iter_blocks

__all__ = ["COVERAGES", "STATS", "zonal_stats"]

#: Statistics :func:`zonal_stats` computes.
STATS = ("count", "sum", "mean", "min", "max", "std", "median", "majority", "shares")

#: ``median`` keeps a zone's valid values in memory (an exact median cannot be
#: streamed); zones with more valid pixels than this are refused.
MEDIAN_MAX_PIXELS = 20_000_000

#: Ways a geometry can cover pixels (see :func:`zonal_stats`).
COVERAGES = ("centre", "touched", "fraction")
# sub-pixels per pixel side for ``coverage="fraction"``
_SUPERSAMPLE = 8


def _pixel_window(ds: DatasetReader, bounds: Sequence[float]) -> Window | None:
    """Integer window of the pixels that may intersect ``bounds``, clipped to the raster."""
    minx, miny, maxx, maxy = bounds
    if not all(math.isfinite(v) for v in bounds):
        return None
    win = from_bounds(minx, miny, maxx, maxy, transform=ds.transform)
    c0 = max(0, math.floor(win.col_off))
    r0 = max(0, math.floor(win.row_off))
    c1 = min(ds.width, math.ceil(win.col_off + win.width))
    r1 = min(ds.height, math.ceil(win.row_off + win.height))
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def _coverage(geom: object, shape: tuple[int, int], transform: Affine, coverage: str) -> np.ndarray:
    """Share of each pixel of a block that belongs to ``geom`` (0/1 unless ``fraction``)."""
    if coverage == "fraction":
        h, w = shape
        sub = _SUPERSAMPLE
        inside = ~geometry_mask(
            [geom],
            out_shape=(h * sub, w * sub),
            transform=transform @ Affine.scale(1.0 / sub),
            all_touched=False,
        )
        return inside.reshape(h, sub, w, sub).mean(axis=(1, 3))
    inside = ~geometry_mask(
        [geom], out_shape=shape, transform=transform, all_touched=coverage == "touched"
    )
    return inside.astype(np.float64)


def zonal_stats(
    ds: DatasetReader,
    geometries: gpd.GeoSeries,
    *,
    stats: Sequence[str] = ("sum", "mean"),
    band: int = 1,
    coverage: str = "centre",
    block_size: int = 1024,
    max_classes: int = 256,
) -> pd.DataFrame:
    """Statistics of raster band ``band`` inside each geometry.

    Parameters
    ----------
    ds : rasterio DatasetReader
        An open raster with a CRS.
    geometries : GeoSeries with a CRS
        Polygons (or any geometry; points and lines select the pixels they
        touch only with ``coverage="touched"``). They are transformed to the
        raster's CRS, the CRS in which pixels are defined.
    stats : sequence of str
        Any of :data:`STATS`: ``count`` (valid pixels), ``sum``, ``mean``,
        ``min``, ``max``, ``std`` (population standard deviation),
        ``median`` (exact; at most :data:`MEDIAN_MAX_PIXELS` valid pixels per zone),
        ``majority`` (most frequent value; ties to the smallest) and
        ``shares`` (for categorical rasters: share of each value among the
        valid pixels, as ``share_<value>`` columns).
    band : int
        1-based band index.
    coverage : {"centre", "touched", "fraction"}
        Which pixels belong to a geometry: those whose centre is inside
        (default), every pixel it touches, or every pixel *weighted by the
        share of its area inside* (estimated on an 8 x 8 sub-pixel grid, so
        to 1/64 of a pixel). With ``fraction``, ``count`` is the covered
        pixel area in pixels, ``sum`` the area-weighted sum (e.g. people in a
        buffer from a population-count grid), the other statistics are
        weighted, ``median`` is the weighted lower median, and min/max are
        over the pixels with any coverage.
    block_size : int
        Largest read window side in pixels; windows are split into blocks.
    max_classes : int
        ``majority``/``shares`` refuse a polygon with more distinct values
        than this (a continuous raster is not categorical).

    Returns
    -------
    DataFrame, index of ``geometries``
        One column per statistic (``shares`` expands to ``share_<v>``).
        Geometries outside the raster get ``count`` 0 and NaN statistics.
    """
    unknown = [s for s in stats if s not in STATS]
    if unknown:
        raise InvalidInput(
            f"expected statistics among {', '.join(STATS)}, got {', '.join(map(str, unknown))}"
        )
    if not stats:
        raise InvalidInput("expected at least one statistic, got none")
    if coverage not in COVERAGES:
        raise InvalidInput(f"expected coverage one of {', '.join(COVERAGES)}, got {coverage!r}")
    if ds.crs is None:
        raise CRSError("expected a raster with a CRS, got none")
    if geometries.crs is None:
        raise CRSError("expected geometries with a CRS, got none")
    if not 1 <= band <= ds.count:
        raise InvalidInput(f"expected a band between 1 and {ds.count}, got {band}")
    if coverage == "fraction":
        # the sub-pixel mask is 64 times the block: keep it within a few MB
        block_size = min(block_size, 256)
    geoms = geometries.to_crs(ds.crs)
    need_counts = "majority" in stats or "shares" in stats
    nodata = ds.nodatavals[band - 1]
    is_float = np.dtype(ds.dtypes[band - 1]).kind == "f"

    records: list[dict] = []
    all_classes: set = set()
    for geom in geoms.values:
        # weighted accumulators: total weight, weighted sum, mean and M2 (Chan et al.'s
        # pairwise update, stable across blocks), extremes, class weights, median values
        acc = {"w": 0.0, "n": 0, "sum": 0.0, "mean": 0.0, "m2": 0.0, "min": np.inf, "max": -np.inf}
        classes: dict = {}
        kept: list[tuple[np.ndarray, np.ndarray]] = []
        win = None if geom is None or geom.is_empty else _pixel_window(ds, geom.bounds)
        if win is not None:
            for block in iter_blocks(ds, win, block_size=block_size):
                data = ds.read(band, window=block)
                frac = _coverage(geom, data.shape, ds.window_transform(block), coverage)
                valid = frac > 0
                if nodata is not None and not (is_float and math.isnan(nodata)):
                    valid &= data != nodata
                if is_float:
                    valid &= ~np.isnan(data)
                vals = data[valid]
                if vals.size == 0:
                    continue
                wts = frac[valid]
                v64 = vals.astype(np.float64)
                wb = float(wts.sum())
                mb = float((wts * v64).sum() / wb)
                m2b = float((wts * (v64 - mb) ** 2).sum())
                wa = acc["w"]
                delta = mb - acc["mean"]
                acc["w"] = wa + wb
                acc["mean"] += delta * wb / (wa + wb)
                acc["m2"] += m2b + delta * delta * wa * wb / (wa + wb)
                acc["sum"] += float((wts * v64).sum())
                acc["n"] += int(vals.size)
                acc["min"] = min(acc["min"], float(v64.min()))
                acc["max"] = max(acc["max"], float(v64.max()))
                if "median" in stats:
                    if acc["n"] > MEDIAN_MAX_PIXELS:
                        raise InvalidInput(
                            f"expected at most {MEDIAN_MAX_PIXELS:,} valid pixels per zone for "
                            f"the median, got more than {MEDIAN_MAX_PIXELS:,}; use mean or a "
                            "coarser raster"
                        )
                    kept.append((v64, wts))
                if need_counts:
                    uniq, inv = np.unique(vals, return_inverse=True)
                    per = np.bincount(inv.ravel(), weights=wts)
                    for u, c in zip(uniq.tolist(), per.tolist(), strict=True):
                        classes[u] = classes.get(u, 0.0) + c
                    if len(classes) > max_classes:
                        raise InvalidInput(
                            f"expected a categorical raster for majority/shares (at most "
                            f"{max_classes} distinct values in a zone), got more than "
                            f"{max_classes}"
                        )
        w = acc["w"]
        has = acc["n"] > 0
        rec: dict = {}
        if "count" in stats:
            rec["count"] = w if coverage == "fraction" else int(round(w))
        if "sum" in stats:
            rec["sum"] = acc["sum"] if has else np.nan
        if "mean" in stats:
            rec["mean"] = acc["mean"] if has else np.nan
        if "min" in stats:
            rec["min"] = acc["min"] if has else np.nan
        if "max" in stats:
            rec["max"] = acc["max"] if has else np.nan
        if "std" in stats:
            rec["std"] = math.sqrt(acc["m2"] / w) if has else np.nan
        if "median" in stats:
            rec["median"] = _median(kept, weighted=coverage == "fraction") if has else np.nan
        if "majority" in stats:
            if classes:
                best = max(classes.values())
                rec["majority"] = min(k for k, v in classes.items() if v == best)
            else:
                rec["majority"] = np.nan
        if "shares" in stats:
            rec["_classes"] = classes
            all_classes |= set(classes)
        records.append(rec)

    if "shares" in stats:
        ordered = sorted(all_classes)
        for rec in records:
            classes = rec.pop("_classes")
            total = sum(classes.values())
            for k in ordered:
                rec[f"share_{_class_name(k)}"] = classes.get(k, 0) / total if total else np.nan
    return pd.DataFrame.from_records(records, index=geometries.index)


def _median(kept: list[tuple[np.ndarray, np.ndarray]], *, weighted: bool) -> float:
    values = np.concatenate([v for v, _ in kept])
    if not weighted:
        return float(np.median(values))
    weights = np.concatenate([w for _, w in kept])
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2.0)])


def _class_name(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
