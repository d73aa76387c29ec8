"""What an engine reads: a list of Parquet files, or one in-memory table.

Rows are numbered globally in source order -- the files in the order given, each file's
rows in storage order -- *before* filters. That number (``gid``) is how the Dask engine
keeps results aligned to rows and breaks ties exactly as the local engine does: the local
engine sees the filtered rows in the same order, so "smaller row index" and "smaller gid"
agree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geocluster.errors import InvalidInput, MissingColumns, UnusableFile

__all__ = ["Source", "as_source", "Piece", "FirmRows", "DERIVED_WEIGHT"]

#: Column a :class:`FirmRows` selection adds: the firm weight of
#: :func:`geocluster.clustering.firms.firm_weights` (unknown employees count as 1).
DERIVED_WEIGHT = "__weight"

#: Rows per piece when an in-memory table is cut into work units.
TABLE_PIECE_ROWS = 250_000


@dataclass(frozen=True)
class FirmRows:
    """The firms an analysis selects, applied by whoever reads the rows (a worker).

    ``filters`` is pushed down to the Parquet reader (row groups skipped by statistics);
    then the exact rule of :func:`geocluster.clustering.firms.select_firms` (codes,
    sections, groups) runs on the rows read, so a worker keeps exactly the rows the
    local analysis keeps. Picklable: it travels to the workers with the task.

    Parameters
    ----------
    filters : pyarrow expression or DNF list, optional
        Storage filter (e.g. the divisions the selection can match).
    sectors, sector_group, custom_groups : optional
        As :func:`~geocluster.clustering.firms.select_firms`.
    key : (level, value), optional
        Keep only the firms of one sector of a national scan:
        ``geocluster.clustering.scan.sector_key(rows, level) == value``.
    weight : str, optional
        Add :data:`DERIVED_WEIGHT`, ``firm_weights(rows, weight)``.
    """

    filters: object = None
    sectors: tuple[str, ...] | None = None
    sector_group: str | None = None
    custom_groups: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    key: tuple[str, str] | None = None
    weight: str | None = None

    def columns(self, available: Sequence[str]) -> list[str]:
        """File columns the rule needs (of those present)."""
        need = []
        if self.sectors is not None or self.sector_group is not None:
            need.append("sector_code")
        if self.key is not None:
            need += _key_columns(available)
        if self.weight is not None:
            need.append(self.weight)
        return [c for c in need if c in available]

    def apply(self, t: pa.Table) -> tuple[np.ndarray | None, pa.Table]:
        """``(mask or None, table with the derived column)`` of rows already filtered."""
        keep = None
        if self.sectors is not None or self.sector_group is not None:
            from geocluster.clustering.firms import select_firms

            frame = pd.DataFrame({"sector_code": t["sector_code"].to_pandas()})
            frame.index = np.arange(t.num_rows)
            chosen = select_firms(
                frame,
                sectors=list(self.sectors) if self.sectors is not None else None,
                sector_group=self.sector_group,
                custom_groups=dict(self.custom_groups) if self.custom_groups else None,
            )
            keep = np.zeros(t.num_rows, bool)
            keep[chosen.index.to_numpy()] = True
        if self.key is not None:
            from geocluster.clustering.scan import sector_key

            level, value = self.key
            frame = pd.DataFrame({c: t[c].to_pandas() for c in _key_columns(t.column_names)})
            same = (sector_key(frame, level) == value).fillna(False).to_numpy(bool)
            keep = same if keep is None else keep & same
        if keep is not None:
            t = t.filter(pa.array(keep))
        if self.weight is not None:
            from geocluster.clustering.firms import firm_weights

            w = firm_weights(pd.DataFrame({self.weight: t[self.weight].to_pandas()}), self.weight)
            t = t.append_column(DERIVED_WEIGHT, pa.array(np.asarray(w, np.float64)))
        return keep, t


def _key_columns(available) -> list[str]:
    return [c for c in ("isic_section", "isic_division", "sector_code") if c in available]


def _split(filters) -> tuple[object, FirmRows | None]:
    if isinstance(filters, FirmRows):
        return filters.filters, filters
    return filters, None


def _filter_expression(filters) -> pc.Expression | None:
    """``filters`` as a pyarrow expression: an Expression, or pyarrow's DNF tuple lists."""
    filters, _ = _split(filters)
    if filters is None:
        return None
    if isinstance(filters, pc.Expression):
        return filters
    try:
        return pq.filters_to_expression(filters)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            "expected filters as a pyarrow expression or a list of (column, op, value) "
            f"tuples, got {type(filters).__name__}"
        ) from exc


