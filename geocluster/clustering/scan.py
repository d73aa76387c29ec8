"""A national scan: clusters of each sector separately, from one read of the register.

Cluster mapping programmes (US CMP, the European Cluster Observatory, India's MSE-CDP)
look for concentrations sector by sector: footwear workshops next to a tannery are one
cluster of footwear, not a mixed blob. :func:`cluster_by_sector` runs the same exact
DBSCAN (or HDBSCAN) on each sector's firms and concatenates the results with globally
unique cluster ids and a ``sector`` column.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd

from geocluster.clustering.firms import (
    HULL_RATIO,
    METHODS,
    FirmClusters,
    FirmTable,
    _check_computed,
    _fit_labels,
    _hull_options,
    _summarize,
    firm_weights,
    latest_founded,
    resolve_reference_year,
    summary_options,
    text_values,
)
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
    (``clusters``), which the clustering then takes as it is.
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
    _sectors(firms, level)  # errors in the order they always came: sectors first
    result, per_sector = cluster_table_by_sector(
        FirmTable.from_frame(firms),
        level=level,
        progress=progress,
        files=files,
        rows=rows,
        **cluster_kwargs,
    )
    labels = result.labels
    label_frame = gpd.GeoDataFrame(
        {c: labels[c].array for c in labels.columns},
        geometry=firms.geometry.to_numpy(),
        crs=firms.crs,
    )
    return dataclasses.replace(result, labels=label_frame, xy=None), per_sector


def cluster_table_by_sector(
    table: FirmTable,
    *,
    level: str = "division",
    progress: Callable[[float, str], None] | None = None,
    files: list[str] | None = None,
    rows=None,
    **cluster_kwargs,
) -> tuple[FirmClusters, pd.DataFrame]:
    """:func:`cluster_by_sector` of a :class:`FirmTable` (labels without geometry).

    Each sector's labels come from its own clustering; the summaries of every sector's
    clusters are then made in one pass (one set of hulls over all cores), each cluster
    from its own firms only, so they equal the per-sector summaries (tested).
    """
    result, summarize, per_sector = label_table_by_sector(
        table, level=level, progress=progress, files=files, rows=rows, **cluster_kwargs
    )
    return dataclasses.replace(result, clusters=summarize()), per_sector


def label_table_by_sector(
    table: FirmTable,
    *,
    level: str = "division",
    progress: Callable[[float, str], None] | None = None,
    files: list[str] | None = None,
    rows=None,
    **cluster_kwargs,
) -> tuple[FirmClusters, Callable[[], gpd.GeoDataFrame], pd.DataFrame]:
    """:func:`cluster_table_by_sector` in two steps: the labels now, the summaries later.

    As :func:`~geocluster.clustering.firms.label_firm_table`: the result without its
    ``clusters``, a function of no argument returning them, and the sectors table.
    """
    report = progress or (lambda fraction, message: None)
    attrs = table.attrs
    keys, sectors = _sectors(attrs, level)
    kw = dict(cluster_kwargs)
    method = kw.pop("method", "dbscan")
    if method not in METHODS:
        raise InvalidInput(f"expected method one of {list(METHODS)}, got {method!r}")
    eps_m = kw.pop("eps_m", 1000.0)
    min_samples = kw.pop("min_samples", 10)
    min_cluster_size = kw.pop("min_cluster_size", 15)
    weight = kw.pop("weight", None)
    hull_ratio = kw.pop("hull_ratio", HULL_RATIO)
    buffer_m = kw.pop("buffer_m", None)
    reference_year = kw.pop("reference_year", None)
    engine = kw.pop("engine", None)
    if kw:
        raise TypeError(f"unexpected keyword arguments {sorted(kw)}")
    n = len(table)
    # One stable sort by sector (none for a register read from the store, whose rows
    # are stored division by division), then every sector is a contiguous slice: no
    # per-sector gather of every column. Sorted as the rank of each firm's sector among
    # the sorted distinct codes (the order of sorting the codes as text), never as 5M
    # Python strings.
    ranks, distinct = pd.factorize(keys.fillna(""), sort=True)
    ranks = ranks.astype(np.int16 if len(distinct) < 2**15 else np.int64)
    if n and (np.diff(ranks) < 0).any():
        order = np.argsort(ranks, kind="stable")
        sorted_table = table.take(order)
        ranks = ranks[order]
    else:
        order = None
        sorted_table = table
    sector_ranks = np.searchsorted(np.asarray(distinct, dtype=object), sectors)
    starts = np.searchsorted(ranks, sector_ranks, side="left")
    stops = np.searchsorted(ranks, sector_ranks, side="right")
    computed = None
    if engine is not None and files and method == "dbscan":
        computed = _labels_on_workers(
            engine, files, rows, level, sectors, sorted_table, starts, stops,
            dict(eps_m=eps_m, min_samples=min_samples, weight=weight, hull_ratio=hull_ratio,
                 buffer_m=buffer_m, reference_year=reference_year),
            report,
        )  # fmt: skip
    xy, sorted_attrs = sorted_table.xy, sorted_table.attrs
    labels = np.full(n, -1, dtype=np.int64)
    core = np.zeros(n, dtype=bool)
    per_sector = []
    counts = []  # clusters of each sector
    # each sector's reference year per firm, for the pooled summary (none when the
    # workers summarised each sector)
    years = None if reference_year is not None or computed is not None else np.zeros(n)
    sector_years = []
    given = []  # the workers' summary of each sector
    offset = 0
    params = None
    if "firm_id" not in sorted_attrs.columns:
        raise InvalidInput(f"expected a firm_id column, got columns {list(sorted_attrs.columns)}")

    def fit(i: int):
        start, stop = starts[i], stops[i]
        sector_engine = engine
        if computed is not None:
            sector_engine = _Computed(*computed[sectors[i]])
        return _fit_labels(
            xy[start:stop],
            firm_weights(sorted_attrs.iloc[start:stop], weight),
            method=method,
            eps_m=eps_m,
            min_samples=min_samples,
            min_cluster_size=min_cluster_size,
            engine=sector_engine,
        )

    local = method == "dbscan" and engine is None
    fits = _fit_sectors(fit, sectors, stops - starts, parallel=local, report=report)
    for i, (sector, start, stop) in enumerate(zip(sectors, starts, stops, strict=True)):
        part = sorted_attrs.iloc[start:stop]
        sub_labels, sub_core, params, sub_clusters = fits(i)
        k = int(sub_labels.max()) + 1 if (sub_labels >= 0).any() else 0
        labels[start:stop] = np.where(sub_labels >= 0, sub_labels + offset, -1)
        core[start:stop] = sub_core
        if sub_clusters is not None:  # made on the workers from the sector's firms
            _check_computed(sub_clusters, k)
            given.append(sub_clusters)
            sector_years.append(sub_clusters.attrs.get("reference_year") if k else None)
        elif years is not None:
            # each sector's own "now", as when it is summarised alone
            years[start:stop] = resolve_reference_year(latest_founded(part))
            sector_years.append(int(years[start]) if k else None)
        else:
            sector_years.append(int(reference_year) if k else None)
        counts.append(k)
        per_sector.append(
            {
                "sector": sector,
                "n_firms": int(stop - start),
                "n_clusters": k,
                "noise": int((sub_labels < 0).sum()),
            }
        )
        offset += k
    params = {**params, "weight": weight, "hull_ratio": hull_ratio}
    params["reference_year"] = sector_years[-1]
    options = summary_options(method, eps_m, hull_ratio=hull_ratio, buffer_m=buffer_m)
    _hull_options(**options)  # as each sector's summary checked them
    crs = table.crs
    pooled = len(given) != len(sectors)

    def summarize() -> gpd.GeoDataFrame:
        if not offset:
            return gpd.GeoDataFrame({"cluster_id": [], "sector": []}, geometry=[], crs=crs)
        if pooled:
            summary = _summarize(
                sorted_table,
                sorted_labels,
                is_core=sorted_core,
                reference_year=reference_year,
                reference_years=years,
                **options,
            )
        else:  # the workers' tables, renumbered after the sectors before
            summary = gpd.GeoDataFrame(
                pd.concat([g for g in given if len(g)], ignore_index=True), crs=crs
            )
            summary["cluster_id"] += np.repeat(np.cumsum([0, *counts[:-1]]), counts)
        summary.insert(1, "sector", np.repeat(np.asarray(sectors, dtype=object), counts))
        summary.attrs = {}
        used = {y for y in sector_years if y is not None}
        if len(used) == 1:  # what concatenating per-sector summaries keeps
            summary.attrs["reference_year"] = used.pop()
        return summary

    sorted_labels, sorted_core = labels, core
    if order is not None:  # back to the caller's row order
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.arange(n)
        labels, core = labels[inverse], core[inverse]
    report(1.0, f"{len(sectors)} sectors scanned")
    label_frame = pd.DataFrame(
        {
            "firm_id": text_values(attrs["firm_id"]),
            "sector": keys.array,
            "cluster_id": labels,
            "is_core": core,
        }
    )
    result = FirmClusters(
        labels=label_frame,
        clusters=None,
        n_clusters=offset,
        noise=int((labels < 0).sum()),
        params={**params, "by": level},
        xy=table.xy,
    )
    return result, summarize, pd.DataFrame(per_sector)


#: Sectors are clustered on threads once the firms to cluster are this many.
PARALLEL_SECTORS_MIN_FIRMS = 200_000


def _fit_sectors(fit, sectors, sizes, *, parallel: bool, report):
    """``fits(i)``: sector ``i``'s clustering, each computed once, with progress.

    The local DBSCAN kernels release the GIL: with ``parallel``, sectors are
    clustered on every core, largest first, and each is reported as it finishes
    (HDBSCAN's numba-parallel kernels and engines run one sector at a time). An error
    is the first failing sector's in code order, as when clustered one by one.
    """
    total = len(sectors)
    workers = min(os.cpu_count() or 1, 8, total)
    if not parallel or workers < 2 or int(np.sum(sizes)) < PARALLEL_SECTORS_MIN_FIRMS:

        def one_by_one(i: int):
            report(i / total, f"sector {sectors[i]} ({i + 1}/{total})")
            return fit(i)

        return one_by_one
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(workers, thread_name_prefix="geocluster-sectors") as pool:
        futures = {pool.submit(fit, int(i)): int(i) for i in np.argsort(-np.asarray(sizes))}
        done = 0
        for future in as_completed(futures):
            done += 1
            i = futures[future]
            report(done / total, f"sector {sectors[i]} done ({done}/{total})")
    by_sector = {i: future for future, i in futures.items()}
    for i in range(total):  # every sector ran: the first failure in code order
        error = by_sector[i].exception()
        if error is not None:
            raise error
    return lambda i: by_sector[i].result()


def _sectors(firms: pd.DataFrame, level: str) -> tuple[pd.Series, list[str]]:
    """The sector of each firm at ``level`` and the sectors present, in code order."""
    keys = sector_key(firms, level)
    known = keys.notna() & (keys != "")
    sectors = sorted(keys[known].unique())
    if not sectors:
        raise InvalidInput(f"no firm has a sector code at {level} level")
    return keys, sectors


def _labels_on_workers(engine, files, rows, level, sectors, table, starts, stops, kw, report):
    """``{sector: (labels, core, clusters)}`` from ``engine.map_sectors``, checked.

    ``table`` is the :class:`FirmTable` of the firms sorted by sector (``starts``,
    ``stops`` its sectors' rows); the workers' rows must be its rows.
    """
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
        table.crs,
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
    ids = table.attrs["firm_id"].astype("str").to_numpy(dtype=object)
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
