"""OpenStreetMap PBF reader (pyosmium): tagged nodes, ways and area relations.

Which objects are kept is decided by the caller (``keep(tags)``), so the one mapping
table in :mod:`geocluster.sectors.osm` stays the only place that knows OSM tags.

Geometry
    * node -> ``Point``;
    * closed way (first node = last node, at least four node references, not
      ``area=no``) -> ``Polygon`` from its ring;
    * open way (or a closed way tagged ``area=no``) -> ``LineString``;
    * relation of ``type=multipolygon`` or ``type=boundary`` -> ``MultiPolygon``
      assembled by libosmium's area assembler (pyosmium ``FileProcessor.with_areas``):
      outer and inner rings, holes kept. Area ids encode the origin (way ``2*id``,
      relation ``2*id+1``); the original type and id are what is returned.

Not imported, counted by reason in the notes (only objects that carry at least one
of ``keys`` are looked at; objects with none of them never reach Python):

``no_mapping``
    a key of interest, but ``keep`` finds no class for the tags (``amenity=bench``).
``missing_locations``
    a way with node locations missing from the extract.
``invalid_geometry``
    a way with fewer than two distinct locations, a closed way of fewer than four
    node references, or a multipolygon/boundary relation whose member ways are all in
    the file but whose rings libosmium cannot assemble (rings that do not close,
    self-intersections).
``incomplete_relation``
    a multipolygon/boundary relation with member ways, or their nodes, missing from
    the extract (typically an object cut by the extract's edge): its geometry is
    unknown, so it is not guessed.
``relation_without_area``
    a mapped relation of another type (``type=route`` tagged ``amenity=pub``,
    ``type=site``, ``type=street``): it has no area geometry.
``duplicate_of_relation``
    a closed way that is an outer member of an imported multipolygon relation and
    carries the same class: the relation is the object, the way is not counted twice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geocluster.errors import UnusableFile

#: Reasons an object with a key of interest is not imported (see the module docstring).
REASONS = (
    "no_mapping",
    "missing_locations",
    "invalid_geometry",
    "incomplete_relation",
    "relation_without_area",
    "duplicate_of_relation",
)

_AREA_RELATION_TYPES = frozenset({"multipolygon", "boundary"})


def not_imported_note(counts: dict[str, int]) -> str:
    """The notes line that reports the objects not imported, by reason (JSON object)."""
    ordered = {r: int(counts.get(r, 0)) for r in REASONS}
    return "OSM objects not imported, by reason: " + json.dumps(ordered)


def parse_not_imported(lines: Iterable[str]) -> dict[str, int] | None:
    """Read back the counts of :func:`not_imported_note` from warnings or notes lines."""
    marker = "OSM objects not imported, by reason: "
    for line in lines:
        at = line.find(marker)
        if at >= 0:
            return {k: int(v) for k, v in json.loads(line[at + len(marker) :]).items()}
    return None


def read_osm(
    path: Path,
    *,
    keys: Iterable[str],
    keep: Callable[[dict[str, str]], Hashable | None],
    progress: Callable[[float, str], None] | None = None,
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Read the nodes, ways and area relations of an OSM PBF file that ``keep`` accepts.

    Parameters
    ----------
    path
        An ``.osm.pbf`` file.
    keys
        Tag keys of interest; objects with none of them are skipped in C++ before any
        Python code runs (pyosmium ``KeyFilter``).
    keep
        Called with the tags of each candidate object; returns the object's class (any
        hashable, e.g. the mapping row) or a false value to skip it. Two objects of
        equal class are the same thing for the multipolygon-member de-duplication.
    progress
        Optional ``(fraction, message)`` callback.

    Returns
    -------
    frame, notes
        A GeoDataFrame in EPSG:4326 with ``osm_type`` (``"node"``/``"way"``/
        ``"relation"``), ``osm_id`` (int, the OSM id of that type), ``name``,
        ``osm_tags`` (JSON text), ``_tags`` (the tags as dicts, for the caller to map
        and drop) and the geometry (see the module docstring). The notes end with
        the line of :func:`not_imported_note`.
    """
    import osmium

    keys = tuple(dict.fromkeys(keys))
    rows: list[tuple[str, int, dict[str, str], shapely.Geometry]] = []
    counts: Counter[str] = Counter()
    # relation id -> (class, tags); outer member way id -> relation ids
    relations: dict[int, tuple[Hashable, dict[str, str]]] = {}
    members: dict[int, list[int]] = {}
    member_ways: dict[int, list[int]] = {}
    way_class: dict[int, Hashable] = {}
    areas: dict[int, shapely.Geometry] = {}
    wkb = osmium.geom.WKBFactory()
    try:
        processor = (
            osmium.FileProcessor(str(path))
            .with_locations()
            # area candidates: only relations with a key of interest are assembled
            .with_areas(osmium.filter.KeyFilter(*keys))
            .with_filter(osmium.filter.KeyFilter(*keys))
        )
        for i, obj in enumerate(processor):
            if progress is not None and i % 50_000 == 0:
                progress(0.0, f"reading OSM objects ({i:,})")
            if obj.is_area():
                # relation areas are assembled when their last member way is read,
                # before the relation itself comes by: keep them all, match later
                # (only those of mapped objects: administrative boundaries are big)
                if not obj.from_way() and keep({t.k: t.v for t in obj.tags}):
                    try:
                        areas[obj.orig_id()] = shapely.from_wkb(wkb.create_multipolygon(obj))
                    except (RuntimeError, shapely.errors.GEOSException):
                        pass  # counted as invalid_geometry below
                continue  # closed ways are read from the way itself
            tags = {t.k: t.v for t in obj.tags}
            cls = keep(tags)
            if not cls:
                counts["no_mapping"] += 1
                continue
            if obj.is_node():
                loc = obj.location
                if not loc.valid():
                    counts["invalid_geometry"] += 1
                    continue
                rows.append(("node", obj.id, tags, shapely.Point(loc.lon, loc.lat)))
            elif obj.is_way():
                geom = _way_geometry(obj, tags, counts, osmium)
                if geom is not None:
                    rows.append(("way", obj.id, tags, geom))
                    way_class[obj.id] = cls
            elif obj.is_relation():
                if tags.get("type") not in _AREA_RELATION_TYPES:
                    counts["relation_without_area"] += 1
                    continue
                relations[obj.id] = (cls, tags)
                member_ways[obj.id] = [m.ref for m in obj.members if m.type == "w"]
                for m in obj.members:
                    if m.type == "w" and m.role != "inner":
                        members.setdefault(m.ref, []).append(obj.id)
    except RuntimeError as exc:
        if "out of order" in str(exc):
            raise UnusableFile(
                f"{path.name} is not sorted by object type and id, which assembling "
                "multipolygons needs; sort it first (osmium sort)"
            ) from exc
        raise UnusableFile(f"{path.name} is not a readable OSM PBF file: {exc}") from exc

    failed = {r for r in relations if r not in areas or areas[r].is_empty}
    incomplete = _incomplete(path, {r: member_ways[r] for r in failed}, osmium) if failed else set()
    counts["incomplete_relation"] += len(incomplete)
    counts["invalid_geometry"] += len(failed) - len(incomplete)
    for rel_id, (_, tags) in relations.items():
        if rel_id not in failed:
            rows.append(("relation", rel_id, tags, areas[rel_id]))
    imported_rel = set(relations) - failed
    duplicates = {
        way_id
        for way_id, rel_ids in members.items()
        if way_id in way_class
        and any(r in imported_rel and relations[r][0] == way_class[way_id] for r in rel_ids)
    }
    if duplicates:
        counts["duplicate_of_relation"] += len(duplicates)
        rows = [r for r in rows if not (r[0] == "way" and r[1] in duplicates)]

    notes = []
    n_lines = sum(1 for r in rows if r[3].geom_type == "LineString")
    n_rel = sum(1 for r in rows if r[0] == "relation")
    if n_rel:
        notes.append(f"{n_rel} multipolygon/boundary relations assembled into polygons")
    if n_lines:
        notes.append(f"{n_lines} open ways kept as lines")
    notes.append(not_imported_note(counts))
    frame = gpd.GeoDataFrame(
        {
            "osm_type": [r[0] for r in rows],
            "osm_id": np.asarray([r[1] for r in rows], dtype="int64"),
            "name": [r[2].get("name") for r in rows],
            "osm_tags": [json.dumps(r[2], ensure_ascii=False, sort_keys=True) for r in rows],
            "_tags": [r[2] for r in rows],
        },
        geometry=gpd.GeoSeries([r[3] for r in rows], crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    return frame, notes


def _incomplete(path: Path, members: dict[int, list[int]], osmium: object) -> set[int]:
    """Relations (of ``members``: relation id -> member way ids) with a member way, or a
    node of one, missing from the file. One more read, only when some relation failed."""
    wanted = {w for ways in members.values() for w in ways}
    complete: set[int] = set()
    try:
        processor = (
            osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations()
            .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
            .with_filter(osmium.filter.IdFilter(wanted))
        )
        for way in processor:
            if all(n.location.valid() for n in way.nodes):
                complete.add(way.id)
    except RuntimeError as exc:
        raise UnusableFile(f"{path.name} is not a readable OSM PBF file: {exc}") from exc
    return {r for r, ways in members.items() if ways and not set(ways) <= complete}


def _way_geometry(
    way: object, tags: dict[str, str], counts: Counter[str], osmium: object
) -> shapely.Geometry | None:
    """Polygon for a closed way, line for an open one; ``None`` (counted) when unusable."""
    refs = [n.ref for n in way.nodes]
    try:
        coords = [(n.lon, n.lat) for n in way.nodes]
    except osmium.InvalidLocationError:
        counts["missing_locations"] += 1
        return None
    if len(set(coords)) < 2:
        counts["invalid_geometry"] += 1
        return None
    closed = len(refs) >= 2 and refs[0] == refs[-1]
    if closed and tags.get("area") != "no":
        if len(refs) < 4:
            counts["invalid_geometry"] += 1
            return None
        return shapely.Polygon(coords)
    return shapely.LineString(coords)
