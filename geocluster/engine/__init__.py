"""Engines: where the heavy analyses run.

:class:`LocalEngine` runs them in this process; :class:`DaskEngine` runs them on a Dask
cluster (``distributed``), reading the same Parquet files from every worker. Both give the
same answers: DBSCAN labels are equal (same core points, same noise, same border rule,
same cluster numbering), counts are equal, density grids equal within float rounding.

A *source* is a list of Parquet files (one dataset version, possibly several files) with
working-CRS float64 ``x``, ``y`` columns, or an in-memory ``pyarrow.Table`` /
``pandas.DataFrame`` for small inputs. Results are aligned to the source's rows, in order,
after ``filters`` (a pyarrow expression or pyarrow's list-of-tuples form, or a
:class:`geocluster.engine._source.FirmRows`: an analysis' exact firm selection, applied
by whoever reads the rows).

The analysis specs use the engine when the workspace's is not local
(``Workspace.use_engine("dask")``, ``--engine dask``): ``specialization`` asks for
:meth:`specialization_cells`, ``kde`` for :meth:`kde_grid`, ``clusters --by`` for
:meth:`map_sectors`, ``clusters`` for :meth:`dbscan` with a
:class:`geocluster.engine._summary.SummarySpec` (labels and the cluster summaries, made
where the firms are), always on the workspace's files (the workers read them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from geocluster.errors import GeoclusterError, InvalidInput

__all__ = [
    "DBSCANResult",
    "Engine",
    "EngineError",
    "LocalEngine",
    "DaskEngine",
    "get_engine",
    "write_partitioned",
]


class EngineError(GeoclusterError):
    """The distributed computation could not finish (a worker kept dying, the cluster
    went away). Never raised with a partial result: there is no result at all."""


@dataclass(frozen=True)
class DBSCANResult:
    """DBSCAN of a source's (filtered) rows.

    Attributes
    ----------
    labels : ndarray of int64, shape (n,)
        Cluster per row, ``-1`` noise; clusters numbered by the smallest row of their core
        points (scikit-learn's numbering).
    core : ndarray of bool, shape (n,)
        Core flag per row.
    clusters : GeoDataFrame, optional
        With ``dbscan(..., summary=SummarySpec)``: the table of
        :func:`geocluster.clustering.firms.summarize_clusters` of the rows, made where
        the firms are (on the Dask workers), equal to the local one.
    """

    labels: np.ndarray
    core: np.ndarray
    clusters: Any = None

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.size else 0


@runtime_checkable
class Engine(Protocol):
    """What an analysis may ask of an engine."""

    def dbscan(
        self,
        source,
        *,
        eps_m: float,
        min_samples: float = 5,
        weight: str | None = None,
        filters=None,
        x: str = "x",
        y: str = "y",
        summary=None,
    ) -> DBSCANResult: ...

    def region_sector_counts(
        self,
        source,
        *,
        sector: str,
        region: str | None = None,
        regions: tuple[Any, str] | None = None,
        weight: str | None = None,
        filters=None,
        x: str = "x",
        y: str = "y",
    ): ...

    def specialization_cells(
        self,
        source,
        *,
        regions,
        crs: str,
        sector_level: str = "division",
        filters=None,
        x: str = "x",
        y: str = "y",
    ): ...

    def kde_grid(
        self,
        source,
        *,
        bandwidth_m: float | str,
        cell_m: float | None = None,
        grid_size: int | None = None,
        bounds: tuple[float, float, float, float] | None = None,
        weight: str | None = None,
        filters=None,
        normalize: bool = False,
        truncate: float = 5.0,
        x: str = "x",
        y: str = "y",
    ): ...

    def map_sectors(self, fn, sectors) -> dict: ...

    def close(self) -> None: ...


def get_engine(name: str = "local", *, scheduler: str | None = None, **options) -> Engine:
    """The engine named by ``--engine`` / ``GEOCLUSTER_ENGINE``.

    Parameters
    ----------
    name : {"local", "dask"}
    scheduler : str, optional
        Dask scheduler address (``tcp://host:8786``); none starts a local cluster.
    **options
        Passed to the engine's constructor.
    """
    if name == "local":
        if scheduler is not None:
            raise InvalidInput("a scheduler address needs --engine dask, got --engine local")
        from geocluster.engine.local import LocalEngine

        return LocalEngine(**options)
    if name == "dask":
        from geocluster.engine.dask import DaskEngine

        return DaskEngine(scheduler, **options)
    raise InvalidInput(f"expected engine 'local' or 'dask', got {name!r}")


def __getattr__(name: str):
    # Lazy: importing geocluster.engine must not import distributed.
    if name == "LocalEngine":
        from geocluster.engine.local import LocalEngine

        return LocalEngine
    if name == "DaskEngine":
        from geocluster.engine.dask import DaskEngine

        return DaskEngine
    if name == "write_partitioned":
        from geocluster.engine.ingest import write_partitioned

        return write_partitioned
    raise AttributeError(name)
