"""``GET /map``: the planners' web map (folium + vendored Leaflet, no CDN).

Each layer's input is named by a query parameter; unnamed, a layer is drawn only when the
workspace holds exactly one candidate (the page's layer chooser offers the others).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import get_workspace

router = APIRouter(tags=["map"])


@router.get("/map", response_class=HTMLResponse, summary="Web map (HTML)")
def web_map(
    request: Request,
    firms: Annotated[
        str | None, Query(description="firms dataset id (default: the only candidate)")
    ] = None,
    clusters: Annotated[
        str | None, Query(description="clusters run id (default: the only candidate)")
    ] = None,
    kde: Annotated[
        str | None, Query(description="KDE raster id (default: the only candidate)")
    ] = None,
    boundaries: Annotated[
        str | None, Query(description="boundaries dataset id (default: the only candidate)")
    ] = None,
    sector: Annotated[
        str | None, Query(description="choropleth of the LQ of this sector (ISIC code)")
    ] = None,
    indicator: Annotated[
        str | None, Query(description="choropleth of this indicator instead")
    ] = None,
    year: Annotated[
        int | None, Query(description="indicator year (default: the only candidate)")
    ] = None,
    indicators: Annotated[
        str | None, Query(description="indicators dataset id (default: the only candidate)")
    ] = None,
    assets: Annotated[
        str | None, Query(description="assets dataset id (default: the only candidate)")
    ] = None,
    hotspots: Annotated[
        str | None, Query(description="hotspots run id (default: the only candidate)")
    ] = None,
    ranking: Annotated[
        str | None, Query(description="ranking run of the clusters (default: the only candidate)")
    ] = None,
    specialization: Annotated[
        str | None,
        Query(description="specialization run for the LQ choropleth (default: the only candidate)"),
    ] = None,
    gaps: Annotated[
        str | None, Query(description="asset-gaps run id (default: the only candidate)")
    ] = None,
    sdg: Annotated[
        str | None,
        Query(description="sdg run id: SDG proxies choropleth (default: the only candidate)"),
    ] = None,
    change: Annotated[
        str | None,
        Query(
            description="change run id: baseline -> follow-up clusters (default: the only candidate)"
        ),
    ] = None,
    institutions: Annotated[
        str | None,
        Query(
            description="institutions run id: support institutions and gaps (default: the only candidate)"
        ),
    ] = None,
    dynamics: Annotated[
        str | None,
        Query(
            description="dynamics run id: clusters by emergence year, regional growth (default: "
            "the only candidate)"
        ),
    ] = None,
    shiftshare: Annotated[
        str | None,
        Query(
            description="shiftshare run id: regional shift choropleth (default: the only candidate)"
        ),
    ] = None,
    relatedness: Annotated[
        str | None,
        Query(description="relatedness run id: ECI choropleth (default: the only candidate)"),
    ] = None,
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
        ranking_run=ranking,
        specialization_run=specialization,
        gaps_run=gaps,
        sdg_run=sdg,
        change_run=change,
        institutions_run=institutions,
        dynamics_run=dynamics,
        shiftshare_run=shiftshare,
        relatedness_run=relatedness,
        basemap=basemap,
        offline_basemap=offline_basemap,
        policy=request.app.state.policy,
    )
    return HTMLResponse(html)
