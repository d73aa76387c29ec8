"""``/regions``: profile of one region, comparison of several, peer regions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.deps import get_workspace
from api.routers.analyses import analysis_function
from geocluster.errors import InvalidInput

router = APIRouter(prefix="/regions", tags=["regions"])

Boundaries = Annotated[str | None, Query(description="boundaries dataset id (default: the latest)")]


def _optional(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


@router.get("/compare", summary="Compare regions side by side")
def compare(
    request: Request,
    ids: Annotated[str, Query(description="comma-separated region ids", examples=["14,11,19"])],
    boundaries: Boundaries = None,
    firms: Annotated[str | None, Query()] = None,
    indicators: Annotated[str | None, Query()] = None,
    ws=Depends(get_workspace),
) -> Any:
    region_ids = [i.strip() for i in ids.split(",") if i.strip()]
    if len(region_ids) < 2:
        raise InvalidInput(f"expected at least 2 comma-separated region ids in 'ids', got {ids!r}")
    fn = analysis_function("territories", "compare_regions")
    return fn(
        ws, region_ids, **_optional(boundaries=boundaries, firms=firms, indicators=indicators)
    )


@router.get("/{region_id}/profile", summary="Profile of one region")
def profile(
    region_id: str,
    boundaries: Boundaries = None,
    firms: Annotated[str | None, Query()] = None,
    indicators: Annotated[str | None, Query()] = None,
    assets: Annotated[str | None, Query()] = None,
    ws=Depends(get_workspace),
) -> Any:
    fn = analysis_function("territories", "region_profile")
    return fn(
        ws,
        region_id,
        **_optional(boundaries=boundaries, firms=firms, indicators=indicators, assets=assets),
    )


@router.get("/{region_id}/peers", summary="Most similar regions")
def peers(
    region_id: str,
    k: Annotated[int, Query(ge=1, le=100)] = 5,
    boundaries: Boundaries = None,
    firms: Annotated[str | None, Query()] = None,
    indicators: Annotated[str | None, Query()] = None,
    ws=Depends(get_workspace),
) -> Any:
    fn = analysis_function("territories", "peer_regions")
    return fn(
        ws, region_id, k=k, **_optional(boundaries=boundaries, firms=firms, indicators=indicators)
    )
