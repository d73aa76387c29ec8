"""Global and local spatial autocorrelation of region values, with esda's conventions.

The statistics are esda's (Moran's I, local Moran / LISA, Getis-Ord Gi*) computed here with
the same formulas, and tested against esda. The local statistics' conditional-permutation
inference runs in :mod:`geocluster.spatialstats.permutation`, numba kernels cached on disk.

Cold start: esda's own engine passes the statistic to its numba driver as a function,
which numba cannot cache, so a fresh process spent ~20 s compiling it (Nov 2026, 2-core
machine, other jobs running) and importing esda took 1.5-4.4 s more. Now the first LISA or
Gi* in a fresh process loads the cached kernels (well under a second, see
``tests/geocluster/test_spatialstats_permutation.py``); compiling them happens once per
installation (~5 s). :func:`warm_up` does that load at service start-up.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np

from geocluster.errors import InvalidInput

__all__ = [
    "GlobalMoran",
    "LocalResult",
    "QUADRANTS",
    "fdr_significant",
    "global_moran",
    "local_moran",
    "getis_ord",
    "warm_up",
]

#: esda's ``q`` codes of the Moran scatterplot quadrants
QUADRANTS = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}

_warm_lock = threading.Lock()
_warm_done = False


@dataclass(frozen=True)
class GlobalMoran:
    """Global Moran's I.

    ``p_sim`` is a one-sided pseudo p-value from ``permutations`` seeded random
    permutations, folded as esda does; ``z_norm``/``p_norm`` are esda's analytical values
    under normality (two-sided).
    """

    I: float  # noqa: E741 - the statistic's name
    expected_I: float
    z_norm: float
    p_norm: float
    p_sim: float | None
    permutations: int

    def to_dict(self) -> dict:
        return {
            "moran_i": self.I,
            "expected_i": self.expected_I,
            "z_norm": self.z_norm,
            "p_norm": self.p_norm,
            "p_value": self.p_sim if self.p_sim is not None else self.p_norm,
            "permutations": self.permutations,
        }


@dataclass(frozen=True)
class LocalResult:
    """A local statistic for every region (arrays of shape (n,)).

    ``label`` is the LISA quadrant (HH/LH/LL/HL, esda's ``q``) or ``hot``/``cold`` (sign
    of the Gi* z-score) for every region, significant or not; ``significant`` applies
    ``alpha`` to ``p_value`` (after FDR when asked).
    """

    statistic: np.ndarray
    p_value: np.ndarray
    label: np.ndarray
    significant: np.ndarray
    method: str
    alpha: float
    fdr: bool
    z: np.ndarray | None = None


def _check(y, w, permutations, alpha):
    y = np.asarray(y, dtype=float)
    if y.ndim != 1:
        raise InvalidInput(f"expected one value per region (1-d), got shape {y.shape}")
    if len(y) != w.n:
        raise InvalidInput(f"expected {w.n} values (one per region), got {len(y)}")
    if not np.all(np.isfinite(y)):
        raise InvalidInput("expected finite values for every region, got NaN or infinity")
    if np.ptp(y) == 0:
        raise InvalidInput("expected values that vary between regions, got a constant")
    if not isinstance(permutations, int | np.integer) or permutations < 0:
        raise InvalidInput(f"expected permutations as an integer >= 0, got {permutations!r}")
    if permutations > 99_999:
        raise InvalidInput(f"expected at most 99999 permutations, got {permutations}")
    if not 0 < alpha < 1:
        raise InvalidInput(f"expected alpha in (0, 1), got {alpha}")
    return y


def _seed(seed) -> int:
    if seed is None or isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InvalidInput(f"expected an integer seed, got {seed!r}")
    if not 0 <= seed < 2**32:
        raise InvalidInput(f"expected a seed in [0, 2**32), got {seed}")
    return int(seed)


def fdr_significant(p_values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Benjamini–Hochberg: which p-values stay significant at false discovery rate ``alpha``.

    esda's ``fdr`` cut-off: with the p-values sorted, the largest ``k α / n`` such that
    ``p_(k) < k α / n`` (``α / n``, Bonferroni, when there is none); a p-value is significant
    when it is at or below it. (Benjamini & Hochberg 1995, JRSS B 57(1).)
    """
    p = np.asarray(p_values, dtype=float)
    n = p.size
    if n == 0:
        return np.zeros(0, bool)
    p_sorted = np.sort(p)
    bounds = np.arange(1, n + 1) * alpha / n
    below = np.nonzero(p_sorted < bounds)[0]
    cutoff = bounds[below[-1]] if below.size else alpha / n
    return p <= cutoff


