"""Per-piece kernels shared by both engines (plain functions of plain data, so that a
Dask worker can run them), and the reductions that combine their results."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow as pa

from geocluster.clustering.kde import KDEGrid, kde_grid
from geocluster.engine._source import Piece, read_piece, xy
from geocluster.errors import InvalidInput

COUNT_COLUMNS = ["region", "sector", "n_firms", "weight", "n_weight_known"]


def weights_of(t: pa.Table, weight: str | None) -> np.ndarray | None:
    if weight is None:
        return None
    return np.asarray(t[weight].to_numpy(zero_copy_only=False), dtype=np.float64)


# -- region x sector counts -------------------------------------------------------------


def piece_counts(
    table, piece: Piece, *, x, y, sector, region, regions, weight, filters
) -> pd.DataFrame:
    """Region x sector partial counts of one piece."""
    cols = [sector] + ([region] if region else [x, y]) + ([weight] if weight else [])
    _, t = read_piece(table, piece, list(dict.fromkeys(cols)), filters)
    return counts_of(t, x=x, y=y, sector=sector, region=region, regions=regions, weight=weight)


def counts_of(t: pa.Table, *, x, y, sector, region, regions, weight) -> pd.DataFrame:
    """Region x sector counts of a table's rows (grouped in Arrow: no per-row objects)."""
    if region is not None:
        reg = t[region]
    else:
        from geocluster.specialization.regions import assign_regions

        gdf, id_col = regions
        pos = assign_regions(xy(t, x, y), gdf)
        ids = pa.array(gdf[id_col].to_numpy())
        # A null index takes a null: points in no region keep a missing region.
        reg = ids.take(pa.array(pos, mask=pos < 0))
    w = weights_of(t, weight)
    n = t.num_rows
    g = pa.table(
        {
            "region": reg,
            "sector": t[sector],
            "n_firms": pa.array(np.ones(n, np.int64)),
            "weight": pa.array(np.zeros(n) if w is None else np.nan_to_num(w, nan=0.0)),
            "n_weight_known": pa.array(
                np.zeros(n, np.int64) if w is None else np.isfinite(w).astype(np.int64)
            ),
        }
    )
    out = g.group_by(["region", "sector"]).aggregate(
        [("n_firms", "sum"), ("weight", "sum"), ("n_weight_known", "sum")]
    )
    df = out.to_pandas().rename(
        columns={
            "n_firms_sum": "n_firms",
            "weight_sum": "weight",
            "n_weight_known_sum": "n_weight_known",
        }
    )
    return reduce_counts([df])


def reduce_counts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Sum partial tables (associative, so it can run as a tree)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in COUNT_COLUMNS[:2]}).assign(
            n_firms=pd.Series(dtype=np.int64),
            weight=pd.Series(dtype=np.float64),
            n_weight_known=pd.Series(dtype=np.int64),
        )
    df = pd.concat(parts, ignore_index=True)
    for c in ("region", "sector"):
        # Categorical or mixed inputs become plain objects so that groups compare equal.
        df[c] = df[c].astype("object")
    out = (
        df.groupby(["region", "sector"], dropna=False, sort=False)[
            ["n_firms", "weight", "n_weight_known"]
        ]
        .sum()
        .reset_index()
    )
    return out


def finish_counts(df: pd.DataFrame) -> pd.DataFrame:
    """A canonical row order (region, sector; missing last) so engines compare equal."""
    keys = []
    for c in ("sector", "region"):  # lexsort: last key is primary
        na = df[c].isna().to_numpy()
        text = df[c].map(lambda v: "" if v is None or v != v else str(v)).to_numpy(dtype=str)
        keys += [text, na]
    order = np.lexsort(keys)
    return df.iloc[order].reset_index(drop=True)[COUNT_COLUMNS]


# -- KDE ------------------------------------------------------------------------------


def piece_bounds(table, piece: Piece, *, x, y, filters):
    """``(n, minx, miny, maxx, maxy)`` of a piece's points (n = 0: no bounds)."""
    _, t = read_piece(table, piece, [x, y], filters)
    if t.num_rows == 0:
        return (0, np.inf, np.inf, -np.inf, -np.inf)
    X = xy(t, x, y)
    return (t.num_rows, *X.min(axis=0), *X.max(axis=0))


