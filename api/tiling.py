"""Vector tiles (WebMercatorQuad) for collections, from in-memory indexes.

Points (firms, firm labels, point assets) are indexed once per collection version by
their Morton (Z-order) code at zoom :data:`MORTON_LEVEL`: the points of any tile at a
zoom ``z <= MORTON_LEVEL`` are then one contiguous slice of the sorted arrays (two
binary searches), and the aggregation grid of a tile is a shift of the same codes and
one ``bincount``. Nothing per tile touches the store.

Polygons (clusters, regions, assets) keep their Web Mercator geometries and an STRtree;
a tile queries the tree, clips to the tile plus a buffer, simplifies to the tile's
resolution and is encoded by ``mapbox_vector_tile``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import shapely

from api.mvt import EncodedColumn, encode_point_layer

#: Web Mercator half-circumference (EPSG:3857 metres).
ORIGIN_SHIFT = math.pi * 6378137.0
#: Points are sorted by their Z-order code at this zoom (48-bit codes).
MORTON_LEVEL = 24
#: Properties kept on individual points (those present in the collection are used).
POINT_PROPERTIES_PREFERRED = (
    "firm_id",
    "name",
    "sector_code",
    "isic_section",
    "employees",
    "women_led",
    "youth_led",
    "informal",
    "founded",
    "cluster_id",
    "asset_id",
    "category",
    "subtype",
    "designation",
)
MAX_PROPERTIES = 14


def _part1by1(v: np.ndarray) -> np.ndarray:
    """Spread the low 32 bits of ``v`` to the even bits of a uint64."""
    v = v.astype(np.uint64) & np.uint64(0xFFFFFFFF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x3333333333333333)
    v = (v | (v << np.uint64(1))) & np.uint64(0x5555555555555555)
    return v


def _compact1by1(v: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_part1by1`: gather the even bits of ``v``."""
    v = v.astype(np.uint64) & np.uint64(0x5555555555555555)
    v = (v | (v >> np.uint64(1))) & np.uint64(0x3333333333333333)
    v = (v | (v >> np.uint64(2))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    v = (v | (v >> np.uint64(4))) & np.uint64(0x00FF00FF00FF00FF)
    v = (v | (v >> np.uint64(8))) & np.uint64(0x0000FFFF0000FFFF)
    v = (v | (v >> np.uint64(16))) & np.uint64(0x00000000FFFFFFFF)
    return v


def morton(ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Z-order code of integer tile/cell coordinates (x on even bits, y on odd bits)."""
    return _part1by1(np.asarray(ix)) | (_part1by1(np.asarray(iy)) << np.uint64(1))


def lonlat_to_unit(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Web Mercator coordinates scaled to the unit square, origin top-left, y down."""
    lat = np.clip(np.asarray(lat, dtype=float), -85.05112878, 85.05112878)
    u = (np.asarray(lon, dtype=float) + 180.0) / 360.0
    s = np.sin(np.deg2rad(lat))
    v = 0.5 - np.log((1 + s) / (1 - s)) / (4 * math.pi)
    return np.clip(u, 0.0, np.nextafter(1.0, 0)), np.clip(v, 0.0, np.nextafter(1.0, 0))


def tile_bounds_mercator(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """EPSG:3857 bounds (minx, miny, maxx, maxy) of tile ``z/x/y``."""
    size = 2 * ORIGIN_SHIFT / (1 << z)
    minx = -ORIGIN_SHIFT + x * size
    maxy = ORIGIN_SHIFT - y * size
    return minx, maxy - size, minx + size, maxy


def tile_bounds_lonlat(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """WGS84 bounds (west, south, east, north) of tile ``z/x/y``."""
    n = 1 << z

    def lat(t: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * t / n))))

    return x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y)


