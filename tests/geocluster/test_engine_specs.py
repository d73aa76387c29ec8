"""The analysis specs on ``--engine dask`` give the local answers (2 worker processes).

Specialisation, KDE and the national scan run through their registered specs (as the CLI
and ``POST /analyses/<name>`` do) on a workspace whose engine is a Dask cluster of two
worker *processes*; the workers read the workspace's GeoParquet files themselves. The
local engine is the reference: its specialisation is tested against hand computations
and geopandas in test_specialization.py / test_analyses_specialization.py, its KDE
against scikit-learn in test_clustering_kde.py, its DBSCAN against scikit-learn in
test_clustering_dbscan.py. Here the reduced cells are also checked against an
independent ``geopandas.sjoin`` count.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sys

import cloudpickle
import dask
import distributed  # noqa: F401  (its config defaults must exist before dask.config.set)
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

from geocluster.analyses.spec import get
from geocluster.engine import EngineError
from geocluster.engine.dask import DaskEngine
from geocluster.workspace import Workspace

cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.slow  # a real LocalCluster

UTM = "EPSG:32614"
X0, Y0 = 200_000.0, 2_300_000.0
SIDE = 10_000.0  # 4 x 4 regions of 10 km


def regions() -> gpd.GeoDataFrame:
    boxes, ids = [], []
    for j in range(4):
        for i in range(4):
            boxes.append(
                shapely.box(X0 + i * SIDE, Y0 + j * SIDE, X0 + (i + 1) * SIDE, Y0 + (j + 1) * SIDE)
            )
            ids.append(f"R{j}{i}")
    return gpd.GeoDataFrame({"region_id": ids, "name": ids, "level": 1}, geometry=boxes, crs=UTM)


def firms(seed: int = 11) -> gpd.GeoDataFrame:
    """Blobs on region corners and edges (clusters crossing region, row-group and
    partition borders), firms on a shared edge, firms outside every region, unknown
    employees and sectors."""
    rng = np.random.default_rng(seed)
    xy, codes = [], []
    centres = [(1, 1, "1311"), (2, 2, "2511"), (1.5, 3, "1071"), (3, 1.5, "4711"), (2, 1, "6201")]
    for cx, cy, code in centres:  # region corners / edge midpoints
        xy.append(rng.normal([X0 + cx * SIDE, Y0 + cy * SIDE], 350, (1500, 2)))
        codes += [code] * 1500
    xy.append(rng.uniform([X0 - 5000, Y0 - 5000], [X0 + 45_000, Y0 + 45_000], (6000, 2)))
    codes += list(rng.choice(["1071", "1311", "2511", "4711", "6201", "4520"], 6000))
    edge = np.column_stack([np.full(40, X0 + SIDE), rng.uniform(Y0, Y0 + 4 * SIDE, 40)])
    xy.append(edge.round(0))  # exactly on the shared edge x = X0 + 10 km
    codes += ["4711"] * 40
    X = np.concatenate(xy)
    n = len(X)
    codes = np.array(codes, dtype=object)
    codes[rng.random(n) < 0.02] = None
    code_s = pd.Series(codes, dtype="object")
    division = code_s.str[:2]
    section = division.map(
        {"10": "C", "13": "C", "25": "C", "47": "G", "45": "G", "62": "J"}, na_action="ignore"
    )
    emp = rng.integers(1, 80, n).astype(float)
    emp[rng.random(n) < 0.1] = np.nan
    # drawn last: the columns above keep their values
    founded = pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(1985, 2023, n)), "Int64")
    women_led = pd.array(np.where(rng.random(n) < 0.3, None, rng.random(n) < 0.4), "boolean")
    lonlat = gpd.GeoSeries(gpd.points_from_xy(X[:, 0], X[:, 1]), crs=UTM).to_crs(4326)
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"F{i:06d}" for i in range(n)],
            "sector_code": code_s,
            "isic_section": section,
            "isic_division": division,
            "employees": emp,
            "founded": founded,
            "women_led": women_led,
        },
        geometry=lonlat.values,
        crs=4326,
    ).sample(frac=1.0, random_state=seed)


@pytest.fixture(scope="module")
def cluster():
    # One retry per task after a worker death, so that the "always dies" test ends fast.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        eng = DaskEngine(n_workers=2, threads_per_worker=1, piece_rows=3000)
        yield eng
        eng.close()


@pytest.fixture(scope="module")
def spaces(tmp_path_factory, cluster):
    """The same workspace folder opened twice: local engine, and dask on the cluster."""
    path = tmp_path_factory.mktemp("ws")
    local = Workspace(path)
    local.add_dataset("firms", firms(), name="firms", working_crs=UTM)
    local.add_dataset("boundaries", regions(), name="regions", working_crs=UTM)
    remote = Workspace(path)
    remote.use_engine("dask", scheduler=cluster.client.scheduler.address)
    assert remote.engine().n_workers == 2
    # small work units: ~30 DBSCAN tiles (the blobs cross tile borders), several pieces
    # per file for KDE, one partition per row group for the region join
    remote.engine().tile_points, remote.engine().piece_rows = 500, 3000
    yield local, remote
    remote.engine().close()


def _touch(folder: str, kind: str) -> None:
    with open(os.path.join(folder, f"{kind}-{os.getpid()}"), "w"):
        pass


@contextlib.contextmanager
def hooked(ws, hook):
    ws.engine().task_hook = hook
    try:
        yield
    finally:
        ws.engine().task_hook = None
        _settle(ws.engine().client)


def _settle(client, timeout: float = 60.0) -> None:
    """Wait until no task of a hooked computation runs and both workers are back.

    A task that kills its worker may still be running (or be retried) after the test
    that hooked it has its error; the workers it takes down would also lose the next
    test's tasks, which then fail with KilledWorker although they killed nothing.
    """
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = any(client.processing().values())
        if not busy and len(client.scheduler_info()["workers"]) >= 2:
            return
        time.sleep(0.2)
    raise AssertionError("the Dask cluster did not settle after a hooked computation")


def ran(folder) -> dict[str, set[int]]:
    """Task kinds that ran, with the worker process ids that ran them."""
    out: dict[str, set[int]] = {}
    for name in os.listdir(folder):
        kind, pid = name.rsplit("-", 1)
        out.setdefault(kind, set()).add(int(pid))
    return out


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    floats = [c for c in ("lq", "employees", "top2_employees") if c in a]
    pd.testing.assert_frame_equal(a.drop(columns=floats), b.drop(columns=floats))
    for c in floats:
        np.testing.assert_allclose(a[c], b[c], rtol=1e-12, atol=0)


def assert_same_clusters(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, exact: bool = False) -> None:
    """Cluster summary tables equal: float sums (centroids, employees) within 1e-12 unless
    ``exact``, everything else exactly, hull polygons vertex for vertex."""
    fa, fb = pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry"))
    pd.testing.assert_frame_equal(fa, fb, check_exact=exact, rtol=1e-12, atol=1e-9)
    floats = [c for c in ("employees", "centroid_lon", "centroid_lat") if c in fa]
    pd.testing.assert_frame_equal(fa.drop(columns=floats), fb.drop(columns=floats))
    assert a.crs == b.crs
    assert shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0).all()


# -- specialisation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"measure": "employees", "sector_level": "division"},
        {"measure": "firms", "sector_level": "section", "sector_groups": ["agro_food"]},
        {"measure": "auto", "sector_level": "group"},
    ],
)
def test_specialization_spec_on_dask_equals_local(spaces, tmp_path, values):
    local, remote = spaces
    spec = get("specialization")
    a = spec(local, firms="firms", boundaries="regions", **values)
    with hooked(remote, functools.partial(_touch, str(tmp_path))):
        b = spec(remote, firms="firms", boundaries="regions", **values)
    # the workers joined and counted (both processes), nothing ran here
    assert len(ran(tmp_path)["counts"]) >= 1
    assert b.body["n_firms"] == a.body["n_firms"] and b.body["outside"] == a.body["outside"]
    assert b.body["outside"] > 0 and b.body["measure_used"] == a.body["measure_used"]
    assert_same_rows(a.layers["rows"].frame, b.layers["rows"].frame)
    ra, rb = a.layers["regions"].frame, b.layers["regions"].frame
    pd.testing.assert_frame_equal(ra, rb, check_exact=False, rtol=1e-12)
    sa = pd.DataFrame(a.body["sectors"])
    sb = pd.DataFrame(b.body["sectors"])
    pd.testing.assert_frame_equal(sa, sb, check_exact=False, rtol=1e-12)
    assert remote.run(b.run_id).params["engine"] == "dask"


def test_dask_cells_count_like_an_independent_sjoin(spaces):
    """Firms per region x division against geopandas.sjoin (independent reference)."""
    local, remote = spaces
    b = get("specialization")(remote, firms="firms", boundaries="regions", measure="firms")
    f = local.read("firms", crs="working")
    # the regions as the analysis reads them (stored in lon/lat, read in the working
    # CRS: the firms put on an edge are within a nanometre of it, on either side)
    reg = local.read("regions", crs="working").reset_index(drop=True)
    j = gpd.sjoin(f, reg, predicate="intersects", how="inner")
    j = j.sort_values("index_right", kind="stable").loc[lambda d: ~d.index.duplicated()]
    ref = j.dropna(subset=["isic_division"]).groupby(["region_id", "isic_division"]).size()
    rows = b.layers["rows"].frame
    got = rows[rows["count"] > 0].set_index(["region_id", "sector"])["count"]
    assert got.sort_index().to_dict() == {k: int(v) for k, v in ref.sort_index().items()}
    assert b.body["outside"] == len(f) - len(j)


def test_specialization_bootstrap_runs_in_process_with_the_same_answer(spaces):
    local, remote = spaces
    spec = get("specialization")
    a = spec(local, firms="firms", boundaries="regions", bootstrap=5, seed=2)
    b = spec(remote, firms="firms", boundaries="regions", bootstrap=5, seed=2)
    assert "engine" not in remote.run(b.run_id).params  # resampling needs the firms here
    pd.testing.assert_frame_equal(a.layers["rows"].frame, b.layers["rows"].frame)


# -- KDE --------------------------------------------------------------------------------


def _surface(ws, result) -> tuple[np.ndarray, tuple]:
    with rasterio.open(ws.raster(result.body["raster_id"]).path) as src:
        return src.read(1), tuple(src.transform)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"weight": "employees", "sectors": ["13", "G"]},
        {"bandwidth": "silverman", "sector_group": "agro_food"},
        {"bandwidth": 600.0, "cell_m": 200.0},
    ],
)
def test_kde_spec_on_dask_equals_local(spaces, tmp_path, values):
    local, remote = spaces
    spec = get("kde")
    a = spec(local, firms="firms", **values)
    with hooked(remote, functools.partial(_touch, str(tmp_path))):
        b = spec(remote, firms="firms", **values)
    assert "kde" in ran(tmp_path)
    for key in ("bandwidth_m", "cell_m"):
        assert b.body[key] == pytest.approx(a.body[key], rel=1e-12)
    assert (b.body["width"], b.body["height"]) == (a.body["width"], a.body["height"])
    fa, fb = a.layers["*"].frame, b.layers["*"].frame
    assert fb["n_firms"].item() == fa["n_firms"].item()
    assert fb["total_weight"].item() == pytest.approx(fa["total_weight"].item(), rel=1e-12)
    da, ta = _surface(local, a)
    db, tb = _surface(remote, b)
    np.testing.assert_allclose(ta, tb, rtol=1e-12)
    # float32 rasters of float64 sums in another order
    np.testing.assert_allclose(db, da, rtol=1e-5, atol=1e-6 * float(da.max()))


# -- the national scan -------------------------------------------------------------------


@pytest.mark.parametrize("values", [{"by": "division"}, {"by": "section", "weight": "employees"}])
def test_national_scan_spec_on_dask_equals_local(spaces, tmp_path, values):
    local, remote = spaces
    spec = get("clusters")
    params = {"firms": "firms", "eps_m": 300.0, "min_samples": 8, **values}
    a = spec(local, **params)
    with hooked(remote, functools.partial(_touch, str(tmp_path))):
        b = spec(remote, **params)
    kinds = ran(tmp_path)
    assert "sector" in kinds and "tile" not in kinds  # one task per sector, from the files
    assert a.body["n_clusters"] >= 5 and b.body["n_clusters"] == a.body["n_clusters"]
    la = local.read_run(a.run_id, "labels")
    lb = remote.read_run(b.run_id, "labels")
    np.testing.assert_array_equal(la["firm_id"], lb["firm_id"])
    np.testing.assert_array_equal(la["cluster_id"], lb["cluster_id"])
    np.testing.assert_array_equal(la["is_core"], lb["is_core"])
    pd.testing.assert_frame_equal(a.layers["sectors"].frame, b.layers["sectors"].frame)
    # each sector's summaries were made in its task, from the very rows: equal exactly
    ca, cb = a.layers["clusters"].frame, b.layers["clusters"].frame
    assert_same_clusters(ca, cb, exact=True)
    assert_same_clusters(
        local.read_run(a.run_id, "clusters"), remote.read_run(b.run_id, "clusters"), exact=True
    )
    assert ca["women_led_share"].notna().any() and ca["recent_share"].notna().any()
    assert remote.run(b.run_id).params == local.run(a.run_id).params | {"engine": "dask"}


@pytest.mark.parametrize(
    "values", [{}, {"sectors": ["13", "G"], "weight": "employees", "min_samples": 40}]
)
def test_clusters_spec_on_dask_reads_the_files_and_equals_local(spaces, tmp_path, values):
    local, remote = spaces
    params = {"firms": "firms", "eps_m": 250.0, "min_samples": 8, **values}
    a = get("clusters")(local, **params)
    with hooked(remote, functools.partial(_touch, str(tmp_path))):
        b = get("clusters")(remote, **params)
    # tiles read from the files; the summaries summed and hulled on the workers
    assert {"sample", "tile", "summary"} <= set(ran(tmp_path))
    assert a.body["n_clusters"] >= 3 and b.body["n_clusters"] == a.body["n_clusters"]
    la = local.read_run(a.run_id, "labels")
    lb = remote.read_run(b.run_id, "labels")
    np.testing.assert_array_equal(la["cluster_id"], lb["cluster_id"])
    np.testing.assert_array_equal(la["is_core"], lb["is_core"])
    # the blobs cross tile and worker borders: sums within rounding, hulls exactly
    assert_same_clusters(a.layers["clusters"].frame, b.layers["clusters"].frame)
    assert_same_clusters(
        local.read_run(a.run_id, "clusters"), remote.read_run(b.run_id, "clusters")
    )
    assert remote.run(b.run_id).params == local.run(a.run_id).params | {"engine": "dask"}


def test_national_scan_with_a_selection(spaces):
    local, remote = spaces
    params = {"firms": "firms", "eps_m": 300.0, "min_samples": 8, "by": "division"}
    a = get("clusters")(local, **params, sectors=["13", "47"])
    b = get("clusters")(remote, **params, sectors=["13", "47"])
    np.testing.assert_array_equal(
        local.read_run(a.run_id, "labels")["cluster_id"],
        remote.read_run(b.run_id, "labels")["cluster_id"],
    )
    assert sorted(b.layers["sectors"].frame["sector"]) == ["13", "47"]


# -- CLI and HTTP -------------------------------------------------------------------------


def test_cli_specialization_and_kde_with_engine_dask(spaces, cluster):
    from geocluster.cli import main

    local, _ = spaces

    def run(args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main([*args, "--workspace", str(local.path), "--json"])
        assert code == 0
        return json.loads(out.getvalue())

    dask_flags = ["--engine", "dask", "--scheduler", cluster.client.scheduler.address]
    args = ["specialization", "--firms", "firms", "--boundaries", "regions"]
    a, b = run(args), run([*args, *dask_flags])
    assert (a["n_firms"], a["outside"]) == (b["n_firms"], b["outside"])
    assert [s["sector"] for s in a["sectors"]] == [s["sector"] for s in b["sectors"]]
    args = ["clusters", "--firms", "firms", "--by", "division", "--eps-m", "300"]
    a, b = run(args), run([*args, *dask_flags])
    assert (a["n_clusters"], a["noise"]) == (b["n_clusters"], b["noise"])
    assert b["params"]["engine"] == "dask"


def test_http_analyses_on_serve_engine_dask(spaces, cluster):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    local, _ = spaces
    bodies = {}
    for engine in ("local", "dask"):
        settings = Settings(
            workspace=local.path,
            engine=engine,
            dask_scheduler=cluster.client.scheduler.address if engine == "dask" else None,
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as c:
            spec = c.post(
                "/analyses/specialization",
                json={"firms": "firms", "boundaries": "regions", "measure": "firms"},
            )
            kde = c.post("/analyses/kde", json={"firms": "firms", "cell_m": 500})
            scan = c.post(
                "/analyses/clusters",
                json={"firms": "firms", "by": "division", "eps_m": 300, "min_samples": 8},
            )
            assert spec.status_code == 200 and kde.status_code == 200
            assert scan.status_code == 200
            bodies[engine] = spec.json(), kde.json(), scan.json()
    (sa, ka, ca), (sb, kb, cb) = bodies["local"], bodies["dask"]
    assert cb["params"]["engine"] == "dask"
    assert (ca["n_clusters"], ca["noise"]) == (cb["n_clusters"], cb["noise"])
    fa = sorted(
        (f["properties"]["sector"], f["properties"]["n_firms"]) for f in ca["clusters"]["features"]
    )
    fb = sorted(
        (f["properties"]["sector"], f["properties"]["n_firms"]) for f in cb["clusters"]["features"]
    )
    assert fa == fb
    assert (sa["n_firms"], sa["outside"]) == (sb["n_firms"], sb["outside"])
    ra = pd.DataFrame(sa["rows"]).drop(columns=["lq"])
    rb = pd.DataFrame(sb["rows"]).drop(columns=["lq"])
    pd.testing.assert_frame_equal(ra, rb)
    np.testing.assert_allclose(
        [r["lq"] for r in sb["rows"]], [r["lq"] for r in sa["rows"]], rtol=1e-12
    )
    assert (ka["width"], ka["height"]) == (kb["width"], kb["height"])
    assert kb["max_density"] == pytest.approx(ka["max_density"], rel=1e-6)


# -- a worker killed mid-run ---------------------------------------------------------------


def _kill_once(marker: str, kind: str) -> None:
    if kind in ("counts", "sector") and not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os._exit(1)  # the worker process dies mid-task


def _kill_always(kind: str) -> None:
    if kind == "counts":
        os._exit(1)


def test_worker_killed_mid_spec_is_retried_with_the_right_result(spaces, tmp_path):
    local, remote = spaces
    spec = get("specialization")
    a = spec(local, firms="firms", boundaries="regions")
    marker = str(tmp_path / "killed")
    with hooked(remote, functools.partial(_kill_once, marker)):
        b = spec(remote, firms="firms", boundaries="regions")
    assert os.path.exists(marker)  # a worker really died
    assert_same_rows(a.layers["rows"].frame, b.layers["rows"].frame)
    params = {"firms": "firms", "eps_m": 300.0, "min_samples": 8, "by": "division"}
    a = get("clusters")(local, **params)
    marker = str(tmp_path / "killed-scan")
    with hooked(remote, functools.partial(_kill_once, marker)):
        b = get("clusters")(remote, **params)
    assert os.path.exists(marker)
    np.testing.assert_array_equal(
        local.read_run(a.run_id, "labels")["cluster_id"],
        remote.read_run(b.run_id, "labels")["cluster_id"],
    )


def test_worker_dying_every_time_fails_the_spec_clearly(spaces):
    _, remote = spaces
    runs = len(remote.runs("specialization"))
    with hooked(remote, _kill_always), pytest.raises(EngineError, match="died"):
        get("specialization")(remote, firms="firms", boundaries="regions")
    assert len(remote.runs("specialization")) == runs  # no run saved, no partial result


def test_engine_reads_xy_statistics_of_workspace_files(spaces):
    """Row-group x/y extents (for tile reads and partition extents) are the true ones,
    also with the GeoParquet bbox struct column before x, y in the schema."""
    import pyarrow.parquet as pq

    from geocluster.engine._source import Source, dataset_files

    local, _ = spaces
    src = Source(dataset_files(local, local.require("firms", "firms")))
    assert len(src.pieces) > 3
    for p in src.pieces:
        t = pq.ParquetFile(p.path).read_row_group(p.row_groups[0], columns=["x", "y"])
        x, y = t["x"].to_numpy(), t["y"].to_numpy()
        assert p.bbox == (x.min(), y.min(), x.max(), y.max())


def test_dask_cells_break_edge_ties_like_assign_regions(cluster, tmp_path):
    """Points exactly on shared edges and corners go to the lowest region position."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from geocluster.engine import LocalEngine
    from geocluster.specialization import assign_regions

    reg = regions().sample(frac=1.0, random_state=3).reset_index(drop=True)  # any order
    rng = np.random.default_rng(5)
    grid = X0 + SIDE * rng.integers(0, 5, (3000, 2)).astype(float)  # corners
    edge = np.column_stack(
        [X0 + SIDE * rng.integers(0, 5, 3000), rng.uniform(Y0 - 5000, Y0 + 4 * SIDE + 5000, 3000)]
    )
    X = np.concatenate([grid, edge])
    X[:, 1] = np.where(np.arange(len(X)) < 3000, Y0 + (X[:, 1] - X0), X[:, 1])
    t = pa.table(
        {
            "x": X[:, 0],
            "y": X[:, 1],
            "isic_division": rng.choice(["10", "47"], len(X)),
            "employees": rng.integers(1, 9, len(X)).astype(float),
        }
    )
    paths = []
    for k, part in enumerate(np.array_split(np.arange(len(X)), 3)):
        paths.append(str(tmp_path / f"p{k}.parquet"))
        pq.write_table(t.take(part), paths[-1], row_group_size=700)
    got, n = cluster.specialization_cells(paths, regions=reg, crs=UTM)
    ref, m = LocalEngine().specialization_cells(paths, regions=reg, crs=UTM)
    pos = assign_regions(X, reg, predicate="intersects")
    assert n == m == len(X) and (pos >= 0).sum() < len(X)
    key = ["region", "key"]
    got = got.sort_values(key).reset_index(drop=True)
    ref = ref.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, ref)
    per_region = got.groupby("region")["n"].sum()
    expected = pd.Series(pos).value_counts().sort_index()
    assert per_region.to_dict() == expected.to_dict()


@pytest.mark.parametrize("values", [{}, {"by": "division"}, {"weight": "employees"}])
def test_clusters_on_dask_read_no_summary_column_here(spaces, monkeypatch, values):
    """The workers summarise: the client reads ids, sectors and points (and the weights
    cluster_firms checks), never the founding years or women-led flags."""
    import geocluster.analyses.clusters as clusters_module

    _, remote = spaces
    read = clusters_module.read_firm_table
    asked = []

    def spy(ws, firms, *, columns=None, **kw):
        asked.append(tuple(columns))
        return read(ws, firms, columns=columns, **kw)

    monkeypatch.setattr(clusters_module, "read_firm_table", spy)
    b = get("clusters")(remote, firms="firms", eps_m=300.0, min_samples=8, **values)
    assert b.body["n_clusters"] > 0
    cols = set(asked[0])
    assert not cols & {"founded", "women_led", "youth_led", "informal"}
    assert ("employees" in cols) == ("weight" in values)
    summary = b.layers["clusters"].frame
    assert summary["recent_share"].notna().any() and summary["women_led_share"].notna().any()
