"""The UNIDO cluster-development cycle: JSON-ready orchestration of its analyses.

SDG view, dynamics, change, shift-share, relatedness and support institutions, for the
specs, the CLI and the demo.

Each ``*_result`` reads its inputs through :mod:`geocluster.analyses._inputs`, calls the
pure computation (:mod:`geocluster.sdg`, :mod:`geocluster.dynamics`,
:mod:`geocluster.clustering.change`, :mod:`geocluster.specialization.shiftshare`,
:mod:`geocluster.specialization.relatedness`, :mod:`geocluster.assets.institutions`), saves
a run (so the map and the reports can show it) and returns a :class:`Result` whose layers
declare their disclosure kind: region × sector and region tables are ``region_table``
with the number of firms behind each row, cluster tables ``cluster_summary``. The
``run_*`` functions return the JSON body (no disclosure policy applied), for the demo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geocluster.analyses._common import jsonable, noop_progress
from geocluster.analyses._inputs import (
    read_boundaries,
    read_clusters_run,
    read_firms,
    version_of,
)
from geocluster.analyses.result import Layer, Result, stored_kinds
from geocluster.errors import InvalidInput, MissingColumns

__all__ = [
    "change_result",
    "dynamics_result",
    "institutions_result",
    "read_institutions",
    "relatedness_result",
    "run_change",
    "run_dynamics",
    "run_institutions",
    "run_relatedness",
    "run_sdg",
    "run_shiftshare",
    "sdg_result",
    "shiftshare_result",
]

Progress = Callable[[float, str], None]
MEASURES = ("employees", "firms")
SECTOR_LEVELS = ("section", "division")


# -- shared helpers ---------------------------------------------------------------------------
def _crs_of(frame: gpd.GeoDataFrame) -> str:
    return frame.crs.to_string()


def _regions_of(firms: gpd.GeoDataFrame, regions: gpd.GeoDataFrame) -> np.ndarray:
    """Region id of each firm (None outside every region)."""
    from geocluster.analyses.specialization import _firm_xy
    from geocluster.specialization import assign_regions

    idx = assign_regions(_firm_xy(firms), regions, predicate="intersects")
    ids = regions["region_id"].to_numpy(dtype=object)
    out = np.full(len(firms), None, dtype=object)
    out[idx >= 0] = ids[idx[idx >= 0]]
    return out


def _region_sector(
    firms: gpd.GeoDataFrame, regions: gpd.GeoDataFrame, *, sector_level: str
) -> pd.DataFrame:
    """Long ``region_id, sector, n_firms, employees`` of the firms inside a region."""
    from geocluster.analyses.specialization import _firm_sectors

    if sector_level not in SECTOR_LEVELS:
        raise InvalidInput(f"expected sector_level in {list(SECTOR_LEVELS)}, got {sector_level!r}")
    emp = (
        pd.to_numeric(firms["employees"], errors="coerce").fillna(0.0).to_numpy(float)
        if "employees" in firms.columns
        else np.zeros(len(firms))
    )
    frame = pd.DataFrame(
        {
            "region_id": _regions_of(firms, regions),
            "sector": _firm_sectors(firms, sector_level).to_numpy(dtype=object),
            "employees": emp,
        }
    ).dropna(subset=["region_id", "sector"])
    return (
        frame.groupby(["region_id", "sector"])
        .agg(n_firms=("employees", "size"), employees=("employees", "sum"))
        .reset_index()
    )


def _wide(long: pd.DataFrame, value: str) -> pd.DataFrame:
    return long.astype({value: float}).pivot_table(
        index="region_id", columns="sector", values=value, aggfunc="sum", fill_value=0.0
    )


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise InvalidInput(f"expected measure in {list(MEASURES)}, got {measure!r}")


def _min_nonzero(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest non-zero of two firm counts (0 when both are 0): the disclosure count.

    A row built from two tables reveals the firms behind each side; the side with fewer
    firms is the one a suppression rule must look at (a side with no firm reveals none).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    big = np.inf
    m = np.minimum(np.where(a > 0, a, big), np.where(b > 0, b, big))
    return np.where(np.isfinite(m), m, 0.0)


# -- shift-share -------------------------------------------------------------------------------
def run_shiftshare(ws: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`shiftshare_result` as its JSON body (no disclosure policy applied)."""
    return shiftshare_result(ws, **kwargs).to_body()


