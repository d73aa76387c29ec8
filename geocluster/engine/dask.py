"""The Dask engine: the same analyses across the workers of a ``distributed`` cluster.

Workers read the Parquet files themselves (they need the package and read access to the
workspace folder); the client sends only file names, row-group numbers and parameters,
and receives reduced results. An in-memory table is sent to the workers instead.

Fault tolerance: every task is a pure function of files that never change (dataset
versions are immutable), so when a worker dies the scheduler simply runs its tasks again
elsewhere. A task that keeps killing workers ends the computation with
:class:`geocluster.engine.EngineError` -- there is never a partial result.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from geocluster.engine import DBSCANResult, EngineError
from geocluster.engine import _dbscan_tiles as tiles
from geocluster.engine._ops import (
    bandwidth_from_moments,
    finish_counts,
    finish_kde,
    kde_bounds,
    piece_bounds,
    piece_counts,
    piece_kde,
    piece_moments,
    reduce_bounds,
    reduce_counts,
    reduce_kde,
    weights_of,
)
from geocluster.engine._source import Piece, as_source, read_piece, xy
from geocluster.engine.local import _check_regions, _grid
from geocluster.errors import InvalidInput

__all__ = ["DaskEngine"]

#: Points sampled in total to plan the DBSCAN tiles.
SAMPLE_POINTS = 200_000


def _hooked(hook, kind, fn, *args, **kwargs):
    if hook is not None:
        hook(kind)
    return fn(*args, **kwargs)


def _sample_task(table, piece: Piece, x, y, filters, step):
    gid, t = read_piece(table, piece, [x, y], filters)
    X = xy(t, x, y)
    # Every point is checked here, not only the sample: a NaN would be owned by no tile.
    return len(gid), X[::step].copy(), int((~np.isfinite(X)).any(axis=1).sum())


def _tile_task(table, pieces, x, y, weight, filters, tile, eps, min_samples, summary=None):
    """Read the points within the halo of ``tile`` and run the tile DBSCAN on them.

    With ``summary`` (a :class:`SummarySpec`) the owned points' summary columns are
    read too and stay in the result (``frame``, ``xy``), on this worker.
    """
    _, read_box = tiles.halo_boxes(tile, eps)
    cols = [x, y] + ([weight] if weight else [])
    if summary is not None:
        cols += [c for c in summary.columns if c not in cols]
    gids, Xs, ws, rows = [], [], [], []
    for p in pieces:
        gid, t = read_piece(table, p, cols, filters)
        X = xy(t, x, y)
        keep = tiles.in_box(X, read_box)
        gids.append(gid[keep])
        Xs.append(X[keep])
        if weight:
            ws.append(np.asarray(t[weight].to_numpy(zero_copy_only=False), float)[keep])
        if summary is not None:
            rows.append(t.filter(pa.array(keep)))
    if not gids:
        gid = np.zeros(0, np.int64)
        X = np.zeros((0, 2))
        w = None
    else:
        gid = np.concatenate(gids)
        X = np.concatenate(Xs)
        w = np.concatenate(ws) if weight else None
    # Pieces are in source order and each keeps row order: gid is ascending already,
    # which is what makes local index ties equal global row ties.
    res = tiles.run_tile(gid, X, w, tile, eps, min_samples)
    if summary is not None:
        res = _keep_rows(res, pa.concat_tables(rows) if rows else None, X, tile, summary, x, y)
    return res


def _tile_task_arrays(gid, X, w, tile, eps, min_samples, rows=None, summary=None, x="x", y="y"):
    res = tiles.run_tile(gid, X, w, tile, eps, min_samples)
    if summary is not None:
        res = _keep_rows(res, rows, X, tile, summary, x, y)
    return res


def _keep_rows(res: dict, rows, X, tile, summary, x, y) -> dict:
    """A tile result with its owned points' attributes (as the workspace reads them)."""
    from geocluster.clustering.firms import latest_founded
    from geocluster.engine._summary import firm_frame

    owned = tiles.in_box(X, tile, half_open=True)
    if rows is None:
        frame, P = pd.DataFrame(), np.zeros((0, 2))
    else:
        frame, P = firm_frame(rows.filter(pa.array(owned)), summary, x=x, y=y)
    return {**res, "frame": frame, "xy": P, "latest": latest_founded(frame)}