def piece_moments(table, piece: Piece, *, x, y, weight, filters, mean=None):
    """Sums for a rule-of-thumb bandwidth (:func:`geocluster.clustering.kde.bandwidth_m`).

    First pass (``mean`` None): ``(n, minx, miny, maxx, maxy, sw, sw2, swx, swy)``;
    second pass: ``(swdx2, swdy2)``, the weighted squared deviations from ``mean`` (two
    passes, as numpy's variance: no cancellation on coordinates of millions of metres).
    """
    cols = [x, y] + ([weight] if weight else [])
    _, t = read_piece(table, piece, cols, filters)
    X = xy(t, x, y)
    w = weights_of(t, weight)
    if mean is not None:
        d2 = (X - np.asarray(mean)) ** 2
        if w is not None:
            d2 = d2 * w[:, None]
        return tuple(float(v) for v in d2.sum(axis=0)) if len(X) else (0.0, 0.0)
    if t.num_rows == 0:
        return (0, np.inf, np.inf, -np.inf, -np.inf, 0.0, 0.0, 0.0, 0.0)
    if w is None:
        sw, sw2, s = float(len(X)), float(len(X)), X.sum(axis=0)
    else:
        if (w < 0).any():
            raise InvalidInput("expected non-negative weights with a positive sum")
        sw, sw2, s = float(w.sum()), float((w**2).sum()), (X * w[:, None]).sum(axis=0)
    return (t.num_rows, *X.min(axis=0), *X.max(axis=0), sw, sw2, float(s[0]), float(s[1]))


def bandwidth_from_moments(first: list, second: list | None, rule: str):
    """``(mean, h)``: the mean (after the first pass) and, with ``second``, the bandwidth."""
    n = sum(p[0] for p in first)
    if n < 2:
        raise InvalidInput(
            f"expected at least 2 points for a {rule!r} bandwidth, got {n}; "
            "give the bandwidth in metres"
        )
    sw = sum(p[5] for p in first)
    if not sw > 0:
        raise InvalidInput("expected non-negative weights with a positive sum")
    mean = (sum(p[7] for p in first) / sw, sum(p[8] for p in first) / sw)
    if second is None:
        return mean, None
    var = np.array([sum(p[0] for p in second), sum(p[1] for p in second)]) / sw
    n_eff = sw**2 / sum(p[6] for p in first)
    h = float(np.sqrt(float(var.mean()))) * n_eff ** (-1.0 / 6.0)
    if not h > 0:
        raise InvalidInput(
            f"the {rule!r} bandwidth is 0 (all points at one location); give it in metres"
        )
    return mean, h


def reduce_bounds(parts):
    n = sum(p[0] for p in parts)
    return (
        n,
        min(p[1] for p in parts),
        min(p[2] for p in parts),
        max(p[3] for p in parts),
        max(p[4] for p in parts),
    )


def kde_bounds(b, bandwidth_m: float):
    """The default KDE extent of :func:`kde_grid`: the points' box grown by 3 h."""
    n, x0, y0, x1, y1 = b
    if n == 0:
        raise InvalidInput("expected at least one point for a density surface, got none")
    h = 3 * bandwidth_m
    return (x0 - h, y0 - h, x1 + h, y1 + h)


def piece_kde(table, piece: Piece, *, x, y, weight, filters, grid) -> KDEGrid | None:
    """Intensity grid (per km^2, not normalised) of one piece's points, or None if empty."""
    cols = [x, y] + ([weight] if weight else [])
    _, t = read_piece(table, piece, cols, filters)
    return kde_of(t, x=x, y=y, weight=weight, grid=grid)


def kde_of(t: pa.Table, *, x, y, weight, grid) -> KDEGrid | None:
    if t.num_rows == 0:
        return None
    w = weights_of(t, weight)
    if w is not None and w.sum() <= 0:
        if (w < 0).any():
            raise InvalidInput("expected non-negative weights with a positive sum for the KDE")
        return None  # all-zero weights: this piece adds nothing
    return kde_grid(xy(t, x, y), weights=w, normalize=False, **grid)


def reduce_kde(parts: list[KDEGrid | None]) -> KDEGrid | None:
    """Sum of intensity grids on the same grid (associative)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    dens = parts[0].density.copy()
    for p in parts[1:]:
        dens += p.density
    return dataclasses.replace(
        parts[0],
        density=dens,
        n_points=sum(p.n_points for p in parts),
        total_weight=sum(p.total_weight for p in parts),
    )


def finish_kde(g: KDEGrid | None, normalize: bool) -> KDEGrid:
    if g is None:
        raise InvalidInput("expected points with a positive total weight for the KDE, got none")
    if normalize:
        return dataclasses.replace(
            g, density=g.density / (1e6 * g.total_weight), units="probability_per_m2"
        )
    return g
