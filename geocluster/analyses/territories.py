"""Region profiles, side-by-side comparison and peer regions (``/regions/...``).

Inputs are explicit. A dataset or run left as None is used only when exactly one
candidate applies: the boundaries datasets holding the region id(s), the indicators
datasets with values for them, the firms and assets datasets whose extent overlaps the
regions, the clusters runs of those firms. With none the part is skipped (boundaries are
required); with several an :class:`~geocluster.errors.InvalidInput` lists them. Every
result names the exact versions it used in ``inputs``.

Profile shape (``region_profile``)::

    {"region_id", "name", "level", "parent_id", "boundaries", "area_km2",
     "population": {"indicator", "year", "value"} | None,
     "firms": {"dataset", "count", "employees", "employees_known", "density_per_km2",
               "per_1000_inhabitants", "rank", "of"} | None,
     "sectors": {"measure": "employees"|"firms", "sector_level": "division",
                 "top": [{"sector", "title", "count", "employees", "lq", "strong"}],
                 "strong": [sector, ...]} | None,
     "clusters": {"run_id", "items": [{"cluster_id", "n_firms", "employees",
                  "dominant_sector", "area_km2", "overlap_share"}]} | None,
     "assets": {"dataset", "total", "by_category": {category: n}} | None,
     "indicators": {"dataset", "values": [{"indicator", "year", "value", "rank", "of",
                    "theil_t", "theil_contribution", "theil_share"}]} | None}

Ranks are among the regions of the same boundaries ``level`` (1 = highest value).
``theil_contribution`` is the region's term of the unweighted Theil T of that
indicator across those peers in that year, ``theil_share`` its share of the total
(negative below the mean).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from geocluster.analyses._inputs import (
    choose_dataset,
    choose_run,
    read_assets,
    read_boundaries,
    read_clusters_run,
    read_firms,
    read_indicators,
    version_of,
)
from geocluster.analyses.result import Layer, Result
from geocluster.errors import InvalidInput, NotFound, RegionNotFound
from geocluster.inequality import theil_contributions
from geocluster.specialization import (
    assign_regions,
    choose_measure,
    location_quotient,
    sector_table,
    strong_clusters,
)
from geocluster.territories.core import area_km2, nearest_peers, rank_descending

__all__ = [
    "compare_regions",
    "compare_result",
    "peer_regions",
    "peers_result",
    "profile_result",
    "region_profile",
]

DEFAULT_POPULATION = "population"
MAX_COMPARE = 10


def _num(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _overlaps(info, bbox: Sequence[float] | None) -> bool:
    b = info.bbox
    if bbox is None or not b:
        return False
    minx, miny, maxx, maxy = bbox
    return b[0] <= maxx and b[2] >= minx and b[1] <= maxy and b[3] >= miny


def _has_regions(ws, info, ids: Sequence[str], *, every: bool) -> bool:
    frame = ws.read(f"{info.id}@{info.version}", columns=["region_id"])
    have = set(frame["region_id"].astype(str))
    return set(ids) <= have if every else bool(set(ids) & have)


class _Context:
    """Datasets read once and shared by the profiles of one request."""

    def __init__(
        self,
        ws,
        ids: Sequence[str],
        *,
        boundaries: str | None,
        firms: str | None,
        assets: str | None,
        indicators: str | None,
        year: int | None,
        population_indicator: str,
        clusters_run: str | None = None,
        with_clusters: bool = False,
    ) -> None:
        self.ws = ws
        ids = [str(i) for i in ids]
        b_info = choose_dataset(
            ws,
            boundaries,
            "boundaries",
            param="boundaries",
            candidate=lambda d: _has_regions(ws, d, ids, every=True),
        )
        shapes, b_info = read_boundaries(ws, version_of(b_info), crs=None, all_levels=True)
        self.boundaries = boundaries or b_info.id
        self.inputs: list[str] = [version_of(b_info)]
        self.shapes = shapes.set_index("region_id", drop=False)
        known = self.shapes.loc[self.shapes.index.intersection(ids)]
        extent = [float(v) for v in known.total_bounds] if len(known) else None
        f_info = choose_dataset(
            ws, firms, "firms", param="firms", optional=True,
            candidate=lambda d: _overlaps(d, extent),
        )  # fmt: skip
        a_info = choose_dataset(
            ws, assets, "assets", param="assets", optional=True,
            candidate=lambda d: _overlaps(d, extent),
        )  # fmt: skip
        i_info = choose_dataset(
            ws, indicators, "indicators", param="indicators", optional=True,
            candidate=lambda d: _has_regions(ws, d, ids, every=False),
        )  # fmt: skip
        self.firms = None if f_info is None else (firms or f_info.id)
        self.assets = None if a_info is None else (assets or a_info.id)
        self.indicators = None if i_info is None else (indicators or i_info.id)
        self._versions = {
            "firms": f_info and version_of(f_info),
            "assets": a_info and version_of(a_info),
            "indicators": i_info and version_of(i_info),
        }
        self.clusters_run = None
        if with_clusters:
            run = choose_run(
                ws,
                clusters_run,
                "clusters",
                param="clusters_run",
                optional=True,
                candidate=lambda r: self._clusters_candidate(r, f_info, extent),
            )
            self.clusters_run = None if run is None else run.id
        if year is not None:
            try:
                year = int(year)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"expected year as a whole number, got {year!r}") from exc
        self.year = year
        self.population_indicator = population_indicator
        self._areas: pd.Series | None = None
        self._firm_tables: dict[Any, dict] = {}
        self._ind: pd.DataFrame | None = None

    def _clusters_candidate(self, run, f_info, extent) -> bool:
        """A clusters run of the chosen firms (of any firms overlapping, without one)."""
        source = str(run.params.get("firms") or (run.inputs[0] if run.inputs else ""))
        source_id = source.split("@")[0]
        if f_info is not None:
            return source_id == f_info.id
        try:
            return _overlaps(self.ws.dataset(source_id), extent)
        except NotFound:
            return False

    def used(self, part: str) -> None:
        """Record that ``part`` (firms, assets, indicators, clusters) went into the result."""
        name = self.clusters_run if part == "clusters" else self._versions.get(part)
        if name and name not in self.inputs:
            self.inputs.append(name)

    # -- regions ---------------------------------------------------------------------------
    def region(self, region_id) -> pd.Series:
        rid = str(region_id)
        if rid not in self.shapes.index:
            sample = ", ".join(repr(r) for r in self.shapes.index[:5])
            raise RegionNotFound(
                f"no region {rid!r} in boundaries {self.boundaries!r} (ids look like {sample})"
            )
        return self.shapes.loc[rid]

    def level_of(self, rid: str):
        if "level" not in self.shapes.columns:
            return None
        lv = self.shapes.at[rid, "level"]
        return None if pd.isna(lv) else int(lv)

    def peers(self, rid: str) -> pd.DataFrame:
        """Regions at the same level as ``rid`` (all regions when there are no levels)."""
        lv = self.level_of(rid)
        if lv is None:
            return self.shapes
        levels = pd.to_numeric(self.shapes["level"], errors="coerce")
        return self.shapes[levels == lv]

    def areas(self) -> pd.Series:
        if self._areas is None:
            self._areas = pd.Series(area_km2(self.shapes.geometry), index=self.shapes.index)
        return self._areas

    # -- indicators ------------------------------------------------------------------------
    def indicator_frame(self) -> pd.DataFrame | None:
        if self.indicators is None:
            return None
        if self._ind is None:
            ind, _ = read_indicators(self.ws, self.indicators)
            self._ind = ind.dropna(subset=["value"]).assign(year=lambda d: d["year"].astype(int))
            self.used("indicators")
        return self._ind

    def indicator_year(self, rid: str, name: str) -> int | None:
        """The year used for indicator ``name`` of region ``rid``.

        The requested year, or the latest year the region has a value.
        """
        ind = self.indicator_frame()
        if ind is None:
            return None
        mine = ind[(ind["region_id"] == rid) & (ind["indicator"] == name)]
        if self.year is not None:
            return self.year if (mine["year"] == self.year).any() else None
        return int(mine["year"].max()) if len(mine) else None

    def indicator_values(self, name: str, year: int, ids) -> pd.Series:
        ind = self.indicator_frame()
        sub = ind[(ind["indicator"] == name) & (ind["year"] == year)]
        sub = sub[sub["region_id"].isin(set(ids))]
        return sub.groupby("region_id")["value"].first().astype(float)

    def population(self, rid: str) -> dict | None:
        ind = self.indicator_frame()
        if ind is None:
            return None
        names = {n.lower(): n for n in ind["indicator"].unique()}
        name = names.get(self.population_indicator.lower())
        if name is None:
            return None
        yr = self.indicator_year(rid, name)
        if yr is None:
            return None
        value = self.indicator_values(name, yr, [rid])
        return {"indicator": name, "year": yr, "value": float(value.iloc[0])}

    # -- firms -----------------------------------------------------------------------------
    def firm_table(self, rid: str) -> dict | None:
        """Firm counts/employees per region and sector for the level of ``rid``."""
        if self.firms is None:
            return None
        lv = self.level_of(rid)
        if lv in self._firm_tables:
            return self._firm_tables[lv]
        regions = self.peers(rid)
        bbox = tuple(float(v) for v in regions.total_bounds)
        firms = read_firms(
            self.ws, self.firms, crs=regions.crs.to_string(), bbox=bbox, require_selection=False
        ).all
        self.used("firms")
        # points of any geometry type are placed at a representative point
        pts = firms.geometry
        if len(pts) and not (pts.geom_type == "Point").all():
            pts = pts.representative_point()
        xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()]) if len(pts) else np.empty((0, 2))
        where = assign_regions(xy, regions, predicate="intersects")
        ids = np.asarray(regions.index, dtype=str)
        employees = (
            pd.to_numeric(firms["employees"], errors="coerce").to_numpy(float)
            if "employees" in firms.columns
            else np.full(len(firms), np.nan)
        )
        sectors = sector_table(where, ids, _division(firms).to_numpy(dtype=object), employees)
        measure = choose_measure(sectors, "employees")
        counts_rs, counts = sectors.matrices("firms")
        emp_rs, emp_tot = sectors.matrices("employees")
        known = np.bincount(
            sectors.firm_region,
            weights=np.isfinite(sectors.firm_employees).astype(float),
            minlength=len(ids),
        )
        x, totals = (emp_rs, emp_tot) if measure == "employees" else (counts_rs, counts)
        lq = strong = None
        if x.size and totals.sum() > 0:
            lq = location_quotient(x, totals)
            strong = strong_clusters(lq, x, counts_rs)
        cols = list(sectors.sectors)
        table = {
            "counts": pd.Series(counts.astype(int), index=ids),
            "employees": pd.Series(np.where(known > 0, emp_tot, np.nan), index=ids),
            "known": pd.Series(known.astype(int), index=ids),
            "measure": measure,
            "est": pd.DataFrame(counts_rs.astype(int), index=ids, columns=cols),
            "emp": pd.DataFrame(emp_rs, index=ids, columns=cols),
            "lq": None if lq is None else pd.DataFrame(lq, index=ids, columns=cols),
            "strong": None if strong is None else pd.DataFrame(strong, index=ids, columns=cols),
        }
        self._firm_tables[lv] = table
        return table


def _division(firms: pd.DataFrame) -> pd.Series:
    if "isic_division" in firms.columns:
        div = firms["isic_division"]
    elif "sector_code" in firms.columns:
        code = firms["sector_code"].astype("string")
        div = code.str.extract(r"^(\d{2})", expand=False)
    else:
        return pd.Series(pd.NA, index=firms.index, dtype="string")
    return div.astype("string").where(div.notna())


def _title(sector: str) -> str | None:
    try:
        from geocluster.sectors import DIVISIONS

        entry = DIVISIONS.get(str(sector))
        return entry[1] if entry else None
    except ImportError:  # pragma: no cover - the sectors package is part of geocluster
        return None


def _profile(ctx: _Context, region_id, *, top: int) -> dict:
    row = ctx.region(region_id)
    rid = str(row["region_id"])
    area = float(ctx.areas().at[rid])
    parent = row.get("parent_id") if "parent_id" in row.index else None
    out: dict[str, Any] = {
        "region_id": rid,
        "name": _num(row.get("name")) if "name" in row.index else None,
        "level": ctx.level_of(rid),
        "parent_id": None if parent is None or pd.isna(parent) else str(parent),
        "boundaries": ctx.boundaries,
        "area_km2": _num(area),
    }
    pop = ctx.population(rid)
    out["population"] = pop
    out["firms"] = out["sectors"] = None
    table = ctx.firm_table(rid)
    if table is not None:
        count = int(table["counts"].get(rid, 0))
        emp = table["employees"].get(rid)
        ranks = rank_descending(table["counts"].astype(float))
        out["firms"] = {
            "dataset": ctx.firms,
            "count": count,
            "employees": _num(float(emp)) if emp is not None and not pd.isna(emp) else None,
            "employees_known": int(table["known"].get(rid, 0)),
            "density_per_km2": _num(count / area) if area > 0 else None,
            "per_1000_inhabitants": (
                _num(1000.0 * count / pop["value"]) if pop and pop["value"] > 0 else None
            ),
            "rank": int(ranks.at[rid]),
            "of": int(len(ranks)),
        }
        if table["lq"] is not None:
            lq = table["lq"].loc[rid]
            present = table["est"].loc[rid] > 0
            order = lq[present].sort_values(ascending=False, kind="stable")
            strong_row = table["strong"].loc[rid]
            rows = [
                {
                    "sector": str(s),
                    "title": _title(s),
                    "count": int(table["est"].at[rid, s]),
                    "employees": (
                        _num(float(table["emp"].at[rid, s]))
                        if table["measure"] == "employees"
                        else None
                    ),
                    "lq": _num(float(order[s])),
                    "strong": bool(strong_row[s]),
                }
                for s in order.index[:top]
            ]
            out["sectors"] = {
                "measure": table["measure"],
                "sector_level": "division",
                "top": rows,
                "strong": [str(s) for s in order.index if bool(strong_row[s])],
            }
    out["clusters"] = _clusters(ctx, row)
    out["assets"] = _assets(ctx, row)
    out["indicators"] = _indicators(ctx, rid)
    return out


def _clusters(ctx: _Context, row: pd.Series) -> dict | None:
    if ctx.clusters_run is None:
        return None
    geom = row.geometry
    frame, run = read_clusters_run(
        ctx.ws, ctx.clusters_run, crs=None, bbox=tuple(float(v) for v in geom.bounds)
    )
    ctx.used("clusters")
    import geopandas as gpd

    if not isinstance(frame, gpd.GeoDataFrame) or len(frame) == 0:
        return {"run_id": run.id, "items": []}
    frame = frame.to_crs(ctx.shapes.crs) if frame.crs != ctx.shapes.crs else frame
    hit = frame[frame.intersects(geom)]
    items = []
    if len(hit):
        inter = gpd.GeoSeries(hit.intersection(geom).to_numpy(), crs=frame.crs)
        a_all = area_km2(gpd.GeoSeries(hit.geometry.to_numpy(), crs=frame.crs))
        a_in = area_km2(inter)
        for k, (_, c) in enumerate(hit.iterrows()):
            item = {
                key: _num(c[key])
                for key in ("cluster_id", "n_firms", "employees", "dominant_sector", "area_km2")
                if key in c.index
            }
            item["overlap_share"] = _num(float(a_in[k] / a_all[k])) if a_all[k] > 0 else None
            items.append(item)
    return {"run_id": run.id, "items": items}


def _assets(ctx: _Context, row: pd.Series) -> dict | None:
    if ctx.assets is None:
        return None
    geom = row.geometry
    frame, _ = read_assets(
        ctx.ws, ctx.assets, crs=None, bbox=tuple(float(v) for v in geom.bounds), require_any=False
    )
    ctx.used("assets")
    if len(frame):
        frame = frame.to_crs(ctx.shapes.crs) if frame.crs != ctx.shapes.crs else frame
        frame = frame[frame.intersects(geom)]
    cats = (
        frame["category"].fillna("unknown").astype(str).value_counts().sort_index()
        if "category" in frame.columns
        else pd.Series(dtype=int)
    )
    return {
        "dataset": ctx.assets,
        "total": int(len(frame)),
        "by_category": {str(k): int(v) for k, v in cats.items()},
    }


def _indicators(ctx: _Context, rid: str) -> dict | None:
    ind = ctx.indicator_frame()
    if ind is None:
        return None
    names = sorted(ind.loc[ind["region_id"] == rid, "indicator"].unique())
    peers = list(ctx.peers(rid).index)
    values = []
    for name in names:
        yr = ctx.indicator_year(rid, name)
        if yr is None:
            continue
        vals = ctx.indicator_values(name, yr, peers)
        if rid not in vals.index:
            continue
        ranks = rank_descending(vals)
        entry = {
            "indicator": name,
            "year": yr,
            "value": _num(float(vals[rid])),
            "rank": int(ranks[rid]),
            "of": int(len(vals)),
            "theil_t": None,
            "theil_contribution": None,
            "theil_share": None,
        }
        if len(vals) >= 2 and (vals >= 0).all() and vals.sum() > 0:
            contrib = pd.Series(theil_contributions(vals.to_numpy()), index=vals.index)
            total = float(contrib.sum())
            entry["theil_t"] = _num(total)
            entry["theil_contribution"] = _num(float(contrib[rid]))
            entry["theil_share"] = _num(float(contrib[rid] / total)) if total > 0 else None
        values.append(entry)
    return {"dataset": ctx.indicators, "values": values}


def _profile_layers(profile: dict, prefix: str = "") -> dict[str, Layer]:
    """Move the firm-derived parts of a profile dict into layers with their kind."""
    layers: dict[str, Layer] = {}
    if profile.get("firms") is not None:
        layers[f"{prefix}firms"] = Layer(
            "region_table", pd.DataFrame([profile.pop("firms")]), shape="row", count_col="count"
        )
        profile["firms"] = None
    if profile.get("sectors") is not None:
        top = pd.DataFrame(profile["sectors"]["top"], columns=_SECTOR_COLUMNS)
        layers[f"{prefix}sectors/top"] = Layer("region_table", top, count_col="count")
    if profile.get("clusters") is not None:
        items = pd.DataFrame(profile["clusters"]["items"], columns=_CLUSTER_COLUMNS)
        layers[f"{prefix}clusters/items"] = Layer("cluster_summary", items, count_col="n_firms")
    return layers


_SECTOR_COLUMNS = ["sector", "title", "count", "employees", "lq", "strong"]
_CLUSTER_COLUMNS = [
    "cluster_id", "n_firms", "employees", "dominant_sector", "area_km2", "overlap_share",
]  # fmt: skip


def region_profile(ws, region_id: str, **kwargs) -> dict:
    """:func:`profile_result` as its JSON body (no disclosure policy applied)."""
    return profile_result(ws, region_id, **kwargs).to_body()


def profile_result(
    ws,
    region_id: str,
    *,
    boundaries: str | None = None,
    firms: str | None = None,
    assets: str | None = None,
    indicators: str | None = None,
    clusters_run: str | None = None,
    year: int | None = None,
    population_indicator: str = DEFAULT_POPULATION,
    top: int = 5,
) -> Result:
    """Everything the workspace knows about one region.

    Parameters
    ----------
    ws : Workspace
    region_id : str
        A ``region_id`` of the boundaries dataset.
    boundaries, firms, assets, indicators : str, optional
        Dataset ids (default: the only candidate, see the module docstring;
        firms/assets/indicators are skipped when none applies).
    clusters_run : str, optional
        A clusters run whose clusters intersecting the region are listed (default: the
        only clusters run of the firms, if exactly one).
    year : int, optional
        Indicator year (default: the latest year each indicator has for the region).
    population_indicator : str, default "population"
        Name of the population indicator (case-insensitive).
    top : int, default 5
        Number of top sectors by location quotient.

    Returns
    -------
    Result
        The profile (see the module docstring); firm counts, sector rows and clusters
        are layers of kind ``region_table`` and ``cluster_summary``.

    Raises
    ------
    RegionNotFound
        If ``region_id`` is not in the boundaries.
    InvalidInput
        A dataset or run left out could be one of several (they are listed).
    """
    if not isinstance(top, int) or top < 1:
        raise InvalidInput(f"expected top >= 1 sectors, got {top!r}")
    ctx = _Context(
        ws,
        [region_id],
        boundaries=boundaries,
        firms=firms,
        assets=assets,
        indicators=indicators,
        year=year,
        population_indicator=population_indicator,
        clusters_run=clusters_run,
        with_clusters=True,
    )
    profile = _profile(ctx, region_id, top=top)
    layers = _profile_layers(profile)
    return Result(body=profile, layers=layers, inputs=tuple(ctx.inputs))


def compare_regions(ws, ids: Sequence[str], **kwargs) -> dict:
    """:func:`compare_result` as its JSON body (no disclosure policy applied)."""
    return compare_result(ws, ids, **kwargs).to_body()


def compare_result(
    ws,
    ids: Sequence[str],
    *,
    boundaries: str | None = None,
    firms: str | None = None,
    assets: str | None = None,
    indicators: str | None = None,
    clusters_run: str | None = None,
    year: int | None = None,
    population_indicator: str = DEFAULT_POPULATION,
    top: int = 5,
) -> Result:
    """Profiles of 2-10 regions side by side.

    Returns
    -------
    dict
        ``{"boundaries", "ids", "regions": [profile, ...], "table": [{"metric", "values":
        {region_id: value}}, ...]}``. The table lines up area, population, firms,
        employees, firm density, asset counts and every indicator (value and rank).

    Raises
    ------
    InvalidInput
        Fewer than 2 or more than 10 distinct ids.
    RegionNotFound
        An id is not in the boundaries.
    """
    if isinstance(ids, str):
        ids = [s.strip() for s in ids.split(",") if s.strip()]
    seen: list[str] = []
    for i in ids:
        if str(i) not in seen:
            seen.append(str(i))
    if not 2 <= len(seen) <= MAX_COMPARE:
        raise InvalidInput(
            f"expected between 2 and {MAX_COMPARE} distinct region ids to compare, got {len(seen)}"
        )
    ctx = _Context(
        ws,
        seen,
        boundaries=boundaries,
        firms=firms,
        assets=assets,
        indicators=indicators,
        year=year,
        population_indicator=population_indicator,
        clusters_run=clusters_run,
        with_clusters=clusters_run is not None,
    )
    profiles = [_profile(ctx, rid, top=top) for rid in seen]
    metrics: dict[str, dict[str, Any]] = {}
    n_firms: dict[str, Any] = {}

    def put(metric: str, rid: str, value: Any) -> None:
        metrics.setdefault(metric, {r: None for r in seen})[rid] = value

    for p in profiles:
        rid = p["region_id"]
        put("area_km2", rid, p["area_km2"])
        if p["population"]:
            put("population", rid, p["population"]["value"])
        if p["firms"]:
            n_firms[rid] = p["firms"]["count"]
            for key in ("count", "employees", "density_per_km2", "per_1000_inhabitants"):
                put(f"firms.{key}", rid, p["firms"][key])
        if p["assets"]:
            put("assets.total", rid, p["assets"]["total"])
            for cat, n in p["assets"]["by_category"].items():
                put(f"assets.{cat}", rid, n)
        if p["indicators"]:
            for v in p["indicators"]["values"]:
                put(f"{v['indicator']}", rid, v["value"])
                put(f"{v['indicator']}.rank", rid, v["rank"])
    # the table long, so each firm-derived value carries its region's firm count
    long = pd.DataFrame(
        [
            {
                "metric": m,
                "region_id": rid,
                "value": v,
                "n_firms": n_firms.get(rid) if m.startswith("firms.") else None,
            }
            for m, vals in metrics.items()
            for rid, v in vals.items()
        ],
        columns=["metric", "region_id", "value", "n_firms"],
    )
    long = long.assign(
        value=pd.to_numeric(long["value"], errors="coerce"), n_firms=long["n_firms"].astype(float)
    )
    layers: dict[str, Layer] = {
        "table": Layer("region_table", long, count_col="n_firms", render=_wide_table)
    }
    for i, p in enumerate(profiles):
        layers.update(_profile_layers(p, prefix=f"regions/{i}/"))
    body = {"boundaries": ctx.boundaries, "ids": seen, "regions": profiles, "table": None}
    return Result(body=body, layers=layers, inputs=tuple(ctx.inputs))


def _wide_table(long: pd.DataFrame) -> list[dict[str, Any]]:
    """``[{"metric", "values": {region_id: value}}]`` from the long comparison table."""
    out: dict[str, dict[str, Any]] = {}
    for row in long.itertuples(index=False):
        out.setdefault(row.metric, {})[row.region_id] = _num(row.value)
    return [{"metric": m, "values": vals} for m, vals in out.items()]


def peer_regions(ws, region_id: str, **kwargs) -> dict:
    """:func:`peers_result` as its JSON body."""
    return peers_result(ws, region_id, **kwargs).to_body()


def peers_result(
    ws,
    region_id: str,
    *,
    boundaries: str | None = None,
    indicators: str | None = None,
    firms: str | None = None,
    k: int = 5,
    year: int | None = None,
    names: Sequence[str] | None = None,
) -> Result:
    """The ``k`` regions most similar to ``region_id`` on standardised indicators.

    Candidates are the regions at the same boundaries level. For each indicator the
    year is ``year`` or else the latest year the region has a value; indicators the
    region lacks are skipped, and candidates lacking any used indicator are left out
    (listed in ``excluded``). Each indicator is z-scored across the candidates
    (``ddof=0``); distance is Euclidean. With ``firms``, firm density (firms per km²)
    is one more indicator.

    Returns
    -------
    Result
        Body ``{"region_id", "level", "k", "indicators": [{"indicator", "year"}],
        "peers": [{"region_id", "name", "distance", "values": {...}}], "excluded": [...]}``
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidInput(f"expected k >= 1 peers, got {k!r}")
    ctx = _Context(
        ws,
        [region_id],
        boundaries=boundaries,
        firms=firms,
        assets=None,
        indicators=indicators,
        year=year,
        population_indicator=DEFAULT_POPULATION,
    )
    row = ctx.region(region_id)
    rid = str(row["region_id"])
    candidates = list(ctx.peers(rid).index)
    columns: dict[str, pd.Series] = {}
    used: list[dict] = []
    ind = ctx.indicator_frame()
    if ind is not None:
        available = sorted(ind.loc[ind["region_id"] == rid, "indicator"].unique())
        if names is not None:
            unknown = [n for n in names if n not in set(ind["indicator"])]
            if unknown:
                raise InvalidInput(f"no indicator(s) {unknown} in {ctx.indicators!r}")
            available = [n for n in available if n in set(names)]
        for name in available:
            yr = ctx.indicator_year(rid, name)
            if yr is None:
                continue
            columns[name] = ctx.indicator_values(name, yr, candidates)
            used.append({"indicator": name, "year": yr})
    if firms is not None or (ctx.firms is not None and not columns):
        table = ctx.firm_table(rid)
        if table is not None:
            areas = ctx.areas().reindex(candidates)
            columns["firm_density"] = table["counts"].reindex(candidates) / areas
            used.append({"indicator": "firm_density", "year": None})
    if not columns:
        raise InvalidInput(
            f"region {rid!r} has no indicator values to compare with other regions"
            + ("" if ctx.indicators else "; no indicators dataset in the workspace")
        )
    matrix = pd.DataFrame(columns).reindex(candidates)
    complete = matrix.notna().all(axis=1)
    excluded = [
        {"region_id": r, "missing": [c for c in matrix.columns if pd.isna(matrix.at[r, c])]}
        for r in matrix.index[~complete]
    ]
    matrix = matrix[complete]
    peers = nearest_peers(matrix, rid, int(k))
    names_col = ctx.shapes["name"] if "name" in ctx.shapes.columns else None
    out_peers = [
        {
            "region_id": str(p.region_id),
            "name": _num(names_col.get(p.region_id)) if names_col is not None else None,
            "distance": _num(float(p.distance)),
            "values": {c: _num(float(matrix.at[p.region_id, c])) for c in matrix.columns},
        }
        for p in peers.itertuples()
    ]
    used_names = set(peers.attrs.get("used", []))
    # firm density enters only as a standardised distance: public
    return Result(
        inputs=tuple(ctx.inputs),
        body={
            "region_id": rid,
            "boundaries": ctx.boundaries,
            "level": ctx.level_of(rid),
            "k": int(k),
            "indicators": [u for u in used if u["indicator"] in used_names],
            "values": {c: _num(float(matrix.at[rid, c])) for c in matrix.columns},
            "peers": out_peers,
            "excluded": excluded,
        },
    )