def _labels_only(res: dict) -> dict:
    """What the client needs of a tile result: labels and links, no attributes."""
    return {k: v for k, v in res.items() if k not in ("frame", "xy")}


def _tile_parts(res: dict, label_map, reference_year, bucket_of, n_buckets):
    """A tile's per-cluster sums and its clustered points split by hull bucket."""
    from geocluster.clustering.firms import cluster_parts

    local = res["label"]
    glob = np.full(local.shape, -1, np.int64)
    glob[local >= 0] = label_map[local[local >= 0]]
    parts = cluster_parts(
        res["frame"], res["xy"], glob, is_core=res["core"], reference_year=reference_year
    )
    m = glob >= 0
    gid, lab, P = res["gid"][m], glob[m], res["xy"][m]
    b = bucket_of[lab]
    order = np.argsort(b, kind="stable")  # keeps row order within a bucket
    cut = np.searchsorted(b[order], np.arange(n_buckets + 1))
    pieces = []
    for j in range(n_buckets):
        o = order[cut[j] : cut[j + 1]]
        pieces.append((gid[o], lab[o], P[o]))
    return parts, pieces


def _parts_of(tile_parts):
    return tile_parts[0]


def _bucket_of(tile_parts, j: int):
    return tile_parts[1][j]


class DaskEngine:
    """Run the analyses on a Dask cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``). None: start a
        ``distributed.LocalCluster`` of worker *processes* listening on loopback only.
    n_workers : int, default 2
        Workers of the local cluster (ignored with ``scheduler``).
    threads_per_worker : int, default 1
    memory_limit : str or int, default "auto"
        Per-worker memory limit of the local cluster.
    tile_points : int, default 1_000_000
        Target points per DBSCAN tile (more tiles than workers are made anyway, so that
        all workers are busy; the halo adds points on top).
    piece_rows : int, default 2_000_000
        Rows per task for counts and densities (row groups of a file are grouped).
    task_hook : callable, optional
        Called on the worker as ``task_hook(kind)`` at the start of every task (kind:
        ``"sample"``, ``"tile"``, ``"summary"``, ``"counts"``, ``"bounds"``, ``"kde"``,
        ``"sector"``); for
        instrumentation and fault-injection tests. Must be picklable.
    client : distributed.Client, optional
        Use this client (and do not close it).
    """

    def __init__(
        self,
        scheduler: str | None = None,
        *,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        memory_limit: str | int = "auto",
        tile_points: int = 1_000_000,
        piece_rows: int = 2_000_000,
        task_hook: Callable[[str], None] | None = None,
        client=None,
    ) -> None:
        from distributed import Client, LocalCluster

        self.tile_points = int(tile_points)
        self.piece_rows = int(piece_rows)
        self.task_hook = task_hook
        self._cluster = None
        self._own_client = client is None
        if client is not None:
            self.client = client
        elif scheduler is not None:
            try:
                self.client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise EngineError(
                    f"could not reach the Dask scheduler at {scheduler!r}: {type(exc).__name__}"
                ) from None
        else:
            self._cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                memory_limit=memory_limit,
            )
            self.client = Client(self._cluster)

    # -- plumbing -------------------------------------------------------------------

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the client and the local cluster this engine started."""
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    @property
    def n_workers(self) -> int:
        """Workers currently connected."""
        return max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))

    def _submit(self, kind, fn, *args, **kwargs):
        return self.client.submit(_hooked, self.task_hook, kind, fn, *args, pure=False, **kwargs)

    def _gather(self, futures):
        from distributed import KilledWorker

        try:
            try:
                return self.client.gather(futures)
            except BaseException:
                # Stop the rest of this computation: nothing of it will be used.
                self.client.cancel(futures if isinstance(futures, list) else [futures])
                raise
        except KilledWorker as exc:
            raise EngineError(
                "a Dask worker died every time it ran one task of this computation "
                "(out of memory?); no result was produced"
            ) from exc
        except (OSError, TimeoutError) as exc:
            raise EngineError(
                f"lost the Dask cluster during the computation ({type(exc).__name__}); "
                "no result was produced"
            ) from exc

    def _table_future(self, src):
        return None if src.table is None else self.client.scatter(src.table, broadcast=False)

    def _tree(self, futures, reduce, kind, fanin: int = 8):
        """Reduce futures pairwise-in-groups on the workers; return the final future."""
        while len(futures) > 1:
            futures = [
                self._submit(kind, _reduce_list, reduce, *futures[i : i + fanin])
                for i in range(0, len(futures), fanin)
            ]
        return futures[0]

    # -- DBSCAN ---------------------------------------------------------------------

    def dbscan(
        self,
        source,
        *,
        eps_m,
        min_samples=5,
        weight=None,
        filters=None,
        x="x",
        y="y",
        summary=None,
    ):
        """Exact DBSCAN by tiles with ``2 eps`` halos; labels equal the local engine's.

        Parameters
        ----------
        summary : geocluster.engine._summary.SummarySpec, optional
            Also summarise the clusters where their firms are: each tile keeps its
            owned firms' attributes on its worker and adds them up per cluster once the
            labels are known (counts, employment, shares, centroid sums: a tree
            reduction on the workers); each cluster's hull is made on one worker from
            its points gathered there in row order, the local engine's polygon. The
            client receives labels and per-cluster rows only.

        Returns
        -------
        DBSCANResult
            With ``clusters`` when ``summary`` is given: equal to
            :meth:`LocalEngine.dbscan`'s (sums of coordinates and employees to float
            rounding, hulls exactly).
        """
        from geocluster.clustering._validation import check_min_count, check_positive

        eps = check_positive(eps_m, "eps_m")
        min_samples = check_min_count(min_samples, "min_samples", real=True)
        src = as_source(source, x=x, y=y)
        src.require(x, y, weight)
        if summary is not None:  # the summary columns the source has
            summary = dataclasses.replace(
                summary, columns=tuple(c for c in summary.columns if c in src.columns)
            )
        if src.table is not None:
            return self._dbscan_table(src, eps, min_samples, weight, filters, x, y, summary)
        pieces = src.coalesced(self.piece_rows)
        step = max(1, src.n_rows // SAMPLE_POINTS)
        res = self._gather(
            [self._submit("sample", _sample_task, None, p, x, y, filters, step) for p in pieces]
        )
        n = sum(r[0] for r in res)
        if n == 0:
            return _empty_result(summary)
        if sum(r[2] for r in res):
            raise InvalidInput(
                f"expected finite x, y coordinates, got {sum(r[2] for r in res)} rows with "
                "NaN or infinite values"
            )
        sample = np.concatenate([r[1] for r in res])
        plan = tiles.plan_tiles(sample, self._n_tiles(n))
        futs = []
        for tile in plan:
            _, read_box = tiles.halo_boxes(tile, eps)
            mine = src.pieces_within(read_box)
            futs.append(
                self._submit(
                    "tile",
                    _tile_task,
                    None,
                    mine,
                    x,
                    y,
                    weight,
                    filters,
                    tile,
                    eps,
                    min_samples,
                    summary,
                )
            )
        return self._merge(futs, n, summary)

    def _merge(self, futs, n: int, summary):
        """Labels (and with ``summary`` the cluster summaries) of the tile futures."""
        if summary is None:
            parts = self._gather(futs)
        else:
            parts = self._gather([self._submit("summary", _labels_only, f) for f in futs])
        gid, labels, core, maps = tiles.merge_tiles(parts, maps=True)
        if gid.size != n:
            raise EngineError(
                f"the tiles returned {gid.size} points, the source has {n}; "
                "did the files change during the run?"
            )
        clusters = None
        if summary is not None:
            latest = [p["latest"] for p in parts if np.isfinite(p["latest"])]
            clusters = self._summarize(futs, labels, maps, summary, max(latest, default=np.nan))
        return DBSCANResult(labels=labels, core=core, clusters=clusters)

    def _summarize(self, futs, labels, maps, summary, latest: float):
        """The cluster summary table from the tile results kept on the workers."""
        from geocluster.clustering.firms import (
            combine_parts,
            empty_summary,
            resolve_reference_year,
            summary_frame,
        )
        from geocluster.engine._summary import bucket_hulls, hull_buckets

        k = int(labels.max()) + 1 if (labels >= 0).any() else 0
        if k == 0:
            return empty_summary(summary.crs)
        year = summary.reference_year
        if year is None:  # the local default: the latest founding year of all the rows
            year = resolve_reference_year(latest)
        n_buckets = min(k, 2 * self.n_workers)
        [bucket_of] = self.client.scatter([hull_buckets(labels, n_buckets)], broadcast=True)
        tile_parts = [
            self._submit("summary", _tile_parts, f, maps[i], year, bucket_of, n_buckets)
            for i, f in enumerate(futs)
        ]
        sums = self._tree(
            [self._submit("summary", _parts_of, t) for t in tile_parts], combine_parts, "summary"
        )
        hulls = [
            self._submit(
                "summary",
                bucket_hulls,
                summary,
                *[self._submit("summary", _bucket_of, t, j) for t in tile_parts],
            )
            for j in range(n_buckets)
        ]
        got = self._gather([sums, *hulls])
        hull = np.empty(k, dtype=object)
        kind = np.empty(k, dtype=object)
        for ids, h, hk in got[1:]:
            hull[ids] = h
            kind[ids] = hk
        return summary_frame(got[0], hull, kind, summary.crs, year)

    def _n_tiles(self, n: int) -> int:
        # A power of two: the k-d split halves tiles, so every tile gets the same share.
        want = max(2 * self.n_workers, math.ceil(n / self.tile_points))
        return 1 << (want - 1).bit_length()

    def _dbscan_table(self, src, eps, min_samples, weight, filters, x, y, summary=None):
        cols = [x, y] + ([weight] if weight else [])
        if summary is not None:
            cols += [c for c in summary.columns if c not in cols]
        gid, t = src.read_all(cols, filters)
        if t.num_rows == 0:
            return _empty_result(summary)
        X = xy(t, x, y)
        _check_finite(X)
        w = None if weight is None else np.asarray(t[weight].to_numpy(zero_copy_only=False), float)
        step = max(1, len(X) // SAMPLE_POINTS)
        plan = tiles.plan_tiles(X[::step], self._n_tiles(len(X)))
        futs = []
        for tile in plan:
            _, read_box = tiles.halo_boxes(tile, eps)
            keep = tiles.in_box(X, read_box)
            futs.append(
                self._submit(
                    "tile",
                    _tile_task_arrays,
                    gid[keep],
                    X[keep],
                    None if w is None else w[keep],
                    tile,
                    eps,
                    min_samples,
                    rows=None if summary is None else t.filter(pa.array(keep)),
                    summary=summary,
                    x=x,
                    y=y,
                )
            )
        return self._merge(futs, len(X), summary)

    # -- specialisation ---------------------------------------------------------------

    def region_sector_counts(
        self, source, *, sector, region=None, regions=None, weight=None, filters=None, x="x", y="y"
    ):
        """As :meth:`LocalEngine.region_sector_counts`, by a tree reduction of counts."""
        src = as_source(source, x=x, y=y)
        _check_regions(src, sector, region, regions, weight, x, y)
        table = self._table_future(src)
        reg = None if regions is None else self.client.scatter([regions], broadcast=True)[0]
        futs = [
            self._submit(
                "counts",
                piece_counts,
                table,
                p,
                x=x,
                y=y,
                sector=sector,
                region=region,
                regions=reg,
                weight=weight,
                filters=filters,
            )
            for p in src.coalesced(self.piece_rows)
        ]
        if not futs:
            return finish_counts(reduce_counts([]))
        return finish_counts(self._gather(self._tree(futs, reduce_counts, "counts")))

    def specialization_cells(
        self,
        source,
        *,
        regions,
        crs: str,
        sector_level: str = "division",
        filters=None,
        x="x",
        y="y",
    ):
        """Region x sector cell sums (:mod:`geocluster.specialization.cells`) of the firms.

        The workers read the files with ``dask_geopandas.read_parquet`` (one partition per
        file, columns and ``filters`` pushed down), make working-CRS points of the stored
        ``x``, ``y`` with ``spatial_partitions`` taken from the row groups' x/y statistics,
        and join them to the regions with ``dask_geopandas.sjoin`` (partitions whose
        extent meets no region are never joined). A point on a shared edge takes the
        region of lowest position, as :func:`assign_regions` does; the cells of every
        partition are then summed by a tree reduction on the workers.

        Parameters
        ----------
        source : list of paths
            The firm register's part files (GeoParquet with working ``x``, ``y``).
        regions : GeoDataFrame
            Regions in the working CRS, in the order of the table's rows.
        crs : str
            The working CRS.
        sector_level : {"section", "division", "group"}
            Cell key: ISIC section or division (for groups: the division).

        Returns
        -------
        (cells DataFrame, n_rows)
            Cells keyed by region *position* (-1: firms in no region) and sector label.
        """
        import dask.dataframe
        import dask_geopandas as dgpd
        import geopandas as gpd
        import shapely

        from geocluster.specialization.cells import reduce_cells, with_outside

        src = as_source(source, x=x, y=y)
        if src.table is not None:
            raise InvalidInput("expected the register's files for distributed specialisation")
        src.require(x, y)
        wanted = [
            c
            for c in ("isic_section", "isic_division", "sector_code", "employees")
            if c in src.columns
        ]
        # Row groups per partition: about piece_rows rows (several partitions per file,
        # so that a few large files still keep every worker busy).
        per_group = max(1, max((p.stop - p.start for p in src.pieces), default=1))
        # ... and at least two partitions per worker when there are row groups enough
        groups = max(1, min(self.piece_rows // per_group, len(src.pieces) // (2 * self.n_workers)))
        import pyarrow.parquet as pq

        geo = b"geo" in (pq.read_schema(src.paths[0]).metadata or {})
        # a workspace register is GeoParquet; plain Parquet with x, y works too
        read = dgpd.read_parquet if geo else dask.dataframe.read_parquet
        ddf = read(
            src.paths,
            columns=[x, y, *wanted],
            filters=_dnf(filters),
            index=False,
            split_row_groups=groups,
        )
        # (with filters, row groups may be pruned: the layout is then unknown)
        boxes = None if filters else _partition_boxes(src, groups, ddf.npartitions)
        points = dgpd.from_dask_dataframe(
            ddf, geometry=dgpd.points_from_xy(ddf, x, y, crs=crs)
        ).set_crs(crs, allow_override=True)
        if boxes is not None:
            points.spatial_partitions = gpd.GeoSeries(boxes, crs=crs)
        # Regions the working CRS cannot hold (infinite coordinates) hold no firm, as in
        # assign_regions; positions stay those of the full table.
        geoms = np.asarray(regions.geometry.values)
        with np.errstate(invalid="ignore"):
            ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
            ok &= np.isfinite(shapely.bounds(geoms)).all(axis=1)
        totals = ddf.map_partitions(len, meta=(None, "int64"))
        inside_d = []
        if ok.any():
            reg = gpd.GeoDataFrame({"__pos": np.flatnonzero(ok)}, geometry=geoms[ok], crs=crs)
            rparts = dgpd.from_geopandas(reg, npartitions=1)
            rparts.calculate_spatial_partitions()
            joined = dgpd.sjoin(points, rparts, predicate="intersects")
            inside = joined.map_partitions(
                _joined_cells, self.task_hook, sector_level, meta=_cells_meta()
            )
            inside_d = inside.to_delayed()
        # one graph: the sjoin and the row count share the file reads
        totals_d = totals.to_delayed()
        futs = self.client.compute(inside_d + totals_d)
        parts, counts = futs[: len(inside_d)], futs[len(inside_d) :]
        try:
            if not parts:
                cells = reduce_cells([])
            else:
                cells = self._gather(self._tree(list(parts), reduce_cells, "counts"))
            n_rows = int(sum(int(np.sum(c)) for c in self._gather(list(counts))))
        except BaseException:
            # the row counts and the joined parts are of this computation too: a failed
            # one must not keep running them (the error's traceback holds these futures)
            self.client.cancel(futs)
            raise
        cells = with_outside(cells, n_rows - int(cells["n"].sum()))
        return cells, n_rows

    # -- density --------------------------------------------------------------------

    def kde_grid(
        self,
        source,
        *,
        bandwidth_m,
        cell_m=None,
        grid_size=None,
        bounds=None,
        weight=None,
        filters=None,
        normalize=False,
        truncate=5.0,
        x="x",
        y="y",
    ):
        """As :meth:`LocalEngine.kde_grid`: the sum of per-piece intensity grids.

        The estimator is a sum over points, so this is the same surface. ``bandwidth_m``
        is metres or a rule (``"scott"``: from two reduced passes of sums; ``"silverman"``:
        needs exact quartiles, see :meth:`_bandwidth`).
        """
        src = as_source(source, x=x, y=y)
        src.require(x, y, weight)
        table = self._table_future(src)
        pieces = src.coalesced(self.piece_rows)
        if isinstance(bandwidth_m, str):
            bandwidth_m, box = self._bandwidth(table, pieces, bandwidth_m, x, y, weight, filters)
            if bounds is None:
                bounds = kde_bounds(box, bandwidth_m)
        if bounds is None:
            futs = [
                self._submit("bounds", piece_bounds, table, p, x=x, y=y, filters=filters)
                for p in pieces
            ]
            bounds = kde_bounds(reduce_bounds(self._gather(futs)), float(bandwidth_m))
        grid = _grid(bandwidth_m, cell_m, grid_size, bounds, truncate)
        futs = [
            self._submit(
                "kde", piece_kde, table, p, x=x, y=y, weight=weight, filters=filters, grid=grid
            )
            for p in pieces
        ]
        if not futs:
            raise InvalidInput("expected at least one point for a density surface, got none")
        return finish_kde(self._gather(self._tree(futs, reduce_kde, "kde")), normalize)

    def _bandwidth(self, table, pieces, rule, x, y, weight, filters):
        """``(h, (n, minx, miny, maxx, maxy))`` of a bandwidth rule, from the workers.

        Scott's rule needs means and variances: two passes of sums over the pieces
        (mean first, then squared deviations, as numpy computes a variance). Silverman's
        needs the exact quartiles of every coordinate, which no sum gives: the selected
        points' x, y (and weights) are gathered here for that one number.
        """
        from geocluster.clustering.kde import bandwidth_m

        kw = dict(x=x, y=y, weight=weight, filters=filters)
        first = self._gather([self._submit("kde", piece_moments, table, p, **kw) for p in pieces])
        box = reduce_bounds([f[:5] for f in first])
        if rule == "scott":
            mean, _ = bandwidth_from_moments(first, None, rule)
            second = self._gather(
                [self._submit("kde", piece_moments, table, p, **kw, mean=mean) for p in pieces]
            )
            return bandwidth_from_moments(first, second, rule)[1], box
        if rule != "silverman":
            raise InvalidInput(
                f"expected bandwidth 'scott', 'silverman' or a number of metres, got {rule!r}"
            )
        cols = [x, y] + ([weight] if weight else [])
        got = self._gather(
            [self._submit("kde", read_piece, table, p, cols, filters) for p in pieces]
        )
        ts = [t for _, t in got if t.num_rows]
        if not ts:
            raise InvalidInput("expected at least one point for a density surface, got none")
        X = np.concatenate([xy(t, x, y) for t in ts])
        w = np.concatenate([weights_of(t, weight) for t in ts]) if weight else None
        return bandwidth_m(X, rule, weights=w), box

    # -- national scan --------------------------------------------------------------

    def map_sectors(self, fn, sectors) -> dict:
        """``{sector: fn(sector)}`` with the sectors running in parallel on the workers.

        ``fn`` must be picklable and read its inputs itself (e.g. one sector's rows of
        the workspace files); each call runs as one task.
        """
        sectors = list(sectors)
        futs = [self._submit("sector", fn, s) for s in sectors]
        return dict(zip(sectors, self._gather(futs)))


def _dnf(filters):
    """Filters as pyarrow's DNF list (what dask's read_parquet takes), or None."""
    if filters is None:
        return None
    if isinstance(filters, list):
        return filters
    raise InvalidInput("expected filters as a list of (column, op, value) tuples")


def _partition_boxes(src, groups: int, n_partitions: int):
    """Extent of each partition of ``read_parquet(split_row_groups=groups)``.

    From the row groups' x/y statistics; None when the layout is not the expected one
    (the join then pairs every partition with the regions: slower, the same answer).
    """
    import shapely

    boxes = []
    for path in src.paths:
        bb = [p.bbox for p in src.pieces if p.path == path]
        for i in range(0, len(bb), groups):
            chunk = bb[i : i + groups]
            if any(b is None for b in chunk):
                return None
            boxes.append(
                shapely.box(
                    min(b[0] for b in chunk),
                    min(b[1] for b in chunk),
                    max(b[2] for b in chunk),
                    max(b[3] for b in chunk),
                )
            )
    return boxes if len(boxes) == n_partitions else None


def _cells_meta():
    from geocluster.specialization.cells import _empty

    return _empty()


def _joined_cells(joined, hook, sector_level):
    """Cells of one joined partition: each point once, in its lowest-position region."""
    if hook is not None:
        hook("counts")
    from geocluster.analyses.specialization import _firm_sectors
    from geocluster.specialization.cells import cells_of

    if len(joined) == 0:
        return _cells_meta()
    # a point on a shared edge matched several regions: keep the lowest position
    pos = joined["__pos"].to_numpy()
    row = np.asarray(joined.index)
    order = np.lexsort((pos, row))
    first = np.r_[True, row[order][1:] != row[order][:-1]]
    sel = joined.iloc[order[first]]
    emp = (
        sel["employees"].to_numpy(dtype=float) if "employees" in sel else np.full(len(sel), np.nan)
    )
    level = "division" if sector_level == "group" else sector_level
    return cells_of(sel["__pos"].to_numpy(), _firm_sectors(sel, level), emp)


def _empty_result(summary) -> DBSCANResult:
    from geocluster.clustering.firms import empty_summary

    clusters = None if summary is None else empty_summary(summary.crs)
    return DBSCANResult(np.zeros(0, np.int64), np.zeros(0, bool), clusters=clusters)


def _reduce_list(reduce, *parts):
    return reduce(list(parts))


def _check_finite(X: np.ndarray) -> None:
    if not np.isfinite(X).all():
        raise InvalidInput("expected finite x, y coordinates, got NaN or infinite values")
