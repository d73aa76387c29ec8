"""Global and local spatial autocorrelation of region values, through esda.

esda computes the statistics; this module fixes the conventions (seeded permutations, no
global random state, FDR, labels) and keeps esda's numba compile off the request path
(:func:`warm_up`).

Cold start: esda's conditional-randomisation engine is numba code compiled on first use and
esda does not cache it. Measured on the 2-core development machine (Nov 2026, other jobs
running): importing esda 1.5-4.4 s; the first ``Moran_Local`` 26 s and the first ``G_Local``
28 s in a fresh process; afterwards LISA + Gi* on 900 regions with 999 permutations take
~0.2 s together. :func:`warm_up` switches numba's on-disk cache on for esda's kernels and runs
both statistics once on a tiny lattice: 33-44 s the first time ever, ~21 s in later processes
(the kernels load from the cache; only esda's ``compute_chunk`` driver, which takes the
kernel as a function argument and cannot be cached, is compiled again). The API calls it at
start-up in a background thread, ``threading.Thread(target=warm_up, daemon=True).start()``,
so requests never wait for a compile unless they arrive in the first ~20 s (they then wait on
numba's compile lock, not longer than the warm-up itself).
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

    Uses esda's ``fdr`` cut-off (the largest ``p_(k) ≤ k α / n``); a p-value is significant
    when it is at or below it. (Benjamini & Hochberg 1995, JRSS B 57(1).)
    """
    import esda

    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return np.zeros(0, bool)
    cutoff = esda.fdr(p, alpha)
    return p <= cutoff


def _copy_w(w):
    from libpysal.weights import W

    return W(w.neighbors, w.weights, id_order=w.id_order, silence_warnings=True)


def global_moran(y, w, *, permutations: int = 999, seed: int = 0) -> GlobalMoran:
    """Global Moran's I of ``y`` on row-standardised ``w``.

    The statistic and its analytical inference come from ``esda.Moran``. The permutation
    test is done here with a seeded ``numpy.random.Generator`` because esda's global Moran
    draws from numpy's global random state: ``p_sim = (1 + #{I_perm ≥ I}) / (1 + P)`` with
    the count taken on the other tail when that is smaller (esda's folding).
    """
    import esda

    y = _check(y, w, permutations, 0.05)
    seed = _seed(seed)
    wr = _copy_w(w)
    wr.transform = "r"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mi = esda.Moran(y, wr, transformation="r", permutations=0)
    p_sim = None
    if permutations:
        rng = np.random.default_rng(seed)
        z = y - y.mean()
        sparse = wr.sparse
        perms = rng.permuted(np.broadcast_to(z, (permutations, len(z))), axis=1)
        lag = np.asarray(sparse @ perms.T).T  # (P, n)
        sims = (len(z) / wr.s0) * np.sum(perms * lag, axis=1) / np.dot(z, z)
        larger = int(np.sum(sims >= mi.I))
        if permutations - larger < larger:
            larger = permutations - larger
        p_sim = (larger + 1.0) / (permutations + 1.0)
    return GlobalMoran(
        I=float(mi.I),
        expected_I=float(mi.EI),
        z_norm=float(mi.z_norm),
        p_norm=float(mi.p_norm),
        p_sim=p_sim,
        permutations=int(permutations),
    )


