"""Ingest of a firm register too large for memory: validated chunk by chunk, stored in parts.

A CSV or GeoParquet file of firms over :func:`chunk_threshold_bytes` (or with the option
``chunk_rows``) is read in chunks of rows. Each chunk goes through exactly the checks of
an in-memory ingest (:mod:`geocluster.ingest._prepare`: column roles, coordinates and
CRS, sector codes, plausibility bounds, duplicates within the chunk), with its rows
numbered as in the file, and is spilled to a temp Arrow IPC file sorted by ISIC
division and Hilbert key, in pieces of :data:`PIECE_ROWS` rows. What needs the whole
file is then settled with one 8-byte hash per row in memory and reads of the spills:

- duplicate firm ids *across* chunks (64-bit FNV-1a hashes of every id; equal hashes are
  compared as strings, so a collision never rejects a firm; the first occurrence wins,
  as in memory; one sorted copy of the hashes while checking);
- the working CRS, from the very rows an in-memory ingest samples (the same seeded
  draw of positions, gathered from the spills), so the same choice;
- the layer's extent.

A second pass writes the layer division by division, each division in Hilbert-key ranges
of about :data:`BATCH_ROWS` rows (a stable sort by key of pieces read in file order is
the in-memory order): the row order, row groups and part files an in-memory ingest of
the same file would write (tested equal). Memory is bounded by one chunk, one batch and
8 bytes per row (16 during the id check), whatever the file or its largest division. Rejections and warnings are
merged (counts summed). Spill files are named ``.tmp-<pid>-<layer>...`` in the store's
folder: removed when the ingest ends or fails, and at the next start after a kill.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from geocluster.errors import UnusableFile
from geocluster.ingest._distinct import string_hashes
from geocluster.ingest._options import IngestOptions, Rejection
from geocluster.ingest._prepare import (
    _firms,
    _locate,
    _text_columns,
    _working_crs,
    firm_columns,
)
from geocluster.ingest._rejects import Rejector
from geocluster.io import RawTable
from geocluster.store import geoparquet as gp

Progress = Callable[[float, str], None]

#: Rows per chunk when a large file is read in chunks without the ``chunk_rows`` option.
#: Half a million: the reader, the checks and the spill writer overlap in a pipeline
#: that fills and drains a chunk at each end; measured on 5M firms, 1M-row chunks took
#: 6.7-6.9 s and 1.32 GB, 500k-row chunks 6.4 s and 1.07 GB (250k: the same time).
CHUNK_ROWS = 500_000
#: Files of firms larger than this are ingested in chunks (``GEOCLUSTER_INGEST_CHUNK_MB``).
DEFAULT_THRESHOLD_MB = 256
_FORMATS = ("csv", "geoparquet")
_DIVISION = "isic_division"
_HELPERS = ("_lon", "_lat", "_row", "_pos", "_key")
#: Rows per record batch of a spill file.
PIECE_ROWS = 65_536
#: Rows the second pass holds at once: a larger division is written in key ranges.
BATCH_ROWS = 1_000_000


def chunk_threshold_bytes() -> int:
    """File size above which firms are ingested in chunks (env ``GEOCLUSTER_INGEST_CHUNK_MB``)."""
    raw = os.environ.get("GEOCLUSTER_INGEST_CHUNK_MB")
    try:
        mb = float(raw) if raw not in (None, "") else DEFAULT_THRESHOLD_MB
    except ValueError:
        mb = DEFAULT_THRESHOLD_MB
    return int(max(mb, 0) * 2**20)


def chunk_rows_for(kind: str, path: Path, fmt: str, opts: IngestOptions, store: Any) -> int | None:
    """Rows per chunk if this file is to be ingested in chunks, else ``None``.

    Only firms from CSV or GeoParquet into a store that writes files (the embedded
    store) stream; other kinds are small (regions, assets) and other formats are read
    whole by their libraries.
    """
    if kind != "firms" or fmt not in _FORMATS or not hasattr(store, "new_layer"):
        return None
    if opts.chunk_rows is not None:
        return int(opts.chunk_rows)
    if path.stat().st_size > chunk_threshold_bytes():
        return CHUNK_ROWS
    return None


@dataclass
class ChunkedIngest:
    """A written (pending, not yet committed) firm layer and what the ingest found."""

    layer: gp.WrittenLayer
    columns: list[str]
    rejected: list[Rejection]
    source_crs: str
    working_crs: str
    warnings: list[str]
    chunks: int


def _raw_chunks(path: Path, fmt: str, opts: IngestOptions, chunk_rows: int):
    """``(notes, iterator of RawTable)`` of the file in chunks."""
    if fmt == "csv":
        from geocluster.io._csv import iter_csv_chunks

        notes, frames = iter_csv_chunks(
            path, text_columns=_text_columns("firms", opts), chunk_rows=chunk_rows
        )
        return notes, (RawTable(f, "csv", None, None, notes) for f in frames)
    from geocluster.io._vector import iter_geoparquet_chunks

    crs, frames = iter_geoparquet_chunks(path, chunk_rows=chunk_rows)
    return [], (RawTable(f, "geoparquet", crs, None, []) for f in frames)


_COUNTED = re.compile(r"^(\d+) (.+)$", re.DOTALL)


def merge_warnings(per_chunk: list[list[str]]) -> list[str]:
    """One list of warnings: repeated ones once, counts of ``"<n> ..."`` ones summed."""
    order: list[tuple[bool, str]] = []
    totals: dict[tuple[bool, str], int] = {}
    for warnings in per_chunk:
        for w in warnings:
            m = _COUNTED.match(w)
            key = (True, m.group(2)) if m else (False, w)
            if key not in totals:
                order.append(key)
                totals[key] = 0
            totals[key] += int(m.group(1)) if m else 0
    return [f"{totals[k]} {k[1]}" if k[0] else k[1] for k in order]


def _division_ranks(division: pa.ChunkedArray) -> tuple[np.ndarray, list[str | None]]:
    """Each row's division as its rank among the chunk's divisions (null first).

    Returns the ranks (uint32) and the division of each rank: ``names[rank[i]]``.
    Names are ordered as Arrow sorts text (UTF-8 bytes, which is code point order).
    """
    encoded = pc.dictionary_encode(division.combine_chunks())
    names = encoded.dictionary.to_pylist()
    by_name = sorted(range(len(names)), key=lambda i: names[i])
    rank_of = np.empty(len(names) + 1, dtype=np.uint32)
    rank_of[by_name] = np.arange(1, len(names) + 1, dtype=np.uint32)
    rank_of[len(names)] = 0  # null
    codes = encoded.indices.fill_null(len(names)).to_numpy()
    return rank_of[codes], [None] + [names[i] for i in by_name]


def _project(pool: ThreadPoolExecutor, transformers: list, lon: np.ndarray, lat: np.ndarray):
    """``transformers[0].transform(lon, lat)``, the two halves on two threads.

    PROJ releases the GIL: 1M points in half the time, the values of one call point for
    point (each point is transformed on its own).
    """
    n = len(lon)
    if n < 100_000:
        return transformers[0].transform(lon, lat)
    half = n // 2
    parts = [slice(0, half), slice(half, n)]
    done = list(pool.map(lambda t, s: t.transform(lon[s], lat[s]), transformers, parts))
    return np.concatenate([done[0][0], done[1][0]]), np.concatenate([done[0][1], done[1][1]])


class _Spill:
    """One chunk's accepted rows on disk (Arrow IPC), sorted by division then Hilbert key.

    Each division's run is cut into pieces of at most :data:`PIECE_ROWS` rows, one
    record batch each, with the first and last key recorded: the second pass reads a
    key range of a division from the pieces that can hold it.
    """

    def __init__(self, path: Path, table: pa.Table) -> None:
        self.path = path
        rank, names = _division_ranks(table.column(_DIVISION))
        keys = table.column("_key").to_numpy()
        # one stable sort of (division rank, key): null division first, then by name;
        # equal keys keep the file's order (Arrow's two-key sort_indices, 4x cheaper)
        order = np.argsort((rank.astype(np.uint64) << np.uint64(32)) | keys, kind="stable")
        batch = gp.take_rows(table, order).combine_chunks().to_batches()
        batch = batch[0] if batch else pa.RecordBatch.from_pylist([], schema=table.schema)
        rank, keys = rank[order], keys[order]
        n = len(rank)
        starts = [0, *(np.flatnonzero(rank[1:] != rank[:-1]) + 1).tolist()] if n else []
        #: division -> [(batch index, first key, last key, rows)], in key order
        self.groups: dict[str | None, list[tuple[int, int, int, int]]] = {}
        g = 0
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
            for a, b in zip(starts, [*starts[1:], n], strict=True):
                pieces = self.groups.setdefault(names[int(rank[a])], [])
                for lo in range(a, b, PIECE_ROWS):
                    hi = min(lo + PIECE_ROWS, b)
                    writer.write_batch(batch.slice(lo, hi - lo))
                    pieces.append((g, int(keys[lo]), int(keys[hi - 1]), hi - lo))
                    g += 1
        self.schema = batch.schema
        self._file: pa.ipc.RecordBatchFileReader | None = None
        self._source: pa.OSFile | None = None

    def piece(self, g: int) -> pa.Table:
        if self._file is None:  # read, not mapped: a mapped spill would stay in RSS
            self._source = pa.OSFile(str(self.path), "rb")
            self._file = pa.ipc.open_file(self._source)
        return pa.Table.from_batches([self._file.get_batch(g)])

    def read(self, division: str | None, lo_key: int = 0, hi_key: int = 1 << 40) -> list[pa.Table]:
        """The division's rows with ``lo_key <= key < hi_key``, in key (then file) order."""
        out = []
        for g, first, last, _ in self.groups.get(division, ()):
            if last < lo_key or first >= hi_key:
                continue
            t = self.piece(g)
            if first < lo_key or last >= hi_key:
                keys = t["_key"].to_numpy()
                a, b = np.searchsorted(keys, [lo_key, hi_key], side="left")
                t = t.slice(int(a), int(b - a))
            if t.num_rows:
                out.append(t)
        return out

    def all_pieces(self):
        for pieces in self.groups.values():
            for g, *_ in pieces:
                yield self.piece(g)

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
        self._file = self._source = None
        self.path.unlink(missing_ok=True)


