"""OSM PBF -> firm / asset columns, through the one mapping in :mod:`geocluster.sectors.osm`."""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import pandas as pd


def selection(kind: str) -> tuple[tuple[str, ...], Callable[[dict[str, str]], bool], Callable]:
    """Tag keys to pre-filter on, the keep predicate and the classifier for ``kind``."""
    from geocluster.sectors.osm import (
        ASSET_TAGS,
        FIRM_KEYS,
        osm_asset_class,
        osm_firm_match,
    )

    if kind == "firms":
        return tuple(FIRM_KEYS), lambda tags: osm_firm_match(tags) is not None, osm_firm_match
    keys = tuple(dict.fromkeys(row.key for row in ASSET_TAGS))
    return keys, lambda tags: osm_asset_class(tags) is not None, osm_asset_class


def to_columns(kind: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Add the canonical columns of ``kind`` from the ``_tags`` dicts of :func:`read_osm`.

    Firms get ``firm_id`` (``"n<id>"`` / ``"w<id>"``), ``sector_code`` (ISIC
    division, missing for trades the table does not name) and ``osm_tag`` (the
    ``key=value`` that made it a firm); assets get ``asset_id``, ``category``,
    ``subtype`` and ``designation``.
    """
    from geocluster.sectors.osm import osm_asset_class, osm_firm_match

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
    classes = [osm_asset_class(t) for t in tags]
    out.insert(0, "asset_id", ids)
    out.insert(1, "category", pd.Series([c[0] for c in classes], index=frame.index, dtype="str"))
    out.insert(2, "subtype", pd.Series([c[1] for c in classes], index=frame.index, dtype="str"))
    out.insert(3, "designation", pd.Series([c[2] for c in classes], index=frame.index, dtype="str"))
    return out
