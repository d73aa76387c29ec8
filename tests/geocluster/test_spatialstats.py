"""Spatial statistics against esda / libpysal on the Columbus data (Anselin 1988)."""

from __future__ import annotations

import warnings

import esda
import geopandas as gpd
import numpy as np
import pytest

from geocluster.errors import CRSError, InvalidInput
from geocluster.spatialstats import (
    QUADRANTS,
    build_weights,
    fdr_significant,
    getis_ord,
    global_moran,
    local_moran,
    parse_weights_spec,
    warm_up,
)


def _enable_esda_cache() -> None:
    """Switch numba's on-disk cache on for the reference's (esda's) kernels.

    esda compiles its permutation kernels on first use (~25 s each here) and does not cache
    them; with the cache on, later test runs load most of them. ``compute_chunk`` takes the
    statistic as a function argument, which numba cannot cache across processes.
    """
    import esda.crand
    import esda.getisord
    import esda.moran
    import esda.significance
    from numba.core.registry import CPUDispatcher

    for mod in (esda.crand, esda.moran, esda.getisord, esda.significance):
        for obj in list(vars(mod).values()):
            if (
                isinstance(obj, CPUDispatcher)
                and type(obj._cache).__name__ != "FunctionCache"
                and obj.__name__ != "compute_chunk"
            ):
                obj.enable_caching()


@pytest.fixture(scope="module", autouse=True)
def _numba_disk_cache():
    _enable_esda_cache()


@pytest.fixture(scope="module")
def columbus():
    from libpysal import examples

    return gpd.read_file(examples.get_path("columbus.shp"))


@pytest.fixture(scope="module")
def queen(columbus):
    return build_weights(columbus, "queen")


def _reference_w(columbus, transform="r"):
    from libpysal.weights import Queen

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = Queen.from_dataframe(columbus, use_index=False)
    w.transform = transform
    return w


def test_weights_specs(columbus, queen):
    ref = _reference_w(columbus, "b")
    assert {k: set(v) for k, v in queen.neighbors.items()} == {
        k: set(v) for k, v in ref.neighbors.items()
    }
    assert queen.transform == "B"
    rook = build_weights(columbus, "rook")
    assert all(set(rook.neighbors[i]) <= set(queen.neighbors[i]) for i in rook.neighbors)
    projected = columbus.set_crs("EPSG:32617", allow_override=True)
    knn = build_weights(projected, "knn:4")
    assert set(knn.cardinalities.values()) == {4}
    band = build_weights(projected, "distance:1.0")  # Columbus units are small: ~0.1 to 1
    assert band.n == 49
    assert parse_weights_spec(" KNN:6 ") == ("knn", 6)
    assert parse_weights_spec("distance:2500") == ("distance", 2500.0)


@pytest.mark.parametrize("spec", ["queens", "knn:0", "knn:x", "distance:-5", "distance:", 5, None])
def test_weights_bad_spec(columbus, spec):
    with pytest.raises(InvalidInput):
        build_weights(columbus, spec)


def test_distance_weights_need_metres(columbus):
    with pytest.raises(CRSError):
        build_weights(columbus.set_crs("EPSG:4326", allow_override=True), "distance:1000")
    with pytest.raises(CRSError):
        build_weights(columbus, "knn:3")  # no CRS at all
    with pytest.raises(InvalidInput, match="K < number"):
        build_weights(columbus.set_crs("EPSG:32617", allow_override=True), "knn:49")


def test_global_moran_equals_esda(columbus, queen):
    y = columbus["CRIME"].to_numpy()
    ours = global_moran(y, queen, permutations=999, seed=1)
    ref = esda.Moran(y, _reference_w(columbus), permutations=0)
    # esda on Columbus CRIME, queen: I = 0.500188 (Anselin 1988 data; esda docs)
    np.testing.assert_allclose(ours.I, ref.I)
    np.testing.assert_allclose(ours.I, 0.500188, atol=1e-6)
    np.testing.assert_allclose([ours.z_norm, ours.p_norm], [ref.z_norm, ref.p_norm])
    assert ours.p_sim == pytest.approx(0.001)  # no permutation beats I: (0 + 1)/(999 + 1)
    assert global_moran(y, queen, permutations=999, seed=1) == ours  # seeded
    assert queen.transform == "B"  # the caller's weights are not mutated


