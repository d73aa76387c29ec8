"""Convergence over time: sigma and absolute beta convergence, rank mobility.

Notes
-----
- *Sigma convergence*: dispersion falls over time. We report the ordinary least
  squares trend (slope per year, its standard error and two-sided p-value) of a
  dispersion series such as the coefficient of variation or Theil T (Barro &
  Sala-i-Martin 1992; Young, Higgins & Levy 2008).
- *Absolute beta convergence* (Barro & Sala-i-Martin 1992, eq. 1; Sala-i-Martin
  1996): poorer regions grow faster. With ``T`` years between the initial and final
  level, regress the annual log growth ``g_i = ln(y_iT / y_i0) / T`` on ``ln y_i0``::

      g_i = a + beta * ln(y_i0) + e_i

  ``beta < 0`` means convergence. The implied speed of convergence is
  ``b = -ln(1 + beta T) / T`` and the half-life (years to close half the gap)
  ``ln 2 / b``. The speed is undefined when ``1 + beta T <= 0`` and the half-life
  when ``b <= 0`` (divergence); both are then None.
- *Rank mobility*: Kendall's tau-b and Spearman's rho between the rankings of the
  regions in two years (1 = the order did not change), plus each region's rank in
  both years (rank 1 = highest value) and its change (positive = moved up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from geocluster.errors import InvalidInput
from geocluster.inequality._validate import as_values, require_positive

__all__ = [
    "BetaConvergence",
    "RankMobility",
    "Trend",
    "beta_convergence",
    "rank_mobility",
    "trend",
]


@dataclass(frozen=True)
class Trend:
    """OLS trend of a series over time (``slope`` in units per year)."""

    slope: float
    intercept: float
    stderr: float | None
    p_value: float | None
    r2: float | None
    n_years: int
    converging: bool

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def trend(years: Sequence[float], series: Sequence[float]) -> Trend:
    """Least-squares linear trend of ``series`` on ``years`` (sigma convergence).

    Parameters
    ----------
    years : array-like, shape (t,)
        At least two distinct years.
    series : array-like, shape (t,)
        The dispersion measure in each year.

    Returns
    -------
    Trend
        ``stderr``/``p_value``/``r2`` are None with fewer than 3 years (no residual
        degrees of freedom). ``converging`` is ``slope < 0``.
    """
    x = as_values(years, name="years")
    y = as_values(series, name="series")
    if x.size != y.size:
        raise InvalidInput(f"expected one value per year ({x.size}), got {y.size}")
    if np.unique(x).size < 2:
        raise InvalidInput(
            f"a trend needs at least two distinct years, got {np.unique(x).tolist()}"
        )
    res = stats.linregress(x, y)
    enough = x.size >= 3
    return Trend(
        slope=float(res.slope),
        intercept=float(res.intercept),
        stderr=float(res.stderr) if enough else None,
        p_value=float(res.pvalue) if enough and np.isfinite(res.pvalue) else None,
        r2=float(res.rvalue**2) if enough and np.isfinite(res.rvalue) else None,
        n_years=int(x.size),
        converging=bool(res.slope < 0),
    )


@dataclass(frozen=True)
class BetaConvergence:
    """Result of :func:`beta_convergence` (see the module notes for the formulas)."""

    beta: float
    stderr: float
    t_value: float | None
    p_value: float | None
    intercept: float
    r2: float
    n: int
    years: float
    speed: float | None
    half_life: float | None
    converging: bool

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def beta_convergence(
    initial: Sequence[float], final: Sequence[float], years: float
) -> BetaConvergence:
    """Absolute beta convergence between two years.

    Parameters
    ----------
    initial, final : array-like, shape (n,)
        Positive levels of each region at the start and at the end (n >= 3).
    years : float
        Time between the two, ``T > 0`` (years).

    Returns
    -------
    BetaConvergence
        ``beta``, its OLS standard error, t and two-sided p-value, ``speed`` ``b`` per
        year and ``half_life`` in years.
    """
    y0 = as_values(initial, name="initial values")
    y1 = as_values(final, name="final values")
    if y0.size != y1.size:
        raise InvalidInput(
            f"expected as many final values as initial ones ({y0.size}), got {y1.size}"
        )
    require_positive(y0, "beta convergence (log of the initial level)")
    require_positive(y1, "beta convergence (log of the final level)")
    T = float(years)
    if not np.isfinite(T) or T <= 0:
        raise InvalidInput(f"expected a positive number of years between the levels, got {years}")
    n = y0.size
    if n < 3:
        raise InvalidInput(f"beta convergence needs at least 3 regions, got {n}")
    x = np.log(y0)
    if np.ptp(x) == 0:
        raise InvalidInput("beta convergence needs different initial levels, got all equal")
    g = np.log(y1 / y0) / T
    X = np.column_stack([np.ones(n), x])
    coef, *_ = np.linalg.lstsq(X, g, rcond=None)
    resid = g - X @ coef
    dof = n - 2
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.inv(X.T @ X)
    beta = float(coef[1])
    se = float(np.sqrt(cov[1, 1]))
    tss = float(((g - g.mean()) ** 2).sum())
    r2 = 1.0 - float(resid @ resid) / tss if tss > 0 else 1.0
    if se > 0:
        t_value = beta / se
        p_value = float(2 * stats.t.sf(abs(t_value), dof))
    else:
        t_value = p_value = None
    speed = -np.log1p(beta * T) / T if 1 + beta * T > 0 else None
    half_life = float(np.log(2) / speed) if speed is not None and speed > 0 else None
    return BetaConvergence(
        beta=beta,
        stderr=se,
        t_value=None if t_value is None else float(t_value),
        p_value=p_value,
        intercept=float(coef[0]),
        r2=r2,
        n=n,
        years=T,
        speed=None if speed is None else float(speed),
        half_life=half_life,
        converging=beta < 0,
    )


@dataclass(frozen=True)
class RankMobility:
    """Result of :func:`rank_mobility`."""

    kendall_tau: float | None
    kendall_p_value: float | None
    spearman_rho: float | None
    spearman_p_value: float | None
    mean_abs_rank_change: float
    regions: list[dict]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def rank_mobility(
    before: Sequence[float], after: Sequence[float], ids: Sequence | None = None
) -> RankMobility:
    """Rank correlation and per-region rank changes between two years.

    Parameters
    ----------
    before, after : array-like, shape (n,)
        Values of the same regions in the earlier and the later year.
    ids : sequence, optional
        Region ids (default: 0..n-1).

    Returns
    -------
    RankMobility
        ``regions`` is a list of ``{"region_id", "rank_before", "rank_after",
        "change"}``, rank 1 the highest value (ties share the average rank),
        ``change = rank_before - rank_after`` (positive = moved up). Correlations
        are None with fewer than 2 regions or a constant year.
    """
    a = as_values(before, name="values of the first year")
    b = as_values(after, name="values of the second year")
    if a.size != b.size:
        raise InvalidInput(f"expected the same regions in both years, got {a.size} and {b.size}")
    ids = list(range(a.size)) if ids is None else list(ids)
    if len(ids) != a.size:
        raise InvalidInput(f"expected {a.size} region ids, got {len(ids)}")
    ra = stats.rankdata(-a)
    rb = stats.rankdata(-b)
    tau = tau_p = rho = rho_p = None
    if a.size >= 2 and np.ptp(a) > 0 and np.ptp(b) > 0:
        kt = stats.kendalltau(a, b)
        sr = stats.spearmanr(a, b)
        tau, tau_p = float(kt.statistic), float(kt.pvalue)
        rho, rho_p = float(sr.statistic), float(sr.pvalue)
    regions = [
        {
            "region_id": rid,
            "rank_before": float(x),
            "rank_after": float(y),
            "change": float(x - y),
        }
        for rid, x, y in zip(ids, ra, rb)
    ]
    return RankMobility(
        kendall_tau=tau,
        kendall_p_value=tau_p,
        spearman_rho=rho,
        spearman_p_value=rho_p,
        mean_abs_rank_change=float(np.abs(ra - rb).mean()),
        regions=regions,
    )
