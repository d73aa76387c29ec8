"""OpenStreetMap PBF reader (pyosmium): tagged nodes and closed ways.

Which objects are kept is decided by the caller (``keep(tags)``), so the one mapping
table in :mod:`geocluster.sectors.osm` stays the only place that knows OSM tags.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geocluster.errors import UnusableFile


def read_osm(
    path: Path,
    *,
    keys: Iterable[str],
    keep: Callable[[dict[str, str]], bool],
    progress: Callable[[float, str], None] | None = None,
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Read the nodes and closed ways of an OSM PBF file that ``keep`` accepts.

    Parameters
    ----------
    path
        An ``.osm.pbf`` file.
    keys
        Tag keys of interest; objects with none of them are skipped in C++ before any
        Python code runs (pyosmium ``KeyFilter``).
    keep
        Called with the tags of each candidate object; ``True`` keeps it.
    progress
        Optional ``(fraction, message)`` callback.

    Returns
    -------
    frame, notes
        A GeoDataFrame in EPSG:4326 with ``osm_type`` (``"node"``/``"way"``),
        ``osm_id`` (int), ``name``, ``osm_tags`` (JSON text), ``_tags`` (the tags as dicts, for the
        caller to map and drop) and the geometry: a point
        for a node, a polygon for a closed way (ring of at least four locations).
        Ways whose node locations are missing from the extract are skipped and counted
        in the notes.
    """
    import osmium

    keys = tuple(dict.fromkeys(keys))
    osm_type: list[str] = []
    osm_id: list[int] = []
    names: list[str | None] = []
    tags_json: list[str] = []
    tag_dicts: list[dict[str, str]] = []
    geoms: list[shapely.Geometry] = []
    skipped = 0
    try:
        processor = (
            osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations()
            .with_filter(osmium.filter.KeyFilter(*keys))
        )
        for i, obj in enumerate(processor):
            if progress is not None and i % 50_000 == 0:
                progress(0.0, f"reading OSM objects ({i:,})")
            tags = {t.k: t.v for t in obj.tags}
            if not keep(tags):
                continue
            if obj.is_node():
                loc = obj.location
                if not loc.valid():
                    skipped += 1
                    continue
                geom = shapely.Point(loc.lon, loc.lat)
                kind = "node"
            elif obj.is_way():
                if not obj.is_closed() or len(obj.nodes) < 4:
                    continue
                try:
                    coords = [(n.lon, n.lat) for n in obj.nodes]
                except osmium.InvalidLocationError:
                    skipped += 1
                    continue
                geom = shapely.Polygon(coords)
                kind = "way"
            else:  # pragma: no cover - the entity filter passes nodes and ways only
                continue
            osm_type.append(kind)
            osm_id.append(obj.id)
            names.append(tags.get("name"))
            tags_json.append(json.dumps(tags, ensure_ascii=False, sort_keys=True))
            tag_dicts.append(tags)
            geoms.append(geom)
    except RuntimeError as exc:
        raise UnusableFile(f"{path.name} is not a readable OSM PBF file: {exc}") from exc
    notes = []
    if skipped:
        notes.append(f"{skipped} OSM objects skipped: node locations missing from the extract")
    frame = gpd.GeoDataFrame(
        {
            "osm_type": osm_type,
            "osm_id": np.asarray(osm_id, dtype="int64"),
            "name": names,
            "osm_tags": tags_json,
            "_tags": tag_dicts,
        },
        geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    return frame, notes
