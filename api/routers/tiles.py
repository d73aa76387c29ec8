"""Vector tiles per collection (MVT) and raster tiles per registered raster (PNG).

Every tile carries ``Cache-Control`` and a strong ``ETag`` derived from the data
version (the store's immutable layer name, or the raster's creation stamp), the
audience (:func:`tile_audience`) and the tiling settings, so ``If-None-Match`` answers
304 without touching the data. A collection id that names a fixed version
(``name@N``, a run layer) is ``immutable`` for a year; an unversioned name may move to
a new version, so its tiles get the short ``GEOCLUSTER_TILE_CACHE_SECONDS``.

A vector tile comes, in order, from the in-process LRU of encoded tiles, from the
layer's pre-built PMTiles archive when it covers the zoom (:mod:`api.pyramid`), or is
encoded on demand. On a PostGIS store the database cuts the tiles of the layers and
zooms ``GEOCLUSTER_TILE_POSTGIS`` sends there (:mod:`api.pgtiles`, same layer, fields
and disclosure rules); those have their own ETags and skip the archives.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import check_collection, get_principal, visible_raster
from api.deps import get_settings, get_workspace
from api.errors import TileOutsideBounds
from api.outlines import publish
from api.routers.features import disclosure_kind
from api.settings import Settings
from api.tiling import (
    MAX_PROPERTIES,
    POINT_PROPERTIES_PREFERRED,
    IndexCache,
    TileOptions,
    build_index,
)
from geocluster.clustering.kde import raster_rescale_range
from geocluster.errors import InvalidInput

router = APIRouter(tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"
#: MVT layer name of every collection tile (as tipg does).
LAYER_NAME = "default"
TMS = "WebMercatorQuad"


class _BytesLRU:
    """A small LRU of encoded tiles keyed by ETag, bounded in bytes."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.max_bytes = max_bytes

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: bytes) -> None:
        with self._lock:
            if key in self._data:
                return
            self._data[key] = value
            self._size += len(value)
            while self._size > self.max_bytes and self._data:
                _, old = self._data.popitem(last=False)
                self._size -= len(old)


def _state_cache(request: Request) -> _BytesLRU:
    app = request.app
    cache = getattr(app.state, "tile_bytes", None)
    if cache is None:
        mb = app.state.settings.tiles.tile_cache_mb
        cache = app.state.tile_bytes = _BytesLRU(int(mb * 1024 * 1024))
    return cache


def _archives(request: Request):
    from api.pyramid import ArchiveRegistry

    app = request.app
    registry = getattr(app.state, "tile_archives", None)
    if registry is None:
        registry = app.state.tile_archives = ArchiveRegistry()
    return registry


def tile_audience(request: Request, principal=None) -> str:
    """Whose tiles a request gets: part of every ETag, LRU key and archive name.

    ``"open"`` for callers who may see microdata (editors, admins, the open
    single-user mode); ``"safe"`` for viewers and anonymous callers, who get the
    disclosure-safe tiles: firms only as grid counts, suppressed clusters without an
    outline, cells under the threshold dropped.
    """
    principal = principal or getattr(request.state, "principal", None)
    if principal is None or principal.sees_microdata:
        return "open"
    return "safe"


def audience_policy(policy, audience: str):
    """The disclosure policy tiles of ``audience`` are built under."""
    if audience == "open":
        return policy
    from dataclasses import replace

    return replace(policy, enforce=True, firm_points=False)


def tiling_token(settings: Settings, policy, audience: str) -> str:
    """What changes the bytes of a vector tile besides the data: options, policy, audience."""
    t = settings.tiles
    opts = (
        t.tile_extent,
        t.tile_buffer,
        t.tile_point_buffer,
        t.tile_max_features,
        t.tile_grid_cells,
        t.points_min_zoom,
    )
    if audience == "open":
        return f"{opts!r}|{policy!r}|{audience}"
    # "cells2": safe cells without employment, never finer than the public grid;
    # "outlines2": run cluster outlines as unions of safe grid cells, not hulls
    # (archives and ETags of the older ones differ)
    grid = settings.disclosure.public_grid_max_zoom
    return f"{opts!r}|{policy!r}|{audience}|cells2|outlines2|grid{grid}"


