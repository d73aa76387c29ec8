"""A national scan: clusters of each sector separately, from one read of the register.

Cluster mapping programmes (US CMP, the European Cluster Observatory, India's MSE-CDP)
look for concentrations sector by sector: footwear workshops next to a tannery are one
cluster of footwear, not a mixed blob. :func:`cluster_by_sector` runs the same exact
DBSCAN (or HDBSCAN) on each sector's firms and concatenates the results with globally
unique cluster ids and a ``sector`` column.
"""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd

from geocluster.clustering.firms import FirmClusters, cluster_firms, text_values
from geocluster.errors import InvalidInput

#: Sector levels of ISIC Rev.4 and the canonical firm column holding each.
LEVELS = {"section": "isic_section", "division": "isic_division", "group": None}


def sector_key(firms: pd.DataFrame, level: str) -> pd.Series:
    """The sector of each firm at ``level`` (section letter, 2- or 3-digit code)."""
    if level not in LEVELS:
        raise InvalidInput(f"expected --by one of {', '.join(LEVELS)}, got {level!r}")
    column = LEVELS[level]
    if column is not None and column in firms.columns:
        return firms[column].astype("string")
    if "sector_code" not in firms.columns:
        raise InvalidInput("the firms have no sector_code column to scan by sector")
    codes = firms["sector_code"].astype("string")
    if level == "group":
        # A 3-digit group needs a code at group or class detail; divisions stay unknown.
        return codes.where(codes.str.len() >= 3).str.slice(0, 3)
    if level == "division":
        return codes.str.slice(0, 2)
    from geocluster.sectors import section_of

    return section_of(codes).astype("string")


class _Computed:
    """An engine stand-in: ``dbscan`` returns labels computed beforehand.

    The workers of a national scan computed them, and with them each cluster's summary
    (``clusters``), which :func:`cluster_firms` then takes as it is.
    """

    def __init__(self, labels: np.ndarray, core: np.ndarray, clusters=None) -> None:
        self.labels, self.core, self.clusters = labels, core, clusters

    def dbscan(self, table, **_):
        from geocluster.engine import DBSCANResult, EngineError

        if table.num_rows != len(self.labels):  # a bug, never input
            raise EngineError("the workers clustered other firms than this sector's")
        return DBSCANResult(labels=self.labels, core=self.core, clusters=self.clusters)


