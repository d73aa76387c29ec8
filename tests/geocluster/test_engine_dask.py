"""DaskEngine against LocalEngine on a real ``distributed.LocalCluster`` (2 worker processes).

The local engine is the reference here: its DBSCAN is tested against scikit-learn in
test_clustering_dbscan.py and test_engine_local.py. Equality means: same labels (hence the
same core partition, the same noise set, the same border assignment and the same
numbering), same core flags. The tile merge is also checked against scikit-learn's DBSCAN
directly (core set and noise set), and without Dask on many random tilings.
"""

from __future__ import annotations

import functools
import os
import sys

import cloudpickle
import dask
import distributed  # noqa: F401  (its config defaults must exist before dask.config.set)
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy.spatial import cKDTree
from sklearn.cluster import DBSCAN

from geocluster.engine import DaskEngine, EngineError, LocalEngine
from geocluster.engine import _dbscan_tiles as T

# Worker processes cannot import this test module: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

EPS = 50.0
MIN_SAMPLES = 6


def firms(seed: int = 7) -> pd.DataFrame:
    """Seeded points: snakes crossing the whole extent (so clusters cross many tiles), a
    very dense blob (skewed tiles), exact duplicates, a lattice with spacing == eps, noise."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(4):  # dense random walks ~30 km long, across the whole extent
        steps = rng.normal(0, 5, (2500, 2)) + np.array([12.0, 1.5 * (k - 1.5)])
        parts.append(np.cumsum(steps, axis=0) + np.array([-15000, 4000 * (k - 1.5)]))
    parts.append(rng.normal([3000, -2000], 40, (6000, 2)))  # skew: one tiny dense blob
    parts.append(np.repeat(rng.uniform(-9000, 9000, (50, 2)), 7, axis=0))  # duplicates
    g = np.arange(30) * EPS  # lattice: neighbours exactly eps apart
    parts.append(np.stack(np.meshgrid(g - 5000, g + 6000), -1).reshape(-1, 2))
    parts.append(rng.uniform(-16000, 16000, (8000, 2)))
    X = np.concatenate(parts)
    n = len(X)
    sectors = np.array(["C10", "C25", "F41", "G47", None], dtype=object)
    return pd.DataFrame(
        {
            "x": X[:, 0],
            "y": X[:, 1],
            "sector_code": sectors[rng.integers(0, 5, n)],
            "region": np.array(["R1", "R2", "R3"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0)],
            "employees": np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 50, n)),
            "w": rng.choice([0.5, 1.0, 2.0], n),
        }
    ).sample(frac=1.0, random_state=seed)  # rows in no spatial order


def write_files(df: pd.DataFrame, folder, n_files: int = 3, row_group: int = 2500) -> list[str]:
    """Several Parquet files, rows sorted into spatial blocks as the store writes them."""
    order = np.lexsort((df["y"].to_numpy(), (df["x"].to_numpy() // 2000)))
    df = df.iloc[order].reset_index(drop=True)
    paths = []
    for k, chunk in enumerate(np.array_split(np.arange(len(df)), n_files)):
        p = os.path.join(folder, f"part-{k}.parquet")
        pq.write_table(
            pa.Table.from_pandas(df.iloc[chunk], preserve_index=False), p, row_group_size=row_group
        )
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    df = firms()
    paths = write_files(df, tmp_path_factory.mktemp("firms"))
    return df, paths


@pytest.fixture(scope="module")
def engine():
    # One retry per task after a worker death, so that the "always dies" test ends fast.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        eng = DaskEngine(n_workers=2, threads_per_worker=1, tile_points=1000, piece_rows=6000)
    yield eng
    eng.close()


def assert_same(a, b):
    np.testing.assert_array_equal(a.core, b.core)
    np.testing.assert_array_equal(a.labels == -1, b.labels == -1)
    np.testing.assert_array_equal(a.labels, b.labels)


# -- the tile merge, without Dask -------------------------------------------------------


@pytest.mark.parametrize("n_tiles", [1, 2, 7, 40, 150])
def test_tiles_merge_equals_local_for_any_tiling(n_tiles):
    df = firms(3)
    X = df[["x", "y"]].to_numpy()
    ref = LocalEngine().dbscan(df, eps_m=EPS, min_samples=MIN_SAMPLES)
    gid = np.arange(len(X))
    parts = []
    for tile in T.plan_tiles(X[::3], n_tiles):
        _, read_box = T.halo_boxes(tile, EPS)
        k = T.in_box(X, read_box)
        parts.append(T.run_tile(gid[k], X[k], None, tile, EPS, MIN_SAMPLES))
    g, labels, core = T.merge_tiles(parts)
    np.testing.assert_array_equal(g, gid)
    np.testing.assert_array_equal(core, ref.core)
    np.testing.assert_array_equal(labels, ref.labels)


def test_plan_tiles_covers_the_plane_once_and_balances_skew():
    X = firms()[["x", "y"]].to_numpy()
    plan = T.plan_tiles(X, 64)
    owners = np.zeros(len(X), int)
    for tile in plan:
        owners += T.in_box(X, tile, half_open=True)
    assert (owners == 1).all()
    sizes = np.array([T.in_box(X, t, half_open=True).sum() for t in plan])
    # The dense blob holds ~20% of the points; a k-d split still keeps tiles even.
    assert sizes.max() <= 2.5 * len(X) / len(plan)


@pytest.mark.parametrize("b_first", [True, False])
def test_tiles_border_tie_goes_to_the_smaller_row_as_locally(b_first):
    # A border point P at (0, 0) exactly eps from a core point of each of two clusters
    # (A around x < 0, B around x > 0), with the tile cut through P: the tie must go to the
    # core point with the smaller row, whichever tile owns P (hand-checked: B when B's
    # rows come first, else A).
    a = [(-50.0, 0.0), (-60.0, 0.0), (-70.0, 0.0), (-80.0, 0.0)]
    b = [(50.0, 0.0), (60.0, 0.0), (70.0, 0.0), (80.0, 0.0)]
    X = np.array((b + a if b_first else a + b) + [(0.0, 0.0)])
    ref = LocalEngine().dbscan(
        pd.DataFrame({"x": X[:, 0], "y": X[:, 1]}), eps_m=50.0, min_samples=4
    )
    assert not ref.core[-1] and ref.labels[-1] == 0  # the first cluster is the first rows'
    inf = np.inf
    for cut in (0.0, 1e-9, -1e-9):
        plan = [(-inf, -inf, cut, inf), (cut, -inf, inf, inf)]
        gid = np.arange(len(X))
        parts = []
        for tile in plan:
            k = T.in_box(X, T.halo_boxes(tile, 50.0)[1])
            parts.append(T.run_tile(gid[k], X[k], None, tile, 50.0, 4))
        _, labels, core = T.merge_tiles(parts)
        np.testing.assert_array_equal(labels, ref.labels)
        np.testing.assert_array_equal(core, ref.core)


def test_gid_order_is_argsort_dense_sparse_and_with_duplicates():
    rng = np.random.default_rng(5)
    dense = rng.permutation(1000)
    sparse = rng.choice(10**9, 500, replace=False)
    dup = np.r_[dense[:10], dense[3]]
    for g in (dense, sparse, dup, np.zeros(0, np.int64)):
        np.testing.assert_array_equal(g[T._gid_order(g)], np.sort(g))


# -- DaskEngine on a LocalCluster ---------------------------------------------------------


@pytest.mark.slow  # a real LocalCluster: ~30 s for the whole group (more under load)
def test_dask_dbscan_equals_local_on_files(engine, data):
    df, paths = data
    ref = LocalEngine().dbscan(paths, eps_m=EPS, min_samples=MIN_SAMPLES)
    got = engine.dbscan(paths, eps_m=EPS, min_samples=MIN_SAMPLES)
    assert ref.n_clusters > 10
    assert_same(got, ref)
    # Meaningful: some border points are within eps of core points of two clusters.
    X = pd.concat([pq.read_table(p).to_pandas() for p in paths])[["x", "y"]].to_numpy()
    tree = cKDTree(X)
    border = np.flatnonzero(~ref.core & (ref.labels >= 0))
    two = [
        i
        for i, nb in zip(border, tree.query_ball_point(X[border], EPS))
        if len({ref.labels[j] for j in nb if ref.core[j]}) > 1
    ]
    assert len(two) >= 5
    # And against scikit-learn directly (the independent reference): core and noise sets.
    sk = DBSCAN(eps=EPS, min_samples=MIN_SAMPLES).fit(X)
    sk_core = np.zeros(len(X), bool)
    sk_core[sk.core_sample_indices_] = True
    np.testing.assert_array_equal(got.core, sk_core)
    np.testing.assert_array_equal(got.labels == -1, sk.labels_ == -1)
    np.testing.assert_array_equal(got.labels[sk_core], sk.labels_[sk_core])


@pytest.mark.slow  # a real LocalCluster: ~30 s for the whole group (more under load)
def test_dask_dbscan_clusters_cross_many_tiles(engine, data):
    df, paths = data
    got = engine.dbscan(paths, eps_m=EPS, min_samples=MIN_SAMPLES)
    X = pd.concat([pq.read_table(p).to_pandas() for p in paths])[["x", "y"]].to_numpy()
    plan = T.plan_tiles(X[:: max(1, len(X) // 200_000)], engine._n_tiles(len(X)))
    tile_of = np.full(len(X), -1)
    for k, tile in enumerate(plan):
        tile_of[T.in_box(X, tile, half_open=True)] = k
    spans = pd.Series(tile_of[got.labels >= 0]).groupby(got.labels[got.labels >= 0]).nunique()
    assert spans.max() >= 8  # the test is meaningful: some cluster spans >= 8 tiles


@pytest.mark.slow  # a real LocalCluster: ~30 s for the whole group (more under load)
def test_dask_dbscan_weights_and_filters(engine, data):
    df, paths = data
    flt = pc.field("sector_code").isin(["C10", "C25", "F41"])
    kw = dict(eps_m=EPS * 1.5, min_samples=4.5, weight="w", filters=flt)
    ref = LocalEngine().dbscan(paths, **kw)
    got = engine.dbscan(paths, **kw)
    assert len(got.labels) == df["sector_code"].isin(["C10", "C25", "F41"]).sum()
    assert_same(got, ref)


@pytest.mark.slow  # a real LocalCluster: ~30 s for the whole group (more under load)
def test_dask_dbscan_in_memory_table(engine, data):
    df, _ = data
    ref = LocalEngine().dbscan(df, eps_m=EPS, min_samples=MIN_SAMPLES)
    got = engine.dbscan(df, eps_m=EPS, min_samples=MIN_SAMPLES)
    assert_same(got, ref)


@pytest.mark.slow  # a real LocalCluster: ~30 s for the whole group (more under load)
def test_dask_region_sector_counts_equal_local(engine, data):
    df, paths = data
    kw = dict(sector="sector_code", region="region", weight="employees")
    ref = LocalEngine().region_sector_counts(paths, **kw)
    got = engine.region_sector_counts(paths, **kw)
    pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=1e-12)
    # Independent reference: a pandas crosstab of the raw frame.
    ct = pd.crosstab(df["region"], df["sector_code"])
    for (r, s), n in ct.stack().items():
        assert got.loc[(got.region == r) & (got.sector == s), "n_firms"].sum() == n


@pytest.mark.slow  # a real LocalCluster: ~30 s for the whole group (more under load)
def test_dask_region_sector_counts_by_polygons(engine, data):
    import geopandas as gpd
    from shapely.geometry import box

    df, paths = data
    regions = gpd.GeoDataFrame(
        {"code": ["W", "E"]}, geometry=[box(-20000, -20000, 0, 20000), box(0, -20000, 20000, 20000)]
    )
    kw = dict(sector="sector_code", regions=(regions, "code"))
    ref = LocalEngine().region_sector_counts(paths, **kw)
    got = engine.region_sector_counts(paths, **kw)
    pd.testing.assert_frame_equal(got, ref)
    west = (df["x"] < 0) & (df["sector_code"] == "C10")
    assert got.loc[(got.region == "W") & (got.sector == "C10"), "n_firms"].item() == west.sum()


@pytest.mark.slow  # a real LocalCluster: ~30 s for the whole group (more under load)
def test_dask_kde_equals_local(engine, data):
    _, paths = data
    kw = dict(bandwidth_m=400.0, cell_m=100.0, weight="employees")
    paths_w = paths
    ref = LocalEngine().kde_grid(paths_w, **kw, filters=pc.field("employees").is_valid())
    got = engine.kde_grid(paths_w, **kw, filters=pc.field("employees").is_valid())
    assert got.density.shape == ref.density.shape and got.transform == ref.transform
    np.testing.assert_allclose(got.density, ref.density, rtol=1e-9, atol=1e-12 * ref.density.max())
    g2 = engine.kde_grid(paths, bandwidth_m=400.0, grid_size=256, normalize=True)
    r2 = LocalEngine().kde_grid(paths, bandwidth_m=400.0, grid_size=256, normalize=True)
    np.testing.assert_allclose(g2.density, r2.density, rtol=1e-9, atol=1e-12 * r2.density.max())


def _sector_size(paths, sector):
    t = pq.ParquetDataset(paths, filters=[("sector_code", "==", sector)]).read(columns=["x"])
    return sector, t.num_rows, os.getpid()


@pytest.mark.slow  # a real LocalCluster: ~30 s for the whole group (more under load)
def test_dask_map_sectors_runs_on_workers(engine, data):
    _, paths = data
    sectors = ["C10", "C25", "F41", "G47"]
    got = engine.map_sectors(functools.partial(_sector_size, paths), sectors)
    ref = LocalEngine().map_sectors(functools.partial(_sector_size, paths), sectors)
    assert {s: v[:2] for s, v in got.items()} == {s: v[:2] for s, v in ref.items()}
    assert all(v[2] != os.getpid() for v in got.values())  # ran in worker processes


@pytest.mark.slow  # a real LocalCluster
def test_dask_engine_by_scheduler_address(engine, data):
    from geocluster.engine import get_engine

    df, _ = data
    addr = engine.client.scheduler.address
    assert addr.startswith("tcp://127.0.0.1:")  # the local cluster listens on loopback only
    with get_engine("dask", scheduler=addr) as other:
        assert other.n_workers == 2
        got = other.region_sector_counts(df, sector="sector_code", region="region")
    ref = LocalEngine().region_sector_counts(df, sector="sector_code", region="region")
    pd.testing.assert_frame_equal(got, ref)
    assert not engine.client.status == "closed"  # closing the second client left ours


@pytest.mark.slow  # a real LocalCluster
def test_dask_dbscan_rejects_non_finite_coordinates_like_local(engine, tmp_path):
    from geocluster.errors import InvalidInput

    df = firms()[["x", "y"]].reset_index(drop=True)
    df.loc[1234, "x"] = np.nan  # one bad row, almost surely not in the planning sample
    paths = write_files(df, tmp_path, n_files=2)
    for src in (paths, df):
        with pytest.raises(InvalidInput, match="finite"):
            LocalEngine().dbscan(src, eps_m=EPS, min_samples=MIN_SAMPLES)
        with pytest.raises(InvalidInput, match="finite"):
            engine.dbscan(src, eps_m=EPS, min_samples=MIN_SAMPLES)


# -- cluster summaries made where the firms are -----------------------------------------

UTM = "EPSG:32614"


@pytest.fixture(scope="module")
def summary_data(tmp_path_factory):
    """The points above in UTM 14N with every summary column (unknowns included)."""
    df = firms()
    rng = np.random.default_rng(17)
    n = len(df)
    df["x"] += 500_000.0
    df["y"] += 2_000_000.0
    df["isic_division"] = df["sector_code"].str[1:3]
    df["founded"] = pd.array(
        np.where(rng.random(n) < 0.2, None, rng.integers(1990, 2024, n)), "Int64"
    )
    df["women_led"] = pd.array(np.where(rng.random(n) < 0.3, None, rng.random(n) < 0.4), "boolean")
    df["informal"] = rng.random(n) < 0.25
    return df, write_files(df, tmp_path_factory.mktemp("summary"))


def spec_of(df, **kw):
    from geocluster.engine._summary import SummarySpec

    return SummarySpec.of(UTM, df.columns, buffer_m=EPS / 2, **kw)


def assert_same_summary(got, ref):
    """Counts and text equal; float sums within rounding; hulls equal vertex for vertex."""
    import shapely

    a = pd.DataFrame(got.drop(columns="geometry"))
    b = pd.DataFrame(ref.drop(columns="geometry"))
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-9)
    ints = ["cluster_id", "n_firms", "n_core", "employees_known"]
    pd.testing.assert_frame_equal(a[ints], b[ints], check_exact=True)
    assert got.crs == ref.crs and got.attrs == ref.attrs
    assert shapely.equals_exact(got.geometry.values, ref.geometry.values, tolerance=0).all()


def _raw(paths) -> pd.DataFrame:
    return pd.concat([pq.read_table(p).to_pandas() for p in paths], ignore_index=True)


@pytest.mark.slow  # a real LocalCluster
def test_dask_cluster_summaries_equal_local_and_cross_tiles(engine, summary_data, tmp_path):
    df, paths = summary_data
    spec = spec_of(df)
    ref = LocalEngine().dbscan(paths, eps_m=EPS, min_samples=MIN_SAMPLES, summary=spec)
    engine.task_hook = functools.partial(_touch, str(tmp_path))
    try:
        got = engine.dbscan(paths, eps_m=EPS, min_samples=MIN_SAMPLES, summary=spec)
    finally:
        engine.task_hook = None
    assert_same(got, ref)
    assert ref.n_clusters > 10 and len(got.clusters) == ref.n_clusters
    assert_same_summary(got.clusters, ref.clusters)
    assert {"tile", "summary"} <= _kinds(tmp_path)  # summed and hulled on the workers
    # meaningful: some clusters span >= 8 tiles, so their sums and hulls are of points
    # owned by several tiles (and workers)
    raw = _raw(paths)
    X = raw[["x", "y"]].to_numpy()
    plan = T.plan_tiles(X[:: max(1, len(X) // 200_000)], engine._n_tiles(len(X)))
    tile_of = np.full(len(X), -1)
    for k, tile in enumerate(plan):
        tile_of[T.in_box(X, tile, half_open=True)] = k
    m = got.labels >= 0
    assert pd.Series(tile_of[m]).groupby(got.labels[m]).nunique().max() >= 8
    # independent reference: pandas group sums of the raw rows by the labels
    g = raw[m].groupby(got.labels[m])
    np.testing.assert_array_equal(got.clusters["n_firms"], g.size().to_numpy())
    np.testing.assert_allclose(
        got.clusters["employees"], g["employees"].sum(min_count=1).to_numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(
        got.clusters["women_led_share"], g["women_led"].mean().to_numpy(), rtol=1e-12
    )
    # default reference year: the latest founding year of all the rows (noise too)
    assert got.clusters.attrs["reference_year"] == int(raw["founded"].max())


@pytest.mark.slow  # a real LocalCluster
def test_dask_cluster_summaries_with_weights_filters_and_tables(engine, summary_data):
    df, paths = summary_data
    spec = spec_of(df, reference_year=2015, hull_ratio=0.5)
    flt = pc.field("sector_code").isin(["C10", "C25", "F41"])
    kw = dict(eps_m=EPS * 1.5, min_samples=4.5, weight="w", filters=flt, summary=spec)
    ref = LocalEngine().dbscan(paths, **kw)
    got = engine.dbscan(paths, **kw)
    assert_same(got, ref)
    assert_same_summary(got.clusters, ref.clusters)
    assert got.clusters.attrs["reference_year"] == 2015
    # an in-memory table source, without the summary columns it lacks
    table = df.drop(columns=["founded", "women_led"])
    kw = dict(eps_m=EPS, min_samples=MIN_SAMPLES, summary=spec_of(df))
    ref = LocalEngine().dbscan(table, **kw)
    got = engine.dbscan(table, **kw)
    assert_same(got, ref)
    assert_same_summary(got.clusters, ref.clusters)
    assert got.clusters["women_led_share"].isna().all()


@pytest.mark.slow  # a real LocalCluster
def test_dask_cluster_summaries_of_no_cluster(engine, summary_data):
    df, paths = summary_data
    kw = dict(eps_m=1.0, min_samples=50, summary=spec_of(df))
    ref = LocalEngine().dbscan(paths, **kw)
    got = engine.dbscan(paths, **kw)
    assert got.n_clusters == ref.n_clusters == 0
    assert list(got.clusters.columns) == list(ref.clusters.columns) and len(got.clusters) == 0


def _touch(folder: str, kind: str) -> None:
    with open(os.path.join(folder, f"{kind}-{os.getpid()}"), "w"):
        pass


def _kinds(folder) -> set[str]:
    return {name.rsplit("-", 1)[0] for name in os.listdir(folder)}


# -- workers dying ------------------------------------------------------------------------


def _kill_once(marker: str, kind: str) -> None:
    if kind == "tile" and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the worker process dies mid-computation


def _kill_always(kind: str) -> None:
    if kind == "tile":
        os._exit(1)


@pytest.mark.slow  # a real LocalCluster: ~30 s for the whole group (more under load)
def test_worker_killed_mid_run_is_retried_with_the_right_result(engine, data, tmp_path):
    _, paths = data
    marker = str(tmp_path / "killed")
    ref = LocalEngine().dbscan(paths, eps_m=EPS, min_samples=MIN_SAMPLES)
    engine.task_hook = functools.partial(_kill_once, marker)
    try:
        got = engine.dbscan(paths, eps_m=EPS, min_samples=MIN_SAMPLES)
    finally:
        engine.task_hook = None
    assert os.path.exists(marker)  # a worker really died
    assert_same(got, ref)


def _kill_once_in(marker: str, when: str, kind: str) -> None:
    if kind == when and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)


@pytest.mark.slow  # a real LocalCluster
def test_worker_killed_while_summarising_is_retried_with_the_right_result(
    engine, summary_data, tmp_path
):
    # the dead worker held tile results (attributes of its owned firms): the scheduler
    # recomputes them from the files
    df, paths = summary_data
    spec = spec_of(df)
    ref = LocalEngine().dbscan(paths, eps_m=EPS, min_samples=MIN_SAMPLES, summary=spec)
    marker = str(tmp_path / "killed")
    engine.task_hook = functools.partial(_kill_once_in, marker, "summary")
    try:
        got = engine.dbscan(paths, eps_m=EPS, min_samples=MIN_SAMPLES, summary=spec)
    finally:
        engine.task_hook = None
    assert os.path.exists(marker)
    assert_same(got, ref)
    assert_same_summary(got.clusters, ref.clusters)


@pytest.mark.slow  # a real LocalCluster: ~30 s for the whole group (more under load)
def test_worker_dying_every_time_fails_clearly(engine, data):
    _, paths = data
    engine.task_hook = _kill_always
    try:
        with pytest.raises(EngineError, match="died"):
            engine.dbscan(paths, eps_m=EPS, min_samples=MIN_SAMPLES)
    finally:
        engine.task_hook = None
    # (Not re-used afterwards: on this shared 2-core machine the nanny's restarts after
    # repeated kills can take minutes, which would make the test flaky, not more exact.)
