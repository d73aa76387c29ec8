"""Zonal statistics of a raster over polygons, with windowed reads.

For each polygon only the raster window covering its bounds is read
(``rasterio.windows.from_bounds``), and a window larger than
``block_size`` × ``block_size`` pixels is read block by block, so memory stays
bounded by one block whatever the raster or polygon size; the whole raster is
never read. A pixel belongs to a polygon when its *centre* is inside
(``rasterio.features.geometry_mask``, ``all_touched=False``), or when the
polygon touches it with ``all_touched=True``. Nodata pixels (and NaN in
float rasters) are skipped.

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
from rasterio.windows import Window, from_bounds

from geocluster.errors import CRSError, InvalidInput
from geocluster.io.raster import iter_blocks

__all__ = ["STATS", "zonal_stats"]

#: Statistics :func:`zonal_stats` computes.
STATS = ("count", "sum", "mean", "min", "max", "std", "median", "majority", "shares")

#: ``median`` keeps a zone's valid values in memory (an exact median cannot be
#: streamed); zones with more valid pixels than this are refused.
MEDIAN_MAX_PIXELS = 20_000_000


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


def zonal_stats(
    ds: DatasetReader,
    geometries: gpd.GeoSeries,
    *,
    stats: Sequence[str] = ("sum", "mean"),
    band: int = 1,
    all_touched: bool = False,
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
        touch only with ``all_touched=True``). They are transformed to the
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
    all_touched : bool
        Count every pixel the geometry touches, not only those whose centre
        is inside.
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
    if ds.crs is None:
        raise CRSError("expected a raster with a CRS, got none")
    if geometries.crs is None:
        raise CRSError("expected geometries with a CRS, got none")
    if not 1 <= band <= ds.count:
        raise InvalidInput(f"expected a band between 1 and {ds.count}, got {band}")
    geoms = geometries.to_crs(ds.crs)
    need_counts = "majority" in stats or "shares" in stats
    nodata = ds.nodatavals[band - 1]
    is_float = np.dtype(ds.dtypes[band - 1]).kind == "f"

    records: list[dict] = []
    all_classes: set = set()
    for geom in geoms.values:
        acc = {"count": 0, "sum": 0.0, "mean": 0.0, "m2": 0.0, "min": np.inf, "max": -np.inf}
        classes: dict = {}
        kept: list[np.ndarray] = []
        win = None if geom is None or geom.is_empty else _pixel_window(ds, geom.bounds)
        if win is not None:
            for block in iter_blocks(ds, win, block_size=block_size):
                data = ds.read(band, window=block)
                inside = ~geometry_mask(
                    [geom],
                    out_shape=data.shape,
                    transform=ds.window_transform(block),
                    all_touched=all_touched,
                )
                valid = inside
                if nodata is not None and not (is_float and math.isnan(nodata)):
                    valid = valid & (data != nodata)
                if is_float:
                    valid = valid & ~np.isnan(data)
                vals = data[valid]
                if vals.size == 0:
                    continue
                v64 = vals.astype(np.float64)
                # Chan et al.'s pairwise update of (n, mean, M2): a stable
                # variance across blocks, unlike sum of squares minus square of sum.
                nb = int(vals.size)
                mb = float(v64.mean())
                m2b = float(((v64 - mb) ** 2).sum())
                na = acc["count"]
                delta = mb - acc["mean"]
                acc["count"] = na + nb
                acc["mean"] += delta * nb / (na + nb)
                acc["m2"] += m2b + delta * delta * na * nb / (na + nb)
                acc["sum"] += float(v64.sum())
                acc["min"] = min(acc["min"], float(v64.min()))
                acc["max"] = max(acc["max"], float(v64.max()))
                if "median" in stats:
                    if acc["count"] > MEDIAN_MAX_PIXELS:
                        raise InvalidInput(
                            f"expected at most {MEDIAN_MAX_PIXELS:,} valid pixels per zone for "
                            f"the median, got more than {MEDIAN_MAX_PIXELS:,}; use mean or a "
                            "coarser raster"
                        )
                    kept.append(v64)
                if need_counts:
                    uniq, cnt = np.unique(vals, return_counts=True)
                    for u, c in zip(uniq.tolist(), cnt.tolist(), strict=True):
                        classes[u] = classes.get(u, 0) + c
                    if len(classes) > max_classes:
                        raise InvalidInput(
                            f"expected a categorical raster for majority/shares (at most "
                            f"{max_classes} distinct values in a zone), got more than "
                            f"{max_classes}"
                        )
        n = acc["count"]
        rec: dict = {}
        if "count" in stats:
            rec["count"] = n
        if "sum" in stats:
            rec["sum"] = acc["sum"] if n else np.nan
        if "mean" in stats:
            rec["mean"] = acc["sum"] / n if n else np.nan
        if "min" in stats:
            rec["min"] = acc["min"] if n else np.nan
        if "max" in stats:
            rec["max"] = acc["max"] if n else np.nan
        if "std" in stats:
            rec["std"] = math.sqrt(acc["m2"] / n) if n else np.nan
        if "median" in stats:
            rec["median"] = float(np.median(np.concatenate(kept))) if n else np.nan
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


def _class_name(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
