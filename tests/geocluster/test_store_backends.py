"""One store suite over both backends (embedded folder, PostGIS), plus what only PostGIS has.

The PostgreSQL cluster is real: :mod:`tests.pgserver` initdb's a throw-away PostgreSQL 15
+ PostGIS 3 cluster for the session (as the ``postgres`` user) and removes it after.
Each test gets its own schema, so tests never see each other's datasets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pytest
import shapely
from pyproj import Transformer

from geocluster.errors import DatasetNotFound, InvalidInput, WrongKind
from geocluster.store import open_store
from geocluster.store.postgis import PostGISStore, postgis_tile
from geocluster.workspace import Workspace
from tests.pgserver import INSTALL_HINT, PgCluster, running_cluster

REPO = Path(__file__).resolve().parents[2]
UTM14 = "EPSG:32614"
BACKENDS = ["embedded", "postgis"]


def _firms(n: int, seed: int = 0, divisions=("10", "15", "26", "56")) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    div = rng.choice(list(divisions), n)
    founded = pd.array(rng.integers(1950, 2024, n), dtype="Int64")
    founded[::17] = pd.NA
    names = np.array([f'Firma {i}, "S.A."\n{seed}' for i in range(n)], dtype=object)
    names[::13] = None
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"f{seed}-{i}" for i in range(n)],
            "name": names,
            "sector_code": [d + "20" for d in div],
            "isic_division": div,
            "employees": np.where(np.arange(n) % 11 == 0, np.nan, rng.integers(1, 50, n)),
            "founded": founded,
            "women_led": rng.random(n) < 0.4,
        },
        geometry=shapely.points(rng.uniform(-101.8, -101.5, n), rng.uniform(21.0, 21.2, n)),
        crs="EPSG:4326",
    )


def _regions() -> gpd.GeoDataFrame:
    """4 x 4 boxes of 5 km over the firms' area (lon/lat), with a JSON-ish text column."""
    to_ll = Transformer.from_crs(UTM14, 4326, always_xy=True)
    x0, y0, side = 190_000.0, 2_322_000.0, 8_000.0
    boxes, ids = [], []
    for j in range(4):
        for i in range(4):
            box = shapely.box(
                x0 + i * side, y0 + j * side, x0 + (i + 1) * side, y0 + (j + 1) * side
            )
            boxes.append(shapely.transform(box, lambda c: np.column_stack(to_ll.transform(*c.T))))
            ids.append(f"R{j}{i}")
    return gpd.GeoDataFrame(
        {
            "region_id": ids,
            "name": [f"Región {k}" for k in ids],
            "level": 1,
            "parent_id": [None if k == "R00" else "MX" for k in ids],
        },
        geometry=boxes,
        crs="EPSG:4326",
    )


@pytest.fixture(scope="session")
def pg_cluster():
    """The throw-away PostgreSQL + PostGIS cluster (fails, never skips, without it)."""
    yield from running_cluster()


@pytest.fixture(scope="session")
def postgres_url(pg_cluster) -> str:
    return pg_cluster.url


class Opener:
    """Opens workspaces of one backend; the same ``name`` is the same store."""

    def __init__(self, backend: str, root: Path, url: str | None) -> None:
        self.backend, self.root, self.url = backend, root, url
        self.token = uuid.uuid4().hex[:8]

    def store_url(self, name: str) -> str | None:
        if self.backend == "embedded":
            return None
        return f"{self.url}?schema=t_{self.token}_{name}"

    def __call__(self, name: str = "ws") -> Workspace:
        return Workspace(self.root / name, store_url=self.store_url(name))


