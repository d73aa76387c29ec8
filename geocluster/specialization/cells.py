"""Specialisation from reduced region x sector cells (what a distributed engine sums).

:func:`geocluster.specialization.long_table` needs the firm-level
:class:`~geocluster.specialization.SectorTable`. Every figure it returns except the
bootstrap interval is a function of a few sums per region x sector cell, so an engine
can compute those sums per partition, add them up by a tree reduction and never bring
the firms together:

- firms and known-employee counts, the employee sum (LQ, HHI, Krugman, strong clusters,
  stars, the measure choice);
- the sum of squared employees (the plant Herfindahl of Ellison-Glaeser and
  Maurel-Sedillot: ``H[s] = sum_j w_j^2 / X[s]^2``);
- the two largest employee counts (the disclosure dominance rule).

Cells are keyed by the firm's region *position* and its sector label (for sector groups:
its ISIC division, mapped to groups here, so overlapping groups stay exact).
:func:`long_table_from_cells` returns the same frames as ``long_table`` (tested equal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geocluster.specialization.measures import (
    _div,
    cluster_stars,
    herfindahl,
    krugman,
    location_quotient,
    strong_clusters,
)

__all__ = [
    "CELL_COLUMNS",
    "CellTable",
    "cells_of",
    "long_table_from_cells",
    "reduce_cells",
    "with_outside",
]

#: Columns of a cell frame (``region``: position in the regions, -1 outside; ``key``:
#: sector label, None for a firm without one).
CELL_COLUMNS = ["region", "key", "n", "emp", "n_emp", "emp2", "top1", "top2"]


def cells_of(region_pos: np.ndarray, keys: pd.Series, employees: np.ndarray) -> pd.DataFrame:
    """Cell sums of one partition's firms.

    Parameters
    ----------
    region_pos : ndarray of int, shape (n,)
        Region position of each firm (-1 outside), as :func:`assign_regions` gives.
    keys : Series, shape (n,)
        Sector label of each firm (None/NaN/"" unknown).
    employees : ndarray of float, shape (n,)
        Employees (NaN unknown).
    """
    emp = np.asarray(employees, dtype=np.float64)
    e0 = np.nan_to_num(emp, nan=0.0)
    df = pd.DataFrame(
        {
            "region": np.asarray(region_pos, dtype=np.int64),
            "key": _labels(keys),
            "n": np.ones(len(emp), np.int64),
            "emp": e0,
            "n_emp": np.isfinite(emp).astype(np.int64),
            "emp2": e0**2,
            "top1": e0,
            "top2": np.zeros(len(emp)),
        }
    )
    return _group(df, [df["top1"].to_numpy()])


def _labels(keys) -> np.ndarray:
    """Sector labels as an object array of str, None where unknown (NA, NaN or "")."""
    k = pd.Series(keys).reset_index(drop=True)
    known = (k.notna() & (k.astype("object").astype(str) != "")).to_numpy(bool)
    out = np.full(len(k), None, dtype=object)
    out[known] = k[known].astype("object").astype(str).to_numpy(dtype=object)
    return out


def _group(df: pd.DataFrame, tops: list[np.ndarray]) -> pd.DataFrame:
    """Sum ``df`` per (region, key); ``top1``/``top2``: the two largest of ``tops``."""
    if df.empty:
        return _empty()
    # integer group codes: an unknown sector (None) is a group of its own
    codes, uniques = pd.factorize(pd.Series(df["key"].to_numpy(dtype=object)), sort=False)
    labels = np.append(np.asarray(uniques, dtype=object), None)  # code -1 -> None
    region = df["region"].to_numpy(np.int64)
    cell = pd.MultiIndex.from_arrays([region, codes], names=["region", "code"])
    sums = df[["n", "emp", "n_emp", "emp2"]].set_axis(cell).groupby(level=[0, 1]).sum()
    # the two largest values per cell among all candidates
    vals = np.concatenate(tops)
    rr = np.tile(region, len(tops))
    cc = np.tile(codes, len(tops))
    order = np.lexsort((-vals, cc, rr))
    rr, cc, vals = rr[order], cc[order], vals[order]
    new = np.r_[True, (rr[1:] != rr[:-1]) | (cc[1:] != cc[:-1])]
    start = np.flatnonzero(new)
    rank = np.arange(len(vals)) - np.repeat(start, np.diff(np.r_[start, len(vals)]))
    first = pd.Series(
        vals[rank == 0], index=pd.MultiIndex.from_arrays([rr[rank == 0], cc[rank == 0]])
    )
    second = pd.Series(
        vals[rank == 1], index=pd.MultiIndex.from_arrays([rr[rank == 1], cc[rank == 1]])
    )
    sums["top1"] = first.reindex(sums.index).to_numpy()
    sums["top2"] = second.reindex(sums.index).fillna(0.0).to_numpy()
    out = sums.reset_index()
    out["key"] = labels[out["code"].to_numpy()]
    return out[CELL_COLUMNS].reset_index(drop=True)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": pd.Series(dtype=np.int64),
            "key": pd.Series(dtype="object"),
            **{c: pd.Series(dtype=np.int64) for c in ("n", "n_emp")},
            **{c: pd.Series(dtype=np.float64) for c in ("emp", "emp2", "top1", "top2")},
        }
    )[CELL_COLUMNS]


def reduce_cells(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Sum partial cell frames (associative and commutative: it runs as a tree)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty()
    df = pd.concat(parts, ignore_index=True)
    df["key"] = _labels(df["key"])
    # the two largest of a cell are among the parts' two largest
    return _group(df, [df["top1"].to_numpy(np.float64), df["top2"].to_numpy(np.float64)])


def with_outside(cells: pd.DataFrame, outside: int) -> pd.DataFrame:
    """``cells`` of the firms in regions plus one row counting the ``outside`` firms.

    Firms in no region enter only the count of dropped firms, so one row (region -1, no
    sector, zero sums) is all an engine keeps of them.
    """
    inside = cells[cells["region"] >= 0]
    if not outside:
        return inside.reset_index(drop=True)
    extra = _empty().reindex([0])
    extra[["region", "n"]] = [-1, int(outside)]
    extra = extra.fillna({c: 0 for c in ("n_emp", "emp", "emp2", "top1", "top2")})
    extra = extra.astype({c: np.int64 for c in ("region", "n", "n_emp")})
    return pd.concat([inside, extra], ignore_index=True)[CELL_COLUMNS]


@dataclass(frozen=True)
class CellTable:
    """The reduced table: what :func:`long_table_from_cells` and the run summary use."""

    regions: np.ndarray
    sectors: np.ndarray
    n_firms: int
    dropped_outside: int


def long_table_from_cells(
    cells: pd.DataFrame,
    region_ids,
    measure: str = "employees",
    *,
    groups: dict[str, frozenset[str]] | None = None,
    small_count: int = 3,
) -> tuple[CellTable, pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """``long_table`` (without bootstrap) from reduced cells.

    Returns
    -------
    (CellTable, rows, regions, sectors, measure_used)
        The frames of :func:`geocluster.specialization.long_table`, same columns.
    """
    from geocluster.errors import InvalidInput
    from geocluster.specialization.measures import MEASURES

    if measure not in MEASURES:
        raise InvalidInput(f"expected measure in {MEASURES}, got {measure!r}")
    regions = np.asarray(region_ids).astype(str)
    R = len(regions)
    inside = cells[cells["region"] >= 0]
    dropped = int(cells.loc[cells["region"] < 0, "n"].sum())
    known = inside[inside["key"].notna()]
    if groups is None:
        sectors = np.asarray(sorted({str(k) for k in known["key"]}), dtype=object).astype(str)
        members = {s: (s,) for s in sectors}
    else:
        if not groups:
            raise InvalidInput("expected at least one sector group, got none")
        sectors = np.asarray(sorted(groups), dtype=object).astype(str)
        members = {g: tuple(groups[g]) for g in sectors}
    S = len(sectors)
    ri = inside["region"].to_numpy()
    count_tot = np.bincount(ri, weights=inside["n"].to_numpy(), minlength=R)
    emp_tot = np.bincount(ri, weights=inside["emp"].to_numpy(), minlength=R)
    n_firms = int(inside["n"].sum())
    n_emp = int(inside["n_emp"].sum())
    counts = np.zeros((R, S))
    emp = np.zeros((R, S))
    emp2 = np.zeros(S)
    top2 = np.zeros((R, S))
    kr = known["region"].to_numpy()
    kk = known["key"].astype(str).to_numpy()
    for j, s in enumerate(sectors):
        m = np.isin(kk, members[s])
        r = kr[m]
        counts[:, j] = np.bincount(r, weights=known["n"].to_numpy()[m], minlength=R)
        emp[:, j] = np.bincount(r, weights=known["emp"].to_numpy()[m], minlength=R)
        emp2[j] = known["emp2"].to_numpy()[m].sum()
        # top two per region among the member cells' top two
        vals = np.concatenate([known["top1"].to_numpy()[m], known["top2"].to_numpy()[m]])
        rr = np.concatenate([r, r])
        order = np.lexsort((-vals, rr))
        rs, vs = rr[order], vals[order]
        start = np.r_[0, np.flatnonzero(np.diff(rs)) + 1] if len(rs) else np.zeros(0, int)
        rank = np.arange(len(rs)) - np.repeat(start, np.diff(np.r_[start, len(rs)]))
        t = rank < 2
        top2[:, j] = np.bincount(rs[t], weights=vs[t], minlength=R)
    share = n_emp / n_firms if n_firms else 0.0
    known_total = float(emp_tot.sum())
    if measure == "firms":
        used = "firms"
    elif measure == "employees":
        used = "employees" if share > 0 and known_total > 0 else "firms"
    else:
        from geocluster.specialization.measures import AUTO_MIN_EMPLOYEE_SHARE

        used = "employees" if share >= AUTO_MIN_EMPLOYEE_SHARE and known_total > 0 else "firms"
    x, tot = (emp, emp_tot) if used == "employees" else (counts, count_tot)
    lq = location_quotient(x, tot)
    strong = strong_clusters(lq, x, counts, percentile=75)
    strong90 = strong_clusters(lq, x, counts, percentile=90)
    stars = cluster_stars(lq, x, tot)
    rows = pd.DataFrame(
        {
            "region_id": np.repeat(regions, S),
            "sector": np.tile(sectors, R),
            "count": counts.ravel().astype(np.int64),
            "employees": emp.ravel(),
            "lq": lq.ravel(),
            "strong": strong.ravel(),
            "strong_90": strong90.ravel(),
            "stars": stars["stars"].ravel(),
            "star_size": stars["star_size"].ravel(),
            "star_specialisation": stars["star_specialisation"].ravel(),
            "star_focus": stars["star_focus"].ravel(),
            "small_count": counts.ravel() < small_count,
            "top2_employees": top2.ravel(),
        }
    )
    regions_df = pd.DataFrame(
        {
            "region_id": regions,
            "n_firms": count_tot.astype(np.int64),
            "employees": emp_tot,
            "hhi": herfindahl(x, tot),
            "krugman": krugman(x, tot),
        }
    )
    # plant Herfindahl H[s] = sum_j (w_j / X[s])^2 (firms: w_j = 1)
    col = x.sum(axis=0)
    sq = emp2 if used == "employees" else counts.sum(axis=0)
    H = np.nan_to_num(_div(sq, col**2))
    xr = _div(tot, tot.sum())
    s_share = _div(x, col[None, :])
    sum_x2 = np.sum(xr**2)
    G = np.sum((s_share - xr[:, None]) ** 2, axis=0)
    eg = _div(G - (1 - sum_x2) * H, (1 - sum_x2) * (1 - H))
    ms = _div(np.sum(s_share**2, axis=0) - sum_x2 - H * (1 - sum_x2), (1 - sum_x2) * (1 - H))
    sectors_df = pd.DataFrame(
        {
            "sector": sectors,
            "n_firms": counts.sum(axis=0).astype(np.int64),
            "employees": emp.sum(axis=0),
            "ellison_glaeser": eg,
            "maurel_sedillot": ms,
            "plant_herfindahl": H,
        }
    )
    table = CellTable(regions=regions, sectors=sectors, n_firms=n_firms, dropped_outside=dropped)
    return table, rows, regions_df, sectors_df, used
