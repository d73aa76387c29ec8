"""Binned FFT Gaussian KDE against scikit-learn's exact KernelDensity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.neighbors import KernelDensity

from geocluster.clustering import bandwidth_m, kde_grid
from geocluster.errors import InvalidInput

UTM = np.array([500_000.0, 2_300_000.0])


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(1)
    X = np.vstack(
        [
            rng.normal([0, 0], 2000, (500, 2)),
            rng.normal([8000, 3000], 800, (300, 2)),
            rng.uniform(-10_000, 15_000, (200, 2)),
        ]
    )
    w = rng.integers(1, 50, len(X)).astype(float)
    return X + UTM, w


def _sklearn_on_nodes(g, X, w, n_nodes=6000, seed=0):
    """sklearn's exact density at a random sample of grid nodes (plus our peak node)."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(g.density.size, size=min(n_nodes, g.density.size), replace=False)
    flat = np.append(flat, np.argmax(g.density))
    rows, cols = np.unravel_index(flat, g.density.shape)
    P = np.column_stack([g.x[cols], g.y[rows]])
    kde = KernelDensity(kernel="gaussian", bandwidth=g.bandwidth_m).fit(X, sample_weight=w)
    return g.density[rows, cols], np.exp(kde.score_samples(P))


@pytest.mark.parametrize("bandwidth", ["scott", "silverman", 700.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_within_one_percent_of_sklearn(points, bandwidth, weighted):
    X, w = points
    w = w if weighted else None
    g = kde_grid(X, bandwidth=bandwidth, weights=w, normalize=True)
    assert g.units == "probability_per_m2"
    ours, ref = _sklearn_on_nodes(g, X, w)
    # Relative error where the density is not negligible (> 1% of its maximum).
    mask = ref > 0.01 * ref.max()
    assert mask.sum() > 1000
    rel = np.abs(ours[mask] - ref[mask]) / ref[mask]
    assert rel.max() < 0.01, rel.max()


def test_whole_grid_within_one_percent_of_sklearn(points):
    # Every node of a coarser grid (cell = h / 8 still), not a sample.
    X, w = points
    X = X[::4]
    g = kde_grid(X, bandwidth=1500.0, weights=w[::4], normalize=True)
    xx, yy = np.meshgrid(g.x, g.y)
    kde = KernelDensity(kernel="gaussian", bandwidth=1500.0).fit(X, sample_weight=w[::4])
    ref = np.exp(kde.score_samples(np.column_stack([xx.ravel(), yy.ravel()])))
    ref = ref.reshape(g.density.shape)
    mask = ref > 0.01 * ref.max()
    np.testing.assert_allclose(g.density[mask], ref[mask], rtol=0.01)


def test_intensity_units_integrate_to_the_total_weight(points):
    X, w = points
    g = kde_grid(X, bandwidth=600.0, weights=w)
    assert g.units == "per_km2"
    cell_km2 = (g.cell_m / 1000) ** 2
    # Per-km2 intensity summed over cells gives back the employees (grid pads 3h).
    assert g.density.sum() * cell_km2 == pytest.approx(w.sum(), rel=1e-3)
    assert g.total_weight == w.sum()
    # Equals 1e6 * total weight * probability density.
    p = kde_grid(X, bandwidth=600.0, weights=w, normalize=True)
    np.testing.assert_allclose(g.density, p.density * w.sum() * 1e6, rtol=1e-10, atol=1e-12)


def test_single_point_gives_the_gaussian_and_north_up_layout():
    # One point at a cell centre: the grid is exactly the bivariate normal pdf.
    h, cell = 1000.0, 100.0
    pt = np.array([[UTM[0] + 50.0, UTM[1] + 50.0]])
    g = kde_grid(pt, bandwidth=h, cell_m=cell, bounds=(UTM[0] - 5000, UTM[1] - 5000, UTM[0] + 5000, UTM[1] + 5000), normalize=True)  # fmt: skip
    xx, yy = np.meshgrid(g.x, g.y)
    r2 = (xx - pt[0, 0]) ** 2 + (yy - pt[0, 1]) ** 2
    expected = np.exp(-r2 / (2 * h * h)) / (2 * math.pi * h * h)
    np.testing.assert_allclose(g.density, expected, rtol=1e-6, atol=1e-15)
    # Row 0 is north: y decreases down the rows and the transform says so.
    assert g.y[0] > g.y[-1]
    assert g.transform.e < 0
    row, col = np.unravel_index(np.argmax(g.density), g.density.shape)
    x, y = g.transform @ (col + 0.5, row + 0.5)
    assert (x, y) == pytest.approx((pt[0, 0], pt[0, 1]))


def test_scott_and_silverman_rules_by_hand():
    rng = np.random.default_rng(3)
    X = rng.normal(0, [300, 600], (400, 2))
    n = len(X)
    var = X.var(axis=0)
    # Scott (1992) d=2: h = sigma * n^(-1/6), sigma the RMS of the axis std devs.
    assert bandwidth_m(X, "scott") == pytest.approx(math.sqrt(var.mean()) * n ** (-1 / 6))
    iqr = np.subtract(*np.percentile(X, [75, 25], axis=0))
    a = np.minimum(np.sqrt(var), iqr / 1.349).mean()
    assert bandwidth_m(X, "silverman") == pytest.approx(a * n ** (-1 / 6))
    # Kish's effective n with weights, as scipy.stats.gaussian_kde.
    w = rng.uniform(0.5, 2, n)
    neff = w.sum() ** 2 / (w**2).sum()
    mean = np.average(X, axis=0, weights=w)
    wvar = np.average((X - mean) ** 2, axis=0, weights=w)
    assert bandwidth_m(X, "scott", weights=w) == pytest.approx(
        math.sqrt(wvar.mean()) * neff ** (-1 / 6)
    )


def test_grid_size_and_cell_choices(points):
    X, _ = points
    g = kde_grid(X, bandwidth=500.0, grid_size=200)
    assert max(g.density.shape) == 200
    g = kde_grid(X, bandwidth=800.0)
    assert g.cell_m == pytest.approx(100.0)  # default h / 8 when the grid allows
    minx, miny, maxx, maxy = g.bounds
    assert minx <= X[:, 0].min() - 3 * 800 and maxy >= X[:, 1].max() + 3 * 800


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bandwidth": "wide"}, "scott"),
        ({"bandwidth": -5.0}, "bandwidth"),
        ({"bandwidth": 10.0, "cell_m": 0.001}, "grid cells"),
        ({"bandwidth": 10.0, "grid_size": 1}, "grid_size"),
        ({"bandwidth": 10.0, "weights": -np.ones(3)}, "non-negative"),
        ({"bandwidth": 10.0, "bounds": (5, 5, 0, 0)}, "maxx > minx"),
    ],
)
def test_errors(kwargs, match):
    X = np.array([[0.0, 0.0], [100.0, 50.0], [40.0, 20.0]])
    with pytest.raises(InvalidInput, match=match):
        kde_grid(X, **kwargs)


def test_zero_spread_needs_a_bandwidth():
    with pytest.raises(InvalidInput, match="give it in metres"):
        kde_grid(np.zeros((5, 2)), bandwidth="scott")
    with pytest.raises(InvalidInput, match="at least one point"):
        kde_grid(np.empty((0, 2)), bandwidth=10.0)