@dataclass(frozen=True)
class Piece:
    """One unit of work: a run of row groups of one file, or a slice of the table."""

    path: str | None  # None: a slice of the in-memory table
    row_groups: tuple[int, ...]  # for files
    start: int  # gid of the piece's first row (files: of its first row group)
    stop: int  # gid after the piece's last row (tables), or of its last row group's end
    bbox: tuple[float, float, float, float] | None  # x/y statistics, when known


class Source:
    """Normalised input of an engine method.

    Parameters
    ----------
    data : sequence of paths, pyarrow.Table or pandas.DataFrame
        Parquet files (one dataset version, possibly several files) or an in-memory table.
    x, y : str
        Names of the working-CRS coordinate columns (metres).
    """

    def __init__(self, data, *, x: str = "x", y: str = "y") -> None:
        self.x = x
        self.y = y
        self.table: pa.Table | None = None
        self.paths: list[str] = []
        if isinstance(data, pd.DataFrame):
            data = pa.Table.from_pandas(data, preserve_index=False)
        if isinstance(data, pa.Table):
            self.table = data
            self.columns = list(data.column_names)
            self.n_rows = data.num_rows
            self.pieces = [
                Piece(None, (), s, min(s + TABLE_PIECE_ROWS, data.num_rows), None)
                for s in range(0, data.num_rows, TABLE_PIECE_ROWS)
            ]
            return
        if isinstance(data, str | os.PathLike):
            data = [data]
        if not isinstance(data, Sequence) or not data:
            raise InvalidInput(
                f"expected a non-empty list of Parquet files or a table, got {type(data).__name__}"
            )
        self.paths = [str(p) for p in data]
        self.pieces = []
        columns: list[str] | None = None
        offset = 0
        for k, p in enumerate(self.paths):
            try:
                meta = pq.ParquetFile(p).metadata
            except (OSError, pa.ArrowInvalid) as exc:
                raise UnusableFile(
                    f"file {k + 1} of the source is not a readable Parquet file"
                ) from exc
            names = meta.schema.to_arrow_schema().names
            if columns is None:
                columns = names
            elif names != columns:
                raise UnusableFile(f"file {k + 1} of the source has other columns than file 1")
            # Statistics are per Parquet *leaf* column: a struct (the GeoParquet bbox
            # covering) has several leaves, so the Arrow field position is not the index.
            leaves = [meta.schema.column(i).path for i in range(meta.num_columns)]
            ix = leaves.index(x) if x in leaves else None
            iy = leaves.index(y) if y in leaves else None
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                bbox = None
                if ix is not None and iy is not None:
                    sx = rg.column(ix).statistics
                    sy = rg.column(iy).statistics
                    if sx is not None and sy is not None and sx.has_min_max and sy.has_min_max:
                        bbox = (float(sx.min), float(sy.min), float(sx.max), float(sy.max))
                self.pieces.append(Piece(p, (g,), offset, offset + rg.num_rows, bbox))
                offset += rg.num_rows
        self.columns = columns or []
        self.n_rows = offset

    def require(self, *names: str | None) -> None:
        """Raise MissingColumns unless every named column exists."""
        missing = [
            n for n in names if n is not None and n != DERIVED_WEIGHT and n not in self.columns
        ]
        if missing:
            raise MissingColumns(
                f"expected columns {missing} in the source, found {sorted(self.columns)}"
            )

    def read(
        self, piece: Piece, columns: Sequence[str], filters=None
    ) -> tuple[np.ndarray, pa.Table]:
        """``(gid, table)`` of a piece's rows that pass ``filters``, in source order."""
        return read_piece(self.table, piece, list(columns), filters)

    def read_all(self, columns: Sequence[str], filters=None) -> tuple[np.ndarray, pa.Table]:
        """``(gid, table)`` of all rows that pass ``filters``, in source order."""
        parts = [self.read(p, columns, filters) for p in self.pieces]
        if not parts:
            return np.zeros(0, np.int64), pa.table({c: pa.array([], pa.float64()) for c in columns})
        return (
            np.concatenate([g for g, _ in parts]),
            pa.concat_tables([t for _, t in parts]),
        )

    def pieces_within(self, box: tuple[float, float, float, float]) -> list[Piece]:
        """Pieces whose x/y statistics intersect ``box`` (all pieces without statistics)."""
        x0, y0, x1, y1 = box
        out = []
        for p in self.pieces:
            b = p.bbox
            if b is None or not (b[2] < x0 or b[0] > x1 or b[3] < y0 or b[1] > y1):
                out.append(p)
        return out

    def coalesced(self, max_rows: int) -> list[Piece]:
        """Pieces merged per file into runs of about ``max_rows`` rows (fewer, larger tasks)."""
        if self.table is not None:
            return list(self.pieces)
        out: list[Piece] = []
        run: list[Piece] = []
        for p in self.pieces:
            if run and (p.path != run[0].path or p.stop - run[0].start > max_rows):
                out.append(_merge(run))
                run = []
            run.append(p)
        if run:
            out.append(_merge(run))
        return out