def test_global_moran_permutation_p_agrees_with_esda(columbus, queen):
    # a weakly autocorrelated variable, where the p-value is in the middle of its range
    y = columbus["OPEN"].to_numpy()
    ours = global_moran(y, queen, permutations=1999, seed=3)
    state = np.random.get_state()  # noqa: NPY002 - esda reads the global state
    try:
        np.random.seed(12345)  # noqa: NPY002
        ref = esda.Moran(y, _reference_w(columbus), permutations=1999)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    # both estimate the same permutation p-value; binomial s.e. at 2000 draws < 0.012
    assert abs(ours.p_sim - ref.p_sim) < 0.04
    assert 0.01 < ours.p_sim < 0.99


@pytest.mark.slow
def test_local_moran_equals_esda(columbus, queen):
    y = columbus["CRIME"].to_numpy()
    ours = local_moran(y, queen, permutations=499, seed=7)
    ref = esda.Moran_Local(y, _reference_w(columbus), permutations=499, seed=7, n_jobs=1)
    np.testing.assert_allclose(ours.statistic, ref.Is)
    np.testing.assert_allclose(ours.p_value, ref.p_sim)
    assert list(ours.label) == [QUADRANTS[q] for q in ref.q]
    np.testing.assert_array_equal(ours.significant, ref.p_sim <= 0.05)
    assert set(ours.label) == {"HH", "LL", "LH", "HL"}
    # FDR keeps a subset of the significant regions
    strict = local_moran(y, queen, permutations=499, seed=7, fdr=True)
    assert strict.significant.sum() <= ours.significant.sum()
    assert not np.any(strict.significant & ~ours.significant)


@pytest.mark.slow
def test_gi_star_equals_esda(columbus, queen):
    y = columbus["CRIME"].to_numpy()
    ours = getis_ord(y, queen, permutations=499, seed=11)
    wb = _reference_w(columbus, "b")
    ref = esda.G_Local(y, wb, transform="R", permutations=499, star=1.0, seed=11, n_jobs=1)
    np.testing.assert_allclose(ours.statistic, ref.Zs)
    np.testing.assert_allclose(ours.p_value, ref.p_sim)
    assert list(ours.label) == ["hot" if z > 0 else "cold" for z in ref.Zs]
    hot = ours.significant & (ours.label == "hot")
    cold = ours.significant & (ours.label == "cold")
    assert hot.any() and cold.any()  # Columbus crime: a hot core and cold periphery


def test_fdr_is_benjamini_hochberg():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    # BH by hand at alpha 0.05: k * 0.05 / 10 = .005 .01 .015 .02 .025 ... ; the largest k
    # with p_(k) <= k*alpha/n is k = 2 (0.008 <= 0.01), so the first two are kept
    assert fdr_significant(p, 0.05).tolist() == [True, True] + [False] * 8


def test_bad_values(queen):
    with pytest.raises(InvalidInput, match="49 values"):
        global_moran(np.ones(3), queen)
    with pytest.raises(InvalidInput, match="constant"):
        local_moran(np.ones(49), queen)
    y = np.arange(49.0)
    with pytest.raises(InvalidInput, match="NaN"):
        getis_ord(np.where(y == 3, np.nan, y), queen)
    with pytest.raises(InvalidInput, match="seed"):
        local_moran(y, queen, seed=None)
    with pytest.raises(InvalidInput, match="permutations"):
        global_moran(y, queen, permutations=-1)
    with pytest.raises(InvalidInput, match="alpha"):
        getis_ord(y, queen, alpha=1.5)


@pytest.mark.slow
def test_warm_up_is_idempotent():
    first = warm_up()
    assert first >= 0.0
    assert warm_up() == 0.0
