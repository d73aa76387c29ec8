"""``GET /map``: the planners' web map (folium + vendored Leaflet, no CDN)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import get_workspace

router = APIRouter(tags=["map"])


@router.get("/map", response_class=HTMLResponse, summary="Web map (HTML)")
def web_map(
    request: Request,
    firms: Annotated[str | None, Query(description="firms dataset id (default: latest)")] = None,
    clusters: Annotated[str | None, Query(description="clusters run id (default: latest)")] = None,
    kde: Annotated[str | None, Query(description="KDE raster id (default: latest KDE)")] = None,
    boundaries: Annotated[
        str | None, Query(description="boundaries dataset id (default: latest)")
    ] = None,
    sector: Annotated[
        str | None, Query(description="choropleth of the LQ of this sector (ISIC code)")
    ] = None,
    indicator: Annotated[
        str | None, Query(description="choropleth of this indicator instead")
    ] = None,
    year: Annotated[int | None, Query(description="indicator year (default: latest)")] = None,
    indicators: Annotated[
        str | None, Query(description="indicators dataset id (default: latest)")
    ] = None,
    assets: Annotated[str | None, Query(description="assets dataset id (default: latest)")] = None,
    hotspots: Annotated[str | None, Query(description="hotspots run id (default: latest)")] = None,
    basemap: Annotated[
        bool,
        Query(description="add the OpenStreetMap basemap (needs the internet; off by default)"),
    ] = False,
    offline_basemap: Annotated[
        bool,
        Query(
            description="show geocluster's offline basemap and place names (/basemap/tiles; "
            "on by default)"
        ),
    ] = True,
    ws=Depends(get_workspace),
) -> HTMLResponse:
    from maps import build_map

    html = build_map(
        ws,
        firms=firms,
        clusters_run=clusters,
        kde_raster=kde,
        boundaries=boundaries,
        sector=sector,
        indicator=indicator,
        year=year,
        indicators=indicators,
        assets=assets,
        hotspots_run=hotspots,
        basemap=basemap,
        offline_basemap=offline_basemap,
        policy=request.app.state.policy,
    )
    return HTMLResponse(html)
