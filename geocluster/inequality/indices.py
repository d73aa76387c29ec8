"""Inequality indices over regions, optionally population-weighted.

Every function takes the regional values ``y`` (a per-capita level such as GDP per
head, or any non-negative quantity) and optional ``population`` (one figure per
region, any unit; it is turned into shares). Without population each region counts
equally (weight ``1/n``), which is the PySAL ``inequality`` convention: the Gini is
the plain relative mean difference without an ``n/(n-1)`` correction and Theil T is
``sum(s_i * ln(n * s_i))`` with ``s_i`` the region's share of the total.

With population, region ``i`` stands for a group of people of share ``p_i`` who all
have ``y_i``; the weighted mean ``mu = sum(p_i y_i)`` is the national per-capita level.

Notes
-----
Formulas (``p_i`` weights summing to 1, ``mu`` the weighted mean):

- Gini: ``G = sum_i sum_j p_i p_j |y_i - y_j| / (2 mu)`` (Cowell 2011, *Measuring
  Inequality*, 3rd ed., eq. A.9 for the weighted form; PySAL ``inequality.gini``).
- Generalised entropy: ``GE(a) = (sum_i p_i (y_i/mu)^a - 1) / (a (a - 1))``;
  ``GE(1) = sum p_i (y_i/mu) ln(y_i/mu)`` is Theil T and
  ``GE(0) = sum p_i ln(mu/y_i)`` is Theil L, the mean log deviation (Cowell 2011,
  Table A.3; Shorrocks 1980).
- Atkinson: ``A(e) = 1 - (sum_i p_i (y_i/mu)^(1-e))^(1/(1-e))`` and
  ``A(1) = 1 - exp(sum p_i ln y_i) / mu`` (Atkinson 1970; Cowell 2011, Table A.3).
- Coefficient of variation ``sqrt(sum p_i (y_i - mu)^2) / mu`` (population standard
  deviation, ``ddof=0``); with population weights this is Williamson's (1965)
  weighted coefficient of variation ``V_w``.
- Hoover (Pietra / Robin Hood) index ``H = sum_i p_i |y_i - mu| / (2 mu)``
  ``= 0.5 sum_i |s_i - p_i|`` with ``s_i = p_i y_i / mu`` the region's share of the
  total quantity and ``p_i`` its share of population (Hoover 1941; Cowell 2011).
- Quintile share ratio: ``(1 - L(0.8)) / L(0.2)`` read off the (linearly
  interpolated) Lorenz curve ``L``: the share held by the richest 20% (of regions, or
  of population when weighted) over the share held by the poorest 20%.

Indices that take a log or a negative power of ``y`` (Theil L, GE(a <= 0),
Atkinson e >= 1, max/min and quintile ratios) are undefined when a value is 0 and
raise :class:`~geocluster.errors.InvalidInput`; every index raises it for negative
values. Theil T treats ``0 * ln 0`` as 0 (its limit), like PySAL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from geocluster.errors import InvalidInput
from geocluster.inequality._validate import (
    as_population,
    as_values,
    require_non_negative,
    require_positive,
    require_positive_mean,
    shares,
)

__all__ = [
    "ATKINSON_EPSILONS",
    "GE_ALPHAS",
    "InequalityIndices",
    "atkinson",
    "coefficient_of_variation",
    "generalized_entropy",
    "gini",
    "hoover",
    "inequality_indices",
    "lorenz_curve",
    "max_min_ratio",
    "quintile_share_ratio",
    "theil_contributions",
    "theil_l",
    "theil_t",
    "williamson",
]

ATKINSON_EPSILONS: tuple[float, ...] = (0.5, 1.0, 2.0)
GE_ALPHAS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)


def _prepare(values, population, index: str) -> tuple[np.ndarray, np.ndarray, float]:
    y = as_values(values)
    p = shares(as_population(population, y.size), y.size)
    require_non_negative(y, index)
    mu = require_positive_mean(y, p, index)
    return y, p, mu


def gini(values: Sequence[float], population: Sequence[float] | None = None) -> float:
    """Gini coefficient (PySAL convention when unweighted).

    Parameters
    ----------
    values : array-like, shape (n,)
        Non-negative regional values.
    population : array-like, shape (n,), optional
        Population of each region; weights the regions when given.

    Returns
    -------
    float
        ``sum_ij p_i p_j |y_i - y_j| / (2 mu)``, in ``[0, 1)``.
    """
    y, p, mu = _prepare(values, population, "the Gini coefficient")
    order = np.argsort(y, kind="stable")
    ys, ps = y[order], p[order]
    cum = np.cumsum(ps)
    # sum_ij p_i p_j |y_i - y_j| = 2 sum_i p_i y_i (C_{i-1} - (1 - C_i)) over sorted y;
    # ties contribute 0 whichever order they take.
    g = float(np.sum(ps * ys * (2.0 * cum - ps - 1.0)) / mu)
    return max(g, 0.0)


def _theil_t(y: np.ndarray, p: np.ndarray, mu: float) -> np.ndarray:
    r = y / mu
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(r > 0, p * r * np.log(r), 0.0)
    return terms


def theil_t(values: Sequence[float], population: Sequence[float] | None = None) -> float:
    """Theil T index, ``GE(1)``; equals PySAL ``Theil`` when unweighted.

    Parameters
    ----------
    values : array-like, shape (n,)
        Non-negative regional values (``0 ln 0`` counts as 0).
    population : array-like, shape (n,), optional
        Population of each region.

    Returns
    -------
    float
        ``sum_i p_i (y_i/mu) ln(y_i/mu)``; 0 for equal values, at most ``ln n``.
    """
    y, p, mu = _prepare(values, population, "Theil T")
    return float(_theil_t(y, p, mu).sum())


def theil_contributions(
    values: Sequence[float], population: Sequence[float] | None = None
) -> np.ndarray:
    """Each region's term of Theil T; the terms sum to :func:`theil_t`.

    Returns
    -------
    numpy.ndarray, shape (n,)
        ``p_i (y_i/mu) ln(y_i/mu)``: positive above the mean, negative below it.
    """
    y, p, mu = _prepare(values, population, "Theil T")
    return _theil_t(y, p, mu)


def theil_l(values: Sequence[float], population: Sequence[float] | None = None) -> float:
    """Theil L index (mean log deviation), ``GE(0) = sum_i p_i ln(mu / y_i)``.

    Raises
    ------
    InvalidInput
        If a value is 0 or negative.
    """
    y, p, mu = _prepare(values, population, "Theil L (mean log deviation)")
    require_positive(y, "Theil L (mean log deviation)")
    return float(np.sum(p * np.log(mu / y)))


def generalized_entropy(
    values: Sequence[float], alpha: float, population: Sequence[float] | None = None
) -> float:
    """Generalised entropy index ``GE(alpha)``.

    Parameters
    ----------
    values : array-like, shape (n,)
        Non-negative regional values; strictly positive when ``alpha <= 0``.
    alpha : float
        Sensitivity: large ``alpha`` weighs the top of the distribution, small or
        negative ``alpha`` the bottom. ``GE(0)`` is Theil L, ``GE(1)`` Theil T and
        ``GE(2)`` half the squared coefficient of variation.
    population : array-like, shape (n,), optional
        Population of each region.

    Returns
    -------
    float
        ``(sum_i p_i (y_i/mu)^alpha - 1) / (alpha (alpha - 1))`` (Cowell 2011).
    """
    alpha = float(alpha)
    if not np.isfinite(alpha):
        raise InvalidInput(f"expected a finite GE alpha, got {alpha}")
    if alpha == 0.0:
        return theil_l(values, population)
    if alpha == 1.0:
        return theil_t(values, population)
    name = f"GE({alpha:g})"
    y, p, mu = _prepare(values, population, name)
    if alpha < 0:
        require_positive(y, name)
    return float((np.sum(p * (y / mu) ** alpha) - 1.0) / (alpha * (alpha - 1.0)))


def atkinson(
    values: Sequence[float], epsilon: float, population: Sequence[float] | None = None
) -> float:
    """Atkinson index with inequality aversion ``epsilon`` (>= 0).

    Parameters
    ----------
    values : array-like, shape (n,)
        Non-negative regional values; strictly positive when ``epsilon >= 1``.
    epsilon : float
        Inequality aversion, ``>= 0``. 0 gives 0 for every distribution.
    population : array-like, shape (n,), optional
        Population of each region.

    Returns
    -------
    float
        ``1 - EDE / mu`` in ``[0, 1]``, where EDE is the equally distributed
        equivalent level (Atkinson 1970).
    """
    epsilon = float(epsilon)
    if not np.isfinite(epsilon) or epsilon < 0:
        raise InvalidInput(f"expected an Atkinson epsilon >= 0, got {epsilon}")
    name = f"Atkinson({epsilon:g})"
    y, p, mu = _prepare(values, population, name)
    if epsilon == 0.0:
        return 0.0
    if epsilon >= 1.0:
        require_positive(y, name)
    if epsilon == 1.0:
        ede = float(np.exp(np.sum(p * np.log(y))))
    else:
        ede = mu * float(np.sum(p * (y / mu) ** (1.0 - epsilon))) ** (1.0 / (1.0 - epsilon))
    # EDE <= mu by Jensen's inequality; rounding can put equal incomes a hair above.
    return float(min(max(1.0 - ede / mu, 0.0), 1.0))


def coefficient_of_variation(
    values: Sequence[float], population: Sequence[float] | None = None
) -> float:
    """Coefficient of variation ``sqrt(sum p_i (y_i - mu)^2) / mu`` (``ddof=0``).

    With ``population`` this is Williamson's weighted CV (see :func:`williamson`).
    """
    y, p, mu = _prepare(values, population, "the coefficient of variation")
    return float(np.sqrt(np.sum(p * (y - mu) ** 2)) / mu)


def williamson(values: Sequence[float], population: Sequence[float]) -> float:
    """Williamson (1965) population-weighted coefficient of variation.

    ``V_w = sqrt(sum_i (f_i / F) (y_i - ybar)^2) / ybar`` with ``f_i`` the
    population of region ``i``, ``F`` the total and ``ybar`` the national
    (population-weighted) mean of the per-capita values ``y``.
    """
    if population is None:
        raise InvalidInput("the Williamson index needs a population for every region, got none")
    return coefficient_of_variation(values, population)


def hoover(values: Sequence[float], population: Sequence[float] | None = None) -> float:
    """Hoover index: the share of the quantity to move to match population shares.

    ``H = 0.5 sum_i |s_i - p_i|`` with ``s_i`` the region's share of the total
    ``sum p_i y_i`` (``y`` read as a per-capita level) and ``p_i`` its share of the
    population (equal shares when unweighted).
    """
    y, p, mu = _prepare(values, population, "the Hoover index")
    return float(0.5 * np.sum(np.abs(p * y / mu - p)))


def lorenz_curve(
    values: Sequence[float], population: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Points of the Lorenz curve, regions sorted from poorest to richest.

    Returns
    -------
    x, y : numpy.ndarray, shape (n + 1,)
        Cumulative share of regions (or of population when weighted) and the
        cumulative share of the total quantity; both start at 0 and end at 1.
    """
    y, p, mu = _prepare(values, population, "the Lorenz curve")
    order = np.argsort(y, kind="stable")
    cx = np.concatenate([[0.0], np.cumsum(p[order])])
    cy = np.concatenate([[0.0], np.cumsum(p[order] * y[order]) / mu])
    cx[-1] = cy[-1] = 1.0  # rounding must not leave the curve short of (1, 1)
    return cx, cy


