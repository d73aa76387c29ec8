"""Store v2: pushdown, garbage collection, v1 migration, export, concurrency."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import subprocess
import threading
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from geocluster.errors import InvalidInput, WrongKind
from geocluster.store.export import export
from geocluster.workspace import Workspace


def _firms(n: int, seed: int = 0, divisions=("10", "15", "26", "56")) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    div = rng.choice(list(divisions), n)
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"f{seed}-{i}" for i in range(n)],
            "sector_code": [d + "20" for d in div],
            "isic_division": div,
            "employees": rng.integers(1, 50, n).astype(float),
        },
        geometry=shapely.points(rng.uniform(-101.8, -101.5, n), rng.uniform(21.0, 21.2, n)),
        crs="EPSG:4326",
    )


def test_one_sector_reads_only_its_row_groups(tmp_path):
    ws = Workspace(tmp_path / "ws")
    frame = _firms(20_000)
    info = ws.add_dataset("firms", frame, name="firms")
    ws.store.stats.reset()
    got = ws.read("firms", columns=["firm_id"], filters=[("isic_division", "in", ["15"])])
    expected = int((frame.isic_division == "15").sum())
    assert len(got) == expected
    # Rows are sorted by division and row groups never straddle two divisions, so the
    # read touched exactly that division's rows, not the register.
    assert ws.store.stats.rows_read == expected
    ws.store.stats.reset()
    ws.read("firms", columns=["firm_id"])
    assert ws.store.stats.rows_read == info.rows


def test_working_crs_read_uses_stored_xy_and_matches_reprojection(tmp_path):
    ws = Workspace(tmp_path / "ws")
    frame = _firms(500)
    ws.add_dataset("firms", frame, name="firms")
    fast = ws.read("firms", crs="working").set_index("firm_id")
    slow = ws.read("firms").to_crs(ws.dataset("firms").working_crs).set_index("firm_id")
    np.testing.assert_allclose(
        shapely.get_coordinates(fast.loc[slow.index].geometry.values),
        shapely.get_coordinates(slow.geometry.values),
        rtol=0,
        atol=1e-6,
    )


def test_bbox_read_prunes_row_groups_and_filters_exactly(tmp_path):
    ws = Workspace(tmp_path / "ws")
    rng = np.random.default_rng(3)
    n = 200_000
    frame = gpd.GeoDataFrame(
        {"asset_id": np.arange(n).astype(str), "category": "cultural"},
        geometry=shapely.points(rng.uniform(-118, -86, n), rng.uniform(14, 33, n)),
        crs="EPSG:4326",
    )
    ws.add_dataset("assets", frame, name="a")
    bbox = (-102.0, 20.0, -101.0, 21.0)
    ws.store.stats.reset()
    got = ws.read("a", bbox=bbox, columns=["asset_id"])
    inside = frame.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    assert sorted(got.asset_id) == sorted(inside.asset_id)
    assert ws.store.stats.rows_read < n / 2  # Hilbert order: a few row groups only


def test_filters_are_validated(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", _firms(10), name="firms")
    with pytest.raises(InvalidInput, match="no such column"):
        ws.read("firms", filters=[("nope", "==", 1)])
    with pytest.raises(InvalidInput, match="operator"):
        ws.read("firms", filters=[("firm_id", "LIKE", "x")])


def test_reusing_a_name_for_another_kind_is_refused(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", _firms(5), name="x")
    assets = _firms(5).rename(columns={"firm_id": "asset_id"})
    with pytest.raises(WrongKind, match="is a firms dataset"):
        ws.add_dataset("assets", assets, name="x")
    assert ws.dataset("x").kind == "firms" and ws.dataset("x").version == 1


def test_garbage_collection_removes_orphans_and_dead_writers_temps(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", _firms(5), name="keep")
    data = ws.path / "data"
    (data / "orphan-0123456789.0.parquet").write_bytes(b"not referenced")
    (data / ".tmp-999999999-x.0.parquet").write_bytes(b"dead writer")
    # A pending layer of a process that no longer exists.
    ws.catalog.insert(
        "gc_pending", {"layer": "dead-aaaa", "pid": 999999999, "host": "x", "created": "t"}
    )
    from geocluster.store.catalog import HOST

    ws.catalog.update("gc_pending", {"host": HOST}, layer="dead-aaaa")
    (data / "dead-aaaa.0.parquet").write_bytes(b"half written")
    reopened = Workspace(ws.path)
    names = sorted(p.name for p in data.iterdir())
    assert names == [p.name for p in reopened.store.layer_files(reopened.dataset("keep").layer)]
    assert reopened.catalog.select("gc_pending") == []


def test_v1_workspace_is_migrated_and_left_untouched(tmp_path):
    v1 = tmp_path / "v1"
    v1.mkdir()
    legacy = v1 / "workspace.gpkg"
    frame = _firms(30)
    pyogrio.write_dataframe(frame, legacy, layer="firms_f_v1_abcd", driver="GPKG")
    pyogrio.write_dataframe(frame.iloc[:10], legacy, layer="firms_f_v2_abcd", driver="GPKG")
    labels = frame[["firm_id", "geometry"]].assign(cluster_id=0)
    pyogrio.write_dataframe(labels, legacy, layer="run_c_labels_x", driver="GPKG")
    con = sqlite3.connect(legacy)
    con.execute(
        "CREATE TABLE gc_datasets (id TEXT, version INTEGER, name TEXT, kind TEXT, layer TEXT, "
        "rows INTEGER, crs TEXT, source_crs TEXT, working_crs TEXT, bbox TEXT, created TEXT, "
        "source TEXT, checksum TEXT, columns TEXT, rejected TEXT, rejected_count INTEGER, meta TEXT)"
    )
    for version, layer, rows in ((1, "firms_f_v1_abcd", 30), (2, "firms_f_v2_abcd", 10)):
        con.execute(
            "INSERT INTO gc_datasets VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ("f", version, "F", "firms", layer, rows, "EPSG:4326", "EPSG:4326", "EPSG:32614",
             "[0,0,1,1]", "2026-01-01", "f.csv", None, "[]", "[]", 0, '{"warnings": []}'),
        )  # fmt: skip
    con.execute(
        "CREATE TABLE gc_runs (id TEXT, kind TEXT, params TEXT, inputs TEXT, layers TEXT, "
        "primary_layer TEXT, summary TEXT, created TEXT)"
    )
    con.execute(
        "INSERT INTO gc_runs VALUES (?,?,?,?,?,?,?,?)",
        ("clusters-1", "clusters", "{}", '["f"]', '{"labels": "run_c_labels_x"}', "labels",
         "{}", "2026-01-01"),
    )  # fmt: skip
    con.commit()
    con.close()
    before = legacy.read_bytes()

    ws = Workspace(v1)
    assert ws.notice and "2 dataset version(s), 1 run(s)" in ws.notice
    assert [v.rows for v in ws.versions("f")] == [30, 10]
    assert len(ws.read("f@1")) == 30 and ws.dataset("f").version == 2
    assert len(ws.read_run("clusters-1")) == 30
    assert legacy.read_bytes() == before  # the old file is never written
    assert Workspace(v1).notice is None  # once only


def test_export_gpkg_opens_in_gdal_with_readable_layers(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", _firms(40), name="Mexico firms")
    labels = _firms(40)[["firm_id", "geometry"]].assign(cluster_id=1)
    run = ws.save_run(
        "clusters", params={}, inputs=["mexico_firms@1"], layers={"labels": labels}, summary={}
    )
    out = tmp_path / "out" / "export.gpkg"
    layers = export(ws, out, fmt="gpkg", datasets=["mexico_firms"], runs=[run.id])
    names = {name for name, _ in pyogrio.list_layers(out)}
    assert names == {"mexico_firms_v1", f"{run.id}_labels".replace("-", "_")}
    assert {x.name for x in layers} == names
    con = sqlite3.connect(out)
    desc = dict(con.execute("SELECT table_name, description FROM gpkg_contents").fetchall())
    con.close()
    assert "firms dataset mexico_firms@1" in desc["mexico_firms_v1"]
    # GDAL's own command-line reader (Debian gdal-bin, installed by `make sysdeps`).
    ogrinfo = subprocess.run(["ogrinfo", "-ro", "-so", str(out), "mexico_firms_v1"],
                             capture_output=True, text=True, check=True)  # fmt: skip
    assert "Feature Count: 40" in ogrinfo.stdout
    assert len(pyogrio.read_dataframe(out, layer="mexico_firms_v1")) == 40
    pq_dir = tmp_path / "pq"
    export(ws, pq_dir, fmt="parquet")
    assert len(gpd.read_parquet(pq_dir / "mexico_firms_v1.parquet")) == 40
    with pytest.raises(InvalidInput, match="outside the workspace"):
        export(ws, ws.path / "x.gpkg")


def _hammer(path, seed, seconds, errors):
    try:
        ws = Workspace(path)
        rng = np.random.default_rng(seed)
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            i += 1
            op = rng.integers(0, 4)
            if op == 0:
                ws.add_dataset("firms", _firms(int(rng.integers(50, 3000)), seed=i), name="shared")
            elif op == 1:
                frame = ws.read(
                    "shared", columns=["firm_id"], filters=[("isic_division", "==", "15")]
                )
                assert len(frame) >= 0
            elif op == 2:
                info = ws.dataset("shared")
                assert len(ws.read(info.ref)) == info.rows
            else:
                labels = _firms(100, seed=i)[["firm_id", "geometry"]].assign(cluster_id=0)
                run = ws.save_run(
                    "clusters", params={}, inputs=[], layers={"l": labels}, summary={}
                )
                assert len(ws.read_run(run.id)) == 100
    except Exception as exc:  # reported to the parent, which fails the test
        errors.append(f"{type(exc).__name__}: {exc}")


def _process_hammer(path, seed, seconds, queue):
    errors: list[str] = []
    _hammer(path, seed, seconds, errors)
    queue.put(errors)


@pytest.mark.slow
def test_threads_and_processes_writing_and_reading_never_corrupt(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", _firms(100), name="shared")
    errors: list[str] = []
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_process_hammer, args=(ws.path, 100 + k, 8.0, queue)) for k in range(2)
    ]
    threads = [threading.Thread(target=_hammer, args=(ws.path, k, 8.0, errors)) for k in range(4)]
    for p in procs:
        p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        errors.extend(queue.get(timeout=120))
        p.join()
    assert errors == []
    final = Workspace(ws.path)
    versions = final.versions("shared")
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    for v in versions:
        assert len(final.read(v.ref)) == v.rows
    for run in final.runs():
        assert len(final.read_run(run.id)) == 100
    assert final.catalog.integrity_check() == "ok"
    referenced = {p.name for v in versions for p in final.store.layer_files(v.layer)}
    referenced |= {p.name for r in final.runs() for lay in r.layers.values()
                   for p in final.store.layer_files(lay)}  # fmt: skip
    assert {p.name for p in (ws.path / "data").iterdir()} == referenced


def test_deleted_dataset_files_are_removed(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", _firms(5), name="a")
    ws.add_dataset("firms", _firms(6), name="a")
    kept = ws.store.layer_files(ws.dataset("a@2").layer)
    ws.delete("a@1")
    assert sorted((ws.path / "data").iterdir()) == sorted(kept)
    assert isinstance(ws.read("a"), pd.DataFrame)


def test_one_sector_clusters_read_only_that_sector_and_match_a_full_read(tmp_path):
    from geocluster.analyses.clusters import clusters_result
    from geocluster.clustering.dbscan import GridDBSCAN

    ws = Workspace(tmp_path / "ws")
    frame = _firms(20_000)
    frame["founded"] = pd.array(np.arange(20_000) % 40 + 1980, dtype="Int64")
    ws.add_dataset("firms", frame, name="firms")
    ws.store.stats.reset()
    result = clusters_result(ws, firms="firms", sectors=["15"], eps_m=300, min_samples=10)
    expected = int((frame.isic_division == "15").sum())
    # The analysis read that division's row groups only (no full-register read):
    # the firms' coordinates and attributes, then, while they were clustered, their
    # stored lon/lat for the labels layer; each read that division's rows, no other.
    assert ws.store.stats.row_groups_read == 2
    assert ws.store.stats.rows_read == 2 * expected
    # Same partition as clustering that division out of a full read (v1's path).
    full = ws.read("firms", crs="working")
    sub = full[full.isic_division == "15"]
    ref = GridDBSCAN(300, min_samples=10).fit(shapely.get_coordinates(sub.geometry.values))
    assert result.body["n_clusters"] == ref.n_clusters_
    assert result.body["noise"] == int((ref.labels_ == -1).sum())


@pytest.mark.parametrize("level", [1, 5, 12, 16])
def test_compiled_hilbert_equals_geopandas(level):
    # reference: geopandas' NumPy implementation of the same public-domain algorithm
    from geopandas.tools.hilbert_curve import _encode

    from geocluster.store._hilbert import encode

    rng = np.random.default_rng(level)
    n = (1 << level) - 1
    x = rng.integers(0, n + 1, 150_000).astype(np.uint32)  # above encode's NumPy cut-off
    y = rng.integers(0, n + 1, 150_000).astype(np.uint32)
    x[:4], y[:4] = [0, n, n, 0], [0, n, 0, n]  # the grid's corners
    got = encode(level, x, y)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, _encode(level, x, y))
    assert len(np.unique(got)) == len(np.unique(np.column_stack([x, y]), axis=0))
    with pytest.raises(ValueError):
        encode(17, x, y)


@pytest.mark.parametrize("level", [1, 8, 16])
def test_compiled_lonlat_hilbert_equals_numpy_steps(level):
    # reference: the NumPy steps of hilbert_order (nan_to_num, clip, scale, truncate)
    # followed by geopandas' encoder
    from geopandas.tools.hilbert_curve import _encode

    from geocluster.store import geoparquet as gp
    from geocluster.store._hilbert import SMALL

    rng = np.random.default_rng(level)
    m = SMALL + 5_000  # the compiled path
    lon, lat = rng.uniform(-200, 200, m), rng.uniform(-100, 100, m)
    # cell edges, bounds, non-finite values, negative zero
    special = [np.nan, np.inf, -np.inf, -180.0, 180.0, -0.0, 0.0, 179.99999999999997]
    lon[: len(special)], lat[: len(special)] = special, special[::-1]
    n = (1 << level) - 1
    edges = (np.arange(50) / n) * 360.0 - 180.0
    lon[100:150], lat[100:150] = edges, edges / 2.0
    cx = np.clip(np.nan_to_num(lon, nan=0.0, posinf=180.0, neginf=-180.0), -180.0, 180.0)
    cy = np.clip(np.nan_to_num(lat, nan=0.0, posinf=90.0, neginf=-90.0), -90.0, 90.0)
    ix = np.clip(((cx + 180.0) / 360.0 * n), 0, n).astype(np.uint32)
    iy = np.clip(((cy + 90.0) / 180.0 * n), 0, n).astype(np.uint32)
    got = gp.hilbert_order(lon, lat, level=level)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, _encode(level, ix, iy))
    # and the small-layer (NumPy) path agrees on a slice
    np.testing.assert_array_equal(gp.hilbert_order(lon[:500], lat[:500], level=level), got[:500])


def test_points_written_from_coordinates_equal_points_written_from_geometries(tmp_path):
    # reference: the same layer written from shapely points by the general path
    import pyarrow.parquet as pq

    from geocluster.store import geoparquet as gp

    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(-110, -90, 500), rng.uniform(15, 30, 500)
    attrs = pd.DataFrame({"firm_id": [f"F{i}" for i in range(500)], "k": rng.integers(0, 5, 500)})
    geo = gpd.GeoDataFrame(attrs.copy(), geometry=gpd.points_from_xy(lon, lat), crs=4326)
    a = gp.write_layer(geo, tmp_path, "a", sort_key="k")
    b = gp.write_layer(attrs, tmp_path, "b", sort_key="k", points_lonlat=(lon, lat))
    ta = pq.read_table(tmp_path / a.files[0])
    tb = pq.read_table(tmp_path / b.files[0])
    assert ta.equals(tb)
    assert (a.bbox, a.geometry_types) == (b.bbox, b.geometry_types)
    lat2 = lat.copy()
    lat2[7] = np.nan  # a missing point becomes a null geometry, not a bogus one
    c = gp.write_layer(attrs, tmp_path, "c", points_lonlat=(lon, lat2))
    tc = pq.read_table(tmp_path / c.files[0])
    assert tc["geometry"].null_count == 1
    with pytest.raises(ValueError):
        gp.write_layer(attrs, tmp_path, "d", points_lonlat=(lon[:3], lat[:3]))


# -- the write path of a national register's per-firm layers -----------------------------------
def _varwidth_columns(n: int, rng) -> dict:
    import pyarrow as pa

    ids = [f"F{i}-{'x' * int(rng.integers(0, 12))}" for i in range(n)]
    with_nulls = [None if i % 97 == 0 else s for i, s in enumerate(ids)]
    return {
        "string": pa.array(ids, type=pa.string()),
        "large_string": pa.array(ids, type=pa.large_string()),
        "binary": pa.array([s.encode() for s in ids], type=pa.binary()),
        "large_binary": pa.array([s.encode() for s in ids], type=pa.large_binary()),
        "empty_strings": pa.array(["" for _ in range(n)], type=pa.large_string()),
        "nulls": pa.array(with_nulls, type=pa.large_string()),
        "numbers": pa.array(rng.integers(-5, 5, n)),
    }


@pytest.mark.parametrize("n", [1_000, 150_000])
def test_take_rows_equals_arrows_take(n):
    # take_rows combines chunks and checks the indices once; the values must not change
    # reference: pyarrow.compute.take (Arrow's own gather), column by column
    import pyarrow as pa

    from geocluster.store import geoparquet as gp

    rng = np.random.default_rng(11)
    cols = _varwidth_columns(n, rng)
    whole = pa.table(cols)
    # a chunked table (row groups read one by one) and a sliced one (offsets not at 0)
    chunked = pa.concat_tables([whole.slice(0, n // 3), whole.slice(n // 3)])
    sliced = pa.table({k: v.slice(5) for k, v in cols.items()})
    for table in (whole, chunked, sliced):
        m = table.num_rows
        for order in (rng.permutation(m), rng.integers(0, m, m // 2), np.arange(m)[::-1]):
            got = gp.take_rows(table, order)
            want = table.take(pa.array(order))
            assert got.schema == want.schema
            assert got.equals(want)
    with pytest.raises(IndexError):
        gp.take_rows(whole, np.array([0, n]))
    with pytest.raises(IndexError):
        gp.take_rows(whole, np.array([-1]))


def _labels_frame(n: int, rng) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    lon, lat = rng.uniform(-110, -90, n), rng.uniform(15, 30, n)
    frame = pd.DataFrame(
        {
            "firm_id": pd.array([f"F{i}" for i in range(n)], dtype="str"),
            "cluster_id": rng.integers(-1, 40, n),
            "is_core": rng.random(n) < 0.5,
        }
    )
    return frame, lon, lat


@pytest.mark.parametrize("n", [3_000, 130_000])
def test_a_point_layout_writes_the_same_files_as_the_points(tmp_path, n):
    # reference: write_layer from (lon, lat), which the GeoDataFrame test above ties to
    # the general path; a layout computed ahead (ids held) must give the very same bytes
    from geocluster.store import geoparquet as gp

    rng = np.random.default_rng(5)
    frame, lon, lat = _labels_frame(n, rng)
    lat[::501] = np.nan  # missing points: null geometries either way
    xy = (lon * 1e5, lat * 1e5)
    a = gp.write_layer(frame, tmp_path, "a", working_xy=xy, points_lonlat=(lon, lat))
    layout = gp.point_layout(lon, lat, working_xy=xy, columns=frame[["firm_id"]])
    b = gp.write_layer(frame, tmp_path, "b", working_xy=xy, points_lonlat=layout)
    assert len(a.files) == len(b.files) >= 1
    for fa, fb in zip(a.files, b.files, strict=True):
        assert (tmp_path / fa).read_bytes() == (tmp_path / fb).read_bytes()
    assert (a.bbox, a.geometry_types, a.rows) == (b.bbox, b.geometry_types, b.rows)
    # a layout is of these rows: other ids, other coordinates or a sort key are refused
    other = frame.assign(firm_id=pd.array([f"G{i}" for i in range(n)], dtype="str"))
    with pytest.raises(ValueError, match="firm_id"):
        gp.write_layer(other, tmp_path, "c", working_xy=xy, points_lonlat=layout)
    with pytest.raises(ValueError, match="working_xy"):
        gp.write_layer(frame, tmp_path, "d", working_xy=(xy[1], xy[0]), points_lonlat=layout)
    with pytest.raises(ValueError, match="sort_key"):
        gp.write_layer(
            frame, tmp_path, "e", working_xy=xy, points_lonlat=layout, sort_key="cluster_id"
        )
    with pytest.raises(ValueError, match="one lon"):
        gp.write_layer(frame.iloc[:10], tmp_path, "f", working_xy=xy, points_lonlat=layout)


@pytest.mark.parametrize("n", [3_000, 130_000])
def test_a_layout_of_rows_in_order_takes_nothing_and_writes_the_same_files(tmp_path, n):
    # reference: write_layer with sort_key from shuffled rows (every column gathered);
    # the same rows handed over sorted by (sector, Hilbert key) already, with their
    # sector codes, are recognised as in order and give the very same bytes
    import pyarrow.parquet as pq

    from geocluster.store import geoparquet as gp

    rng = np.random.default_rng(7)
    frame, lon, lat = _labels_frame(n, rng)
    frame["sector"] = pd.array(rng.choice(["01", "15", "46", ""], n), dtype="str")
    lat[::701] = np.nan
    xy = (lon * 1e5, lat * 1e5)
    a = gp.write_layer(frame, tmp_path, "a", working_xy=xy, points_lonlat=(lon, lat),
                       sort_key="sector")  # fmt: skip
    codes, _ = pd.factorize(frame["sector"], sort=True)
    shuffled = gp.point_layout(lon, lat, working_xy=xy, columns=frame[["firm_id"]],
                               sort_codes=codes)  # fmt: skip
    assert not shuffled.identity
    # the rows in the layer's order: a register as the store keeps it
    order = shuffled.order
    frame_s = frame.iloc[order].reset_index(drop=True)
    lon_s, lat_s, xy_s = lon[order], lat[order], (xy[0][order], xy[1][order])
    layout = gp.point_layout(lon_s, lat_s, working_xy=xy_s, columns=frame_s[["firm_id"]],
                             sort_codes=codes[order])  # fmt: skip
    assert layout.identity
    np.testing.assert_array_equal(layout.order, np.arange(n))
    b = gp.write_layer(frame_s, tmp_path, "b", working_xy=xy_s, points_lonlat=layout)
    assert len(a.files) == len(b.files) >= 1
    for fa, fb in zip(a.files, b.files, strict=True):
        assert (tmp_path / fa).read_bytes() == (tmp_path / fb).read_bytes()
    # row groups start at every change of sector, as sort_key makes them
    for f in b.files:
        meta = pq.ParquetFile(tmp_path / f).metadata
        col = pq.ParquetFile(tmp_path / f).schema_arrow.names.index("sector")
        for g in range(meta.num_row_groups):
            st = meta.row_group(g).column(col).statistics
            assert st.min == st.max
    with pytest.raises(ValueError, match="sort_codes"):
        gp.point_layout(lon, lat, sort_codes=codes[:-1])


def test_coordinates_are_stored_uncompressed_with_statistics(tmp_path):
    # the codecs and statistics as written, read back with pyarrow's own metadata
    import pyarrow.parquet as pq

    from geocluster.store import geoparquet as gp

    frame, lon, lat = _labels_frame(2_000, np.random.default_rng(2))
    w = gp.write_layer(frame, tmp_path, "a", working_xy=(lon, lat), points_lonlat=(lon, lat))
    meta = pq.ParquetFile(tmp_path / w.files[0]).metadata.row_group(0)
    cols = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    plain = {"x", "y", "bbox.xmin", "bbox.ymin", "bbox.xmax", "bbox.ymax"}
    assert {c for c, m in cols.items() if m.compression == "UNCOMPRESSED"} == plain
    assert {m.compression for c, m in cols.items() if c not in plain} == {"ZSTD"}
    # the covering's statistics prune row groups; the WKB's would be dead weight
    assert all(cols[c].is_stats_set for c in plain | {"firm_id", "cluster_id"})
    assert not cols["geometry"].is_stats_set
    stats = cols["bbox.xmin"].statistics
    assert (stats.min, stats.max) == (lon.min(), lon.max())
