"""``/analyses/*``: JSON in, JSON (or PNG) out; each call persists a run.

Every endpoint validates its body with a pydantic model, calls exactly one function of
:mod:`geocluster.analyses`, and passes the result through the disclosure policy. With
``"async": true`` the call runs as a background job: 202 ``{"job_id", "status_url"}``,
then ``GET /jobs/{id}``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import get_workspace
from geocluster.errors import InvalidInput

router = APIRouter(prefix="/analyses", tags=["analyses"])


class AnalysisRequest(BaseModel):
    """Fields every analysis accepts."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    async_: bool = Field(
        False, alias="async", description="run as a background job and return 202 with a job id"
    )

    def params(self) -> dict[str, Any]:
        """Keyword arguments for the analyses function (``async`` removed, None dropped)."""
        return {k: v for k, v in self.model_dump(exclude={"async_"}).items() if v is not None}


class SectorFilter(BaseModel):
    sectors: list[str] | None = Field(
        None, description="ISIC codes (divisions '15' or classes '1520')", examples=[["15"]]
    )
    sector_group: str | None = Field(
        None,
        description="built-in group: agro_food, tourism, creative_industries",
        examples=["agro_food"],
    )


class ClustersRequest(AnalysisRequest, SectorFilter):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"firms": "firms", "method": "dbscan", "eps_m": 1500, "min_samples": 10}]
        }
    )
    firms: str = Field(..., description="firms dataset id")
    method: Literal["dbscan", "hdbscan"] = "dbscan"
    eps_m: float = Field(1000.0, gt=0, le=1_000_000, description="DBSCAN radius in metres")
    min_samples: int = Field(10, ge=1, le=100_000)
    min_cluster_size: int = Field(
        15, ge=2, le=1_000_000, description="HDBSCAN minimum cluster size"
    )
    weight: str | None = Field(None, description="column weighting firms, e.g. employees")


class KDistanceRequest(AnalysisRequest, SectorFilter):
    model_config = ConfigDict(json_schema_extra={"examples": [{"firms": "firms", "k": 10}]})
    firms: str
    k: int = Field(10, ge=1, le=1000)


class KDERequest(AnalysisRequest, SectorFilter):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"firms": "firms", "bandwidth": "scott", "cell_m": 1000}]}
    )
    firms: str
    bandwidth: Literal["scott", "silverman"] | Annotated[float, Field(gt=0)] = Field(
        "scott", description="rule name or a bandwidth in metres"
    )
    cell_m: float | None = Field(None, gt=0, description="output cell size in metres")
    grid_size: int | None = Field(None, ge=2, le=10_000, description="cells along the longer side")
    weight: str | None = None


class SpecializationRequest(AnalysisRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "firms": "firms",
                    "boundaries": "mexico",
                    "measure": "employees",
                    "sector_level": "division",
                }
            ]
        }
    )
    firms: str
    boundaries: str
    measure: Literal["employees", "firms"] = "employees"
    sector_level: Literal["section", "division"] = "division"
    level: int | None = Field(None, ge=0, le=10, description="boundary level to use")
    bootstrap: int = Field(0, ge=0, le=10_000)
    seed: int = 0
    sector_groups: list[str] | None = Field(
        None, description="also aggregate these sector groups (e.g. agro_food)"
    )


class HotspotsRequest(AnalysisRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "boundaries": "mexico",
                    "indicators": "gdp",
                    "indicator": "pcgdp",
                    "year": 2000,
                    "method": "lisa",
                    "weights": "queen",
                    "permutations": 999,
                }
            ]
        }
    )
    boundaries: str
    values: dict[str, float] | None = Field(None, description="region_id -> value")
    indicators: str | None = None
    indicator: str | None = None
    year: int | None = None
    method: Literal["lisa", "gi_star"] = "lisa"
    weights: str = Field(
        "queen",
        pattern=r"^(queen|rook|knn:\d+|distance:[0-9.]+)$",
        description="queen | rook | knn:K | distance:M",
    )
    permutations: int = Field(999, ge=0, le=99_999)
    seed: int = 0
    fdr: bool = False
    alpha: float = Field(0.05, gt=0, lt=1)
    level: int | None = Field(None, ge=0, le=10)


class PointPatternRequest(AnalysisRequest, SectorFilter):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"firms": "firms", "sectors": ["15"], "method": "ripley", "n_simulations": 99}
            ]
        },
    )
    firms: str
    method: Literal["ripley", "kdensity"] = "ripley"
    n_simulations: int = Field(99, ge=0, le=9999, description="simulations for the envelope")
    seed: int = 0
    support_m: list[float] | None = Field(None, description="distances (metres) to evaluate")
    max_distance_m: float | None = Field(None, gt=0, le=1_000_000)
    boundaries: str | None = Field(None, description="study area from these boundaries")
    region: str | None = Field(None, description="one region of the boundaries as study area")