def _key_ranges(
    spills: list[_Spill], division: str | None, batch_rows: int
) -> list[tuple[int, int]]:
    """Hilbert-key ranges ``[lo, hi)`` of a division holding about ``batch_rows`` rows each.

    Cut at piece boundaries (pieces sorted by first key, rows accumulated): equal keys
    always fall in one range, so writing the ranges one after the other gives the order
    of one sort of the whole division.
    """
    pieces = sorted((first, n) for s in spills for _, first, _, n in s.groups.get(division, ()))
    total = sum(n for _, n in pieces)
    if total <= batch_rows:
        return [(0, 1 << 40)]
    cuts, acc = [], 0
    for first, n in pieces:
        if acc >= batch_rows and (not cuts or first > cuts[-1]):
            cuts.append(first)
            acc = 0
        acc += n
    bounds = [0, *cuts, 1 << 40]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _unify(schemas: list[pa.Schema]) -> pa.Schema:
    """One schema for every chunk: numbers widen to float64, mixed kinds become text."""
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    fields = []
    for fld in schemas[0]:
        types = {s.field(fld.name).type for s in schemas if fld.name in s.names}
        if len(types) == 1:
            fields.append(fld)
        elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
            fields.append(fld.with_type(pa.float64()))
        else:
            fields.append(fld.with_type(pa.string()))
    return pa.schema(fields)


