"""Helpers shared by the analyses modules: JSON-safe values, records, features."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd


def noop_progress(fraction: float, message: str) -> None:
    """A progress callback that ignores its reports."""
    return None


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays as Python ones and NaN, inf, NA as None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` (without geometry) as JSON-safe dicts."""
    cols = [c for c in frame.columns if c != "geometry"]
    return [
        jsonable(dict(zip(cols, row, strict=True))) for row in frame[cols].itertuples(index=False)
    ]


def _null(constant: str) -> None:
    """``NaN``, ``Infinity`` and ``-Infinity`` in parsed JSON text become null."""
    return None


def feature_collection(frame: gpd.GeoDataFrame, *, json_columns: tuple[str, ...] = ()) -> dict:
    """A GeoJSON FeatureCollection in lon/lat; ``json_columns`` hold JSON text to expand.

    JSON-safe as :func:`jsonable` makes values: parsed text holds only Python values,
    and non-finite numbers are parsed as null (no second walk over every coordinate).
    """
    out = frame.to_crs("EPSG:4326") if frame.crs is not None else frame
    fc = json.loads(out.to_json(drop_id=True, na="null", to_wgs84=False), parse_constant=_null)
    for feat in fc["features"]:
        props = feat["properties"]
        for col in json_columns:
            if isinstance(props.get(col), str):
                props[col] = json.loads(props[col], parse_constant=_null)
    return fc
