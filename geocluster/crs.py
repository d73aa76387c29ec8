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
    clon = _circular_mean_deg(lon[ok])
    clat = float(np.mean(lat[ok]))
    zone = int((clon + 180.0) // 6.0) % 60 + 1
    return f"EPSG:{32600 + zone if clat >= 0 else 32700 + zone}"


#: Widest extent (degrees) for which one UTM zone is the working CRS: two zones
#: width keeps the scale error under ~0.2 % (UTM scale is 0.9996 at the central
#: meridian and ~1.001 at 6 degrees east or west at mid-latitudes).
UTM_MAX_LON_SPAN = 12.0
UTM_MAX_LAT_SPAN = 24.0
#: Beyond this, the data are global: a world equal-area CRS in metres.
GLOBAL_LON_SPAN = 90.0
#: Points used to judge the extent (1st-99th percentiles are stable far below this).
WORKING_CRS_SAMPLE = 100_000


def working_crs_for(lon: np.ndarray, lat: np.ndarray) -> str:
    """Choose the metric working CRS for data at these lon/lat points.

    - Data within about two UTM zones (the usual case: a city, a province, a
      small country): the UTM zone of the centroid (:func:`utm_crs_for`).
    - Wider national or continental data: a Lambert conformal conic fitted to
      the data's latitudes (standard parallels at 1/6 and 5/6 of the range, the
      classic rule; Snyder 1987, *Map Projections: A Working Manual*, p. 105).
      Its scale depends on latitude only, so east-west spread costs nothing,
      unlike one UTM zone stretched over 30 degrees of longitude (~3 % error at
      the edges). Near the equator, where a conic degenerates, a Mercator with
      its true-scale latitude at the data's mean absolute latitude.
    - Global data: Equal Earth (EPSG:8857), metres.

    Parameters
    ----------
    lon, lat : array_like of shape (n,)
        Coordinates in degrees (EPSG:4326).

    Returns
    -------
    str
        ``"EPSG:nnnn"`` or a PROJ string.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        raise CRSError("cannot choose a working CRS: no valid lon/lat coordinates")
    lon, lat = lon[ok], lat[ok]
    if len(lon) > WORKING_CRS_SAMPLE:  # an extent needs no million points: a seeded sample
        pick = np.random.default_rng(0).choice(len(lon), WORKING_CRS_SAMPLE, replace=False)
        lon, lat = lon[pick], lat[pick]
    clon = _circular_mean_deg(lon)
    rel = (lon - clon + 180.0) % 360.0 - 180.0  # longitudes around the centre
    lo_lon, hi_lon = np.percentile(rel, [1, 99])
    lo_lat, hi_lat = np.percentile(lat, [1, 99])
    lon_span, lat_span = hi_lon - lo_lon, hi_lat - lo_lat
    if lon_span <= UTM_MAX_LON_SPAN and lat_span <= UTM_MAX_LAT_SPAN:
        return utm_crs_for(lon, lat)
    if lon_span > GLOBAL_LON_SPAN or lat_span > 60.0:
        return "EPSG:8857"
    clat = float((lo_lat + hi_lat) / 2.0)
    lat1, lat2 = lo_lat + lat_span / 6.0, hi_lat - lat_span / 6.0
    if lat1 * lat2 <= 0 or min(abs(lat1), abs(lat2)) < 5.0:
        lat_ts = float(np.mean(np.abs(lat)))
        return (
            f"+proj=merc +lon_0={clon:.4f} +lat_ts={lat_ts:.4f} +x_0=0 +y_0=0 "
            "+datum=WGS84 +units=m +no_defs"
        )
    return (
        f"+proj=lcc +lat_1={lat1:.4f} +lat_2={lat2:.4f} +lat_0={clat:.4f} +lon_0={clon:.4f} "
        "+x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
    )


def _circular_mean_deg(lon: np.ndarray) -> float:
    rad = np.deg2rad(lon)
    return float(np.rad2deg(np.arctan2(np.sin(rad).mean(), np.cos(rad).mean())))


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


#: Margin around a CRS's area of use inside which coordinates are still accepted, as a
#: share of the area's width/height, and at least :data:`AREA_MARGIN_MIN_DEG`. Half a
#: width lets a UTM zone be used one half-zone beyond its edges (common practice for
#: data that straddle a zone boundary); a tenth of the height is ~8 degrees of
#: latitude for a UTM zone. A point far outside is a typo (a northing with an extra
#: digit) or a wrong CRS, never a location the CRS was made for.
AREA_MARGIN_LON_SHARE = 0.5
AREA_MARGIN_LAT_SHARE = 0.1
AREA_MARGIN_MIN_DEG = 2.0


def area_of_use_bounds(crs: pyproj.CRS) -> tuple[float, float, float, float] | None:
    """``(west, south, east, north)`` of the CRS's area of use widened by the margin.

    ``None`` when the CRS declares no area of use, or it covers the world. ``west >
    east`` means the area crosses the antimeridian.
    """
    area = crs.area_of_use
    if area is None:
        return None
    west, south, east, north = area.west, area.south, area.east, area.north
    width = (east - west) % 360.0 or 360.0
    if width >= 359.0 and south <= -85.0 and north >= 85.0:
        return None
    height = north - south
    mlon = max(AREA_MARGIN_MIN_DEG, AREA_MARGIN_LON_SHARE * width)
    mlat = max(AREA_MARGIN_MIN_DEG, AREA_MARGIN_LAT_SHARE * height)
    if width + 2 * mlon >= 360.0:
        west, east = -180.0, 180.0
    else:
        west = (west - mlon + 180.0) % 360.0 - 180.0
        east = (east + mlon + 180.0) % 360.0 - 180.0
    return west, max(-90.0, south - mlat), east, min(90.0, north + mlat)


def in_area_of_use(crs: pyproj.CRS, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where lon/lat (degrees) lie in the CRS's area of use, with the margin.

    Non-finite coordinates are False; a CRS without an area of use accepts all
    finite points.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    finite = np.isfinite(lon) & np.isfinite(lat)
    bounds = area_of_use_bounds(crs)
    if bounds is None:
        return finite
    west, south, east, north = bounds
    in_lat = (lat >= south) & (lat <= north)
    if west <= east:
        in_lon = (lon >= west) & (lon <= east)
    else:  # across the antimeridian
        in_lon = (lon >= west) | (lon <= east)
    return finite & in_lat & in_lon


def area_of_use_text(crs: pyproj.CRS) -> str:
    """``"lon -102..-96, lat 0..84"``: the declared area of use, for messages."""
    area = crs.area_of_use
    if area is None:
        return "no declared area"
    return f"lon {area.west:g}..{area.east:g}, lat {area.south:g}..{area.north:g}"


def boxes_meet_area_of_use(crs: pyproj.CRS, bounds: np.ndarray) -> np.ndarray:
    """True where lon/lat boxes ``(minx, miny, maxx, maxy)`` meet the widened area of use.

    Parameters
    ----------
    bounds : ndarray of shape (n, 4)
        Boxes in degrees (``shapely.bounds`` of EPSG:4326 geometries).
    """
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
    finite = np.isfinite(bounds).all(axis=1)
    area = area_of_use_bounds(crs)
    if area is None:
        return finite
    west, south, east, north = area
    lat_ok = (bounds[:, 1] <= north) & (bounds[:, 3] >= south)
    spans = [(west, east)] if west <= east else [(west, 180.0), (-180.0, east)]
    lon_ok = np.zeros(len(bounds), dtype=bool)
    for w, e in spans:
        lon_ok |= (bounds[:, 0] <= e) & (bounds[:, 2] >= w)
    return finite & lat_ok & lon_ok
