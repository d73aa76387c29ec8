"""Pre-built tile pyramids: PMTiles archives of immutable layers, served by byte range.

Every dataset version and run layer is an immutable store layer, so its tiles at the
low and middle zooms (where one tile aggregates many features and is the slowest to
encode) can be cut once and kept forever. :func:`build_pyramid` encodes them with the
very functions of the dynamic path (:func:`api.routers.tiles.load_index` and
:func:`api.routers.tiles.render_tile`) and writes a PMTiles v3 archive
(``pmtiles.writer``) under ``<workspace>/tiles/<layer>/<token>.pmtiles``. ``token``
digests what changes the bytes of a tile (tiling options, disclosure policy,
audience), so an archive is never invalidated, only superseded; ``tiles/`` is a cache,
not part of the catalog, and may be deleted at any time.

:class:`Archive` memory-maps an archive (``pmtiles.reader.MmapSource``): several
worker processes share the same pages through the OS page cache, nothing is loaded
at start-up. One process builds an archive while holding an ``flock`` on
``<archive>.lock``; the others skip the build and pick the archive up when it appears
(it is renamed into place whole).

Tiles missing from an archive at a zoom it covers are empty (only non-empty tiles are
written); zooms outside the archive are encoded on demand.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pmtiles.reader import MmapSource
from pmtiles.tile import (
    Compression,
    TileType,
    deserialize_directory,
    deserialize_header,
    find_tile,
    zxy_to_tileid,
)
from pmtiles.writer import Writer

log = logging.getLogger("geocluster.api")

#: Folder of the archives inside the workspace (a cache: safe to delete).
TILES_DIR = "tiles"
#: Cache-Control max-age of a tile of a fixed version (one year, RFC 9111 practice).
IMMUTABLE_MAX_AGE_S = 31_536_000
#: Above this many candidate tiles in one zoom, a polygon pyramid stops at the zoom before.
MAX_TILES_PER_ZOOM = 250_000

Progress = Callable[[float, str], None]


def token_digest(token: str) -> str:
    """Short digest of a tiling token, used in archive names and ETags."""
    return hashlib.blake2b(token.encode(), digest_size=8).hexdigest()


def archive_path(workspace_path: str | os.PathLike[str], layer: str, token: str) -> Path:
    """Where the archive of ``layer`` cut with ``token`` lives (exists or not)."""
    return Path(workspace_path) / TILES_DIR / _safe_layer(layer) / f"{token_digest(token)}.pmtiles"


def _safe_layer(layer: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", layer).lstrip(".") or "_"


@functools.lru_cache(maxsize=4096)
def cached_archive_path(workspace_path: Path, layer: str, token: str) -> Path:
    """:func:`archive_path`, memoised: it is computed for every tile request."""
    return archive_path(workspace_path, layer, token)


# -- reading -------------------------------------------------------------------------------
class Archive:
    """A memory-mapped PMTiles archive of uncompressed MVT tiles.

    ``pmtiles.reader.Reader.get`` parses the header and decompresses the directories on
    every call; here both are parsed once (leaf directories on first use, kept in a
    small LRU) so a tile costs one binary search and one slice of the mapping.

    Parameters
    ----------
    path : path-like
        A PMTiles v3 archive written by :func:`build_pyramid`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file = open(self.path, "rb")  # noqa: SIM115 - lives as long as the mapping
        try:
            # read-only shared mapping: every worker reads the same page-cache pages
            self._bytes = MmapSource(self._file)
            self.header = deserialize_header(self._bytes(0, 127))
        except Exception:
            self._file.close()
            raise
        h = self.header
        self._root = deserialize_directory(self._bytes(h["root_offset"], h["root_length"]))
        meta = self.metadata()
        zooms = meta.get("geocluster_zooms") or [self.header["min_zoom"], self.header["max_zoom"]]
        #: Zooms fully covered by the archive (absent tiles there are empty).
        self.min_zoom, self.max_zoom = int(zooms[0]), int(zooms[1])
        self._leaves: OrderedDict[int, list] = OrderedDict()
        self._lock = threading.Lock()

    def metadata(self) -> dict[str, Any]:
        """The archive's JSON metadata."""
        import gzip
        import json

        h = self.header
        raw = self._bytes(h["metadata_offset"], h["metadata_length"])
        if h["internal_compression"] == Compression.GZIP:
            raw = gzip.decompress(raw)
        return json.loads(raw)

    def covers(self, z: int) -> bool:
        """Whether zoom ``z`` is pre-built."""
        return self.min_zoom <= z <= self.max_zoom

    def _leaf(self, offset: int, length: int) -> list:
        with self._lock:
            entries = self._leaves.get(offset)
            if entries is not None:
                self._leaves.move_to_end(offset)
                return entries
        entries = deserialize_directory(
            self._bytes(self.header["leaf_directory_offset"] + offset, length)
        )
        with self._lock:
            self._leaves[offset] = entries
            while len(self._leaves) > 256:
                self._leaves.popitem(last=False)
        return entries

    def get(self, z: int, x: int, y: int) -> bytes | None:
        """Tile ``z/x/y``: its bytes, ``b""`` if empty, None if the zoom is not pre-built."""
        if not self.covers(z):
            return None
        tile_id = zxy_to_tileid(z, x, y)
        directory = self._root
        for _ in range(4):  # PMTiles allows root + 3 levels of leaves
            entry = find_tile(directory, tile_id)
            if entry is None:
                return b""
            if entry.run_length == 0:
                directory = self._leaf(entry.offset, entry.length)
                continue
            return self._bytes(self.header["tile_data_offset"] + entry.offset, entry.length)
        return b""

    def close(self) -> None:
        """Close the file (the mapping goes with the last reference to it)."""
        self._file.close()