def cluster_by_sector(
    firms: gpd.GeoDataFrame,
    *,
    level: str = "division",
    progress: Callable[[float, str], None] | None = None,
    files: list[str] | None = None,
    rows=None,
    **cluster_kwargs,
) -> tuple[FirmClusters, pd.DataFrame]:
    """Cluster each sector of ``level`` separately.

    Parameters
    ----------
    firms : GeoDataFrame
        Firms in a projected CRS in metres (all sectors).
    level : {"section", "division", "group"}
    progress : callable(fraction, message), optional
        Called once per sector.
    files, rows : optional
        With an ``engine`` among ``cluster_kwargs`` and DBSCAN: the register's part files
        and the selection (:class:`geocluster.engine._source.FirmRows`) that gave
        ``firms``. Every sector is then one task of ``engine.map_sectors`` (in parallel
        on a Dask cluster) that reads that sector's row groups from the files itself and
        returns its labels and its clusters' summary table, made there from the
        sector's firms (so ``firms`` needs no summary column: ``firm_id``, the sector
        columns and the points); the labels are checked to belong to the very firms of
        ``firms`` (same ids, same order).
    **cluster_kwargs
        Passed to :func:`~geocluster.clustering.firms.cluster_firms` (method, eps_m,
        min_samples, …); the same parameters for every sector.

    Returns
    -------
    FirmClusters
        Labels of every firm (noise ``-1``, firms without a sector at that level too)
        and one summary row per cluster, each with its ``sector``; cluster ids are
        unique across sectors, numbered sector by sector in code order.
    DataFrame
        One row per sector: ``sector``, ``n_firms``, ``n_clusters``, ``noise``.
    """
    report = progress or (lambda fraction, message: None)
    keys = sector_key(firms, level)
    known = keys.notna() & (keys != "")
    sectors = sorted(keys[known].unique())
    if not sectors:
        raise InvalidInput(f"no firm has a sector code at {level} level")
    n = len(firms)
    labels = np.full(n, -1, dtype=np.int64)
    core = np.zeros(n, dtype=bool)
    summaries, per_sector = [], []
    offset = 0
    params = None
    # One stable sort by sector (a no-op for a register read from the store, whose rows
    # are stored division by division), then every sector is a contiguous slice: no
    # per-sector gather of every column.
    key_values = keys.fillna("").to_numpy(dtype=object)
    order = np.argsort(key_values, kind="stable")
    if not np.array_equal(order, np.arange(n)):
        firms = firms.iloc[order]
        key_values = key_values[order]
    else:
        order = None
    starts = np.searchsorted(key_values, sectors, side="left")
    stops = np.searchsorted(key_values, sectors, side="right")
    computed = None
    engine = cluster_kwargs.get("engine")
    if engine is not None and files and cluster_kwargs.get("method", "dbscan") == "dbscan":
        computed = _labels_on_workers(
            engine, files, rows, level, sectors, firms, starts, stops, cluster_kwargs, report
        )
    for i, (sector, start, stop) in enumerate(zip(sectors, starts, stops, strict=True)):
        report(i / len(sectors), f"sector {sector} ({i + 1}/{len(sectors)})")
        subset = firms.iloc[start:stop]
        kwargs = cluster_kwargs
        if computed is not None:
            kwargs = {**cluster_kwargs, "engine": _Computed(*computed[sector])}
        result = cluster_firms(subset, **kwargs)
        params = result.params
        sub_labels = result.labels["cluster_id"].to_numpy()
        labels[start:stop] = np.where(sub_labels >= 0, sub_labels + offset, -1)
        core[start:stop] = result.labels["is_core"].to_numpy()
        if result.n_clusters:
            summary = result.clusters.copy()
            summary["cluster_id"] = summary["cluster_id"].astype(np.int64) + offset
            summary.insert(1, "sector", sector)
            summaries.append(summary)
        per_sector.append(
            {
                "sector": sector,
                "n_firms": int(stop - start),
                "n_clusters": result.n_clusters,
                "noise": result.noise,
            }
        )
        offset += result.n_clusters
    if order is not None:  # back to the caller's row order
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.arange(n)
        labels, core = labels[inverse], core[inverse]
        firms = firms.iloc[inverse]
    report(1.0, f"{len(sectors)} sectors scanned")
    crs = firms.crs
    if summaries:
        clusters = gpd.GeoDataFrame(pd.concat(summaries, ignore_index=True), crs=crs)
    else:
        clusters = gpd.GeoDataFrame({"cluster_id": [], "sector": []}, geometry=[], crs=crs)
    label_frame = gpd.GeoDataFrame(
        {
            "firm_id": text_values(firms["firm_id"]),
            "sector": keys.array,
            "cluster_id": labels,
            "is_core": core,
        },
        geometry=firms.geometry.to_numpy(),
        crs=crs,
    )
    result = FirmClusters(
        labels=label_frame,
        clusters=clusters,
        n_clusters=offset,
        noise=int((labels < 0).sum()),
        params={**(params or {}), "by": level},
    )
    return result, pd.DataFrame(per_sector)


def _labels_on_workers(engine, files, rows, level, sectors, firms, starts, stops, kw, report):
    """``{sector: (labels, core, clusters)}`` from ``engine.map_sectors``, checked."""
    import dataclasses
    import functools

    import pyarrow.parquet as pq

    from geocluster.clustering.firms import HULL_RATIO, summary_options
    from geocluster.engine import EngineError
    from geocluster.engine._source import sector_dbscan
    from geocluster.engine._summary import SummarySpec

    report(0.0, f"clustering {len(sectors)} sectors on the engine's workers")
    eps_m = kw.get("eps_m", 1000.0)
    options = summary_options(
        "dbscan", eps_m, hull_ratio=kw.get("hull_ratio", HULL_RATIO), buffer_m=kw.get("buffer_m")
    )
    summary = SummarySpec.of(
        firms.crs,
        pq.read_schema(files[0]).names,
        reference_year=kw.get("reference_year"),
        **options,
    )
    task = functools.partial(
        sector_dbscan,
        list(files),
        dataclasses.replace(rows, key=(level, "")),
        eps_m=eps_m,
        min_samples=kw.get("min_samples", 10),
        weight=kw.get("weight"),
        summary=summary,
    )
    got = engine.map_sectors(task, sectors)
    ids = firms["firm_id"].astype("str").to_numpy(dtype=object)
    out = {}
    for sector, start, stop in zip(sectors, starts, stops, strict=True):
        sector_ids, labels, core, clusters = got[sector]
        if len(sector_ids) != stop - start or not np.array_equal(sector_ids, ids[start:stop]):
            raise EngineError(
                f"the workers read other firms for sector {sector} than this analysis "
                "selected (did the dataset change during the run?); no result was produced"
            )
        out[sector] = (labels, core, clusters)
    return out
