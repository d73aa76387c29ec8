"""Shift-share decomposition of region × sector change between two tables.

Notation: ``e0[r, s]`` and ``e1[r, s]`` are the measure (employment or the number of
firms) of sector ``s`` in region ``r`` in the base and the final table; ``E0[s]``,
``E1[s]`` the national sector totals, ``E0``, ``E1`` the national totals. The national
growth rate is ``G = E1 / E0 - 1`` and the national growth of sector ``s`` is
``g[s] = E1[s] / E0[s] - 1``.

The classic decomposition (Dunn 1960) splits each cell's change into::

    national_share  NS[r, s] = e0[r, s] * G
    industry_mix    IM[r, s] = e0[r, s] * (g[s] - G)
    regional_shift  RS[r, s] = e1[r, s] - e0[r, s] * (1 + g[s])

so that ``NS + IM + RS = e1 - e0`` exactly (an identity, tested to 1e-9). The regional
shift is written as a residual so that it is defined also where ``e0[r, s] = 0`` (a
sector new to the region: the whole final value is regional shift).

Esteban-Marquillas (1972) split the regional shift with the *homothetic* base value
``h[r, s] = E0[r] * E0[s] / E0`` (what the region would have if its sector structure
were the nation's) into::

    competitive     C[r, s] = h[r, s] * (g[r, s] - g[s])
    allocation      A[r, s] = (e0[r, s] - h[r, s]) * (g[r, s] - g[s])

with ``g[r, s] = e1[r, s] / e0[r, s] - 1``; ``C + A = RS``. The cell's own growth rate
is undefined where ``e0[r, s] = 0``, so both are NaN there (their sum is still the
regional shift, which stays defined).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geocluster.errors import InvalidInput

__all__ = ["ShiftShare", "shift_share"]

_COMPONENTS = ("national_share", "industry_mix", "regional_shift")
_EM_COMPONENTS = ("competitive", "allocation")


@dataclass(frozen=True)
class ShiftShare:
    """Result of :func:`shift_share`.

    Attributes
    ----------
    rows : DataFrame
        One row per region × sector: ``region_id, sector, base, final, national_share,
        industry_mix, regional_shift`` (+ ``homothetic, competitive, allocation`` with
        ``esteban_marquillas=True``).
    regions : DataFrame
        Per region (index ``region_id``): ``base, final, change`` and the components
        summed over its sectors (``competitive`` and ``allocation`` over the sectors
        the region had in the base table, where they are defined).
    national_growth : float
        ``G = E1 / E0 - 1``.
    sector_growth : Series
        ``g[s]`` per sector (NaN for a sector absent from the base table).
    """

    rows: pd.DataFrame
    regions: pd.DataFrame
    national_growth: float
    sector_growth: pd.Series


def _as_table(table: pd.DataFrame, name: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise InvalidInput(
            f"expected {name} as a region × sector DataFrame, got {type(table).__name__}"
        )
    if table.index.has_duplicates or table.columns.has_duplicates:
        raise InvalidInput(f"expected unique region ids and sectors in {name}")
    values = table.apply(pd.to_numeric, errors="coerce")
    arr = values.to_numpy(float)
    if np.isnan(arr).any() or np.isinf(arr).any():
        raise InvalidInput(f"expected finite numbers in {name}, got missing or non-numeric cells")
    if (arr < 0).any():
        raise InvalidInput(f"expected non-negative values in {name}, got negative cells")
    values.index = values.index.astype(str)
    values.columns = values.columns.astype(str)
    return values


def shift_share(
    base: pd.DataFrame,
    final: pd.DataFrame,
    *,
    esteban_marquillas: bool = False,
) -> ShiftShare:
    """Classic (Dunn) shift-share of each region × sector change, optionally Esteban-Marquillas.

    Parameters
    ----------
    base, final : DataFrame
        Region × sector tables (index region ids, columns sectors) of the same measure
        (employees or firms) in the base and the final version. Regions or sectors
        present in only one table count 0 in the other. National totals are the sums
        over the regions given, so pass every region of the country.
    esteban_marquillas : bool, default False
        Also split the regional shift into competitive and allocation effects.

    Returns
    -------
    ShiftShare

    Raises
    ------
    InvalidInput
        On non-numeric or negative cells, or an empty base table (``E0 = 0``).

    Notes
    -----
    Dunn, E. S. (1960), "A statistical and analytical technique for regional analysis",
    *Papers of the Regional Science Association* 6, 97–112. Esteban-Marquillas, J. M.
    (1972), "A reinterpretation of shift-share analysis", *Regional and Urban Economics*
    2(3), 249–255. The module docstring gives the formulas.
    """
    b = _as_table(base, "base")
    f = _as_table(final, "final")
    regions = b.index.union(f.index, sort=False)
    sectors = b.columns.union(f.columns, sort=False)
    sectors = pd.Index(sorted(sectors))
    b = b.reindex(index=regions, columns=sectors, fill_value=0.0)
    f = f.reindex(index=regions, columns=sectors, fill_value=0.0)
    e0, e1 = b.to_numpy(float), f.to_numpy(float)
    E0, E1 = e0.sum(), e1.sum()
    if E0 <= 0:
        raise InvalidInput("expected a base table with a positive national total, got 0")
    G = E1 / E0 - 1.0
    E0s, E1s = e0.sum(axis=0), e1.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gs = np.where(E0s > 0, E1s / E0s - 1.0, np.nan)
    ns = e0 * G
    # where E0[s] = 0 every e0[r, s] is 0: the sector term vanishes, not NaN
    grown = np.where(e0 > 0, e0 * (1.0 + np.nan_to_num(gs)), 0.0)
    im = np.where(e0 > 0, e0 * (np.nan_to_num(gs) - G), 0.0)
    rs = e1 - grown
    columns = {
        "region_id": np.repeat(regions.to_numpy(dtype=object), len(sectors)),
        "sector": np.tile(sectors.to_numpy(dtype=object), len(regions)),
        "base": e0.ravel(),
        "final": e1.ravel(),
        "national_share": ns.ravel(),
        "industry_mix": im.ravel(),
        "regional_shift": rs.ravel(),
    }
    comps = list(_COMPONENTS)
    if esteban_marquillas:
        h = e0.sum(axis=1, keepdims=True) * E0s[None, :] / E0
        with np.errstate(divide="ignore", invalid="ignore"):
            grs = np.where(e0 > 0, e1 / e0 - 1.0, np.nan)
        diff = grs - gs[None, :]
        columns["homothetic"] = h.ravel()
        columns["competitive"] = (h * diff).ravel()
        columns["allocation"] = ((e0 - h) * diff).ravel()
        comps += list(_EM_COMPONENTS)
    rows = pd.DataFrame(columns)
    totals = rows.groupby("region_id", sort=False)[["base", "final", *comps]].sum(min_count=1)
    totals.insert(2, "change", totals["final"] - totals["base"])
    return ShiftShare(
        rows=rows,
        regions=totals,
        national_growth=float(G),
        sector_growth=pd.Series(gs, index=sectors, name="growth"),
    )
