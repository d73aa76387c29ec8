"""The conditional-permutation kernels against esda (the reference), and their disk cache.

Reference: esda 2.x ``Moran_Local`` and ``G_Local(star=1.0)`` on the Columbus data
(Anselin 1988, shipped with libpysal), the same statistics computed by PySAL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import esda
import geopandas as gpd
import numpy as np
import pytest

from geocluster.spatialstats import build_weights, getis_ord, local_moran
from geocluster.spatialstats.permutation import ensure_numba_cache_dir
from tests.geocluster.test_spatialstats import _enable_esda_cache

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _esda_cache():
    _enable_esda_cache()


@pytest.fixture(scope="module")
def columbus():
    from libpysal import examples

    return gpd.read_file(examples.get_path("columbus.shp"))


def _ref_w(w):
    from libpysal.weights import W

    return W(w.neighbors, w.weights, id_order=w.id_order, silence_warnings=True)


def _esda_lisa(y, w, permutations, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return esda.Moran_Local(
            y, _ref_w(w), transformation="r", permutations=permutations, seed=seed, n_jobs=1
        )


def _esda_gi(y, w, permutations, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return esda.G_Local(
            y,
            _ref_w(w),
            transform="R",
            permutations=permutations,
            star=1.0,
            seed=seed,
            n_jobs=1,
        )


@pytest.mark.parametrize("spec", ["queen", "knn:5"])
@pytest.mark.parametrize("column", ["CRIME", "HOVAL"])
def test_same_statistics_and_same_draws_as_esda(columbus, spec, column):
    # knn weights are asymmetric, HOVAL is skewed: both change the statistic's arithmetic
    regions = columbus.set_crs("EPSG:32617", allow_override=True)
    w = build_weights(regions, spec)
    y = columbus[column].to_numpy()
    ours = local_moran(y, w, permutations=199, seed=5)
    ref = _esda_lisa(y, w, 199, 5)
    np.testing.assert_allclose(ours.statistic, ref.Is, rtol=1e-12, atol=1e-14)
    assert list(ours.label) == [{1: "HH", 2: "LH", 3: "LL", 4: "HL"}[q] for q in ref.q]
    # the draws follow esda's (same generator, seed, calls): the same pseudo p-values
    np.testing.assert_array_equal(ours.p_value, ref.p_sim)
    np.testing.assert_allclose(ours.z, ref.z_sim, rtol=1e-9)

    gi = getis_ord(y, w, permutations=199, seed=5)
    gref = _esda_gi(y, w, 199, 5)
    np.testing.assert_allclose(gi.statistic, gref.Zs, rtol=1e-12, atol=1e-14)
    # (esda's G_Local keeps crand's p-values in float32: equal up to its rounding)
    np.testing.assert_allclose(gi.p_value, gref.p_sim, rtol=1e-6)
    np.testing.assert_allclose(getis_ord(y, w, permutations=0).p_value, gref.p_norm, rtol=1e-12)


def test_p_values_within_monte_carlo_error_of_esda(columbus):
    # different seeds: both estimate the same conditional-permutation p-value of each
    # region; with P draws each estimate has s.e. sqrt(p(1-p)/P), so their difference is
    # below 4.5 * sqrt(2) s.e. (+ the 1/(P+1) granularity) for all 49 regions
    w = build_weights(columbus, "queen")
    y = columbus["HOVAL"].to_numpy()
    perms = 4999
    for ours, ref in (
        (local_moran(y, w, permutations=perms, seed=1).p_value, _esda_lisa(y, w, perms, 2).p_sim),
        (getis_ord(y, w, permutations=perms, seed=1).p_value, _esda_gi(y, w, perms, 2).p_sim),
    ):
        p = (ours + ref) / 2
        bound = 4.5 * np.sqrt(2 * p * (1 - p) / perms) + 2 / (perms + 1)
        assert np.all(np.abs(ours - ref) <= bound), np.max(np.abs(ours - ref) - bound)
        assert np.any(p > 0.1)  # not only trivially tiny p-values


def test_islands_are_never_significant(columbus):
    # esda folds an island's constant null distribution to p = 1/(P+1) ("significant");
    # an island has no neighbours, so here its p-value is 1
    from libpysal.weights import W

    n = 6
    neighbors = {0: [1], 1: [0, 2], 2: [1, 3], 3: [2, 4], 4: [3], 5: []}
    w = W(neighbors, id_order=list(range(n)), silence_warnings=True)
    y = np.array([1.0, 2.0, 8.0, 9.0, 3.0, 50.0])
    for result in (local_moran(y, w, permutations=99), getis_ord(y, w, permutations=99)):
        assert result.p_value[5] == 1.0
        assert not result.significant[5]
        assert np.all(result.p_value[:5] < 1.0)


_PROBE = """
import json, time
t0 = time.perf_counter()
import numpy as np
from libpysal.weights import lat2W
from geocluster.spatialstats import getis_ord, local_moran
from geocluster.spatialstats import permutation as p
w = lat2W(6, 6)
y = np.arange(36.0) % 5
t1 = time.perf_counter()
local_moran(y, w, permutations=99, seed=0)
getis_ord(y, w, permutations=99, seed=0)
t2 = time.perf_counter()
stats = [f.stats for f in (p._draws, p._kernel)]
print(json.dumps({
    "hits": sum(sum(s.cache_hits.values()) for s in stats),
    "misses": sum(sum(s.cache_misses.values()) for s in stats),
    "first_call_s": t2 - t1,
}))
"""


def _probe(env=None):
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_kernels_load_from_the_disk_cache_in_a_fresh_process():
    _probe()  # compiles and writes the cache if this installation has none yet
    second = _probe()
    assert second["misses"] == 0 and second["hits"] >= 2, second


def test_cache_dir_fallback_when_nothing_is_writable(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    from numba.core import config

    monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)  # restored afterwards
    # neither <package>/__pycache__ nor ~/.cache/numba can be created under a file
    chosen = ensure_numba_cache_dir(package_dir=blocker / "pkg", home=blocker / "home")
    assert chosen == str(tmp_path / "tmp" / f"geocluster-numba-{os.getuid()}")
    assert os.environ["NUMBA_CACHE_DIR"] == chosen == config.CACHE_DIR
    assert Path(chosen).is_dir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert ensure_numba_cache_dir(package_dir=blocker, home=blocker) is None  # respected
    # a writable package directory needs nothing
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert ensure_numba_cache_dir(package_dir=tmp_path / "pkg", home=blocker) is None


def test_read_only_install_caches_in_the_fallback(tmp_path):
    # the whole probe in a process whose NUMBA_CACHE_DIR points to a fresh directory:
    # the kernels are cached there and load from it the second time
    cache = tmp_path / "numba-cache"
    first = _probe({"NUMBA_CACHE_DIR": str(cache)})
    assert first["misses"] >= 1
    assert any(cache.rglob("*.nbi"))
    second = _probe({"NUMBA_CACHE_DIR": str(cache)})
    assert second["misses"] == 0 and second["hits"] >= 2
