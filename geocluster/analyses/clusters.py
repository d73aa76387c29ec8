"""Point-cluster analyses of firms (JSON-ready orchestration for the CLI and the API).

- :func:`run_clusters`: DBSCAN / HDBSCAN clusters of firm locations, persisted as a run
  with the layers ``labels`` (primary: one point per firm with its ``cluster_id``) and
  ``clusters`` (one hull polygon per cluster with its summary).
- :func:`run_kdistance`: the k-distance curve and its knee, the suggested ``eps_m``.
- :func:`run_kde`: a kernel density surface of firms written as a COG and registered as a
  raster of kind ``"kde"``.

Each reads the firms in their metric working CRS, selects sectors with
:func:`geocluster.clustering.firms.select_firms`, calls the pure functions of
:mod:`geocluster.clustering` and returns a JSON-serialisable dict.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geocluster.analyses._common import jsonable, noop_progress
from geocluster.analyses._inputs import read_firm_table, sectors_list, version_of
from geocluster.analyses.result import Layer, Result, stored_kinds
from geocluster.clustering._validation import check_min_count, check_positive
from geocluster.clustering.firms import (
    METHODS,
    WEIGHTS,
    FirmTable,
    firm_weights,
    label_firm_table,
)
from geocluster.engine._source import DERIVED_WEIGHT, dataset_files, firm_rows
from geocluster.errors import InvalidInput

__all__ = [
    "clusters_result",
    "kde_result",
    "kdistance_result",
    "run_clusters",
    "run_kde",
    "run_kdistance",
]

Progress = Callable[[float, str], None]
#: Columns the cluster summaries use (others are not read).
_FIRM_COLUMNS = (
    "firm_id", "sector_code", "isic_division", "employees", "founded", "women_led", "youth_led", "informal",
)  # fmt: skip
#: Most points of the k-distance curve returned (the full curve can have millions).
CURVE_POINTS = 1000


def _selected_firms(
    ws: Any,
    firms: str,
    sectors: list[str] | None,
    sector_group: str | None,
    columns: tuple[str, ...] = _FIRM_COLUMNS,
) -> tuple[Any, FirmTable]:
    """(dataset info, selected firms in the working CRS).

    Clusters, k-distance and KDE use the selection only, and its coordinates, never a
    point object per firm (:func:`~geocluster.analyses._inputs.read_firm_table`).
    """
    return read_firm_table(ws, firms, columns=columns, sectors=sectors, sector_group=sector_group)


def _check_weight(weight: str | None) -> None:
    if weight is not None and weight not in WEIGHTS:
        raise InvalidInput(f"expected weight one of {list(WEIGHTS)} or none, got {weight!r}")


def run_clusters(ws: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`clusters_result` as its JSON body (no disclosure policy applied)."""
    return clusters_result(ws, **kwargs).to_body()


def _latest_founding_year(ws: Any, firms: str) -> int | None:
    """The register's own "now": its latest founding year (from storage statistics)."""
    found = ws.column_range(firms, "founded")
    return None if found is None else int(found[1])


