"""Territorial-asset analyses (JSON-ready orchestration for the CLI and the API).

``run_assets`` answers four questions about a dataset of territorial assets:

``density``
    assets per region and category, per km² and per 10,000 inhabitants;
``linkage``
    how firms relate to assets: co-location quotients (Leslie & Kronenfeld
    2011) with a permutation test, the share of tourism and agro-food firms
    within ``radius_m`` of an asset, and for each asset the linked firms
    within ``radius_m`` (count, employees);
``gaps``
    assets with no linked firm within ``radius_m`` — the opportunity list;
``clusters``
    DBSCAN clusters of assets as candidate heritage zones or routes.

``run_zonal`` computes zonal statistics of a registered raster per region or
per asset buffer (e.g. population within 5 km of each asset).

*Linked firms* of an asset are those of the sector groups in
:data:`geocluster.assets.catalog.LINKED_SECTOR_GROUPS` for its category
(cultural, natural, tourism → the ``tourism`` group; agro_food → the
``agro_food`` group), unless the caller names ``sectors`` or ``sector_group``,
which then apply to every asset.

Every function reads datasets in the assets' metric working CRS, calls the
pure functions of :mod:`geocluster.assets`, saves a run (readable as a
collection) and returns a JSON-serialisable dict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geocluster.analyses._common import jsonable, noop_progress
from geocluster.analyses._inputs import (
    read_assets,
    read_boundaries,
    read_firms,
    read_indicators,
    version_of,
)
from geocluster.analyses.result import Layer, Result, stored_kinds
from geocluster.assets.catalog import LINKED_SECTOR_GROUPS, check_category
from geocluster.assets.colocation import colocation_quotient
from geocluster.assets.density import asset_density, asset_zones, assign_regions
from geocluster.assets.proximity import (
    firms_near_assets,
    firms_within_any,
    nearest_distance,
)
from geocluster.assets.zonal import STATS, zonal_stats
from geocluster.errors import InvalidInput
from geocluster.io.raster import open_raster

__all__ = ["ANALYSES", "assets_result", "run_assets", "run_zonal", "zonal_result"]

#: Analyses :func:`run_assets` runs.
ANALYSES = ("density", "linkage", "gaps", "clusters")

Progress = Callable[[float, str], None]

_DESIGNATION_RANK = {"unesco": 0, "national": 1, "regional": 2, "gi": 3, "local": 4}
_FIRM_COLUMNS = ("firm_id", "name", "sector_code", "isic_section", "isic_division", "employees")


# -- helpers ---------------------------------------------------------------------------------


def _read_assets(ws: Any, assets: str, category: str | None) -> tuple[Any, gpd.GeoDataFrame]:
    frame, info = read_assets(ws, assets, category=category)
    return info, frame


def _read_firms(ws: Any, firms: str, crs: str) -> gpd.GeoDataFrame:
    return read_firms(ws, firms, columns=_FIRM_COLUMNS, crs=crs, require_selection=False).all


def _group_divisions(name: str) -> frozenset[str]:
    from geocluster.sectors import group_divisions

    return frozenset(group_divisions(name))


def _sector_mask(
    firms: pd.DataFrame,
    *,
    sectors: Sequence[str] | None = None,
    sector_group: str | None = None,
) -> np.ndarray:
    """Firms whose sector is in ``sectors`` (sections, divisions, classes) or the group."""
    n = len(firms)
    division = (
        firms["isic_division"].astype("string").fillna("").to_numpy(str)
        if "isic_division" in firms.columns
        else np.full(n, "")
    )
    mask = np.zeros(n, bool)
    if sector_group is not None:
        divs = _group_divisions(sector_group)
        mask |= np.isin(division, list(divs))
    if sectors is not None:
        codes = [str(s).strip() for s in sectors if str(s).strip()]
        if not codes:
            raise InvalidInput("expected at least one sector code in 'sectors', got none")
        section = (
            firms["isic_section"].astype("string").fillna("").to_numpy(str)
            if "isic_section" in firms.columns
            else np.full(n, "")
        )
        code = (
            firms["sector_code"].astype("string").fillna("").to_numpy(str)
            if "sector_code" in firms.columns
            else np.full(n, "")
        )
        for c in codes:
            if c.isalpha() and len(c) == 1:
                mask |= section == c.upper()
            elif c.isdigit() and len(c) == 2:
                mask |= division == c
            elif c.isdigit() and len(c) in (3, 4):
                mask |= np.char.startswith(code.astype(str), c)
            else:
                raise InvalidInput(
                    "expected ISIC codes (a section letter 'C', a division '10', a group "
                    f"'101' or a class '1010'), got {c!r}"
                )
    return mask


def _linked_masks(
    firms: pd.DataFrame,
    categories: Sequence[str],
    *,
    sectors: Sequence[str] | None,
    sector_group: str | None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One boolean column per asset category: the firms linked to it, and a label per category."""
    masks: dict[str, np.ndarray] = {}
    labels: dict[str, str] = {}
    if sectors is not None or sector_group is not None:
        sel = _sector_mask(firms, sectors=sectors, sector_group=sector_group)
        label = sector_group if sectors is None else "sectors:" + ",".join(map(str, sectors))
        if sector_group is not None and sectors is not None:
            label = f"{sector_group}+{label}"
        for cat in categories:
            masks[cat] = sel
            labels[cat] = label
    else:
        for cat in categories:
            groups = LINKED_SECTOR_GROUPS.get(cat, ())
            sel = np.zeros(len(firms), bool)
            for g in groups:
                sel |= _sector_mask(firms, sector_group=g)
            masks[cat] = sel
            labels[cat] = "+".join(groups) if groups else "none"
    return pd.DataFrame(masks, index=firms.index), labels