def shiftshare_result(
    ws: Any,
    *,
    firms: str,
    firms_to: str,
    boundaries: str,
    measure: str = "employees",
    sector_level: str = "division",
    level: int | None = None,
    esteban_marquillas: bool = False,
    progress: Progress | None = None,
) -> Result:
    """Dunn shift-share of each region × sector change from ``firms`` to ``firms_to``.

    Returns ``rows`` (region_id, sector, base, final, national_share, industry_mix,
    regional_shift, n_firms_base, n_firms_final), ``regions`` (the region totals),
    ``national_growth`` and ``sector_growth``.
    """
    from geocluster.specialization.shiftshare import shift_share

    report = progress or noop_progress
    _check_measure(measure)
    report(0.1, "reading both firm versions")
    base = read_firms(ws, firms, require_selection=False)
    crs = _crs_of(base.all)
    final = read_firms(ws, firms_to, crs=crs, require_selection=False)
    if base.input == final.input:
        raise InvalidInput(f"expected two different firm versions, got {base.input} twice")
    regions, b_info = read_boundaries(ws, boundaries, crs=crs, level=level)
    report(0.4, "region × sector tables")
    lb = _region_sector(base.all, regions, sector_level=sector_level)
    lf = _region_sector(final.all, regions, sector_level=sector_level)
    if lb.empty:
        raise InvalidInput(f"expected firms of {base.input} inside {version_of(b_info)}, got none")
    value = "employees" if measure == "employees" else "n_firms"
    result = shift_share(_wide(lb, value), _wide(lf, value), esteban_marquillas=esteban_marquillas)
    rows = result.rows
    counts = (
        rows[["region_id", "sector"]]
        .merge(lb[["region_id", "sector", "n_firms"]], how="left", on=["region_id", "sector"])
        .merge(
            lf[["region_id", "sector", "n_firms"]],
            how="left",
            on=["region_id", "sector"],
            suffixes=("_base", "_final"),
        )
    )
    rows = rows.assign(
        n_firms_base=counts["n_firms_base"].fillna(0).to_numpy(float),
        n_firms_final=counts["n_firms_final"].fillna(0).to_numpy(float),
    )
    rows = rows[(rows["base"] != 0) | (rows["final"] != 0)].reset_index(drop=True)
    rows["n_firms"] = _min_nonzero(rows["n_firms_base"], rows["n_firms_final"])
    reg = result.regions.reset_index()
    nb = lb.groupby("region_id")["n_firms"].sum()
    nf = lf.groupby("region_id")["n_firms"].sum()
    reg["n_firms_base"] = reg["region_id"].map(nb).fillna(0).to_numpy(float)
    reg["n_firms_final"] = reg["region_id"].map(nf).fillna(0).to_numpy(float)
    reg["n_firms"] = _min_nonzero(reg["n_firms_base"], reg["n_firms_final"])
    inputs = (base.input, final.input, version_of(b_info))
    params = {
        "firms": firms,
        "firms_to": firms_to,
        "boundaries": boundaries,
        "measure": measure,
        "sector_level": sector_level,
        "level": regions.attrs.get("level"),
        "esteban_marquillas": esteban_marquillas,
        "working_crs": crs,
    }
    report(0.8, "saving the run")
    layer = regions[["region_id", "geometry"]].merge(reg, on="region_id", how="inner")
    saved = ws.save_run(
        "shiftshare",
        params=jsonable(params),
        inputs=list(inputs),
        layers={"regions": layer, "rows": rows},
        summary={
            "national_growth": jsonable(result.national_growth),
            **stored_kinds(regions=("region_table", "n_firms"), rows=("region_table", "n_firms")),
        },
    )
    report(1.0, "done")
    return Result(
        run_id=saved.id,
        inputs=inputs,
        body={
            "measure": measure,
            "sector_level": sector_level,
            "national_growth": jsonable(result.national_growth),
            "sector_growth": jsonable(result.sector_growth.to_dict()),
            "rows": None,
            "regions": None,
            "params": jsonable(params),
            "collections": {"regions": saved.id, "rows": f"{saved.id}.rows"},
        },
        layers={
            "rows": Layer("region_table", rows, count_col="n_firms"),
            "regions": Layer("region_table", reg, count_col="n_firms"),
        },
    )


