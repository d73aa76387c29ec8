"""Spatial Gini (Rey & Smith 2013) and the contiguity pairs it needs.

Notes
-----
Rey, S. J. & Smith, R. J. (2013) "A spatial decomposition of the Gini coefficient",
*Letters in Spatial and Resource Sciences* 6, 55-70. The sum of absolute differences
over all ordered pairs, ``D = sum_i sum_j |y_i - y_j| = G * 2 n^2 mu``, splits into the
part over neighbouring pairs ``wg = sum_ij w_ij |y_i - y_j|`` (binary, symmetric
``w``) and the part over non-neighbours ``wcg = D - wg``. Polarisation compares the
average difference between non-neighbours with that between neighbours:
``(wcg / wg) * (n_neighbour_pairs / n_non_neighbour_pairs)`` (1 when space does not
matter).

Inference follows PySAL ``inequality.gini.Gini_Spatial``: the values are shuffled over
the map ``permutations`` times (one index array shuffled in place, cumulatively), and
the pseudo p-value of ``wcg`` is the folded two-sided
``(min(#{wcg_perm >= wcg}, P - #{...}) + 1) / (P + 1)``; polarisation uses the upper
tail. Shuffles come from ``numpy.random.RandomState(seed).shuffle``, the stream
``Gini_Spatial`` uses after ``numpy.random.seed(seed)``, so both give the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from geocluster.errors import InvalidInput
from geocluster.inequality._validate import as_values, require_non_negative
from geocluster.inequality.indices import gini

__all__ = ["SpatialGini", "contiguity_pairs", "neighbour_pairs", "spatial_gini"]


@dataclass(frozen=True)
class SpatialGini:
    """Result of :func:`spatial_gini`.

    Attributes
    ----------
    gini : float
        Ordinary (aspatial) Gini, PySAL convention.
    wg, wcg : float
        Sums of absolute differences over neighbour / non-neighbour ordered pairs
        (PySAL's ``wg``/``wcg`` levels).
    wg_share, wcg_share : float
        The same divided by ``2 n^2 mu``: the neighbour and non-neighbour parts of the
        Gini (``wg_share + wcg_share == gini``).
    polarization : float or None
        None when there are no neighbour pairs or no non-neighbour pairs.
    p_value, polarization_p_value : float or None
        Permutation pseudo p-values (None when ``permutations == 0``).
    expected_wcg : float or None
        Mean of ``wcg`` over the permutations.
    """

    gini: float
    wg: float
    wcg: float
    wg_share: float
    wcg_share: float
    polarization: float | None
    p_value: float | None
    polarization_p_value: float | None
    expected_wcg: float | None
    permutations: int
    n_neighbour_pairs: int

    def to_dict(self) -> dict:
        """JSON-ready dict (CONTRACT ``spatial_gini`` entry plus extras)."""
        return asdict(self)


def neighbour_pairs(pairs: Sequence[Sequence[int]] | np.ndarray, n: int) -> np.ndarray:
    """Validate index pairs and return them symmetrised and unique.

    Parameters
    ----------
    pairs : array-like of shape (m, 2)
        0-based region indices ``[i, j]`` of neighbouring regions; one direction is
        enough.
    n : int
        Number of regions.

    Returns
    -------
    numpy.ndarray, shape (k, 2)
        Every ordered neighbour pair once (both ``(i, j)`` and ``(j, i)``).
    """
    try:
        arr = np.asarray(pairs, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"expected weights as [[i, j], ...] index pairs, got {pairs!r:.80}"
        ) from exc
    if arr.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidInput(f"expected weights as [[i, j], ...] index pairs, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
        raise InvalidInput("expected integer region indices in the weights pairs")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise InvalidInput(
            f"weights pair {arr[row].tolist()} refers to a region outside 0..{n - 1}"
        )
    if (arr[:, 0] == arr[:, 1]).any():
        row = int(np.flatnonzero(arr[:, 0] == arr[:, 1])[0])
        raise InvalidInput(f"weights pair {arr[row].tolist()} links a region with itself")
    both = np.vstack([arr, arr[:, ::-1]])
    return np.unique(both, axis=0)


def contiguity_pairs(geometries, *, rook: bool = False) -> np.ndarray:
    """Queen (or rook) contiguity pairs of polygons, built with libpysal.

    Parameters
    ----------
    geometries : geopandas.GeoSeries or GeoDataFrame
        Region polygons in any CRS (contiguity does not depend on it), in the order
        of the values.
    rook : bool, default False
        Rook (shared edge) instead of queen (shared edge or corner) contiguity.

    Returns
    -------
    numpy.ndarray, shape (k, 2)
        Ordered 0-based neighbour pairs (both directions).
    """
    import geopandas as gpd
    from libpysal.weights import Queen, Rook

    gs = geometries.geometry if isinstance(geometries, gpd.GeoDataFrame) else geometries
    if len(gs) == 0:
        return np.empty((0, 2), dtype=np.int64)
    if gs.isna().any() or gs.is_empty.any():
        raise InvalidInput("expected a polygon for every region, got empty or missing geometries")
    frame = gpd.GeoDataFrame({"_i": np.arange(len(gs))}, geometry=gs.to_numpy(), crs=gs.crs)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands / disconnected components warnings
        cls = Rook if rook else Queen
        w = cls.from_dataframe(frame, ids="_i", use_index=False)
    rows = [(int(i), int(j)) for i, js in w.neighbors.items() for j in js]
    if not rows:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.array(rows, dtype=np.int64), axis=0)


def _sad(x: np.ndarray, pairs: np.ndarray) -> float:
    return float(np.abs(x[pairs[:, 0]] - x[pairs[:, 1]]).sum())


def spatial_gini(
    values: Sequence[float],
    pairs: Sequence[Sequence[int]] | np.ndarray,
    *,
    permutations: int = 99,
    seed: int | None = 0,
) -> SpatialGini:
    """Spatial decomposition of the Gini coefficient (Rey & Smith 2013).

    Parameters
    ----------
    values : array-like, shape (n,)
        Non-negative regional values (n >= 2).
    pairs : array-like, shape (m, 2)
        Neighbour index pairs (see :func:`neighbour_pairs` / :func:`contiguity_pairs`).
    permutations : int, default 99
        Random spatial permutations for the p-values (0 to skip).
    seed : int or None, default 0
        Seed of ``numpy.random.RandomState``.

    Returns
    -------
    SpatialGini
        Equal to PySAL ``Gini_Spatial(values, w, permutations)`` run after
        ``numpy.random.seed(seed)`` with ``w`` the binary weights of ``pairs``.
    """
    x = as_values(values)
    require_non_negative(x, "the spatial Gini")
    n = x.size
    if n < 2:
        raise InvalidInput(f"the spatial Gini needs at least 2 regions, got {n}")
    if not isinstance(permutations, int | np.integer) or permutations < 0:
        raise InvalidInput(f"expected permutations >= 0, got {permutations!r}")
    pr = neighbour_pairs(pairs, n)
    g = gini(x)
    den = x.mean() * 2 * n**2
    d = g * den
    wg = _sad(x, pr)
    wcg = d - wg
    n_pairs = n * (n - 1) / 2
    n_n_pairs = pr.shape[0] / 2
    n_d_pairs = n_pairs - n_n_pairs
    scale = n_n_pairs / n_d_pairs if n_d_pairs > 0 else None
    polarization = (wcg / wg) * scale if (scale is not None and wg > 0) else None

    p_value = pol_p = e_wcg = None
    if permutations:
        rng = np.random.RandomState(seed)
        ids = np.arange(n)
        wcgp = np.empty(permutations)
        for k in range(permutations):
            rng.shuffle(ids)  # cumulative, in place: the same draws as Gini_Spatial
            wcgp[k] = d - _sad(x[ids], pr)
        larger = int((wcgp >= wcg).sum())
        if permutations - larger < larger:
            larger = permutations - larger
        p_value = (larger + 1.0) / (permutations + 1.0)
        e_wcg = float(wcgp.mean())
        if polarization is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                pol_sim = wcgp / (d - wcgp) * scale
            pol_p = (int((pol_sim >= polarization).sum()) + 1) / (permutations + 1)

    return SpatialGini(
        gini=float(g),
        wg=float(wg),
        wcg=float(wcg),
        wg_share=float(wg / den),
        wcg_share=float(wcg / den),
        polarization=None if polarization is None else float(polarization),
        p_value=p_value,
        polarization_p_value=pol_p,
        expected_wcg=e_wcg,
        permutations=int(permutations),
        n_neighbour_pairs=int(n_n_pairs),
    )
