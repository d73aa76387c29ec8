"""Coordinate reference systems: the stored CRS and the metric working CRS.

geocluster stores and serves lon/lat (EPSG:4326, OGC CRS84 axis order) and
analyses in metres, in a projected *working CRS*: the UTM zone of the data's
centroid unless the user sets one. Pure code never reprojects silently; the
caller states the CRS.
"""

from __future__ import annotations

import numpy as np
import pyproj

from geocluster.errors import CRSError

STORAGE_CRS = "EPSG:4326"


def utm_crs_for(lon: np.ndarray, lat: np.ndarray) -> str:
    """Return the UTM zone CRS (WGS 84) that holds the centroid of the points.

    Parameters
    ----------
    lon, lat : array_like of shape (n,)
        Coordinates in degrees (EPSG:4326).

    Returns
    -------
    str
        ``"EPSG:326ZZ"`` (north) or ``"EPSG:327ZZ"`` (south).
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        raise CRSError("cannot choose a working CRS: no valid lon/lat coordinates")
    # The mean of longitudes fails across the antimeridian; a circular mean does not.
    rad = np.deg2rad(lon[ok])
    clon = float(np.rad2deg(np.arctan2(np.sin(rad).mean(), np.cos(rad).mean())))
    clat = float(np.mean(lat[ok]))
    zone = int((clon + 180.0) // 6.0) % 60 + 1
    return f"EPSG:{32600 + zone if clat >= 0 else 32700 + zone}"


def parse_crs(crs: str | int | pyproj.CRS) -> pyproj.CRS:
    """Parse a user CRS (``"EPSG:32614"``, ``32614``, WKT, PROJ) or raise :class:`CRSError`."""
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(f"expected a CRS such as 'EPSG:32614', got {crs!r}") from exc


def ensure_projected(crs: str | int | pyproj.CRS) -> pyproj.CRS:
    """Return the CRS if it is projected in metres, else raise :class:`CRSError`."""
    parsed = parse_crs(crs)
    if not parsed.is_projected:
        raise CRSError(f"expected a projected CRS in metres, got {parsed.to_string()}")
    unit = parsed.axis_info[0].unit_name if parsed.axis_info else ""
    if unit not in ("metre", "meter", "m"):
        raise CRSError(f"expected a projected CRS in metres, got {parsed.to_string()} in {unit}")
    return parsed


def crs_string(crs: pyproj.CRS | str | None) -> str | None:
    """Short, stable text for a CRS: ``"EPSG:nnnn"`` when it has one, else WKT."""
    if crs is None:
        return None
    parsed = parse_crs(crs)
    epsg = parsed.to_epsg()
    return f"EPSG:{epsg}" if epsg else parsed.to_wkt()
