"""Specs of ``assets`` (density, linkage, gaps, clusters) and ``zonal``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from geocluster.analyses.spec import AnalysisSpec, Cli, Params, register
from geocluster.analyses.specs._fields import Level, RadiusM, SectorGroup, Sectors, Seed

Category = Annotated[
    str | None,
    Field(description="only assets of this category: cultural, natural, agro_food, tourism, "
          "infrastructure"),
]  # fmt: skip


class AssetsParams(Params):
    """Parameters of ``assets``; ``analysis`` is the CLI's first argument."""

    analysis: Annotated[
        Literal["density", "linkage", "gaps", "clusters"],
        Field(description="density per region, firm linkage, gaps, or asset clusters"),
        Cli(positional=True),
    ] = "density"
    assets: str = Field(..., description="assets dataset id")
    firms: str | None = Field(None, description="firms dataset id (linkage, gaps)")
    boundaries: str | None = Field(None, description="boundaries dataset id (density)")
    radius_m: RadiusM = 5000.0
    sector_group: SectorGroup = None
    sectors: Sectors = None
    category: Category = None
    permutations: int = Field(99, ge=0, le=9999, description="CLQ permutation test (linkage)")
    seed: Seed = 0
    eps_m: float | None = Field(
        None, gt=0, le=1_000_000, description="clusters: DBSCAN radius (default radius_m)"
    )
    min_samples: int = Field(3, ge=1, le=10_000, description="clusters: DBSCAN min_samples")
    level: Level = None
    indicators: str | None = Field(None, description="density: indicators with population")
    population_indicator: str = Field("population", description="density: population indicator")
    year: int | None = Field(None, description="density: population year (default latest)")
    population_raster: str | None = Field(
        None, description="density: registered population raster id"
    )


def _run_assets(ctx: Any, p: AssetsParams, progress) -> Any:
    from geocluster.analyses.assets import assets_result

    return assets_result(ctx, **p.model_dump(), progress=progress)


def _f(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def _assets_text(r: Mapping[str, Any]) -> str:
    analysis = r["analysis"]
    lines = [f"run {r['run_id']}: {analysis} of {r['n_assets']} assets"]
    if analysis == "density":
        lines.append("region_id\tcategory\tn_assets\tper_km2\tper_10k")
        for x in r["rows"]:
            lines.append(
                f"{x['region_id']}\t{x['category']}\t{x['n_assets']}\t"
                f"{_f(x['assets_per_km2'])}\t{_f(x['assets_per_10k'])}"
            )
    elif analysis == "clusters":
        lines.append(f"{r['n_zones']} zones, {r['noise']} assets outside any zone")
        for feat in r["zones"]["features"]:
            p = feat["properties"]
            lines.append(
                f"zone {p['zone_id']}: {p['n_assets']} assets ({p['categories']}), "
                f"{_f(p['area_km2'])} km2"
            )
    elif analysis == "gaps":
        lines.append(f"{r['n_gaps']} assets with no linked business within {r['radius_m']:g} m")
        for feat in r["assets"]["features"]:
            p = feat["properties"]
            near = p.get("nearest_linked_firm_m")
            lines.append(
                f"{p['asset_id']}\t{p['name']}\t{p['category']}/{p['subtype']}\t"
                f"{p.get('designation') or '-'}\tnearest linked firm "
                f"{_f(near / 1000 if near is not None else None)} km"
            )
    else:
        lines.append("co-location quotients (firms -> assets, assets -> firms):")
        for x in r["colocation"]:
            lines.append(
                f"  {x['category']} vs {x['firms']}: {_f(x['clq_firms_to_assets'])} "
                f"(p={_f(x['p_firms_to_assets'])}), {_f(x['clq_assets_to_firms'])} "
                f"(p={_f(x['p_assets_to_firms'])})"
            )
        lines.append(f"firms within {r['radius_m']:g} m of an asset:")
        for x in r["shares"]:
            lines.append(f"  {x['firms']}: {x['n_within']}/{x['n_firms']} ({_f(x['share'])})")
        lines.append(f"{r['assets_with_linked_firms']} assets have linked firms nearby")
    return "\n".join(lines)


ASSETS = register(
    AnalysisSpec(
        name="assets",
        summary="Territorial assets: density, linkage with firms, gaps, clusters",
        description="Analyse a territorial-asset dataset: density per region (per km2 and "
        "per 10,000 inhabitants), firm-asset linkage (co-location quotient, firms within a "
        "radius), asset gaps (no linked business within the radius) or asset clusters "
        "(DBSCAN zones). Asset features carry category and subtype.",
        params=AssetsParams,
        run=_run_assets,
        examples=(
            {
                "assets": "assets",
                "firms": "firms",
                "analysis": "linkage",
                "radius_m": 5000,
                "sector_group": "tourism",
            },
        ),
        text=_assets_text,
    )
)


class ZonalParams(Params):
    """Parameters of ``zonal``: zones from boundaries or from asset buffers."""

    raster: str = Field(..., description="registered raster id")
    boundaries: str | None = Field(None, description="boundaries dataset: one row per region")
    assets: str | None = Field(None, description="assets dataset: one row per asset buffer")
    radius_m: float | None = Field(
        None, gt=0, le=1_000_000, description="buffer around each asset, metres"
    )
    stats: list[str] = Field(
        ["sum", "mean"],
        min_length=1,
        description="count, sum, mean, min, max, std, median, majority, shares",
    )
    level: Level = None
    category: Category = None
    band: int = Field(1, ge=1, le=1000, description="raster band")
    coverage: Literal["centre", "touched", "fraction"] = Field(
        "centre", description="pixels in a zone: centre inside, touched, or weighted by area"
    )

    @model_validator(mode="after")
    def _one_target(self) -> ZonalParams:
        if (self.boundaries is None) == (self.assets is None):
            raise ValueError("expected exactly one of 'boundaries' or 'assets' to define the zones")
        return self


def _run_zonal(ctx: Any, p: ZonalParams, progress) -> Any:
    from geocluster.analyses.assets import zonal_result

    return zonal_result(ctx, **p.model_dump(), progress=progress)


def _zonal_text(r: Mapping[str, Any]) -> str:
    rows = r["rows"]
    stat_cols = [c for c in (rows[0] if rows else {}) if c in r["stats"] or c.startswith("share_")]
    key = "region_id" if r["target"] == "boundaries" else "asset_id"
    lines = [f"run {r['run_id']}: {len(rows)} zones", "\t".join([key, "name", *stat_cols])]
    for x in rows:
        lines.append("\t".join([str(x[key]), str(x.get("name")), *(_f(x[c]) for c in stat_cols)]))
    return "\n".join(lines)


ZONAL = register(
    AnalysisSpec(
        name="zonal",
        summary="Zonal statistics of a raster over regions or asset buffers",
        description="Statistics of a registered raster inside each region, or within radius_m "
        "of each asset (e.g. population within 5 km). Windowed reads: the raster is never "
        "loaded whole.",
        params=ZonalParams,
        run=_run_zonal,
        examples=({"raster": "population", "boundaries": "mexico", "stats": ["sum", "mean"]},),
        text=_zonal_text,
    )
)
