"""Grid DBSCAN against the reference, scikit-learn's DBSCAN.

The contract (issue 3): same core points, same partition of the core points into clusters,
border points in *a* cluster that has a core point within eps, noise identical. Our cluster
numbering (by smallest core index) is also scikit-learn's, so core labels must be equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree
from sklearn.cluster import DBSCAN

from geocluster.clustering import GridDBSCAN, dbscan
from geocluster.errors import InvalidInput

REPO = Path(__file__).resolve().parents[2]


def _partition(labels: np.ndarray, mask: np.ndarray) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for i in np.flatnonzero(mask):
        groups.setdefault(int(labels[i]), set()).add(int(i))
    return {frozenset(g) for g in groups.values()}


def assert_same_dbscan(X, eps, min_samples, sample_weight=None, algorithm="kd_tree"):
    """Check ours against sklearn on the contract's four points (and the numbering)."""
    ref = DBSCAN(eps=eps, min_samples=min_samples, algorithm=algorithm).fit(
        X, sample_weight=sample_weight
    )
    ours = GridDBSCAN(eps, min_samples=min_samples).fit(X, sample_weight=sample_weight)
    n = len(X)
    core_ref = np.zeros(n, bool)
    core_ref[ref.core_sample_indices_] = True
    core = np.zeros(n, bool)
    core[ours.core_sample_indices_] = True
    # 1. the same core points
    np.testing.assert_array_equal(core, core_ref)
    # 2. the same partition of core points (as sets, ids ignored) ...
    assert _partition(ours.labels_, core) == _partition(ref.labels_, core_ref)
    # ... and, since both number clusters by their smallest core index, the same ids.
    np.testing.assert_array_equal(ours.labels_[core], ref.labels_[core])
    # 4. noise identical
    np.testing.assert_array_equal(ours.labels_ == -1, ref.labels_ == -1)
    # 3. each border point sits in a cluster with a core point within eps, and
    #    (our documented rule) that is the cluster of its nearest core point.
    border = ~core & (ours.labels_ >= 0)
    if border.any():
        tree = cKDTree(X[core])
        core_idx = np.flatnonzero(core)
        d, j = tree.query(X[border], k=1)
        assert (d <= eps * (1 + 1e-12)).all()
        near = ours.labels_[core_idx[j]]
        np.testing.assert_array_equal(ours.labels_[border], near)
    assert ours.n_clusters_ == (ref.labels_.max() + 1 if n else 0)
    np.testing.assert_array_equal(ours.components_, X[core])
    return ours


@pytest.mark.parametrize("seed", range(60))
def test_matches_sklearn_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 600))
    kind = seed % 3
    if kind == 0:  # uniform
        X = rng.uniform(0, 1000, (n, 2))
    elif kind == 1:  # gaussian blobs plus background
        centres = rng.uniform(0, 5000, (5, 2))
        X = centres[rng.integers(0, 5, n)] + rng.normal(0, rng.uniform(20, 300), (n, 2))
    else:  # UTM-like large coordinates, lines and duplicates
        X = np.column_stack([rng.uniform(0, 2000, n), np.repeat(100.0, n)])
        X[: n // 3] = X[0]
        X += [512_345.678, 2_345_678.9]
    eps = float(rng.uniform(5, 150))
    min_samples = int(rng.integers(1, 15))
    assert_same_dbscan(X, eps, min_samples)


@pytest.mark.parametrize("seed", range(20))
def test_matches_sklearn_with_sample_weight(seed):
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(5, 500))
    X = rng.normal(0, 400, (n, 2))
    # Integer weights keep the weighted sums exact in both implementations; zeros and
    # negatives are legal in sklearn (a negative weight can veto a core point).
    w = rng.integers(-2 if seed % 2 else 0, 6, n).astype(float)
    assert_same_dbscan(X, float(rng.uniform(20, 120)), int(rng.integers(1, 20)), w)


def test_sparse_grid_path_matches_sklearn():
    # Tiny eps over a huge extent: the cell-key range is far larger than the number of
    # points, so the grid is built by sorting instead of a counting sort.
    rng = np.random.default_rng(9)
    centres = rng.uniform(0, 1_000_000, (30, 2))
    X = centres[rng.integers(0, 30, 900)] + rng.normal(0, 4, (900, 2))
    eps = 3.0
    nkeys = (1_000_000 / (eps / np.sqrt(2))) ** 2
    assert nkeys > 4 * len(X) + 1_000_000
    ours = assert_same_dbscan(X, eps, 4)
    assert ours.n_clusters_ >= 20


def test_ball_tree_reference_too():
    rng = np.random.default_rng(7)
    X = rng.normal(0, 1000, (2000, 2))
    assert_same_dbscan(X, 60.0, 6, algorithm="ball_tree")


