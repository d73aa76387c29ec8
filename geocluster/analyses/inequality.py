"""Regional inequality analysis: inline values or an indicator over the years.

``run_inequality`` is what ``POST /analyses/inequality`` and ``geocluster inequality``
call. It returns one of two JSON-ready envelopes:

Inline (``values=[...]``; nothing is stored)::

    {"mode": "inline", "n": 5, "weighted": false, "result": ENTRY}

From data (``indicators=ID, indicator=NAME``; stored as a run of kind
``"inequality"``)::

    {"mode": "indicators", "run_id": "inequality-…", "indicators": ID, "indicator": NAME,
     "population_indicator": NAME | None, "boundaries": ID | None, "group_by": COL | None,
     "n": 32, "weighted": false, "regions": [ids...],
     "excluded_regions": [{"region_id", "reason"}],
     "years": {"1940": ENTRY, "1950": ENTRY, ...},
     "convergence": {"first_year", "last_year", "sigma": {"cv": TREND, "theil_t": TREND,
                     "gini": TREND}, "beta": BETA | None, "rank_mobility": MOBILITY,
                     "undefined": {...}} | None}

ENTRY (CONTRACT ``POST /analyses/inequality``)::

    {"n", "weighted", "mean", "gini", "theil_t", "theil_l", "ge": {"0","0.5","1","2"},
     "atkinson": {"0.5","1","2"}, "cv", "williamson"?, "hoover"?, "max_min",
     "top20_bottom20", "lorenz": [[x, y], ...], "undefined": {name: reason},
     "decomposition"?: {"total", "between", "within", "between_share", "p_value",
                        "permutations", "weighted", "groups": [...]},
     "spatial_gini"?: {"gini", "wg", "wcg", "wg_share", "wcg_share", "polarization",
                       "p_value", "polarization_p_value", "expected_wcg",
                       "permutations", "n_neighbour_pairs"}}

``williamson`` and ``hoover`` appear only with a population; with a population the
other indices are population-weighted, except ``cv`` and ``max_min`` (plain, across
regions) and the spatial Gini (unweighted, as Rey & Smith define it). ``decomposition`` appears
with ``groups`` / ``group_by``; ``spatial_gini`` with ``weights`` / ``boundaries``.

Missing years: a requested year with no value at all for the indicator is an error
(:class:`~geocluster.errors.InvalidInput` naming the years available). Regions that
lack a value (or a population) in any of the analysed years are left out of every
year, so each year covers the same regions (a balanced panel); they are listed in
``excluded_regions`` with the years they miss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from geocluster.analyses._common import jsonable
from geocluster.analyses._inputs import read_boundaries, read_indicators, version_of
from geocluster.analyses.result import Result, stored_kinds
from geocluster.errors import InvalidInput
from geocluster.inequality import (
    beta_convergence,
    contiguity_pairs,
    inequality_indices,
    rank_mobility,
    spatial_gini,
    theil_contributions,
    theil_decomposition,
    trend,
)

__all__ = ["chart_png", "inequality_result", "load_indicator_panel", "run_inequality"]

Progress = Callable[[float, str], None]
MAX_PERMUTATIONS = 9999


def _check_permutations(permutations: Any) -> int:
    if isinstance(permutations, bool) or not isinstance(permutations, int | np.integer):
        raise InvalidInput(f"expected permutations as a whole number, got {permutations!r}")
    if not 0 <= permutations <= MAX_PERMUTATIONS:
        raise InvalidInput(f"expected 0 <= permutations <= {MAX_PERMUTATIONS}, got {permutations}")
    return int(permutations)


def _entry(
    values: np.ndarray,
    population: np.ndarray | None,
    groups: Sequence | None,
    pairs: np.ndarray | Sequence | None,
    permutations: int,
    seed: int | None,
) -> dict:
    out = inequality_indices(values, population).to_dict()
    if groups is not None:
        dec = theil_decomposition(
            values, groups, population, permutations=permutations, seed=seed
        ).to_dict()
        out["decomposition"] = dec
    if pairs is not None:
        out["spatial_gini"] = spatial_gini(
            values, pairs, permutations=permutations, seed=seed
        ).to_dict()
    return out


def inequality_result(ws=None, **kwargs) -> Result:
    """:func:`run_inequality` as a :class:`Result` (every layer public: no firm data)."""
    body = dict(run_inequality(ws, **kwargs))
    run_id = body.pop("run_id", None)
    inputs = tuple(body.pop("inputs", ()))
    return Result(body=body, inputs=inputs, run_id=run_id)


def run_inequality(
    ws=None,
    *,
    values: Sequence[float] | None = None,
    population: Sequence[float] | str | None = None,
    groups: Sequence | None = None,
    weights: Sequence[Sequence[int]] | None = None,
    permutations: int = 99,
    seed: int | None = 0,
    indicators: str | None = None,
    indicator: str | None = None,
    years: Sequence[int] | None = None,
    population_indicator: str | None = None,
    group_by: str | None = None,
    boundaries: str | None = None,
    level: int | None = None,
    progress: Progress | None = None,
) -> dict:
    """Inequality indices for inline values, or for an indicator across regions and years.

    Parameters
    ----------
    ws : Workspace
        Needed for ``indicators`` (may be None for inline values).
    values : list of float, optional
        Inline regional values (one per region).
    population : list of float, optional
        Inline populations (same order as ``values``); weights every index. With
        ``indicators`` a string here is taken as ``population_indicator`` (the
        CONTRACT's ``"population": name``).
    groups : list, optional
        Inline group label per region, for the Theil decomposition.
    weights : list of [i, j], optional
        Inline neighbour pairs (0-based indices into ``values``) for the spatial Gini.
    permutations : int, default 99
        Permutations for the decomposition and spatial Gini p-values (0 skips them).
    seed : int, default 0
        Seed of the permutations.
    indicators : str, optional
        Id of an indicators dataset (long table region_id, year, indicator, value).
    indicator : str, optional
        Name of the indicator to analyse (required with ``indicators``).
    years : list of int, optional
        Years to analyse (default: every year the indicator has).
    population_indicator : str, optional
        Indicator in the same dataset holding each region's population; weights
        every index and adds Williamson and Hoover.
    group_by : str, optional
        Column of the ``boundaries`` dataset giving each region's group
        (``"parent_id"``, or any extra column kept at ingestion).
    boundaries : str, optional
        Id of a boundaries dataset: adds the spatial Gini (queen contiguity), lets
        ``group_by`` and ``level`` work, and gives the stored run a map layer.
    level : int, optional
        Only regions of this boundaries ``level``.
    progress : callable(fraction, message), optional

    Returns
    -------
    dict
        The envelope described in the module docstring.
    """
    report = progress or (lambda fraction, message: None)
    permutations = _check_permutations(permutations)
    if values is not None and indicators is not None:
        raise InvalidInput("expected either inline values or an indicators dataset, got both")
    if values is None and indicators is None:
        raise InvalidInput("expected inline values or an indicators dataset (with indicator)")
    if values is not None:
        if isinstance(population, str):
            raise InvalidInput(
                "with inline values, expected population as a list of numbers, "
                f"got the name {population!r}"
            )
        extra = {
            k: v
            for k, v in {
                "indicator": indicator,
                "years": years,
                "population_indicator": population_indicator,
                "group_by": group_by,
                "boundaries": boundaries,
            }.items()
            if v is not None
        }
        if extra:
            raise InvalidInput(
                f"{', '.join(extra)} only apply to indicators datasets, not to inline values"
            )
        entry = _entry(values, population, groups, weights, permutations, seed)
        report(1.0, "done")
        return jsonable(
            {
                "mode": "inline",
                "n": entry["n"],
                "weighted": entry["weighted"],
                "result": entry,
                "inputs": [],
            }
        )

    if ws is None:
        raise InvalidInput("an indicators dataset needs a workspace")
    if groups is not None or weights is not None:
        raise InvalidInput(
            "groups and weights are for inline values; with indicators use group_by and boundaries"
        )
    if isinstance(population, str):
        if population_indicator is not None and population_indicator != population:
            raise InvalidInput("got two different population indicators")
        population_indicator = population
    elif population is not None:
        raise InvalidInput(
            "with indicators, expected population as an indicator name, got a list of numbers"
        )
    return _run_from_data(
        ws,
        indicators=indicators,
        indicator=indicator,
        years=years,
        population_indicator=population_indicator,
        group_by=group_by,
        boundaries=boundaries,
        level=level,
        permutations=permutations,
        seed=seed,
        report=report,
    )


def load_indicator_panel(
    frame: pd.DataFrame, indicator: str, years: Sequence[int] | None = None
) -> pd.DataFrame:
    """Wide table region_id x year of one indicator from the long indicators frame.

    Raises
    ------
    InvalidInput
        If the indicator is unknown or a requested year has no value at all.
    """
    if indicator is None:
        raise InvalidInput("expected an indicator name with the indicators dataset, got none")
    sub = frame[frame["indicator"].astype(str) == str(indicator)]
    if sub.empty:
        names = sorted(frame["indicator"].astype(str).unique().tolist())
        shown = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
        raise InvalidInput(f"no indicator {indicator!r} in the dataset; available: {shown}")
    sub = sub.dropna(subset=["value"])
    available = sorted(int(v) for v in sub["year"].dropna().unique())
    if years is None:
        chosen = available
    else:
        try:
            chosen = sorted({int(v) for v in years})
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"expected years as whole numbers, got {years!r}") from exc
        if not chosen:
            raise InvalidInput(f"expected at least one year, got none; available: {available}")
        missing = [yr for yr in chosen if yr not in available]
        if missing:
            raise InvalidInput(
                f"no values of {indicator!r} for year(s) {missing}; available years: {available}"
            )
    if not chosen:
        raise InvalidInput(f"indicator {indicator!r} has no values")
    sub = sub[sub["year"].astype(int).isin(chosen)]
    dup = sub.duplicated(["region_id", "year"])
    if dup.any():
        row = sub[dup].iloc[0]
        raise InvalidInput(
            f"indicator {indicator!r} has more than one value for region "
            f"{row['region_id']!r} in {int(row['year'])}"
        )
    wide = sub.assign(region_id=sub["region_id"].astype(str), year=sub["year"].astype(int)).pivot(
        index="region_id", columns="year", values="value"
    )
    return wide.reindex(columns=chosen).astype(float)


def _run_from_data(
    ws,
    *,
    indicators: str,
    indicator: str | None,
    years,
    population_indicator: str | None,
    group_by: str | None,
    boundaries: str | None,
    level: int | None,
    permutations: int,
    seed: int | None,
    report: Progress,
) -> dict:
    report(0.02, f"reading {indicators}")
    frame, ind_info = read_indicators(ws, indicators)
    inputs = [version_of(ind_info)]
    panel = load_indicator_panel(frame, indicator, years)
    chosen = [int(c) for c in panel.columns]
    excluded: list[dict] = []

    pop_panel = None
    if population_indicator is not None:
        pop_panel = load_indicator_panel(frame, population_indicator, None)
        lacking = [yr for yr in chosen if yr not in pop_panel.columns]
        if lacking:
            raise InvalidInput(
                f"no values of population indicator {population_indicator!r} for year(s) "
                f"{lacking}; available years: {[int(c) for c in pop_panel.columns]}"
            )
        pop_panel = pop_panel.reindex(index=panel.index, columns=chosen)

    shapes = None
    if boundaries is not None:
        # without a level, every level: the indicator's regions decide (one level, checked
        # below); the reader rejects duplicate ids either way
        shapes, b_info = read_boundaries(
            ws, boundaries, crs=None, level=level, all_levels=level is None
        )
        inputs.append(version_of(b_info))
        shapes = shapes.set_index("region_id", drop=False)
        outside = [r for r in panel.index if r not in shapes.index]
        for rid in outside:
            excluded.append(
                {"region_id": rid, "reason": f"not among the regions of {boundaries!r}"}
                if level is None
                else {"region_id": rid, "reason": f"not a level-{level} region of {boundaries!r}"}
            )
        panel = panel.drop(index=outside)
        if pop_panel is not None:
            pop_panel = pop_panel.drop(index=outside)
        if level is None and "level" in shapes.columns:
            levels = sorted({int(v) for v in shapes.loc[panel.index, "level"].dropna()})
            if len(levels) > 1:
                raise InvalidInput(
                    f"the regions of {indicator!r} are of several boundaries levels {levels}; "
                    "expected one: pass level"
                )
    elif group_by is not None:
        raise InvalidInput(f"group_by={group_by!r} needs a boundaries dataset, got none")
    elif level is not None:
        raise InvalidInput("level needs a boundaries dataset, got none")

    missing_value = panel.isna()
    if pop_panel is not None:
        missing_pop = pop_panel.isna()
    for rid in panel.index:
        gaps = [yr for yr in chosen if missing_value.at[rid, yr]]
        pgaps = [yr for yr in chosen if pop_panel is not None and missing_pop.at[rid, yr]]
        if gaps:
            excluded.append({"region_id": rid, "reason": f"no {indicator} in {gaps}"})
        elif pgaps:
            excluded.append({"region_id": rid, "reason": f"no {population_indicator} in {pgaps}"})
    drop = {e["region_id"] for e in excluded}
    panel = panel[~panel.index.isin(drop)]
    if pop_panel is not None:
        pop_panel = pop_panel.loc[panel.index]

    group_labels = None
    if group_by is not None:
        if group_by not in shapes.columns or group_by == shapes.geometry.name:
            cols = [c for c in shapes.columns if c != shapes.geometry.name]
            raise InvalidInput(
                f"boundaries {boundaries!r} have no column {group_by!r}; columns: {cols}"
            )
        labels = shapes.loc[panel.index, group_by]
        nogroup = labels.isna()
        for rid in labels.index[nogroup]:
            excluded.append({"region_id": rid, "reason": f"no {group_by}"})
        panel = panel[~nogroup.to_numpy()]
        if pop_panel is not None:
            pop_panel = pop_panel.loc[panel.index]
        group_labels = labels[~nogroup].astype(str).to_numpy()

    if len(panel) == 0:
        raise InvalidInput(
            f"no region has {indicator!r} in every year of {chosen}"
            + (f" and a {population_indicator!r}" if population_indicator else "")
        )

    pairs = None
    if shapes is not None:
        pairs = contiguity_pairs(shapes.loc[panel.index].geometry) if len(panel) >= 2 else None

    ids = panel.index.tolist()
    per_year: dict[str, dict] = {}
    for k, yr in enumerate(chosen):
        report(0.05 + 0.8 * k / len(chosen), f"year {yr}")
        y = panel[yr].to_numpy(float)
        pop = pop_panel[yr].to_numpy(float) if pop_panel is not None else None
        per_year[str(yr)] = _entry(y, pop, group_labels, pairs, permutations, seed)

    convergence = None
    if len(chosen) >= 2:
        convergence = _convergence(panel, chosen, per_year, ids)

    report(0.9, "saving the run")
    result = {
        "mode": "indicators",
        "indicators": indicators,
        "indicator": indicator,
        "population_indicator": population_indicator,
        "boundaries": boundaries,
        "group_by": group_by,
        "level": level,
        "n": len(ids),
        "weighted": pop_panel is not None,
        "regions": ids,
        "excluded_regions": excluded,
        "years": per_year,
        "convergence": convergence,
    }
    result = jsonable(result)
    run = _save(ws, result, panel, pop_panel, shapes, group_labels, seed, permutations, inputs)
    result = {"run_id": run.id, **result, "inputs": inputs}
    report(1.0, "done")
    return result


def _convergence(panel: pd.DataFrame, chosen: list[int], per_year: dict, ids: list) -> dict:
    first, last = chosen[0], chosen[-1]
    undefined: dict[str, str] = {}
    yrs = [float(y) for y in chosen]
    sigma = {
        name: trend(yrs, [per_year[str(y)][name] for y in chosen]).to_dict()
        for name in ("cv", "theil_t", "gini")
    }
    beta = None
    try:
        beta = beta_convergence(
            panel[first].to_numpy(float), panel[last].to_numpy(float), last - first
        ).to_dict()
    except InvalidInput as exc:
        undefined["beta"] = str(exc)
    mobility = rank_mobility(
        panel[first].to_numpy(float), panel[last].to_numpy(float), ids=ids
    ).to_dict()
    return {
        "first_year": first,
        "last_year": last,
        "sigma": sigma,
        "beta": beta,
        "rank_mobility": mobility,
        "undefined": undefined,
    }


def _save(ws, result, panel, pop_panel, shapes, group_labels, seed, permutations, inputs):
    rows = []
    for yr, e in result["years"].items():
        row = {
            "year": int(yr),
            "n": e["n"],
            "mean": e["mean"],
            "gini": e["gini"],
            "theil_t": e["theil_t"],
            "theil_l": e["theil_l"],
            "cv": e["cv"],
            "williamson": e.get("williamson"),
            "hoover": e.get("hoover"),
            "atkinson_0_5": e["atkinson"]["0.5"],
            "atkinson_1": e["atkinson"]["1"],
            "atkinson_2": e["atkinson"]["2"],
            "max_min": e["max_min"],
            "top20_bottom20": e["top20_bottom20"],
        }
        if "decomposition" in e:
            d = e["decomposition"]
            row.update(
                between=d["between"],
                within=d["within"],
                between_share=d["between_share"],
                decomposition_p_value=d["p_value"],
            )
        if "spatial_gini" in e:
            s = e["spatial_gini"]
            row.update(
                spatial_wg_share=s["wg_share"],
                spatial_wcg_share=s["wcg_share"],
                polarization=s["polarization"],
                spatial_p_value=s["p_value"],
            )
        rows.append(row)
    indices = pd.DataFrame(rows).astype({"year": "int64"})
    first, last = int(panel.columns[0]), int(panel.columns[-1])
    regions = pd.DataFrame({"region_id": panel.index.astype(str)})
    regions[f"value_{first}"] = panel[first].to_numpy(float)
    regions[f"value_{last}"] = panel[last].to_numpy(float)
    pop_last = pop_panel[last].to_numpy(float) if pop_panel is not None else None
    regions["theil_contribution"] = theil_contributions(panel[last].to_numpy(float), pop_last)
    regions["rank"] = pd.Series(-panel[last].to_numpy(float)).rank(method="min").astype(int)
    if group_labels is not None:
        regions["group"] = group_labels
    layers: dict[str, Any] = {"indices": indices}
    primary = "indices"
    if shapes is not None:
        import geopandas as gpd

        geo = shapes.loc[panel.index]
        regions["name"] = geo["name"].to_numpy() if "name" in geo.columns else None
        regions = gpd.GeoDataFrame(regions, geometry=geo.geometry.to_numpy(), crs=geo.crs)
        primary = "regions"
    layers["regions"] = regions
    summary = {
        "indicator": result["indicator"],
        "n": result["n"],
        "years": [int(y) for y in result["years"]],
        "gini_first": result["years"][str(first)]["gini"],
        "gini_last": result["years"][str(last)]["gini"],
    }
    params = {
        "indicators": result["indicators"],
        "indicator": result["indicator"],
        "years": [int(y) for y in result["years"]],
        "population_indicator": result["population_indicator"],
        "group_by": result["group_by"],
        "boundaries": result["boundaries"],
        "level": result["level"],
        "permutations": permutations,
        "seed": seed,
    }
    return ws.save_run(
        "inequality",
        params=params,
        inputs=inputs,
        layers=layers,
        summary={**summary, **stored_kinds(**dict.fromkeys(layers, "public"))},
        primary=primary,
    )


# ----------------------------------------------------------------------------- charts

CHART_KINDS = ("lorenz", "indices", "decomposition")


def chart_png(kind: str, result: dict, *, years: Sequence[int] | None = None) -> bytes:
    """A PNG chart of a :func:`run_inequality` result.

    Parameters
    ----------
    kind : {"lorenz", "indices", "decomposition"}
        ``lorenz``: the Lorenz curve(s) (one per year); ``indices``: Gini, Theil T,
        Theil L, CV (and Williamson) over the years; ``decomposition``: stacked
        between/within bars per year.
    result : dict
        What :func:`run_inequality` returned (inline or from indicators).
    years : list of int, optional
        Restrict to these years (default: all; Lorenz curves: first and last year).

    Returns
    -------
    bytes
        PNG image.
    """
    from geocluster.inequality.charts import decomposition_png, lorenz_png, series_png

    if kind not in CHART_KINDS:
        raise InvalidInput(f"expected a chart kind in {list(CHART_KINDS)}, got {kind!r}")
    if result.get("mode") == "inline":
        entries = {"values": result["result"]}
        title = "inline values"
    else:
        entries = dict(result["years"])
        title = str(result.get("indicator"))
        if years is not None:
            wanted = [str(int(y)) for y in years]
            unknown = [y for y in wanted if y not in entries]
            if unknown:
                raise InvalidInput(
                    f"no result for year(s) {unknown}; the result has {list(entries)}"
                )
            entries = {y: entries[y] for y in wanted}
    if kind == "lorenz":
        picked = entries
        if years is None and len(entries) > 2:
            keys = list(entries)
            picked = {keys[0]: entries[keys[0]], keys[-1]: entries[keys[-1]]}
        weighted = bool(next(iter(picked.values()))["weighted"])
        return lorenz_png(
            {k: v["lorenz"] for k, v in picked.items()},
            title=f"Lorenz curve: {title}",
            weighted=weighted,
        )
    if kind == "indices":
        if result.get("mode") == "inline":
            raise InvalidInput("an index-over-time chart needs an indicator over several years")
        yrs = [int(y) for y in entries]
        names = ["gini", "theil_t", "theil_l", "cv"]
        if result.get("weighted"):
            names.append("williamson")
        series = {n: [entries[str(y)].get(n) for y in yrs] for n in names}
        return series_png(yrs, series, title=f"Inequality of {title} over time")
    if not all("decomposition" in e for e in entries.values()):
        raise InvalidInput(
            "a decomposition chart needs groups (inline) or group_by (indicators), got none"
        )
    return decomposition_png(
        list(entries),
        [e["decomposition"]["between"] for e in entries.values()],
        [e["decomposition"]["within"] for e in entries.values()],
        title=f"Theil T of {title}: between and within groups",
    )