class ArchiveRegistry:
    """The archives one process has opened, by path; absent ones are re-checked.

    A missing archive may be being built by another worker: its absence is remembered
    for ``recheck_s`` seconds only, so the archive is picked up soon after it lands.
    """

    def __init__(self, recheck_s: float = 2.0) -> None:
        self.recheck_s = recheck_s
        self._open: dict[Path, Archive] = {}
        self._missing: dict[Path, float] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> Archive | None:
        """The archive at ``path`` if it exists (opened once, then shared)."""
        found = self._open.get(path)
        if found is not None:
            return found
        checked = self._missing.get(path)
        if checked is not None and time.monotonic() - checked < self.recheck_s:
            return None
        with self._lock:
            found = self._open.get(path)
            if found is not None:
                return found
            try:
                found = Archive(path)
            except (OSError, ValueError, KeyError) as exc:
                if not isinstance(exc, FileNotFoundError):
                    log.warning("tile archive %s unreadable: %s", path.name, exc)
                self._missing[path] = time.monotonic()
                return None
            self._open[path] = found
            self._missing.pop(path, None)
            return found

    def forget(self, path: Path) -> None:
        """Drop the negative entry of ``path`` (an archive was just written there)."""
        self._missing.pop(path, None)

    def close(self) -> None:
        """Close every open archive."""
        with self._lock:
            for archive in self._open.values():
                archive.close()
            self._open.clear()


# -- building ------------------------------------------------------------------------------
def _point_tiles(index, z: int) -> Iterator[tuple[int, int]]:
    """Tiles of zoom ``z`` holding at least one point (the others encode as empty)."""
    from api.tiling import MORTON_LEVEL, _compact1by1

    codes = np.unique(index.codes >> np.uint64(2 * (MORTON_LEVEL - z)))
    xs = _compact1by1(codes)
    ys = _compact1by1(codes >> np.uint64(1))
    yield from zip(xs.tolist(), ys.tolist())


def _shape_tiles(index, z: int, buffer_frac: float) -> list[tuple[int, int]] | None:
    """Tiles of zoom ``z`` whose buffered box meets a feature's envelope (None: too many)."""
    from api.tiling import ORIGIN_SHIFT

    if len(index.geoms) == 0:
        return []
    n = 1 << z
    b = shapely.bounds(index.geoms)
    b = b[np.isfinite(b).all(axis=1)]
    u0 = (b[:, 0] + ORIGIN_SHIFT) / (2 * ORIGIN_SHIFT)
    u1 = (b[:, 2] + ORIGIN_SHIFT) / (2 * ORIGIN_SHIFT)
    v0 = (ORIGIN_SHIFT - b[:, 3]) / (2 * ORIGIN_SHIFT)
    v1 = (ORIGIN_SHIFT - b[:, 1]) / (2 * ORIGIN_SHIFT)
    pad = buffer_frac / n + 1e-12  # a tile's buffer, plus rounding at shared edges
    x0 = np.clip(np.floor((u0 - pad) * n), 0, n - 1).astype(np.int64)
    x1 = np.clip(np.floor((u1 + pad) * n), 0, n - 1).astype(np.int64)
    y0 = np.clip(np.floor((v0 - pad) * n), 0, n - 1).astype(np.int64)
    y1 = np.clip(np.floor((v1 + pad) * n), 0, n - 1).astype(np.int64)
    if int(((x1 - x0 + 1) * (y1 - y0 + 1)).sum()) > MAX_TILES_PER_ZOOM * 4:
        return None
    seen: set[tuple[int, int]] = set()
    for a, c, e, f in zip(x0.tolist(), x1.tolist(), y0.tolist(), y1.tolist()):
        for tx in range(a, c + 1):
            for ty in range(e, f + 1):
                seen.add((tx, ty))
        if len(seen) > MAX_TILES_PER_ZOOM:
            return None
    return sorted(seen)


