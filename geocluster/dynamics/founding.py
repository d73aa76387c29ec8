"""Founding-year series, growth rates and age structure per cluster or region."""

from __future__ import annotations

import numpy as np
import pandas as pd

from geocluster.errors import InvalidInput, MissingColumns

__all__ = ["AGE_BINS", "age_structure", "founding_series", "growth"]

#: Lower edges (years of age, inclusive) of the default age bins: 0-2, 3-5, 6-10, 11-20,
#: 21+. The first two separate start-ups (OECD/Eurostat count "young" firms as up to 5
#: years old) from established firms.
AGE_BINS: tuple[int, ...] = (0, 3, 6, 11, 21)


def _years(firms: pd.DataFrame, year_col: str) -> np.ndarray:
    if year_col not in firms.columns:
        raise MissingColumns(f"expected a {year_col!r} column of founding years")
    y = pd.to_numeric(firms[year_col], errors="coerce").to_numpy(float, na_value=np.nan)
    ok = np.isfinite(y)
    if (y[ok] != np.round(y[ok])).any():
        raise InvalidInput(f"expected whole years in {year_col!r}, got fractional values")
    return y


def _groups(firms: pd.DataFrame, group: str) -> pd.Series:
    if group not in firms.columns:
        raise MissingColumns(f"expected a {group!r} column to group firms by")
    g = firms[group]
    # noise (-1) is in no cluster
    num = pd.to_numeric(g, errors="coerce")
    return g.where(g.notna() & ~(num == -1))


def _employees(firms: pd.DataFrame) -> np.ndarray:
    if "employees" not in firms.columns:
        return np.full(len(firms), np.nan)
    e = pd.to_numeric(firms["employees"], errors="coerce").to_numpy(float, na_value=np.nan)
    if (e < 0).any():
        raise InvalidInput(f"expected employees >= 0, got {int((e < 0).sum())} negative values")
    return e