def _python_scalar(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _scalar_columns(frame: pd.DataFrame, geometry_name: str | None) -> list[str]:
    cols = [c for c in frame.columns if c != geometry_name]
    out = []
    for c in cols:
        s = frame[c]
        if s.dtype == object and len(s.dropna()) and isinstance(s.dropna().iloc[0], dict | list):
            continue
        out.append(c)
    return out


@dataclass
class TileOptions:
    """How tiles are cut (from :class:`api.settings.TileSettings`)."""

    extent: int = 4096
    buffer: int = 64
    max_features: int = 5000
    grid_cells: int = 32
    points_min_zoom: int = 12
    individual_points: bool = True
    point_buffer: int = 384  # around aggregated cells, whose circles are large


_UPKEEP = threading.local()


@contextmanager
def yielding_to(pause: Callable[[], object]) -> Iterator[None]:
    """Within it, index builds on this thread call ``pause()`` between their steps.

    The server's start-up warm-up of tile indexes (a national register: ~20 s of one
    core) passes :meth:`api.jobs.JobManager.yield_to_analyses`, so that it gives the
    cores to analysis requests as tile pyramids do; it stops yielding once a tile
    request waits for the index (:meth:`IndexCache.waiting`). A build a tile request
    triggers itself never pauses.
    """
    _UPKEEP.pause = pause
    try:
        yield
    finally:
        _UPKEEP.pause = None


def upkeep_pause() -> None:
    """Let analyses run first if this thread builds an index as upkeep."""
    pause = getattr(_UPKEEP, "pause", None)
    if pause is not None:
        pause()


class PointIndex:
    """Points of one collection version, Z-order sorted, ready to cut tiles.

    Parameters
    ----------
    frame : GeoDataFrame
        Point features in EPSG:4326 (multi-points use their first point; empty or
        missing geometries are left out).
    layer_name : str
        MVT layer name.
    """

    def __init__(self, frame: gpd.GeoDataFrame, layer_name: str) -> None:
        geom = frame.geometry
        ok = ~(geom.isna() | geom.is_empty)
        frame = frame[ok.to_numpy()]
        pts = (
            shapely.get_geometry(np.asarray(frame.geometry.array), 0)
            if len(frame)
            else np.array([])
        )
        lon = shapely.get_x(pts) if len(frame) else np.array([], dtype=float)
        lat = shapely.get_y(pts) if len(frame) else np.array([], dtype=float)
        u, v = lonlat_to_unit(lon, lat)
        scale = float(1 << MORTON_LEVEL)
        codes = morton((u * scale).astype(np.uint64), (v * scale).astype(np.uint64))
        order = np.argsort(codes, kind="stable")
        self.layer_name = layer_name
        self.codes = codes[order]
        self.u = u[order]
        self.v = v[order]
        props = _scalar_columns(frame, frame.geometry.name)
        preferred = [c for c in POINT_PROPERTIES_PREFERRED if c in props]
        rest = [c for c in props if c not in preferred]
        keep = (preferred + rest)[:MAX_PROPERTIES]
        self.properties: dict[str, np.ndarray | EncodedColumn] = {}
        for c in keep:
            upkeep_pause()  # a step of the build: each column takes seconds at 5M firms
            col = frame[c]
            if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                self.properties[c] = col.to_numpy()[order]
            else:  # strings: factorise once, encode each distinct value once
                self.properties[c] = EncodedColumn(col.astype(object).to_numpy()[order])
        emp = frame["employees"] if "employees" in frame.columns else None
        self.weights = (
            pd.to_numeric(emp, errors="coerce").fillna(0.0).to_numpy(dtype=float)[order]
            if emp is not None
            else None
        )
        self.nbytes = int(self.codes.nbytes + self.u.nbytes + self.v.nbytes)

    def __len__(self) -> int:
        return len(self.codes)

    def slice(self, z: int, x: int, y: int) -> tuple[int, int]:
        """Index range ``[start, stop)`` of the points inside tile ``z/x/y``."""
        if z > MORTON_LEVEL:  # deeper than the index: narrow by coordinates after
            shift = z - MORTON_LEVEL
            return self.slice(MORTON_LEVEL, x >> shift, y >> shift)
        base = int(morton(np.array([x]), np.array([y]))[0])
        span = 2 * (MORTON_LEVEL - z)
        lo = np.uint64(base << span)
        hi = np.uint64((base + 1) << span)
        return int(np.searchsorted(self.codes, lo)), int(np.searchsorted(self.codes, hi))

    def count(self, z: int, x: int, y: int) -> int:
        """Number of points in tile ``z/x/y``."""
        a, b = self.slice(z, x, y)
        return b - a

    def cells(self, z: int, x: int, y: int, grid_cells: int, buffer_cells: int = 0) -> pd.DataFrame:
        """Aggregate points on a ``grid_cells`` x ``grid_cells`` grid over tile ``z/x/y``.

        Every grid cell is itself an aligned quadtree square, hence one contiguous run of
        the sorted Z-order codes: its count is the difference of two binary searches and
        its employment the difference of two prefix sums, whatever the number of points.

        Parameters
        ----------
        buffer_cells : int
            Also return this many rings of cells around the tile (``cell_x``/``cell_y``
            below 0 or from ``grid_cells`` up), so that symbols near a tile edge are
            drawn whole by both neighbouring tiles.

        Returns
        -------
        DataFrame
            One row per non-empty cell: ``cell_x``, ``cell_y`` (0..grid_cells-1 inside
            the tile, y down), ``count`` and ``employees`` (sum; 0 when unknown).
        """
        g = max(0, int(round(math.log2(grid_cells))))
        level = z + g
        if level > MORTON_LEVEL:
            return self._cells_by_coordinates(z, x, y, 1 << g)
        n_cells = 1 << g
        side = 1 << level
        bx = np.arange(
            max(0, x * n_cells - buffer_cells), min(side, (x + 1) * n_cells + buffer_cells)
        )
        by = np.arange(
            max(0, y * n_cells - buffer_cells), min(side, (y + 1) * n_cells + buffer_cells)
        )
        cx, cy = (a.ravel() for a in np.meshgrid(bx, by))
        span = np.uint64(2 * (MORTON_LEVEL - level))
        lo = morton(cx, cy) << span
        hi = lo + (np.uint64(1) << span)
        i0 = np.searchsorted(self.codes, lo)
        i1 = np.searchsorted(self.codes, hi)
        counts = i1 - i0
        nz = counts > 0
        i0, i1 = i0[nz], i1[nz]
        emp = self._cumulative[i1] - self._cumulative[i0] if self.weights is not None else 0.0
        return pd.DataFrame(
            {
                "cell_x": cx[nz].astype(np.int64) - x * n_cells,
                "cell_y": cy[nz].astype(np.int64) - y * n_cells,
                "count": counts[nz].astype(np.int64),
                "employees": emp,
            }
        )

    @property
    def _cumulative(self) -> np.ndarray:
        if getattr(self, "_csum", None) is None:
            self._csum = np.concatenate([[0.0], np.cumsum(self.weights)])
        return self._csum

    def _cells_by_coordinates(self, z: int, x: int, y: int, n_cells: int) -> pd.DataFrame:
        """:meth:`cells` for zooms deeper than the index (no buffer)."""
        a, b = self.slice(z, x, y)
        tx = self.u[a:b] * (1 << z) - x
        ty = self.v[a:b] * (1 << z) - y
        inside = (tx >= 0) & (tx < 1) & (ty >= 0) & (ty < 1)
        cx = np.minimum((tx[inside] * n_cells).astype(np.int64), n_cells - 1)
        cy = np.minimum((ty[inside] * n_cells).astype(np.int64), n_cells - 1)
        local = cy * n_cells + cx
        counts = np.bincount(local, minlength=n_cells * n_cells)
        emp = (
            np.bincount(local, weights=self.weights[a:b][inside], minlength=n_cells * n_cells)
            if self.weights is not None
            else None
        )
        nz = np.flatnonzero(counts)
        return pd.DataFrame(
            {
                "cell_x": nz % n_cells,
                "cell_y": nz // n_cells,
                "count": counts[nz],
                "employees": emp[nz] if emp is not None else 0.0,
            }
        )

    def points(
        self, z: int, x: int, y: int, extent: int, buffer: int = 0
    ) -> tuple[np.ndarray, np.ndarray, dict]:
        """Tile coordinates and properties of the individual points of tile ``z/x/y``.

        With ``buffer`` (tile units), points of the neighbouring tiles that close to
        the edge are included too, with coordinates outside ``0..extent``.
        """
        n = 1 << z
        if buffer > 0 and z <= MORTON_LEVEL:
            ranges = [
                self.slice(z, x + dx, y + dy)
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
                if 0 <= x + dx < n and 0 <= y + dy < n
            ]
        else:
            ranges = [self.slice(z, x, y)]
        idx = np.concatenate([np.arange(a, b) for a, b in ranges]) if ranges else np.array([], int)
        tx = (self.u[idx] * n - x) * extent
        ty = (self.v[idx] * n - y) * extent
        keep = (tx >= -buffer) & (tx < extent + buffer) & (ty >= -buffer) & (ty < extent + buffer)
        idx = idx[keep]
        px = np.floor(tx[keep]).astype(np.int64)
        py = np.floor(ty[keep]).astype(np.int64)
        props = {
            k: col.take(idx) if isinstance(col, EncodedColumn) else col[idx]
            for k, col in self.properties.items()
        }
        return px, py, props

    def tile(
        self, z: int, x: int, y: int, opts: TileOptions, cells_filter: Callable | None = None
    ) -> bytes:
        """Encode tile ``z/x/y``: individual points, or grid counts when aggregated.

        Points are aggregated below ``opts.points_min_zoom``, when there are more than
        ``opts.max_features`` of them in the tile, or when individual points are not
        allowed. Aggregated features are cell centres with ``count`` and ``employees``.
        ``cells_filter`` (e.g. the disclosure policy) may drop or alter cells.
        """
        count = self.count(z, x, y)
        if count == 0:
            return b""
        individual = (
            opts.individual_points and z >= opts.points_min_zoom and count <= opts.max_features
        )
        if individual:
            # individual symbols are small: the (polygon) tile buffer is enough
            px, py, props = self.points(z, x, y, opts.extent, buffer=opts.buffer)
            return encode_point_layer(self.layer_name, px, py, props, extent=opts.extent)
        n_cells = 1 << max(0, int(round(math.log2(opts.grid_cells))))
        step = opts.extent / n_cells
        cells = self.cells(z, x, y, opts.grid_cells, math.ceil(opts.point_buffer / step))
        if cells_filter is not None:
            cells = cells_filter(cells)
        if len(cells) == 0:
            return b""
        px = np.floor((cells["cell_x"].to_numpy() + 0.5) * step).astype(np.int64)
        py = np.floor((cells["cell_y"].to_numpy() + 0.5) * step).astype(np.int64)
        props = {"count": cells["count"].to_numpy().astype(np.int64)}
        if self.weights is not None:
            props["employees"] = np.round(cells["employees"].to_numpy().astype(float), 1)
        props["aggregated"] = np.ones(len(cells), dtype=bool)
        return encode_point_layer(self.layer_name, px, py, props, extent=opts.extent)


def _homogenize(geom):
    """A GeometryCollection (e.g. from ``make_valid``) as its highest-dimension parts.

    MVT features have one geometry type; a repaired polygon can come back as polygons
    plus a stray line, and the line is what a map would not draw anyway.
    """
    if geom is None or geom.geom_type != "GeometryCollection":
        return geom
    parts = shapely.get_parts(geom)
    if len(parts) == 0:
        return geom
    dims = shapely.get_dimensions(parts)
    keep = parts[dims == dims.max()]
    if dims.max() == 2:
        return shapely.multipolygons(list(shapely.get_parts(keep)))
    if dims.max() == 1:
        return shapely.multilinestrings(list(shapely.get_parts(keep)))
    return shapely.multipoints(list(shapely.get_parts(keep)))


class ShapeIndex:
    """Polygon / line / mixed features of one collection version in Web Mercator."""

    def __init__(self, frame: gpd.GeoDataFrame, layer_name: str) -> None:
        frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty).to_numpy()]
        merc = (
            frame.to_crs("EPSG:3857")
            if frame.crs is not None
            else frame.set_crs("EPSG:4326").to_crs("EPSG:3857")
        )
        self.layer_name = layer_name
        self.geoms = np.array([_homogenize(g) for g in merc.geometry.array], dtype=object)
        self.tree = shapely.STRtree(self.geoms)
        cols = _scalar_columns(frame, frame.geometry.name)
        self.records = [
            {
                k: v
                for k, v in ((c, _python_scalar(val)) for c, val in zip(cols, row))
                if v is not None
            }
            for row in frame[cols].itertuples(index=False, name=None)
        ]

    def __len__(self) -> int:
        return len(self.geoms)

    def tile(self, z: int, x: int, y: int, opts: TileOptions) -> bytes:
        """Encode tile ``z/x/y``: features clipped to the tile + buffer, simplified."""
        minx, miny, maxx, maxy = tile_bounds_mercator(z, x, y)
        size = maxx - minx
        pad = size * opts.buffer / opts.extent
        idx = self.tree.query(shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad))
        if len(idx) == 0:
            return b""
        idx = np.sort(idx)
        geoms = self.geoms[idx]
        res = size / opts.extent  # one tile unit in metres
        clipped = shapely.clip_by_rect(geoms, minx - pad, miny - pad, maxx + pad, maxy + pad)
        simple = shapely.simplify(clipped, res, preserve_topology=True)

        def to_tile(coords: np.ndarray) -> np.ndarray:
            out = np.empty_like(coords)
            out[:, 0] = (coords[:, 0] - minx) / res
            out[:, 1] = (maxy - coords[:, 1]) / res
            return out

        tiled = shapely.transform(simple, to_tile)
        features = []
        for i, geom in zip(idx, tiled):
            if geom is None or geom.is_empty:
                continue
            if geom.geom_type == "GeometryCollection":
                geom = _homogenize(geom)
            features.append({"geometry": geom, "properties": self.records[i]})
        if not features:
            return b""
        return mapbox_vector_tile.encode(
            [{"name": self.layer_name, "features": features}],
            default_options={"extents": opts.extent, "y_coord_down": True},
        )


