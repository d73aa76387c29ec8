"""Ingest at scale: a table too large for memory, streamed into several Parquet files.

:func:`write_partitioned` reads a CSV in blocks (``pyarrow.csv.open_csv``) or consumes an
iterator of frames, lets the caller turn each chunk into canonical rows (``transform``),
and writes part files of at most ``rows_per_file`` rows. Memory stays bounded by one
part file's rows whatever the input size. Each part is sorted along a Hilbert curve of its
own ``x``, ``y`` extent (when it has those columns), so its row groups are compact boxes
that the engines' readers skip by statistics. Pure: it writes only into ``out_dir`` and
knows nothing about the catalog (the store decides names and makes the files visible).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from geocluster.errors import InvalidInput, UnusableFile

__all__ = ["write_partitioned", "hilbert_sort"]

#: Rows per Parquet row group (the unit the engines read and skip).
ROW_GROUP_ROWS = 65_536


def hilbert_sort(t: pa.Table, x: str = "x", y: str = "y", *, level: int = 16) -> pa.Table:
    """Rows of ``t`` ordered along a Hilbert curve over their own x/y extent.

    Rows with a missing coordinate go last, in their original order.
    """
    from geocluster.store._hilbert import encode as _encode

    if t.num_rows < 2 or x not in t.column_names or y not in t.column_names:
        return t
    cx = np.asarray(t[x].to_numpy(zero_copy_only=False), float)
    cy = np.asarray(t[y].to_numpy(zero_copy_only=False), float)
    ok = np.isfinite(cx) & np.isfinite(cy)
    if not ok.any():
        return t
    n = (1 << level) - 1
    x0, x1 = cx[ok].min(), cx[ok].max()
    y0, y1 = cy[ok].min(), cy[ok].max()
    ix = np.clip((np.nan_to_num(cx) - x0) / max(x1 - x0, 1e-9) * n, 0, n).astype(np.uint32)
    iy = np.clip((np.nan_to_num(cy) - y0) / max(y1 - y0, 1e-9) * n, 0, n).astype(np.uint32)
    key = _encode(level, ix, iy).astype(np.uint64)
    key[~ok] = np.iinfo(np.uint64).max
    return t.take(pa.array(np.argsort(key, kind="stable")))


def _chunks_of_csv(path: Path, block_bytes: int, read_options, convert_options):
    ro = read_options or pacsv.ReadOptions(block_size=block_bytes)
    try:
        reader = pacsv.open_csv(path, read_options=ro, convert_options=convert_options)
    except (OSError, pa.ArrowInvalid) as exc:
        raise UnusableFile(f"could not read the CSV file: {_reason(exc)}") from None
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise UnusableFile(f"could not read the CSV file: {_reason(exc)}") from None
        yield pa.Table.from_batches([batch])


_PARQUET = {".parquet", ".geoparquet", ".pq"}


def _chunks_of_parquet(path: Path, block_bytes: int):
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise UnusableFile(f"could not read the Parquet file: {_reason(exc)}") from None
    # Batches of about block_bytes, from the file's own average row width.
    md = pf.metadata
    total = sum(md.row_group(g).total_byte_size for g in range(md.num_row_groups))
    row_bytes = max(1, total // max(md.num_rows, 1))
    for batch in pf.iter_batches(batch_size=max(1024, block_bytes // row_bytes)):
        yield pa.Table.from_batches([batch])


def _reason(exc: Exception) -> str:
    # Arrow's messages can quote file contents: keep the first clause, cut long.
    return str(exc).split("\n")[0].split(":")[0][:120]


def _as_table(chunk) -> pa.Table:
    if isinstance(chunk, pa.Table):
        return chunk
    if isinstance(chunk, pa.RecordBatch):
        return pa.Table.from_batches([chunk])
    if isinstance(chunk, pd.DataFrame):
        return pa.Table.from_pandas(chunk, preserve_index=False)
    raise InvalidInput(
        f"expected chunks as pandas DataFrames or pyarrow tables, got {type(chunk).__name__}"
    )


def _write_atomic(t: pa.Table, path: Path, row_group_rows: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(t, tmp, row_group_size=row_group_rows, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_partitioned(
    source: str | os.PathLike | Iterable,
    out_dir: str | os.PathLike,
    *,
    rows_per_file: int = 2_000_000,
    transform: Callable[[pa.Table], pa.Table] | None = None,
    x: str = "x",
    y: str = "y",
    block_bytes: int = 1 << 20,
    read_options: pacsv.ReadOptions | None = None,
    convert_options: pacsv.ConvertOptions | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
    prefix: str = "part",
) -> list[Path]:
    """Stream a large table into Parquet part files with bounded memory.

    Parameters
    ----------
    source : path of a CSV or (Geo)Parquet file, or iterable of DataFrames / pyarrow
        Tables / RecordBatches
        A Parquet file is read in batches of about ``block_bytes`` (the geometry, if any,
        stays a WKB column; the file-level GeoParquet metadata is not carried over: the
        store writes its own). A CSV is read in blocks of ``block_bytes`` (pyarrow's streaming reader: column
        types are inferred from the first block and then enforced). The reader reads
        ahead a few dozen blocks (measured: ~40), which bounds its memory.
    out_dir : path
        Folder for the part files (created if needed).
    rows_per_file : int
        Rows per part file (the last one may hold fewer). Memory use is about this many
        rows plus the CSV read-ahead, whatever the input size.
    transform : callable, optional
        Applied to every chunk before writing (validation, projection to working-CRS
        ``x``, ``y``, sector codes); must return a table with the same columns each time.
    x, y : str
        Coordinate columns used to Hilbert-sort each part (skipped if absent).
    block_bytes : int
        CSV block size, bytes.
    read_options, convert_options : pyarrow.csv options, optional
        For CSVs with other delimiters, column types, null markers.
    row_group_rows : int
        Rows per row group.
    prefix : str
        File names are ``{prefix}-00000.parquet``, ``{prefix}-00001.parquet``, ...

    Returns
    -------
    list of Path
        The part files, in source order (file ``k`` holds the rows after those of
        files ``0..k-1``, Hilbert-ordered within the file).
    """
    if isinstance(rows_per_file, bool) or int(rows_per_file) < 1:
        raise InvalidInput(f"expected rows_per_file >= 1, got {rows_per_file!r}")
    rows_per_file = int(rows_per_file)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(source, str | os.PathLike) and Path(source).suffix.lower() in _PARQUET:
        chunks = _chunks_of_parquet(Path(source), int(block_bytes))
    elif isinstance(source, str | os.PathLike):
        chunks = _chunks_of_csv(Path(source), int(block_bytes), read_options, convert_options)
    else:
        chunks = iter(source)

    paths: list[Path] = []
    buf: list[pa.Table] = []
    buffered = 0
    schema: pa.Schema | None = None

    def flush(upto: int) -> None:
        nonlocal buf, buffered
        t = pa.concat_tables(buf).combine_chunks() if len(buf) > 1 else buf[0]
        head, rest = t.slice(0, upto), t.slice(upto)
        p = out / f"{prefix}-{len(paths):05d}.parquet"
        _write_atomic(hilbert_sort(head, x, y), p, row_group_rows)
        paths.append(p)
        buf = [rest] if rest.num_rows else []
        buffered = rest.num_rows

    for chunk in chunks:
        t = _as_table(chunk)
        if transform is not None:
            t = _as_table(transform(t))
        if t.num_rows == 0:
            continue
        if schema is None:
            schema = t.schema
        elif t.schema != schema:
            try:
                t = t.cast(schema)
            except (pa.ArrowInvalid, ValueError, TypeError) as exc:
                raise UnusableFile(
                    f"a later part of the input has other columns or types than the first "
                    f"({_reason(exc)})"
                ) from None
        buf.append(t)
        buffered += t.num_rows
        while buffered >= rows_per_file:
            flush(rows_per_file)
    if buffered:
        flush(buffered)
    if not paths:
        raise UnusableFile("the input has no rows")
    return paths
