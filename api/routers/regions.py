"""``/regions``: profile of one region, comparison of several, peer regions, the report.

The same specs as ``POST /analyses/profile|compare|peers``, with their parameters in the
query string; every response passes :func:`geocluster.disclosure.apply`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.deps import get_workspace
from api.routers.analyses import principal_of, run_spec
from geocluster.analyses.spec import get
from geocluster.errors import InvalidInput

router = APIRouter(prefix="/regions", tags=["regions"])

_ONLY = " (default: the only candidate; several -> 422 listing them)"
Boundaries = Annotated[str | None, Query(description="boundaries dataset id" + _ONLY)]
Firms = Annotated[str | None, Query(description="firms dataset id" + _ONLY)]
Indicators = Annotated[str | None, Query(description="indicators dataset id" + _ONLY)]
Assets = Annotated[str | None, Query(description="assets dataset id" + _ONLY)]
ClustersRun = Annotated[str | None, Query(description="clusters run id" + _ONLY)]
Year = Annotated[int | None, Query(description="indicator year (default: latest)")]
ChangeRun = Annotated[
    str | None,
    Query(description="change run (baseline -> follow-up) for the report (default: the only "
          "one on the clusters run, else on the firms)"),
]  # fmt: skip
InstitutionsRun = Annotated[
    str | None,
    Query(description="institutions run for the report (default: the only one on the "
          "clusters run, else on the firms)"),
]  # fmt: skip

DynamicsRun = Annotated[
    str | None,
    Query(description="dynamics run for the report (default: the only one on the boundaries "
          "and firms, else on the clusters run)"),
]  # fmt: skip
ShiftShareRun = Annotated[
    str | None,
    Query(description="shiftshare run for the report (default: the only one on the "
          "boundaries and either firms version)"),
]  # fmt: skip
RelatednessRun = Annotated[
    str | None,
    Query(description="relatedness run for the report (default: the only one on the "
          "boundaries and firms)"),
]  # fmt: skip


def _given(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


def _run(request: Request, ws: Any, name: str, values: dict[str, Any]) -> Any:
    spec = get(name)
    return run_spec(request, ws, spec, spec.parse(values))


@router.get("/compare", summary="Compare regions side by side")
def compare(
    request: Request,
    ids: Annotated[str, Query(description="comma-separated region ids", examples=["14,11,19"])],
    boundaries: Boundaries = None,
    firms: Firms = None,
    indicators: Indicators = None,
    assets: Assets = None,
    clusters_run: ClustersRun = None,
    year: Year = None,
    top: Annotated[int, Query(ge=1, le=50, description="top sectors per region")] = 5,
    ws=Depends(get_workspace),
) -> Any:
    region_ids = [i.strip() for i in ids.split(",") if i.strip()]
    if len(region_ids) < 2:
        raise InvalidInput(f"expected at least 2 comma-separated region ids in 'ids', got {ids!r}")
    values = _given(
        boundaries=boundaries,
        firms=firms,
        indicators=indicators,
        assets=assets,
        clusters_run=clusters_run,
        year=year,
    )
    return _run(request, ws, "compare", {"ids": region_ids, "top": top, **values})


@router.get("/{region_id}/profile", summary="Profile of one region")
def profile(
    request: Request,
    region_id: str,
    boundaries: Boundaries = None,
    firms: Firms = None,
    indicators: Indicators = None,
    assets: Assets = None,
    clusters_run: ClustersRun = None,
    year: Year = None,
    top: Annotated[int, Query(ge=1, le=50, description="top sectors")] = 5,
    ws=Depends(get_workspace),
) -> Any:
    values = _given(
        boundaries=boundaries,
        firms=firms,
        indicators=indicators,
        assets=assets,
        clusters_run=clusters_run,
        year=year,
    )
    return _run(request, ws, "profile", {"region_id": region_id, "top": top, **values})


@router.get("/{region_id}/peers", summary="Most similar regions on standardised indicators")
def peers(
    request: Request,
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
    values = _given(boundaries=boundaries, firms=firms, indicators=indicators, year=year)
    if names:
        values["names"] = [n.strip() for n in names.split(",") if n.strip()]
    return _run(request, ws, "peers", {"region_id": region_id, "k": k, **values})


@router.get(
    "/{region_id}/report",
    summary="A region report (HTML or PDF) to hand out",
    response_class=Response,
    responses={
        200: {
            "content": {"text/html": {}, "application/pdf": {}},
            "description": "The report: profile, indicators against peers over time, "
            "clusters of the named run with their ranking components, specialisation, "
            "inequality, assets and gaps, SDG proxies, baseline -> follow-up cluster change, "
            "support institutions and support gaps, firm dynamics and cluster emergence, "
            "shift-share, economic complexity and nearby opportunities, a locator map and the "
            "exact inputs.",
        }
    },
)
def report(
    request: Request,
    region_id: str,
    boundaries: Boundaries = None,
    clusters_run: ClustersRun = None,
    indicators: Indicators = None,
    firms: Firms = None,
    assets: Assets = None,
    change_run: ChangeRun = None,
    institutions_run: InstitutionsRun = None,
    dynamics_run: DynamicsRun = None,
    shiftshare_run: ShiftShareRun = None,
    relatedness_run: RelatednessRun = None,
    f: Annotated[Literal["html", "pdf"], Query(description="html or pdf")] = "html",
    ws=Depends(get_workspace),
) -> Response:
    """Build the report from the same disclosed results the API serves to this caller."""
    from geocluster.report import build_report

    content = build_report(
        ws,
        region_id,
        f=f,
        boundaries=boundaries,
        clusters_run=clusters_run,
        indicators=indicators,
        firms=firms,
        assets=assets,
        change_run=change_run,
        institutions_run=institutions_run,
        dynamics_run=dynamics_run,
        shiftshare_run=shiftshare_run,
        relatedness_run=relatedness_run,
        principal=principal_of(request),
        policy=request.app.state.policy,
    )
    media = "application/pdf" if f == "pdf" else "text/html; charset=utf-8"
    filename = f"report-{region_id}.{f}".replace('"', "")
    disposition = "attachment" if f == "pdf" else "inline"
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'{disposition}; filename="{filename}"'},
    )