def is_fixed_version(collection_id: str, coll) -> bool:
    """Whether a collection id always names the same immutable layer.

    ``name@N`` and run layers do (runs are never rewritten); a bare dataset name
    follows its latest version.
    """
    return "@" in collection_id or getattr(coll, "run_id", None) is not None


def _check_tile(z: int, x: int, y: int, settings: Settings) -> None:
    if z > settings.tiles.tile_max_zoom:
        raise TileOutsideBounds(
            f"zoom {z} is above the maximum zoom {settings.tiles.tile_max_zoom}"
        )
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise TileOutsideBounds(
            f"tile {z}/{x}/{y} is outside the WebMercatorQuad matrix (x, y must be < {n} at zoom {z})"
        )


def _etag(*parts: Any) -> str:
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=12).hexdigest()
    return f'"{digest}"'


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    return etag in [t.strip() for t in header.split(",")] or header.strip() == "*"


def _cache_headers(settings: Settings, etag: str, immutable: bool = False) -> dict[str, str]:
    if immutable:
        from api.pyramid import IMMUTABLE_MAX_AGE_S

        return {
            "Cache-Control": f"public, max-age={IMMUTABLE_MAX_AGE_S}, immutable",
            "ETag": etag,
        }
    return {"Cache-Control": f"public, max-age={settings.tiles.tile_cache_seconds}", "ETag": etag}


def tile_options(settings: Settings, policy, kind: str, z: int = 0) -> TileOptions:
    """:class:`TileOptions` of a collection of disclosure ``kind`` under ``settings``.

    Under a policy that publishes no firm points, firms are counts in grid cells at
    every zoom, and the cells are never finer than the public grid's zoom.
    """
    t = settings.tiles
    individual = True
    grid_cells = t.tile_grid_cells
    if kind in ("firms", "labels"):
        individual = bool(policy.firm_points)
    if not policy.firm_points:  # cells no finer than the public grid: z + log2(cells)
        finest = settings.disclosure.public_grid_max_zoom
        grid_cells = min(grid_cells, 1 << max(0, finest - z))
    return TileOptions(
        extent=t.tile_extent,
        buffer=t.tile_buffer,
        max_features=t.tile_max_features,
        grid_cells=grid_cells,
        # assets are public: each is drawn in its category colour at every zoom, and
        # aggregated only where a tile holds more than tile_max_features of them
        points_min_zoom=0 if kind == "assets" else t.points_min_zoom,
        individual_points=individual,
        point_buffer=t.tile_point_buffer,
    )


def load_index(ws, coll, policy):
    """Read a collection version and build its tile index under ``policy``.

    Reads the resolved immutable layer, not the collection id, so a version landing
    meanwhile cannot end up indexed under the previous version's key.
    """
    from api.tiling import upkeep_pause

    upkeep_pause()
    frame = ws.store.read_layer(coll.layer)
    upkeep_pause()
    frame = frame.drop(columns=[c for c in ("x", "y") if c in frame.columns])
    kind = disclosure_kind(coll, frame, ws)
    # firm points pass the policy whole when it publishes them; otherwise only
    # their grid cells leave (each tile's cells go through the policy as a table)
    if kind not in ("firms", "labels") or policy.firm_points:
        # below editor a run's cluster hulls become unions of safe grid cells
        frame = publish(ws, coll, frame, policy, kind)
    elif "employees" in frame.columns:
        # a cell's employment is a magnitude the dominance and p% rules protect, and
        # tile cells only pass the threshold: below editor cells carry counts alone
        frame = frame.drop(columns=["employees"])
    if policy.enforce and not policy.firm_points and "disclosure" in frame.columns:
        frame = frame[frame["disclosure"].isin(["ok"])]  # a suppressed cluster: no outline
    upkeep_pause()
    index = build_index(frame, LAYER_NAME)
    index.disclosure_kind = kind
    return index


def collection_index(app, ws, coll, audience: str = "open"):
    """The tile index of a collection version for ``audience`` (built once, then kept)."""
    cache: IndexCache = app.state.index_cache
    policy = audience_policy(app.state.policy, audience)
    key = coll.id if audience == "open" else f"{coll.id}#{audience}"
    return cache.get(key, coll.layer, lambda: load_index(ws, coll, policy))