# -- relatedness -------------------------------------------------------------------------------
def run_relatedness(ws: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`relatedness_result` as its JSON body (no disclosure policy applied)."""
    return relatedness_result(ws, **kwargs).to_body()


def relatedness_result(
    ws: Any,
    *,
    firms: str,
    boundaries: str,
    measure: str = "employees",
    sector_level: str = "division",
    level: int | None = None,
    top_n: int = 5,
    min_phi: float = 0.0,
    progress: Progress | None = None,
) -> Result:
    """RCA, proximity, density, ECI/PCI and nearby opportunities of a region × sector table.

    Returns ``eci`` ({region_id: value}), ``pci`` ({sector: value}), ``density`` rows
    (region_id, sector, density, rca, n_firms), ``proximity`` ([[sector, sector, phi]])
    and ``opportunities`` (per region, the ``top_n`` densest sectors with RCA < 1).
    """
    from geocluster.specialization.relatedness import nearby_opportunities, relatedness

    report = progress or noop_progress
    _check_measure(measure)
    read = read_firms(ws, firms, require_selection=False)
    crs = _crs_of(read.all)
    regions, b_info = read_boundaries(ws, boundaries, crs=crs, level=level)
    report(0.3, "region × sector table")
    long = _region_sector(read.all, regions, sector_level=sector_level)
    if long.empty:
        raise InvalidInput(f"expected firms of {read.input} inside {version_of(b_info)}, got none")
    value = "employees" if measure == "employees" else "n_firms"
    table = _wide(long, value)
    report(0.6, "relatedness and complexity")
    rel = relatedness(table)
    warnings = []
    parts = rel.components()
    if parts > 1:
        # the eigenvector method's exact answer, but not a ranking: say so
        warnings.append(
            f"the region-sector network (RCA >= 1) falls into {parts} disconnected parts "
            f"(second eigenvalue {rel.eigenvalue:.6f}): ECI only tells those parts apart "
            "and ranks nothing within them"
        )
    counts = long.set_index(["region_id", "sector"])["n_firms"]

    def with_counts(frame: pd.DataFrame) -> pd.DataFrame:
        key = pd.MultiIndex.from_frame(frame[["region_id", "sector"]])
        return frame.assign(n_firms=counts.reindex(key).fillna(0).to_numpy(float))

    density = with_counts(rel.density_rows())
    opportunities = with_counts(nearby_opportunities(rel, top_n=int(top_n)))
    inputs = (read.input, version_of(b_info))
    params = {
        "firms": firms,
        "boundaries": boundaries,
        "measure": measure,
        "sector_level": sector_level,
        "level": regions.attrs.get("level"),
        "top_n": top_n,
        "working_crs": crs,
    }
    eci = rel.eci.rename("eci").reset_index()
    eci.columns = ["region_id", "eci"]
    eci["diversity"] = eci["region_id"].map(rel.diversity).to_numpy(float)
    layer = regions[["region_id", "geometry"]].merge(eci, on="region_id", how="inner")
    saved = ws.save_run(
        "relatedness",
        params=jsonable(params),
        inputs=list(inputs),
        layers={"regions": layer, "density": density, "opportunities": opportunities},
        summary={
            "eigenvalue": jsonable(rel.eigenvalue),
            "components": parts,
            "warnings": warnings,
            **stored_kinds(
                regions="public",
                density=("region_table", "n_firms"),
                opportunities=("region_table", "n_firms"),
            ),
        },
    )
    report(1.0, "done")
    return Result(
        run_id=saved.id,
        inputs=inputs,
        body={
            "measure": measure,
            "sector_level": sector_level,
            # ECI and PCI rank regions and sectors by which sectors they have: aggregate
            # scores, not a firm figure
            "eci": jsonable(rel.eci.to_dict()),
            "pci": jsonable(rel.pci.to_dict()),
            "diversity": jsonable(rel.diversity.to_dict()),
            "ubiquity": jsonable(rel.ubiquity.to_dict()),
            "eigenvalue": jsonable(rel.eigenvalue),
            "components": parts,
            "warnings": warnings,
            "proximity": jsonable(rel.proximity_edges(min_phi=float(min_phi))),
            "density": None,
            "opportunities": None,
            "params": jsonable(params),
            "collections": {"regions": saved.id},
        },
        layers={
            "density": Layer("region_table", density, count_col="n_firms"),
            "opportunities": Layer("region_table", opportunities, count_col="n_firms"),
        },
    )


# -- change ------------------------------------------------------------------------------------
def run_change(ws: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`change_result` as its JSON body (no disclosure policy applied)."""
    return change_result(ws, **kwargs).to_body()


def change_result(
    ws: Any,
    *,
    before: str,
    after: str,
    match: str = "auto",
    score: str = "jaccard",
    min_score: float | None = None,
    progress: Progress | None = None,
) -> Result:
    """Match the clusters of two clusters runs and report each one's change.

    Returns ``rows`` (before_id, after_id, status, n_firms_before, n_firms_after and
    ``<indicator>_before/_after/_change``), ``groups``, ``counts`` by status and the
    ``match`` used (by shared firms when both runs' firm ids overlap, else by hull area).
    """
    from geocluster.clustering.change import cluster_change

    report = progress or noop_progress
    if before == after:
        raise InvalidInput(f"expected two different clusters runs, got {before!r} twice")
    b_hulls, b_run = read_clusters_run(ws, before)
    crs = _crs_of(b_hulls)
    a_hulls, a_run = read_clusters_run(ws, after, crs=crs)
    report(0.3, "reading cluster members")
    b_lab, _ = read_clusters_run(ws, before, layer="labels", crs=crs)
    a_lab, _ = read_clusters_run(ws, after, layer="labels", crs=crs)
    members = []
    for lab in (b_lab, a_lab):
        if "firm_id" in lab.columns:
            members.append(pd.DataFrame(lab[["firm_id", "cluster_id"]]))
        else:
            members.append(None)
    report(0.6, "matching clusters")
    result = cluster_change(
        pd.DataFrame(b_hulls) if match == "firms" else b_hulls,
        a_hulls,
        before_members=members[0],
        after_members=members[1],
        match=match,
        score=score,
        min_score=min_score,
    )
    rows = result.rows.copy()
    rows["n_firms"] = _min_nonzero(
        rows["n_firms_before"].fillna(0), rows["n_firms_after"].fillna(0)
    )
    groups = result.groups.copy()
    for col in ("before_ids", "after_ids"):
        groups[col] = [jsonable(list(v)) for v in groups[col]]
    groups["n_firms"] = _min_nonzero(
        groups["n_firms_before"].fillna(0), groups["n_firms_after"].fillna(0)
    )
    # the change layer of the map: the follow-up hull, or the baseline one for a
    # disappeared cluster
    a_geom = a_hulls.set_index("cluster_id").geometry
    b_geom = b_hulls.set_index("cluster_id").geometry
    geoms = [
        a_geom.get(ai) if ai is not None else b_geom.get(bi)
        for bi, ai in zip(rows["before_id"], rows["after_id"])
    ]
    layer = gpd.GeoDataFrame(rows, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)
    for col in ("before_id", "after_id"):
        layer[col] = pd.to_numeric(layer[col], errors="coerce")
    inputs = (before, after, *b_run.inputs, *a_run.inputs)
    inputs = tuple(dict.fromkeys(inputs))
    params = {
        "before": before,
        "after": after,
        "match": result.match,
        "score": result.score,
        "min_score": result.min_score,
        "working_crs": crs,
    }
    counts = result.counts()
    saved = ws.save_run(
        "change",
        params=jsonable(params),
        inputs=list(inputs),
        layers={"change": layer},
        summary={"counts": counts, **stored_kinds(change=("cluster_summary", "n_firms"))},
    )
    report(1.0, "done")
    return Result(
        run_id=saved.id,
        inputs=inputs,
        body={
            "before": before,
            "after": after,
            "match": result.match,
            "score": result.score,
            "min_score": result.min_score,
            "counts": counts,
            "rows": None,
            "groups": None,
            "params": jsonable(params),
            "collections": {"change": saved.id},
        },
        layers={
            "rows": Layer("cluster_summary", rows, count_col="n_firms"),
            "groups": Layer("cluster_summary", groups, count_col="n_firms"),
        },
    )


# -- dynamics ----------------------------------------------------------------------------------
def run_dynamics(ws: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`dynamics_result` as its JSON body (no disclosure policy applied)."""
    return dynamics_result(ws, **kwargs).to_body()


def _growth_rows(series: pd.DataFrame, years: int, name: str) -> tuple[pd.DataFrame, dict]:
    from geocluster.dynamics import growth

    if series.empty:
        return pd.DataFrame(columns=[name, "firms_end"]), {}
    end = int(series["year"].max())
    start = max(int(series["year"].min()), end - int(years))
    if start >= end:
        return pd.DataFrame(columns=[name, "firms_end"]), {}
    out = growth(series, start_year=start, end_year=end).reset_index()
    out = out.rename(columns={"group": name})
    return out, {"start_year": start, "end_year": end}


def dynamics_result(
    ws: Any,
    *,
    firms: str,
    clusters: str | None = None,
    boundaries: str | None = None,
    year_col: str = "founded",
    first_year: int | None = None,
    last_year: int | None = None,
    growth_years: int = 5,
    emergence: bool = True,
    min_overlap: float = 0.5,
    level: int | None = None,
    progress: Progress | None = None,
) -> Result:
    """Firm counts and employment by founding year, growth, age structure and emergence.

    Per region (with ``boundaries``) and per cluster (with ``clusters``, a clusters run
    on ``firms``): the founding-year series, the CAGR of the stock over the last
    ``growth_years`` years, the age structure; per cluster also the emergence year (DBSCAN
    with the run's parameters re-run on the firms founded up to each year).
    """
    from geocluster.dynamics import age_structure, founding_series
    from geocluster.dynamics import emergence as emergence_of

    report = progress or noop_progress
    if boundaries is None and clusters is None:
        raise InvalidInput("expected boundaries, clusters (a clusters run) or both, got neither")
    read = read_firms(ws, firms, require_selection=False)
    frame = read.all
    if year_col not in frame.columns:
        raise MissingColumns(
            f"expected a {year_col!r} column of founding years in {read.input}, got "
            f"{[c for c in frame.columns if c != 'geometry']}"
        )
    crs = _crs_of(frame)
    known = pd.to_numeric(frame[year_col], errors="coerce").dropna()
    if known.empty:
        raise InvalidInput(f"expected founding years in {year_col!r} of {read.input}, got none")
    lo = int(known.min()) if first_year is None else int(first_year)
    hi = int(known.max()) if last_year is None else int(last_year)
    if lo > hi:
        raise InvalidInput(f"expected first_year <= last_year, got {lo} > {hi}")
    if hi - lo > 200:
        raise InvalidInput(f"expected at most 200 years, got {lo}..{hi} (set first_year)")
    inputs: list[str] = [read.input]
    body: dict[str, Any] = {"year_col": year_col, "years": [lo, hi]}
    layers: dict[str, Layer] = {}
    stored: dict[str, Any] = {}
    saved_layers: dict[str, Any] = {}
    if boundaries is not None:
        report(0.1, "regions")
        regions, b_info = read_boundaries(ws, boundaries, crs=crs, level=level)
        inputs.append(version_of(b_info))
        firms_r = pd.DataFrame(frame.drop(columns="geometry")).assign(
            region_id=_regions_of(frame, regions)
        )
        series = founding_series(firms_r, group="region_id", year_col=year_col, years=(lo, hi))
        series = series.rename(columns={"group": "region_id"})
        g, span = _growth_rows(
            series.rename(columns={"region_id": "group"}), growth_years, "region_id"
        )
        ages = age_structure(
            firms_r[pd.to_numeric(firms_r[year_col], errors="coerce").fillna(hi) <= hi],
            group="region_id",
            reference_year=hi,
            year_col=year_col,
        ).reset_index()
        ages = ages.rename(columns={ages.columns[0]: "region_id"})
        ages["n_firms"] = ages[[c for c in ages.columns if c[0].isdigit()]].sum(axis=1)
        body["regions"] = {"series": None, "growth": None, "age": None, "growth_span": span}
        layers["regions/series"] = Layer("region_table", series, count_col="new_firms")
        layers["regions/growth"] = Layer("region_table", g, count_col="firms_end")
        layers["regions/age"] = Layer("region_table", ages, count_col="n_firms")
        saved_layers["regions"] = regions[["region_id", "geometry"]].merge(
            g, on="region_id", how="inner"
        )
        saved_layers["region_series"] = series
        stored["regions"] = ("region_table", "firms_end")
        stored["region_series"] = ("region_table", "new_firms")
    if clusters is not None:
        report(0.4, "clusters")
        labels, run = read_clusters_run(ws, clusters, layer="labels", crs=crs)
        hulls, _ = read_clusters_run(ws, clusters, crs=crs)
        run_firms = run.inputs[0] if run.inputs else None
        if run_firms is not None and run_firms.split("@")[0] != read.info.id:
            raise InvalidInput(
                f"expected a clusters run on {read.info.id}, got {clusters!r} on {run_firms}"
            )
        inputs.append(clusters)
        lab = pd.DataFrame(labels.drop(columns="geometry"))
        if year_col not in lab.columns:
            if "firm_id" not in lab.columns:
                raise MissingColumns(f"expected firm_id in the labels of {clusters!r}")
            lab = lab.merge(pd.DataFrame(frame[["firm_id", year_col]]), on="firm_id", how="left")
        lab["cluster_id"] = pd.to_numeric(lab["cluster_id"], errors="coerce").fillna(-1)
        lab["cluster_id"] = lab["cluster_id"].astype(np.int64)
        in_range = pd.to_numeric(lab[year_col], errors="coerce").fillna(hi) <= hi
        series = founding_series(lab, group="cluster_id", year_col=year_col, years=(lo, hi))
        g, span = _growth_rows(series, growth_years, "cluster_id")
        if len(g):
            g["cluster_id"] = g["cluster_id"].astype(np.int64)
        series = series.rename(columns={"group": "cluster_id"})
        ages = age_structure(
            lab[in_range], group="cluster_id", reference_year=hi, year_col=year_col
        ).reset_index()
        ages = ages.rename(columns={ages.columns[0]: "cluster_id"})
        ages["n_firms"] = ages[[c for c in ages.columns if c[0].isdigit()]].sum(axis=1)
        cbody: dict[str, Any] = {
            "run": clusters,
            "series": None,
            "growth": None,
            "age": None,
            "growth_span": span,
            "emergence": None,
            "emergence_note": None,
        }
        layers["clusters/series"] = Layer("cluster_summary", series, count_col="new_firms")
        layers["clusters/growth"] = Layer("cluster_summary", g, count_col="firms_end")
        layers["clusters/age"] = Layer("cluster_summary", ages, count_col="n_firms")
        if emergence and run.params.get("method") == "dbscan" and not run.params.get("weight"):
            report(0.6, f"emergence: DBSCAN on the firms founded up to each of {hi - lo + 1} years")
            xy = np.column_stack([labels.geometry.x.to_numpy(), labels.geometry.y.to_numpy()])
            em = emergence_of(
                xy,
                pd.to_numeric(lab[year_col], errors="coerce").to_numpy(float),
                eps_m=float(run.params["eps_m"]),
                min_samples=float(run.params["min_samples"]),
                years=(lo, hi),
                labels_now=lab["cluster_id"].to_numpy(np.int64),
                min_overlap=min_overlap,
            )
            layers["clusters/emergence"] = Layer(
                "cluster_summary", em.clusters, count_col="n_firms"
            )
            cbody["emergence_note"] = (
                "survivors only: a cluster whose early firms closed seems to emerge later"
            )
            saved_layers["clusters"] = (
                hulls[["cluster_id", "geometry"]]
                .merge(em.clusters, on="cluster_id", how="inner")
                .merge(g, on="cluster_id", how="left")
            )
            stored["clusters"] = ("cluster_summary", "n_firms")
        else:
            cbody["emergence_note"] = (
                "emergence needs an unweighted DBSCAN run (the re-detection repeats it)"
                if emergence
                else "not asked for"
            )
            saved_layers["clusters"] = hulls[["cluster_id", "n_firms", "geometry"]].merge(
                g, on="cluster_id", how="left"
            )
            stored["clusters"] = ("cluster_summary", "n_firms")
        body["clusters"] = cbody
    params = {
        "firms": firms,
        "clusters": clusters,
        "boundaries": boundaries,
        "year_col": year_col,
        "first_year": lo,
        "last_year": hi,
        "growth_years": growth_years,
        "working_crs": crs,
    }
    report(0.9, "saving the run")
    saved = ws.save_run(
        "dynamics",
        params=jsonable(params),
        inputs=inputs,
        layers=saved_layers,
        summary=stored_kinds(**stored),
    )
    body["params"] = jsonable(params)
    # the first layer is the run's own collection, the others <run_id>.<layer>
    body["collections"] = {
        name: saved.id if i == 0 else f"{saved.id}.{name}" for i, name in enumerate(saved_layers)
    }
    report(1.0, "done")
    return Result(run_id=saved.id, inputs=tuple(inputs), body=body, layers=layers)


# -- SDG view ----------------------------------------------------------------------------------
def run_sdg(ws: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`sdg_result` as its JSON body (no disclosure policy applied)."""
    return sdg_result(ws, **kwargs).to_body()


def sdg_result(
    ws: Any,
    *,
    firms: str,
    boundaries: str,
    level: int | None = None,
    progress: Progress | None = None,
) -> Result:
    """Per-region SDG proxy indicators with their code, definition and source.

    Returns ``regions`` (one row per region: n_firms, employees, each proxy and its gap
    to the national value), ``national``, ``inequality`` (between-region Gini of each)
    and ``indicators`` (SDG code, official name, proxy definition, how it differs,
    source).
    """
    from geocluster.sdg import sdg_view

    report = progress or noop_progress
    read = read_firms(ws, firms, require_selection=False)
    crs = _crs_of(read.all)
    regions, b_info = read_boundaries(ws, boundaries, crs=crs, level=level)
    report(0.3, "joining firms to regions")
    frame = pd.DataFrame(read.all.drop(columns="geometry")).assign(
        region_id=_regions_of(read.all, regions)
    )
    view = sdg_view(frame, region_ids=regions["region_id"].tolist())
    keys = [i.key for i in view.indicators]
    table = view.regions.join(view.gaps.add_suffix("_gap")).reset_index()
    national = view.national.to_dict()
    inequality = view.inequality.reset_index().rename(columns={"index": "indicator"})
    inputs = (read.input, version_of(b_info))
    params = {"firms": firms, "boundaries": boundaries, "level": regions.attrs.get("level")}
    layer = regions[["region_id", "geometry"]].merge(table, on="region_id", how="left")
    saved = ws.save_run(
        "sdg",
        params=jsonable({**params, "working_crs": crs}),
        inputs=list(inputs),
        layers={"regions": layer},
        summary={"indicators": keys, **stored_kinds(regions=("region_table", "n_firms"))},
    )
    report(1.0, "done")
    return Result(
        run_id=saved.id,
        inputs=inputs,
        body={
            "indicators": [i.to_dict() for i in view.indicators],
            "national": jsonable(national),
            "regions": None,
            "inequality": None,
            "params": jsonable(params),
            "collections": {"regions": saved.id},
        },
        layers={
            "regions": Layer("region_table", table, count_col="n_firms"),
            # a Gini and a range over regions of shares: no firm figure
            "inequality": Layer("public", inequality),
        },
    )


# -- support institutions ----------------------------------------------------------------------
def read_institutions(
    ws: Any, institutions: str, *, crs: str | None = "working"
) -> tuple[gpd.GeoDataFrame, Any]:
    """Support institutions (``type`` present, no empty geometry) and the version read."""
    info = ws.require(institutions, "institutions")
    frame = ws.read(institutions, crs=crs)
    if "type" not in frame.columns:
        raise MissingColumns(
            f"expected a 'type' column in institutions {institutions!r}, got "
            f"{[c for c in frame.columns if c != 'geometry']}"
        )
    frame = frame[~frame.geometry.isna() & ~frame.geometry.is_empty].reset_index(drop=True)
    return frame, info


def run_institutions(ws: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`institutions_result` as its JSON body (no disclosure policy applied)."""
    return institutions_result(ws, **kwargs).to_body()


def institutions_result(
    ws: Any,
    *,
    clusters_run: str,
    institutions: str | None = None,
    radius_m: float = 10_000.0,
    progress: Progress | None = None,
) -> Result:
    """Support institutions within ``radius_m`` of each cluster, by type, and the gaps.

    Returns ``clusters`` (per cluster: n_firms, n_institutions, n_<type>, the distance
    to the nearest training centre and association and the gap flags), ``gaps`` (the
    clusters lacking one, naming what is missing) and ``institutions`` (the institutions
    within reach of some cluster, a public layer).
    """
    from geocluster.analyses._inputs import choose_dataset
    from geocluster.assets.institutions import gap_table, institutions_within_reach

    report = progress or noop_progress
    hulls, run = read_clusters_run(ws, clusters_run)
    crs = _crs_of(hulls)
    # without a name, the only institutions dataset that reaches the clusters
    extent = hulls.to_crs("EPSG:4326").total_bounds if len(hulls) else None  # as the catalog
    pad = float(radius_m) / 111_320.0  # the reach, in degrees (generous at any latitude)

    def reaches(d: Any) -> bool:
        b = d.bbox
        if extent is None or not b:
            return False
        return (
            b[0] <= extent[2] + pad * 2
            and b[2] >= extent[0] - pad * 2
            and b[1] <= extent[3] + pad
            and b[3] >= extent[1] - pad
        )

    info = choose_dataset(ws, institutions, "institutions", param="institutions", candidate=reaches)
    inst, info = read_institutions(ws, version_of(info), crs=crs)
    report(0.4, "institutions within reach")
    reach = institutions_within_reach(hulls, inst, radius_m=float(radius_m))
    reach.insert(1, "n_firms", hulls["n_firms"].to_numpy())
    gaps = gap_table(reach).merge(reach[["cluster_id", "n_firms"]], on="cluster_id", how="left")
    near = inst.iloc[0:0]
    if len(hulls) and len(inst):
        zone = hulls.geometry.buffer(float(radius_m)).union_all()
        near = inst[inst.geometry.intersects(zone)]
    keep = [c for c in ("institution_id", "name", "type", "sectors", "geometry") if c in near]
    near = near[keep].reset_index(drop=True)
    inputs = (clusters_run, *run.inputs, version_of(info))
    inputs = tuple(dict.fromkeys(inputs))
    params = {
        "clusters_run": clusters_run,
        "institutions": version_of(info),
        "radius_m": float(radius_m),
        "working_crs": crs,
    }
    saved = ws.save_run(
        "institutions",
        params=jsonable(params),
        inputs=list(inputs),
        layers={"reach": reach, "institutions": near},
        summary={
            "n_gaps": len(gaps),
            **stored_kinds(reach=("cluster_summary", "n_firms"), institutions="public"),
        },
    )
    report(1.0, "done")
    table = pd.DataFrame(reach.drop(columns="geometry"))
    return Result(
        run_id=saved.id,
        inputs=inputs,
        body={
            "radius_m": float(radius_m),
            "n_institutions": len(inst),
            "clusters": None,
            "gaps": None,
            "institutions": None,
            "params": jsonable(params),
            "collections": {"reach": saved.id, "institutions": f"{saved.id}.institutions"},
        },
        layers={
            "clusters": Layer("cluster_summary", table, count_col="n_firms"),
            "gaps": Layer("cluster_summary", gaps, count_col="n_firms"),
            "institutions": Layer("public", near, shape="features"),
        },
    )


def institution_counts(
    ws: Any, clusters: gpd.GeoDataFrame, institutions: str, *, radius_m: float
) -> tuple[np.ndarray, str]:
    """Institutions within ``radius_m`` of each cluster (the ranking's component input)."""
    from geocluster.assets.institutions import institutions_within_reach

    inst, info = read_institutions(ws, institutions, crs=_crs_of(clusters))
    reach = institutions_within_reach(clusters, inst, radius_m=float(radius_m))
    return reach["n_institutions"].to_numpy(float), version_of(info)


def cluster_growth(
    ws: Any, growth_run: str, clusters_run: str, cluster_ids: Any
) -> tuple[np.ndarray, str]:
    """Growth rate of each cluster of ``clusters_run`` from a dynamics or a change run.

    A ``dynamics`` run on ``clusters_run`` gives the CAGR of each cluster's firms over its
    growth span; a ``change`` run whose follow-up is ``clusters_run`` gives the relative
    change in firms between the two versions, over the cluster's group (a cluster that
    merged others is compared with all of them; the parts of a split share their group's
    rate). An appeared cluster, or one the run does not cover, has no rate (NaN).

    Raises
    ------
    InvalidInput
        A run of another kind, or one about another clusters run.
    """
    from geocluster.errors import WrongKind

    run = ws.run(growth_run)
    ids = pd.Series(np.asarray(cluster_ids)).astype(np.int64)
    if run.kind == "dynamics":
        if run.params.get("clusters") != clusters_run:
            raise InvalidInput(
                f"expected a dynamics run on {clusters_run!r}, got {growth_run!r} on "
                f"{run.params.get('clusters')!r}"
            )
        frame = ws.read_run(growth_run, "clusters")
        rate = pd.Series(
            pd.to_numeric(frame["cagr_firms"], errors="coerce").to_numpy(float),
            index=pd.to_numeric(frame["cluster_id"]).astype(np.int64),
        )
    elif run.kind == "change":
        if run.params.get("after") != clusters_run:
            raise InvalidInput(
                f"expected a change run whose follow-up is {clusters_run!r}, got {growth_run!r} "
                f"(follow-up {run.params.get('after')!r})"
            )
        rows = pd.DataFrame(ws.read_run(growth_run, "change"))
        rows = rows[rows["status"] != "appeared"]
        before = rows.drop_duplicates(["group", "before_id"]).groupby("group")["n_firms_before"]
        after = rows.drop_duplicates(["group", "after_id"]).groupby("group")["n_firms_after"]
        group_rate = after.sum(min_count=1) / before.sum(min_count=1) - 1.0
        linked = rows.dropna(subset=["after_id"]).drop_duplicates("after_id")
        rate = pd.Series(
            linked["group"].map(group_rate).to_numpy(float),
            index=pd.to_numeric(linked["after_id"]).astype(np.int64),
        )
    else:
        raise WrongKind(f"expected a dynamics or change run, got {growth_run!r} ({run.kind})")
    return ids.map(rate).to_numpy(float), growth_run
