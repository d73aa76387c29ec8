"""The in-process engine: whole columns in memory, the numpy/numba kernels."""

from __future__ import annotations

import numpy as np

from geocluster.clustering.dbscan import GridDBSCAN
from geocluster.engine import DBSCANResult
from geocluster.engine._ops import (
    counts_of,
    finish_counts,
    finish_kde,
    kde_bounds,
    kde_of,
)
from geocluster.engine._source import as_source, xy
from geocluster.errors import InvalidInput

__all__ = ["LocalEngine"]


class LocalEngine:
    """Run everything in this process (the reference the Dask engine is tested against)."""

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release."""

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
        """Exact DBSCAN of the rows (:class:`geocluster.clustering.GridDBSCAN`).

        Parameters
        ----------
        summary : geocluster.engine._summary.SummarySpec, optional
            Also summarise the clusters
            (:func:`geocluster.clustering.firms.summarize_clusters` of the rows read
            as the workspace reads them); the sources' ``x``, ``y`` are then the
            working-CRS coordinates.

        Returns
        -------
        DBSCANResult
        """
        src = as_source(source, x=x, y=y)
        src.require(x, y, weight)
        cols = [x, y] + ([weight] if weight else [])
        if summary is not None:
            cols += [c for c in summary.columns if c in src.columns and c not in cols]
        _, t = src.read_all(cols, filters)
        w = None if weight is None else np.asarray(t[weight].to_numpy(zero_copy_only=False), float)
        m = GridDBSCAN(eps_m, min_samples=min_samples).fit(xy(t, x, y), sample_weight=w)
        core = np.zeros(t.num_rows, bool)
        core[m.core_sample_indices_] = True
        clusters = None
        if summary is not None:
            from geocluster.engine._summary import summarize_table

            clusters = summarize_table(t, m.labels_, core, summary, x=x, y=y)
        return DBSCANResult(labels=m.labels_, core=core, clusters=clusters)

    def region_sector_counts(
        self, source, *, sector, region=None, regions=None, weight=None, filters=None, x="x", y="y"
    ):
        """Firms and summed ``weight`` per region x sector.

        Parameters
        ----------
        sector : str
            Sector column.
        region : str, optional
            Column holding each row's region id (already assigned).
        regions : (GeoDataFrame, str), optional
            Region polygons (working CRS) and their id column, when rows carry no region:
            each row is placed by :func:`geocluster.specialization.assign_regions`.
        weight : str, optional
            Column summed per cell (e.g. employees; NaN counts as 0 and as unknown).

        Returns
        -------
        pandas.DataFrame
            ``region, sector, n_firms, weight, n_weight_known``, one row per non-empty cell,
            ordered by region then sector; missing region (outside every polygon) or
            sector appears as NA, last. LQ, HHI, EG follow from this table.
        """
        src = as_source(source, x=x, y=y)
        _check_regions(src, sector, region, regions, weight, x, y)
        cols = [sector] + ([region] if region else [x, y]) + ([weight] if weight else [])
        _, t = src.read_all(list(dict.fromkeys(cols)), filters)
        return finish_counts(
            counts_of(t, x=x, y=y, sector=sector, region=region, regions=regions, weight=weight)
        )

    def specialization_cells(
        self, source, *, regions, crs, sector_level="division", filters=None, x="x", y="y"
    ):
        """Region x sector cell sums of the firms, in this process.

        As :meth:`DaskEngine.specialization_cells` (the region of each firm by
        :func:`geocluster.specialization.assign_regions`, ``intersects``).

        Returns
        -------
        (cells DataFrame, n_rows)
        """
        from geocluster.analyses.specialization import _firm_sectors
        from geocluster.specialization import assign_regions
        from geocluster.specialization.cells import cells_of, with_outside

        src = as_source(source, x=x, y=y)
        src.require(x, y)
        wanted = [
            c
            for c in ("isic_section", "isic_division", "sector_code", "employees")
            if c in src.columns
        ]
        _, t = src.read_all([x, y, *wanted], filters)
        frame = t.select(wanted).to_pandas()
        pos = assign_regions(xy(t, x, y), regions, predicate="intersects")
        emp = (
            frame["employees"].to_numpy(dtype=float)
            if "employees" in frame
            else np.full(len(frame), np.nan)
        )
        level = "division" if sector_level == "group" else sector_level
        cells = cells_of(pos, _firm_sectors(frame, level), emp)
        return with_outside(cells, int((pos < 0).sum())), t.num_rows

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
        """Gaussian KDE on a grid (:func:`geocluster.clustering.kde_grid`), same parameters.

        ``bandwidth_m`` is metres or a rule, ``"scott"`` or ``"silverman"``.

        Returns
        -------
        geocluster.clustering.kde.KDEGrid
        """
        src = as_source(source, x=x, y=y)
        src.require(x, y, weight)
        _, t = src.read_all([x, y] + ([weight] if weight else []), filters)
        if isinstance(bandwidth_m, str):  # a rule: "scott" or "silverman"
            from geocluster.clustering.kde import bandwidth_m as rule_of_thumb
            from geocluster.engine._ops import weights_of

            if t.num_rows == 0:
                raise InvalidInput("expected at least one point for a density surface, got none")
            bandwidth_m = rule_of_thumb(xy(t, x, y), bandwidth_m, weights=weights_of(t, weight))
        if bounds is None:
            X = xy(t, x, y)
            b = (t.num_rows, *X.min(axis=0), *X.max(axis=0)) if t.num_rows else (0, 0, 0, 0, 0)
            bounds = kde_bounds(b, float(bandwidth_m))
        grid = _grid(bandwidth_m, cell_m, grid_size, bounds, truncate)
        return finish_kde(kde_of(t, x=x, y=y, weight=weight, grid=grid), normalize)

    def map_sectors(self, fn, sectors) -> dict:
        """``{sector: fn(sector)}``, one after the other."""
        return {s: fn(s) for s in sectors}


def _grid(bandwidth_m, cell_m, grid_size, bounds, truncate) -> dict:
    return {
        "bandwidth": float(bandwidth_m),
        "cell_m": cell_m,
        "grid_size": grid_size,
        "bounds": tuple(float(b) for b in bounds),
        "truncate": truncate,
    }


def _check_regions(src, sector, region, regions, weight, x, y) -> None:
    from geocluster.errors import InvalidInput

    if (region is None) == (regions is None):
        raise InvalidInput("expected exactly one of region (a column) or regions (polygons)")
    src.require(sector, region, weight, *((x, y) if region is None else ()))
