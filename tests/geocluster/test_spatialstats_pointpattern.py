"""Ripley's L against pointpats; Duranton-Overman K-density against direct evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from scipy import spatial

from geocluster.errors import InvalidInput
from geocluster.spatialstats import kdensity, ripley_l
from geocluster.spatialstats.pointpattern import _density, _global_bands


def _clustered(rng, n=300, centres=4, sd=300.0, side=20_000.0):
    c = rng.uniform(0, side, (centres, 2))
    return c[rng.integers(0, centres, n)] + rng.normal(0, sd, (n, 2))


def test_ripley_l_equals_pointpats():
    from pointpats.distance_statistics import l as pp_l

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 10_000, (250, 2))
    support = np.linspace(100, 2500, 13)
    ours = ripley_l(xy, support_m=support, n_simulations=19, random_state=0)
    # pointpats: K = 2 A #{i<j: d_ij < d} / n^2 on the points' bounding box, L = sqrt(K/pi)
    _, ref = pp_l(xy, support=support)
    np.testing.assert_allclose(ours.l, ref, rtol=1e-12)


def test_ripley_envelope_detects_clustering_and_accepts_csr():
    rng = np.random.default_rng(1)
    clustered = _clustered(rng)
    res = ripley_l(clustered, n_simulations=39, random_state=2)
    assert res.clustered[:5].all()  # far above the CSR envelope at short distances
    assert res.p_value[0] == pytest.approx(1 / 40)
    csr = rng.uniform(0, 20_000, (300, 2))
    res_csr = ripley_l(csr, n_simulations=39, random_state=2)
    assert res_csr.clustered.sum() <= 2
    # same seed, same envelope
    again = ripley_l(csr, n_simulations=39, random_state=2)
    np.testing.assert_array_equal(res_csr.envelope_high, again.envelope_high)


def test_ripley_polygon_window_samples_inside():
    rng = np.random.default_rng(2)
    window = shapely.Polygon([(0, 0), (10_000, 0), (0, 10_000)])  # a triangle
    xy = rng.uniform(0, 5000, (100, 2))
    res = ripley_l(xy, window=window, support_m=[500, 1000], n_simulations=9, random_state=0)
    assert res.area_m2 == pytest.approx(5e7)
    from geocluster.spatialstats.pointpattern import _sample_window

    pts = _sample_window(window, window.bounds, 500, np.random.default_rng(0))
    assert len(pts) == 500 and shapely.contains_xy(window, pts[:, 0], pts[:, 1]).all()


def test_kdensity_matches_direct_reflected_kde():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 30_000, (120, 2))
    grid = np.linspace(0, 20_000, 41)
    h = 1500.0
    d = spatial.distance.pdist(xy)
    n = len(xy)
    # D-O 2005 eq. 1 with Silverman's reflection at zero, evaluated pair by pair
    u1 = (grid[:, None] - d[None, :]) / h
    u2 = (grid[:, None] + d[None, :]) / h
    direct = (np.exp(-0.5 * u1**2) + np.exp(-0.5 * u2**2)).sum(axis=1) / np.sqrt(2 * np.pi)
    direct *= 2.0 / (n * (n - 1) * h)
    np.testing.assert_allclose(_density(xy, grid, h), direct, rtol=2e-3, atol=1e-12)


def test_global_bands_hit_by_at_most_alpha():
    rng = np.random.default_rng(4)
    sims = rng.normal(size=(200, 30)).cumsum(axis=1)
    low, high = _global_bands(sims, 0.05)
    above = (sims > high).any(axis=1).mean()
    below = (sims < low).any(axis=1).mean()
    assert above <= 0.05 and below <= 0.05
    assert above > 0.03  # the band is not needlessly wide: one rank lower would exceed 5 %
    # the global band is outside the local 95th percentile
    assert np.all(high >= np.quantile(sims, 0.95, axis=0) - 1e-12)


def test_kdensity_localized_sector_vs_random_sector():
    rng = np.random.default_rng(5)
    sites = rng.uniform(0, 50_000, (1500, 2))
    centres = np.array([[10_000, 10_000], [35_000, 30_000]])
    sector = centres[rng.integers(0, 2, 80)] + rng.normal(0, 600, (80, 2))
    all_sites = np.vstack([sites, sector])
    res = kdensity(sector, all_sites, n_simulations=49, random_state=0)
    assert res.localized and res.localization_index > 0 and res.dispersion_index == 0
    assert res.localization[:5].max() > 0  # localised at short distances
    random_sector = all_sites[rng.choice(len(sites), 80, replace=False)]
    res2 = kdensity(random_sector, all_sites, n_simulations=49, random_state=0)
    assert res2.localization_index < res.localization_index / 10
    assert np.trapezoid(res.density, res.distance_m) <= 1.0 + 1e-9


def test_kdensity_bad_input():
    rng = np.random.default_rng(6)
    xy = rng.uniform(0, 1000, (10, 2))
    with pytest.raises(InvalidInput, match="more sites"):
        kdensity(xy, xy)
    with pytest.raises(InvalidInput, match=r"\(n, 2\)"):
        kdensity(xy[:, 0], xy)
    with pytest.raises(InvalidInput, match="n_simulations"):
        kdensity(xy, np.vstack([xy, xy + 5]), n_simulations=3)
    with pytest.raises(InvalidInput, match="bandwidth"):
        kdensity(np.zeros((5, 2)), np.vstack([np.zeros((5, 2)), xy]))
    with pytest.raises(InvalidInput, match="support_m"):
        ripley_l(xy, support_m=[-1.0])
