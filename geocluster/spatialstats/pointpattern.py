"""Point-pattern tests of firm locations: Ripley's L and Duranton–Overman K-density.

Coordinates are in a projected CRS in metres (the working CRS); the caller says which.
Both tests are Monte Carlo tests driven by a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy import spatial

from geocluster.errors import InvalidInput

__all__ = ["RipleyResult", "KDensityResult", "ripley_l", "kdensity", "MAX_KDENSITY_FIRMS"]

#: bilateral distances grow as n²; above this many firms of the sector, subsample first
MAX_KDENSITY_FIRMS = 3000


def _xy(points, name="points_xy", min_n=2) -> np.ndarray:
    a = np.asarray(points, dtype=float) if points is not None else np.zeros((0, 0))
    if a.ndim != 2 or a.shape[1] != 2:
        raise InvalidInput(f"expected {name} as an (n, 2) array in metres, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InvalidInput(f"expected finite coordinates in {name}, got NaN or infinity")
    if len(a) < min_n:
        raise InvalidInput(f"expected at least {min_n} points in {name}, got {len(a)}")
    return a


def _n_sim(n_simulations: int, lo: int = 1) -> int:
    if not isinstance(n_simulations, int | np.integer) or not lo <= n_simulations <= 9999:
        raise InvalidInput(f"expected n_simulations in [{lo}, 9999], got {n_simulations!r}")
    return int(n_simulations)


# ---------------------------------------------------------------------------- Ripley


@dataclass(frozen=True)
class RipleyResult:
    """Ripley's L on a distance support, with a pointwise simulation envelope.

    ``l`` is ``sqrt(K/π)`` (not linearised: under complete spatial randomness ``L(d) ≈ d``).
    ``envelope_low``/``envelope_high`` are the pointwise min/max of ``n_simulations``
    CSR patterns of the same size in the same window; ``p_value[d] = (1 + #{L_sim ≥ L}) /
    (1 + n_simulations)`` (one-sided, clustering).
    """

    support_m: np.ndarray
    l: np.ndarray  # noqa: E741 - the function's name
    envelope_low: np.ndarray
    envelope_high: np.ndarray
    p_value: np.ndarray
    n_points: int
    area_m2: float
    n_simulations: int

    @property
    def clustered(self) -> np.ndarray:
        """Distances where L is above the envelope."""
        return self.l > self.envelope_high

    def to_dict(self) -> dict:
        return {
            "method": "ripley",
            "distance_m": self.support_m.tolist(),
            "l": self.l.tolist(),
            "envelope_low": self.envelope_low.tolist(),
            "envelope_high": self.envelope_high.tolist(),
            "p_value": self.p_value.tolist(),
            "clustered": self.clustered.tolist(),
            "n_points": self.n_points,
            "area_km2": self.area_m2 / 1e6,
            "n_simulations": self.n_simulations,
        }


def _ripley_k(xy: np.ndarray, support: np.ndarray, area: float) -> np.ndarray:
    """``K(d) = A · #{ordered pairs i≠j with d_ij < d} / n²`` (no edge correction).

    The same estimator as ``pointpats.k`` (strict ``<``), counted with a k-d tree instead of
    all pairwise distances.
    """
    n = len(xy)
    tree = spatial.cKDTree(xy)
    r = np.nextafter(support, -np.inf).clip(min=0)  # count_neighbors is "<=": make it "<"
    ordered = tree.count_neighbors(tree, r).astype(float) - n  # drop the n self-pairs
    ordered[support <= 0] = 0.0
    return area * ordered / n**2


def _sample_window(window, bbox, n, rng) -> np.ndarray:
    minx, miny, maxx, maxy = bbox
    if window is None:
        return np.column_stack([rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)])
    out = np.empty((0, 2))
    shapely.prepare(window)
    while len(out) < n:
        m = max(64, int(1.3 * (n - len(out)) * (maxx - minx) * (maxy - miny) / window.area))
        cand = np.column_stack([rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)])
        out = np.vstack([out, cand[shapely.contains_xy(window, cand[:, 0], cand[:, 1])]])
    return out[:n]


def ripley_l(
    points_xy,
    *,
    support_m=None,
    window=None,
    n_simulations: int = 99,
    random_state: int | np.random.Generator | None = 0,
) -> RipleyResult:
    """Ripley's L function with a CSR simulation envelope.

    Parameters
    ----------
    points_xy : ndarray, shape (n, 2)
        Firm coordinates in metres.
    support_m : array of float, optional
        Distances (metres) at which to evaluate L. Default: 20 steps up to a quarter of the
        window's shorter side.
    window : shapely Polygon, optional
        Study area (e.g. the region); default the points' bounding box (as pointpats).
        Simulated patterns are drawn uniformly inside it.
    n_simulations : int
        CSR patterns for the envelope (1–9999).
    random_state : int or Generator
        Seed of the simulations.

    Notes
    -----
    No edge correction, as ``pointpats.distance_statistics.l``; the envelope is built from
    patterns in the same window, so the test stays valid (Diggle 2003, ch. 4).
    """
    xy = _xy(points_xy)
    n_sim = _n_sim(n_simulations)
    if window is None:
        bbox = (*xy.min(axis=0), *xy.max(axis=0))
        area = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1])
    else:
        if not isinstance(window, shapely.Polygon | shapely.MultiPolygon) or window.is_empty:
            raise InvalidInput(f"expected a polygon window, got {type(window).__name__}")
        bbox = window.bounds
        area = window.area
    if area <= 0:
        raise InvalidInput("expected points spread over an area, got collinear or equal points")
    if support_m is None:
        side = min(bbox[2] - bbox[0], bbox[3] - bbox[1])
        support = np.linspace(0, side / 4, 21)[1:]
    else:
        support = np.asarray(support_m, dtype=float).ravel()
        if support.size == 0 or not np.isfinite(support).all() or (support < 0).any():
            raise InvalidInput("expected support_m as non-negative distances in metres")
    rng = np.random.default_rng(random_state)
    obs = np.sqrt(_ripley_k(xy, support, area) / np.pi)
    sims = np.empty((n_sim, len(support)))
    for b in range(n_sim):
        sims[b] = np.sqrt(
            _ripley_k(_sample_window(window, bbox, len(xy), rng), support, area) / np.pi
        )
    p = (1.0 + (sims >= obs).sum(axis=0)) / (1.0 + n_sim)
    return RipleyResult(
        support_m=support,
        l=obs,
        envelope_low=sims.min(axis=0),
        envelope_high=sims.max(axis=0),
        p_value=p,
        n_points=len(xy),
        area_m2=float(area),
        n_simulations=n_sim,
    )


# ------------------------------------------------------------------- Duranton–Overman


@dataclass(frozen=True)
class KDensityResult:
    """Duranton–Overman K-density of a sector's bilateral distances, with bands.

    Arrays have the shape of ``distance_m``. ``global_high``/``global_low`` are the global
    confidence bands (hit anywhere by at most ``alpha`` of the counterfactual densities);
    ``localization`` is ``max(K − global_high, 0)`` and ``dispersion`` is
    ``max(global_low − K, 0)`` where the sector is nowhere localised (else 0), D-O 2005
    eqs. 6–7. The indices are their integrals over distance.
    """

    distance_m: np.ndarray
    density: np.ndarray
    local_low: np.ndarray
    local_high: np.ndarray
    global_low: np.ndarray
    global_high: np.ndarray
    localization: np.ndarray
    dispersion: np.ndarray
    localization_index: float
    dispersion_index: float
    bandwidth_m: float
    n_firms: int
    n_sites: int
    n_simulations: int
    alpha: float

    @property
    def localized(self) -> bool:
        return self.localization_index > 0

    @property
    def dispersed(self) -> bool:
        return self.dispersion_index > 0

    def to_dict(self) -> dict:
        d = {
            k: getattr(self, k).tolist()
            for k in (
                "distance_m",
                "density",
                "local_low",
                "local_high",
                "global_low",
                "global_high",
                "localization",
                "dispersion",
            )
        }
        d.update(
            method="kdensity",
            localization_index=self.localization_index,
            dispersion_index=self.dispersion_index,
            localized=self.localized,
            dispersed=self.dispersed,
            bandwidth_m=self.bandwidth_m,
            n_firms=self.n_firms,
            n_sites=self.n_sites,
            n_simulations=self.n_simulations,
            alpha=self.alpha,
        )
        return d


def _silverman(d: np.ndarray) -> float:
    """Silverman's (1986, eq. 3.31) rule of thumb ``0.9 min(σ, IQR/1.34) n^(-1/5)``."""
    sd = np.std(d, ddof=1)
    iqr = np.subtract(*np.percentile(d, [75, 25]))
    spread = min(sd, iqr / 1.34) if iqr > 0 else sd
    return float(0.9 * spread * len(d) ** (-0.2))


def _density(xy: np.ndarray, grid: np.ndarray, h: float) -> np.ndarray:
    """Gaussian kernel density of bilateral distances, reflected at 0, on ``grid``.

    ``K(d) = 2/(n(n-1)h) Σ_{i<j} [φ((d − d_ij)/h) + φ((d + d_ij)/h)]`` — D-O 2005 eq. 1,
    normalised to integrate to 1 over d ≥ 0, with Silverman's reflection so that no mass is
    lost below zero distance. Distances are binned (bin width h/25) before smoothing.
    """
    n = len(xy)
    d = spatial.distance.pdist(xy)
    top = grid[-1] + 5 * h
    d = d[d <= top]
    width = h / 25
    edges = np.arange(0, top + width, width)
    counts, _ = np.histogram(d, bins=edges)
    centres = 0.5 * (edges[:-1] + edges[1:])
    keep = counts > 0
    counts, centres = counts[keep], centres[keep]
    u1 = (grid[:, None] - centres[None, :]) / h
    u2 = (grid[:, None] + centres[None, :]) / h
    phi = (np.exp(-0.5 * u1**2) + np.exp(-0.5 * u2**2)) / np.sqrt(2 * np.pi)
    return (phi @ counts) * 2.0 / (n * (n - 1) * h)


def _global_bands(sims: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """D-O 2005 §3.3 global bands: the same local rank at every distance, chosen so that
    at most ``alpha`` of the simulations lie above the upper band (below the lower band)
    at any distance."""
    B = len(sims)
    order = np.argsort(sims, axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(B)[:, None].repeat(sims.shape[1], axis=1), axis=0)
    sorted_sims = np.take_along_axis(sims, order, axis=0)
    top_rank = ranks.max(axis=1)  # a simulation is above band r somewhere iff top_rank > r
    low_rank = ranks.min(axis=1)
    # smallest r with mean(top_rank > r) <= alpha; largest r with mean(low_rank < r) <= alpha
    r_hi = next(r for r in range(B) if np.mean(top_rank > r) <= alpha)
    r_lo = next(r for r in range(B - 1, -1, -1) if np.mean(low_rank < r) <= alpha)
    return sorted_sims[r_lo], sorted_sims[r_hi]


def kdensity(
    sector_xy,
    sites_xy,
    *,
    max_distance_m: float | None = None,
    n_distances: int = 100,
    bandwidth_m: float | None = None,
    n_simulations: int = 199,
    alpha: float = 0.05,
    random_state: int | np.random.Generator | None = 0,
) -> KDensityResult:
    """Duranton–Overman (2005) test of localisation of one sector.

    Parameters
    ----------
    sector_xy : ndarray, shape (n, 2)
        The sector's firms (metres), 2 ≤ n ≤ ``MAX_KDENSITY_FIRMS``.
    sites_xy : ndarray, shape (N, 2)
        All firm sites (every sector, the sector's firms included), N > n: the
        counterfactual draws n of them without replacement, which controls for the overall
        concentration of activity.
    max_distance_m : float, optional
        Largest distance evaluated. Default: the median distance between pairs of sites
        (estimated on up to 2000 sites), as D-O 2005 (180 km for the UK).
    n_distances : int
        Grid points from 0 to ``max_distance_m``.
    bandwidth_m : float, optional
        Kernel bandwidth; default Silverman's rule on the sector's distances, kept for the
        counterfactuals.
    n_simulations : int
        Counterfactual draws (D-O used 1000).
    alpha : float
        Share of counterfactuals allowed to hit each global band (D-O: 5 %); the local
        bands are the alpha and 1 − alpha quantiles.
    random_state : int or Generator
        Seed.

    References
    ----------
    Duranton, G. & Overman, H. G. (2005). Testing for localization using micro-geographic
    data. *Review of Economic Studies* 72(4), 1077–1106.
    """
    xy = _xy(sector_xy, "sector_xy")
    sites = _xy(sites_xy, "sites_xy")
    if len(xy) > MAX_KDENSITY_FIRMS:
        raise InvalidInput(
            f"expected at most {MAX_KDENSITY_FIRMS} firms in the sector for K-density, got "
            f"{len(xy)}; subsample or narrow the sector"
        )
    if len(sites) <= len(xy):
        raise InvalidInput(
            f"expected more sites ({len(sites)}) than sector firms ({len(xy)}) for the "
            "counterfactual"
        )
    n_sim = _n_sim(n_simulations, lo=19)
    if not 0 < alpha < 0.5:
        raise InvalidInput(f"expected alpha in (0, 0.5), got {alpha}")
    if not isinstance(n_distances, int | np.integer) or not 2 <= n_distances <= 2000:
        raise InvalidInput(f"expected n_distances in [2, 2000], got {n_distances!r}")
    rng = np.random.default_rng(random_state)
    if max_distance_m is None:
        sample = sites if len(sites) <= 2000 else sites[rng.choice(len(sites), 2000, replace=False)]
        max_distance_m = float(np.median(spatial.distance.pdist(sample)))
    if not np.isfinite(max_distance_m) or max_distance_m <= 0:
        raise InvalidInput(f"expected max_distance_m > 0, got {max_distance_m}")
    d_obs = spatial.distance.pdist(xy)
    h = float(bandwidth_m) if bandwidth_m is not None else _silverman(d_obs)
    if not np.isfinite(h) or h <= 0:
        raise InvalidInput(f"expected a positive bandwidth, got {h} (are all firms at one site?)")
    grid = np.linspace(0.0, float(max_distance_m), int(n_distances))
    k_obs = _density(xy, grid, h)
    sims = np.empty((n_sim, len(grid)))
    for b in range(n_sim):
        sims[b] = _density(sites[rng.choice(len(sites), len(xy), replace=False)], grid, h)
    local_low = np.quantile(sims, alpha, axis=0)
    local_high = np.quantile(sims, 1 - alpha, axis=0)
    glob_low, glob_high = _global_bands(sims, alpha)
    loc = np.maximum(k_obs - glob_high, 0.0)
    disp = np.maximum(glob_low - k_obs, 0.0)
    if loc.sum() > 0:
        disp = np.zeros_like(disp)
    return KDensityResult(
        distance_m=grid,
        density=k_obs,
        local_low=local_low,
        local_high=local_high,
        global_low=glob_low,
        global_high=glob_high,
        localization=loc,
        dispersion=disp,
        localization_index=float(np.trapezoid(loc, grid)),
        dispersion_index=float(np.trapezoid(disp, grid)),
        bandwidth_m=h,
        n_firms=len(xy),
        n_sites=len(sites),
        n_simulations=n_sim,
        alpha=alpha,
    )
