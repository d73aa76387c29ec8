"""Coordinates, CRS and geometry checks for ingestion (vectorised)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geocluster.errors import CRSError, InvalidInput

#: Natural Earth countries (public domain), written by the data set-up.
DEFAULT_LAND_PATH = (
    Path(__file__).resolve().parents[2] / "data" / "boundaries" / "natural_earth_countries.gpkg"
)
#: Points sampled for the swapped-coordinates test.
SWAP_SAMPLE = 2000


def parse_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a column of coordinates or counts.

    Returns
    -------
    numbers, missing, non_numeric
        ``numbers`` float64 (NaN where unusable); ``missing`` where the source is
        empty; ``non_numeric`` where it has text that is not a number (a decimal
        comma ``"19,43"`` is accepted). Infinite values count as non-numeric.
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        values = values.astype("float64")
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        missing = np.isnan(numbers)
        bad = np.isinf(numbers)
        numbers = np.where(bad, np.nan, numbers)
        return numbers, missing, bad
    from geocluster.io._csv import NA_TOKENS

    text = values.astype("string").str.strip()
    missing = (text.isna() | (text == "") | text.isin(NA_TOKENS)).to_numpy(
        dtype=bool, na_value=True
    )
    numbers = pd.to_numeric(text.where(~text.isin(NA_TOKENS)), errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )
    retry = np.isnan(numbers) & ~missing
    if retry.any():
        fixed = text[retry].str.replace(r"^([+-]?\d+),(\d+)$", r"\1.\2", regex=True)
        numbers[retry] = pd.to_numeric(fixed, errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
    bad = (np.isnan(numbers) | np.isinf(numbers)) & ~missing
    numbers = np.where(np.isinf(numbers), np.nan, numbers)
    return numbers, missing, bad


def looks_like_degrees(x: np.ndarray, y: np.ndarray) -> bool:
    """True when every finite pair fits lon in ±180 and lat in ±90."""
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return False
    return bool((np.abs(x[ok]) <= 180).all() and (np.abs(y[ok]) <= 90).all())


def parse_crs(crs: object, option: str = "crs") -> pyproj.CRS:
    """Parse a user CRS or raise :class:`CRSError` saying which option was wrong."""
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(
            f"option {option}: expected a known CRS such as 'EPSG:32614', got {crs!r}"
        ) from exc


def crs_text(crs: pyproj.CRS) -> str:
    """``"EPSG:n"`` when the CRS has an EPSG code, else WKT."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def to_lonlat(x: np.ndarray, y: np.ndarray, crs: pyproj.CRS) -> tuple[np.ndarray, np.ndarray]:
    """Transform coordinates in ``crs`` to lon/lat (EPSG:4326, x = lon)."""
    if crs.equals(pyproj.CRS.from_epsg(4326)):
        return x, y
    transformer = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = transformer.transform(x, y, errcheck=False)
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    lon[bad] = np.nan
    lat[bad] = np.nan
    return lon, lat


@functools.lru_cache(maxsize=4)
def _load_land(path: str) -> shapely.STRtree | None:
    if not os.path.exists(path):
        return None
    frame = gpd.read_file(path)
    geoms = (
        frame.to_crs("EPSG:4326").geometry.to_numpy() if frame.crs else frame.geometry.to_numpy()
    )
    geoms = shapely.make_valid(geoms[~shapely.is_empty(geoms) & ~pd.isna(geoms)])
    return shapely.STRtree(geoms)


def land_tree(land: object) -> shapely.STRtree | None:
    """An STRtree of land polygons from a path, a GeoSeries/GeoDataFrame or ``None``.

    ``None`` uses :data:`DEFAULT_LAND_PATH`; returns ``None`` when no land
    polygons are available (the swapped-coordinates test then uses ranges only).
    """
    if land is None:
        return _load_land(str(DEFAULT_LAND_PATH))
    if isinstance(land, gpd.GeoDataFrame):
        land = land.geometry
    if isinstance(land, gpd.GeoSeries):
        if land.crs is not None and land.crs.to_epsg() != 4326:
            land = land.to_crs("EPSG:4326")
        return shapely.STRtree(shapely.make_valid(land.to_numpy()))
    return _load_land(str(land))


def _share_on_land(tree: shapely.STRtree, lon: np.ndarray, lat: np.ndarray) -> float:
    if len(lon) == 0:
        return 0.0
    # the points are the tree and the land polygons the query: STRtree prepares its
    # query geometries, so each large polygon is prepared once instead of every point
    # being tested against it unprepared (10-20x faster, the same points)
    points = shapely.STRtree(shapely.points(lon, lat))
    hit = points.query(tree.geometries, predicate="intersects")
    return len(np.unique(hit[1])) / len(lon)


def check_swapped(
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    lon_name: str,
    lat_name: str,
    land: object = None,
    advice: str | None = None,
) -> None:
    """Raise :class:`InvalidInput` when longitude and latitude look exchanged.

    Two tests, on the finite pairs (a seeded sample of :data:`SWAP_SAMPLE` when
    larger):

    * ranges: fewer than half the points are valid lon/lat as given, but all are
      when exchanged;
    * land: with land polygons available, fewer than half the points fall on land
      as given but at least 80 % do when exchanged.
    """
    ok = np.isfinite(lon) & np.isfinite(lat)
    lon, lat = lon[ok], lat[ok]
    n = len(lon)
    if n == 0:
        return
    if n > SWAP_SAMPLE:
        idx = np.random.default_rng(0).choice(n, SWAP_SAMPLE, replace=False)
        lon, lat = lon[idx], lat[idx]
    given = (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    swapped = (np.abs(lon) <= 90) & (np.abs(lat) <= 180)
    advice = advice or (
        f"check the columns: pass --lon-col {lat_name} --lat-col {lon_name} "
        "(options lon_col/lat_col) if they are exchanged"
    )
    if given.mean() < 0.5 and swapped.all():
        raise InvalidInput(
            f"longitude and latitude look swapped: {1 - given.mean():.0%} of the points have "
            f"a latitude ({lat_name}) outside ±90, but all are valid when exchanged; {advice}"
        )
    tree = land_tree(land)
    if tree is None:
        return
    on_land = _share_on_land(tree, lon[given], lat[given]) * given.mean()
    if on_land >= 0.5:
        return
    on_land_swapped = _share_on_land(tree, lat[swapped], lon[swapped]) * swapped.mean()
    if on_land_swapped >= 0.8:
        raise InvalidInput(
            f"longitude and latitude look swapped: {on_land:.0%} of the points fall on land "
            f"as given ({lon_name}, {lat_name}) but {on_land_swapped:.0%} when exchanged; "
            f"{advice}"
        )


def repair(geoms: np.ndarray, *, polygonal: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Repair invalid geometries with :func:`shapely.make_valid`.

    Parameters
    ----------
    geoms
        Shapely geometries (no missing values).
    polygonal
        Keep only the polygonal parts of repaired polygons (``method="structure"``
        drops collapsed parts), so a bow-tie stays a (multi)polygon.

    Returns
    -------
    repaired, was_invalid, reasons
        ``reasons`` has one :func:`shapely.is_valid_reason` text per invalid geometry.
    """
    invalid = ~shapely.is_valid(geoms)
    reasons: list[str] = []
    if invalid.any():
        reasons = list(shapely.is_valid_reason(geoms[invalid]))
        if polygonal:
            fixed = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
        else:
            fixed = shapely.make_valid(geoms[invalid])
        geoms = geoms.copy()
        geoms[invalid] = fixed
    return geoms, invalid, reasons