def _merge(run: list[Piece]) -> Piece:
    return Piece(
        run[0].path,
        tuple(g for p in run for g in p.row_groups),
        run[0].start,
        run[-1].stop,
        None,
    )


def read_piece(
    table: pa.Table | None, piece: Piece, columns: list[str], filters=None
) -> tuple[np.ndarray, pa.Table]:
    """Read one piece (a function of plain data, so it runs on a worker)."""
    expr = _filter_expression(filters)
    _, rows = _split(filters)
    file_columns = [c for c in columns if c != DERIVED_WEIGHT]
    if piece.path is None:
        full = table.slice(piece.start, piece.stop - piece.start)
        gid = np.arange(piece.start, piece.stop, dtype=np.int64)
        extra = rows.columns(full.column_names) if rows is not None else []
        t = full.select(list(dict.fromkeys(file_columns + extra)))
        if expr is not None:
            # Filter on the whole slice (filter columns may not be among `columns`).
            keep = _mask(full, expr)
            t = t.filter(keep)
            gid = gid[np.asarray(keep)]
    else:
        pf = pq.ParquetFile(piece.path)
        names = pf.schema_arrow.names
        need = file_columns + (_expr_columns(expr, pf) if expr is not None else [])
        need += rows.columns(names) if rows is not None else []
        t = pf.read_row_groups(list(piece.row_groups), columns=list(dict.fromkeys(need)))
        gid = np.arange(piece.start, piece.start + t.num_rows, dtype=np.int64)
        if expr is not None:
            keep = _mask(t, expr)
            t = t.filter(keep)
            gid = gid[np.asarray(keep)]
    if rows is not None:
        keep, t = rows.apply(t)
        if keep is not None:
            gid = gid[keep]
    return gid, t.select(columns)


def _mask(t: pa.Table, expr: pc.Expression) -> pa.Array:
    # A dataset over the in-memory table evaluates any expression pyarrow supports.
    import pyarrow.dataset as ds

    t2 = t.append_column("__row", pa.array(np.arange(t.num_rows, dtype=np.int64)))
    kept = ds.dataset(t2).to_table(columns=["__row"], filter=expr)["__row"].to_numpy()
    keep = np.zeros(t.num_rows, bool)
    keep[kept] = True
    return pa.array(keep)


def _expr_columns(expr: pc.Expression, pf: pq.ParquetFile) -> list[str]:
    # pyarrow has no public API listing an expression's fields: keep the columns whose
    # name appears as a field reference in its text form.
    text = str(expr)
    return [n for n in pf.schema_arrow.names if n in text]


def as_source(data, *, x: str = "x", y: str = "y") -> Source:
    """``data`` as a :class:`Source` (a Source is returned as is)."""
    if isinstance(data, Source):
        return data
    if isinstance(data, Path):
        data = [data]
    return Source(data, x=x, y=y)


def xy(t: pa.Table, x: str, y: str) -> np.ndarray:
    """The (n, 2) float64 coordinate array of a table."""
    X = np.empty((t.num_rows, 2), np.float64)
    X[:, 0] = t[x].to_numpy(zero_copy_only=False)
    X[:, 1] = t[y].to_numpy(zero_copy_only=False)
    return X


