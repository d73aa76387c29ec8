"""Specs of ``specialization``, ``hotspots``, ``pointpattern`` and ``ranking``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from geocluster.analyses.spec import AnalysisSpec, Cli, Params, register
from geocluster.analyses.specs._fields import (
    BoundariesId,
    FirmsId,
    Level,
    Preset,
    RadiusM,
    SectorGroup,
    Sectors,
    Seed,
)

Measure = Annotated[
    Literal["employees", "firms", "auto"],
    Field(description="what the LQ measures: employees, firm counts, or auto (employees if known)"),
]


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


# -- specialization ---------------------------------------------------------------------------
class SpecializationParams(Params):
    """Parameters of ``specialization``."""

    firms: FirmsId
    boundaries: BoundariesId
    measure: Measure = "employees"
    sector_level: Literal["section", "division", "group"] = Field(
        "division", description="ISIC sections, divisions, or the sector groups"
    )
    level: Level = None
    bootstrap: int = Field(0, ge=0, le=999, description="bootstrap replicates for LQ intervals")
    seed: Seed = 0
    sector_groups: Annotated[
        list[str] | None,
        Field(description="sector groups to aggregate too (with level group: the groups)"),
        Cli(aliases=("--sector-group",)),
    ] = None


def _run_specialization(ctx: Any, p: SpecializationParams, progress) -> Any:
    from geocluster.analyses.specialization import specialization_result

    # --engine dask: the region join and the region x sector sums run on the workers
    engine = ctx.engine() if getattr(ctx, "engine_name", "local") != "local" else None
    return specialization_result(ctx, **p.model_dump(), progress=progress, engine=engine)


def _specialization_text(r: Mapping[str, Any]) -> str:
    lines = [
        f"run {r['run_id']}: {r['n_firms']:,} firms in regions ({r['outside']:,} outside), "
        f"LQ on {r['measure_used']}"
    ]
    strong = sorted(
        (x for x in r["rows"] if x["strong"]),
        key=lambda x: (x["small_count"], -x["stars"], -(x["employees"] or 0), -(x["count"] or 0)),
    )
    lines.append(f"  {len(strong)} strong region x sector cells (* fewer than 3 firms)")
    for x in strong[:20]:
        flag = "*" if x["small_count"] else " "
        count = "-" if x["count"] is None else f"{x['count']:,}"
        lines.append(
            f"  {x['region_id']:>12} {x['sector']:>6} LQ {_fmt(x['lq']):>7} "
            f"firms {count:>6}{flag} stars {x['stars']}"
        )
    return "\n".join(lines)


SPECIALIZATION = register(
    AnalysisSpec(
        name="specialization",
        summary="Location quotients, HHI, Krugman, Ellison-Glaeser",
        description="Join firms to regions and compute location quotients, strong-cluster "
        "flags and stars per region x sector, HHI and Krugman per region, Ellison-Glaeser and "
        "Maurel-Sedillot per sector. Saved as a run (<run_id>: regions, <run_id>.rows).",
        params=SpecializationParams,
        run=_run_specialization,
        examples=(
            {
                "firms": "firms",
                "boundaries": "mexico",
                "measure": "employees",
                "sector_level": "division",
            },
        ),
        text=_specialization_text,
    )
)


# -- hotspots ---------------------------------------------------------------------------------
class HotspotsParams(Params):
    """Parameters of ``hotspots``: values from exactly one source."""

    boundaries: BoundariesId
    values: dict[str, float] | None = Field(None, description="inline {region_id: value}")
    indicators: str | None = Field(None, description="indicators dataset id")
    indicator: str | None = Field(None, description="indicator name (with indicators)")
    year: int | None = Field(None, description="indicator year (default: the latest)")
    specialization_run: str | None = Field(
        None, description="a specialization run: the LQ of sector, or firms per km2 without it"
    )
    sector: str | None = Field(None, description="sector of the specialization run")
    method: Literal["lisa", "gi_star"] = Field("lisa", description="local Moran or Getis-Ord Gi*")
    weights: str = Field(
        "queen",
        pattern=r"^(queen|rook|knn:\d+|distance:[0-9.]+)$",
        description="queen | rook | knn:K | distance:M (metres)",
    )
    permutations: int = Field(999, ge=0, le=99_999, description="conditional permutations")
    seed: Seed = 0
    fdr: bool = Field(False, description="Benjamini-Hochberg false discovery rate")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level")
    level: Level = None

    @model_validator(mode="after")
    def _one_source(self) -> HotspotsParams:
        sources = [x is not None for x in (self.values, self.indicators, self.specialization_run)]
        if sum(sources) != 1:
            raise ValueError(
                "expected exactly one of values, indicators (+ indicator) or specialization_run"
            )
        return self


def _run_hotspots(ctx: Any, p: HotspotsParams, progress) -> Any:
    from geocluster.analyses.specialization import hotspots_result

    return hotspots_result(ctx, **p.model_dump(), progress=progress)


def _hotspots_text(r: Mapping[str, Any]) -> str:
    g = r["global"]
    lines = [
        f"run {r['run_id']}: Moran's I {_fmt(g.get('moran_i'), '.3f')} "
        f"(p {_fmt(g.get('p_value'), '.3f')}), {r['method']} with {r['weights']} weights"
    ]
    for x in r["regions"]:
        if x["significant"]:
            lines.append(f"  {x['region_id']:>12} {x['label']:>4} p {_fmt(x['p_value'], '.3f')}")
    return "\n".join(lines)


HOTSPOTS = register(
    AnalysisSpec(
        name="hotspots",
        summary="LISA / Getis-Ord Gi* hot spots of a regional value",
        description="Local spatial autocorrelation of an indicator, inline values or a "
        "specialization run's LQs over region polygons, with seeded permutations and global "
        "Moran's I (PySAL esda underneath).",
        params=HotspotsParams,
        run=_run_hotspots,
        examples=(
            {
                "boundaries": "mexico",
                "indicators": "gdp",
                "indicator": "pcgdp",
                "year": 2000,
                "method": "lisa",
                "weights": "queen",
                "permutations": 999,
            },
        ),
        text=_hotspots_text,
    )
)


# -- point patterns ---------------------------------------------------------------------------
class PointPatternParams(Params):
    """Parameters of ``pointpattern``."""

    firms: FirmsId
    sectors: Sectors = None
    sector_group: SectorGroup = None
    method: Literal["ripley", "kdensity"] = Field(
        "ripley", description="Ripley's L with a CSR envelope, or Duranton-Overman K-density"
    )
    n_simulations: Annotated[
        int,
        Field(ge=1, le=9999, description="simulations for the envelope (K-density: >= 19)"),
        Cli(aliases=("--simulations",)),
    ] = 99
    seed: Seed = 0
    support_m: list[float] | None = Field(None, description="distances (metres) to evaluate")
    max_distance_m: float | None = Field(
        None, gt=0, le=1_000_000, description="K-density range in metres"
    )
    boundaries: str | None = Field(None, description="with region: test inside one region")
    region: str | None = Field(None, description="region id of boundaries")


def _run_pointpattern(ctx: Any, p: PointPatternParams, progress) -> Any:
    from geocluster.analyses.specialization import pointpattern_result

    return pointpattern_result(ctx, **p.model_dump(), progress=progress)


def _pointpattern_text(r: Mapping[str, Any]) -> str:
    if "clustered" in r:
        over = [d for d, c in zip(r["distance_m"], r["clustered"], strict=True) if c]
        return (
            f"run {r['run_id']}: Ripley's L of {r['n_points']:,} firms; clustered at "
            f"{len(over)} of {len(r['distance_m'])} distances"
        )
    return (
        f"run {r['run_id']}: K-density of {r['n_firms']:,} firms: localization "
        f"{r['localization_index']:.4f}, dispersion {r['dispersion_index']:.4f}"
    )


POINTPATTERN = register(
    AnalysisSpec(
        name="pointpattern",
        summary="Ripley's K/L or K-density of firm co-location",
        description="Ripley's L of a sector's firms against complete spatial randomness (in "
        "their bounding box or one region), or the Duranton-Overman K-density of a sector "
        "against all firm sites.",
        params=PointPatternParams,
        run=_run_pointpattern,
        examples=({"firms": "firms", "sectors": ["15"], "method": "ripley", "n_simulations": 99},),
        text=_pointpattern_text,
    )
)


# -- ranking ----------------------------------------------------------------------------------
class RankingParams(Params):
    """Parameters of ``ranking``."""

    clusters_run: str = Field(..., description="run id of a clusters run")
    boundaries: str | None = Field(None, description="boundaries for the LQ component")
    assets: str | None = Field(None, description="assets for the territorial-assets component")
    radius_m: RadiusM = 5000.0
    weights: dict[str, float] | None = Field(
        None, description='component -> weight, e.g. {"dynamism": 0.3, "assets": 0}'
    )
    measure: Measure = "employees"
    level: Level = None
    institutions: str | None = Field(
        None,
        description="institutions dataset: support institutions within radius_m of each "
        "hull feed the institutions component",
    )
    preset: Preset = None
    growth_run: str | None = Field(
        None,
        description="growth component: a dynamics run on clusters_run (CAGR of each "
        "cluster's firms) or a change run whose follow-up is clusters_run (relative change "
        "in firms between the versions)",
    )


def _run_ranking(ctx: Any, p: RankingParams, progress) -> Any:
    from geocluster.analyses.specialization import ranking_result

    values = p.model_dump()
    if p.preset is not None and "measure" not in p.model_fields_set:
        values["measure"] = "firms"  # every preset sizes clusters by their enterprises
    return ranking_result(ctx, **values, progress=progress)


def _ranking_text(r: Mapping[str, Any]) -> str:
    lines = [f"run {r['run_id']}: weights {r['weights']}"]
    for name, why in (r.get("left_out") or {}).items():
        lines.append(f"  left out: {name} ({why})")
    if r.get("preset"):
        lines.append(
            f"  preset {r['preset']}: {len(r.get('below_min_firms') or [])} clusters below "
            f"{r['min_firms']} firms not ranked"
        )
    for c in r["clusters"][:20]:
        n = "-" if c.get("n_firms") is None else f"{c['n_firms']:,.0f}"
        lines.append(
            f"  #{c['rank']:<3} cluster {c['cluster_id']:>5} score {_fmt(c['score'], '.3f')} "
            f"firms {n} sector {c['dominant_sector']}"
        )
    return "\n".join(lines)


RANKING = register(
    AnalysisSpec(
        name="ranking",
        summary="Rank candidate clusters (transparent components)",
        description="Score each cluster of a clusters run on the UNIDO criteria (size, "
        "specialisation, density, dynamism, assets ...); every normalised component is "
        "shown with the weights used.",
        params=RankingParams,
        run=_run_ranking,
        examples=(
            {"clusters_run": "clusters-0123456789", "boundaries": "mexico", "assets": "assets"},
        ),
        text=_ranking_text,
        cli_aliases=("rank",),
    )
)
