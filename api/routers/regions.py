"""``/regions``: profile of one region, comparison of several, peer regions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import get_workspace
from api.routers.analyses import analysis_function
from geocluster.errors import InvalidInput

router = APIRouter(prefix="/regions", tags=["regions"])

Boundaries = Annotated[
    str | None, Query(description="boundaries dataset id (default: the only/latest one)")
]
Firms = Annotated[str | None, Query(description="firms dataset id")]
Indicators = Annotated[str | None, Query(description="indicators dataset id")]
Assets = Annotated[str | None, Query(description="assets dataset id")]
Year = Annotated[int | None, Query(description="indicator year (default: latest)")]


def _optional(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


@router.get("/compare", summary="Compare regions side by side")
def compare(
    ids: Annotated[str, Query(description="comma-separated region ids", examples=["14,11,19"])],
    boundaries: Boundaries = None,
    firms: Firms = None,
    indicators: Indicators = None,
    assets: Assets = None,
    year: Year = None,
    top: Annotated[int, Query(ge=1, le=50, description="top sectors per region")] = 5,
    ws=Depends(get_workspace),
) -> Any:
    region_ids = [i.strip() for i in ids.split(",") if i.strip()]
    if len(region_ids) < 2:
        raise InvalidInput(f"expected at least 2 comma-separated region ids in 'ids', got {ids!r}")
    fn = analysis_function("territories", "compare_regions")
    opts = _optional(
        boundaries=boundaries, firms=firms, indicators=indicators, assets=assets, year=year
    )
    return fn(ws, region_ids, top=top, **opts)


@router.get("/{region_id}/profile", summary="Profile of one region")
def profile(
    region_id: str,
    boundaries: Boundaries = None,
    firms: Firms = None,
    indicators: Indicators = None,
    assets: Assets = None,
    year: Year = None,
    top: Annotated[int, Query(ge=1, le=50, description="top sectors")] = 5,
    ws=Depends(get_workspace),
) -> Any:
    fn = analysis_function("territories", "region_profile")
    opts = _optional(
        boundaries=boundaries, firms=firms, indicators=indicators, assets=assets, year=year
    )
    return fn(ws, region_id, top=top, **opts)


@router.get("/{region_id}/peers", summary="Most similar regions on standardised indicators")
def peers(
    region_id: str,
    k: Annotated[int, Query(ge=1, le=100)] = 5,
    boundaries: Boundaries = None,
    firms: Firms = None,
    indicators: Indicators = None,
    year: Year = None,
    names: Annotated[
        str | None, Query(description="comma-separated indicator names to compare on")
    ] = None,
    ws=Depends(get_workspace),
) -> Any:
    fn = analysis_function("territories", "peer_regions")
    opts = _optional(boundaries=boundaries, firms=firms, indicators=indicators, year=year)
    if names:
        opts["names"] = [n.strip() for n in names.split(",") if n.strip()]
    return fn(ws, region_id, k=k, **opts)