Index = PointIndex | ShapeIndex


def build_index(frame: gpd.GeoDataFrame, layer_name: str) -> Index:
    """A :class:`PointIndex` when every geometry is a point, else a :class:`ShapeIndex`."""
    types = set(frame.geometry.dropna().geom_type.unique())
    if types and types <= {"Point", "MultiPoint"}:
        return PointIndex(frame, layer_name)
    return ShapeIndex(frame, layer_name)


class IndexCache:
    """Per-collection tile indexes, keyed by collection id and invalidated by version.

    ``version`` is any token that changes when the collection's data changes (the
    store's physical layer name does). One build runs at a time per collection; other
    requests for it wait instead of building it again.
    """

    def __init__(self, max_entries: int = 8) -> None:
        self._entries: dict[str, tuple[str, Index]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._waiting = 0
        self.max_entries = max_entries

    def waiting(self) -> bool:
        """Whether a request waits for an index another thread is building."""
        return self._waiting > 0

    def get(self, key: str, version: str, build: Callable[[], Index]) -> Index:
        """The index of ``key`` at ``version``, building it with ``build()`` if needed."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version:
            return entry[1]
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=False):  # being built: wait for it, and say so
            with self._lock:
                self._waiting += 1
            try:
                lock.acquire()
            finally:
                with self._lock:
                    self._waiting -= 1
        try:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == version:
                return entry[1]
            index = build()
            with self._lock:
                self._entries[key] = (version, index)
                while len(self._entries) > self.max_entries:
                    self._entries.pop(next(iter(self._entries)))
            return index
        finally:
            lock.release()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class CollectionResolver:
    """Memoise ``ws.collection(cid)`` between writes to the workspace.

    Resolving a collection id costs catalog round trips, which would dominate a cached
    tile. The catalog's :meth:`~geocluster.store.catalog.Catalog.signature` changes with
    every commit. Entries also expire after ``max_age_s`` in case two commits land
    within the file system's time resolution.
    """

    def __init__(self, max_age_s: float = 2.0) -> None:
        self.max_age_s = max_age_s
        self._entries: dict[str, tuple[tuple, float, object]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _signature(ws) -> tuple:
        catalog = getattr(ws, "catalog", None)
        if catalog is None:
            return (time.monotonic(),)  # unknown store: never reuse
        return catalog.signature()

    def peek(self, ws, collection_id: str):
        """The memoised collection if still valid, else None (never touches the store)."""
        entry = self._entries.get(collection_id)
        if entry is None or time.monotonic() - entry[1] >= self.max_age_s:
            return None
        return entry[2] if entry[0] == self._signature(ws) else None

    def get(self, ws, collection_id: str):
        """``ws.collection(collection_id)``, from memory when nothing was written since."""
        found = self.peek(ws, collection_id)
        if found is not None:
            return found
        sig = self._signature(ws)
        now = time.monotonic()
        coll = ws.collection(collection_id)
        with self._lock:
            self._entries[collection_id] = (sig, now, coll)
            if len(self._entries) > 1024:
                self._entries.clear()
        return coll
