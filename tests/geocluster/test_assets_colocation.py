"""Co-location quotient (Leslie & Kronenfeld 2011, Geographical Analysis 43(3): 306-326)."""

from __future__ import annotations

import numpy as np
import pytest

from geocluster.assets.colocation import colocation_quotient, nearest_neighbour_weights
from geocluster.errors import InvalidInput

# Hand-computed layout (metres). p0's two nearest neighbours p1 and p2 are tied at 1 m, so
# each gets weight 1/2 (the paper's tie rule).
#   p0 A (0, 0)   NN {p1 B, p2 C} (tie, d=1)
#   p1 B (1, 0)   NN p0 A          (d=1)
#   p2 C (-1, 0)  NN p0 A          (d=1)
#   p3 A (10, 0)  NN p4 A          (d=2)
#   p4 A (10, 2)  NN p3 A          (d=2)
#   p5 B (13, 0)  NN p3 A          (d=3)
XY = np.array([[0, 0], [1, 0], [-1, 0], [10, 0], [10, 2], [13, 0]], dtype=float)
LABELS = np.array(["A", "B", "C", "A", "A", "B"])
# N = 6, N_A = 3, N_B = 2.
# C_{A->B} = 1/2 (p0) + 0 (p3) + 0 (p4) = 0.5
#   CLQ_{A->B} = (0.5 / 3) / (2 / 5) = 5/12          (eq. 3, N'_B = N_B)
# C_{B->A} = 1 (p1) + 1 (p5) = 2
#   CLQ_{B->A} = (2 / 2) / (3 / 5) = 5/3
# C_{A->A} = 0 + 1 + 1 = 2, N'_A = N_A - 1 = 2
#   CLQ_{A->A} = (2 / 3) / (2 / 5) = 5/3
# C_{A->C} = 1/2, N_C = 1: CLQ = (0.5 / 3) / (1 / 5) = 5/6


def test_hand_computed_example():
    ab = colocation_quotient(XY, LABELS, "A", "B", permutations=0)
    assert ab.count == pytest.approx(0.5)
    np.testing.assert_allclose(ab.clq, 5 / 12)
    assert (ab.n_a, ab.n_b, ab.n) == (3, 2, 6)
    assert ab.p_value is None
    np.testing.assert_allclose(colocation_quotient(XY, LABELS, "B", "A", permutations=0).clq, 5 / 3)
    np.testing.assert_allclose(colocation_quotient(XY, LABELS, "A", "A", permutations=0).clq, 5 / 3)
    np.testing.assert_allclose(colocation_quotient(XY, LABELS, "A", "C", permutations=0).clq, 5 / 6)


def test_tie_weights():
    w = nearest_neighbour_weights(XY).toarray()
    expected = np.zeros((6, 6))
    expected[0, 1] = expected[0, 2] = 0.5
    expected[1, 0] = expected[2, 0] = 1
    expected[3, 4] = expected[4, 3] = 1
    expected[5, 3] = 1
    np.testing.assert_allclose(w, expected)