def render_tile(
    index, z: int, x: int, y: int, opts: TileOptions, policy, finest: int | None = None
) -> bytes:
    """Encode tile ``z/x/y`` of an index: the dynamic path and the pyramids share it.

    ``finest``: the zoom of the public grid (points aggregated, none individual). Deeper
    tiles carry the cells of that grid, not finer ones (:func:`_coarse_cells_tile`).
    """
    if hasattr(index, "cells"):

        def cells_filter(cells: pd.DataFrame) -> pd.DataFrame:
            out = policy.apply(cells, kind="table", count_col="count")
            return out[pd.to_numeric(out["count"], errors="coerce").notna()]

        if finest is not None and z > finest and not opts.individual_points:
            return _coarse_cells_tile(index, z, x, y, opts, finest, cells_filter)
        return index.tile(z, x, y, opts, cells_filter=cells_filter)
    return index.tile(z, x, y, opts)


def _coarse_cells_tile(index, z: int, x: int, y: int, opts: TileOptions, finest: int, keep):
    """Tile ``z/x/y`` (``z > finest``) drawing the cells of the zoom-``finest`` grid.

    A deeper tile cut into its own cells would publish counts finer than the public
    grid (and, under the threshold, nothing: an empty map when zoomed in). Each cell of
    the ``finest`` grid around the tile is placed at its centre in this tile's units,
    so neighbouring tiles draw the same symbol; cells whose symbol cannot reach the
    tile are left out.
    """
    from api.mvt import encode_point_layer

    d = z - finest
    px, py = x >> d, y >> d
    cells = index.cells(finest, px, py, 1, buffer_cells=1)
    if len(cells):
        cells = keep(cells)
    if len(cells) == 0:
        return b""
    scale = 1 << d  # tiles of zoom z per cell side
    cx = ((px + cells["cell_x"].to_numpy() + 0.5) * scale - x) * opts.extent
    cy = ((py + cells["cell_y"].to_numpy() + 0.5) * scale - y) * opts.extent
    pad = opts.point_buffer
    near = (cx >= -pad) & (cx < opts.extent + pad) & (cy >= -pad) & (cy < opts.extent + pad)
    if not near.any():
        return b""
    props = {
        "count": cells["count"].to_numpy()[near].astype(np.int64),
        "aggregated": np.ones(int(near.sum()), dtype=bool),
    }
    return encode_point_layer(
        index.layer_name,
        np.floor(cx[near]).astype(np.int64),
        np.floor(cy[near]).astype(np.int64),
        props,
        extent=opts.extent,
    )


