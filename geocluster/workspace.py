"""A workspace: one store plus its catalog of datasets, runs and rasters.

A workspace is a directory::

    <dir>/workspace.gpkg      layers + catalog (opens in QGIS)
    <dir>/rasters/<id>.tif    registered rasters and KDE surfaces (COG)

Datasets are addressed by id (the slug of their name); ingesting under an
existing name makes a new version, and ``"<id>@<version>"`` still reads an
older one. Analysis runs are addressed by run id; a run's primary layer is the
collection ``<run_id>`` and its other layers ``<run_id>.<layer>``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geocluster.crs import STORAGE_CRS, working_crs_for
from geocluster.errors import (
    DatasetNotFound,
    InvalidInput,
    NotFound,
    RasterNotFound,
    RunNotFound,
    UnusableFile,
    WrongKind,
)
from geocluster.store import GeoPackageStore

Progress = Callable[[float, str], None]
BBox = tuple[float, float, float, float]

KINDS = ("firms", "assets", "boundaries", "indicators")
#: How many rejections the catalog keeps per version (the ingest result has them all).
MAX_STORED_REJECTIONS = 10_000
# ids are what slugify makes: word characters of any script (数据), "_" and "-"
_ID_RE = re.compile(r"^(?P<id>[^\W_][\w\-]*)(?:@(?P<version>\d+))?$")


def slugify(name: str) -> str:
    """Dataset id of a name: lower case word characters, ``_`` and ``-``, at most 64.

    The one rule for file names on every edge (CLI path, HTTP upload name). Accents
    are transliterated (NFKD without combining marks: ``León`` -> ``leon``, so ids of
    Latin names stay ASCII and stable) and letters with no decomposition are kept,
    never dropped (``数据`` stays ``数据``, ``Ørsted`` is ``ørsted``); runs of anything
    else are one ``_``. A name with no letter or digit at all is refused.
    """
    decomposed = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    text = unicodedata.normalize("NFKC", text).strip().lower()
    slug = re.sub(r"[^\w\-]+", "_", text).strip("_-")[:64].rstrip("_-")
    if not slug:
        raise InvalidInput(f"expected a dataset name with letters or digits, got {name!r}")
    return slug


@dataclass(frozen=True)
class DatasetInfo:
    """One version of a dataset, as the catalog records it."""

    id: str
    name: str
    kind: str
    version: int
    rows: int
    crs: str | None
    source_crs: str | None
    working_crs: str | None
    bbox: list[float] | None
    created: str
    source: str | None
    checksum: str | None
    layer: str
    columns: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    rejected_count: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The public shape (CONTRACT ``POST /datasets``) plus catalog details."""
        out = asdict(self)
        out.pop("layer")
        return out


@dataclass(frozen=True)
class RunInfo:
    """One analysis run: its parameters, inputs, stored layers and summary."""

    id: str
    kind: str
    params: dict[str, Any]
    inputs: list[str]
    layers: dict[str, str]
    primary: str | None
    summary: dict[str, Any]
    created: str

    def collection_ids(self) -> list[str]:
        """Collection ids of the run's layers (primary first)."""
        ids = []
        for name in self.layers:
            ids.append(self.id if name == self.primary else f"{self.id}.{name}")
        return sorted(ids, key=lambda c: (c != self.id, c))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["layers"] = list(self.layers)
        out["collections"] = self.collection_ids()
        return out


@dataclass(frozen=True)
class RasterInfo:
    """A registered raster (COG) in the workspace."""

    id: str
    name: str
    kind: str
    path: str
    crs: str | None
    bbox: list[float] | None
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    meta: dict[str, Any]
    created: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("path")  # never expose server paths
        return out


@dataclass(frozen=True)
class CollectionInfo:
    """A dataset or a run layer, seen as an OGC API Features collection."""

    id: str
    title: str
    kind: str  # dataset kind, or "run:<kind>"
    layer: str
    rows: int
    bbox: list[float] | None
    geometry: bool
    created: str
    version: int | None = None
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("layer")
        return out