@pytest.fixture(params=BACKENDS)
def opener(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgis" else None
    return Opener(request.param, tmp_path, url)


def _physical_layers(ws: Workspace) -> set[str]:
    """Layers physically present: part files (embedded) or layer tables (PostGIS)."""
    if isinstance(ws.store, PostGISStore):
        return ws.store._layer_tables()
    return {p.name.rsplit(".", 2)[0] for p in (ws.path / "data").glob("*.parquet")}


def _referenced(ws: Workspace) -> set[str]:
    out = {v.layer for d in ws.datasets() for v in ws.versions(d.id)}
    out |= {lay for r in ws.runs() for lay in r.layers.values()}
    return out


# -- versions ----------------------------------------------------------------------------------
def test_versions_are_addressable_and_survive_reopening(opener):
    ws = opener()
    for i, n in enumerate((30, 45, 60)):
        info = ws.add_dataset("firms", _firms(n, seed=i), name="Mexico firms")
        assert info.ref == f"mexico_firms@{i + 1}"
    assert [v.version for v in ws.versions("mexico_firms")] == [1, 2, 3]
    assert ws.dataset("mexico_firms").version == 3
    for version, n in ((1, 30), (2, 45), (3, 60)):
        frame = ws.read(f"mexico_firms@{version}")
        assert len(frame) == n and frame.crs.to_epsg() == 4326
        assert ws.count_collection(f"mexico_firms@{version}") == n
    ws.delete("mexico_firms@1")
    with pytest.raises(DatasetNotFound, match="no version 1"):
        ws.dataset("mexico_firms@1")
    again = opener()  # a second open of the same store sees the same catalog
    assert [v.version for v in again.versions("mexico_firms")] == [2, 3]
    assert len(again.read("mexico_firms@2")) == 45
    assert again.catalog.integrity_check() == "ok"
    assert _physical_layers(again) == _referenced(again)  # v1's layer is gone


def test_attribute_tables_and_dtypes_round_trip(opener):
    ws = opener()
    table = pd.DataFrame(
        {
            "region_id": ["R00", "R01", None],
            "year": pd.array([2020, None, 2022], dtype="Int64"),
            "value": [1.5, np.nan, -2.25],
            "flag": pd.array([True, None, False], dtype="boolean"),
            "meta": [{"a": 1}, None, [1, 2]],
        }
    )
    ws.add_dataset("indicators", table, name="gdp")
    back = ws.read("gdp")
    assert not isinstance(back, gpd.GeoDataFrame)
    assert list(back.columns) == list(table.columns)
    assert back["region_id"].tolist()[:2] == ["R00", "R01"] and pd.isna(back["region_id"][2])
    assert back["year"].tolist()[0] == 2020 and pd.isna(back["year"][1])
    assert back["value"][0] == 1.5 and np.isnan(back["value"][1])
    assert str(back["year"].dtype) == "Int64"
    assert back["flag"].tolist()[0] is True and pd.isna(back["flag"][1])
    assert json.loads(back["meta"][0]) == {"a": 1} and json.loads(back["meta"][2]) == [1, 2]


# -- atomicity ---------------------------------------------------------------------------------
_KILL_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from tests.geocluster.test_store_backends import _firms
    from geocluster.workspace import Workspace
    point = {point!r}
    if point == "load":
        if {backend!r} == "postgis":
            import geocluster.store.postgis as pg
            pg.COPY_ROWS = 1000
            real, calls = pg._copy_rows, []
            def copy_rows(*a, **k):
                calls.append(1)
                if len(calls) == 3:  # two chunks already streamed into the COPY
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(*a, **k)
            pg._copy_rows = copy_rows
        else:
            import geocluster.store.geoparquet as gpq
            real = gpq.pq.ParquetWriter.write_table
            calls = []
            def write_table(self, *a, **k):
                calls.append(1)
                if len(calls) == 3:  # two row groups already in the temp file
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(self, *a, **k)
            gpq.pq.ParquetWriter.write_table = write_table
    else:  # inside the catalog transaction, after the layer row, before the version row
        import geocluster.store.catalog as cat
        import geocluster.store.postgis as pg
        for cls in (cat.Catalog, pg.PgCatalog):
            real_insert = cls.insert
            def insert(self, table, row, *, con=None, _real=real_insert):
                if table == "gc_datasets":
                    os.kill(os.getpid(), signal.SIGKILL)
                return _real(self, table, row, con=con)
            cls.insert = insert
    ws = Workspace({path!r}, store_url={url!r})
    ws.add_dataset("firms", _firms(20_000, seed=7), name="shared")
    print("not killed")
    """
)


@pytest.mark.parametrize("point", ["load", "commit"])
def test_writer_killed_mid_write_leaves_the_previous_version(opener, point):
    ws = opener()
    ws.add_dataset("firms", _firms(50), name="shared")
    code = _KILL_CHILD.format(
        repo=str(REPO), point=point, backend=opener.backend, path=str(ws.path),
        url=opener.store_url("ws"),
    )  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    after = opener()  # reopening collects the dead writer's debris
    assert [v.version for v in after.versions("shared")] == [1]
    assert len(after.read("shared")) == 50
    assert after.catalog.integrity_check() == "ok"
    assert _physical_layers(after) == _referenced(after)
    assert after.add_dataset("firms", _firms(10), name="shared").version == 2


def test_failed_writes_leave_nothing(opener):
    ws = opener()
    ws.add_dataset("firms", _firms(30), name="firms")
    with pytest.raises(WrongKind):  # raised inside the commit: the new layer goes too
        ws.add_dataset("boundaries", _regions(), name="firms")
    bad = pd.DataFrame({"mixed": [1, "a", 2.5]})  # Arrow cannot type this column
    with pytest.raises((TypeError, ValueError, pa.ArrowException)):
        ws.save_run(
            "clusters",
            params={},
            inputs=[],
            layers={"labels": _firms(10)[["firm_id", "geometry"]], "bad": bad},
            summary={},
        )
    assert ws.runs() == [] and [v.version for v in ws.versions("firms")] == [1]
    assert _physical_layers(ws) == _referenced(ws)  # without a garbage collection
    assert ws.add_dataset("firms", _firms(5), name="firms").version == 2  # still writable


# -- concurrency -------------------------------------------------------------------------------
def test_threads_writing_and_reading_get_consecutive_versions(opener):
    ws = opener()
    ws.add_dataset("firms", _firms(40), name="shared")
    errors: list[str] = []
    sizes: dict[int, int] = {}

    def work(k: int) -> None:
        try:
            for i in range(3):
                n = 20 + 10 * k + i
                info = ws.add_dataset("firms", _firms(n, seed=100 * k + i), name="shared")
                sizes[info.version] = n
                latest = ws.dataset("shared")
                assert len(ws.read(latest.ref)) == latest.rows
                part = ws.read(
                    "shared", columns=["firm_id"], filters=[("isic_division", "==", "15")]
                )
                assert set(part.columns) == {"firm_id", "geometry"}
                run = ws.save_run(
                    "clusters",
                    params={},
                    inputs=[info.ref],
                    layers={"labels": _firms(15, seed=k)[["firm_id", "geometry"]]},
                    summary={},
                )
                assert len(ws.read_run(run.id)) == 15
        except Exception as exc:  # reported below
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = opener()
    versions = final.versions("shared")
    assert [v.version for v in versions] == list(range(1, 14))
    for v in versions[1:]:
        assert v.rows == sizes[v.version] == len(final.read(v.ref))
    assert len(final.runs()) == 12
    assert final.catalog.integrity_check() == "ok"
    assert _physical_layers(final) == _referenced(final)


# -- pushdown ----------------------------------------------------------------------------------
QUERIES = [
    {"filters": [("isic_division", "==", "15")]},
    {"filters": [("isic_division", "in", ["10", "26"]), ("employees", ">=", 20)]},
    {"filters": [("isic_division", "not in", ["10"]), ("founded", "is null", None)]},
    {"filters": [("employees", "not null", None), ("women_led", "==", True)]},
    {"filters": [("name", "!=", 'Firma 3, "S.A."\n0')], "columns": ["firm_id", "name"]},
    {"bbox": (-101.7, 21.05, -101.6, 21.12)},
    {"bbox": (-101.7, 21.05, -101.6, 21.12), "filters": [("employees", "<", 10)]},
    {"columns": ["firm_id", "employees"], "limit": 25, "offset": 40},
    {"filters": [("isic_division", "==", "56")], "limit": 7, "offset": 3},
]


def _reference(frame: gpd.GeoDataFrame, q: dict) -> pd.DataFrame:
    """The same query done by pandas on the frame as written (independent of any store)."""
    keep = np.ones(len(frame), dtype=bool)
    for col, op, value in q.get("filters", []):
        s = frame[col]
        if op == "==":
            m = s == value
        elif op == "!=":
            m = (s != value) & s.notna()
        elif op == "in":
            m = s.isin(value)
        elif op == "not in":
            m = ~s.isin(value)
        elif op == ">=":
            m = s >= value
        elif op == "<":
            m = s < value
        elif op == "is null":
            m = s.isna()
        else:
            m = s.notna()
        keep &= np.asarray(pd.Series(m).fillna(False), dtype=bool)
    if "bbox" in q:
        minx, miny, maxx, maxy = q["bbox"]
        b = frame.geometry.bounds
        keep &= (
            (b.maxx >= minx) & (b.minx <= maxx) & (b.maxy >= miny) & (b.miny <= maxy)
        ).to_numpy()
    return frame[keep]


@pytest.mark.parametrize("q", QUERIES, ids=[f"q{i}" for i in range(len(QUERIES))])
def test_pushdown_returns_exactly_the_matching_rows(opener, q):
    ws = opener()
    frame = _firms(3000, seed=3)
    ws.add_dataset("firms", frame, name="firms")
    kwargs = {k: v for k, v in q.items() if k in ("filters", "bbox", "columns", "limit", "offset")}
    got = ws.read("firms", **kwargs)
    ref = _reference(frame, q)
    if "limit" in q:  # paging follows the store's order: compare against the full result
        full = ws.read("firms", filters=q.get("filters"), bbox=q.get("bbox"))
        assert set(full["firm_id"]) == set(ref["firm_id"])
        ids = full["firm_id"].iloc[q["offset"] : q["offset"] + q["limit"]].tolist()
        assert got["firm_id"].tolist() == ids
    else:
        assert sorted(got["firm_id"]) == sorted(ref["firm_id"])
    cols = q.get("columns") or [c for c in frame.columns if c != "geometry"]
    assert list(got.columns) == [*cols, "geometry"]
    count = ws.count_collection("firms", bbox=q.get("bbox"), filters=q.get("filters"))
    assert count == len(ref)
    # the same rows in the working CRS, from the stored x, y
    working = ws.read("firms", crs="working", **kwargs)
    assert working["firm_id"].tolist() == got["firm_id"].tolist()


def test_both_backends_return_identical_frames(tmp_path, postgres_url):
    emb = Opener("embedded", tmp_path, None)()
    pgw = Opener("postgis", tmp_path, postgres_url)("pg")
    frame = _firms(2500, seed=5)
    for ws in (emb, pgw):
        ws.add_dataset("firms", frame, name="firms", working_crs=UTM14)
        ws.add_dataset("boundaries", _regions(), name="regions")
    for q in [{}, *QUERIES, {"crs": "working"}, {"geometry": False}]:
        a, b = emb.read("firms", **q), pgw.read("firms", **q)
        assert type(a) is type(b)
        pd.testing.assert_frame_equal(pd.DataFrame(a).drop(columns="geometry", errors="ignore"),
                                      pd.DataFrame(b).drop(columns="geometry", errors="ignore"))  # fmt: skip
        if isinstance(a, gpd.GeoDataFrame):
            assert a.crs == b.crs and a.geometry.geom_equals_exact(b.geometry, 0).all()
    ra, rb = emb.read("regions"), pgw.read("regions")
    assert ra.geometry.geom_equals_exact(rb.geometry, 0).all()
    pd.testing.assert_frame_equal(pd.DataFrame(ra.drop(columns="geometry")),
                                  pd.DataFrame(rb.drop(columns="geometry")))  # fmt: skip
    assert emb.collection_columns("firms") == pgw.collection_columns("firms")
    assert emb.store.schema(emb.dataset("firms").layer).field("founded").type == (
        pgw.store.schema(pgw.dataset("firms").layer).field("founded").type
    )


def test_bad_filters_raise_clean_errors(opener):
    ws = opener()
    ws.add_dataset("firms", _firms(20), name="firms")
    with pytest.raises(InvalidInput, match="no such column"):
        ws.read("firms", filters=[("nope", "==", 1)])
    with pytest.raises(InvalidInput, match="operator"):
        ws.read("firms", filters=[("firm_id", "~", "x")])
    with pytest.raises(InvalidInput, match="unknown column"):
        ws.read("firms", columns=["nope"])
    assert len(ws.read("firms")) == 20  # the store is still usable


# -- disclosure --------------------------------------------------------------------------------
def test_visibility_column_is_kept(opener):
    ws = opener()
    ws.add_dataset("firms", _firms(20), name="firms")
    ws.add_dataset("boundaries", _regions(), name="regions")
    ws._store_dataset(
        "boundaries",
        _regions(),
        dataset_id="secret_regions",
        name="secret regions",
        source_crs=None,
        working_crs=None,
        source=None,
        visibility="private",
        owner="alice",
    )
    again = opener()
    assert again.dataset("firms").visibility == "private"  # firm registers default private
    assert again.dataset("regions").visibility == "public"
    secret = again.dataset("secret_regions")
    assert (secret.visibility, secret.owner) == ("private", "alice")


# -- analyses ----------------------------------------------------------------------------------
def _register(seed: int = 0) -> gpd.GeoDataFrame:
    """Two tight groups plus scattered firms near León (lon/lat), ISIC codes."""
    rng = np.random.default_rng(seed)
    centre = np.array([206_000.0, 2_338_000.0])
    xy = np.vstack(
        [
            centre + rng.normal(0, 400, (250, 2)),
            centre + [6000, -5000] + rng.normal(0, 250, (150, 2)),
            centre + rng.uniform(-14_000, 14_000, (200, 2)),
        ]
    )
    n = len(xy)
    lon, lat = Transformer.from_crs(UTM14, 4326, always_xy=True).transform(xy[:, 0], xy[:, 1])
    codes = np.where(np.arange(n) < 250, "1520", rng.choice(["5610", "2610", "0111"], n))
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"F{i:04d}" for i in range(n)],
            "sector_code": codes,
            "isic_section": np.where(pd.Series(codes).str[:2] == "56", "I", "C"),
            "isic_division": pd.Series(codes).str[:2].to_numpy(),
            "employees": rng.integers(1, 60, n).astype(float),
            "founded": pd.array(rng.integers(1995, 2025, n), dtype="Int64"),
            "women_led": rng.random(n) < 0.4,
            "informal": rng.random(n) < 0.3,
        },
        geometry=shapely.points(lon, lat),
        crs="EPSG:4326",
    )


def _strip(value):
    """An analysis result without what differs per run (ids, times, collection ids)."""
    if isinstance(value, dict):
        return {
            k: _strip(v)
            for k, v in value.items()
            if k not in ("run_id", "created", "collections", "inputs")
        }
    if isinstance(value, list):
        return [_strip(v) for v in value]
    if isinstance(value, float):
        return round(value, 9)
    return value


def test_clusters_and_specialisation_agree_across_backends(tmp_path, postgres_url):
    from geocluster.analyses.clusters import run_clusters
    from geocluster.analyses.specialization import run_specialization
    from geocluster.clustering import GridDBSCAN

    results = {}
    for backend in BACKENDS:
        ws = Opener(backend, tmp_path, postgres_url)(backend)
        ws.add_dataset("firms", _register(), name="firms", working_crs=UTM14)
        ws.add_dataset("boundaries", _regions(), name="regions", working_crs=UTM14)
        clusters = run_clusters(ws, firms="firms", eps_m=300, min_samples=10)
        spec = run_specialization(ws, firms="firms", boundaries="regions", bootstrap=20, seed=1)
        labels = ws.read_run(clusters["run_id"]).set_index("firm_id")["cluster_id"]
        results[backend] = (_strip(clusters), _strip(spec), labels, ws)
        # the embedded store reads each firm's stored lon/lat for the labels layer; the
        # database keeps no covering column, so its labels come from the working x, y
        assert (ws.read_lonlat("firms") is None) == (backend == "postgis")
    (c_e, s_e, l_e, ws_e), (c_p, s_p, l_p, _) = results["embedded"], results["postgis"]
    assert c_p == c_e and s_p == s_e
    pd.testing.assert_series_equal(l_e.sort_index(), l_p.sort_index())
    # and both are the estimator's answer on the working coordinates (independent reference)
    firms = ws_e.read("firms", crs="working")
    ref = GridDBSCAN(300, min_samples=10).fit(np.column_stack([firms.geometry.x, firms.geometry.y]))
    assert c_p["n_clusters"] == ref.n_clusters_ >= 2
    assert list(l_p.loc[firms.firm_id]) == list(ref.labels_)
    assert sum(r["count"] for r in s_p["rows"]) == 600 - s_p["outside"]


# -- PostGIS only: migration, tiles, roles, wiring ---------------------------------------------
def _frames_equal(a, b) -> None:
    pd.testing.assert_frame_equal(pd.DataFrame(a).drop(columns="geometry", errors="ignore"),
                                  pd.DataFrame(b).drop(columns="geometry", errors="ignore"))  # fmt: skip
    if isinstance(a, gpd.GeoDataFrame):
        assert a.geometry.geom_equals_exact(b.geometry, 0).all()


def test_copy_workspace_embedded_to_postgis_and_back(tmp_path, postgres_url):
    from geocluster.store.migrate_pg import copy_workspace

    src = Opener("embedded", tmp_path, None)("src")
    src.add_dataset("firms", _firms(300, seed=1), name="firms", working_crs=UTM14)
    src.add_dataset("firms", _firms(200, seed=2), name="firms", working_crs=UTM14)
    src.add_dataset("boundaries", _regions(), name="regions")
    src.add_dataset("indicators", pd.DataFrame({"region_id": ["R00"], "gdp": [1.0]}), name="gdp")
    src.delete("firms@1")  # a gap in the versions must stay a gap
    src.add_dataset("firms", _firms(100, seed=3), name="firms", working_crs=UTM14)
    run = src.save_run(
        "clusters",
        params={"working_crs": UTM14},
        inputs=["firms@2"],
        layers={"labels": _firms(40)[["firm_id", "geometry"]], "table": pd.DataFrame({"a": [1]})},
        summary={"n": 1},
    )
    pg = Opener("postgis", tmp_path, postgres_url)("pg")
    counts = copy_workspace(src, pg)
    assert counts == {"versions": 4, "runs": 1, "rasters": 0, "skipped": 0}
    assert copy_workspace(src, pg)["skipped"] == 5  # idempotent
    back = Opener("embedded", tmp_path, None)("back")
    copy_workspace(pg, back)
    for ws in (pg, back):
        assert [v.version for v in ws.versions("firms")] == [2, 3]
        for ref in ("firms@2", "firms@3", "regions", "gdp"):
            a, b = src.dataset(ref), ws.dataset(ref)
            assert a.to_dict() == b.to_dict()
            _frames_equal(src.read(ref), ws.read(ref))
            _frames_equal(src.read(ref, crs="working"), ws.read(ref, crs="working"))
        assert ws.run(run.id).to_dict() == src.run(run.id).to_dict()
        _frames_equal(src.read_run(run.id), ws.read_run(run.id))
        _frames_equal(src.read_run(run.id, "table"), ws.read_run(run.id, "table"))
    with pytest.raises(InvalidInput, match="same"):
        copy_workspace(pg, pg)


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The WebMercatorQuad tile holding a point (the slippy-map formula)."""
    n = 1 << z
    lat_r = np.radians(lat)
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - np.arcsinh(np.tan(lat_r)) / np.pi) / 2.0 * n)
    return x, y


