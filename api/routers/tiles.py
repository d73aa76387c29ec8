"""Vector tiles per collection (MVT) and raster tiles per registered raster (PNG).

Every tile carries ``Cache-Control`` and a strong ``ETag`` derived from the data
version (the store's physical layer name, or the raster's creation stamp) and the
tiling settings, so ``If-None-Match`` answers 304 without touching the data.
"""

from __future__ import annotations

import hashlib
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
from api.routers.features import disclosure_kind
from api.settings import Settings
from api.tiling import (
    IndexCache,
    TileOptions,
    build_index,
    raster_rescale_range,
)
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
        cache = app.state.tile_bytes = _BytesLRU()
    return cache


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


def _cache_headers(settings: Settings, etag: str) -> dict[str, str]:
    return {"Cache-Control": f"public, max-age={settings.tiles.tile_cache_seconds}", "ETag": etag}


def _tile_options(
    settings: Settings, policy, kind: str, safe: bool = False, z: int = 0
) -> TileOptions:
    t = settings.tiles
    individual = True
    if kind in ("firms", "labels"):
        # below editor, firms are counts in grid cells at every zoom
        individual = bool(policy.firm_points) and not safe
    grid_cells = t.tile_grid_cells
    if safe:  # cells no finer than the public grid: z + log2(cells) <= its zoom
        finest = settings.disclosure.public_grid_max_zoom
        grid_cells = min(grid_cells, 1 << max(0, finest - z))
    return TileOptions(
        extent=t.tile_extent,
        buffer=t.tile_buffer,
        max_features=t.tile_max_features,
        grid_cells=grid_cells,
        points_min_zoom=t.points_min_zoom,
        individual_points=individual,
        point_buffer=t.tile_point_buffer,
    )


def collection_index(app, ws, coll, safe: bool = False):
    """The tile index of a collection version (built once, then from memory).

    ``safe``: the index served below editor, built with the policy enforced and
    without firm locations (cluster outlines smoothed, small clusters suppressed).
    Firm points need no separate index: below editor only their grid cells leave.
    """
    cache: IndexCache = app.state.index_cache
    policy = app.state.policy
    if safe:
        from dataclasses import replace

        policy = replace(policy, enforce=True, firm_points=False)

    def build():
        frame = ws.read_collection(coll.id)
        kind = disclosure_kind(coll, frame)
        # firm points pass the policy whole when it publishes them; otherwise only
        # their grid cells leave (each tile's cells go through the policy as a table)
        if kind not in ("firms", "labels") or policy.firm_points:
            frame = policy.apply(frame, kind=kind)
        if safe and "disclosure" in frame.columns:  # a suppressed cluster has no outline
            frame = frame[frame["disclosure"].isin(["ok"])]
        index = build_index(frame, LAYER_NAME)
        index.disclosure_kind = kind
        return index

    if safe and str(coll.kind) != "firms":
        return cache.get(f"{coll.id}#safe", coll.layer, build)
    return cache.get(coll.id, coll.layer, build)


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
    settings: Settings = Depends(get_settings),
    principal=Depends(get_principal),
) -> Response:
    """Firm points are grid counts (``count``, ``employees``, ``aggregated``) below
    ``GEOCLUSTER_POINTS_MIN_ZOOM`` or above ``GEOCLUSTER_TILE_MAX_FEATURES`` points per
    tile, and individual points otherwise; polygons are clipped and simplified.

    Cached tiles are answered on the event loop; building a tile (or the collection's
    index, on first use) runs in the thread pool."""
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
    policy = request.app.state.policy
    safe = not principal.sees_microdata
    etag = _etag("mvt", coll.id, coll.layer, z, x, y, _tiling_token(request, settings), safe)
    headers = _cache_headers(settings, etag)
    if principal.kind != "open" and not safe:  # microdata: never in a shared cache
        headers["Cache-Control"] = headers["Cache-Control"].replace("public", "private")
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    lru = _state_cache(request)
    body = lru.get(etag)
    if body is None:
        body = await run_in_threadpool(
            _render_tile, request, ws, coll, z, x, y, settings, policy, safe
        )
        lru.put(etag, body)
    return Response(body, media_type=MVT, headers=headers)


def _tiling_token(request: Request, settings: Settings) -> str:
    token = getattr(request.app.state, "tiling_token", None)
    if token is None:
        token = settings.tiles.model_dump_json() + repr(request.app.state.policy)
        request.app.state.tiling_token = token
    return token


def _render_tile(
    request: Request,
    ws,
    coll,
    z: int,
    x: int,
    y: int,
    settings: Settings,
    policy,
    safe: bool = False,
):
    index = collection_index(request.app, ws, coll, safe)
    kind = getattr(index, "disclosure_kind", "other")
    opts = _tile_options(settings, policy, kind, safe, z)
    if safe:  # the policy enforced: cells under the threshold are dropped, not flagged
        from dataclasses import replace

        policy = replace(policy, enforce=True, firm_points=False)
    if hasattr(index, "cells"):

        def cells_filter(cells: pd.DataFrame) -> pd.DataFrame:
            out = policy.apply(cells, kind="table", count_col="count")
            return out[pd.to_numeric(out["count"], errors="coerce").notna()]

        return index.tile(z, x, y, opts, cells_filter=cells_filter)
    return index.tile(z, x, y, opts)


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
        "tiles": [f"{base}/collections/{coll.id}/tiles/{TMS}/{{z}}/{{x}}/{{y}}"],
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
            }
        ],
    }


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

    The first map view of a large registry then does not wait for the index.
    Failures are logged and ignored: a tile request builds the index anyway.
    """
    import logging

    log = logging.getLogger("geocluster.api")
    try:
        ws = app.state.get_workspace()
        for info in ws.datasets():
            if info.kind == "firms":
                collection_index(app, ws, ws.collection(info.id))
                log.info("tile index ready for %s (%d firms)", info.id, info.rows)
    except Exception:  # noqa: BLE001 - best effort
        log.exception("warming the tile indexes failed")


__all__ = ["router", "collection_index", "warm_indexes"]
