"""Conditional-permutation inference for local statistics (LISA, Gi*), compiled once.

esda's engine (``esda.crand``) passes the statistic to its driver as a first-class function,
which numba cannot cache across processes: every fresh process recompiled it (~20 s here).
These kernels follow the same scheme (Anselin 1995, conditional randomisation: site ``i``
keeps its value, its neighbours get values drawn without replacement from the other
``n - 1`` sites; one set of draws is shared by all sites) but are plain ``@njit(cache=True)``
functions selected by an integer, so their machine code is loaded from numba's on-disk cache.

The draws reproduce esda's: numba's generator seeded with ``seed`` inside compiled code,
``np.random.choice(n - 1, size=max_cardinality, replace=False)`` per permutation, so a run
with the same seed gives esda's p-values (up to ties broken by the last bit of a float
sum). numba keeps its generator state per thread, so concurrent calls do not interfere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["LISA", "GI_STAR", "conditional_permutation", "ensure_numba_cache_dir"]

#: statistic codes understood by the kernel
LISA = 0
GI_STAR = 1


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def ensure_numba_cache_dir(package_dir: Path | None = None, home: Path | None = None) -> str | None:
    """Make sure numba has somewhere writable to cache compiled kernels.

    numba caches next to the source (``__pycache__``) and falls back to the user's cache
    (``~/.cache/numba``); when neither is writable (a read-only install run by a service
    account without a home) a ``cache=True`` decorator fails at import. Then this points
    ``NUMBA_CACHE_DIR`` at ``<tmp>/geocluster-numba-<uid>``. A ``NUMBA_CACHE_DIR`` already
    set is respected. Returns the directory it set, or None when nothing was needed.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    package_dir = Path(__file__).parent if package_dir is None else package_dir
    home = Path.home() if home is None else home
    if _writable(package_dir / "__pycache__") or _writable(home / ".cache" / "numba"):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    fallback = Path(tempfile.gettempdir()) / f"geocluster-numba-{uid}"
    if not _writable(fallback):
        return None  # nowhere to cache: numba then raises its own clear error
    os.environ["NUMBA_CACHE_DIR"] = str(fallback)
    try:  # numba read its configuration at import; tell it too
        from numba.core import config

        config.CACHE_DIR = str(fallback)
    except ImportError:  # pragma: no cover - numba is a dependency
        pass
    return str(fallback)


ensure_numba_cache_dir()

import numba  # noqa: E402 - after the cache directory is settled


@numba.njit(cache=True)
def _draws(max_card, n, permutations, seed):  # pragma: no cover - compiled
    # esda.crand.vec_permutations: the same generator, seed and calls, hence the same ids
    np.random.seed(seed)  # noqa: NPY002 - numba's per-thread generator, seeded here
    out = np.empty((permutations, max_card), dtype=np.int64)
    for k in range(permutations):
        out[k] = np.random.choice(n - 1, size=max_card, replace=False)  # noqa: NPY002
    return out


@numba.njit(cache=True)
def _kernel(
    kind, values, observed, indptr, weights, self_weights, draws, scaling
):  # pragma: no cover - compiled
    n = values.shape[0]
    n_perm = draws.shape[0]
    p_sim = np.empty(n)
    mean = np.empty(n)
    sd = np.empty(n)
    sims = np.empty(n_perm)
    for i in range(n):
        start = indptr[i]
        card = indptr[i + 1] - start
        if card == 0:
            # an island has no neighbours to permute: no evidence either way
            p_sim[i] = 1.0
            mean[i] = np.nan
            sd[i] = np.nan
            continue
        vi = values[i]
        for k in range(n_perm):
            acc = 0.0
            for m in range(card):
                j = draws[k, m]
                # draws index the other n - 1 sites: skip site i itself
                if j >= i:
                    j += 1
                acc += values[j] * weights[start + m]
            if kind == 0:  # LISA: z_i * lag(z)_i * (n - 1) / sum(z^2)
                sims[k] = vi * (acc + self_weights[i] * vi) * scaling
            else:  # Gi*: lag(y)_i (self included) / sum(y)
                sims[k] = (acc + self_weights[i] * vi) / scaling
        larger = 0
        for k in range(n_perm):
            if sims[k] >= observed[i]:
                larger += 1
        # esda's "directed" folding: count the tail the observed value is in
        if n_perm - larger < larger:
            larger = n_perm - larger
        p_sim[i] = (larger + 1.0) / (n_perm + 1.0)
        s = 0.0
        for k in range(n_perm):
            s += sims[k]
        mu = s / n_perm
        ss = 0.0
        for k in range(n_perm):
            ss += (sims[k] - mu) ** 2
        mean[i] = mu
        sd[i] = np.sqrt(ss / n_perm)
    return p_sim, mean, sd


def conditional_permutation(
    kind: int,
    values: np.ndarray,
    observed: np.ndarray,
    sparse_w,
    *,
    permutations: int,
    seed: int,
    scaling: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pseudo p-values of local statistics under conditional randomisation.

    Parameters
    ----------
    kind : int
        :data:`LISA` (``values`` are z-scores, ``scaling`` = (n - 1) / Σz²) or
        :data:`GI_STAR` (``values`` are the raw values, ``scaling`` = Σy).
    values, observed : ndarray of shape (n,)
        The variable and the observed local statistic of every site.
    sparse_w : scipy.sparse matrix, shape (n, n)
        The transformed weights (row-standardised); a diagonal is the self-weight (Gi*).
    permutations : int
        Number of permutations (> 0).
    seed : int
        Seed of the draws, in [0, 2**32).
    scaling : float
        See ``kind``.

    Returns
    -------
    p_sim, mean, sd : ndarray of shape (n,)
        esda's folded ("directed") pseudo p-value ``(min(#≥, #<) + 1) / (P + 1)`` and the
        mean and standard deviation of the simulated statistics (NaN for islands, whose
        p-value is 1).
    """
    csr = sparse_w.tocsr(copy=True)
    self_weights = np.asarray(csr.diagonal(), dtype=np.float64)
    csr.setdiag(0)
    csr.eliminate_zeros()
    # weights stay in CSR storage order, as esda pairs them with the draws
    indptr = csr.indptr.astype(np.int64)
    counts = np.diff(indptr)
    n = len(values)
    max_card = max(int(counts.max()) if n else 0, 1)
    draws = _draws(max_card, n, int(permutations), int(seed))
    return _kernel(
        int(kind),
        np.ascontiguousarray(values, dtype=np.float64),
        np.ascontiguousarray(observed, dtype=np.float64),
        indptr,
        csr.data.astype(np.float64),
        self_weights,
        draws,
        float(scaling),
    )