def _duplicates(
    spills: list[_Spill], hashes: np.ndarray, id_column: str | None
) -> list[tuple[int, int, Rejection]]:
    """Repeated firm ids over the whole file, as an in-memory ingest rejects them: the
    first occurrence (by source row) stays. Equal hashes are only candidates; they are
    compared as text. Returns ``(position, source row, rejection)`` of each."""
    if len(hashes) < 2:
        return []
    # 16 bytes a row at most (the hashes and one sorted copy), no argsort of the file
    sorted_h = np.sort(hashes)
    repeated = np.unique(sorted_h[1:][sorted_h[1:] == sorted_h[:-1]])
    del sorted_h
    if not len(repeated):
        return []
    candidates = np.zeros(len(hashes), dtype=bool)
    for start in range(0, len(hashes), 1 << 20):  # blockwise: no row-sized index array
        block = hashes[start : start + (1 << 20)]
        at = np.minimum(np.searchsorted(repeated, block), len(repeated) - 1)
        candidates[start : start + len(block)] = repeated[at] == block
    found: list[pa.Table] = []
    for spill in spills:
        for t in spill.all_pieces():
            t = t.select(["_pos", "_row", "firm_id"])
            t = t.filter(pa.array(candidates[t["_pos"].to_numpy()]))
            if t.num_rows:
                found.append(t)
    got = pa.concat_tables(found).to_pydict()
    first: dict[str, int] = {}
    out = []
    for row, pos, firm_id in sorted(zip(got["_row"], got["_pos"], got["firm_id"])):
        if firm_id in first:  # by source row: the first occurrence stays
            reason = f"duplicate firm_id {firm_id!r} (first at row {first[firm_id]})"
            out.append((int(pos), int(row), Rejection(int(row), id_column, reason)))
        else:
            first[firm_id] = int(row)
    return out


