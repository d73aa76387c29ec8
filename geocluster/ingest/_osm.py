"""OSM PBF -> firm / asset / institution columns, through the one mapping in
:mod:`geocluster.sectors.osm`."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geocluster.errors import UnusableFile
from geocluster.io import RawTable, read_osm

#: Dataset kinds an OSM PBF file can give.
OSM_KINDS = ("firms", "assets", "institutions")


def selection(
    kind: str,
) -> tuple[tuple[str, ...], Callable[[dict[str, str]], Hashable | None], Callable]:
    """Tag keys to pre-filter on, the keep predicate and the classifier for ``kind``.

    The predicate returns the object's class (the mapping row, the asset class or
    the institution type), which the reader also uses to tell a multipolygon's outer
    way that repeats the relation's tags from a different object on the same ring.
    """
    from geocluster.sectors.osm import (
        ASSET_TAGS,
        FIRM_KEYS,
        INSTITUTION_TAGS,
        osm_asset_class,
        osm_firm_match,
        osm_institution_type,
    )

    if kind == "firms":
        return tuple(FIRM_KEYS), osm_firm_match, osm_firm_match
    if kind == "institutions":
        keys = tuple(dict.fromkeys(row.key for row in INSTITUTION_TAGS))
        return keys, osm_institution_type, osm_institution_type
    keys = tuple(dict.fromkeys(row.key for row in ASSET_TAGS))
    return keys, osm_asset_class, osm_asset_class


def _representative_points(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int]:
    """Points for firms and institutions: a point on each polygon or line, not a centroid
    (which can fall outside an L-shaped building or a courtyard block)."""
    geoms = frame.geometry.to_numpy()
    extent = shapely.get_type_id(geoms) != 0
    if not extent.any():
        return frame, 0
    geoms = geoms.copy()
    # make_valid first: a self-intersecting building ring still gets a point on its area
    geoms[extent] = shapely.point_on_surface(shapely.make_valid(geoms[extent]))
    out = frame.copy()
    out[frame.geometry.name] = gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs)
    return out, int(extent.sum())


def to_columns(kind: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Add the canonical columns of ``kind`` from the ``_tags`` dicts of :func:`read_osm`.

    Firms get ``firm_id`` (``"n<id>"`` / ``"w<id>"`` / ``"r<id>"``), ``sector_code``
    (ISIC division, missing for trades the table does not name) and ``osm_tag`` (the
    ``key=value`` that made it a firm); assets get ``asset_id``, ``category``,
    ``subtype`` and ``designation``; institutions ``institution_id``, ``type`` and
    ``sectors`` (empty: OSM does not say which trades an institution serves).
    Firms and institutions with an extent are replaced by a representative point.
    """
    from geocluster.sectors.osm import osm_asset_class, osm_firm_match, osm_institution_type

    tags = frame["_tags"].tolist()
    ids = (frame["osm_type"].str.slice(0, 1) + frame["osm_id"].astype("str")).astype("str")
    out = frame.copy()
    if kind == "firms":
        rows = [osm_firm_match(t) for t in tags]
        out.insert(0, "firm_id", ids)
        out.insert(
            1, "sector_code", pd.Series([r.isic for r in rows], index=frame.index, dtype="str")
        )
        out.insert(
            2,
            "osm_tag",
            pd.Series(
                [f"{r.key}={t.get(r.key)}" for r, t in zip(rows, tags)],
                index=frame.index,
                dtype="str",
            ),
        )
        return out
    if kind == "institutions":
        out.insert(0, "institution_id", ids)
        out.insert(
            1,
            "type",
            pd.Series([osm_institution_type(t) for t in tags], index=frame.index, dtype="str"),
        )
        out.insert(2, "sectors", pd.Series(None, index=frame.index, dtype="str"))
        return out
    classes = [osm_asset_class(t) for t in tags]
    out.insert(0, "asset_id", ids)
    out.insert(1, "category", pd.Series([c[0] for c in classes], index=frame.index, dtype="str"))
    out.insert(2, "subtype", pd.Series([c[1] for c in classes], index=frame.index, dtype="str"))
    out.insert(3, "designation", pd.Series([c[2] for c in classes], index=frame.index, dtype="str"))
    return out


def read(
    kind: str,
    path: Path,
    *,
    max_bytes: int | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> RawTable:
    """Read an OSM PBF file as a canonical raw table of ``kind`` (see :data:`OSM_KINDS`).

    The notes carry the reader's counts of objects not imported, by reason, and how
    many extended objects were reduced to a point.

    Raises
    ------
    UnusableFile
        The file is not a PBF, or has no object of ``kind``.
    """
    keys, keep, _ = selection(kind)
    raw = read_osm(path, keys=keys, keep=keep, max_bytes=max_bytes, progress=progress)
    if len(raw.frame) == 0:
        from geocluster.io._osm import parse_not_imported

        counts = parse_not_imported(raw.notes) or {}
        why = ", ".join(f"{n} {r}" for r, n in counts.items() if n)
        raise UnusableFile(
            f"{path.name} has no OSM objects usable as {kind}"
            + (f" (not imported: {why})" if why else "")
        )
    frame = to_columns(kind, raw.frame)
    notes = list(raw.notes)
    if kind in ("firms", "institutions"):
        frame, n_points = _representative_points(frame)
        if n_points:
            notes.insert(
                0,
                f"{n_points} {kind} mapped as areas or lines placed at a representative point "
                "on the object",
            )
    frame["osm_id"] = np.asarray(frame["osm_id"], dtype="int64")
    return RawTable(frame, raw.format, raw.crs, raw.layer, notes)