def _copy_w(w):
    from libpysal.weights import W

    return W(w.neighbors, w.weights, id_order=w.id_order, silence_warnings=True)


def _norm_sf(x):
    from scipy.special import ndtr

    return ndtr(-np.asarray(x, float))


def global_moran(y, w, *, permutations: int = 999, seed: int = 0) -> GlobalMoran:
    """Global Moran's I of ``y`` on row-standardised ``w``.

    ``I = n / S0 · zᵀWz / zᵀz`` with its analytical inference under normality, as
    ``esda.Moran`` (Cliff & Ord 1981): ``E[I] = -1/(n-1)``,
    ``V[I] = (n² S1 - n S2 + 3 S0²) / ((n² - 1) S0²) - E[I]²``, two-sided ``p_norm``.
    The permutation test uses a seeded ``numpy.random.Generator`` (esda's draws from numpy's
    global state): ``p_sim = (1 + #{I_perm ≥ I}) / (1 + P)`` with the count taken on the
    other tail when that is smaller (esda's folding).
    """
    y = _check(y, w, permutations, 0.05)
    seed = _seed(seed)
    wr = _copy_w(w)
    wr.transform = "r"
    sparse = wr.sparse
    n = len(y)
    z = y - y.mean()
    z2ss = float(np.dot(z, z))
    s0 = float(sparse.sum())
    sym = sparse + sparse.T
    s1 = float(sym.multiply(sym).sum()) / 2.0
    s2 = float(
        np.sum(
            np.square(
                np.asarray(sparse.sum(axis=1)).ravel() + np.asarray(sparse.sum(axis=0)).ravel()
            )
        )
    )
    i_stat = n / s0 * float(np.dot(z, sparse @ z)) / z2ss
    expected = -1.0 / (n - 1)
    variance = (n * n * s1 - n * s2 + 3 * s0 * s0) / ((n - 1) * (n + 1) * s0 * s0) - expected**2
    with np.errstate(divide="ignore", invalid="ignore"):
        z_norm = (i_stat - expected) / np.sqrt(variance)
    p_norm = float(2.0 * _norm_sf(abs(z_norm)))
    p_sim = None
    if permutations:
        rng = np.random.default_rng(seed)
        perms = rng.permuted(np.broadcast_to(z, (permutations, len(z))), axis=1)
        lag = np.asarray(sparse @ perms.T).T  # (P, n)
        sims = (n / s0) * np.sum(perms * lag, axis=1) / z2ss
        larger = int(np.sum(sims >= i_stat))
        if permutations - larger < larger:
            larger = permutations - larger
        p_sim = (larger + 1.0) / (permutations + 1.0)
    return GlobalMoran(
        I=float(i_stat),
        expected_I=float(expected),
        z_norm=float(z_norm),
        p_norm=p_norm,
        p_sim=p_sim,
        permutations=int(permutations),
    )


