"""``GET /basemap/...``: the offline basemap (land, borders, place names) as MVT and a style."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response

from api.deps import get_settings
from api.settings import Settings

router = APIRouter(tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"


def _admin_outlines(request: Request):
    from maps.basemap import AdminOutlines

    holder = getattr(request.app.state, "basemap_admin", None)
    if holder is None:
        holder = request.app.state.basemap_admin = AdminOutlines()
    return holder.get(request.app.state.get_workspace())


@router.get(
    "/basemap/tiles/{z}/{x}/{y}",
    summary="Offline basemap tile (MVT)",
    response_class=Response,
    responses={
        200: {
            "content": {MVT: {}},
            "description": "MVT with layers `land`, `admin`, `country_labels`, `places`",
        }
    },
)
def basemap_tile(
    request: Request,
    z: Annotated[int, Path(ge=0, le=16)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    settings: Settings = Depends(get_settings),
) -> Response:
    """One basemap tile (MVT).

    Natural Earth countries, the workspace's sub-national outlines and GeoNames places
    (>= 1,000 inhabitants; fewer and larger at low zoom). Built from data shipped with
    geocluster's dependencies: no internet needed. Attribution: Natural Earth, © GeoNames
    (CC BY 4.0).
    """
    from maps.basemap import basemap_tile as build

    body = build(z, x, y, admin=_admin_outlines(request))
    return Response(
        body,
        media_type=MVT,
        headers={"Cache-Control": f"public, max-age={settings.tiles.tile_cache_seconds}"},
    )


@router.get("/basemap/style.json", summary="Style of the offline basemap (MapLibre GL v8)")
def basemap_style(request: Request) -> JSONResponse:
    """A MapLibre / Mapbox GL style (version 8) for the basemap tiles, usable in QGIS."""
    from maps.basemap import style_json

    base = str(request.base_url).rstrip("/")
    return JSONResponse(style_json(f"{base}/basemap/tiles/{{z}}/{{x}}/{{y}}"))