@router.get(
    f"/collections/{{collection_id}}/tiles/{TMS}/{{z}}/{{x}}/{{y}}",
    summary="Mapbox Vector Tile of a collection",
    response_class=Response,
    responses={
        200: {"content": {MVT: {}}, "description": "MVT, layer `default`"},
        304: {"description": "Not modified"},
    },
)
async def collection_tile(
    collection_id: str,
    request: Request,
    z: Annotated[int, Path(ge=0, le=30)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    principal=Depends(get_principal),
) -> Response:
    """Firm points are grid counts (``count``, ``employees``, ``aggregated``) below
    ``GEOCLUSTER_POINTS_MIN_ZOOM`` or above ``GEOCLUSTER_TILE_MAX_FEATURES`` points per
    tile, and individual points otherwise; polygons are clipped and simplified.

    Cached tiles are answered on the event loop; building a tile (or the collection's
    index, on first use) runs in the thread pool."""
    # not Depends(get_settings): a sync dependency is a thread-pool round trip per tile
    settings: Settings = request.app.state.settings
    _check_tile(z, x, y, settings)
    holder = request.app.state.get_workspace
    ws = holder.opened or await run_in_threadpool(holder)
    resolver = request.app.state.collections
    coll = resolver.peek(ws, collection_id) or await run_in_threadpool(
        resolver.get, ws, collection_id
    )
    if not principal.at_least("admin"):
        await run_in_threadpool(check_collection, ws, principal, coll)
    if not coll.geometry:
        raise InvalidInput(f"collection {collection_id!r} has no geometry to tile")
    audience = tile_audience(request, principal)
    policy = audience_policy(request.app.state.policy, audience)
    token = _tiling_token(request, settings, audience)
    pg = await _database_plan(request, ws, coll, policy, audience, z, settings)
    # the database's bytes differ from the embedded encoder's: never the same ETag
    etag = _etag("mvt", coll.layer, z, x, y, token, *(("postgis",) if pg is not None else ()))
    headers = _cache_headers(settings, etag, immutable=is_fixed_version(collection_id, coll))
    if principal.kind != "open" and audience == "open":  # microdata: never in a shared cache
        headers["Cache-Control"] = headers["Cache-Control"].replace("public", "private")
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    lru = _state_cache(request)
    body = lru.get(etag)
    source = "memory"
    if body is None and pg is None:  # archives hold the embedded encoder's tiles
        body, source = _from_archive(request, ws, coll, token, z, x, y), "archive"
    if body is None and pg is not None:
        body = await run_in_threadpool(_render_database, ws, pg, z, x, y, settings, policy)
        source = "postgis"
        lru.put(etag, body)
    if body is None:
        body = await run_in_threadpool(
            _render_tile, request, ws, coll, z, x, y, settings, policy, audience
        )
        source = "encoded"
        lru.put(etag, body)
    if settings.tiles.tile_debug_headers:
        headers = {**headers, "X-Tile-Source": source, "X-Tile-Worker": str(os.getpid())}
    return Response(body, media_type=MVT, headers=headers)


def _tiling_token(request: Request, settings: Settings, audience: str) -> str:
    tokens = getattr(request.app.state, "tiling_tokens", None)
    if tokens is None:
        tokens = request.app.state.tiling_tokens = {}
    token = tokens.get(audience)
    if token is None:
        policy = audience_policy(request.app.state.policy, audience)
        token = tokens[audience] = tiling_token(settings, policy, audience)
    return token


async def _database_plan(request: Request, ws, coll, policy, audience: str, z: int, settings):
    """The :class:`api.pgtiles.PgPlan` when the database cuts this tile, else None.

    Only on a PostGIS store, for layers whose disclosure rule the database can apply,
    and at the zooms ``GEOCLUSTER_TILE_POSTGIS`` routes there (:mod:`api.pgtiles`).
    """
    from api import pgtiles

    mode = settings.tiles.tile_postgis
    if mode == "never" or not pgtiles.is_postgis(ws):
        return None
    plans = getattr(request.app.state, "pg_tile_plans", None)
    if plans is None:
        plans = request.app.state.pg_tile_plans = pgtiles.PlanCache()
    known, found = plans.peek(coll.layer, audience)
    if not known:  # first tile of this layer: a catalog look-up, off the event loop
        found = await run_in_threadpool(plans.get, ws, coll, policy, audience)
    if (
        found is not None
        and found.points
        and not policy.firm_points
        and z > settings.disclosure.public_grid_max_zoom
    ):
        return None  # past the public grid a viewer's tile is that grid's cells: embedded
    return found if pgtiles.use_database(mode, found, z) else None


def _render_database(ws, pg, z: int, x: int, y: int, settings: Settings, policy) -> bytes:
    from api import pgtiles

    opts = tile_options(settings, policy, pg.kind, z)
    return pgtiles.render(ws, pg, z, x, y, opts, policy, LAYER_NAME)


def _from_archive(request: Request, ws, coll, token: str, z: int, x: int, y: int) -> bytes | None:
    """The tile from the layer's pre-built archive, or None where it has none."""
    from api.pyramid import cached_archive_path

    archive = _archives(request).get(cached_archive_path(ws.path, coll.layer, token))
    return archive.get(z, x, y) if archive is not None else None


def _render_tile(
    request: Request, ws, coll, z: int, x: int, y: int, settings: Settings, policy, audience: str
):
    index = collection_index(request.app, ws, coll, audience)
    kind = getattr(index, "disclosure_kind", "other")
    finest = None if policy.firm_points else settings.disclosure.public_grid_max_zoom
    return render_tile(index, z, x, y, tile_options(settings, policy, kind, z), policy, finest)


@router.get(
    f"/collections/{{collection_id}}/tiles/{TMS}/tilejson.json", summary="TileJSON of a collection"
)
def collection_tilejson(
    collection_id: str,
    request: Request,
    settings: Settings = Depends(get_settings),
    ws=Depends(get_workspace),
    principal=Depends(get_principal),
) -> dict[str, Any]:
    coll = ws.collection(collection_id)
    check_collection(ws, principal, coll)
    if not coll.geometry:
        raise InvalidInput(f"collection {collection_id!r} has no geometry to tile")
    base = str(request.base_url).rstrip("/")
    bbox = list(coll.bbox) if coll.bbox else [-180.0, -85.0511, 180.0, 85.0511]
    return {
        "tilejson": "3.0.0",
        "name": coll.id,
        "description": coll.title,
        "scheme": "xyz",
        # the id as asked: ``name@N`` keeps pointing at that version's immutable tiles
        "tiles": [f"{base}/collections/{_url_id(collection_id)}/tiles/{TMS}/{{z}}/{{x}}/{{y}}"],
        "minzoom": 0,
        "maxzoom": settings.tiles.tile_max_zoom,
        "bounds": bbox,
        "center": [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, 4],
        "vector_layers": [
            {
                "id": LAYER_NAME,
                "description": "points aggregate to grid cells (count, employees) at low zoom",
                "minzoom": 0,
                "maxzoom": settings.tiles.tile_max_zoom,
                "fields": tile_fields(ws, coll),
            }
        ],
    }


def _field_type(arrow_type) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(arrow_type):
        return "Boolean"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "Number"
    return "String"


def tile_fields(ws, coll) -> dict[str, str]:
    """The properties the collection's tiles carry, as TileJSON ``fields`` (name -> type).

    Mirrors :mod:`api.tiling`: individual points keep the preferred properties first, at
    most ``MAX_PROPERTIES``; aggregated cells carry ``count``, ``employees`` and
    ``aggregated``; polygons and lines keep every scalar column.
    """
    import pyarrow as pa

    schema = ws.store.schema(coll.layer)
    scalar = {
        f.name: _field_type(f.type)
        for f in schema
        if f.name not in ("geometry", "x", "y")
        and not (pa.types.is_nested(f.type) or pa.types.is_binary(f.type))
    }
    sample = ws.read_collection(coll.id, limit=1)
    types = set(sample.geometry.dropna().geom_type) if hasattr(sample, "geometry") else set()
    if not (types and types <= {"Point", "MultiPoint"}):
        return scalar
    preferred = [c for c in POINT_PROPERTIES_PREFERRED if c in scalar]
    keep = (preferred + [c for c in scalar if c not in preferred])[:MAX_PROPERTIES]
    fields = {c: scalar[c] for c in keep}
    fields["count"] = "Number"
    if "employees" in scalar:  # cells sum employees only when the points have them
        fields["employees"] = "Number"
    fields["aggregated"] = "Boolean"
    return fields


def _url_id(collection_id: str) -> str:
    from urllib.parse import quote

    return quote(collection_id, safe="@._-")


# -- rasters -------------------------------------------------------------------------------
def _parse_rescale(text: str | None, info) -> tuple[float, float]:
    if not text:
        return raster_rescale_range(info)
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidInput(f"rescale must be 'min,max' numbers, got {text!r}") from None
    if not hi > lo:
        raise InvalidInput(f"rescale max must exceed min, got {text!r}")
    return lo, hi


@router.get(
    f"/rasters/{{raster_id}}/tiles/{TMS}/{{z}}/{{x}}/{{y}}.png",
    summary="PNG tile of a raster (colormap, transparent nodata)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {"description": "Outside the raster"}},
)
def raster_tile(
    raster_id: str,
    request: Request,
    z: Annotated[int, Path(ge=0, le=30)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    colormap: Annotated[
        str | None, Query(description="rio-tiler colormap name", examples=["viridis", "magma"])
    ] = None,
    rescale: Annotated[
        str | None, Query(description="min,max of the colour ramp (default: 2-98th percentile)")
    ] = None,
    settings: Settings = Depends(get_settings),
    ws=Depends(get_workspace),
    principal=Depends(get_principal),
) -> Response:
    from rio_tiler.colormap import cmap
    from rio_tiler.errors import InvalidColorMapName
    from rio_tiler.io import Reader

    _check_tile(z, x, y, settings)
    info = visible_raster(ws, principal, raster_id)
    withheld = info.kind == "kde" and _check_surface(
        info, request.app.state.policy, refuse=not principal.sees_microdata
    )
    name = colormap or settings.tiles.raster_colormap
    try:
        colors = cmap.get(name)
    except InvalidColorMapName:
        raise InvalidInput(
            f"unknown colormap {name!r}; e.g. viridis, magma, inferno, reds"
        ) from None
    lo, hi = _parse_rescale(rescale, info)
    etag = _etag("png", info.id, info.created, z, x, y, name, lo, hi)
    headers = _cache_headers(settings, etag)
    if withheld and principal.kind != "open":  # an editor's view: never in a shared cache
        headers["Cache-Control"] = headers["Cache-Control"].replace("public", "private")
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    with Reader(info.path) as src:
        img = src.tile(x, y, z, tilesize=256, indexes=1)
    if info.kind == "kde":  # zero density is transparent, not the bottom colour
        data = img.array
        data.mask = np.ma.getmaskarray(data) | (data.filled(0) <= 0)
    img.rescale(in_range=((lo, hi),))
    body = img.render(img_format="PNG", colormap=colors)
    return Response(body, media_type="image/png", headers=headers)


def _check_surface(info, policy, *, refuse: bool) -> bool:
    """Whether a KDE surface is withheld below editor, by the rule its analysis result
    passes (:func:`geocluster.disclosure.surface_withheld`); with ``refuse`` (a viewer)
    a withheld surface is a 403 with the reason."""
    from geocluster.disclosure import surface_withheld
    from geocluster.errors import DisclosureError

    meta = info.meta or {}
    reason = surface_withheld(meta.get("bandwidth_m"), meta.get("n_firms"), policy)
    if reason is not None and refuse:
        raise DisclosureError(
            f"raster {info.id!r} is withheld below editor ({reason}): a density surface "
            f"needs a bandwidth of at least {policy.bandwidth_floor_m:g} m and "
            f"{policy.min_contributors} firms"
        )
    return reason is not None


@router.get("/rasters/{raster_id}/tilejson.json", summary="TileJSON of a raster")
def raster_tilejson(
    raster_id: str,
    request: Request,
    colormap: str | None = None,
    settings: Settings = Depends(get_settings),
    ws=Depends(get_workspace),
    principal=Depends(get_principal),
) -> dict[str, Any]:
    info = visible_raster(ws, principal, raster_id)
    base = str(request.base_url).rstrip("/")
    qs = f"?colormap={colormap}" if colormap else ""
    bbox = list(info.bbox) if info.bbox else [-180.0, -85.0511, 180.0, 85.0511]
    lo, hi = raster_rescale_range(info)
    return {
        "tilejson": "3.0.0",
        "name": info.id,
        "scheme": "xyz",
        "tiles": [f"{base}/rasters/{info.id}/tiles/{TMS}/{{z}}/{{x}}/{{y}}.png{qs}"],
        "minzoom": 0,
        "maxzoom": settings.tiles.tile_max_zoom,
        "bounds": bbox,
        "center": [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, 6],
        "rescale": [lo, hi],
        "colormap": colormap or settings.tiles.raster_colormap,
    }


def warm_indexes(app) -> None:
    """Build the tile indexes of every firms dataset (run in a background thread).

    The first map view of a large registry then does not wait for the index. With
    ``GEOCLUSTER_TILE_PYRAMIDS`` each one's PMTiles archive is then queued as a job.
    Failures are logged and ignored: a tile request builds the index anyway. Like
    other upkeep it yields to analyses between its steps (reading the layer, each
    column): an analysis request right after a start gets the cores.
    """
    import logging

    from api.tiling import yielding_to

    log = logging.getLogger("geocluster.api")
    cache, jobs = app.state.index_cache, app.state.jobs

    def pause() -> None:
        jobs.yield_to_analyses(stop=cache.waiting)

    try:
        ws = app.state.get_workspace()
        for info in ws.datasets():
            if info.kind == "firms":
                with yielding_to(pause):
                    collection_index(app, ws, ws.collection(info.id))
                log.info("tile index ready for %s (%d firms)", info.id, info.rows)
                from api.pyramid import schedule_pyramids

                # datasets ingested without a server (the CLI) get theirs now; one
                # job per archive across workers (catalog), every worker maps it
                schedule_pyramids(app, [info.ref])
    except Exception:  # noqa: BLE001 - best effort
        log.exception("warming the tile indexes failed")


__all__ = ["router", "collection_index", "warm_indexes"]