def local_moran(
    y, w, *, permutations: int = 999, seed: int = 0, alpha: float = 0.05, fdr: bool = False
) -> LocalResult:
    """Local Moran's I (LISA) with seeded conditional permutations.

    As ``esda.Moran_Local`` with row-standardised weights: ``z = (y - ȳ) / σ_y``,
    ``I_i = (n - 1) z_i (Wz)_i / Σz²``. Labels follow esda's ``q``: 1 HH, 2 LH, 3 LL,
    4 HL. ``p_value`` is the folded pseudo p-value of
    :func:`~geocluster.spatialstats.permutation.conditional_permutation` (1 for an island);
    with ``permutations=0`` it is NaN and nothing is significant. ``z`` is esda's
    ``z_sim``, ``(I - mean(I_perm)) / sd(I_perm)``.
    """
    from geocluster.spatialstats.permutation import LISA, conditional_permutation

    y = _check(y, w, permutations, alpha)
    seed = _seed(seed)
    wr = _copy_w(w)
    wr.transform = "r"
    sparse = wr.sparse
    n = len(y)
    z = (y - y.mean()) / y.std()
    den = float(np.dot(z, z))
    lag = sparse @ z
    stat = (n - 1) * z * lag / den
    zp, lp = z > 0, lag > 0
    quads = np.select([zp & lp, ~zp & lp, ~zp & ~lp], [1, 2, 3], default=4)
    labels = np.array([QUADRANTS[int(q)] for q in quads], dtype=object)
    if permutations:
        p, mean, sd = conditional_permutation(
            LISA, z, stat, sparse, permutations=permutations, seed=seed, scaling=(n - 1) / den
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            z_sim = (stat - mean) / sd
    else:
        p, z_sim = np.full(n, np.nan), None
    return LocalResult(
        statistic=np.asarray(stat, float),
        p_value=p,
        label=labels,
        significant=_significance(p, alpha, fdr),
        method="lisa",
        alpha=alpha,
        fdr=fdr,
        z=z_sim,
    )


def getis_ord(
    y, w, *, permutations: int = 999, seed: int = 0, alpha: float = 0.05, fdr: bool = False
) -> LocalResult:
    """Getis–Ord Gi* hot and cold spots.

    As ``esda.G_Local`` with ``star=1.0``: binary weights with a self-weight of 1,
    row-standardised; ``G*_i = (Wy)_i / Σy``, standardised with its analytical moments
    (Getis & Ord 1992; Ord & Getis 1995). ``statistic`` is that z-score (esda's ``Zs``);
    the label is ``hot`` for a positive z-score and ``cold`` otherwise; ``p_value`` is the
    folded conditional-permutation pseudo p-value (1 for an island; with
    ``permutations=0``, the one-sided normal ``p_norm`` of ``Zs``).
    """
    from libpysal.weights.util import fill_diagonal

    from geocluster.spatialstats.permutation import GI_STAR, conditional_permutation

    y = _check(y, w, permutations, alpha)
    seed = _seed(seed)
    with warnings.catch_warnings():
        # libpysal re-announces islands / components, which the caller reports itself
        warnings.simplefilter("ignore", UserWarning)
        ws = fill_diagonal(_copy_w(w), 1.0)
    ws.transform = "R"
    sparse = ws.sparse
    n = ws.n
    y_sum = float(y.sum())
    g = (sparse @ y) / y_sum
    mean = y_sum / n
    variance = float(np.square(y).sum()) / n - mean**2
    cardinality = np.asarray(sparse.sum(axis=1)).ravel()
    expected = cardinality / n
    expected_var = cardinality * (n - cardinality) / (n - 1) / n**2 * (variance / mean**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = (g - expected) / np.sqrt(expected_var)
    if permutations:
        p, _, _ = conditional_permutation(
            GI_STAR, y, g, sparse, permutations=permutations, seed=seed, scaling=y_sum
        )
    else:
        p = _norm_sf(np.abs(zs))
    labels = np.where(zs > 0, "hot", "cold").astype(object)
    return LocalResult(
        statistic=np.asarray(zs, float),
        p_value=np.asarray(p, float),
        label=labels,
        significant=_significance(p, alpha, fdr),
        method="gi_star",
        alpha=alpha,
        fdr=fdr,
        z=np.asarray(zs, float),
    )


def _significance(p: np.ndarray, alpha: float, fdr: bool) -> np.ndarray:
    if np.all(np.isnan(p)):
        return np.zeros(len(p), bool)
    if fdr:
        return fdr_significant(p, alpha)
    return p <= alpha


def warm_up() -> float:
    """Load (or, the first time ever, compile) the permutation kernels now.

    Runs local Moran and Gi* once on a 5 × 5 lattice; idempotent and thread-safe. Call it
    at service start-up in a background thread. Returns the seconds spent (0 when already
    warm).
    """
    global _warm_done
    import time

    with _warm_lock:
        if _warm_done:
            return 0.0
        t0 = time.perf_counter()
        from libpysal.weights import lat2W

        w = lat2W(5, 5)
        y = np.arange(25, dtype=float) % 7
        local_moran(y, w, permutations=9, seed=0)
        getis_ord(y, w, permutations=9, seed=0)
        _warm_done = True
        return time.perf_counter() - t0