def clusters_result(
    ws: Any,
    *,
    firms: str,
    method: str = "dbscan",
    eps_m: float = 1000.0,
    min_samples: int | None = 10,
    min_cluster_size: int = 15,
    sectors: Iterable[str] | None = None,
    sector_group: str | None = None,
    weight: str | None = None,
    by: str | None = None,
    progress: Progress | None = None,
) -> Result:
    """Find density clusters of firms and persist them as a run.

    Parameters
    ----------
    ws : Workspace
        The workspace holding the firms.
    firms : str
        Firms dataset id.
    method : {"dbscan", "hdbscan"}
        Exact grid DBSCAN or HDBSCAN (fast_hdbscan).
    eps_m : float, default 1000
        DBSCAN radius in metres (> 0).
    min_samples : int, default 10
        DBSCAN core threshold (firms, or employees when weighted), itself included;
        HDBSCAN core-distance neighbourhood.
    min_cluster_size : int, default 15
        HDBSCAN's smallest cluster (firms, or employees when weighted).
    sectors : list of str, optional
        ISIC codes (section, division, group or class) to keep.
    sector_group : str, optional
        Sector group name (e.g. ``"agro_food"``).
    weight : {"employees"} or None
        Weight firms by employees (unknown counts as 1).
    by : {"section", "division", "group"}, optional
        A national scan: cluster each sector of that level separately, from one read
        (:func:`geocluster.clustering.scan.cluster_by_sector`); every cluster carries
        its ``sector`` and the body a ``sectors`` table (firms, clusters, noise).
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    Result
        Body ``run_id``, ``n_clusters``, ``noise``, ``n_firms``, ``clusters`` (GeoJSON
        FeatureCollection in lon/lat; each feature has ``cluster_id``, ``n_firms``,
        ``employees``, ``dominant_sector``, ``area_km2``, ``density_per_km2``, the shares
        …), ``params``, ``collections`` (``labels``/``clusters`` collection ids),
        ``working_crs``.
    """
    report = progress or noop_progress
    if method not in METHODS:
        raise InvalidInput(f"expected method one of {list(METHODS)}, got {method!r}")
    if method == "dbscan":
        eps_m = check_positive(eps_m, "eps_m")
        if min_samples is None:
            raise InvalidInput("expected min_samples for DBSCAN, got none")
        min_samples = check_min_count(min_samples, "min_samples", real=weight is not None)
    else:
        min_cluster_size = check_min_count(min_cluster_size, "min_cluster_size", minimum=2)
        if min_samples is not None:
            min_samples = check_min_count(min_samples, "min_samples")
    _check_weight(weight)
    sectors = sectors_list(sectors)
    report(0.05, "reading firms")
    engine = ws.engine() if ws.engine_name != "local" else None
    files = None
    columns = _FIRM_COLUMNS
    if engine is not None and method == "dbscan":
        files = dataset_files(ws, ws.require(firms, "firms"))
        if files is not None:
            # the workers read the firms' attributes and summarise the clusters where
            # the firms are: here only ids, sectors and points (and weights) are needed
            columns = ("firm_id", "sector_code", "isic_division") + (
                ("employees",) if weight else ()
            )
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(2, thread_name_prefix="geocluster-clusters")
    try:
        if method == "dbscan" and files is None:
            # numba's runtime start and the cached kernels load while the firms are
            # read (0.3 s of a national scan otherwise spent before its first sector)
            from geocluster.clustering.dbscan import warm_up

            pool.submit(warm_up)
        info, selected = _selected_firms(ws, firms, sectors, sector_group, columns)
        return _clusters(ws, pool, engine, files, firms, info, selected, method, eps_m,
                         min_samples, min_cluster_size, sectors, sector_group, weight, by,
                         report)  # fmt: skip
    finally:
        pool.shutdown(wait=True)


