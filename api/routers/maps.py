"""``GET /map``: the planners' web map (folium + vendored Leaflet, no CDN).

Each layer's input is named by a query parameter; unnamed, a layer is drawn only when the
workspace holds exactly one candidate (the page's layer chooser offers the others).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from api.auth import can_see_dataset, can_see_raster, can_see_run, get_principal
from api.deps import get_workspace
from geocluster.auth import Principal

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
    principal: Principal = Depends(get_principal),
) -> HTMLResponse:
    """The map as the caller may see it.

    Only the datasets, runs and rasters it may see; below editor the disclosure-safe
    layers (firms as grid counts, cluster hulls and LQ tables under the enforced
    policy, no withheld density surface).
    """
    from api.routers.features import _policy_for
    from maps import build_map

    policy = _policy_for(request, principal)

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
        policy=policy,
        visible=None if principal.at_least("admin") else _visible(ws, principal, policy),
    )
    return HTMLResponse(html)


def _visible(ws, principal: Principal, policy):
    """``obj -> bool``: whether the caller may see a dataset, run or raster on the map.

    Below editor a density surface the raster tiles would refuse (bandwidth under the
    floor, too few firms) is left out too, rather than drawn as a layer of 403s.
    """
    from geocluster.workspace import DatasetInfo, RasterInfo, RunInfo

    def visible(obj) -> bool:
        if isinstance(obj, DatasetInfo):
            return can_see_dataset(principal, obj)
        if isinstance(obj, RunInfo):
            return can_see_run(ws, principal, obj)
        if isinstance(obj, RasterInfo):
            if not can_see_raster(ws, principal, obj):
                return False
            if principal.sees_microdata:
                return True
            from api.routers.tiles import _check_surface

            return not _check_surface(obj, policy, refuse=False)
        return False

    return visible
