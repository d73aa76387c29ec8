"""Workspace + embedded store: versions, runs, collections, atomicity under SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely

from geocluster.errors import DatasetNotFound, InvalidInput, NotFound, RunNotFound, WrongKind
from geocluster.workspace import Workspace, slugify


def _firms(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"f{i}" for i in range(n)],
            "sector_code": rng.choice(["15", "26", "56"], n),
            "employees": rng.integers(1, 50, n).astype(float),
        },
        geometry=shapely.points(rng.uniform(-101.8, -101.5, n), rng.uniform(21.0, 21.2, n)),
        crs="EPSG:4326",
    )


def test_new_workspace_is_a_folder_with_a_wal_catalog(workspace):
    catalog = workspace.path / "catalog.sqlite"
    assert catalog.exists() and (workspace.path / "data").is_dir()
    assert not (workspace.path / "workspace.gpkg").exists()
    con = sqlite3.connect(catalog)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert {"gc_datasets", "gc_runs", "gc_rasters", "gc_jobs", "gc_keys"} <= tables


def test_dataset_version_is_one_geoparquet_file_qgis_can_open(workspace):
    info = workspace.add_dataset("firms", _firms(50), name="f")
    files = workspace.store.layer_files(info.layer)
    assert len(files) == 1 and files[0].suffix == ".parquet"
    # An independent GeoParquet reader (geopandas) opens it in lon/lat with every attribute.
    frame = gpd.read_parquet(files[0])
    assert len(frame) == 50 and frame.crs.equals(pyproj.CRS("OGC:CRS84"))
    assert {"firm_id", "sector_code", "employees", "x", "y"} <= set(frame.columns)
    geo = json.loads(pq.read_schema(files[0]).metadata[b"geo"])
    assert geo["version"] == "1.1.0"
    assert geo["columns"]["geometry"]["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    assert geo["columns"]["geometry"]["geometry_types"] == ["Point"]


def test_versions_keep_previous_readable(workspace):
    first = workspace.add_dataset("firms", _firms(50), name="León firms")
    second = workspace.add_dataset("firms", _firms(20, seed=1), name="León firms")
    assert first.id == second.id == "leon_firms"
    assert (first.version, second.version) == (1, 2)
    assert workspace.dataset("leon_firms").rows == 20
    assert len(workspace.read("leon_firms@1")) == 50
    assert len(workspace.read("leon_firms")) == 20
    assert [v.version for v in workspace.versions("leon_firms")] == [1, 2]
    assert [d.id for d in workspace.datasets()] == ["leon_firms"]
    with pytest.raises(DatasetNotFound, match="no version 7"):
        workspace.dataset("leon_firms@7")


def test_read_bbox_limit_offset_and_working_crs(workspace):
    frame = _firms(200)
    info = workspace.add_dataset("firms", frame, name="firms")
    assert info.working_crs == "EPSG:32614"  # León, Guanajuato lies in UTM zone 14N
    bbox = (-101.7, 21.05, -101.6, 21.15)
    got = workspace.read("firms", bbox=bbox)
    inside = frame.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    assert sorted(got.firm_id) == sorted(inside.firm_id)
    assert workspace.count_collection("firms", bbox=bbox) == len(inside)
    page = workspace.read("firms", limit=10, offset=5)
    stored = workspace.read("firms")  # rows are stored sector- then Hilbert-sorted
    assert sorted(stored.firm_id) == sorted(frame.firm_id)
    assert list(page.firm_id) == list(stored.firm_id[5:15])
    projected = workspace.read("firms", crs="working")
    assert projected.crs.to_epsg() == 32614
    back = projected.to_crs(4326).set_index("firm_id").loc[frame.firm_id]
    np.testing.assert_allclose(
        shapely.get_coordinates(back.geometry.values),
        shapely.get_coordinates(frame.geometry.values),
        atol=1e-9,
    )


def test_delete_one_version_or_all(workspace):
    workspace.add_dataset("firms", _firms(5), name="a")
    workspace.add_dataset("firms", _firms(6), name="a")
    workspace.delete("a@1")
    assert [v.version for v in workspace.versions("a")] == [2]
    workspace.delete("a")
    with pytest.raises(DatasetNotFound):
        workspace.dataset("a")
    assert list((workspace.path / "data").iterdir()) == []


def test_require_checks_kind(workspace):
    workspace.add_dataset("firms", _firms(5), name="f")
    with pytest.raises(WrongKind, match="expected a boundaries dataset"):
        workspace.require("f", "boundaries")


def test_runs_are_collections(workspace):
    labels = _firms(10).to_crs(32614)
    labels["cluster_id"] = -1
    table = pd.DataFrame({"cluster_id": [0, 1], "n_firms": [4, 3]})
    run = workspace.save_run(
        "clusters",
        params={"eps_m": 500},
        inputs=["f"],
        layers={"labels": labels, "summary": table},
        summary={"n_clusters": 2},
    )
    assert run.primary == "labels"
    assert workspace.read_run(run.id).crs.to_epsg() == 4326  # stored in lon/lat
    ids = [c.id for c in workspace.collections()]
    assert run.id in ids and f"{run.id}.summary" in ids
    assert workspace.collection(run.id).rows == 10
    assert list(workspace.read_collection(f"{run.id}.summary").n_firms) == [4, 3]
    with pytest.raises(RunNotFound):
        workspace.run("clusters-nope")
    with pytest.raises(NotFound):
        workspace.collection("nothing-here")
    assert workspace.latest_run("clusters").id == run.id


def test_slugify_rejects_empty_names():
    assert slugify(" Mexico States 2020 ") == "mexico_states_2020"
    with pytest.raises(InvalidInput):
        slugify("***")


_WRITER = """
import sys, numpy as np, geopandas as gpd, shapely
from geocluster.workspace import Workspace
n = int(sys.argv[2])
rng = np.random.default_rng(1)
frame = gpd.GeoDataFrame(
    {"firm_id": np.arange(n).astype(str), "employees": rng.random(n)},
    geometry=shapely.points(rng.uniform(-101, -100, n), rng.uniform(20, 21, n)),
    crs="EPSG:4326",
)
print("ready", flush=True)
Workspace(sys.argv[1]).add_dataset("firms", frame, name="firms")
print("done", flush=True)
"""


def _wait_for_pending(catalog, timeout=60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            con = sqlite3.connect(catalog, timeout=1)
            pending = con.execute("SELECT count(*) FROM gc_pending").fetchone()[0]
            con.close()
        except sqlite3.OperationalError:
            pending = 0
        if pending:
            return True
        time.sleep(0.005)
    return False


@pytest.mark.slow
def test_sigkill_mid_write_leaves_previous_state(tmp_path):
    """A writer killed with SIGKILL mid-write leaves the previous version intact."""
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", _firms(100), name="firms")
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(ws.path), "600000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    assert _wait_for_pending(ws.path / "catalog.sqlite"), "writer never started its layer"
    # Readers are not blocked while the writer works, and see the committed state.
    started = time.monotonic()
    assert len(ws.read("firms")) == 100
    assert time.monotonic() - started < 5
    time.sleep(0.3)  # well inside the write of 600k rows
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    reopened = Workspace(tmp_path / "ws")
    assert reopened.dataset("firms").version == 1
    assert len(reopened.read("firms")) == 100
    # The next writer clears what the dead one left behind, then works normally.
    reopened.add_dataset("firms", _firms(7), name="firms")
    assert reopened.dataset("firms").version == 2
    files = {p.name for p in (ws.path / "data").iterdir()}
    expected = {
        p.name for v in reopened.versions("firms") for p in reopened.store.layer_files(v.layer)
    }
    assert files == expected  # no temp file, no orphan
    con = sqlite3.connect(ws.path / "catalog.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM gc_pending").fetchone()[0] == 0
    con.close()


def test_working_crs_choice_by_extent():
    from geocluster.crs import working_crs_for

    rng = np.random.default_rng(0)
    # A city: the UTM zone of its centroid (Oaxaca, zone 14N).
    assert working_crs_for(rng.uniform(-96.8, -96.6, 50), rng.uniform(17, 17.1, 50)) == "EPSG:32614"
    # Southern hemisphere city (Montevideo, zone 21S).
    assert working_crs_for([-56.2, -56.1], [-34.9, -34.8]) == "EPSG:32721"
    # Across the antimeridian (Fiji): the circular mean keeps it in zone 60 / 1.
    assert working_crs_for([179.5, -179.6], [-17.8, -17.7]) in ("EPSG:32760", "EPSG:32701")
    # Mexico-wide: a conformal conic whose 1 km is 1 km within 1.1 % everywhere,
    # where one UTM zone is off by up to 4.4 % (measured on the geodesic, pyproj.Geod).
    lon, lat = rng.uniform(-117, -87, 500), rng.uniform(15, 32, 500)
    crs = working_crs_for(lon, lat)
    assert crs.startswith("+proj=lcc")
    geod = pyproj.Geod(ellps="WGS84")
    to_xy = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    for x0, y0 in [(-117, 32.5), (-87, 21), (-92, 15), (-102, 23)]:
        x1, y1, _ = geod.fwd(x0, y0, 45, 1000)
        (ax, bx), (ay, by) = to_xy.transform([x0, x1], [y0, y1])
        assert abs(np.hypot(bx - ax, by - ay) / 1000 - 1) < 0.011
    # The world: Equal Earth.
    assert working_crs_for(rng.uniform(-180, 180, 99), rng.uniform(-60, 70, 99)) == "EPSG:8857"


def test_runs_listed_in_creation_order_within_one_second(workspace):
    table = pd.DataFrame({"a": [1]})
    ids = [
        workspace.save_run(kind, params={}, inputs=[], layers={"t": table}, summary={}).id
        for kind in ("zeta", "alpha", "mid")
    ]
    assert [r.id for r in workspace.runs()] == ids
    assert workspace.latest_run("mid").id == ids[2]