def _gather(spills: list[_Spill], positions: np.ndarray, columns: list[str]) -> dict:
    """``{column: values}`` of the accepted rows at ``positions`` (in that order)."""
    want = _mask(int(positions.max()) + 1 if len(positions) else 0, positions)
    found = []
    for spill in spills:
        for t in spill.all_pieces():
            pos = t["_pos"].to_numpy()
            t = t.filter(pa.array((pos < len(want)) & want[np.minimum(pos, len(want) - 1)]))
            if t.num_rows:
                found.append(t.select(["_pos", *columns]))
    t = pa.concat_tables(found)
    pos = t["_pos"].to_numpy()
    by_pos = np.argsort(pos)
    idx = by_pos[np.searchsorted(pos[by_pos], positions)]
    return {c: t[c].to_numpy()[idx] for c in columns}


def _extend(box: list[float], lon: np.ndarray, lat: np.ndarray) -> list[float]:
    """``box`` (xmin, ymin, xmax, ymax) grown to hold the points."""
    return [
        min(box[0], lon.min()),
        min(box[1], lat.min()),
        max(box[2], lon.max()),
        max(box[3], lat.max()),
    ]


def _mask(n: int, positions: np.ndarray) -> np.ndarray:
    """Boolean mask of ``positions`` among ``n`` rows (one byte a row, O(1) lookups:
    ``pyarrow.compute.is_in`` rebuilds its hash set on every call)."""
    mask = np.zeros(max(n, 1), dtype=bool)
    mask[np.asarray(positions, dtype=np.int64)] = True
    return mask


def _kept_positions(j: np.ndarray, dropped: np.ndarray) -> np.ndarray:
    """Positions among all accepted rows of the ``j``-th rows left after ``dropped``."""
    if not len(dropped):
        return j
    shifted = dropped - np.arange(len(dropped))
    return j + np.searchsorted(shifted, j, side="right")