def test_postgis_tile_has_the_embedded_layer_name_and_fields(tmp_path, postgres_url):
    from api.tiling import ShapeIndex, TileOptions, tile_bounds_lonlat

    ws = Opener("postgis", tmp_path, postgres_url)()
    ws.add_dataset("boundaries", _regions(), name="regions")
    frame = ws.read_collection("regions")
    shapes = ShapeIndex(frame, "default")
    layer = ws.dataset("regions").layer
    minx, miny, maxx, maxy = frame.total_bounds
    cells = [(3, 0.5, 0.5), (9, 0.5, 0.5), (11, 0.5, 0.5), (12, 0.3, 0.7), (13, 0.1, 0.1)]
    tiles = 0
    for z, fx, fy in cells:  # tiles over the whole area, a region edge and a corner
        x, y = _tile_of(minx + fx * (maxx - minx), miny + fy * (maxy - miny), z)
        west, south, east, north = tile_bounds_lonlat(z, x, y)
        assert ws.count_collection("regions", bbox=(west, south, east, north)) > 0
        mine = postgis_tile(ws.store, layer, z, x, y, extent=4096, buffer=64)
        theirs = shapes.tile(z, x, y, TileOptions(extent=4096, buffer=64))
        if not theirs:
            assert mine == b""
            continue
        tiles += 1
        a = mapbox_vector_tile.decode(mine)
        b = mapbox_vector_tile.decode(theirs)
        assert set(a) == set(b) == {"default"}
        assert a["default"]["extent"] == b["default"]["extent"] == 4096
        fa = {f["properties"]["region_id"]: f for f in a["default"]["features"]}
        fb = {f["properties"]["region_id"]: f for f in b["default"]["features"]}
        assert set(fa) == set(fb)
        for rid, f in fa.items():
            assert f["properties"] == fb[rid]["properties"]  # same fields, nulls left out
            ga = shapely.geometry.shape(f["geometry"])
            gb = shapely.geometry.shape(fb[rid]["geometry"])
            # same clipped shape up to the tile grid (a few units of 4096 per side)
            assert ga.symmetric_difference(gb).area <= 0.01 * max(gb.area, 1) + 4096 * 8
    assert tiles >= 3