def quintile_share_ratio(
    values: Sequence[float], population: Sequence[float] | None = None, *, share: float = 0.2
) -> float:
    """Share of the top ``share`` over the share of the bottom ``share`` (S80/S20).

    Read off the linearly interpolated Lorenz curve, so it is defined for any number
    of regions and any population split: ``(1 - L(1 - share)) / L(share)``.
    """
    if not 0 < share <= 0.5:
        raise InvalidInput(f"expected a share in (0, 0.5], got {share}")
    lx, ly = lorenz_curve(values, population)
    bottom = float(np.interp(share, lx, ly))
    top = 1.0 - float(np.interp(1.0 - share, lx, ly))
    if bottom <= 0:
        raise InvalidInput(
            f"the top/bottom {share:.0%} ratio is undefined: the bottom {share:.0%} hold 0 "
            "(values of 0); expected positive values"
        )
    return top / bottom


def max_min_ratio(values: Sequence[float]) -> float:
    """Ratio of the largest to the smallest value (undefined if the smallest is 0)."""
    y = as_values(values)
    require_positive(y, "the max/min ratio")
    return float(y.max() / y.min())


@dataclass(frozen=True)
class InequalityIndices:
    """Every index for one set of regional values.

    Attributes that are undefined for the input (e.g. Theil L when a value is 0)
    are ``None`` and ``undefined`` maps their name to the reason.
    """

    n: int
    weighted: bool
    mean: float
    gini: float
    theil_t: float
    theil_l: float | None
    ge: dict[str, float | None]
    atkinson: dict[str, float | None]
    cv: float
    williamson: float | None
    hoover: float | None
    max_min: float | None
    top20_bottom20: float | None
    lorenz: list[list[float]]
    undefined: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict (CONTRACT ``POST /analyses/inequality`` entry)."""
        d = asdict(self)
        if not self.weighted:
            d.pop("williamson")
            d.pop("hoover")
        return d


def _key(x: float) -> str:
    return f"{x:g}"


def inequality_indices(
    values: Sequence[float], population: Sequence[float] | None = None
) -> InequalityIndices:
    """Compute every index at once.

    Without ``population``, ``gini``, ``theil_t``, ``theil_l``, ``ge``,
    ``atkinson`` and ``top20_bottom20`` are unweighted (PySAL convention); with it
    they are population-weighted and ``williamson`` and ``hoover`` are added.
    ``cv`` is always the unweighted coefficient of variation across regions and
    ``max_min`` the plain ratio of the regional values.

    Indices that are undefined for zeros are returned as ``None`` with the reason in
    ``undefined`` (so a Gini of firm counts with empty regions is still reported);
    negative values raise :class:`~geocluster.errors.InvalidInput` because every
    index here assumes non-negative levels.

    Parameters
    ----------
    values : array-like, shape (n,)
    population : array-like, shape (n,), optional

    Returns
    -------
    InequalityIndices
    """
    y = as_values(values)
    pw = as_population(population, y.size)
    p = shares(pw, y.size)
    require_non_negative(y, "inequality indices (Gini, Theil, Atkinson, ...)")
    mu = require_positive_mean(y, p, "every inequality index")
    undefined: dict[str, str] = {}

    def attempt(name: str, fn):
        try:
            return fn()
        except InvalidInput as exc:
            undefined[name] = str(exc)
            return None

    lx, ly = lorenz_curve(y, pw)
    ge = {
        _key(a): attempt(f"ge.{_key(a)}", lambda a=a: generalized_entropy(y, a, pw))
        for a in GE_ALPHAS
    }
    atk = {
        _key(e): attempt(f"atkinson.{_key(e)}", lambda e=e: atkinson(y, e, pw))
        for e in ATKINSON_EPSILONS
    }
    return InequalityIndices(
        n=int(y.size),
        weighted=pw is not None,
        mean=mu,
        gini=gini(y, pw),
        theil_t=theil_t(y, pw),
        theil_l=attempt("theil_l", lambda: theil_l(y, pw)),
        ge=ge,
        atkinson=atk,
        cv=coefficient_of_variation(y),
        williamson=williamson(y, pw) if pw is not None else None,
        hoover=hoover(y, pw) if pw is not None else None,
        max_min=attempt("max_min", lambda: max_min_ratio(y)),
        top20_bottom20=attempt("top20_bottom20", lambda: quintile_share_ratio(y, pw)),
        lorenz=[[float(a), float(b)] for a, b in zip(lx, ly)],
        undefined=undefined,
    )
