"""Spec of ``inequality``: inline values or an indicator over regions and years."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, model_validator

from geocluster.analyses.spec import AnalysisSpec, Cli, Params, register
from geocluster.analyses.specs._fields import Level, Seed
from geocluster.errors import InvalidInput

CHARTS = ("lorenz", "indices", "decomposition")


def _pairs(text: str) -> list[list[int]]:
    """``0-1,1-2`` -> ``[[0, 1], [1, 2]]`` (JSON ``[[0, 1], ...]`` works too)."""
    if text.lstrip().startswith("["):
        import json

        return json.loads(text)
    out = []
    for part in text.split(","):
        if part.strip():
            try:
                i, j = part.split("-")
                out.append([int(i), int(j)])
            except ValueError:
                raise InvalidInput(
                    f"expected weights as i-j pairs like 0-1,1-2, got {part!r}"
                ) from None
    return out


def _population(text: str) -> list[str] | str:
    """Comma-separated numbers (inline), or an indicator name."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        [float(p) for p in parts]
    except ValueError:
        return text
    return parts


class InequalityParams(Params):
    """Parameters of ``inequality``: inline ``values`` or an ``indicators`` dataset."""

    values: list[float] | None = Field(
        None, min_length=1, description="inline values (one per region)"
    )
    population: Annotated[
        list[float] | str | None,
        Field(description="inline weights, or the population indicator name"),
        Cli(parse=_population),
    ] = None
    groups: list[str] | None = Field(None, description="inline group per region (Theil)")
    weights: Annotated[
        list[list[int]] | None,
        Field(description="neighbour pairs [[i, j], ...] for the spatial Gini (CLI: 0-1,1-2)"),
        Cli(parse=_pairs),
    ] = None
    permutations: int = Field(99, ge=0, le=9999, description="permutations for p-values")
    seed: Seed = 0
    indicators: str | None = Field(None, description="indicators dataset id")
    indicator: str | None = Field(None, description="indicator to analyse")
    years: list[int] | None = Field(None, description="years (default: all)")
    population_indicator: str | None = Field(None, description="population indicator name")
    group_by: str | None = Field(None, description="boundaries column, e.g. parent_id")
    boundaries: str | None = Field(None, description="boundaries dataset (spatial Gini, groups)")
    level: Level = None

    @model_validator(mode="after")
    def _one_source(self) -> InequalityParams:
        if (self.values is None) == (self.indicators is None):
            raise ValueError(
                "expected inline 'values' or an 'indicators' dataset with 'indicator', "
                + ("got both" if self.values is not None else "got neither")
            )
        return self


def _run(ctx: Any, p: InequalityParams, progress) -> Any:
    from geocluster.analyses.inequality import inequality_result

    return inequality_result(ctx if p.indicators else None, **p.model_dump(), progress=progress)


def _png(body: Mapping[str, Any], options: Mapping[str, str]) -> tuple[bytes, str]:
    from geocluster.analyses.inequality import chart_png

    chart = options.get("chart")
    kind = chart or (
        "indices"
        if body.get("mode") == "indicators" and len(body.get("years", {})) > 1
        else "lorenz"
    )
    return chart_png(kind, dict(body)), "image/png"


def _f(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4f}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def _text(result: Mapping[str, Any]) -> str:
    lines: list[str] = []
    entries = {"": result["result"]} if result["mode"] == "inline" else result["years"]
    cols = ["gini", "theil_t", "theil_l", "cv", "williamson", "hoover", "max_min"]
    cols = [c for c in cols if any(c in e for e in entries.values())]
    head = ["year", "n", *cols, "atk(0.5)", "atk(1)", "atk(2)"]
    has_dec = any("decomposition" in e for e in entries.values())
    has_sg = any("spatial_gini" in e for e in entries.values())
    if has_dec:
        head += ["between", "between%", "p(between)"]
    if has_sg:
        head += ["polarization", "p(spatial)"]
    lines.append("\t".join(head))
    for year, e in entries.items():
        row = [year or "-", str(e["n"]), *(_f(e.get(c)) for c in cols)]
        row += [_f(e["atkinson"][k]) for k in ("0.5", "1", "2")]
        if has_dec:
            d = e["decomposition"]
            share = d["between_share"]
            row += [_f(d["between"]), "-" if share is None else f"{100 * share:.1f}"]
            row += [_f(d["p_value"])]
        if has_sg:
            s = e["spatial_gini"]
            row += [_f(s["polarization"]), _f(s["p_value"])]
        lines.append("\t".join(row))
    if result["mode"] == "indicators":
        line = f"run: {result['run_id']}  regions: {result['n']}"
        if result["excluded_regions"]:
            line += f"  excluded: {len(result['excluded_regions'])}"
        lines.append(line)
        conv = result.get("convergence")
        if conv:
            sig = conv["sigma"]["cv"]
            lines.append(
                f"sigma convergence {conv['first_year']}-{conv['last_year']}: CV slope "
                f"{sig['slope']:.5f}/yr ({'converging' if sig['converging'] else 'diverging'})"
            )
            b = conv["beta"]
            if b:
                lines.append(
                    f"beta convergence: beta {b['beta']:.5f} (se {b['stderr']:.5f}), speed "
                    f"{_f(b['speed'])}/yr, half-life {_f(b['half_life'])} years"
                )
            lines.append(f"rank mobility: Kendall tau {_f(conv['rank_mobility']['kendall_tau'])}")
    for name, reason in next(iter(entries.values())).get("undefined", {}).items():
        lines.append(f"note: {name}: {reason}")
    return "\n".join(lines)


INEQUALITY = register(
    AnalysisSpec(
        name="inequality",
        summary="Gini, Theil, Atkinson, Williamson … (inline values or from indicators)",
        description="Either inline values (values, population, groups, weights) or an "
        "indicators dataset (indicators, indicator, years, population, group_by, boundaries): "
        "per year Gini, Theil T/L, Atkinson, CV, Williamson and Hoover (with a population), "
        "the Theil decomposition and the spatial Gini; sigma/beta convergence over years. "
        "Results from a dataset are stored as a run. ?format=png&chart=lorenz|indices|"
        "decomposition returns a chart instead.",
        params=InequalityParams,
        run=_run,
        examples=(
            {"values": [1, 2, 3, 4, 10]},
            {
                "indicators": "mexico_gdp",
                "indicator": "pcgdp",
                "years": [1940, 2000],
                "group_by": "parent_id",
                "boundaries": "mexico",
            },
        ),
        text=_text,
        formats={"png": _png},
        format_options={"chart": CHARTS},
    )
)
