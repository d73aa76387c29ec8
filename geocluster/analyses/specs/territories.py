"""Specs of ``profile``, ``compare`` and ``peers`` (also served as ``GET /regions/*``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from geocluster.analyses.spec import AnalysisSpec, Cli, Params, register

_ONLY = " (default: the only candidate; several -> an error listing them)"
Boundaries = Annotated[str | None, Field(description="boundaries dataset id" + _ONLY)]
Firms = Annotated[str | None, Field(description="firms dataset id" + _ONLY)]
Indicators = Annotated[str | None, Field(description="indicators dataset id" + _ONLY)]
Assets = Annotated[str | None, Field(description="assets dataset id" + _ONLY)]
ClustersRun = Annotated[
    str | None, Field(description="clusters run whose clusters are listed" + _ONLY)
]
Year = Annotated[int | None, Field(description="indicator year (default: latest)")]
Top = Annotated[int, Field(ge=1, le=50, description="top sectors by location quotient")]
Population = Annotated[str, Field(description="population indicator name (case-insensitive)")]


class ProfileParams(Params):
    """Parameters of ``profile``."""

    region_id: Annotated[str, Field(description="region id"), Cli(positional=True)]
    boundaries: Boundaries = None
    firms: Firms = None
    assets: Assets = None
    indicators: Indicators = None
    clusters_run: ClustersRun = None
    year: Year = None
    population_indicator: Population = "population"
    top: Top = 5


def _run_profile(ctx: Any, p: ProfileParams, progress) -> Any:
    from geocluster.analyses.territories import profile_result

    values = p.model_dump()
    return profile_result(ctx, values.pop("region_id"), **values)


def _f(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4f}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def _profile_text(p: Mapping[str, Any]) -> str:
    lines = [
        f"{p['name']} ({p['region_id']}), level {p['level']}, parent {p['parent_id']}",
        f"area: {_f(p['area_km2'])} km²",
    ]
    if p["population"]:
        lines.append(f"population ({p['population']['year']}): {_f(p['population']['value'])}")
    if p["firms"]:
        f = p["firms"]
        lines.append(
            f"firms: {_f(f['count'])} (rank {_f(f['rank'])} of {_f(f['of'])}), employees "
            f"{_f(f['employees'])}, {_f(f['density_per_km2'])} per km²"
        )
    if p["sectors"]:
        lines.append(f"top sectors by LQ ({p['sectors']['measure']}):")
        for s in p["sectors"]["top"]:
            star = " strong" if s["strong"] else ""
            lines.append(f"  {s['sector']} {s['title'] or ''}: LQ {_f(s['lq'])}{star}")
    if p["clusters"]:
        c = p["clusters"]
        lines.append(f"point clusters intersecting ({c['run_id']}): {len(c['items'])}")
    if p["assets"]:
        cats = ", ".join(f"{k} {v}" for k, v in p["assets"]["by_category"].items())
        lines.append(f"assets: {p['assets']['total']} ({cats or 'none'})")
    if p["indicators"]:
        for v in p["indicators"]["values"]:
            lines.append(
                f"{v['indicator']} ({v['year']}): {_f(v['value'])}, rank {v['rank']} of "
                f"{v['of']}, Theil share {_f(v['theil_share'])}"
            )
    return "\n".join(lines)


PROFILE = register(
    AnalysisSpec(
        name="profile",
        summary="Profile of one region",
        description="Everything the workspace knows about one region: area, population, "
        "firms and their rank, top sectors by LQ, clusters of a named clusters run, assets "
        "and every indicator with its rank and Theil share. Also GET /regions/{id}/profile.",
        params=ProfileParams,
        run=_run_profile,
        examples=({"region_id": "MX-OAX", "boundaries": "mexico_states"},),
        text=_profile_text,
    )
)


class CompareParams(Params):
    """Parameters of ``compare``."""

    ids: Annotated[
        list[str],
        Field(min_length=2, max_length=10, description="2-10 region ids"),
        Cli(positional=True),
    ]
    boundaries: Boundaries = None
    firms: Firms = None
    assets: Assets = None
    indicators: Indicators = None
    clusters_run: ClustersRun = None
    year: Year = None
    population_indicator: Population = "population"
    top: Top = 5


def _run_compare(ctx: Any, p: CompareParams, progress) -> Any:
    from geocluster.analyses.territories import compare_result

    values = p.model_dump()
    return compare_result(ctx, values.pop("ids"), **values)


def _compare_text(r: Mapping[str, Any]) -> str:
    ids = r["ids"]
    names = [str(p["name"] or p["region_id"]) for p in r["regions"]]
    lines = ["\t".join(["metric", *names])]
    for row in r["table"]:
        lines.append("\t".join([row["metric"], *(_f(row["values"].get(i)) for i in ids)]))
    return "\n".join(lines)


COMPARE = register(
    AnalysisSpec(
        name="compare",
        summary="Compare regions side by side",
        description="Profiles of 2-10 regions and a table lining up area, population, "
        "firms, employees, density, assets and every indicator. Also GET /regions/compare.",
        params=CompareParams,
        run=_run_compare,
        examples=({"ids": ["MX-JAL", "MX-OAX"], "boundaries": "mexico_states"},),
        text=_compare_text,
    )
)


class PeersParams(Params):
    """Parameters of ``peers``."""

    region_id: Annotated[str, Field(description="region id"), Cli(positional=True)]
    k: Annotated[int, Field(ge=1, le=100, description="number of peers"), Cli(aliases=("-k",))] = 5
    boundaries: Boundaries = None
    firms: Annotated[str | None, Field(description="firms dataset: adds firm density")] = None
    indicators: Indicators = None
    year: Year = None
    names: list[str] | None = Field(None, description="indicator names to compare on")


def _run_peers(ctx: Any, p: PeersParams, progress) -> Any:
    from geocluster.analyses.territories import peers_result

    values = p.model_dump()
    return peers_result(ctx, values.pop("region_id"), **values)


def _peers_text(r: Mapping[str, Any]) -> str:
    used = ", ".join(f"{u['indicator']} ({u['year']})" for u in r["indicators"])
    lines = [f"peers of {r['region_id']} on {used}:"]
    for p in r["peers"]:
        lines.append(f"  {p['region_id']}\t{p['name'] or ''}\tdistance {_f(p['distance'])}")
    return "\n".join(lines)


PEERS = register(
    AnalysisSpec(
        name="peers",
        summary="Most similar regions on standardised indicators",
        description="The k regions of the same level closest to a region on z-scored "
        "indicators (Euclidean). Also GET /regions/{id}/peers.",
        params=PeersParams,
        run=_run_peers,
        examples=({"region_id": "MX-OAX", "k": 5, "boundaries": "mexico_states"},),
        text=_peers_text,
    )
)
