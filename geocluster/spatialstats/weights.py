"""Spatial weights from region polygons (libpysal), parsed from a short spec string."""

from __future__ import annotations

import re
import warnings

import geopandas as gpd
import numpy as np

from geocluster.errors import CRSError, InvalidInput

__all__ = ["WEIGHT_KINDS", "parse_weights_spec", "build_weights"]

WEIGHT_KINDS = ("queen", "rook", "knn:K", "distance:M")
_SPEC = re.compile(r"^(queen|rook|knn:(\d+)|distance:(\d+(?:\.\d*)?|\.\d+))$")


def parse_weights_spec(spec: str) -> tuple[str, float | int | None]:
    """Parse ``"queen"``, ``"rook"``, ``"knn:K"`` (K ≥ 1) or ``"distance:M"`` (metres > 0).

    Returns ``(kind, parameter)``; raises InvalidInput naming the accepted forms.
    """
    m = _SPEC.match(str(spec).strip().lower()) if isinstance(spec, str) else None
    if not m:
        raise InvalidInput(f"expected weights as one of {', '.join(WEIGHT_KINDS)}, got {spec!r}")
    if m.group(2) is not None:
        k = int(m.group(2))
        if k < 1:
            raise InvalidInput(f"expected knn:K with K >= 1, got {spec!r}")
        return "knn", k
    if m.group(3) is not None:
        d = float(m.group(3))
        if d <= 0:
            raise InvalidInput(f"expected distance:M with M > 0 metres, got {spec!r}")
        return "distance", d
    return m.group(1), None


def build_weights(regions: gpd.GeoDataFrame, spec: str = "queen", *, ids=None):
    """Binary spatial weights between regions.

    Parameters
    ----------
    regions : GeoDataFrame
        Region polygons. For ``knn`` and ``distance`` the CRS must be projected in metres
        (the working CRS); distances are between polygon centroids.
    spec : str
        ``"queen"`` / ``"rook"`` contiguity (shared vertex / shared edge), ``"knn:K"`` the
        K nearest centroids, ``"distance:M"`` every centroid within M metres.
    ids : sequence, optional
        Ids used as the weights' keys (default: 0..n-1, the row positions).

    Returns
    -------
    libpysal.weights.W
        Binary (transform "B"); statistics row-standardise their own copy. Islands (regions
        without neighbours) are kept and reported in ``w.islands``.
    """
    from libpysal import weights as lw

    kind, param = parse_weights_spec(spec)
    n = len(regions)
    if n < 3:
        raise InvalidInput(f"expected at least 3 regions for spatial weights, got {n}")
    ids = list(range(n)) if ids is None else list(ids)
    geoms = regions.reset_index(drop=True)
    with warnings.catch_warnings():
        # islands are expected with real boundaries; they are reported, not warned about
        warnings.simplefilter("ignore", UserWarning)
        if kind in ("queen", "rook"):
            cls = lw.Queen if kind == "queen" else lw.Rook
            w = cls.from_dataframe(geoms, use_index=False, ids=ids)
        else:
            _require_metres(regions)
            xy = np.column_stack([geoms.geometry.centroid.x, geoms.geometry.centroid.y])
            if kind == "knn":
                if param >= n:
                    raise InvalidInput(
                        f"expected knn:K with K < number of regions ({n}), got K={param}"
                    )
                w = lw.KNN.from_array(xy, k=int(param), ids=ids)
            else:
                w = lw.DistanceBand.from_array(xy, threshold=float(param), binary=True, ids=ids)
    w.transform = "B"
    return w


def _require_metres(regions: gpd.GeoDataFrame) -> None:
    from geocluster.crs import ensure_projected

    if regions.crs is None:
        raise CRSError("expected regions with a projected CRS in metres, got no CRS")
    ensure_projected(regions.crs)