# Coordinates on a 1/8 m lattice and eps a multiple of 1/8 m keep every squared distance
# exact in float64, so ties at exactly eps are decided identically by both sides.
_lattice = st.integers(-4000, 4000).map(lambda v: v / 8)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pts=st.lists(st.tuples(_lattice, _lattice), min_size=1, max_size=120),
    eps8=st.integers(1, 400),
    min_samples=st.integers(1, 8),
    weights=st.one_of(st.none(), st.lists(st.integers(0, 4), min_size=120, max_size=120)),
)
def test_property_same_as_sklearn(pts, eps8, min_samples, weights):
    X = np.array(pts, dtype=float)
    w = None if weights is None else np.array(weights[: len(X)], dtype=float)
    assume(w is None or w.any())  # sklearn refuses all-zero weights
    assert_same_dbscan(X, eps8 / 8, min_samples, w)


def test_exact_ties_at_eps_are_neighbours():
    # (0,0)-(3,4) is exactly 5 apart: within eps=5 as in sklearn (<=), not within 4.999.
    X = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    np.testing.assert_array_equal(dbscan(X, eps_m=5.0, min_samples=2), [0, 0, 0])
    np.testing.assert_array_equal(dbscan(X, eps_m=4.999, min_samples=2), [-1, -1, -1])
    assert_same_dbscan(X, 5.0, 3)


def test_hand_example_core_border_noise():
    # A line of 4 points 1 m apart, a point 1.5 m beyond the end, and a far point.
    X = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [4.5, 0], [100, 0]], dtype=float)
    m = GridDBSCAN(1.0, min_samples=3).fit(X)
    # Points 1 and 2 have 3 neighbours (themselves included): core. 0 and 3 have 2:
    # border. 4.5 is 1.5 from 3 (not core) -> noise; 100 -> noise.
    np.testing.assert_array_equal(m.core_sample_indices_, [1, 2])
    np.testing.assert_array_equal(m.labels_, [0, 0, 0, 0, -1, -1])


def test_border_point_goes_to_nearest_core_cluster():
    # Two clusters whose core points both reach the border point b at the origin; the
    # right cluster's core is nearer (0.9 vs 0.95). b has 3 < 4 neighbours: border.
    left = np.array([[-0.95, 0], [-1.95, 0], [-1.5, 0.3], [-1.5, -0.3]])
    right = np.array([[0.9, 0], [1.9, 0], [1.4, 0.3], [1.4, -0.3]])
    X = np.vstack([left, right, [[0.0, 0.0]]])
    m = GridDBSCAN(1.0, min_samples=4).fit(X)
    assert 8 not in m.core_sample_indices_
    assert {0, 4} <= set(m.core_sample_indices_)
    assert m.labels_[8] == m.labels_[4] != m.labels_[0]
    assert_same_dbscan(X, 1.0, 4)


def test_labels_are_stable_under_repeat_and_numbered_by_first_core():
    rng = np.random.default_rng(3)
    X = rng.normal(0, 300, (3000, 2))
    m = GridDBSCAN(25, min_samples=4).fit(X)
    a = m.labels_
    np.testing.assert_array_equal(a, dbscan(X, eps_m=25, min_samples=4))
    assert a.max() > 5
    core = np.zeros(len(X), bool)
    core[m.core_sample_indices_] = True
    firsts = [np.flatnonzero(core & (a == c))[0] for c in range(a.max() + 1)]
    assert firsts == sorted(firsts)