def test_coincident_points_are_each_others_neighbours():
    xy = np.array([[0, 0], [0, 0], [0, 0], [5, 0]], dtype=float)
    w = nearest_neighbour_weights(xy).toarray()
    np.testing.assert_allclose(w[0], [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(w[3], [1 / 3, 1 / 3, 1 / 3, 0])
    np.testing.assert_allclose(w.sum(axis=1), 1)


def _brute_force_clq(xy, labels, a, b):
    """Independent reference: full distance matrix, the paper's formula term by term."""
    n = len(xy)
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    c = 0.0
    for i in np.flatnonzero(labels == a):
        nn = np.flatnonzero(np.isclose(d[i], d[i].min(), rtol=1e-12, atol=0))
        c += np.mean(labels[nn] == b)
    n_a = (labels == a).sum()
    n_b = (labels == b).sum() - (1 if a == b else 0)
    return (c / n_a) / (n_b / (n - 1))


def test_matches_brute_force_on_a_grid_full_of_ties():
    rng = np.random.default_rng(3)
    # integer coordinates on a small grid: many equidistant neighbours and duplicates
    xy = rng.integers(0, 15, size=(300, 2)).astype(float)
    labels = rng.choice(np.array(["hotel", "museum", "farm"]), size=300)
    for a, b in [("hotel", "museum"), ("museum", "hotel"), ("farm", "farm"), ("hotel", "farm")]:
        got = colocation_quotient(xy, labels, a, b, permutations=0).clq
        np.testing.assert_allclose(got, _brute_force_clq(xy, labels, a, b), rtol=1e-12)


def test_close_to_one_under_complete_spatial_randomness():
    # Two independent homogeneous Poisson patterns (CSR) in a 10 km square. Under CSR the
    # expected CLQ is 1 (paper, section "Properties"); the random-labelling distribution
    # (199 seeded permutations) gives its standard deviation. For 1500 + 1500 points the
    # sd is about 0.03; we require |CLQ - 1| < 4 sd (a false failure rate below 1e-4 for a
    # near-normal statistic) and that the permutation mean is within 1% of 1 (its standard
    # error is sd / sqrt(199), about 0.002).
    rng = np.random.default_rng(42)
    a = rng.uniform(0, 10_000, size=(1500, 2))
    b = rng.uniform(0, 10_000, size=(1500, 2))
    xy = np.vstack([a, b])
    labels = np.array(["firm"] * 1500 + ["asset"] * 1500)
    res = colocation_quotient(xy, labels, "firm", "asset", permutations=199, random_state=7)
    assert 0.01 < res.sim_std < 0.06
    assert abs(res.clq - 1) < 4 * res.sim_std
    assert abs(res.sim_mean - 1) < 0.01
    assert res.p_value > 0.01
    # seeded: the same seed gives the same p-value
    again = colocation_quotient(xy, labels, "firm", "asset", permutations=199, random_state=7)
    assert again.p_value == res.p_value and again.sim_mean == res.sim_mean


def test_attraction_and_segregation_are_detected():
    rng = np.random.default_rng(0)
    assets = rng.uniform(0, 10_000, size=(100, 2))
    # each firm within 20 m of an asset, assets 1 km apart on average: attraction
    firms = assets + rng.normal(0, 10, size=(100, 2))
    xy = np.vstack([firms, assets])
    labels = np.array(["firm"] * 100 + ["asset"] * 100)
    res = colocation_quotient(xy, labels, "firm", "asset", permutations=99, random_state=1)
    assert res.clq > 1.7
    assert res.p_value == pytest.approx(1 / 100)
    assert res.p_greater == pytest.approx(1 / 100)
    # firms west, assets east: segregation
    firms = rng.uniform([0, 0], [4000, 10_000], size=(100, 2))
    assets = rng.uniform([6000, 0], [10_000, 10_000], size=(100, 2))
    res = colocation_quotient(
        np.vstack([firms, assets]), labels, "firm", "asset", permutations=99, random_state=1
    )
    assert res.clq < 0.1
    assert res.p_less == pytest.approx(1 / 100) and res.p_value == res.p_less


def test_bad_input():
    with pytest.raises(InvalidInput, match="both categories"):
        colocation_quotient(XY, LABELS, "A", "Z")
    with pytest.raises(InvalidInput, match="shape"):
        colocation_quotient(XY[:, :1], LABELS, "A", "B")
    with pytest.raises(InvalidInput, match="one label per point"):
        colocation_quotient(XY, LABELS[:3], "A", "B")
    bad = XY.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInput, match="finite"):
        colocation_quotient(bad, LABELS, "A", "B")
    with pytest.raises(InvalidInput, match="permutations"):
        colocation_quotient(XY, LABELS, "A", "B", permutations=-1)
