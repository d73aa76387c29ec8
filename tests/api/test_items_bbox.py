"""``/collections/{id}/items?bbox=`` pages: the envelope index and the Arrow GeoJSON path.

The fast path (:class:`geocluster.store.geoparquet.EnvelopeIndex` to find the rows,
:func:`api.routers.features._geojson_table` to write them) must answer exactly what the
straightforward path answers. The reference here never touches either: it reads the
whole layer, keeps the rows whose envelope meets the box (edges included, OGC API
Features /req/core/fc-bbox-response: "intersects"), pages them in storage order and
writes them with geopandas' ``to_json`` (:func:`api.routers.features._geojson`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from api.app import create_app
from api.routers.features import _geojson, _geojson_table
from api.settings import Settings
from geocluster.store import geoparquet as gp
from geocluster.workspace import Workspace

N = 30_000


def _firms(n: int, seed: int = 7) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    # two dense towns and a sparse background, on a coarse lattice so that many firms
    # share coordinates and some sit exactly on the test boxes' edges
    town = rng.integers(0, 3, n)
    cx = np.array([-99.13, -103.35, -100.0])[town]
    cy = np.array([19.43, 20.67, 22.0])[town]
    spread = np.array([0.05, 0.08, 2.0])[town]
    lon = np.round(cx + rng.normal(0, 1, n) * spread, 3)
    lat = np.round(cy + rng.normal(0, 1, n) * spread, 3)
    lon[:5], lat[:5] = -99.13, 19.43  # five firms at one address, a box's corner below
    lon[5:9], lat[5:9] = -99.15, np.linspace(19.40, 19.45, 4)  # on a box's west edge
    employees = rng.integers(1, 400, n).astype(float)
    employees[rng.random(n) < 0.05] = np.nan
    founded = pd.array(rng.integers(1950, 2024, n), dtype="Int64")
    founded[rng.random(n) < 0.1] = pd.NA
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"F{i:06d}" for i in range(n)],
            "name": [None if i % 97 == 0 else f"Empresa {i}" for i in range(n)],
            "isic_division": rng.choice(["10", "15", "25", "47"], n),
            "employees": employees,
            "founded": founded,
            "exporter": rng.random(n) < 0.2,
        },
        geometry=shapely.points(lon, lat),
        crs="EPSG:4326",
    )


def _regions() -> gpd.GeoDataFrame:
    boxes, ids = [], []
    for i, x in enumerate(np.arange(-104.0, -98.0, 0.5)):
        for j, y in enumerate(np.arange(18.0, 23.0, 0.5)):
            boxes.append(shapely.box(x, y, x + 0.5 + 0.3 * ((i + j) % 2), y + 0.5))
            ids.append(f"R{i:02d}{j:02d}")
    return gpd.GeoDataFrame(
        {"region_id": ids, "name": [f"Región {k}" for k in ids]}, geometry=boxes, crs="EPSG:4326"
    )


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("items-bbox") / "ws")
    ws.add_dataset("firms", _firms(N), name="firms")
    ws.add_dataset("boundaries", _regions(), name="regions")
    return ws


@pytest.fixture(scope="module")
def client(ws):
    with TestClient(create_app(Settings(workspace=ws.path))) as c:
        yield c


def _reference(ws, collection: str, bbox, *, limit: int, offset: int, id_col: str):
    """The page the straightforward path gives: full read, envelope test, slice, to_json."""
    full = ws.read_collection(collection)  # storage order, no bbox, no index
    b = full.geometry.bounds
    minx, miny, maxx, maxy = bbox
    hit = (b.maxx >= minx) & (b.minx <= maxx) & (b.maxy >= miny) & (b.miny <= maxy)
    page = full[hit.to_numpy()].iloc[offset : offset + limit]
    text = _geojson(page, offset=offset, id_col=id_col)
    return json.loads(text), int(hit.sum())


BOXES = [
    (-99.2, 19.35, -99.05, 19.5),  # the dense town
    (-99.13, 19.43, -99.13, 19.43),  # a degenerate box on the lattice: edges count
    (-99.15, 19.40, -99.10, 19.45),  # edges on lattice coordinates
    (-110.0, 14.0, -86.0, 33.0),  # everything
    (-120.0, 40.0, -119.0, 41.0),  # nothing
    (-101.0, 21.0, -99.0, 23.0),  # the sparse background
]


@pytest.mark.parametrize("bbox", BOXES)
@pytest.mark.parametrize(("limit", "offset"), [(100, 0), (37, 250), (10_000, 0), (5, 10**6)])
def test_firm_pages_equal_the_reference(client, ws, bbox, limit, offset):
    box = ",".join(str(v) for v in bbox)
    r = client.get(f"/collections/firms/items?bbox={box}&limit={limit}&offset={offset}")
    assert r.status_code == 200, r.text
    got = r.json()
    want, matched = _reference(ws, "firms", bbox, limit=limit, offset=offset, id_col="firm_id")
    assert got["numberMatched"] == matched
    assert got["numberReturned"] == len(want["features"])
    assert got["features"] == want["features"]
    assert got["type"] == "FeatureCollection"


def test_pages_cover_the_box_once_in_order(client, ws):
    bbox = BOXES[0]
    box = ",".join(map(str, bbox))
    ids, url = [], f"/collections/firms/items?bbox={box}&limit=500"
    while url:
        page = client.get(url).json()
        ids += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    want, matched = _reference(ws, "firms", bbox, limit=10**9, offset=0, id_col="firm_id")
    assert matched > 2000  # several pages
    assert ids == [f["id"] for f in want["features"]]


def test_properties_and_polygons_equal_the_reference(client, ws):
    bbox = (-101.2, 19.9, -100.1, 21.05)
    r = client.get(f"/collections/firms/items?bbox={','.join(map(str, bbox))}"
                   "&properties=employees,founded&limit=300")  # fmt: skip
    full = ws.read_collection("firms", properties=["employees", "founded"])
    b = full.geometry.bounds
    hit = (b.maxx >= bbox[0]) & (b.minx <= bbox[2]) & (b.maxy >= bbox[1]) & (b.miny <= bbox[3])
    want = json.loads(_geojson(full[hit.to_numpy()].iloc[:300], offset=0, id_col=None))
    assert r.json()["features"] == want["features"]
    # an integer column with a null on the page is written as floats, as pandas has it
    founded = [f["properties"]["founded"] for f in r.json()["features"]]
    assert None in founded and all(isinstance(v, float) for v in founded if v is not None)

    r = client.get(f"/collections/regions/items?bbox={','.join(map(str, bbox))}&limit=50")
    want, matched = _reference(ws, "regions", bbox, limit=50, offset=0, id_col="region_id")
    assert r.json()["numberMatched"] == matched > 4
    assert r.json()["features"] == want["features"]


def test_the_plain_firm_page_takes_the_arrow_path(ws):
    table = ws.read_collection_table("firms", bbox=BOXES[0], limit=100)
    text = _geojson_table(table, offset=0, id_col="firm_id")
    assert text is not None  # strings, floats, nullable ints, booleans: all plain
    frame = ws.read_collection("firms", bbox=BOXES[0], limit=100)
    assert json.loads(text) == json.loads(_geojson(frame, offset=0, id_col="firm_id"))


def test_a_bbox_read_touches_only_the_row_groups_of_its_rows(ws):
    info = ws.store.layer(ws.collection("firms").layer)
    gp.envelope_index(info["paths"])  # built once per process (not counted)
    ws.store.stats.reset()
    got = ws.read_collection("firms", bbox=BOXES[1], limit=100)
    assert 0 < len(got) <= 100
    assert ws.store.stats.row_groups_read <= len(got)
    assert ws.store.stats.rows_read < N / 2


# -- GDAL's OAPIF driver pages a spatial filter ------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ws):
    port = _free_port()
    code = (
        "import sys, uvicorn\n"
        "from api.app import create_app\n"
        "from api.settings import Settings\n"
        "uvicorn.run(create_app(Settings(workspace=sys.argv[1])), host='127.0.0.1',"
        " port=int(sys.argv[2]), log_level='warning')\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(ws.path), str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _client_env() -> dict[str, str]:
    """The environment of an outside GDAL client (as QGIS's): without the network-off
    settings that reading files hardened this process with (geocluster.io._gdal)."""
    from geocluster.io._gdal import NETWORK_OFF

    env = {k: v for k, v in os.environ.items() if k not in NETWORK_OFF}
    return {**env, "GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF"}


def test_ogr2ogr_pages_a_bbox_filter_to_every_firm_in_it(server, ws, tmp_path):
    assert shutil.which("ogr2ogr")
    bbox = BOXES[0]
    out = tmp_path / "box.geojson"
    done = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{server}/collections/firms",
         "-spat", *map(str, bbox), "-oo", "PAGE_SIZE=250"],
        capture_output=True, timeout=120,
        env=_client_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    got = sorted(f["properties"]["firm_id"] for f in json.loads(out.read_text())["features"])
    want, matched = _reference(ws, "firms", bbox, limit=10**9, offset=0, id_col="firm_id")
    # GDAL re-tests the geometry against -spat, as the envelope test does for points
    assert len(got) == matched > 2000
    assert got == sorted(f["id"] for f in want["features"])