def test_empty_and_single_point():
    assert dbscan(np.empty((0, 2)), eps_m=1, min_samples=1).shape == (0,)
    np.testing.assert_array_equal(dbscan([[5.0, 5.0]], eps_m=1, min_samples=1), [0])
    np.testing.assert_array_equal(dbscan([[5.0, 5.0]], eps_m=1, min_samples=2), [-1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eps_m": 0}, "eps_m > 0"),
        ({"eps_m": -1}, "eps_m > 0"),
        ({"eps_m": float("nan")}, "eps_m > 0"),
        ({"eps_m": "1"}, "eps_m as a number"),
        ({"eps_m": 1, "min_samples": 0}, "min_samples >= 1"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(InvalidInput, match=match):
        dbscan(np.zeros((3, 2)), **{"min_samples": 2, **kwargs})


def test_bad_points_and_weights():
    with pytest.raises(InvalidInput, match=r"shape \(n, 2\)"):
        dbscan(np.zeros((3, 3)), eps_m=1)
    with pytest.raises(InvalidInput, match="NaN/inf"):
        dbscan([[0, 0], [np.nan, 1]], eps_m=1)
    with pytest.raises(InvalidInput, match="3 values"):
        dbscan(np.zeros((3, 2)), eps_m=1, sample_weight=[1, 2])
    # Degrees-as-metres mistakes with a tiny eps over a huge extent are caught.
    with pytest.raises(InvalidInput, match="metres"):
        dbscan([[0, 0], [1e9, 1e9]], eps_m=1e-3)


@pytest.fixture(scope="module")
def berlin_xy():
    """libpysal's Berlin (Prenzlauer Berg) Airbnb listings, 2203 points, in EPSG:25833.

    The remote "Berlin" example needs the internet; the bundled ``berlin`` example is the
    same source's neighbourhood extract and ships with libpysal.
    """
    import geopandas as gpd
    from libpysal import examples

    path = next(p for p in examples.load_example("berlin").get_file_list() if "prenzlauer" in p)
    g = gpd.read_file(path).to_crs("EPSG:25833")
    return np.column_stack([g.geometry.x, g.geometry.y])


@pytest.mark.parametrize(("eps", "min_samples"), [(50, 5), (100, 10), (150, 20), (300, 60)])
def test_berlin_listings(berlin_xy, eps, min_samples):
    ours = assert_same_dbscan(berlin_xy, eps, min_samples)
    assert ours.n_clusters_ >= 1


def _demo_firms_xy():
    import geopandas as gpd
    import pandas as pd

    path = REPO / "data" / "firms" / "mexico_demo_firms_SYNTHETIC.csv"
    if path.exists():
        df = pd.read_csv(path)
        lon = next(c for c in df.columns if c.lower() in ("lon", "longitude", "x"))
        lat = next(c for c in df.columns if c.lower() in ("lat", "latitude", "y"))
        pts = gpd.GeoSeries(gpd.points_from_xy(df[lon], df[lat]), crs="EPSG:4326")
    else:  # the data helper's generator writes that file
        from geocluster.demo.firms import generate_firms  # type: ignore[import-not-found]

        pts = generate_firms().geometry.set_crs("EPSG:4326", allow_override=True)
    from geocluster.crs import utm_crs_for

    utm = utm_crs_for(pts.x.to_numpy(), pts.y.to_numpy())
    p = pts.to_crs(utm)
    return np.column_stack([p.x, p.y])


@pytest.mark.slow
def test_demo_firms():
    X = _demo_firms_xy()
    for eps, ms in ((500.0, 10), (2000.0, 25)):
        assert_same_dbscan(X, eps, ms)


@pytest.mark.slow
def test_large_clustered_sample_matches():
    # The benchmark's kind of data at 40k points: dense clusters and background.
    rng = np.random.default_rng(11)
    centres = rng.uniform(0, 100_000, (40, 2))
    widths = rng.uniform(500, 10_000, 40) / 4
    k = rng.integers(0, 40, 24_000)
    X = np.vstack(
        [centres[k] + rng.normal(size=(24_000, 2)) * widths[k, None],
         rng.uniform(0, 100_000, (16_000, 2))]
    )  # fmt: skip
    assert_same_dbscan(X, 300.0, 10)


def test_numba_functions_cache_compiled_code():
    import importlib

    mod = importlib.import_module("geocluster.clustering.dbscan")
    for name in ("_dbscan", "_core_flags", "_cluster_cells", "_assign_labels", "_counting_sort"):
        # cache=True gives a file-system FunctionCache; without it numba uses NullCache
        # and every new process pays the compile again.
        assert type(getattr(mod, name)._cache).__name__ == "FunctionCache", name


def test_warm_up_loads_the_code_and_leaves_results_unchanged():
    import importlib

    mod = importlib.import_module("geocluster.clustering.dbscan")
    X = np.random.default_rng(0).normal(0, 10, (200, 2))
    before = dbscan(X, eps_m=2, min_samples=4)
    assert mod.warm_up() is None
    np.testing.assert_array_equal(dbscan(X, eps_m=2, min_samples=4), before)


@settings(max_examples=40, deadline=None)
@given(
    pts=st.lists(st.tuples(_lattice, _lattice), min_size=2, max_size=150),
    eps8=st.integers(1, 300),
    min_samples=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_permutation_keeps_the_core_partition(pts, eps8, min_samples, seed):
    X = np.array(pts, dtype=float)
    perm = np.random.default_rng(seed).permutation(len(X))
    a = GridDBSCAN(eps8 / 8, min_samples=min_samples).fit(X)
    b = GridDBSCAN(eps8 / 8, min_samples=min_samples).fit(X[perm])
    core_a = np.zeros(len(X), bool)
    core_a[a.core_sample_indices_] = True
    core_b = np.zeros(len(X), bool)
    core_b[perm[b.core_sample_indices_]] = True
    np.testing.assert_array_equal(core_a, core_b)
    lab_b = np.empty_like(b.labels_)
    lab_b[perm] = b.labels_
    assert _partition(a.labels_, core_a) == _partition(lab_b, core_a)
    np.testing.assert_array_equal(a.labels_ == -1, lab_b == -1)