def founding_series(
    firms: pd.DataFrame,
    *,
    group: str,
    year_col: str = "founded",
    years: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Firms and employment by founding year per group, with the cumulative stock.

    Parameters
    ----------
    firms : DataFrame
        Firms with a ``group`` column (``cluster_id``, noise ``-1`` dropped, or
        ``region_id``), ``year_col`` and optionally ``employees``.
    group : str
        Column to group by.
    year_col : str, default "founded"
        Founding year column; firms with an unknown year are left out (counted in
        ``attrs["unknown_year"]``).
    years : (int, int), optional
        First and last year of the series (inclusive); default the range of the data.
        Firms founded before the first year enter the first year's stock.

    Returns
    -------
    DataFrame
        One row per group × year: ``group, year, new_firms, new_employees`` (current
        employees of the surviving firms founded that year; NaN if none known),
        ``stock_firms, stock_employees`` (founded up to that year and still in the register).

    Notes
    -----
    A register snapshot gives the founding years of *surviving* firms: the stock of year
    ``y`` is the number of today's firms founded by ``y``, not the number alive in ``y``
    (closures are unobserved). Business demography proper needs births and deaths from
    successive registers (Eurostat–OECD (2007), *Manual on Business Demography
    Statistics*); :mod:`geocluster.clustering.change` compares two versions for that.
    """
    y = _years(firms, year_col)
    g = _groups(firms, group)
    emp = _employees(firms)
    keep = np.isfinite(y) & g.notna().to_numpy()
    frame = pd.DataFrame(
        {"group": g.to_numpy(object)[keep], "year": y[keep].astype(int), "emp": emp[keep]}
    )
    out_cols = ["group", "year", "new_firms", "new_employees", "stock_firms", "stock_employees"]
    if frame.empty:
        out = pd.DataFrame(columns=out_cols)
        out.attrs["unknown_year"] = int((~np.isfinite(y)).sum())
        return out
    lo, hi = (int(frame["year"].min()), int(frame["year"].max())) if years is None else years
    if lo > hi:
        raise InvalidInput(f"expected years as (first, last) with first <= last, got {years}")
    before = frame["year"] < lo
    frame.loc[before, "year"] = lo  # earlier foundings are part of the opening stock
    frame = frame[frame["year"] <= hi]
    grouped = frame.groupby(["group", "year"])
    counts = grouped.size().rename("new_firms")
    jobs = grouped["emp"].sum(min_count=1).rename("new_employees")
    groups = sorted(frame["group"].unique(), key=str)
    index = pd.MultiIndex.from_product([groups, range(lo, hi + 1)], names=["group", "year"])
    out = pd.concat([counts, jobs], axis=1).reindex(index)
    out["new_firms"] = out["new_firms"].fillna(0).astype(int)
    out["stock_firms"] = out.groupby(level="group")["new_firms"].cumsum()
    out["stock_employees"] = out.groupby(level="group")["new_employees"].transform(
        lambda s: s.fillna(0).cumsum().where(s.notna().cumsum() > 0)
    )
    out = out.reset_index()
    out.attrs["unknown_year"] = int((~np.isfinite(y)).sum())
    out.attrs["opening_stock_year"] = lo
    return out[out_cols]


def growth(series: pd.DataFrame, *, start_year: int, end_year: int) -> pd.DataFrame:
    """Compound annual growth rate of each group's stock between two years.

    Parameters
    ----------
    series : DataFrame
        From :func:`founding_series`.
    start_year, end_year : int
        ``start_year < end_year``, both within the series.

    Returns
    -------
    DataFrame
        Index ``group``: ``firms_start, firms_end, cagr_firms, employees_start,
        employees_end, cagr_employees``, with ``CAGR = (end / start) ** (1 / (end_year -
        start_year)) - 1`` (NaN when the start stock is 0).

    Notes
    -----
    A survivor series: firms that closed in between are not in the register, so the
    CAGR is that of today's firms by founding date, an upper bound of the true net growth.
    """
    if end_year <= start_year:
        raise InvalidInput(f"expected start_year < end_year, got {start_year}, {end_year}")
    have = set(series["year"])
    if start_year not in have or end_year not in have:
        raise InvalidInput(
            f"expected start_year and end_year within the series years "
            f"{min(have, default=None)}..{max(have, default=None)}"
        )
    s = series.set_index(["group", "year"])
    span = end_year - start_year
    out = pd.DataFrame(
        {
            "firms_start": s.xs(start_year, level="year")["stock_firms"],
            "firms_end": s.xs(end_year, level="year")["stock_firms"],
            "employees_start": s.xs(start_year, level="year")["stock_employees"],
            "employees_end": s.xs(end_year, level="year")["stock_employees"],
        }
    )
    for what in ("firms", "employees"):
        a = out[f"{what}_start"].to_numpy(float)
        b = out[f"{what}_end"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"cagr_{what}"] = np.where(a > 0, (b / a) ** (1.0 / span) - 1.0, np.nan)
    return out[
        [
            "firms_start",
            "firms_end",
            "cagr_firms",
            "employees_start",
            "employees_end",
            "cagr_employees",
        ]
    ]


def age_structure(
    firms: pd.DataFrame,
    *,
    group: str,
    reference_year: int,
    year_col: str = "founded",
    bins: tuple[int, ...] = AGE_BINS,
) -> pd.DataFrame:
    """Firms per age bin per group (counts and shares), age = ``reference_year - founded``.

    Parameters
    ----------
    firms : DataFrame
        Firms with ``group`` and ``year_col`` columns.
    group : str
        Column to group by (noise ``-1`` and missing dropped).
    reference_year : int
        The register's "now" (e.g. the latest founding year, or the snapshot year).
    year_col : str, default "founded"
    bins : tuple of int
        Increasing lower edges in years, starting at 0; the last bin is open.

    Returns
    -------
    DataFrame
        Index ``group``; one count column per bin (``"0-2"``, ..., ``"21+"``), the same as
        shares (``share_0-2``, ...) over firms with a known age, ``unknown_age`` and
        ``median_age``. Firms founded after ``reference_year`` are rejected.

    Notes
    -----
    Age is counted in whole years from the founding year. The default bins separate
    young firms (up to 5 years; Eurostat–OECD (2007), *Manual on Business Demography
    Statistics*, counts firms of up to 5 years among "young" enterprises) from established
    ones; survivors only, as for :func:`founding_series`.
    """
    edges = list(bins)
    if not edges or edges[0] != 0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise InvalidInput(f"expected increasing age bins starting at 0, got {bins}")
    y = _years(firms, year_col)
    g = _groups(firms, group)
    age = reference_year - y
    if (age < 0).any():
        raise InvalidInput(
            f"expected founding years up to reference_year {reference_year}, got "
            f"{int((age < 0).sum())} later ones"
        )
    labels = [f"{a}-{b - 1}" for a, b in zip(edges, edges[1:])] + [f"{edges[-1]}+"]
    known = np.isfinite(age)
    idx = np.full(len(age), -1)
    idx[known] = np.searchsorted(np.asarray(edges), age[known], side="right") - 1
    frame = pd.DataFrame({"group": g.to_numpy(object), "bin": idx, "age": age})
    frame = frame[g.notna().to_numpy()]
    counts = (
        frame[frame["bin"] >= 0]
        .groupby(["group", "bin"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=range(len(labels)), fill_value=0)
    )
    groups = sorted(frame["group"].unique(), key=str)
    counts = counts.reindex(groups, fill_value=0)
    counts.columns = labels
    total = counts.sum(axis=1).to_numpy(float)
    shares = counts.div(np.where(total > 0, total, np.nan), axis=0)
    shares.columns = [f"share_{c}" for c in labels]
    out = pd.concat([counts, shares], axis=1)
    out["unknown_age"] = frame[frame["bin"] < 0].groupby("group").size().reindex(groups).fillna(0)
    out["unknown_age"] = out["unknown_age"].astype(int)
    out["median_age"] = frame.groupby("group")["age"].median().reindex(groups)
    out.index.name = "group"
    return out
