"""Specs of the UNIDO cycle (CONTRACT.md, "New analyses").

``shiftshare``, ``relatedness``, ``change``, ``dynamics``, ``sdg`` and ``institutions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from geocluster.analyses.spec import AnalysisSpec, Params, register
from geocluster.analyses.specs._fields import BoundariesId, FirmsId, Level

MeasureField = Field(
    "employees", description="what the tables measure: employees (sum) or firms (count)"
)
SectorLevelField = Field("division", description="ISIC Rev.4 sections or divisions")


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


# -- shiftshare -------------------------------------------------------------------------------
class ShiftShareParams(Params):
    """Parameters of ``shiftshare``."""

    firms: FirmsId = Field(..., description="base firms version (name@version)")
    firms_to: str = Field(..., description="final firms version or dataset (name@version)")
    boundaries: BoundariesId
    measure: Literal["employees", "firms"] = MeasureField
    sector_level: Literal["section", "division"] = SectorLevelField
    level: Level = None
    esteban_marquillas: bool = Field(
        False, description="also split the regional shift into competitive and allocation effects"
    )


def _run_shiftshare(ctx: Any, p: ShiftShareParams, progress) -> Any:
    from geocluster.analyses.unido import shiftshare_result

    return shiftshare_result(ctx, **p.model_dump(), progress=progress)


def _shiftshare_text(r: Mapping[str, Any]) -> str:
    lines = [
        f"run {r['run_id']}: shift-share of {r['measure']} {' -> '.join(r['inputs'][:2])}, "
        f"national growth {_fmt(r['national_growth'], '.2%')}"
    ]
    lines.append(
        f"  {'region':>10} {'base':>10} {'final':>10} {'national':>10} {'mix':>10} {'shift':>10}"
    )
    for x in sorted(r["regions"], key=lambda x: -(x.get("regional_shift") or 0))[:20]:
        lines.append(
            f"  {x['region_id']:>10} {_fmt(x['base'], ',.0f'):>10} {_fmt(x['final'], ',.0f'):>10} "
            f"{_fmt(x['national_share'], ',.1f'):>10} {_fmt(x['industry_mix'], ',.1f'):>10} "
            f"{_fmt(x['regional_shift'], ',.1f'):>10}"
        )
    return "\n".join(lines)


SHIFTSHARE = register(
    AnalysisSpec(
        name="shiftshare",
        summary="Shift-share of region x sector change between two firm versions",
        description="Classic Dunn (1960) decomposition of each region x sector change from "
        "one registry version (firms) to another (firms_to) into national share, industry "
        "mix and regional shift (they sum to final - base), with region totals; optionally "
        "Esteban-Marquillas (1972) competitive and allocation effects. Saved as a run "
        "(<run_id>: regions, <run_id>.rows).",
        params=ShiftShareParams,
        run=_run_shiftshare,
        examples=(
            {
                "firms": "mexico_firms@1",
                "firms_to": "mexico_firms@2",
                "boundaries": "mexico_states",
                "measure": "employees",
                "sector_level": "division",
            },
        ),
        text=_shiftshare_text,
    )
)


# -- relatedness ------------------------------------------------------------------------------
class RelatednessParams(Params):
    """Parameters of ``relatedness``."""

    firms: FirmsId
    boundaries: BoundariesId
    measure: Literal["employees", "firms"] = MeasureField
    sector_level: Literal["section", "division"] = SectorLevelField
    level: Level = None
    top_n: int = Field(5, ge=1, le=100, description="nearby opportunities kept per region")
    min_phi: float = Field(
        0.0, ge=0, le=1, description="proximity pairs returned only above this phi"
    )


def _run_relatedness(ctx: Any, p: RelatednessParams, progress) -> Any:
    from geocluster.analyses.unido import relatedness_result

    return relatedness_result(ctx, **p.model_dump(), progress=progress)


def _relatedness_text(r: Mapping[str, Any]) -> str:
    eci = sorted(((v, k) for k, v in r["eci"].items() if v is not None), reverse=True)
    lines = [
        f"run {r['run_id']}: ECI of {len(eci)} regions, PCI of {len(r['pci'])} sectors "
        f"({r['measure']}), {len(r['proximity'])} proximity pairs"
    ]
    for v, k in eci[:10]:
        opp = [o["sector"] for o in r["opportunities"] if o["region_id"] == k]
        lines.append(f"  {k:>10} ECI {v:+.2f}  nearby: {', '.join(map(str, opp)) or '-'}")
    lines.extend(f"warning: {w}" for w in r.get("warnings") or [])
    return "\n".join(lines)


RELATEDNESS = register(
    AnalysisSpec(
        name="relatedness",
        summary="RCA, proximity, density, ECI/PCI and nearby opportunities",
        description="Region x sector revealed comparative advantage (Balassa), sector "
        "proximity and density (Hidalgo et al. 2007), economic complexity ECI/PCI by the "
        "eigenvector method (Hidalgo & Hausmann 2009, as the Growth Lab's ecomplexity), and "
        "per region the nearby opportunities: sectors of high density with RCA < 1.",
        params=RelatednessParams,
        run=_run_relatedness,
        examples=(
            {"firms": "mexico_firms", "boundaries": "mexico_states", "measure": "employees"},
        ),
        text=_relatedness_text,
    )
)


# -- change -----------------------------------------------------------------------------------
class ChangeParams(Params):
    """Parameters of ``change``."""

    before: str = Field(..., description="run id of the baseline clusters run")
    after: str = Field(..., description="run id of the follow-up clusters run")
    match: Literal["auto", "firms", "area"] = Field(
        "auto", description="match by shared firm ids, by hull area, or auto (firms if shared)"
    )
    score: Literal["jaccard", "overlap"] = Field(
        "jaccard", description="overlap score: Jaccard or the overlap coefficient"
    )
    min_score: float | None = Field(
        None, gt=0, le=1, description="link threshold (default 0.2 Jaccard, 0.5 overlap)"
    )


def _run_change(ctx: Any, p: ChangeParams, progress) -> Any:
    from geocluster.analyses.unido import change_result

    return change_result(ctx, **p.model_dump(), progress=progress)


def _change_text(r: Mapping[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items() if v)
    lines = [f"run {r['run_id']}: {r['before']} -> {r['after']} by {r['match']}: {counts}"]
    lines.append(f"  {'status':>12} {'before':>7} {'after':>7} {'firms':>13} {'change':>7}")
    for x in r["rows"][:30]:
        b = "-" if x["before_id"] is None else str(x["before_id"])
        a = "-" if x["after_id"] is None else str(x["after_id"])
        nb, na = _fmt(x["n_firms_before"], ".0f"), _fmt(x["n_firms_after"], ".0f")
        lines.append(
            f"  {x['status']:>12} {b:>7} {a:>7} {nb + ' -> ' + na:>13} "
            f"{_fmt(x.get('n_firms_change'), '+.0f'):>7}"
        )
    return "\n".join(lines)


CHANGE = register(
    AnalysisSpec(
        name="change",
        summary="Baseline -> follow-up: match the clusters of two runs",
        description="Match the clusters of a baseline and a follow-up clusters run (two "
        "registry versions, or two years) by shared firms or hull overlap, and report "
        "matched, split, merged, disappeared and appeared clusters with the change of each "
        "indicator (firms, employment, women-led, youth-led, micro and informal shares). "
        "Saved as a run (<run_id>: the change layer).",
        params=ChangeParams,
        run=_run_change,
        examples=({"before": "clusters-0123456789", "after": "clusters-9876543210"},),
        text=_change_text,
    )
)


# -- dynamics ---------------------------------------------------------------------------------
class DynamicsParams(Params):
    """Parameters of ``dynamics``."""

    firms: FirmsId
    clusters: str | None = Field(None, description="run id of a clusters run on these firms")
    boundaries: str | None = Field(None, description="boundaries for the per-region series")
    year_col: str = Field("founded", description="column of founding years")
    first_year: int | None = Field(
        None, ge=1000, le=3000, description="first year of the series (default: the oldest)"
    )
    last_year: int | None = Field(
        None, ge=1000, le=3000, description="last year (default: the latest founding year)"
    )
    growth_years: int = Field(5, ge=1, le=100, description="growth over the last N years")
    # a flag that is off by default: the CLI's boolean flags can only switch on
    skip_emergence: bool = Field(
        False, description="skip the clusters' emergence years (one DBSCAN run per year)"
    )
    min_overlap: float = Field(
        0.5, gt=0, le=1, description="share of a yearly cluster in today's for it to count"
    )
    level: Level = None


def _run_dynamics(ctx: Any, p: DynamicsParams, progress) -> Any:
    from geocluster.analyses.unido import dynamics_result

    values = p.model_dump()
    values["emergence"] = not values.pop("skip_emergence")
    return dynamics_result(ctx, **values, progress=progress)


def _span(span: Mapping[str, Any]) -> str:
    return f"{span['start_year']}-{span['end_year']}" if span else "-"


def _dynamics_text(r: Mapping[str, Any]) -> str:
    lines = [f"run {r['run_id']}: founding years {r['years'][0]}-{r['years'][1]}"]
    c = r.get("clusters")
    if c:
        em = {x["cluster_id"]: x for x in c.get("emergence") or []}
        lines.append(f"  clusters of {c['run']} (growth {_span(c['growth_span'])}):")
        for g in (c["growth"] or [])[:20]:
            e = em.get(g["cluster_id"], {})
            lines.append(
                f"  cluster {g['cluster_id']:>4} firms {_fmt(g['firms_end'], ',.0f'):>7} "
                f"CAGR {_fmt(g['cagr_firms'], '.1%'):>7} emerged {_fmt(e.get('emergence_year'), '.0f')}"
            )
    reg = r.get("regions")
    if reg:
        lines.append(f"  regions (growth {_span(reg['growth_span'])}):")
        for g in sorted(reg["growth"] or [], key=lambda x: -(x.get("cagr_firms") or -9))[:10]:
            lines.append(
                f"  {g['region_id']:>10} firms {_fmt(g['firms_end'], ',.0f'):>7} "
                f"CAGR {_fmt(g['cagr_firms'], '.1%'):>7}"
            )
    return "\n".join(lines)


DYNAMICS = register(
    AnalysisSpec(
        name="dynamics",
        summary="Firms by founding year, growth, age structure, cluster emergence",
        description="Per region (boundaries) and per cluster (clusters, a clusters run): "
        "firms and employment by founding year with the cumulative stock, compound growth "
        "over the last growth_years, firm-age structure, and each cluster's emergence year "
        "(DBSCAN re-run on the firms founded up to each year). Survivor series: a register "
        "holds the firms alive at its date.",
        params=DynamicsParams,
        run=_run_dynamics,
        examples=({"firms": "mexico_firms", "boundaries": "mexico_states", "year_col": "founded"},),
        text=_dynamics_text,
    )
)


# -- sdg --------------------------------------------------------------------------------------
class SDGParams(Params):
    """Parameters of ``sdg``."""

    firms: FirmsId
    boundaries: BoundariesId
    level: Level = None


def _run_sdg(ctx: Any, p: SDGParams, progress) -> Any:
    from geocluster.analyses.unido import sdg_result

    return sdg_result(ctx, **p.model_dump(), progress=progress)


def _sdg_text(r: Mapping[str, Any]) -> str:
    lines = [f"run {r['run_id']}: SDG proxies of {len(r['regions'])} regions"]
    for i in r["indicators"]:
        nat = r["national"].get(i["key"])
        lines.append(f"  {i['sdg_code']:>12} {i['key']:<34} national {_fmt(nat, '.1%')}")
    return "\n".join(lines)


SDG = register(
    AnalysisSpec(
        name="sdg",
        summary="Per-region SDG proxy indicators (9.2.2, 9.3.1, 8.3.1, 5.5, youth, 10.x gaps)",
        description="Proxy indicators from the firm register per region, each with its SDG "
        "code, the official indicator's name, the proxy definition, how it differs and the "
        "source: manufacturing share of employment (9.2.2), small-scale industry share "
        "(9.3.1, UNIDO's < 20 employees), informal share (8.3.1), women-led (5.5) and "
        "youth-led shares, each region's gap to the national value and the between-region "
        "Gini (10.x). Saved as a run (<run_id>: a choropleth layer).",
        params=SDGParams,
        run=_run_sdg,
        examples=({"firms": "mexico_firms", "boundaries": "mexico_states"},),
        text=_sdg_text,
    )
)


# -- institutions -----------------------------------------------------------------------------
class InstitutionsParams(Params):
    """Parameters of ``institutions``."""

    clusters_run: str = Field(..., description="run id of a clusters run")
    institutions: str | None = Field(
        None,
        description="institutions dataset id (default: the only one within reach of the clusters)",
    )
    radius_m: float = Field(
        10_000.0, gt=0, le=1_000_000, description="reach in metres from the cluster hull"
    )


def _run_institutions(ctx: Any, p: InstitutionsParams, progress) -> Any:
    from geocluster.analyses.unido import institutions_result

    return institutions_result(ctx, **p.model_dump(), progress=progress)


def _institutions_text(r: Mapping[str, Any]) -> str:
    lines = [
        f"run {r['run_id']}: support institutions within {r['radius_m']:,.0f} m of "
        f"{len(r['clusters'])} clusters; {len(r['gaps'])} with a gap"
    ]
    for g in r["gaps"][:20]:
        lines.append(f"  cluster {g['cluster_id']:>4} lacks {g['missing']}")
    return "\n".join(lines)


INSTITUTIONS = register(
    AnalysisSpec(
        name="institutions",
        summary="Support institutions within reach of each cluster, and the gaps",
        description="Per cluster of a clusters run: the support institutions (training, "
        "universities, research, business associations and chambers, quality labs, finance, "
        "NGOs) within radius_m of its hull by type, the distance to the nearest training "
        "centre and association, and the clusters lacking either (the UNIDO diagnostic's "
        "support gaps).",
        params=InstitutionsParams,
        run=_run_institutions,
        examples=({"clusters_run": "clusters-0123456789", "radius_m": 10000},),
        text=_institutions_text,
    )
)