def _working_crs_of(opts: IngestOptions, spills: list[_Spill], n: int, dropped: np.ndarray) -> str:
    """The working CRS an in-memory ingest picks: from the same seeded sample of rows."""
    from geocluster.crs import WORKING_CRS_SAMPLE

    if opts.working_crs is not None:
        return _working_crs(opts, np.zeros(1), np.zeros(1))
    if n > WORKING_CRS_SAMPLE:  # the sample geocluster.crs.working_crs_for draws
        j = np.random.default_rng(0).choice(n, WORKING_CRS_SAMPLE, replace=False)
    else:
        j = np.arange(n)
    got = _gather(spills, _kept_positions(j, dropped), ["_lon", "_lat"])
    return _working_crs(opts, got["_lon"], got["_lat"])


def ingest_firms(
    path: Path,
    fmt: str,
    opts: IngestOptions,
    store: Any,
    *,
    prefix: str,
    chunk_rows: int,
    progress: Progress,
    land: object = None,
) -> ChunkedIngest:
    """Validate and write a firm file chunk by chunk (see the module docstring).

    Returns the written layer, not yet visible: the caller commits it with the dataset
    row (or the store removes it if the caller fails).

    Raises
    ------
    UnusableFile, CRSError, InvalidInput, MissingColumns
        As an in-memory ingest; nothing is left behind.
    """
    from pyproj import Transformer

    expected_rows = _expected_rows(path, fmt)
    # One thread beside the main one: spill and layer writes (Arrow and Parquet release
    # the GIL) overlap the validation of the next chunk or the gathering of the next
    # division; at most one write is in flight, so memory stays bounded.
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geocluster-ingest")
    with store.new_layer(prefix) as name:
        spills: list[_Spill] = []
        pending: Future | None = None
        reading = None
        try:
            notes, chunks = _raw_chunks(path, fmt, opts, chunk_rows)
            per_chunk_warnings: list[list[str]] = []
            rejected: list[Rejection] = []
            hash_parts: list[np.ndarray] = []
            accepted = 0
            box = [np.inf, np.inf, -np.inf, -np.inf]
            source_crs: str | None = None
            columns: list[str] | None = None
            id_column: str | None = None
            first_row = 0
            reading = _prefetched(chunks)
            for k, raw in enumerate(reading):
                n = len(raw.frame)
                rej = Rejector(np.arange(first_row + 1, first_row + n + 1))
                warnings: list[str] = []
                located = _locate(raw, opts, "firms", rej, warnings, land)
                if k == 0:
                    header = [str(c) for c in raw.frame.columns]
                    id_column = firm_columns(header, opts, located.used)[1]["firm_id"]
                points = located.lonlat is not None
                frame = _firms(
                    raw,
                    opts,
                    rej,
                    warnings,
                    located,
                    lambda f, m: None,
                    geometry=not points,
                    duplicates=False,  # over the whole file, below
                )
                alive = rej.alive
                rejected.extend(rej.rejections())
                per_chunk_warnings.append(warnings)
                if source_crs is None:
                    source_crs = located.source_crs
                if points:
                    lon, lat = located.lonlat[0][alive], located.lonlat[1][alive]
                    attrs = frame
                else:
                    xy = shapely.get_coordinates(frame.geometry.to_numpy())
                    lon, lat = xy[:, 0], xy[:, 1]
                    attrs = pd.DataFrame(frame.drop(columns=[frame.geometry.name]))
                if columns is None:
                    columns = [str(c) for c in attrs.columns]
                attrs = attrs.drop(columns=[c for c in (gp.BBOX, "x", "y") if c in attrs.columns])
                table = gp._attributes_table(attrs)
                source_rows = rej.source_rows[alive]
                table = (
                    table.append_column("_lon", pa.array(lon, pa.float64()))
                    .append_column("_lat", pa.array(lat, pa.float64()))
                    .append_column("_row", pa.array(source_rows, pa.int64()))
                    .append_column("_pos", pa.array(np.arange(accepted, accepted + len(lon))))
                    .append_column("_key", pa.array(gp.hilbert_order(lon, lat)))
                )
                if len(frame):
                    ids = table["firm_id"].combine_chunks()
                    hash_parts.append(string_hashes(ids.cast(pa.string())))
                    accepted += len(lon)
                    box = _extend(box, lon, lat)
                    spill_path = store.data_dir / f".tmp-{os.getpid()}-{name}.spill{k}.arrow"
                    if pending is not None:
                        spills.append(pending.result())
                    pending = background.submit(_Spill, spill_path, table)
                first_row += n
                progress(
                    0.6 * min(first_row / expected_rows, 0.99),
                    f"validated {first_row:,} rows (chunk {k + 1})",
                )
                del raw, frame, attrs, table, located, rej
            if pending is not None:
                spills.append(pending.result())
                pending = None
            warnings = [f"read {fmt}: {n}" for n in notes] + merge_warnings(per_chunk_warnings)
            hashes = np.concatenate(hash_parts) if hash_parts else np.zeros(0, np.uint64)
            del hash_parts
            progress(0.6, "checking firm ids across the file")
            duplicates = _duplicates(spills, hashes, id_column)
            del hashes
            rejected.extend(r for _, _, r in duplicates)
            rejected.sort(key=lambda r: r.row)
            dropped = np.array(sorted(p for p, _, _ in duplicates), dtype=np.int64)
            drop_mask = _mask(accepted, dropped) if len(dropped) else None
            n_rows = accepted - len(dropped)
            if not n_rows:
                first = "; ".join(f"row {r.row} {r.column or ''}: {r.reason}" for r in rejected[:3])
                raise UnusableFile(
                    f"no usable rows in {path.name}: {len(rejected)} rejected"
                    + (f" (first: {first})" if first else "")
                )
            working = _working_crs_of(opts, spills, n_rows, dropped)
            if len(dropped):  # a dropped row may have held an extreme: the kept ones' box
                box = [np.inf, np.inf, -np.inf, -np.inf]
                for spill in spills:
                    for t in spill.all_pieces():
                        t = t.filter(pa.array(~drop_mask[t["_pos"].to_numpy()]))
                        if t.num_rows:
                            lo, la = t["_lon"].to_numpy(), t["_lat"].to_numpy()
                            box = _extend(box, lo, la)
            total_bbox = [float(v) for v in box]

            # -- pass 2: the layer, division by division --------------------------------
            attr_schema = _unify(
                [pa.schema([f for f in s.schema if f.name not in _HELPERS]) for s in spills]
            )
            spill_schema = pa.schema([*attr_schema, *(spills[0].schema.field(h) for h in _HELPERS)])
            schema = (
                attr_schema.append(pa.field(gp.GEOMETRY, pa.binary()))
                .append(pa.field(gp.BBOX, pa.struct([(f, pa.float64()) for f in gp._BBOX_FIELDS])))
                .append(pa.field("x", pa.float64()))
                .append(pa.field("y", pa.float64()))
                .with_metadata(gp.geo_metadata(["Point"], total_bbox))
            )
            dictionary = True if n_rows < 50_000 else _dictionary(spills[0])
            divisions = sorted(
                {d for s in spills for d in s.groups}, key=lambda d: (d is not None, d or "")
            )
            # one transformer per half of a batch (they are not shared between threads)
            halves = [Transformer.from_crs("EPSG:4326", working, always_xy=True) for _ in (0, 1)]
            projecting = ThreadPoolExecutor(2, thread_name_prefix="geocluster-project")
            writer = gp.LayerWriter(store.data_dir, name, schema, dictionary=dictionary)
            try:
                for i, division in enumerate(divisions):
                    for lo_key, hi_key in _key_ranges(spills, division, BATCH_ROWS):
                        parts = [p for s in spills for p in s.read(division, lo_key, hi_key)]
                        if not parts:
                            continue
                        t = pa.concat_tables(
                            [_cast(p.select(spill_schema.names), spill_schema) for p in parts]
                        ).combine_chunks()
                        if drop_mask is not None:
                            t = t.filter(pa.array(~drop_mask[t["_pos"].to_numpy()]))
                        if not t.num_rows:
                            continue
                        # pieces come in chunk (= file) order, each sorted by key: a stable
                        # sort by key is the in-memory order (key, then file order)
                        order = np.argsort(t["_key"].to_numpy(), kind="stable")
                        lon = t["_lon"].to_numpy()[order]
                        lat = t["_lat"].to_numpy()[order]
                        t = gp.take_rows(t.select(attr_schema.names), order)
                        t = gp.point_columns(t, lon, lat)
                        x, y = _project(projecting, halves, lon, lat)
                        t = t.append_column("x", pa.array(np.asarray(x, "float64")))
                        t = t.append_column("y", pa.array(np.asarray(y, "float64")))
                        if pending is not None:
                            pending.result()
                        pending = background.submit(
                            writer.add, t.replace_schema_metadata(schema.metadata), lo_key == 0
                        )
                    progress(
                        0.6 + 0.4 * (i + 1) / len(divisions),
                        f"wrote {writer.rows:,} of {n_rows:,} rows (division {division or 'none'})",
                    )
                if pending is not None:
                    pending.result()
                    pending = None
                files = writer.close()
            finally:
                writer.abort()
                projecting.shutdown(wait=True)
        finally:
            if reading is not None:  # stops the reader thread at once on an error
                reading.close()
            if pending is not None:  # a failure elsewhere: let the write end, then clean up
                try:
                    done = pending.result()
                    if isinstance(done, _Spill):
                        spills.append(done)
                except BaseException:  # noqa: BLE001 - the first error is the one to report
                    pass
            background.shutdown(wait=True)
            for spill in spills:
                spill.close()
    layer = gp.WrittenLayer(
        name, files, writer.rows, True, ["Point"], total_bbox, [*attr_schema.names, "x", "y"]
    )
    return ChunkedIngest(
        layer,
        columns or [],
        rejected,
        source_crs or "EPSG:4326",
        working,
        warnings,
        len(per_chunk_warnings),
    )