def _asset_xy(frame: gpd.GeoDataFrame) -> np.ndarray:
    pts = shapely.point_on_surface(frame.geometry.values)
    return np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])


def _firm_xy(frame: gpd.GeoDataFrame) -> np.ndarray:
    pts = shapely.point_on_surface(frame.geometry.values)
    return np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])


def _check_radius(radius_m: float | None, *, name: str = "radius_m") -> float:
    try:
        r = float(radius_m)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"expected {name} as a number of metres, got {radius_m!r}") from None
    if not math.isfinite(r) or r <= 0:
        raise InvalidInput(f"expected {name} > 0 metres, got {radius_m!r}")
    if r > 1_000_000:
        raise InvalidInput(f"expected {name} of at most 1,000,000 metres, got {radius_m!r}")
    return r


def _population(
    ws: Any,
    regions: gpd.GeoDataFrame,
    *,
    indicators: str | None,
    population_indicator: str,
    year: int | None,
    population_raster: str | None,
) -> tuple[pd.Series | None, dict[str, Any] | None]:
    if population_raster is not None:
        info = ws.raster(population_raster)
        with open_raster(info.path) as ds:
            z = zonal_stats(ds, regions.geometry, stats=("sum",))
        pop = pd.Series(z["sum"].to_numpy(), index=regions["region_id"].astype(str).to_numpy())
        return pop, {"raster": population_raster}
    if indicators is None:
        return None, None
    table, _ = read_indicators(ws, indicators)
    rows = table[table["indicator"] == population_indicator]
    if rows.empty:
        names = sorted(map(str, table["indicator"].dropna().unique()))[:20]
        raise InvalidInput(
            f"expected indicator {population_indicator!r} in {indicators!r}, got "
            f"{', '.join(names) or 'no indicators'}"
        )
    if year is not None:
        rows = rows[rows["year"] == int(year)]
        if rows.empty:
            raise InvalidInput(f"expected {population_indicator!r} for year {year}, got none")
    # latest year per region
    rows = rows.sort_values("year").groupby(rows["region_id"].astype(str)).last()
    pop = pd.Series(pd.to_numeric(rows["value"], errors="coerce").to_numpy(), index=rows.index)
    return pop, {"indicators": indicators, "indicator": population_indicator, "year": year}


def _read_regions(ws: Any, boundaries: str, crs: str, level: int | None) -> gpd.GeoDataFrame:
    return read_boundaries(ws, boundaries, crs=crs, level=level)[0]


