"""Between/within-group decomposition of Theil T with a permutation test.

Notes
-----
With weights ``p_i`` (population shares, or ``1/n``), income shares
``s_i = p_i y_i / sum_j p_j y_j`` and groups ``g`` with ``s_g = sum_{i in g} s_i`` and
``p_g = sum_{i in g} p_i``, Theil T splits exactly into (Theil 1967; Shorrocks 1980;
Cowell 2011, sec. 6.4)::

    T = sum_g s_g ln(s_g / p_g)  +  sum_g s_g T_g
        (between groups)             (within groups)

where ``T_g`` is Theil T inside group ``g``. Unweighted, ``p_g = n_g / n`` and the
between part is PySAL's ``TheilD.bg = sum_g s_g ln(n s_g / n_g)``.

The permutation test (Rey & Sastré-Gutiérrez 2010, PySAL ``TheilDSim``) reassigns the
regions to the groups at random, keeping group sizes, and counts how often the
between part is at least the observed one: ``p = (1 + #{bg_perm >= bg}) / (1 + P)``.
Permutations are drawn with ``numpy.random.RandomState(seed).permutation(n)``, the
same stream ``TheilDSim`` draws after ``numpy.random.seed(seed)``, so results agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from geocluster.errors import InvalidInput
from geocluster.inequality.indices import _prepare, _theil_t

__all__ = ["TheilDecomposition", "theil_decomposition"]


@dataclass(frozen=True)
class TheilDecomposition:
    """Result of :func:`theil_decomposition`.

    Attributes
    ----------
    total, between, within : float
        Theil T and its two parts (``total == between + within``).
    between_share : float or None
        ``between / total``; None when ``total`` is 0 (all values equal).
    p_value : float or None
        Permutation p-value of ``between``; None when ``permutations == 0``.
    permutations : int
    groups : list of dict
        Per group: ``group``, ``n``, ``income_share``, ``population_share``, ``theil``
        (T inside the group, None when the group total is 0) and ``within_contribution``.
    """

    total: float
    between: float
    within: float
    between_share: float | None
    p_value: float | None
    permutations: int
    weighted: bool
    groups: list[dict]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def _between(y: np.ndarray, p: np.ndarray, codes: np.ndarray, k: int) -> float:
    inc = np.bincount(codes, weights=p * y, minlength=k)
    inc = inc / inc.sum()
    pop = np.bincount(codes, weights=p, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(inc > 0, inc * np.log(inc / pop), 0.0)
    return float(terms.sum())


def theil_decomposition(
    values: Sequence[float],
    groups: Sequence,
    population: Sequence[float] | None = None,
    *,
    permutations: int = 99,
    seed: int | None = 0,
) -> TheilDecomposition:
    """Split Theil T into between- and within-group inequality.

    Parameters
    ----------
    values : array-like, shape (n,)
        Non-negative regional values.
    groups : array-like, shape (n,)
        Group label of each region (e.g. the parent region id); any hashable labels.
        Groups of one region are allowed (their within part is 0).
    population : array-like, shape (n,), optional
        Population of each region; weights regions and groups when given.
    permutations : int, default 99
        Random reassignments for the p-value of the between part (0 to skip).
    seed : int or None, default 0
        Seed of the permutations (``numpy.random.RandomState``).

    Returns
    -------
    TheilDecomposition
    """
    y, p, mu = _prepare(values, population, "the Theil decomposition")
    labels = np.asarray(groups, dtype=object).ravel()
    if labels.size != y.size:
        raise InvalidInput(
            f"expected one group label per value ({y.size}), got {labels.size} labels"
        )
    if any(lab is None or (isinstance(lab, float) and np.isnan(lab)) for lab in labels):
        where = [i for i, lab in enumerate(labels) if lab is None or lab != lab][:5]
        raise InvalidInput(f"expected a group label for every region, got none at {where}")
    if not isinstance(permutations, int | np.integer) or permutations < 0:
        raise InvalidInput(f"expected permutations >= 0, got {permutations!r}")
    keys = [str(lab) for lab in labels]
    uniq = sorted(set(keys))
    index = {g: i for i, g in enumerate(uniq)}
    codes = np.array([index[g] for g in keys], dtype=np.int64)
    k = len(uniq)

    total = float(_theil_t(y, p, mu).sum())
    between = _between(y, p, codes, k)
    within = total - between

    inc = np.bincount(codes, weights=p * y, minlength=k) / (mu)
    pop = np.bincount(codes, weights=p, minlength=k)
    counts = np.bincount(codes, minlength=k)
    group_rows = []
    for g, name in enumerate(uniq):
        mask = codes == g
        if inc[g] > 0:
            tg = _group_theil(y[mask], p[mask])
            contrib = float(inc[g] * tg)
        else:
            tg, contrib = None, 0.0
        group_rows.append(
            {
                "group": name,
                "n": int(counts[g]),
                "income_share": float(inc[g]),
                "population_share": float(pop[g]),
                "theil": tg,
                "within_contribution": contrib,
            }
        )

    p_value = None
    if permutations:
        rng = np.random.RandomState(seed)
        hits = 1  # the observed arrangement is one of the possible ones
        for _ in range(permutations):
            perm = rng.permutation(y.size)
            # moving regions (value and population together) between the fixed group
            # slots is the same as TheilDSim's permutation of y when unweighted
            if _between(y[perm], p[perm], codes, k) >= between:
                hits += 1
        p_value = hits / (permutations + 1.0)

    return TheilDecomposition(
        total=total,
        between=between,
        within=within,
        between_share=(between / total) if total > 0 else None,
        p_value=p_value,
        permutations=int(permutations),
        weighted=population is not None,
        groups=group_rows,
    )


def _group_theil(y: np.ndarray, p: np.ndarray) -> float:
    w = p / p.sum()
    return float(_theil_t(y, w, float(np.dot(w, y))).sum())