def _clusters(
    ws, pool, engine, files, firms, info, selected, method, eps_m, min_samples,
    min_cluster_size, sectors, sector_group, weight, by, report,
) -> Result:  # fmt: skip
    """:func:`clusters_result` once the firms are read; ``pool`` runs what can overlap.

    ``engine`` is the workspace's engine other than local (or None) and ``files`` the
    firms' part files the engine's workers read themselves (DBSCAN only, or None).
    """
    # The labels layer's points (each firm's stored lon/lat), ordered and packed for
    # the store while the firms are clustered: the kernels keep one core busy.
    labels_points = pool.submit(_labels_points, ws, selected, by)
    reference_year = _latest_founding_year(ws, firms)
    per_sector = None
    kwargs = dict(
        method=method,
        eps_m=eps_m,
        min_samples=min_samples,
        min_cluster_size=min_cluster_size,
        weight=weight,
        reference_year=reference_year,
        engine=engine,
    )
    if by is not None:
        from geocluster.clustering.scan import label_table_by_sector

        report(0.2, f"clustering {len(selected):,} firms sector by sector ({by}, {method})")
        engine_input = {}
        if kwargs["engine"] is not None:
            if files is not None:
                # sectors in parallel on the workers, each reading its own row groups
                engine_input = {
                    "files": files,
                    "rows": firm_rows(
                        ws, info, sectors=sectors, sector_group=sector_group, weight=weight
                    ),
                }
        result, summarize, per_sector = label_table_by_sector(
            selected,
            level=by,
            progress=lambda f, m: report(0.2 + 0.6 * f, m),
            **engine_input,
            **kwargs,
        )
    else:
        report(0.2, f"clustering {len(selected)} firms ({method})")
        if files is not None:
            # the workers read the selected firms from the files themselves (tiles with
            # eps halos); the labels are of the same rows in the same order, and the
            # clusters are summarised on the workers too
            from geocluster.clustering.firms import summary_options
            from geocluster.clustering.scan import _Computed
            from geocluster.engine._summary import SummarySpec

            found = kwargs["engine"].dbscan(
                files,
                eps_m=eps_m,
                min_samples=min_samples,
                weight=DERIVED_WEIGHT if weight else None,
                filters=firm_rows(
                    ws, info, sectors=sectors, sector_group=sector_group, weight=weight
                ),
                summary=SummarySpec.of(
                    selected.crs,
                    info.columns or [],
                    reference_year=reference_year,
                    **summary_options(method, eps_m),
                ),
            )
            kwargs["engine"] = _Computed(found.labels, found.core, found.clusters)
        result, summarize = label_firm_table(selected, **kwargs)
    report(0.8, "saving the run")
    params = {
        "firms": firms,
        "method": method,
        "eps_m": eps_m if method == "dbscan" else None,
        "min_samples": min_samples,
        "min_cluster_size": min_cluster_size if method == "hdbscan" else None,
        "sectors": sectors,
        "sector_group": sector_group,
        "weight": weight,
        "by": by,
        "engine": ws.engine_name,
        "hull_ratio": result.params.get("hull_ratio"),
        "reference_year": result.params.get("reference_year", reference_year),
        "working_crs": info.working_crs,
    }
    summary = {
        "n_clusters": result.n_clusters,
        "noise": result.noise,
        "n_firms": len(selected),
        "working_crs": info.working_crs,
    }
    inputs = (version_of(info),)
    kinds = {"labels": "firm_points", "clusters": ("cluster_summary", "n_firms")}
    if per_sector is not None:
        kinds["sectors"] = ("region_table", "n_firms")
    # The summaries (mostly hulls, computed with the GIL released) are made while the
    # per-firm labels are stored; the clusters layer is written once they are.
    pending = pool.submit(summarize)
    layers = {"labels": result.labels, "clusters": pending.result}
    if per_sector is not None:
        layers["sectors"] = per_sector
    run = ws.save_run(
        "clusters",
        params=jsonable(params),
        inputs=list(inputs),
        layers=layers,
        summary={**jsonable(summary), **stored_kinds(**kinds)},
        primary="labels",
        points={"labels": result.xy},  # the firms, stored from their coordinates
        points_lonlat={"labels": labels_points.result()},
    )
    clusters = pending.result()
    report(1.0, "done")
    return Result(
        body={
            "n_clusters": result.n_clusters,
            "noise": result.noise,
            "n_firms": len(selected),
            "clusters": None,
            "params": jsonable(params),
            "collections": {"labels": run.id, "clusters": f"{run.id}.clusters"},
            "working_crs": info.working_crs,
        },
        layers={
            **(
                {"sectors": Layer("region_table", per_sector, count_col="n_firms")}
                if per_sector is not None
                else {}
            ),
            "clusters": Layer(
                "cluster_summary",
                clusters,
                shape="features",
                count_col="n_firms",
                json_columns=("sector_mix",),
            ),
        },
        inputs=inputs,
        run_id=run.id,
    )


def _labels_points(ws: Any, selected: FirmTable, by: str | None = None) -> Any:
    """The per-firm labels layer's points as :meth:`Store.point_layout` makes them.

    Each firm's stored lon/lat where the store keeps it, else its working
    coordinates transformed back; with the firm ids, the one column of the layer
    known before the clustering. Labels are ordered by sector (a national scan's
    level, else the ISIC division), then along the Hilbert curve, as the register is
    stored: one sector's labels are their own row groups, and firms read from the
    store are in that order already (nothing to sort or gather: 5M labels 2 s sooner,
    300 MB less).
    """
    import pandas as pd

    from geocluster.clustering.firms import text_values
    from geocluster.workspace import storage_lonlat

    lonlat = selected.stored_lonlat() if selected.stored_lonlat is not None else None
    if lonlat is None:
        lonlat = storage_lonlat(selected.xy, selected.crs)
    ids = pd.DataFrame({"firm_id": text_values(selected.attrs["firm_id"])})
    codes = None
    level = by if by is not None else "division"
    if by is not None or "isic_division" in selected.attrs.columns:
        from geocluster.clustering.scan import sector_key

        codes, _ = pd.factorize(sector_key(selected.attrs, level).fillna(""), sort=True)
    return ws.store.point_layout(
        *lonlat, working_xy=(selected.xy[:, 0], selected.xy[:, 1]), columns=ids,
        sort_codes=codes,
    )  # fmt: skip