class Workspace:
    """A directory holding one GeoPackage store, its catalog, and rasters.

    Parameters
    ----------
    path : path-like
        Workspace directory; created with an empty store if missing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.rasters_dir = self.path / "rasters"
        self.store = GeoPackageStore(self.path / "workspace.gpkg")

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    # -- datasets -------------------------------------------------------------------------
    def ingest(
        self,
        kind: str,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        options: Mapping[str, Any] | Any | None = None,
        progress: Progress | None = None,
    ) -> DatasetInfo:
        """Read, validate and store a file as a new dataset version.

        Parameters
        ----------
        kind : {"firms", "assets", "boundaries", "indicators"}
        path : path-like
            The file (CSV/TSV, XLSX, GeoJSON, GPKG, zipped Shapefile, GeoParquet,
            FlatGeobuf, OSM PBF).
        name : str, optional
            Dataset name (default: the file's stem). An existing name gets a new version.
        options : dict or IngestOptions, optional
            Column and CRS options (CONTRACT.md keys).
        progress : callable(fraction, message), optional

        Returns
        -------
        DatasetInfo
            With ``rejected``: every rejected row as ``{row, column, reason}``.

        Raises
        ------
        UnusableFile
            The file as a whole cannot be used; nothing is stored.
        """
        from geocluster.ingest import IngestOptions, prepare

        if kind not in KINDS:
            raise InvalidInput(f"expected kind one of {', '.join(KINDS)}, got {kind!r}")
        path = Path(path)
        if not path.is_file():
            raise UnusableFile(f"no such file: {path.name}")
        if options is None:
            opts = IngestOptions()
        elif isinstance(options, IngestOptions):
            opts = options
        else:
            opts = IngestOptions.from_dict(dict(options))
        dataset_id = slugify(name if name is not None else path.stem)
        report = progress or (lambda fraction, message: None)

        report(0.0, f"reading {path.name}")
        prepared = prepare(kind, path, opts, progress=_scaled(report, 0.0, 0.6))
        frame = prepared.frame
        rejected = [_rejection_dict(r) for r in prepared.rejected]
        if len(frame) == 0:
            first = "; ".join(
                f"row {r['row']} {r['column'] or ''}: {r['reason']}" for r in rejected[:3]
            )
            raise UnusableFile(
                f"no usable rows in {path.name}: {len(rejected)} rejected"
                + (f" (first: {first})" if first else "")
            )
        checksum = _sha256(path)
        if (
            isinstance(frame, gpd.GeoDataFrame)
            and frame.crs is not None
            and frame.crs.to_epsg() != 4326
        ):
            frame = frame.to_crs(STORAGE_CRS)
        report(0.6, f"writing {len(frame):,} rows")
        info = self._store_dataset(
            kind,
            frame,
            dataset_id=dataset_id,
            name=name if name is not None else path.stem,
            source_crs=prepared.source_crs,
            working_crs=prepared.working_crs,
            source=path.name,
            checksum=checksum,
            rejected=rejected,
            warnings=list(prepared.warnings),
        )
        report(1.0, f"stored {info.id} v{info.version}")
        return info

    def add_dataset(
        self,
        kind: str,
        frame: gpd.GeoDataFrame | pd.DataFrame,
        *,
        name: str,
        working_crs: str | None = None,
        source: str | None = None,
    ) -> DatasetInfo:
        """Store an already canonical frame as a dataset version (no file reading)."""
        if kind not in KINDS:
            raise InvalidInput(f"expected kind one of {', '.join(KINDS)}, got {kind!r}")
        dataset_id = slugify(name)
        is_geo = isinstance(frame, gpd.GeoDataFrame)
        if is_geo:
            if frame.crs is None:
                raise InvalidInput("expected a GeoDataFrame with a CRS, got none")
            if working_crs is None:
                ll = frame.to_crs(STORAGE_CRS).geometry.representative_point()
                working_crs = working_crs_for(ll.x.to_numpy(), ll.y.to_numpy())
            frame = frame.to_crs(STORAGE_CRS)
        return self._store_dataset(
            kind,
            frame,
            dataset_id=dataset_id,
            name=name,
            source_crs=STORAGE_CRS if is_geo else None,
            working_crs=working_crs,
            source=source,
        )

    def _store_dataset(
        self,
        kind: str,
        frame: gpd.GeoDataFrame | pd.DataFrame,
        *,
        dataset_id: str,
        name: str,
        source_crs: str | None,
        working_crs: str | None,
        source: str | None,
        checksum: str | None = None,
        rejected: list[dict[str, Any]] | None = None,
        warnings: list[str] | None = None,
    ) -> DatasetInfo:
        """Write ``frame`` (EPSG:4326) as the next version of ``dataset_id``, atomically."""
        rejected = rejected or []
        is_geo = isinstance(frame, gpd.GeoDataFrame)
        with self.store.write_lock():
            previous = self.store.select("gc_datasets", id=dataset_id)
            version = max((r["version"] for r in previous), default=0) + 1
            layer = self.store.write_layer(frame, prefix=f"{kind}_{dataset_id}_v{version}")
            row = {
                "id": dataset_id,
                "version": version,
                "name": name,
                "kind": kind,
                "layer": layer,
                "rows": len(frame),
                "crs": STORAGE_CRS if is_geo else None,
                "source_crs": source_crs,
                "working_crs": working_crs,
                "bbox": [float(v) for v in frame.total_bounds] if is_geo else None,
                "created": _now(),
                "source": source,
                "checksum": checksum,
                "columns": [
                    str(c) for c in frame.columns if not is_geo or c != frame.geometry.name
                ],
                "rejected": rejected[:MAX_STORED_REJECTIONS],
                "rejected_count": len(rejected),
                "meta": {"warnings": warnings or []},
            }
            self.store.insert("gc_datasets", row, pending=[layer])
        return replace(_dataset_info(row), rejected=rejected)

    def datasets(self) -> list[DatasetInfo]:
        """Latest version of every dataset, by id."""
        latest: dict[str, dict[str, Any]] = {}
        for row in self.store.select("gc_datasets"):
            latest[row["id"]] = row  # rows come ordered by (id, version)
        return [_dataset_info(r) for r in latest.values()]

    def versions(self, dataset_id: str) -> list[DatasetInfo]:
        """Every stored version of one dataset, oldest first."""
        rows = self.store.select("gc_datasets", id=dataset_id)
        if not rows:
            raise DatasetNotFound(f"no dataset {dataset_id!r} in this workspace")
        return [_dataset_info(r) for r in rows]

    def dataset(self, dataset_id: str) -> DatasetInfo:
        """The dataset ``id`` (latest version) or ``id@version``."""
        match = _ID_RE.match(str(dataset_id))
        if not match:
            raise DatasetNotFound(f"no dataset {dataset_id!r} in this workspace")
        rows = self.store.select("gc_datasets", id=match["id"])
        if not rows:
            raise DatasetNotFound(f"no dataset {dataset_id!r} in this workspace")
        if match["version"] is None:
            return _dataset_info(rows[-1])
        for row in rows:
            if row["version"] == int(match["version"]):
                return _dataset_info(row)
        versions = ", ".join(str(r["version"]) for r in rows)
        raise DatasetNotFound(
            f"dataset {match['id']!r} has no version {match['version']} (versions: {versions})"
        )

    def require(self, dataset_id: str, kind: str) -> DatasetInfo:
        """The dataset, checked to be of ``kind`` (else :class:`WrongKind`)."""
        info = self.dataset(dataset_id)
        if info.kind != kind:
            raise WrongKind(f"expected a {kind} dataset, got {dataset_id!r} which is {info.kind}")
        return info

    def read(
        self,
        dataset_id: str,
        *,
        bbox: BBox | None = None,
        columns: list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        crs: str | None = None,
    ) -> gpd.GeoDataFrame | pd.DataFrame:
        """Read a dataset.

        Parameters
        ----------
        bbox : (minx, miny, maxx, maxy), optional
            In lon/lat.
        crs : str, optional
            ``None`` for EPSG:4326, ``"working"`` for the dataset's metric working
            CRS, or any CRS string.

        Returns
        -------
        GeoDataFrame (EPSG:4326 unless ``crs``), or DataFrame for indicators.
        """
        info = self.dataset(dataset_id)
        frame = self.store.read_layer(
            info.layer, bbox=bbox, columns=columns, limit=limit, offset=offset
        )
        return _to_crs(_canonical_dtypes(frame, info.kind), crs, info.working_crs)

    def delete(self, dataset_id: str) -> None:
        """Delete a dataset (every version), or one version with ``id@version``."""
        info = self.dataset(dataset_id)
        with self.store.write_lock():
            if "@" in str(dataset_id):
                targets = [info]
            else:
                targets = [_dataset_info(r) for r in self.store.select("gc_datasets", id=info.id)]
            for target in targets:
                self.store.delete("gc_datasets", id=target.id, version=target.version)
                self.store.drop_layer(target.layer)

    # -- runs -----------------------------------------------------------------------------
    def save_run(
        self,
        kind: str,
        *,
        params: dict[str, Any],
        inputs: list[str],
        layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame],
        summary: dict[str, Any],
        primary: str | None = None,
    ) -> RunInfo:
        """Persist an analysis run and its layers atomically.

        GeoDataFrames in any CRS are stored in EPSG:4326. ``primary`` names the
        layer that the collection ``<run_id>`` serves (default: the first).
        """
        if not layers:
            raise InvalidInput("a run needs at least one layer")
        primary = primary or next(iter(layers))
        if primary not in layers:
            raise InvalidInput(f"primary layer {primary!r} is not among {list(layers)}")
        run_id = f"{slugify(kind)}-{uuid.uuid4().hex[:10]}"
        physical: dict[str, str] = {}
        with self.store.write_lock():
            try:
                for name, frame in layers.items():
                    if isinstance(frame, gpd.GeoDataFrame) and frame.crs is not None:
                        frame = frame.to_crs(STORAGE_CRS)
                    physical[name] = self.store.write_layer(frame, prefix=f"run_{run_id}_{name}")
                row = {
                    "id": run_id,
                    "kind": kind,
                    "params": params,
                    "inputs": list(inputs),
                    "layers": physical,
                    "primary_layer": primary,
                    "summary": summary,
                    "created": _now(),
                }
                self.store.insert("gc_runs", row, pending=list(physical.values()))
            except BaseException:
                for layer in physical.values():
                    self.store.drop_layer(layer)
                raise
        return _run_info(row)

    def runs(self, kind: str | None = None) -> list[RunInfo]:
        """Every run (optionally of one kind), oldest first."""
        rows = self.store.select("gc_runs", kind=kind) if kind else self.store.select("gc_runs")
        return [_run_info(r) for r in rows]

    def latest_run(self, kind: str) -> RunInfo | None:
        """The newest run of ``kind``, or None."""
        runs = self.runs(kind)
        return runs[-1] if runs else None

    def run(self, run_id: str) -> RunInfo:
        rows = self.store.select("gc_runs", id=run_id)
        if not rows:
            raise RunNotFound(f"no run {run_id!r} in this workspace")
        return _run_info(rows[0])

    def read_run(
        self,
        run_id: str,
        layer: str | None = None,
        *,
        bbox: BBox | None = None,
        limit: int | None = None,
        offset: int = 0,
        crs: str | None = None,
        working_crs: str | None = None,
    ) -> gpd.GeoDataFrame | pd.DataFrame:
        """Read one layer of a run (default: its primary layer)."""
        info = self.run(run_id)
        name = layer or info.primary
        if name not in info.layers:
            raise RunNotFound(f"run {run_id!r} has no layer {name!r} (layers: {list(info.layers)})")
        frame = self.store.read_layer(info.layers[name], bbox=bbox, limit=limit, offset=offset)
        if crs == "working" and working_crs is None:
            working_crs = info.params.get("working_crs") or info.summary.get("working_crs")
        return _to_crs(frame, crs, working_crs)

    def delete_run(self, run_id: str) -> None:
        info = self.run(run_id)
        with self.store.write_lock():
            self.store.delete("gc_runs", id=run_id)
            for layer in info.layers.values():
                self.store.drop_layer(layer)

    # -- rasters --------------------------------------------------------------------------
    def add_raster(
        self,
        path: str | os.PathLike[str],
        *,
        name: str,
        kind: str = "raster",
        meta: dict[str, Any] | None = None,
        move: bool = False,
    ) -> RasterInfo:
        """Validate a raster, store it as a COG under ``rasters/`` and register it.

        The id is the slug of ``name`` (suffixed ``-2``, ``-3`` … if taken). Users
        never name server paths: the API uploads into a temp file and calls this.
        """
        from geocluster.io.raster import to_cog, validate_raster

        path = Path(path)
        if kind not in ("raster", "kde"):
            raise InvalidInput(f"expected raster kind 'raster' or 'kde', got {kind!r}")
        info = validate_raster(path)
        self.rasters_dir.mkdir(parents=True, exist_ok=True)
        base = slugify(name)
        with self.store.write_lock():
            taken = {r["id"] for r in self.store.select("gc_rasters")}
            raster_id, n = base, 1
            while raster_id in taken:
                n += 1
                raster_id = f"{base}-{n}"
            final = self.rasters_dir / f"{raster_id}.tif"
            fd, tmp = tempfile.mkstemp(suffix=".tif", dir=self.rasters_dir, prefix=".new-")
            os.close(fd)
            try:
                to_cog(path, tmp)
                os.replace(tmp, final)
            finally:
                Path(tmp).unlink(missing_ok=True)
            row = {
                "id": raster_id,
                "name": name,
                "kind": kind,
                "path": final.name,
                "crs": info.get("crs"),
                "bbox": info.get("bbox_lonlat") or info.get("bbox"),
                "width": int(info.get("width", 0)),
                "height": int(info.get("height", 0)),
                "count": int(info.get("count", 1)),
                "dtype": str(info.get("dtype", "")),
                "nodata": info.get("nodata"),
                "meta": meta or {},
                "created": _now(),
            }
            try:
                self.store.insert("gc_rasters", row)
            except BaseException:
                final.unlink(missing_ok=True)
                raise
        if move:
            path.unlink(missing_ok=True)
        return self._raster_info(row)

    def rasters(self) -> list[RasterInfo]:
        return [self._raster_info(r) for r in self.store.select("gc_rasters")]

    def raster(self, raster_id: str) -> RasterInfo:
        rows = self.store.select("gc_rasters", id=raster_id)
        if not rows:
            raise RasterNotFound(f"no raster {raster_id!r} in this workspace")
        return self._raster_info(rows[0])

    def delete_raster(self, raster_id: str) -> None:
        info = self.raster(raster_id)
        with self.store.write_lock():
            self.store.delete("gc_rasters", id=raster_id)
            Path(info.path).unlink(missing_ok=True)

    def _raster_info(self, row: dict[str, Any]) -> RasterInfo:
        row = dict(row)
        row["path"] = str(self.rasters_dir / row["path"])
        return RasterInfo(**row)

    # -- collections (datasets + run layers) ----------------------------------------------
    def collections(self) -> list[CollectionInfo]:
        """Every dataset (latest version) and every run layer, as collections."""
        out = [_dataset_collection(d) for d in self.datasets()]
        for run in self.runs():
            out.extend(self._run_collections(run))
        return out

    def collection(self, collection_id: str) -> CollectionInfo:
        """Resolve a collection id: ``<dataset>[@v]``, ``<run_id>`` or ``<run_id>.<layer>``."""
        cid = str(collection_id)
        run_id, _, layer = cid.partition(".")
        if self.store.select("gc_runs", id=run_id):
            run = self.run(run_id)
            for coll in self._run_collections(run):
                if coll.id == cid:
                    return coll
            raise NotFound(f"run {run_id!r} has no layer {layer!r}")
        try:
            return _dataset_collection(self.dataset(cid))
        except DatasetNotFound:
            raise NotFound(
                f"no collection {cid!r}: not a dataset or run in this workspace"
            ) from None

    def read_collection(
        self,
        collection_id: str,
        *,
        bbox: BBox | None = None,
        limit: int | None = None,
        offset: int = 0,
        properties: list[str] | None = None,
    ) -> gpd.GeoDataFrame | pd.DataFrame:
        """Read a collection's features (EPSG:4326)."""
        coll = self.collection(collection_id)
        return self.store.read_layer(
            coll.layer, bbox=bbox, columns=properties, limit=limit, offset=offset
        )

    def count_collection(self, collection_id: str, *, bbox: BBox | None = None) -> int:
        """Number of features in a collection (within ``bbox`` by envelope)."""
        return self.store.count(self.collection(collection_id).layer, bbox=bbox)

    def _run_collections(self, run: RunInfo) -> list[CollectionInfo]:
        out = []
        counts = run.summary.get("_layer_rows", {}) if isinstance(run.summary, dict) else {}
        for name, layer in run.layers.items():
            cid = run.id if name == run.primary else f"{run.id}.{name}"
            rows = counts.get(name)
            if rows is None:
                rows = self.store.count(layer)
            out.append(
                CollectionInfo(
                    id=cid,
                    title=f"{run.kind} run {run.id}: {name}",
                    kind=f"run:{run.kind}",
                    layer=layer,
                    rows=int(rows),
                    bbox=None,
                    geometry=_layer_has_geometry(self.store, layer),
                    created=run.created,
                    run_id=run.id,
                )
            )
        return out


# -- helpers ---------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _scaled(report: Progress, start: float, stop: float) -> Progress:
    return lambda fraction, message: report(start + (stop - start) * float(fraction), message)


def _rejection_dict(rejection: Any) -> dict[str, Any]:
    if isinstance(rejection, dict):
        return {
            "row": rejection["row"],
            "column": rejection.get("column"),
            "reason": rejection["reason"],
        }
    return {"row": int(rejection.row), "column": rejection.column, "reason": rejection.reason}


def _dataset_info(row: dict[str, Any]) -> DatasetInfo:
    meta = row.get("meta") or {}
    return DatasetInfo(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        version=int(row["version"]),
        rows=int(row["rows"]),
        crs=row["crs"],
        source_crs=row["source_crs"],
        working_crs=row["working_crs"],
        bbox=row["bbox"],
        created=row["created"],
        source=row["source"],
        checksum=row["checksum"],
        layer=row["layer"],
        columns=row.get("columns") or [],
        rejected=row.get("rejected") or [],
        rejected_count=int(row.get("rejected_count") or 0),
        warnings=list(meta.get("warnings", [])),
    )


def _run_info(row: dict[str, Any]) -> RunInfo:
    return RunInfo(
        id=row["id"],
        kind=row["kind"],
        params=row.get("params") or {},
        inputs=row.get("inputs") or [],
        layers=row.get("layers") or {},
        primary=row.get("primary_layer"),
        summary=row.get("summary") or {},
        created=row["created"],
    )


def _dataset_collection(info: DatasetInfo) -> CollectionInfo:
    return CollectionInfo(
        id=info.id,
        title=info.name,
        kind=info.kind,
        layer=info.layer,
        rows=info.rows,
        bbox=info.bbox,
        geometry=info.kind != "indicators",
        created=info.created,
        version=info.version,
    )


def _layer_has_geometry(store: GeoPackageStore, layer: str) -> bool:
    import sqlite3

    con = sqlite3.connect(store.path, timeout=60)
    try:
        row = con.execute(
            "SELECT 1 FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()
    finally:
        con.close()
    return row is not None


#: Nullable dtypes of canonical columns that GeoPackage round trips cannot keep
#: (an integer column with nulls comes back float; a boolean one with nulls, object).
CANONICAL_DTYPES: dict[str, dict[str, str]] = {
    "firms": {"founded": "Int64", "women_led": "boolean", "informal": "boolean"},
    "boundaries": {"level": "Int64"},
    "indicators": {"year": "Int64"},
}


def _canonical_dtypes(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    for column, dtype in CANONICAL_DTYPES.get(kind, {}).items():
        if column in frame.columns and str(frame[column].dtype) != dtype:
            values = frame[column]
            if dtype == "boolean" and values.dtype == object:
                values = values.map(lambda v: None if v is None or v != v else bool(v))
            frame[column] = values.astype(dtype)
    return frame


def _to_crs(
    frame: gpd.GeoDataFrame | pd.DataFrame, crs: str | None, working_crs: str | None
) -> gpd.GeoDataFrame | pd.DataFrame:
    if crs is None or not isinstance(frame, gpd.GeoDataFrame):
        return frame
    if crs == "working":
        if working_crs is None:
            raise InvalidInput("this layer has no recorded working CRS; pass one explicitly")
        crs = working_crs
    return frame.to_crs(crs)