def _psql(url: str, path: Path) -> None:
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )


def test_read_only_role_reads_published_views_and_no_firm_table(tmp_path, pg_cluster):
    base = pg_cluster.admin_url.rsplit("/", 1)[0]
    with psycopg.connect(pg_cluster.admin_url, autocommit=True) as con:
        con.execute("CREATE DATABASE geocluster_roles")
    admin = f"{base}/geocluster_roles"
    _psql(admin, REPO / "geocluster" / "store" / "postgis_roles.sql")
    _psql(admin, REPO / "geocluster" / "store" / "postgis_roles.sql")  # re-runnable
    host = base.split("@", 1)[1]
    service = f"postgresql://geocluster_service@{host}/geocluster_roles"
    reader = f"postgresql://geocluster_reader@{host}/geocluster_roles"
    ws = Workspace(
        tmp_path / "ws", store_url=f"{service}?schema=geocluster&published=geocluster_published"
    )
    ws.add_dataset("firms", _firms(30), name="firms")
    ws.add_dataset("boundaries", _regions(), name="regions")
    ws.add_dataset("boundaries", _regions().iloc[:5], name="regions")  # the view follows v2
    firm_table = ws.dataset("firms").layer
    with psycopg.connect(reader, autocommit=True) as con:
        rows = con.execute(
            "SELECT region_id, ST_AsText(geometry) FROM geocluster_published.published_regions"
        ).fetchall()
        assert len(rows) == 5 and rows[0][1].startswith("POLYGON")
        views = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'geocluster_published'"
            )
        }
        assert views == {"published_regions"}  # no firm register is ever published
        for sql in (
            f'SELECT * FROM geocluster."{firm_table}"',
            "SELECT * FROM geocluster.gc_datasets",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                con.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("CREATE TABLE geocluster_published.x (a int)")
    with psycopg.connect(service, autocommit=True) as con:  # the service owns only its schemas
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("CREATE TABLE public.x (a int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("CREATE SCHEMA elsewhere")
    # deleting the public dataset withdraws its view
    ws.delete("regions")
    with psycopg.connect(reader, autocommit=True) as con:
        with pytest.raises(psycopg.errors.UndefinedTable):
            con.execute("SELECT 1 FROM geocluster_published.published_regions")


def test_store_setting_opens_the_api_workspace_on_postgis(tmp_path, postgres_url, monkeypatch):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    url = f"{postgres_url}?schema=t_api_{uuid.uuid4().hex[:6]}"
    assert isinstance(open_store(url), PostGISStore)
    Workspace(tmp_path / "ws", store_url=url).add_dataset("boundaries", _regions(), name="regions")
    monkeypatch.setenv("GEOCLUSTER_STORE", url)
    settings = Settings(workspace=tmp_path / "ws")
    assert settings.store == url
    with TestClient(create_app(settings)) as client:
        items = client.get("/collections/regions/items", params={"limit": 3}).json()
        assert len(items["features"]) == 3
        x, y = _tile_of(-101.8, 21.1, 10)
        tile = client.get(f"/collections/regions/tiles/WebMercatorQuad/10/{x}/{y}")
        assert tile.status_code == 200 and mapbox_vector_tile.decode(tile.content)["default"]
    assert not (tmp_path / "ws" / "catalog.sqlite").exists()  # nothing went to the folder


def test_store_errors_name_no_password(tmp_path):
    with pytest.raises(Exception) as err:
        PostGISStore("postgresql://u:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(err.value) and "cannot connect" in str(err.value)
    with pytest.raises(InvalidInput, match="schema"):
        PostGISStore("postgresql://u@127.0.0.1:1/db?schema=Bad-Name")


def test_missing_postgres_binaries_fail_with_the_install_line(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="apt-get install postgresql-15"):
        PgCluster(bin_dir=tmp_path)
    assert "postgresql-15-postgis-3" in INSTALL_HINT
