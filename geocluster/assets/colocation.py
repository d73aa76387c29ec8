"""Co-location quotient between two categories of points.

The co-location quotient (CLQ) of Leslie & Kronenfeld (2011) asks whether the
nearest neighbours of points of category A are of category B more often than
a random labelling of the same points would make them:

.. math::

    CLQ_{A \\to B} = \\frac{C_{A \\to B} / N_A}{N'_B / (N - 1)}

where :math:`N` is the number of points (of every category), :math:`N_A`,
:math:`N_B` the counts of A and B, :math:`N'_B = N_B` if A ≠ B and
:math:`N_B - 1` if A = B (a point is not its own neighbour), and

.. math::

    C_{A \\to B} = \\sum_{i \\in A} \\sum_{j \\in NN(i)} \\frac{f_{ij}}{|NN(i)|}

with :math:`NN(i)` the set of nearest neighbours of i (several when they are
at exactly the same distance: *ties share one unit of weight equally*, as in
the paper) and :math:`f_{ij} = 1` when j is of category B. Under random
labelling :math:`E[CLQ] = 1`; above 1 means A attracts B, below 1 means A
avoids B. The measure is asymmetric.

Significance is assessed by a seeded permutation test that relabels the
pooled points (keeping each category's size), the Monte Carlo approach the
paper also describes for small samples.

References
----------
Leslie, T. F. & Kronenfeld, B. J. (2011). The Colocation Quotient: A New
Measure of Spatial Association Between Categorical Subsets of Points.
*Geographical Analysis* 43(3), 306–326. doi:10.1111/j.1538-4632.2011.00821.x
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from geocluster.errors import InvalidInput

__all__ = ["CLQResult", "colocation_quotient", "nearest_neighbour_weights"]

# Distances equal within this relative tolerance count as ties (coordinates
# are floats: two points at the "same" distance differ in the last bits).
_TIE_RTOL = 1e-9


@dataclass(frozen=True)
class CLQResult:
    """Result of :func:`colocation_quotient`.

    Attributes
    ----------
    clq : float
        Observed :math:`CLQ_{A \\to B}`.
    n_a, n_b, n : int
        Points of A, of B, and in total.
    count : float
        :math:`C_{A \\to B}` (tie-weighted number of A points whose nearest
        neighbour is B).
    expected : float
        Expected CLQ under random labelling (1.0).
    permutations : int
        Number of random relabellings (0: no test).
    p_value : float or None
        Folded pseudo p-value ``(k + 1) / (permutations + 1)`` where ``k``
        counts simulated CLQs at least as far from 1 on the observed side
        (esda's convention for ``p_sim``). None without permutations.
    p_greater, p_less : float or None
        One-sided pseudo p-values for co-location (CLQ > 1) and isolation.
    sim_mean, sim_std : float or None
        Mean and standard deviation of the simulated CLQs.
    """

    clq: float
    n_a: int
    n_b: int
    n: int
    count: float
    expected: float
    permutations: int
    p_value: float | None
    p_greater: float | None
    p_less: float | None
    sim_mean: float | None
    sim_std: float | None

    def to_dict(self) -> dict:
        return {
            "clq": self.clq,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "n": self.n,
            "count": self.count,
            "expected": self.expected,
            "permutations": self.permutations,
            "p_value": self.p_value,
            "p_greater": self.p_greater,
            "p_less": self.p_less,
            "sim_mean": self.sim_mean,
            "sim_std": self.sim_std,
        }


def nearest_neighbour_weights(xy: np.ndarray) -> sp.csr_matrix:
    """Row-stochastic nearest-neighbour weights with ties shared equally.

    Parameters
    ----------
    xy : ndarray, shape (n, 2)
        Point coordinates in a projected CRS (any unit; only order matters).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n, n)
        ``W[i, j] = 1 / |NN(i)|`` for each nearest neighbour j of i (j ≠ i),
        0 elsewhere. Coincident points are each other's nearest neighbours
        (distance 0).
    """
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    if n < 2:
        raise InvalidInput(f"expected at least 2 points for nearest neighbours, got {n}")
    tree = cKDTree(xy)
    k = min(8, n)
    d, idx = tree.query(xy, k=k)
    # Column 0 is normally the point itself; with coincident points it may be
    # another point at distance 0, so self is removed by index, not position.
    not_self = idx != np.arange(n)[:, None]
    d_other = np.where(not_self, d, np.inf)
    nn_dist = d_other.min(axis=1)
    radius = nn_dist * (1 + _TIE_RTOL) + 1e-12
    tied = not_self & (d <= radius[:, None])
    # Rows whose k-1 candidates are all tied may have more tied neighbours:
    # ask the tree for every point within the tie radius for those rows only.
    overflow = tied.sum(axis=1) >= k - 1 if k < n else np.zeros(n, bool)
    rows = [np.repeat(np.arange(n)[~overflow], tied[~overflow].sum(axis=1))]
    cols = [idx[~overflow][tied[~overflow]]]
    for i in np.flatnonzero(overflow):
        js = np.asarray(tree.query_ball_point(xy[i], r=radius[i]), dtype=np.int64)
        js = js[js != i]
        rows.append(np.full(len(js), i, dtype=np.int64))
        cols.append(js)
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    per_row = np.bincount(r, minlength=n).astype(float)
    return sp.csr_matrix((1.0 / per_row[r], (r, c)), shape=(n, n))


def _clq_from(weights: sp.csr_matrix, is_a: np.ndarray, is_b: np.ndarray, same: bool) -> float:
    n = len(is_a)
    n_a = int(is_a.sum())
    n_b = int(is_b.sum())
    n_b_prime = n_b - 1 if same else n_b
    count = float((weights @ is_b.astype(float))[is_a].sum())
    if n_a == 0 or n_b_prime <= 0:
        return float("nan")
    return (count / n_a) / (n_b_prime / (n - 1))


def colocation_quotient(
    xy: np.ndarray,
    labels: np.ndarray,
    a: object,
    b: object,
    *,
    permutations: int = 99,
    random_state: int | np.random.Generator | None = 0,
) -> CLQResult:
    """Global co-location quotient :math:`CLQ_{A \\to B}` with a permutation test.

    Parameters
    ----------
    xy : ndarray, shape (n, 2)
        Coordinates of every point (all categories) in a projected CRS.
    labels : array-like, shape (n,)
        Category of each point.
    a, b : label
        The categories A (the points whose neighbours are examined) and B.
        ``a == b`` measures self-co-location (clustering of one category).
    permutations : int, default 99
        Random relabellings of the pooled points for the pseudo p-value (0: none).
    random_state : int, Generator or None
        Seed of the relabelling.

    Returns
    -------
    CLQResult

    Notes
    -----
    Leslie & Kronenfeld (2011), eq. (3)-(5); ties among nearest neighbours
    share one unit of weight equally. See the module docstring.
    """
    xy = np.asarray(xy, dtype=float)
    labels = np.asarray(labels)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise InvalidInput(f"expected coordinates of shape (n, 2), got {xy.shape}")
    if len(labels) != len(xy):
        raise InvalidInput(f"expected one label per point ({len(xy)}), got {len(labels)}")
    if not np.isfinite(xy).all():
        raise InvalidInput("expected finite coordinates, got NaN or infinite values")
    if permutations < 0:
        raise InvalidInput(f"expected permutations >= 0, got {permutations}")
    is_a = labels == a
    is_b = labels == b
    same = bool(a == b)
    n_a, n_b, n = int(is_a.sum()), int(is_b.sum()), len(labels)
    if n_a == 0 or n_b == 0 or (same and n_b < 2):
        raise InvalidInput(
            f"expected points of both categories {a!r} and {b!r}, got {n_a} and {n_b}"
        )
    weights = nearest_neighbour_weights(xy)
    count = float((weights @ is_b.astype(float))[is_a].sum())
    clq = _clq_from(weights, is_a, is_b, same)
    p_value = p_greater = p_less = sim_mean = sim_std = None
    if permutations:
        rng = np.random.default_rng(random_state)
        sims = np.empty(permutations)
        for k in range(permutations):
            perm = rng.permutation(labels)
            sims[k] = _clq_from(weights, perm == a, perm == b, same)
        # float rounding can put an identical relabelling a hair off the observed value
        tol = 1e-12 * max(1.0, abs(clq))
        greater = int((sims >= clq - tol).sum())
        less = int((sims <= clq + tol).sum())
        p_greater = (greater + 1) / (permutations + 1)
        p_less = (less + 1) / (permutations + 1)
        p_value = p_greater if clq >= sims.mean() else p_less
        sim_mean = float(sims.mean())
        sim_std = float(sims.std(ddof=1)) if permutations > 1 else 0.0
    return CLQResult(
        clq=float(clq),
        n_a=n_a,
        n_b=n_b,
        n=n,
        count=count,
        expected=1.0,
        permutations=int(permutations),
        p_value=p_value,
        p_greater=p_greater,
        p_less=p_less,
        sim_mean=sim_mean,
        sim_std=sim_std,
    )