def build_pyramid(
    ws,
    collection_id: str,
    out_path: str | os.PathLike[str] | None,
    zooms: tuple[int, int] = (0, 10),
    progress: Progress | None = None,
    *,
    settings=None,
    policy=None,
    audience: str = "open",
    index=None,
) -> dict[str, Any]:
    """Pre-build the tiles of a collection version at ``zooms`` into a PMTiles archive.

    Parameters
    ----------
    ws : Workspace
    collection_id : str
        A dataset (``name`` or ``name@N``) or run layer; its current layer is built.
    out_path : path-like or None
        Archive path; None: :func:`archive_path` in the workspace (what the API serves).
    zooms : (int, int)
        First and last zoom, inclusive.
    progress : callable, optional
        ``progress(fraction, message)`` (a :class:`api.jobs.JobManager` callback).
    settings : Settings, optional
        Tiling settings (default ``Settings()``); the archive holds the tiles these cut.
    policy : DisclosurePolicy, optional
        Default: the one ``settings`` describes (as the app builds it).
    audience : str
        Whose tiles these are (see :func:`api.routers.tiles.tile_audience`).
    index : PointIndex or ShapeIndex, optional
        An index already built for this layer (the app's), instead of reading it again.

    Returns
    -------
    dict
        ``path``, ``layer``, ``tiles`` (written), ``zooms`` (actually covered),
        ``seconds``; ``skipped: True`` when another process holds the build lock.
    """
    from api.routers.tiles import (
        LAYER_NAME,
        audience_policy,
        load_index,
        render_tile,
        tiling_token,
    )
    from api.settings import Settings

    started = time.perf_counter()
    progress = progress or (lambda fraction, message="": None)
    settings = settings or Settings(workspace=ws.path)
    if policy is None:
        from api.app import _policy

        policy = _policy(settings)
    policy = audience_policy(policy, audience)
    coll = ws.collection(collection_id)
    token = tiling_token(settings, policy, audience)
    path = Path(out_path) if out_path is not None else archive_path(ws.path, coll.layer, token)
    z_first, z_last = int(zooms[0]), int(zooms[1])
    if not 0 <= z_first <= z_last <= 24:
        from geocluster.errors import InvalidInput

        raise InvalidInput(f"zooms must be 0 <= first <= last <= 24, got {zooms!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_file = open(path.with_name(path.name + ".lock"), "a+b")  # noqa: SIM115
    tmp: Path | None = None
    try:
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"path": str(path), "layer": coll.layer, "skipped": True}
        if path.exists():
            archive = Archive(path)
            covered = [archive.min_zoom, archive.max_zoom]
            archive.close()
            return {"path": str(path), "layer": coll.layer, "tiles": None, "zooms": covered}
        progress(0.0, f"reading {coll.id}")
        if index is None:
            index = load_index(ws, coll, policy)
        kind = getattr(index, "disclosure_kind", "other")
        from api.routers.tiles import tile_options

        opts = tile_options(settings, policy, kind)

        # enumerate the candidate tiles of every zoom first, so progress is a fraction
        plan: list[tuple[int, list[tuple[int, int]]]] = []
        for z in range(z_first, z_last + 1):
            if hasattr(index, "codes"):
                tiles = list(_point_tiles(index, z))
            else:
                tiles = _shape_tiles(index, z, opts.buffer / opts.extent)
                if tiles is None:  # too many tiles to pre-build: deeper zooms stay dynamic
                    break
            plan.append((z, tiles))
        if not plan:
            return {"path": str(path), "layer": coll.layer, "tiles": 0, "zooms": None}
        covered = [plan[0][0], plan[-1][0]]
        ids = sorted((zxy_to_tileid(z, x, y), z, x, y) for z, tiles in plan for x, y in tiles)
        total = max(1, len(ids))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        written = 0
        every = max(1, min(256, total // 100))  # ~100 steps (the job manager throttles)
        with open(tmp, "wb") as f:
            writer = Writer(f)
            for i, (tile_id, z, x, y) in enumerate(ids):
                body = render_tile(index, z, x, y, tile_options(settings, policy, kind, z), policy)
                if body:
                    writer.write_tile(tile_id, body)
                    written += 1
                if i % every == 0:
                    progress(i / total, f"z{z}: {i:,} of {total:,} tiles")
            if written == 0:  # the writer needs one tile; an empty tile is harmless
                writer.write_tile(zxy_to_tileid(covered[0], 0, 0), b"")
            bbox = coll.bbox or [-180.0, -85.0511, 180.0, 85.0511]
            writer.finalize(
                {
                    "tile_type": TileType.MVT,
                    "tile_compression": Compression.NONE,
                    "min_lon_e7": int(bbox[0] * 1e7),
                    "min_lat_e7": int(bbox[1] * 1e7),
                    "max_lon_e7": int(bbox[2] * 1e7),
                    "max_lat_e7": int(bbox[3] * 1e7),
                    "center_zoom": covered[0],
                    "center_lon_e7": int((bbox[0] + bbox[2]) / 2 * 1e7),
                    "center_lat_e7": int((bbox[1] + bbox[3]) / 2 * 1e7),
                },
                {
                    "name": coll.id,
                    "geocluster_layer": coll.layer,
                    "geocluster_zooms": covered,
                    "geocluster_audience": audience,
                    "vector_layers": [
                        {"id": LAYER_NAME, "minzoom": covered[0], "maxzoom": covered[1]}
                    ],
                },
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # readers see the whole archive or none
        from geocluster.store.geoparquet import _fsync_dir

        _fsync_dir(path.parent)  # the rename itself survives a crash
        seconds = time.perf_counter() - started
        progress(1.0, f"{written:,} tiles in {seconds:.1f} s")
        log.info(
            "tile archive of %s: %d tiles z%d-z%d in %.1f s",
            coll.id,
            written,
            covered[0],
            covered[1],
            seconds,
        )
        return {
            "path": str(path),
            "layer": coll.layer,
            "tiles": written,
            "zooms": covered,
            "seconds": round(seconds, 3),
        }
    finally:
        if tmp is not None:  # a failed build leaves no partial file (renamed: no-op)
            tmp.unlink(missing_ok=True)
        lock_file.close()  # releases the flock


def sweep_archives(ws) -> int:
    """Delete the archives of layers no catalog row names any more (deleted versions).

    An archive is never stale, only orphaned; this keeps ``tiles/`` from growing with
    deleted datasets and runs. Returns the number of layer folders removed.
    """
    import shutil

    root = Path(ws.path) / TILES_DIR
    if not root.is_dir():
        return 0
    keep = {_safe_layer(layer) for layer in ws.catalog.referenced_layers()}
    removed = 0
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def pyramid_audiences(app) -> list[str]:
    """Whose archives a layer gets: ``open``, and ``safe`` once the server has keys.

    In open single-user mode every caller gets the ``open`` tiles; with keys, viewers
    and anonymous callers get the disclosure-safe ``safe`` ones
    (:func:`api.routers.tiles.tile_audience`), so both are pre-built.
    """
    from api.auth import is_open

    return ["open"] if is_open(app) else ["open", "safe"]


def wants_pyramid(coll) -> bool:
    """Whether a collection's tiles are worth pre-building.

    Firm registers and analysis-run layers with a geometry: their low-zoom tiles
    aggregate many points (grid counts, clipped outlines) and are the slow ones to
    encode. Boundaries and assets encode fast and stay dynamic (and LRU-cached).
    """
    return bool(coll.geometry) and (str(coll.kind) == "firms" or coll.run_id is not None)


def _fixed_id(coll, collection_id: str) -> str:
    """``collection_id`` pinned to the version it names now (``name`` -> ``name@N``)."""
    if coll.run_id is not None or "@" in collection_id or coll.version is None:
        return collection_id
    return f"{coll.id}@{coll.version}"


def schedule_pyramid(app, collection_id: str, audience: str = "open"):
    """Queue :func:`build_pyramid` of a collection version as a background job of ``app``.

    The trigger the ingest and run endpoints (and the start-up warmer) call when a
    layer is complete; ``audience`` is whose tiles to pre-build (one archive per
    audience, as :func:`api.routers.tiles.tile_audience` names them). The job runs in
    the job manager's background lane, is a ``gc_jobs`` row like any job
    (``GET /jobs/{id}`` shows its progress from any worker), and is unique per
    archive across worker processes: a second request while one is queued or running
    returns that one. Until the archive lands tiles are encoded on demand; when done,
    this worker sees it at once and the others within
    :attr:`ArchiveRegistry.recheck_s`.

    Returns
    -------
    Job or None
        The :class:`api.jobs.Job`; None when the archive already exists.
    """
    from api.routers.tiles import audience_policy, collection_index, tiling_token

    settings = app.state.settings
    ws = app.state.get_workspace()
    coll = ws.collection(collection_id)
    fixed = _fixed_id(coll, collection_id)  # a newer version landing meanwhile: not this job
    token = tiling_token(settings, audience_policy(app.state.policy, audience), audience)
    path = archive_path(ws.path, coll.layer, token)
    if path.exists():
        return None
    zooms = pyramid_zoom_range(settings)
    # public: the archive's name inside tiles/, never a server path
    name = path.relative_to(Path(ws.path) / TILES_DIR).as_posix()

    def run(progress: Progress) -> dict[str, Any]:
        ws = app.state.get_workspace()
        layer = ws.collection(fixed)
        summary = {"collection": fixed, "layer": layer.layer, "audience": audience}
        if path.exists():  # built meanwhile (another worker, an earlier job)
            return {**summary, "archive": name, "tiles": None, "built": False}
        sweep_archives(ws)  # cheap, and a build is when tiles/ grows
        progress(0.0, f"building the tile index of {fixed}")
        index = collection_index(app, ws, layer, audience)
        result = build_pyramid(
            ws,
            fixed,
            path,
            zooms,
            progress,
            settings=settings,
            policy=app.state.policy,
            audience=audience,
            index=index,
        )
        registry = getattr(app.state, "tile_archives", None)
        if registry is not None:
            registry.forget(path)
        out = {**summary, "archive": name, "built": not result.get("skipped", False)}
        out.update({k: result[k] for k in ("tiles", "zooms", "seconds", "skipped") if k in result})
        return out

    return app.state.jobs.submit(
        "pyramid",
        run,
        params={"collection": fixed, "audience": audience, "zooms": list(zooms)},
        unique_key=name,
        background=True,
    )


def schedule_pyramids(app, collection_ids) -> list[dict[str, Any]]:
    """Queue the pyramids of ``collection_ids`` for every audience; their job links.

    Does nothing unless ``GEOCLUSTER_TILE_PYRAMIDS`` is on (``geocluster serve`` turns
    it on) and only for :func:`wants_pyramid` collections. Never raises: a full queue
    or an unreadable layer is logged, and its tiles stay dynamic.

    Returns
    -------
    list of dict
        ``{"id", "kind": "pyramid", "collection", "audience", "state", "href"}`` per job.
    """
    if not app.state.settings.tiles.tile_pyramids:
        return []
    out: list[dict[str, Any]] = []
    try:
        ws = app.state.get_workspace()
        audiences = pyramid_audiences(app)
        for cid in collection_ids:
            coll = ws.collection(cid)
            if not wants_pyramid(coll):
                continue
            for audience in audiences:
                job = schedule_pyramid(app, cid, audience)
                if job is not None:
                    out.append(
                        {
                            "id": job.id,
                            "kind": "pyramid",
                            "collection": _fixed_id(coll, cid),
                            "audience": audience,
                            "state": job.state,
                            "href": f"/jobs/{job.id}",
                        }
                    )
    except Exception:  # noqa: BLE001 - upkeep: tiles are encoded on demand anyway
        log.exception("scheduling tile pyramids failed")
    return out


def pyramid_zoom_range(settings) -> tuple[int, int]:
    """The zooms pre-built under ``settings``."""
    t = settings.tiles
    return t.tile_pyramid_min_zoom, max(t.tile_pyramid_min_zoom, t.tile_pyramid_max_zoom)


__all__ = [
    "Archive",
    "ArchiveRegistry",
    "IMMUTABLE_MAX_AGE_S",
    "archive_path",
    "build_pyramid",
    "pyramid_audiences",
    "schedule_pyramid",
    "schedule_pyramids",
    "sweep_archives",
    "token_digest",
]