def _asset_output(frame: gpd.GeoDataFrame, extra: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    keep = ["asset_id", "name", "category", "subtype", "designation"]
    out = frame[keep + [frame.geometry.name]].copy()
    if extra is not None:
        for c in extra.columns:
            out[c] = extra[c].to_numpy()
    return out


# -- run_assets ------------------------------------------------------------------------------
def run_assets(ws: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`assets_result` as its JSON body (no disclosure policy applied)."""
    return assets_result(ws, **kwargs).to_body()


def assets_result(
    ws: Any,
    *,
    assets: str,
    firms: str | None = None,
    boundaries: str | None = None,
    analysis: str = "density",
    radius_m: float = 5000.0,
    sector_group: str | None = None,
    sectors: Sequence[str] | None = None,
    category: str | None = None,
    permutations: int = 99,
    seed: int = 0,
    eps_m: float | None = None,
    min_samples: int = 3,
    level: int | None = None,
    indicators: str | None = None,
    population_indicator: str = "population",
    year: int | None = None,
    population_raster: str | None = None,
    progress: Progress | None = None,
) -> Result:
    """Run one asset analysis and save it as a run.

    Parameters
    ----------
    ws : Workspace
    assets : str
        Assets dataset id.
    firms : str, optional
        Firms dataset id (``linkage`` and ``gaps``).
    boundaries : str, optional
        Boundaries dataset id (``density``).
    analysis : {"density", "linkage", "gaps", "clusters"}
    radius_m : float
        Search radius in metres for linkage and gaps (distance from the
        asset geometry); default DBSCAN ``eps_m`` for clusters.
    sector_group, sectors : optional
        Firm selection applied to every asset instead of the linked sectors
        of its category (a group of :func:`geocluster.sectors.group_divisions`;
        ISIC section letters, divisions, groups or classes).
    category : str, optional
        Only assets of this category.
    permutations, seed : int
        Permutation test of the co-location quotient (``linkage``).
    eps_m, min_samples : optional
        DBSCAN parameters for ``clusters`` (``eps_m`` defaults to ``radius_m``).
    level : int, optional
        Only regions of this boundary level (``density``).
    indicators, population_indicator, year : optional
        Population per region from an indicators dataset (latest year per
        region unless ``year``), for densities per 10,000 inhabitants.
    population_raster : str, optional
        Registered population-count raster; the population of a region is
        the zonal sum (used instead of ``indicators``).
    progress : callable(fraction, message), optional

    Returns
    -------
    dict
        ``run_id``, ``analysis``, ``n_assets`` and the analysis' results
        (see the module docstring); asset features carry ``category`` and
        ``subtype``.
    """
    report = progress or noop_progress
    if analysis not in ANALYSES:
        raise InvalidInput(f"expected analysis one of {', '.join(ANALYSES)}, got {analysis!r}")
    category = check_category(category)
    radius = _check_radius(radius_m)
    if permutations is None or int(permutations) < 0 or int(permutations) > 9999:
        raise InvalidInput(f"expected permutations between 0 and 9999, got {permutations!r}")
    report(0.05, "reading assets")
    a_info, frame = _read_assets(ws, assets, category)
    crs = a_info.working_crs
    params: dict[str, Any] = {
        "assets": assets,
        "analysis": analysis,
        "category": category,
        "working_crs": crs,
    }
    inputs = [version_of(a_info)]

    if analysis == "density":
        if boundaries is None:
            raise InvalidInput("expected 'boundaries' (a boundaries dataset id) for density")
        report(0.2, "reading boundaries")
        regions, b_info = read_boundaries(ws, boundaries, crs=crs, level=level)
        inputs.append(version_of(b_info))
        pop, pop_source = _population(
            ws,
            regions,
            indicators=indicators,
            population_indicator=population_indicator,
            year=year,
            population_raster=population_raster,
        )
        report(0.5, "counting assets per region")
        table = asset_density(frame, regions, population=pop)
        wide = _density_wide(regions, table)
        n_inside = int(assign_regions(frame, regions)["asset"].nunique())
        warnings: list[str] = []
        if pop is not None:
            ids = set(regions["region_id"].astype(str))
            missing = sorted(ids - set(pop.dropna().index))
            if missing:
                warnings.append(
                    f"no population for {len(missing)} of {len(ids)} regions "
                    f"(e.g. {', '.join(missing[:5])}): their per-10,000 densities are null"
                )
        if len(frame) - n_inside:
            warnings.append(f"{len(frame) - n_inside} assets lie outside every region")
        summary = {
            "analysis": "density",
            "n_assets": len(frame),
            "n_regions": int(regions["region_id"].nunique()),
            "n_outside": len(frame) - n_inside,
            "population_source": pop_source,
            "warnings": warnings,
        }
        params.update(
            boundaries=boundaries,
            level=level,
            indicators=indicators,
            population_indicator=population_indicator if indicators else None,
            year=year,
            population_raster=population_raster,
        )
        run = ws.save_run(
            "assets",
            params=params,
            inputs=inputs,
            layers={"regions": wide, "density": table},
            summary={**summary, **stored_kinds(regions="public", density="public")},
            primary="regions",
        )
        report(1.0, "done")
        # assets are public, and so are their counts per region
        return Result(
            run_id=run.id,
            inputs=tuple(inputs),
            body=jsonable({**summary, "categories": sorted(set(table["category"]) - {"all"})}),
            layers={"rows": Layer("public", table)},
        )

    if analysis == "clusters":
        eps = _check_radius(radius if eps_m is None else eps_m, name="eps_m")
        if int(min_samples) < 1:
            raise InvalidInput(f"expected min_samples >= 1, got {min_samples}")
        report(0.3, "clustering assets")
        labels, zones = asset_zones(frame, eps_m=eps, min_samples=int(min_samples))
        out_assets = _asset_output(frame, pd.DataFrame({"zone_id": labels}))
        summary = {
            "analysis": "clusters",
            "n_assets": len(frame),
            "n_zones": len(zones),
            "noise": int((labels == -1).sum()),
            "eps_m": eps,
            "min_samples": int(min_samples),
        }
        params.update(eps_m=eps, min_samples=int(min_samples))
        run = ws.save_run(
            "assets",
            params=params,
            inputs=inputs,
            layers={"zones": zones, "assets": out_assets},
            summary={**summary, **stored_kinds(zones="public", assets="public")},
            primary="zones",
        )
        report(1.0, "done")
        return Result(
            run_id=run.id,
            inputs=tuple(inputs),
            body=jsonable(summary),
            layers={
                "zones": Layer("public", zones, shape="features"),
                "assets": Layer("public", out_assets, shape="features"),
            },
        )

    # linkage and gaps need firms
    if firms is None:
        raise InvalidInput(f"expected 'firms' (a firms dataset id) for {analysis}")
    report(0.15, "reading firms")
    firm_frame = _read_firms(ws, firms, crs)
    inputs.append(version_of(ws.dataset(firms)))
    cats = sorted(str(c) for c in frame["category"].dropna().unique())
    masks, labels = _linked_masks(firm_frame, cats, sectors=sectors, sector_group=sector_group)
    params.update(
        firms=firms,
        radius_m=radius,
        sector_group=sector_group,
        sectors=list(sectors) if sectors is not None else None,
    )
    report(0.35, "finding linked firms near each asset")
    near = firms_near_assets(frame, firm_frame, radius_m=radius, firm_mask=masks)
    linked_label = frame["category"].map(labels).fillna("none")
    # distance to the nearest linked firm at any distance (for ranking gaps)
    nearest_any = np.full(len(frame), np.nan)
    for cat in cats:
        sel = (frame["category"] == cat).to_numpy()
        fm = masks[cat].to_numpy(bool)
        if sel.any() and fm.any():
            nearest_any[sel] = nearest_distance(frame[sel], firm_frame[fm])
    per_asset = near.assign(
        linked_sectors=linked_label.to_numpy(),
        nearest_linked_firm_m=nearest_any,
        # an asset whose category has no linked sectors (infrastructure) is not a gap
        gap=(near["n_firms"].to_numpy() == 0) & (linked_label.to_numpy() != "none"),
    )
    per_asset = per_asset.drop(columns=["nearest_firm_m"])
    out_assets = _asset_output(frame, per_asset)

    if analysis == "gaps":
        gaps = out_assets[out_assets["gap"]].copy()
        rank = gaps["designation"].map(_DESIGNATION_RANK).fillna(9)
        gaps = gaps.assign(_r=rank.to_numpy(), _d=-gaps["nearest_linked_firm_m"].fillna(np.inf))
        gaps = gaps.sort_values(["_r", "_d"], kind="stable").drop(columns=["_r", "_d"])
        by_cat = {
            c: {
                "n_assets": int((out_assets["category"] == c).sum()),
                "n_gaps": int(((out_assets["category"] == c) & out_assets["gap"]).sum()),
                "linked_sectors": labels[c],
            }
            for c in cats
        }
        summary = {
            "analysis": "gaps",
            "n_assets": len(frame),
            "n_gaps": len(gaps),
            "radius_m": radius,
            "by_category": by_cat,
        }
        run = ws.save_run(
            "assets",
            params=params,
            inputs=inputs,
            layers={"gaps": gaps, "assets": out_assets},
            summary={
                **summary,
                **stored_kinds(gaps=("cell_counts", "n_firms"), assets=("cell_counts", "n_firms")),
            },
            primary="gaps",
        )
        report(1.0, "done")
        return Result(
            run_id=run.id,
            inputs=tuple(inputs),
            body=jsonable(summary),
            layers={"assets": Layer("cell_counts", gaps, shape="features", count_col="n_firms")},
        )

    # linkage
    report(0.55, "co-location quotients")
    clq_rows = _clq_rows(frame, firm_frame, masks, labels, cats, permutations, seed)
    report(0.85, "share of firms near assets")
    share_rows = _share_rows(frame, firm_frame, radius, sectors=sectors, sector_group=sector_group)
    summary = {
        "analysis": "linkage",
        "n_assets": len(frame),
        "n_firms": len(firm_frame),
        "radius_m": radius,
        "permutations": int(permutations),
        "seed": int(seed),
        "assets_with_linked_firms": int((out_assets["n_firms"] > 0).sum()),
    }
    params.update(permutations=int(permutations), seed=int(seed))
    run = ws.save_run(
        "assets",
        params=params,
        inputs=inputs,
        layers={
            "assets": out_assets,
            "colocation": pd.DataFrame(clq_rows),
            "shares": pd.DataFrame(share_rows),
        },
        summary={
            **summary,
            **stored_kinds(
                assets=("cell_counts", "n_firms"),
                colocation=("cell_counts", "n_firms"),
                shares=("cell_counts", "n_within"),
            ),
        },
        primary="assets",
    )
    report(1.0, "done")
    # firms linked to each asset, per category and within the radius: counts of firms
    return Result(
        run_id=run.id,
        inputs=tuple(inputs),
        body=jsonable(summary),
        layers={
            "colocation": Layer("cell_counts", pd.DataFrame(clq_rows), count_col="n_firms"),
            "shares": Layer("cell_counts", pd.DataFrame(share_rows), count_col="n_within"),
            "assets": Layer("cell_counts", out_assets, shape="features", count_col="n_firms"),
        },
    )


def _clq_rows(
    assets: gpd.GeoDataFrame,
    firms: gpd.GeoDataFrame,
    masks: pd.DataFrame,
    labels: dict[str, str],
    cats: Sequence[str],
    permutations: int,
    seed: int,
) -> list[dict[str, Any]]:
    """CLQ firms→assets and assets→firms per asset category, pooled points = both sets."""
    a_xy_all = _asset_xy(assets)
    f_xy_all = _firm_xy(firms)
    rows = []
    for cat in cats:
        fm = masks[cat].to_numpy(bool)
        am = (assets["category"] == cat).to_numpy()
        row: dict[str, Any] = {
            "category": cat,
            "firms": labels[cat],
            "n_firms": int(fm.sum()),
            "n_assets": int(am.sum()),
        }
        if fm.sum() < 1 or am.sum() < 1 or fm.sum() + am.sum() < 3:
            row.update(
                clq_firms_to_assets=None,
                p_firms_to_assets=None,
                clq_assets_to_firms=None,
                p_assets_to_firms=None,
                note="not enough firms or assets for a co-location quotient",
            )
            rows.append(row)
            continue
        xy = np.vstack([f_xy_all[fm], a_xy_all[am]])
        lab = np.array(["firm"] * int(fm.sum()) + ["asset"] * int(am.sum()))
        fa = colocation_quotient(
            xy, lab, "firm", "asset", permutations=permutations, random_state=seed
        )
        af = colocation_quotient(
            xy, lab, "asset", "firm", permutations=permutations, random_state=seed
        )
        row.update(
            clq_firms_to_assets=fa.clq,
            p_firms_to_assets=fa.p_value,
            clq_assets_to_firms=af.clq,
            p_assets_to_firms=af.p_value,
            note=None,
        )
        rows.append(row)
    return rows


def _share_rows(
    assets: gpd.GeoDataFrame,
    firms: gpd.GeoDataFrame,
    radius: float,
    *,
    sectors: Sequence[str] | None,
    sector_group: str | None,
) -> list[dict[str, Any]]:
    """Share of tourism and agro-food firms (and the user's selection) within radius of an asset."""
    within = firms_within_any(firms, assets, radius_m=radius)
    selections: list[tuple[str, np.ndarray]] = [
        ("tourism", _sector_mask(firms, sector_group="tourism")),
        ("agro_food", _sector_mask(firms, sector_group="agro_food")),
    ]
    if sectors is not None or (
        sector_group is not None and sector_group not in ("tourism", "agro_food")
    ):
        label = sector_group or "sectors"
        selections.append((label, _sector_mask(firms, sectors=sectors, sector_group=sector_group)))
    selections.append(("all", np.ones(len(firms), bool)))
    rows = []
    for name, m in selections:
        n = int(m.sum())
        k = int((m & within).sum())
        rows.append(
            {
                "firms": name,
                "n_firms": n,
                "n_within": k,
                "share": k / n if n else None,
                "radius_m": radius,
            }
        )
    return rows


def _density_wide(regions: gpd.GeoDataFrame, table: pd.DataFrame) -> gpd.GeoDataFrame:
    """One row per region polygon with n/per_km2/per_10k per category (for maps)."""
    base = regions[
        [c for c in ("region_id", "name", "level") if c in regions.columns]
        + [regions.geometry.name]
    ].copy()
    base["region_id"] = base["region_id"].astype(str)
    allrows = table[table["category"] == "all"].set_index("region_id")
    base["area_km2"] = base["region_id"].map(allrows["area_km2"])
    base["population"] = base["region_id"].map(allrows["population"])
    base["n_assets"] = base["region_id"].map(allrows["n_assets"]).fillna(0).astype(int)
    base["assets_per_km2"] = base["region_id"].map(allrows["assets_per_km2"])
    base["assets_per_10k"] = base["region_id"].map(allrows["assets_per_10k"])
    for cat in sorted(set(table["category"]) - {"all"}):
        rows = table[table["category"] == cat].set_index("region_id")
        base[f"n_{cat}"] = base["region_id"].map(rows["n_assets"]).fillna(0).astype(int)
        base[f"{cat}_per_km2"] = base["region_id"].map(rows["assets_per_km2"])
        base[f"{cat}_per_10k"] = base["region_id"].map(rows["assets_per_10k"])
    return base


# -- run_zonal -------------------------------------------------------------------------------
def run_zonal(ws: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`zonal_result` as its JSON body (no disclosure policy applied)."""
    return zonal_result(ws, **kwargs).to_body()


def zonal_result(
    ws: Any,
    *,
    raster: str,
    boundaries: str | None = None,
    assets: str | None = None,
    radius_m: float | None = None,
    stats: Sequence[str] = ("sum", "mean"),
    level: int | None = None,
    category: str | None = None,
    band: int = 1,
    coverage: str = "centre",
    block_size: int = 1024,
    progress: Progress | None = None,
) -> Result:
    """Zonal statistics of a registered raster per region or per asset buffer.

    Parameters
    ----------
    ws : Workspace
    raster : str
        Registered raster id (never a path).
    boundaries : str, optional
        Boundaries dataset: one row of statistics per region.
    assets : str, optional
        Assets dataset: one row per asset over its buffer of ``radius_m``
        metres (in the working CRS). Exactly one of ``boundaries`` and
        ``assets``. Polygon assets may omit ``radius_m`` (the polygon itself).
    radius_m : float, optional
        Buffer radius in metres (e.g. population within 5 km of each asset).
    stats : sequence of str
        Any of :data:`geocluster.assets.zonal.STATS`.
    level, category : optional
        Filter regions by level / assets by category.
    band, coverage, block_size
        See :func:`geocluster.assets.zonal.zonal_stats`; ``coverage="fraction"``
        weights each pixel by its area inside the zone (population counts in
        buffers smaller than a few pixels).

    Returns
    -------
    dict
        ``run_id``, ``raster``, ``target`` ("boundaries" or "assets"),
        ``radius_m``, ``stats``, ``rows`` (id, name, [category, subtype],
        statistics).
    """
    report = progress or noop_progress
    if (boundaries is None) == (assets is None):
        raise InvalidInput("expected exactly one of 'boundaries' or 'assets' for zonal statistics")
    if isinstance(stats, str):
        stats = [stats]
    stats = list(stats)
    bad = [s for s in stats if s not in STATS]
    if bad or not stats:
        raise InvalidInput(
            f"expected statistics among {', '.join(STATS)}, got {', '.join(map(str, bad)) or 'none'}"
        )
    if block_size < 16:
        raise InvalidInput(f"expected block_size >= 16 pixels, got {block_size}")
    r_info = ws.raster(raster)
    params: dict[str, Any] = {
        "raster": raster,
        "stats": stats,
        "band": band,
        "coverage": coverage,
    }
    report(0.1, "reading zones")
    if boundaries is not None:
        zones, b_info = read_boundaries(ws, boundaries, crs="working", level=level)
        target = "boundaries"
        key_cols = [c for c in ("region_id", "name", "level") if c in zones.columns]
        geoms = zones.geometry
        inputs = [raster, version_of(b_info)]
        params.update(boundaries=boundaries, level=level, working_crs=b_info.working_crs)
        radius = None
    else:
        category = check_category(category)
        a_info, zones = _read_assets(ws, assets, category)  # type: ignore[arg-type]
        target = "assets"
        key_cols = ["asset_id", "name", "category", "subtype", "designation"]
        inputs = [raster, version_of(a_info)]
        if radius_m is None:
            areal = zones.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
            if not areal.all():
                raise InvalidInput(
                    "expected radius_m (metres) for zonal statistics around point or line assets"
                )
            radius = None
            geoms = zones.geometry
        else:
            radius = _check_radius(radius_m)
            geoms = zones.geometry.buffer(radius, quad_segs=16)
        params.update(
            assets=assets, category=category, radius_m=radius, working_crs=a_info.working_crs
        )
    report(0.3, "zonal statistics")
    with open_raster(r_info.path) as ds:
        table = zonal_stats(
            ds, geoms, stats=stats, band=band, coverage=coverage, block_size=block_size
        )
    out = zones[key_cols + [zones.geometry.name]].copy()
    for c in table.columns:
        out[c] = table[c].to_numpy()
    summary = {
        "raster": raster,
        "target": target,
        "radius_m": radius,
        "stats": stats,
        "n_zones": len(out),
    }
    run = ws.save_run(
        "zonal",
        params=params,
        inputs=inputs,
        layers={"zones": out},
        summary={**summary, **stored_kinds(zones="public")},
        primary="zones",
    )
    report(1.0, "done")
    # statistics of a registered raster: public (a KDE is disclosed where it is made)
    return Result(
        run_id=run.id,
        inputs=tuple(inputs),
        body=jsonable(summary),
        layers={"rows": Layer("public", out)},
    )