def local_moran(
    y, w, *, permutations: int = 999, seed: int = 0, alpha: float = 0.05, fdr: bool = False
) -> LocalResult:
    """Local Moran's I (LISA) with seeded conditional permutations (``esda.Moran_Local``).

    Labels follow esda's ``q``: 1 HH, 2 LH, 3 LL, 4 HL. ``p_value`` is esda's folded
    pseudo p-value ``p_sim`` (or, with ``permutations=0``, none: then nothing is significant
    and ``p_value`` is NaN).
    """
    import esda

    y = _check(y, w, permutations, alpha)
    seed = _seed(seed)
    _enable_esda_cache()
    wr = _copy_w(w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # esda announces a change of default alternative; we keep and document "directed"
        warnings.simplefilter("ignore", DeprecationWarning)
        lm = esda.Moran_Local(
            y, wr, transformation="r", permutations=permutations, seed=seed, n_jobs=1
        )
    p = np.asarray(lm.p_sim, float) if permutations else np.full(len(y), np.nan)
    labels = np.array([QUADRANTS.get(int(q), "") for q in lm.q], dtype=object)
    return LocalResult(
        statistic=np.asarray(lm.Is, float),
        p_value=p,
        label=labels,
        significant=_significance(p, alpha, fdr),
        method="lisa",
        alpha=alpha,
        fdr=fdr,
        z=np.asarray(lm.z_sim, float) if permutations else None,
    )


def getis_ord(
    y, w, *, permutations: int = 999, seed: int = 0, alpha: float = 0.05, fdr: bool = False
) -> LocalResult:
    """Getis–Ord Gi* hot and cold spots (``esda.G_Local`` with ``star=1.0``).

    Binary weights with a self-weight of 1, row-standardised (esda's default transform).
    ``statistic`` is the standardised Gi* (``Zs``); the label is ``hot`` for a positive
    z-score and ``cold`` otherwise; ``p_value`` is esda's permutation ``p_sim`` (with
    ``permutations=0``, the analytical ``p_norm``). (Getis & Ord 1992; Ord & Getis 1995.)
    """
    import esda

    y = _check(y, w, permutations, alpha)
    seed = _seed(seed)
    _enable_esda_cache()
    wc = _copy_w(w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        g = esda.G_Local(
            y, wc, transform="R", permutations=permutations, star=1.0, seed=seed, n_jobs=1
        )
    zs = np.asarray(g.Zs, float)
    p = np.asarray(g.p_sim if permutations else g.p_norm, float)
    labels = np.where(zs > 0, "hot", "cold").astype(object)
    return LocalResult(
        statistic=zs,
        p_value=p,
        label=labels,
        significant=_significance(p, alpha, fdr),
        method="gi_star",
        alpha=alpha,
        fdr=fdr,
        z=zs,
    )


def _significance(p: np.ndarray, alpha: float, fdr: bool) -> np.ndarray:
    if np.all(np.isnan(p)):
        return np.zeros(len(p), bool)
    if fdr:
        return fdr_significant(p, alpha)
    return p <= alpha


_cache_enabled = False
# compute_chunk takes the statistic's kernel as a first-class function argument; numba's
# cache index never matches it across processes, so caching it only appends a new entry to
# the cache directory on every start
_NOT_CACHEABLE = frozenset({"compute_chunk"})


def _enable_esda_cache() -> int:
    """Switch numba's on-disk cache on for esda's kernels (once); returns how many."""
    global _cache_enabled
    if _cache_enabled:
        return 0
    _cache_enabled = True
    try:
        import esda.crand
        import esda.getisord
        import esda.moran
        import esda.significance
        from numba.core.registry import CPUDispatcher
    except Exception:  # noqa: BLE001 - no numba: esda runs pure Python, nothing to cache
        return 0
    n = 0
    for mod in (esda.crand, esda.moran, esda.getisord, esda.significance):
        for obj in list(vars(mod).values()):
            if (
                isinstance(obj, CPUDispatcher)
                and type(obj._cache).__name__ != "FunctionCache"
                and obj.__name__ not in _NOT_CACHEABLE
            ):
                try:
                    obj.enable_caching()
                    n += 1
                except Exception:  # noqa: BLE001 - read-only install: compile in memory
                    pass
    return n


def warm_up() -> float:
    """Compile esda's permutation kernels now (idempotent, thread-safe).

    Enables numba's disk cache for esda's kernels and runs local Moran and Gi* once on a
    5 × 5 lattice. Call it at service start-up in a background thread. Returns the seconds
    spent (0 when already warm).
    """
    global _warm_done
    import time

    with _warm_lock:
        if _warm_done:
            return 0.0
        t0 = time.perf_counter()
        from libpysal.weights import lat2W

        _enable_esda_cache()
        w = lat2W(5, 5)
        y = np.arange(25, dtype=float) % 7
        local_moran(y, w, permutations=9, seed=0)
        getis_ord(y, w, permutations=9, seed=0)
        _warm_done = True
        return time.perf_counter() - t0