# -- a workspace's files, for engines -------------------------------------------------


def dataset_files(ws, info) -> list[str] | None:
    """The part files an engine's workers read for a dataset version, or None.

    None when the store keeps no files (PostGIS) or the layer has no working ``x``, ``y``
    (geometries that are not all non-empty points): the analysis then runs in process.
    """
    try:
        files = ws.store.layer_files(info.layer)
    except (AttributeError, NotImplementedError):
        return None
    if not files:
        return None
    names = pq.ParquetFile(files[0]).schema_arrow.names
    return [str(f) for f in files] if {"x", "y"} <= set(names) else None


def firm_rows(
    ws,
    info,
    *,
    sectors=None,
    sector_group: str | None = None,
    weight: str | None = None,
    key: tuple[str, str] | None = None,
) -> FirmRows:
    """The :class:`FirmRows` of an analysis' selection (as ``read_firms(pushdown=True)``)."""
    from geocluster.analyses._inputs import custom_groups, division_filter, sectors_list

    custom = custom_groups(ws, sector_group)
    pushdown = (
        division_filter(sectors, sector_group, custom)
        if "isic_division" in (info.columns or [])
        else None
    )
    chosen = sectors_list(sectors)
    return FirmRows(
        filters=pushdown,
        sectors=tuple(chosen) if chosen is not None else None,
        sector_group=sector_group,
        custom_groups=tuple((k, tuple(v)) for k, v in custom.items()) if custom else None,
        key=key,
        weight=weight,
    )


def sector_dbscan(
    files: list[str], rows: FirmRows, value: str, *, eps_m, min_samples, weight=None, summary=None
):
    """DBSCAN of one sector's firms of a national scan, read from the files (a task).

    Only the row groups whose statistics of the sector's column can hold ``value`` are
    read (the register is stored division by division), then ``rows`` keeps the exact
    selection. Returns ``(firm_id, labels, core)`` in storage order, so the caller can
    check that it got the very rows it clusters; with ``summary`` (a
    :class:`geocluster.engine._summary.SummarySpec`) also the sector's cluster summary
    table, made here from its firms as the workspace reads them
    (``(firm_id, labels, core, clusters)``).
    """
    import dataclasses

    from geocluster.clustering.dbscan import GridDBSCAN

    level = rows.key[0] if rows.key else "division"
    rows = dataclasses.replace(rows, key=(level, value))
    column = {"section": "isic_section"}.get(level, "isic_division")
    stat = value if level != "group" else value[:2]
    keep = []
    for path in files:
        meta = pq.ParquetFile(path).metadata
        leaves = [meta.schema.column(i).path for i in range(meta.num_columns)]
        groups = []
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            st = rg.column(leaves.index(column)).statistics if column in leaves else None
            if st is None or not st.has_min_max or st.min <= stat <= st.max:
                groups.append(g)
        if groups:  # one read per file (row numbers are not needed here)
            keep.append(Piece(path, tuple(groups), 0, 0, None))
    cols = ["firm_id", "x", "y"] + ([DERIVED_WEIGHT] if weight else [])
    if summary is not None:
        names = pq.read_schema(files[0]).names if files else []
        cols += [c for c in summary.columns if c in names and c not in cols]
    parts = [read_piece(None, p, cols, rows) for p in keep]
    if parts:
        t = pa.concat_tables([t for _, t in parts])
    else:
        t = pa.table({c: pa.array([], pa.float64()) for c in cols})
    X = xy(t, "x", "y")
    ids = np.asarray(t["firm_id"].to_pandas().astype(str).to_numpy(), dtype=object)
    if len(X) == 0:
        labels, core = np.zeros(0, np.int64), np.zeros(0, bool)
    else:
        w = np.asarray(t[DERIVED_WEIGHT].to_numpy(), float) if weight else None
        model = GridDBSCAN(eps_m, min_samples=min_samples).fit(X, sample_weight=w)
        labels = np.asarray(model.labels_, np.int64)
        core = np.zeros(len(X), bool)
        core[model.core_sample_indices_] = True
    if summary is None:
        return ids, labels, core
    from geocluster.engine._summary import summarize_table

    return ids, labels, core, summarize_table(t, labels, core, summary)