def _dictionary(spill: _Spill, sample_rows: int = 65_536) -> list[str] | bool:
    """Dictionary-encoded columns, chosen as an in-memory write does, from a chunk's rows."""
    parts, rows = [], 0
    for t in spill.all_pieces():
        parts.append(t)
        rows += t.num_rows
        if rows >= sample_rows:
            break
    chosen = gp._dictionary_columns(pa.concat_tables(parts))
    return chosen if chosen is True else [c for c in chosen if c not in _HELPERS]


def _prefetched(items, depth: int = 1):
    """The items of an iterator, produced ``depth`` ahead in a thread.

    Reading the next chunk (pyarrow's CSV reader and casts release the GIL) then
    overlaps the validation of the current one. Errors reach the consumer in order.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, end))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put((False, exc))

    thread = threading.Thread(target=run, name="geocluster-ingest-read", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is end:
                return
            yield item
            del item
    finally:
        stop.set()
        thread.join()


def _expected_rows(path: Path, fmt: str) -> int:
    """Rows the file probably holds (for progress only): Parquet's count, or from line lengths."""
    if fmt != "csv":
        try:
            return max(pq.ParquetFile(path).metadata.num_rows, 1)
        except (OSError, pa.ArrowException):
            return 1  # the reader reports what is wrong with the file
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    per_row = len(head) / max(head.count(b"\n"), 1)
    return max(int(path.stat().st_size / per_row), 1)


def _cast(t: pa.Table, schema: pa.Schema) -> pa.Table:
    """``t`` in ``schema``'s types; a column that cannot widen becomes text."""
    if t.schema.equals(schema):
        return t
    cols = []
    for fld in schema:
        col = t[fld.name]
        if not col.type.equals(fld.type):
            col = pc.cast(col, fld.type)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)