def run_kdistance(ws: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`kdistance_result` as its JSON body."""
    return kdistance_result(ws, **kwargs).to_body()


def kdistance_result(
    ws: Any,
    *,
    firms: str,
    k: int = 10,
    sectors: Iterable[str] | None = None,
    sector_group: str | None = None,
    progress: Progress | None = None,
) -> Result:
    """k-distance curve of firms and its knee (the suggested DBSCAN ``eps_m``).

    Parameters
    ----------
    ws : Workspace
        The workspace.
    firms : str
        Firms dataset id.
    k : int, default 10
        Neighbour rank, the firm itself counted (use DBSCAN's ``min_samples``).
    sectors, sector_group : optional
        Sector selection as in :func:`run_clusters`.

    Returns
    -------
    dict
        ``run_id``, ``k``, ``n_firms``, ``knee_index``, ``knee_m`` (= ``suggested_eps_m``),
        ``curve``: ``{"rank": [...], "distance_m": [...]}`` sampled at most
        ``CURVE_POINTS`` points (first, last and the knee included); the full curve is
        the run's layer ``curve``.
    """
    from geocluster.clustering.kdistance import k_distance

    k = check_min_count(k, "k")
    sectors = sectors_list(sectors)
    info, selected = _selected_firms(ws, firms, sectors, sector_group)
    kd = k_distance(selected.xy, k)
    n = kd.distances_m.size
    idx = np.unique(
        np.concatenate(
            [np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int), [kd.knee_index]]
        )
    )
    params = {
        "firms": firms,
        "k": k,
        "sectors": sectors,
        "sector_group": sector_group,
        "working_crs": info.working_crs,
    }
    summary = {"n_firms": n, "knee_index": kd.knee_index, "knee_m": kd.knee_m, "k": k}
    inputs = (version_of(info),)
    run = ws.save_run(
        "kdistance",
        params=jsonable(params),
        inputs=list(inputs),
        layers={"curve": pd.DataFrame({"rank": np.arange(n), "distance_m": kd.distances_m})},
        summary={**jsonable(summary), **stored_kinds(curve="public")},
    )
    # a sorted curve of distances carries no location: public
    return Result(
        inputs=inputs,
        run_id=run.id,
        body=jsonable(
            {
                "k": k,
                "n_firms": n,
                "knee_index": kd.knee_index,
                "knee_m": kd.knee_m,
                "suggested_eps_m": kd.knee_m,
                "curve": {"rank": idx.tolist(), "distance_m": kd.distances_m[idx].tolist()},
                "params": params,
            }
        ),
    )


def _parse_bandwidth(bandwidth: str | float) -> str | float:
    if isinstance(bandwidth, str):
        text = bandwidth.strip().lower()
        if text in ("scott", "silverman"):
            return text
        try:
            return check_positive(float(text), "bandwidth (metres)")
        except ValueError:
            raise InvalidInput(
                f"expected bandwidth 'scott', 'silverman' or metres > 0, got {bandwidth!r}"
            ) from None
    return check_positive(bandwidth, "bandwidth (metres)")


def run_kde(ws: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`kde_result` as its JSON body."""
    return kde_result(ws, **kwargs).to_body()


def kde_result(
    ws: Any,
    *,
    firms: str,
    bandwidth: str | float = "scott",
    cell_m: float | None = None,
    grid_size: int | None = None,
    weight: str | None = None,
    sectors: Iterable[str] | None = None,
    sector_group: str | None = None,
    progress: Progress | None = None,
    engine=None,
) -> Result:
    """Kernel density surface of firms, stored as a COG raster of kind ``"kde"``.

    Parameters
    ----------
    ws : Workspace
        The workspace.
    firms : str
        Firms dataset id.
    bandwidth : {"scott", "silverman"} or float
        Gaussian kernel standard deviation: a rule or metres.
    cell_m : float, optional
        Cell side in metres (default ``max(h / 8, longer side / 2048)``).
    grid_size : int, optional
        Cells along the longer side (instead of ``cell_m``).
    weight : {"employees"} or None
        Weight firms by employees (unknown counts as 1).
    sectors, sector_group : optional
        Sector selection as in :func:`run_clusters`.
    progress : callable, optional
        ``progress(fraction, message)``.
    engine : Engine, optional
        ``--engine dask``: the workers read the register's files, keep the selected
        firms and sum their per-piece grids; the surface equals the in-process one to
        float rounding (the bandwidth rule's sums are reduced too).

    Returns
    -------
    dict
        ``raster_id``, ``units`` (``"per_km2"``: firms, or employees when weighted, per
        km^2), ``bandwidth_m``, ``cell_m``, ``width``, ``height``, ``crs`` (working CRS),
        ``bbox`` (lon/lat), ``max_density``, ``n_firms``, ``total_weight``, ``params``.
    """
    from geocluster.clustering.kde import kde_grid

    report = progress or noop_progress
    bw = _parse_bandwidth(bandwidth)
    if cell_m is not None:
        cell_m = check_positive(cell_m, "cell_m")
    if grid_size is not None:
        grid_size = check_min_count(grid_size, "grid_size", minimum=2)
    _check_weight(weight)
    sectors = sectors_list(sectors)
    report(0.05, "reading firms")
    f_info = ws.require(firms, "firms")
    files = dataset_files(ws, f_info) if engine is not None else None
    if files is None:
        info, selected = _selected_firms(ws, firms, sectors, sector_group)
        xy = selected.xy
        w = firm_weights(selected.attrs, weight)
        report(0.3, f"density of {len(selected)} firms")
        grid = kde_grid(xy, bandwidth=bw, weights=w, cell_m=cell_m, grid_size=grid_size)
    else:
        # --engine dask: the workers read the register's files, select the firms and
        # sum their per-piece grids (the estimator is a sum over points)
        info = f_info
        rows = firm_rows(ws, info, sectors=sectors, sector_group=sector_group, weight=weight)
        report(0.3, "density on the engine's workers")
        grid = engine.kde_grid(
            files,
            bandwidth_m=bw,
            cell_m=cell_m,
            grid_size=grid_size,
            weight=DERIVED_WEIGHT if weight else None,
            filters=rows,
        )
    params = {
        "firms": firms,
        "bandwidth": bandwidth if isinstance(bw, str) else bw,
        "cell_m": cell_m,
        "grid_size": grid_size,
        "weight": weight,
        "sectors": sectors,
        "sector_group": sector_group,
    }
    meta = jsonable(
        {
            **params,
            "bandwidth_m": grid.bandwidth_m,
            "cell_m_used": grid.cell_m,
            "units": grid.units,
            "n_firms": grid.n_points,
            "total_weight": grid.total_weight,
            "working_crs": info.working_crs,
            "max_density": float(grid.density.max()),
        }
    )
    name_parts = ["kde", firms]
    if sectors:
        name_parts.append("-".join(sectors))
    if sector_group:
        name_parts.append(sector_group)
    if weight:
        name_parts.append(weight)
    report(0.7, "writing the raster")
    from geocluster.io.raster import write_cog

    with tempfile.TemporaryDirectory(prefix="geocluster-kde-") as tmp:
        path = Path(tmp) / "kde.tif"
        # float32 keeps 7 significant digits, plenty for a smoothed surface; -1 marks
        # no data (a density is never negative, so no cell uses it).
        write_cog(
            path,
            grid.density.astype(np.float32),
            transform=grid.transform,
            crs=info.working_crs,
            nodata=-1.0,
        )
        raster = ws.add_raster(path, name="-".join(name_parts), kind="kde", meta=meta)
    report(1.0, "done")
    # the figures of the surface itself, merged into the body ("*") after disclosure
    surface = pd.DataFrame(
        {
            "max_density": [float(grid.density.max())],
            "n_firms": [grid.n_points],
            "total_weight": [grid.total_weight],
        }
    )
    return Result(
        inputs=(version_of(info),),
        layers={"*": Layer("surface", surface, shape="row", count_col="n_firms")},
        body=jsonable(
            {
                "raster_id": raster.id,
                "units": grid.units,
                "bandwidth_m": grid.bandwidth_m,
                "cell_m": grid.cell_m,
                "width": int(grid.density.shape[1]),
                "height": int(grid.density.shape[0]),
                "crs": info.working_crs,
                "bbox": raster.bbox,
                "params": params,
            }
        ),
    )