class RankingRequest(AnalysisRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"clusters_run": "clusters-0123456789", "boundaries": "mexico", "assets": "assets"}
            ]
        }
    )
    clusters_run: str = Field(..., description="run id of a clusters run")
    boundaries: str | None = None
    assets: str | None = None
    radius_m: float = Field(5000.0, gt=0, le=1_000_000)
    weights: dict[str, float] | None = Field(None, description="component -> weight")
    measure: Literal["employees", "firms"] = "employees"
    level: int | None = Field(None, ge=0, le=10)


class InequalityRequest(AnalysisRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"values": [1, 2, 3, 4, 10]},
                {
                    "indicators": "mexico_gdp",
                    "indicator": "pcgdp",
                    "years": [1940, 2000],
                    "group_by": "parent_id",
                    "boundaries": "mexico",
                },
            ]
        }
    )
    values: list[float] | None = Field(None, description="inline values (one per region)")
    population: list[float] | str | None = Field(
        None, description="inline weights, or the population indicator name"
    )
    groups: list[str | int] | None = None
    weights: list[list[int]] | None = Field(
        None, description="neighbour pairs [[i, j], ...] for the spatial Gini"
    )
    permutations: int = Field(99, ge=0, le=99_999)
    seed: int = 0
    indicators: str | None = None
    indicator: str | None = None
    years: list[int] | None = None
    group_by: str | None = None
    boundaries: str | None = None
    level: int | None = Field(None, ge=0, le=10, description="boundary level of the regions")


class AssetsRequest(AnalysisRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "assets": "assets",
                    "firms": "firms",
                    "analysis": "linkage",
                    "radius_m": 5000,
                    "sector_group": "tourism",
                }
            ]
        }
    )
    assets: str
    firms: str | None = None
    boundaries: str | None = None
    analysis: Literal["density", "linkage", "gaps"] = "density"
    radius_m: float = Field(5000.0, gt=0, le=1_000_000)
    sector_group: str | None = None
    sectors: list[str] | None = None
    category: str | None = None
    permutations: int = Field(99, ge=0, le=99_999)
    seed: int = 0
    eps_m: float | None = Field(
        None, gt=0, le=1_000_000, description="asset clustering radius (gaps)"
    )
    min_samples: int = Field(3, ge=1, le=10_000)
    level: int | None = Field(None, ge=0, le=10)
    indicators: str | None = None
    population_indicator: str = "population"
    year: int | None = None
    population_raster: str | None = None


class ZonalRequest(AnalysisRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"raster": "population", "boundaries": "mexico", "stats": ["sum", "mean"]}]
        }
    )
    raster: str
    boundaries: str | None = None
    assets: str | None = None
    radius_m: float | None = Field(None, gt=0, le=1_000_000)
    stats: list[str] = Field(
        ["sum", "mean"], description="count, sum, mean, min, max, std, median, majority, shares"
    )
    level: int | None = Field(None, ge=0, le=10)
    category: str | None = None
    band: int = Field(1, ge=1, le=1000)
    coverage: str = Field("centre", description="centre | touched | fraction")


# -- dispatch ------------------------------------------------------------------------------
def analysis_function(module: str, name: str) -> Callable[..., Any]:
    """``geocluster.analyses.<module>.<name>``."""
    return getattr(importlib.import_module(f"geocluster.analyses.{module}"), name)


def _accepts_progress(fn: Callable[..., Any]) -> bool:
    try:
        return "progress" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def disclose(result: Any, kind: str, policy) -> Any:
    """Pass the published parts of an analysis result through the disclosure policy."""
    if not isinstance(result, dict):
        return result
    out = dict(result)
    fc = out.get("clusters")
    if kind == "clusters" and isinstance(fc, dict) and fc.get("features"):
        frame = gpd.GeoDataFrame.from_features(fc["features"], crs="EPSG:4326")
        frame = policy.apply(frame, kind="clusters")
        out["clusters"] = _to_feature_collection(frame)
    records = out.get("clusters")
    if kind == "ranking" and isinstance(records, list) and records and "n_firms" in records[0]:
        frame = policy.apply(pd.DataFrame(records), kind="clusters")
        out["clusters"] = _records(frame)
    if kind == "specialization" and isinstance(out.get("rows"), list) and out["rows"]:
        rows = pd.DataFrame(out["rows"])
        if "count" in rows.columns:
            rows = policy.apply(rows, kind="table", count_col="count")
            out["rows"] = _records(rows)
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if _isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _isnan(v: Any) -> bool:
    try:
        return bool(pd.isna(v)) if not isinstance(v, list | dict | tuple) else False
    except (TypeError, ValueError):
        return False


