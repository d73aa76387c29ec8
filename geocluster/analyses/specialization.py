"""Specialisation, hot spots, point patterns and cluster ranking (JSON-ready orchestration).

Each ``run_*`` reads datasets from the workspace in a metric working CRS, calls the pure
functions of :mod:`geocluster.specialization`, :mod:`geocluster.spatialstats` and
:mod:`geocluster.ranking`, persists a run (readable as collections) and returns a
JSON-serialisable dict (CONTRACT.md shapes plus extras). Bad parameters raise
:class:`~geocluster.errors.InvalidInput`; unknown ids the workspace's ``NotFound``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geocluster.analyses._common import jsonable, noop_progress, records
from geocluster.analyses._inputs import (
    indicator_values,
    read_assets,
    read_boundaries,
    read_clusters_run,
    read_firm_points,
    read_firms,
    read_indicators,
    read_run,
    run_crs,
    version_of,
)
from geocluster.analyses.result import Layer, Result, stored_kinds
from geocluster.engine._source import dataset_files
from geocluster.errors import InvalidInput, MissingColumns
from geocluster.specialization import assign_regions, assign_regions_xy, long_table, sector_table
from geocluster.specialization.measures import MEASURES

__all__ = [
    "hotspots_result",
    "pointpattern_result",
    "ranking_result",
    "specialization_result",
    "SECTOR_LEVELS",
    "HOTSPOT_METHODS",
    "POINTPATTERN_METHODS",
    "run_specialization",
    "run_hotspots",
    "run_pointpattern",
    "run_ranking",
]

SECTOR_LEVELS = ("section", "division", "group")
HOTSPOT_METHODS = ("lisa", "gi_star")
POINTPATTERN_METHODS = ("ripley", "kdensity")
#: Ripley's L runs on at most this many firms (a seeded sample above it)
MAX_RIPLEY_POINTS = 5000

Progress = Callable[[float, str], None]


def _check_choice(value, choices, name):
    if value not in choices:
        raise InvalidInput(f"expected {name} in {list(choices)}, got {value!r}")
    return value


def _check_int(value, name, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise InvalidInput(f"expected {name} as an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def _check_float(value, name, lo=0.0, inclusive=True):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"expected {name} as a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or (v < lo if inclusive else v <= lo):
        op = ">=" if inclusive else ">"
        raise InvalidInput(f"expected {name} {op} {lo}, got {value!r}")
    return v


# -- shared readers ---------------------------------------------------------------------------
def _read_boundaries(ws, boundaries: str, crs: str, level: int | None) -> gpd.GeoDataFrame:
    return read_boundaries(ws, boundaries, crs=crs, level=level)[0]


def _firm_xy(firms: gpd.GeoDataFrame | pd.DataFrame) -> np.ndarray:
    if not isinstance(firms, gpd.GeoDataFrame) and {"x", "y"} <= set(firms.columns):
        # a geometry-free read (read_firm_points): the stored working coordinates
        return np.column_stack([firms["x"].to_numpy(float), firms["y"].to_numpy(float)])
    geom = firms.geometry
    if len(geom) and not (geom.geom_type == "Point").all():
        geom = geom.representative_point()
    return (
        np.column_stack([geom.x.to_numpy(), geom.y.to_numpy()]) if len(geom) else np.zeros((0, 2))
    )


def _firm_sectors(firms: pd.DataFrame, sector_level: str) -> pd.Series:
    from geocluster.sectors import division_of, section_of

    col = "isic_section" if sector_level == "section" else "isic_division"
    if col in firms.columns:
        if isinstance(firms[col].dtype, pd.ArrowDtype | pd.StringDtype):
            return firms[col]  # text already, nulls as NA: no copy into Python objects
        return firms[col].astype("object").where(firms[col].notna(), None)
    if "sector_code" not in firms.columns:
        raise MissingColumns(
            f"expected {col} or sector_code in the firms, got {list(firms.columns)}"
        )
    fn = section_of if sector_level == "section" else division_of
    out = fn(firms["sector_code"].astype("string"))
    return out.astype("object").where(out.notna(), None)


def _sector_columns(info, sector_level: str, sector_groups) -> list[str]:
    """The sector columns :func:`_firm_sectors` will use (each read costs 5M strings)."""
    cols = ["isic_section" if sector_level == "section" else "isic_division"]
    if sector_groups and sector_level == "section":
        cols.append("isic_division")  # the extra group rows are built from divisions
    if not set(cols) <= set(info.columns or []):
        cols.append("sector_code")  # derived from the code when not stored
    return cols


def _groups(sector_groups: Sequence[str] | None) -> dict[str, frozenset[str]]:
    from geocluster.sectors import SECTOR_GROUPS, group_divisions

    names = list(sector_groups) if sector_groups else list(SECTOR_GROUPS)
    return {name: frozenset(group_divisions(name)) for name in names}


def _tables(
    firms: gpd.GeoDataFrame,
    regions: gpd.GeoDataFrame,
    *,
    sector_level: str,
    measure: str,
    bootstrap: int,
    seed: int,
    sector_groups: Sequence[str] | None = None,
):
    if not isinstance(firms, gpd.GeoDataFrame) and {"x", "y"} <= set(firms.columns):
        # the stored working coordinates as they are: no (n, 2) copy of a register
        xy = (firms["x"].to_numpy(float), firms["y"].to_numpy(float))
        idx = assign_regions_xy(*xy, regions, predicate="intersects")
    else:
        idx = assign_regions(_firm_xy(firms), regions, predicate="intersects")
    groups = _groups(sector_groups) if sector_level == "group" else None
    sectors = _firm_sectors(firms, "division" if groups else sector_level)
    emp = firms["employees"] if "employees" in firms.columns else None
    table = sector_table(idx, regions["region_id"], sectors, emp, groups=groups)
    rows, reg, sec, used = long_table(table, measure, bootstrap=bootstrap, random_state=seed)
    return table, rows, reg, sec, used


def _engine_tables(engine, files, regions, *, crs, sector_level, measure, sector_groups=None):
    """:func:`_tables` from the cell sums the engine reduces (no firm comes here)."""
    from geocluster.specialization.cells import long_table_from_cells

    groups = _groups(sector_groups) if sector_level == "group" else None
    cells, _ = engine.specialization_cells(
        files, regions=regions, crs=crs, sector_level=sector_level
    )
    return long_table_from_cells(cells, regions["region_id"], measure, groups=groups)


# -- specialisation ---------------------------------------------------------------------------
def run_specialization(ws, **kwargs) -> dict[str, Any]:
    """:func:`specialization_result` as its JSON body (no disclosure policy applied)."""
    return specialization_result(ws, **kwargs).to_body()


def specialization_result(
    ws,
    *,
    firms: str,
    boundaries: str,
    measure: str = "employees",
    sector_level: str = "division",
    level: int | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    sector_groups: Sequence[str] | None = None,
    progress: Progress | None = None,
    engine=None,
) -> Result:
    """Region × sector specialisation of firms (LQ, HHI, Krugman, EG, MS, strong, stars).

    Parameters
    ----------
    firms, boundaries : str
        Dataset ids (firms; boundaries with ``region_id`` and ``level``).
    measure : {"employees", "firms", "auto"}
        What the LQ and indices measure; see ``choose_measure``. ``measure_used`` says which.
    sector_level : {"section", "division", "group"}
        ISIC Rev.4 sections, divisions, or the sector groups (``sector_groups``: names of
        ``geocluster.sectors.SECTOR_GROUPS``, default all).
    sector_groups : list of str, optional
        With ``sector_level="group"``: the groups (default all). With a section or division
        level: groups added as extra rows and sectors (``sector_level`` = ``"group"``); the
        region indices (HHI, Krugman) stay on the section/division structure.
    level : int, optional
        Boundary level to use (default: the finest in the dataset).
    bootstrap : int
        Bootstrap replicates for the LQ interval (0: none; at most 999).
    seed : int
        Seed of the bootstrap.
    engine : Engine, optional
        ``--engine dask``: the region join and the region x sector sums run on the
        engine's workers, which read the register's files themselves; the measures
        follow from the reduced cells (:mod:`geocluster.specialization.cells`), equal to
        the in-process ones. A bootstrap resamples firms, so it needs the firm-level
        table: with ``bootstrap > 0`` the analysis runs in this process.

    Returns
    -------
    dict
        ``rows`` (cells with at least one firm: ``region_id, sector, count, employees, lq,
        strong, strong_90, stars, star_size, star_specialisation, star_focus, small_count``
        and ``lq_ci`` with bootstrap), ``regions`` (``region_id, hhi, krugman, n_firms,
        employees``), ``sectors`` (``sector, ellison_glaeser, maurel_sedillot, ...``),
        ``measure_used``, ``run_id`` and run details. The run stores the layers
        ``regions`` (polygons + metrics, primary), ``rows`` and ``sectors``.
    """
    report = progress or noop_progress
    _check_choice(measure, MEASURES, "measure")
    _check_choice(sector_level, SECTOR_LEVELS, "sector_level")
    bootstrap = _check_int(bootstrap, "bootstrap", 0, 999)
    seed = _check_int(seed, "seed", 0, 2**32 - 1)
    if sector_groups is not None:
        if isinstance(sector_groups, str) or not all(isinstance(g, str) for g in sector_groups):
            raise InvalidInput(f"expected sector_groups as a list of names, got {sector_groups!r}")
    report(0.05, "reading firms and boundaries")
    f_info = ws.require(firms, "firms")
    files = dataset_files(ws, f_info) if engine is not None and not bootstrap else None
    if files is None:
        read = read_firm_points(
            ws, firms, columns=["employees", *_sector_columns(f_info, sector_level, sector_groups)]
        )
        info, frame = read.info, read.all
        f_input = read.input
    else:
        info, frame, f_input = f_info, None, version_of(f_info)
    # only regions meeting the firms' extent: the rest cannot hold a firm, and world
    # boundaries projected into one country's working CRS come back distorted
    regions, b_info = read_boundaries(
        ws, boundaries, crs=info.working_crs, level=level, bbox=info.bbox
    )
    inputs = (f_input, version_of(b_info))
    if files is None:
        report(0.3, "joining firms to regions")
        tables = functools.partial(_tables, frame, regions, bootstrap=bootstrap, seed=seed)
    else:
        report(0.3, "joining firms to regions on the engine's workers")
        tables = functools.partial(_engine_tables, engine, files, regions, crs=info.working_crs)
    table, rows, reg, sec, used = tables(
        sector_level=sector_level, measure=measure, sector_groups=sector_groups
    )
    rows.insert(2, "sector_level", sector_level)
    sec.insert(1, "sector_level", sector_level)
    if sector_groups and sector_level != "group":
        # the groups too, as extra rows: their LQs use the same region and national totals
        report(0.6, "aggregating sector groups")
        _, g_rows, _, g_sec, _ = tables(
            sector_level="group", measure=used, sector_groups=sector_groups
        )
        g_rows.insert(2, "sector_level", "group")
        g_sec.insert(1, "sector_level", "group")
        rows = pd.concat([rows, g_rows], ignore_index=True)
        sec = pd.concat([sec, g_sec], ignore_index=True)
    report(0.8, "saving the run")
    published = rows[rows["count"] > 0].reset_index(drop=True)
    regions_layer = (
        regions[["region_id", "name", "geometry"]]
        if "name" in regions
        else regions[["region_id", "geometry"]]
    )
    regions_layer = regions_layer.merge(reg, on="region_id", how="left")
    params = {
        "firms": firms,
        "boundaries": boundaries,
        "measure": measure,
        "sector_level": sector_level,
        "level": regions.attrs.get("level"),
        "bootstrap": bootstrap,
        "seed": seed,
        "sector_groups": list(sector_groups) if sector_groups else None,
        "working_crs": info.working_crs,
    }
    if files is not None:
        params["engine"] = "dask"  # the join and sums ran on the engine's workers
    summary = {
        "measure_used": used,
        "n_firms": table.n_firms,
        "outside": table.dropped_outside,
        "n_regions": len(regions),
        "n_sectors": len(table.sectors),
        "strong": int(rows["strong"].sum()),
        "working_crs": info.working_crs,
    }
    run = ws.save_run(
        "specialization",
        params=jsonable(params),
        inputs=list(inputs),
        layers={"regions": regions_layer, "rows": published, "sectors": sec},
        summary={
            **jsonable(summary),
            **stored_kinds(
                regions=("region_table", "n_firms"),
                rows=("region_table", "count"),
                sectors="public",
            ),
        },
        primary="regions",
    )
    out_rows = published.copy()
    if bootstrap:
        out_rows["lq_ci"] = list(zip(out_rows.pop("lq_low"), out_rows.pop("lq_high")))
    report(1.0, "done")
    return Result(
        run_id=run.id,
        inputs=inputs,
        body={
            "measure_used": used,
            "sector_level": sector_level,
            "level": jsonable(regions.attrs.get("level")),
            "n_firms": table.n_firms,
            "outside": table.dropped_outside,
            "rows": None,
            "regions": None,
            "sectors": records(sec),
            "collections": {
                "regions": run.id,
                "rows": f"{run.id}.rows",
                "sectors": f"{run.id}.sectors",
            },
        },
        layers={
            "rows": Layer("region_table", out_rows, count_col="count"),
            "regions": Layer("region_table", reg, count_col="n_firms"),
        },
    )


# -- hot spots --------------------------------------------------------------------------------
def _values_from_indicators(ws, indicators, indicator, year):
    table, info = read_indicators(ws, indicators)
    vals, used_year = indicator_values(table, indicator, year, dataset=indicators)
    return vals, used_year, version_of(info)


def _values_from_specialization(ws, run_id: str, sector: str | None):
    run = read_run(ws, run_id, "specialization")
    regions = ws.read_run(run_id, "regions", crs=run.params.get("working_crs"))
    active = pd.to_numeric(regions["n_firms"], errors="coerce").fillna(0) > 0
    if sector is None:
        area_km2 = regions.geometry.area / 1e6
        dens = pd.to_numeric(regions["n_firms"], errors="coerce") / area_km2.where(area_km2 > 0)
        return dict(zip(regions["region_id"].astype(str), dens)), "firms_per_km2"
    rows = ws.read_run(run_id, "rows")
    sel = rows[rows["sector"].astype(str) == str(sector)]
    if sel.empty:
        known = sorted(rows["sector"].astype(str).unique())[:30]
        raise InvalidInput(f"expected a sector of run {run_id!r} among {known}, got {sector!r}")
    lq = dict(zip(sel["region_id"].astype(str), pd.to_numeric(sel["lq"], errors="coerce")))
    # cells without firms of the sector are not stored: LQ 0 where the region has firms
    vals = {
        rid: lq.get(rid, 0.0) if ok else np.nan
        for rid, ok in zip(regions["region_id"].astype(str), active)
    }
    return vals, f"lq:{sector}"


def run_hotspots(ws, **kwargs) -> dict[str, Any]:
    """:func:`hotspots_result` as its JSON body (no disclosure policy applied)."""
    return hotspots_result(ws, **kwargs).to_body()


def hotspots_result(
    ws,
    *,
    boundaries: str,
    values: Mapping[str, float] | None = None,
    indicators: str | None = None,
    indicator: str | None = None,
    year: int | None = None,
    method: str = "lisa",
    weights: str = "queen",
    permutations: int = 999,
    seed: int = 0,
    fdr: bool = False,
    alpha: float = 0.05,
    level: int | None = None,
    specialization_run: str | None = None,
    sector: str | None = None,
    progress: Progress | None = None,
) -> Result:
    """Local hot spots (LISA or Gi*) and global Moran's I of a value per region.

    The values come from exactly one source: inline (``values``: ``{region_id: value}``),
    an indicators dataset (``indicators`` + ``indicator`` + ``year``, default the latest
    year), or a specialisation run (``specialization_run``: with ``sector`` the sector's LQ
    per region, 0 where the region has firms but none of the sector; without, firms per
    km²). Regions without a finite value are left out before the weights are built
    (reported in ``missing``).

    Returns
    -------
    dict
        ``regions``: ``region_id, value, statistic, p_value, label, significant`` (label
        HH/LH/LL/HL for LISA, as esda's ``q``, or hot/cold for Gi*); ``global``: Moran's I
        with ``p_value`` (permutation) and ``p_norm``; ``run_id``; ``islands``; ``missing``.
    """
    # imported here: the specialisation command (a fresh CLI process) needs none of scipy,
    # libpysal or numba
    from geocluster.spatialstats import (
        build_weights,
        getis_ord,
        global_moran,
        local_moran,
        parse_weights_spec,
    )

    report = progress or noop_progress
    _check_choice(method, HOTSPOT_METHODS, "method")
    parse_weights_spec(weights)
    permutations = _check_int(permutations, "permutations", 0, 99_999)
    seed = _check_int(seed, "seed", 0, 2**32 - 1)
    if not isinstance(fdr, bool):
        raise InvalidInput(f"expected fdr as true or false, got {fdr!r}")
    alpha = _check_float(alpha, "alpha", 0.0, inclusive=False)
    if alpha >= 1:
        raise InvalidInput(f"expected alpha in (0, 1), got {alpha}")
    sources = [x is not None for x in (values, indicators, specialization_run)]
    if sum(sources) != 1:
        raise InvalidInput(
            "expected exactly one of values, indicators (+ indicator) or specialization_run"
        )
    if sector is not None and specialization_run is None:
        raise InvalidInput("sector applies only with specialization_run")
    regions, info = read_boundaries(ws, boundaries, crs="working", level=level)
    inputs = [version_of(info)]
    value_name = indicator
    if specialization_run is not None:
        vals, value_name = _values_from_specialization(ws, specialization_run, sector)
        used_year = None
        inputs.append(specialization_run)
    elif values is not None:
        if not isinstance(values, Mapping):
            raise InvalidInput(
                f"expected values as {{region_id: value}}, got {type(values).__name__}"
            )
        vals = {str(k): v for k, v in values.items()}
        unknown = sorted(set(vals) - set(regions["region_id"]))
        if unknown:
            raise InvalidInput(
                f"expected values keyed by region ids of {boundaries!r}, got unknown {unknown[:10]}"
            )
        vals = dict(zip(vals, pd.to_numeric(pd.Series(list(vals.values())), errors="coerce")))
        used_year = None
    else:
        vals, used_year, used = _values_from_indicators(ws, indicators, indicator, year)
        inputs.append(used)
    y = regions["region_id"].map(vals).astype(float).to_numpy()
    ok = np.isfinite(y)
    missing = regions.loc[~ok, "region_id"].tolist()
    sub = regions[ok].reset_index(drop=True)
    y = y[ok]
    if len(sub) < 3:
        raise InvalidInput(f"expected values for at least 3 regions, got {len(sub)}")
    report(0.1, "building weights")
    w = build_weights(sub, weights)
    if len(w.islands) == len(sub):
        raise InvalidInput(f"every region is an island under {weights!r}; try knn:K")
    report(0.3, "computing statistics")
    stat = local_moran if method == "lisa" else getis_ord
    local = stat(y, w, permutations=permutations, seed=seed, alpha=alpha, fdr=fdr)
    glob = global_moran(y, w, permutations=permutations, seed=seed)
    layer = sub[["region_id", "geometry"]].copy()
    layer["value"] = y
    layer["statistic"] = local.statistic
    layer["p_value"] = local.p_value
    layer["label"] = local.label.astype(str)
    layer["significant"] = local.significant
    kind: str | tuple[str, str] = "public"
    if specialization_run is not None:
        # LQs and densities derive from firm counts: suppressed with the region's count
        firms_run = ws.read_run(specialization_run, "regions")
        counts = dict(zip(firms_run["region_id"].astype(str), firms_run["n_firms"], strict=True))
        layer["n_firms"] = layer["region_id"].map(counts).astype(float)
        kind = ("region_table", "n_firms")
    islands = [str(sub["region_id"].iloc[i]) for i in w.islands]
    params = {
        "boundaries": boundaries,
        "indicators": indicators,
        "indicator": indicator,
        "specialization_run": specialization_run,
        "sector": sector,
        "year": used_year,
        "method": method,
        "weights": weights,
        "permutations": permutations,
        "seed": seed,
        "fdr": fdr,
        "alpha": alpha,
        "level": regions.attrs.get("level"),
        "working_crs": info.working_crs,
    }
    summary = {
        "global": glob.to_dict(),
        "n_regions": len(sub),
        "n_significant": int(local.significant.sum()),
        "islands": islands,
        "missing": missing,
    }
    run = ws.save_run(
        "hotspots",
        params=jsonable(params),
        inputs=inputs,
        layers={"regions": layer},
        summary={**jsonable(summary), **stored_kinds(regions=kind)},
    )
    report(1.0, "done")
    # values from indicators or inline are public; from a specialization run, firm-derived
    if isinstance(kind, tuple):
        regions_layer = Layer(kind[0], layer, count_col=kind[1])
    else:
        regions_layer = Layer(kind, layer)
    return Result(
        run_id=run.id,
        inputs=tuple(inputs),
        layers={"regions": regions_layer},
        body={
            "method": method,
            "weights": weights,
            "indicator": indicator,
            "value": value_name,
            "year": used_year,
            "alpha": alpha,
            "fdr": fdr,
            "regions": None,
            "global": jsonable(glob.to_dict()),
            "islands": islands,
            "missing": missing,
            "collections": {"regions": run.id},
        },
    )


# -- point patterns ---------------------------------------------------------------------------
def run_pointpattern(ws, **kwargs) -> dict[str, Any]:
    """:func:`pointpattern_result` as its JSON body (no disclosure policy applied)."""
    return pointpattern_result(ws, **kwargs).to_body()


def pointpattern_result(
    ws,
    *,
    firms: str,
    sectors: Sequence[str] | None = None,
    sector_group: str | None = None,
    method: str = "ripley",
    n_simulations: int = 99,
    seed: int = 0,
    support_m: Sequence[float] | None = None,
    max_distance_m: float | None = None,
    boundaries: str | None = None,
    region: str | None = None,
    progress: Progress | None = None,
) -> Result:
    """Point-pattern test of a sector's firms.

    ``method="ripley"``: Ripley's L with a CSR envelope, in the bounding box of the firms or
    in one region (``boundaries`` + ``region``); at most 5,000 firms (a seeded sample above).
    ``method="kdensity"``: Duranton–Overman K-density of the selected sector (``sectors`` or
    ``sector_group`` required) against draws from all firm sites; at most 3,000 sector firms
    (a seeded sample above).
    """
    from geocluster.spatialstats import kdensity, ripley_l
    from geocluster.spatialstats.pointpattern import MAX_KDENSITY_FIRMS

    report = progress or noop_progress
    _check_choice(method, POINTPATTERN_METHODS, "method")
    n_simulations = _check_int(
        n_simulations, "n_simulations", 19 if method == "kdensity" else 1, 9999
    )
    seed = _check_int(seed, "seed", 0, 2**32 - 1)
    if max_distance_m is not None:
        max_distance_m = _check_float(max_distance_m, "max_distance_m", 0.0, inclusive=False)
    read = read_firms(
        ws, firms, sectors=sectors, sector_group=sector_group, require_selection=False
    )
    info, frame, selected = read.info, read.all, read.selected
    inputs = [read.input]
    rng = np.random.default_rng(seed)
    xy = _firm_xy(selected)
    window = None
    if region is not None or boundaries is not None:
        if region is None or boundaries is None:
            raise InvalidInput("expected both boundaries and region to restrict to one region")
        regions, b_info = read_boundaries(ws, boundaries, crs=info.working_crs)
        inputs.append(version_of(b_info))
        hit = regions[regions["region_id"] == str(region)]
        if hit.empty:
            from geocluster.errors import RegionNotFound

            raise RegionNotFound(f"no region {region!r} in {boundaries!r}")
        window = hit.geometry.iloc[0]
        inside = assign_regions(xy, hit.reset_index(drop=True), predicate="intersects") >= 0
        xy = xy[inside]
    sampled = False
    report(0.2, "simulating")
    if method == "ripley":
        if len(xy) > MAX_RIPLEY_POINTS:
            xy = xy[rng.choice(len(xy), MAX_RIPLEY_POINTS, replace=False)]
            sampled = True
        result = ripley_l(
            xy, support_m=support_m, window=window, n_simulations=n_simulations, random_state=rng
        )
        curve = pd.DataFrame(
            {
                "distance_m": result.support_m,
                "l": result.l,
                "envelope_low": result.envelope_low,
                "envelope_high": result.envelope_high,
                "p_value": result.p_value,
            }
        )
        headline = {"clustered_at_any_distance": bool(result.clustered.any())}
    else:
        if sectors is None and sector_group is None:
            raise InvalidInput("expected sectors or sector_group for the K-density test")
        sites = _firm_xy(frame)
        if window is not None:
            sites = sites[
                assign_regions(sites, gpd.GeoDataFrame(geometry=[window], crs=frame.crs)) >= 0
            ]
        if len(xy) > MAX_KDENSITY_FIRMS:
            xy = xy[rng.choice(len(xy), MAX_KDENSITY_FIRMS, replace=False)]
            sampled = True
        result = kdensity(
            xy, sites, max_distance_m=max_distance_m, n_simulations=n_simulations, random_state=rng
        )
        curve = pd.DataFrame(
            {
                k: getattr(result, k)
                for k in (
                    "distance_m",
                    "density",
                    "local_low",
                    "local_high",
                    "global_low",
                    "global_high",
                    "localization",
                    "dispersion",
                )
            }
        )
        headline = {
            "localized": result.localized,
            "dispersed": result.dispersed,
            "localization_index": result.localization_index,
            "dispersion_index": result.dispersion_index,
        }
    params = {
        "firms": firms,
        "sectors": list(sectors) if sectors else None,
        "sector_group": sector_group,
        "method": method,
        "n_simulations": n_simulations,
        "seed": seed,
        "boundaries": boundaries,
        "region": region,
        "working_crs": info.working_crs,
    }
    summary = {**headline, "n_points": int(len(xy)), "sampled": sampled}
    run = ws.save_run(
        "pointpattern",
        params=jsonable(params),
        inputs=inputs,
        layers={"curve": curve},
        summary={**jsonable(summary), **stored_kinds(curve="public")},
    )
    report(1.0, "done")
    # a curve of a statistic over distances, with no location: public
    return Result(
        run_id=run.id,
        inputs=tuple(inputs),
        body={**jsonable(result.to_dict()), "sampled": sampled, "collections": {"curve": run.id}},
    )


# -- ranking ----------------------------------------------------------------------------------
def run_ranking(ws, **kwargs) -> dict[str, Any]:
    """:func:`ranking_result` as its JSON body (no disclosure policy applied)."""
    return ranking_result(ws, **kwargs).to_body()


def ranking_result(
    ws,
    *,
    clusters_run: str,
    boundaries: str | None = None,
    assets: str | None = None,
    radius_m: float = 5000.0,
    weights: Mapping[str, float] | None = None,
    measure: str = "employees",
    level: int | None = None,
    institutions: str | None = None,
    preset: str | None = None,
    growth_run: str | None = None,
    progress: Progress | None = None,
) -> Result:
    """Rank the clusters of a clusters run on the UNIDO criteria (``geocluster.ranking``).

    With ``institutions`` (an institutions dataset), the support institutions within
    ``radius_m`` of each hull feed the institutions component; with ``preset`` (a name of
    ``geocluster.clustering.presets.PRESETS``), clusters below its ``min_firms`` are not
    ranked (``below_min_firms`` lists them); with ``growth_run`` (a dynamics run on
    ``clusters_run``, or a change run whose follow-up it is), the growth component.

    With ``boundaries``, the specialisation component is the LQ (division level, on
    ``measure``, computed from the run's firms dataset) of each cluster's dominant sector
    in the regions its firms lie in, weighted by the number of its firms in each; with ``assets``, the assets within ``radius_m`` of each
    hull count. Returns ``clusters`` (ranked rows with every component), ``weights`` used,
    ``left_out`` components and ``run_id``.
    """
    from geocluster.ranking import rank_clusters, validate_weights

    report = progress or noop_progress
    w = validate_weights(weights)
    radius_m = _check_float(radius_m, "radius_m", 0.0)
    _check_choice(measure, MEASURES, "measure")
    clusters, run = read_clusters_run(ws, clusters_run)
    crs = run_crs(run)
    inputs = [clusters_run]
    below: list[int] = []
    min_firms = None
    if preset is not None:
        from geocluster.clustering.presets import get_preset, keep_clusters

        min_firms = get_preset(preset).min_firms
        kept = keep_clusters(clusters, preset)
        below = sorted(int(c) for c in set(clusters["cluster_id"]) - set(kept["cluster_id"]))
        if kept.empty:
            raise InvalidInput(
                f"expected clusters of at least {min_firms} firms (preset {preset!r}) in "
                f"{clusters_run!r}, got none of {len(clusters)}"
            )
        clusters = kept.reset_index(drop=True)
    lq = cluster_regions = None
    if boundaries is not None:
        firms_id = run.params.get("firms") or (run.inputs[0] if run.inputs else None)
        if not firms_id:
            raise InvalidInput(f"run {clusters_run!r} records no firms dataset")
        report(0.2, "computing location quotients")
        regions, b_info = read_boundaries(ws, boundaries, crs=crs, level=level)
        read = read_firms(ws, firms_id, crs=crs, require_selection=False)
        firms = read.all
        inputs += [version_of(b_info), read.input]
        _, rows, _, _, _ = _tables(
            firms, regions, sector_level="division", measure=measure, bootstrap=0, seed=0
        )
        lq = rows[["region_id", "sector", "lq"]]
        # a cluster may span regions: weight each region by the cluster's firms in it
        labels, _ = read_clusters_run(ws, clusters_run, layer="labels", crs=crs)
        labels = labels[pd.to_numeric(labels["cluster_id"], errors="coerce") >= 0]
        where = assign_regions(_firm_xy(labels), regions, predicate="intersects")
        inside = where >= 0
        counts = (
            pd.DataFrame(
                {
                    "cluster_id": labels["cluster_id"].to_numpy()[inside].astype(np.int64),
                    "region_id": regions["region_id"].to_numpy()[where[inside]],
                }
            )
            .groupby(["cluster_id", "region_id"])
            .size()
        )
        shares: dict[int, dict[str, float]] = {}
        for (cid, rid), k in counts.items():
            shares.setdefault(int(cid), {})[str(rid)] = float(k)
        cluster_regions = [shares.get(int(c)) for c in clusters["cluster_id"]]
    asset_frame = None
    if assets is not None:
        asset_frame, a_info = read_assets(ws, assets, crs=crs)
        inputs.append(version_of(a_info))
    n_institutions = None
    if institutions is not None:
        from geocluster.analyses.unido import institution_counts

        n_institutions, i_input = institution_counts(ws, clusters, institutions, radius_m=radius_m)
        inputs.append(i_input)
    growth = None
    if growth_run is not None:
        from geocluster.analyses.unido import cluster_growth

        growth, g_input = cluster_growth(ws, growth_run, clusters_run, clusters["cluster_id"])
        inputs.append(g_input)
    report(0.7, "scoring")
    ranked = rank_clusters(
        clusters,
        lq=lq,
        cluster_regions=cluster_regions,
        assets=asset_frame,
        radius_m=radius_m,
        weights=w,
        institutions=n_institutions,
        growth=growth,
    )
    layer = gpd.GeoDataFrame(
        ranked.merge(clusters[["cluster_id", "geometry"]], on="cluster_id", how="left"),
        geometry="geometry",
        crs=clusters.crs,
    )
    params = {
        "clusters_run": clusters_run,
        "boundaries": boundaries,
        "assets": assets,
        "radius_m": radius_m,
        "weights": w,
        "measure": measure,
        "institutions": institutions,
        "preset": preset,
        "growth_run": growth_run,
        "working_crs": crs,
    }
    summary = {
        "weights_used": ranked.attrs["weights"],
        "left_out": ranked.attrs["left_out"],
        "n_clusters": len(ranked),
    }
    saved = ws.save_run(
        "ranking",
        params=jsonable(params),
        inputs=inputs,
        layers={"ranking": layer},
        summary={
            **jsonable(summary),
            **stored_kinds(ranking=("cluster_summary", "n_firms")),
        },
    )
    report(1.0, "done")
    return Result(
        run_id=saved.id,
        inputs=tuple(inputs),
        body={
            "clusters_run": clusters_run,
            "weights": jsonable(ranked.attrs["weights"]),
            "left_out": ranked.attrs["left_out"],
            "radius_m": radius_m,
            "preset": preset,
            "min_firms": min_firms,
            "below_min_firms": below,
            "clusters": None,
            "collections": {"ranking": saved.id},
        },
        layers={"clusters": Layer("cluster_summary", ranked, count_col="n_firms")},
    )
