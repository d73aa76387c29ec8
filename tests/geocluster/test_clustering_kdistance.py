"""k-distance curve (eps guidance) against brute force and DBSCAN's core definition."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from geocluster.clustering import GridDBSCAN, k_distance, knee_index
from geocluster.errors import InvalidInput


@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_matches_brute_force_and_sklearn(k):
    rng = np.random.default_rng(k)
    X = rng.normal(0, 500, (300, 2))
    kd = k_distance(X, k)
    # Brute force: k-th smallest distance in each row, the zero self-distance included.
    brute = np.sort(np.sort(cdist(X, X), axis=1)[:, k - 1])
    np.testing.assert_allclose(kd.distances_m, brute, rtol=1e-12)
    # sklearn's kneighbors on the fitted data also counts the point itself first.
    d, _ = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    np.testing.assert_allclose(kd.distances_m, np.sort(d[:, -1]), rtol=1e-12)
    assert kd.k == k
    assert kd.knee_m == kd.distances_m[kd.knee_index]


def test_core_points_are_those_with_k_distance_within_eps():
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(0, 100, (400, 2)), rng.uniform(-3000, 3000, (200, 2))])
    k = 8
    d, _ = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    kdist = d[:, -1]
    # The knee point's own k-distance equals knee_m up to sqrt rounding; step off it.
    eps = float(k_distance(X, k).knee_m) * (1 + 1e-9)
    core = np.zeros(len(X), bool)
    core[GridDBSCAN(eps, min_samples=k).fit(X).core_sample_indices_] = True
    np.testing.assert_array_equal(core, kdist <= eps)


def test_knee_of_a_hockey_stick():
    # Flat then steep: the knee is at the bend (index 80 of 100).
    y = np.concatenate([np.linspace(0, 8, 81), np.linspace(8, 100, 20)[1:]])
    assert knee_index(y) == 80
    # The knee maximises the normalised gap below the chord (Satopaa et al. 2011).
    x = np.linspace(0, 1, y.size)
    gap = x - (y - y[0]) / (y[-1] - y[0])
    assert gap[knee_index(y)] == gap.max()


def test_knee_suggests_eps_between_cluster_and_noise_scales():
    rng = np.random.default_rng(2)
    clustered = rng.normal(0, 50, (900, 2))
    noise = rng.uniform(-20_000, 20_000, (100, 2))
    kd = k_distance(np.vstack([clustered, noise]), 10)
    inner = np.sort(NearestNeighbors(n_neighbors=10).fit(clustered).kneighbors()[0][:, -1])
    assert np.median(inner) < kd.knee_m < 2000


def test_degenerate_curves():
    assert knee_index(np.array([3.0, 3.0, 3.0])) == 0
    assert knee_index(np.array([1.0])) == 0
    assert knee_index(np.array([1.0, 2.0])) == 1
    with pytest.raises(InvalidInput):
        knee_index(np.array([]))


def test_errors():
    with pytest.raises(InvalidInput, match="at least k=5"):
        k_distance(np.zeros((3, 2)), 5)
    with pytest.raises(InvalidInput, match="k >= 1"):
        k_distance(np.zeros((3, 2)), 0)