def _to_feature_collection(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    import json

    return json.loads(frame.to_json(na="null", default=str))


def run_analysis(
    request: Request, ws, body: AnalysisRequest, *, kind: str, module: str, name: str
) -> Any:
    """Call the analyses function now, or as a job when ``body.async_``."""
    fn = analysis_function(module, name)
    params = body.params()
    policy = request.app.state.policy
    with_progress = _accepts_progress(fn)

    def call(progress=None):
        kwargs = dict(params)
        if with_progress and progress is not None:
            kwargs["progress"] = progress
        return disclose(fn(ws, **kwargs), kind, policy)

    if body.async_:
        job = request.app.state.jobs.submit(kind, call)
        status_url = str(request.url_for("get_job", job_id=job.id))
        return JSONResponse(
            {"job_id": job.id, "status_url": status_url, "state": job.state},
            status_code=202,
            headers={"Location": status_url},
        )
    return call()


_ASYNC = {
    202: {
        "description": "Accepted as a background job (`async: true`)",
        "content": {
            "application/json": {
                "example": {"job_id": "3f2c…", "status_url": "http://127.0.0.1:8000/jobs/3f2c…"}
            }
        },
    }
}


@router.post("/clusters", summary="Density clusters of firms (DBSCAN/HDBSCAN)", responses=_ASYNC)
def clusters(body: ClustersRequest, request: Request, ws=Depends(get_workspace)):
    """Returns ``{run_id, n_clusters, noise, clusters: FeatureCollection}``; per-firm
    labels are the collection ``/collections/{run_id}/items``."""
    return run_analysis(request, ws, body, kind="clusters", module="clusters", name="run_clusters")


@router.post("/kdistance", summary="k-distance curve (choose DBSCAN eps)", responses=_ASYNC)
def kdistance(body: KDistanceRequest, request: Request, ws=Depends(get_workspace)):
    return run_analysis(
        request, ws, body, kind="kdistance", module="clusters", name="run_kdistance"
    )


@router.post("/kde", summary="Kernel density surface (registered as a raster)", responses=_ASYNC)
def kde(body: KDERequest, request: Request, ws=Depends(get_workspace)):
    """Returns ``{raster_id, ...}``; tiles at ``/rasters/{raster_id}/tiles/WebMercatorQuad/{z}/{x}/{y}.png``."""
    return run_analysis(request, ws, body, kind="kde", module="clusters", name="run_kde")


@router.post(
    "/specialization", summary="Location quotients, HHI, Krugman, Ellison-Glaeser", responses=_ASYNC
)
def specialization(body: SpecializationRequest, request: Request, ws=Depends(get_workspace)):
    return run_analysis(
        request, ws, body, kind="specialization", module="specialization", name="run_specialization"
    )


@router.post(
    "/hotspots", summary="LISA / Getis-Ord Gi* hot spots of a regional value", responses=_ASYNC
)
def hotspots(body: HotspotsRequest, request: Request, ws=Depends(get_workspace)):
    return run_analysis(
        request, ws, body, kind="hotspots", module="specialization", name="run_hotspots"
    )


@router.post(
    "/pointpattern", summary="Ripley's K/L or K-density of firm co-location", responses=_ASYNC
)
def pointpattern(body: PointPatternRequest, request: Request, ws=Depends(get_workspace)):
    return run_analysis(
        request, ws, body, kind="pointpattern", module="specialization", name="run_pointpattern"
    )


@router.post(
    "/ranking", summary="Rank candidate clusters (transparent components)", responses=_ASYNC
)
def ranking(body: RankingRequest, request: Request, ws=Depends(get_workspace)):
    return run_analysis(
        request, ws, body, kind="ranking", module="specialization", name="run_ranking"
    )


@router.post(
    "/inequality",
    summary="Gini, Theil, Atkinson, Williamson … (inline values or from indicators)",
    responses={**_ASYNC, 200: {"content": {"application/json": {}, "image/png": {}}}},
)
def inequality(
    body: InequalityRequest,
    request: Request,
    format: Annotated[Literal["json", "png"], Query(description="json, or a PNG chart")] = "json",
    chart: Annotated[
        Literal["lorenz", "indices", "decomposition"] | None,
        Query(description="chart with format=png (default: lorenz inline, indices over years)"),
    ] = None,
    ws=Depends(get_workspace),
):
    if body.values is None and body.indicators is None:
        raise InvalidInput(
            "expected inline 'values' or an 'indicators' dataset with 'indicator', got neither"
        )
    if format == "png" and body.async_:
        raise InvalidInput("format=png cannot be combined with async; fetch the job result as JSON")
    result = run_analysis(
        request, ws, body, kind="inequality", module="inequality", name="run_inequality"
    )
    if format == "png":
        chart_png = analysis_function("inequality", "chart_png")
        kind = chart or ("lorenz" if body.values is not None else "indices")
        return Response(chart_png(kind, result), media_type="image/png")
    return result


@router.post(
    "/assets", summary="Territorial assets: density, linkage with firms, gaps", responses=_ASYNC
)
def assets(body: AssetsRequest, request: Request, ws=Depends(get_workspace)):
    return run_analysis(request, ws, body, kind="assets", module="assets", name="run_assets")


@router.post(
    "/zonal", summary="Zonal statistics of a raster over regions or asset buffers", responses=_ASYNC
)
def zonal(body: ZonalRequest, request: Request, ws=Depends(get_workspace)):
    if body.boundaries is None and body.assets is None:
        raise InvalidInput("expected 'boundaries' or 'assets' to define the zones, got neither")
    return run_analysis(request, ws, body, kind="zonal", module="assets", name="run_zonal")
