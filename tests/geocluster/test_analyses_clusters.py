"""run_clusters / run_kdistance / run_kde through a workspace, and the CLI commands."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pyproj import Transformer

from geocluster.analyses.clusters import run_clusters, run_kde, run_kdistance
from geocluster.clustering import GridDBSCAN, kde_grid
from geocluster.errors import DatasetNotFound, InvalidInput, WrongKind

REPO = Path(__file__).resolve().parents[2]
UTM14 = "EPSG:32614"


def _firms(seed: int = 0) -> gpd.GeoDataFrame:
    """Two tight groups near León plus scattered firms, stored in lon/lat."""
    rng = np.random.default_rng(seed)
    centre = np.array([220_000.0, 2_337_000.0])  # EPSG:32614
    xy = np.vstack(
        [
            centre + rng.normal(0, 400, (300, 2)),
            centre + [8000, -5000] + rng.normal(0, 250, (200, 2)),
            centre + rng.uniform(-15_000, 15_000, (250, 2)),
        ]
    )
    n = len(xy)
    lon, lat = Transformer.from_crs(UTM14, 4326, always_xy=True).transform(xy[:, 0], xy[:, 1])
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"F{i:04d}" for i in range(n)],
            "sector_code": pd.Series(
                np.where(np.arange(n) < 300, "1520", rng.choice(["5610", "2610", "0111"], n)),
                dtype="str",
            ),
            "employees": rng.integers(1, 60, n).astype(float),
            "founded": pd.array(rng.integers(1995, 2025, n), dtype="Int64"),
            "women_led": rng.random(n) < 0.4,
            "informal": rng.random(n) < 0.3,
        },
        geometry=shapely.points(lon, lat),
        crs="EPSG:4326",
    )


@pytest.fixture
def ws(workspace):
    workspace.add_dataset("firms", _firms(), name="Leon firms", working_crs=UTM14)
    return workspace


def test_run_clusters_returns_contract_shape_and_persists(ws):
    res = run_clusters(ws, firms="leon_firms", eps_m=300, min_samples=10)
    assert set(res) >= {"run_id", "n_clusters", "noise", "clusters", "params"}
    json.dumps(res, allow_nan=False)  # JSON-ready, no NaN
    # Same answer as the estimator on the working-CRS coordinates.
    firms = ws.read("leon_firms", crs="working")
    xy = np.column_stack([firms.geometry.x, firms.geometry.y])
    ref = GridDBSCAN(300, min_samples=10).fit(xy)
    assert res["n_clusters"] == ref.n_clusters_ >= 2
    assert res["noise"] == int((ref.labels_ == -1).sum())
    fc = res["clusters"]
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == res["n_clusters"]
    props = fc["features"][0]["properties"]
    for key in (
        "cluster_id", "n_firms", "employees", "dominant_sector", "area_km2",
        "density_per_km2", "women_led_share", "micro_share", "informal_share",
        "recent_share", "centroid_lon", "centroid_lat", "sector_mix",
    ):  # fmt: skip
        assert key in props
    assert isinstance(props["sector_mix"], dict)
    # Geometry in lon/lat around León.
    lon, lat = np.array(fc["features"][0]["geometry"]["coordinates"][0]).mean(axis=0)
    assert -102.5 < lon < -101 and 20.5 < lat < 21.8
    # Persisted: the primary layer is the per-firm labels, the other one the hulls.
    run = ws.run(res["run_id"])
    assert run.kind == "clusters" and run.primary == "labels"
    labels = ws.read_run(res["run_id"])
    by_firm = labels.set_index("firm_id")["cluster_id"]
    assert list(by_firm.loc[firms.firm_id]) == list(ref.labels_)
    assert {"firm_id", "cluster_id", "is_core"} <= set(labels.columns)
    hulls = ws.read_run(res["run_id"], "clusters")
    assert len(hulls) == res["n_clusters"]
    assert set(hulls.geom_type) <= {"Polygon"}
    assert res["collections"]["clusters"] in {c.id for c in ws.collections()}
    assert res["params"]["working_crs"] == UTM14


def test_run_clusters_by_sector_and_group_and_weight(ws):
    one = run_clusters(ws, firms="leon_firms", eps_m=300, min_samples=10, sectors=["15"])
    assert one["n_firms"] == 300
    assert {f["properties"]["dominant_sector"] for f in one["clusters"]["features"]} == {"15"}
    grp = run_clusters(ws, firms="leon_firms", eps_m=300, sector_group="tourism")
    assert grp["n_firms"] == int((_firms()["sector_code"] == "5610").sum())
    w = run_clusters(ws, firms="leon_firms", eps_m=300, min_samples=500, weight="employees")
    assert w["params"]["weight"] == "employees"
    assert w["n_clusters"] >= 1


def test_progress_reports_up_to_done(ws):
    seen = []
    run_clusters(ws, firms="leon_firms", eps_m=300, progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    seen.clear()
    run_kde(ws, firms="leon_firms", bandwidth=900.0, progress=lambda f, m: seen.append((f, m)))
    assert seen[-1] == (1.0, "done")


def test_run_clusters_hdbscan(ws):
    res = run_clusters(ws, firms="leon_firms", method="hdbscan", min_cluster_size=50)
    assert res["n_clusters"] >= 2
    assert res["params"]["method"] == "hdbscan"


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"eps_m": 0}, InvalidInput, "eps_m > 0"),
        ({"eps_m": -5}, InvalidInput, "eps_m > 0"),
        ({"min_samples": 0}, InvalidInput, "min_samples >= 1"),
        ({"method": "kmeans"}, InvalidInput, "method"),
        ({"method": "hdbscan", "min_cluster_size": 1}, InvalidInput, "min_cluster_size"),
        ({"sector_group": "steel"}, InvalidInput, "sector group"),
        ({"sectors": ["99"]}, InvalidInput, "none after filtering"),
        ({"sectors": ["12345"]}, InvalidInput, "unknown"),
        ({"weight": "turnover"}, InvalidInput, "weight"),
        ({"firms": "nope"}, DatasetNotFound, "nope"),
    ],
)
def test_run_clusters_errors(ws, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        run_clusters(ws, **{"firms": "leon_firms", **kwargs})
    assert ws.runs("clusters") == []


def test_wrong_kind(ws):
    ws.add_dataset("assets", _firms().rename(columns={"firm_id": "asset_id"}), name="sites")
    with pytest.raises(WrongKind):
        run_clusters(ws, firms="sites")


def test_run_kdistance(ws):
    res = run_kdistance(ws, firms="leon_firms", k=10)
    assert res["k"] == 10 and res["n_firms"] == 750
    d = res["curve"]["distance_m"]
    assert d == sorted(d) and res["knee_index"] in res["curve"]["rank"]
    assert (
        res["suggested_eps_m"] == res["knee_m"] == d[res["curve"]["rank"].index(res["knee_index"])]
    )
    assert 50 < res["knee_m"] < 3000
    curve = ws.read_run(res["run_id"], "curve")
    assert len(curve) == 750
    with pytest.raises(InvalidInput, match="k >= 1"):
        run_kdistance(ws, firms="leon_firms", k=0)


def test_run_kde_registers_a_cog_equal_to_the_grid(ws):
    res = run_kde(ws, firms="leon_firms", bandwidth=800.0, weight="employees", sectors=["15"])
    info = ws.raster(res["raster_id"])
    assert info.kind == "kde" and info.meta["units"] == "per_km2"
    firms = ws.read("leon_firms", crs="working")
    firms = firms[firms["sector_code"].str.startswith("15")]
    grid = kde_grid(
        np.column_stack([firms.geometry.x, firms.geometry.y]),
        bandwidth=800.0,
        weights=firms["employees"].to_numpy(),
    )
    with rasterio.open(info.path) as src:
        assert src.crs.to_string() == UTM14
        assert (src.width, src.height) == (res["width"], res["height"])
        assert src.nodata == -1
        assert src.transform.almost_equals(grid.transform)
        np.testing.assert_allclose(src.read(1), grid.density, rtol=1e-6, atol=1e-9)
    assert res["max_density"] == pytest.approx(grid.density.max())
    # Total employees recovered from the per-km2 surface.
    assert grid.density.sum() * (grid.cell_m / 1000) ** 2 == pytest.approx(
        firms["employees"].sum(), rel=1e-3
    )
    # A grid larger than one 256-pixel block gets internal overviews (COG).
    big = run_kde(ws, firms="leon_firms", bandwidth="scott", grid_size=600)
    with rasterio.open(ws.raster(big["raster_id"]).path) as src:
        assert max(src.width, src.height) == 600
        assert src.overviews(1)
        assert src.profile.get("tiled", False) or src.block_shapes[0][0] < src.height


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bandwidth": "wide"}, "scott"),
        ({"bandwidth": 0}, "bandwidth"),
        ({"cell_m": -1}, "cell_m"),
        ({"grid_size": 1}, "grid_size"),
    ],
)
def test_run_kde_errors(ws, kwargs, match):
    with pytest.raises(InvalidInput, match=match):
        run_kde(ws, firms="leon_firms", **kwargs)
    assert ws.rasters() == []


def test_cli_commands(ws, capsys):
    from geocluster.cli import main

    base = ["--workspace", str(ws.path), "--firms", "leon_firms"]
    assert main(["clusters", *base, "--eps-m", "300", "--min-samples", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_clusters"] >= 2 and out["run_id"]
    assert main(["clusters", *base, "--method", "hdbscan", "--min-cluster-size", "40",
                 "--sector", "15", "56"]) == 0  # fmt: skip
    assert "clusters" in capsys.readouterr().out
    assert main(["kdistance", *base, "-k", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["k"] == 5
    assert main(["kde", *base, "--bandwidth", "silverman", "--grid-size", "128", "--json"]) == 0
    kde = json.loads(capsys.readouterr().out)
    assert max(kde["width"], kde["height"]) == 128
    assert main(["kdistance", *base]) == 0
    assert "suggested --eps-m" in capsys.readouterr().out
    assert main(["kde", *base, "--bandwidth", "700", "--weight", "employees"]) == 0
    assert "employees per km2" in capsys.readouterr().out
    assert main(["clusters", *base, "--eps-m", "-1"]) == 2
    assert "eps_m: Input should be greater than 0" in capsys.readouterr().err  # as over HTTP
    assert main(["clusters", *base, "--sector-group", "steel"]) == 2


def test_demo_firms_end_to_end(workspace):
    # The bundled synthetic register through ingestion: León's footwear cluster (ISIC 15).
    workspace.ingest(
        "firms", REPO / "data" / "firms" / "mexico_demo_firms_SYNTHETIC.csv", name="demo"
    )
    res = run_clusters(workspace, firms="demo", eps_m=2000, min_samples=20, sectors=["15"])
    top = max(res["clusters"]["features"], key=lambda f: f["properties"]["n_firms"])
    lon, lat = top["properties"]["centroid_lon"], top["properties"]["centroid_lat"]
    assert abs(lon - -101.68) < 0.3 and abs(lat - 21.12) < 0.3  # León, Guanajuato
    assert top["properties"]["dominant_sector"] == "15"


@pytest.mark.parametrize("sectors", [None, ["15"], ["56", "0111"]])
def test_read_firm_table_equals_read_firms(ws, sectors):
    from geocluster.analyses._inputs import read_firm_table, read_firms

    cols = ["firm_id", "sector_code", "employees", "founded", "women_led", "informal"]
    ref = read_firms(ws, "leon_firms", columns=cols, sectors=sectors, pushdown=True).selected
    info, got = read_firm_table(ws, "leon_firms", columns=cols, sectors=sectors)
    assert info.id == "leon_firms" and len(got) == len(ref) > 0
    # the same rows, values and dtypes; the coordinates are those of read_firms' points
    pd.testing.assert_frame_equal(
        got.attrs, pd.DataFrame(ref.drop(columns="geometry")), check_exact=True
    )
    np.testing.assert_array_equal(got.xy, shapely.get_coordinates(ref.geometry.values))
    assert got.crs == ref.crs


def test_save_run_points_store_what_the_point_frame_stores(ws):
    from geocluster.analyses._inputs import read_firms

    firms = read_firms(ws, "leon_firms", columns=["firm_id"]).selected
    frame = pd.DataFrame({"firm_id": firms["firm_id"].array, "cluster_id": np.arange(len(firms))})
    params = {"working_crs": UTM14}
    as_points = ws.save_run(
        "clusters", params=params, inputs=[], layers={"labels": frame}, summary={},
        points={"labels": shapely.get_coordinates(firms.geometry.values)},
    )  # fmt: skip
    as_frame = ws.save_run(
        "clusters", params=params, inputs=[],
        layers={"labels": gpd.GeoDataFrame(frame, geometry=firms.geometry.values, crs=UTM14)},
        summary={},
    )  # fmt: skip
    a = ws.store.read_table(as_points.layers["labels"])
    b = ws.store.read_table(as_frame.layers["labels"])
    assert a.replace_schema_metadata(None).equals(b.replace_schema_metadata(None))
    assert a.schema.metadata == b.schema.metadata
    with pytest.raises(InvalidInput, match="one \\(x, y\\) per row"):
        ws.save_run(
            "clusters", params=params, inputs=[], layers={"labels": frame}, summary={},
            points={"labels": np.zeros((3, 2))},
        )  # fmt: skip


def test_clusters_analysis_does_not_import_the_kde_stack():
    import os
    import subprocess
    import sys

    # SciPy's signal package (the KDE's FFT) costs ~0.5 s of every clusters command.
    code = (
        "import sys, geocluster.analyses.clusters, geocluster.clustering as c; "
        "c.cluster_firms; print('scipy.signal' in sys.modules, callable(c.dbscan))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert out.stdout.split() == ["False", "True"]


def test_storage_lonlat_in_two_halves_equals_one_transform():
    from geocluster.workspace import storage_lonlat

    rng = np.random.default_rng(4)
    xy = np.column_stack(
        [rng.uniform(150_000, 300_000, 300_001), rng.uniform(2.2e6, 2.4e6, 300_001)]
    )
    # Reference: pyproj's transform of every point in one call.
    lon, lat = Transformer.from_crs(UTM14, 4326, always_xy=True).transform(xy[:, 0], xy[:, 1])
    got = storage_lonlat(xy, UTM14)
    np.testing.assert_array_equal(got[0], lon)
    np.testing.assert_array_equal(got[1], lat)


def test_save_run_rejects_lonlat_of_other_points(ws):
    frame = pd.DataFrame({"firm_id": ["a", "b"]})
    with pytest.raises(InvalidInput, match="lon/lat per point"):
        ws.save_run(
            "clusters", params={"working_crs": UTM14}, inputs=[], layers={"labels": frame},
            summary={}, points={"labels": np.zeros((2, 2))},
            points_lonlat={"labels": (np.zeros(3), np.zeros(3))},
        )  # fmt: skip


def test_labels_layer_puts_each_firm_at_its_stored_point(tmp_path):
    # reference: the firms' own stored geometry; the labels layer's points are those
    # points exactly (not the working coordinates transformed back), row for row by id
    from geocluster.analyses.clusters import clusters_result
    from geocluster.workspace import Workspace

    rng = np.random.default_rng(8)
    n = 3_000
    division = rng.choice(["10", "15"], n)
    frame = gpd.GeoDataFrame(
        {
            "firm_id": [f"f{i}" for i in range(n)],
            "sector_code": [d + "11" for d in division],
            "isic_division": division,
        },
        geometry=shapely.points(rng.uniform(-101.8, -101.6, n), rng.uniform(21.0, 21.1, n)),
        crs="EPSG:4326",
    )
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", frame, name="firms")
    stored = ws.read("firms").set_index("firm_id").geometry
    for sectors in (None, ["15"]):
        result = clusters_result(ws, firms="firms", sectors=sectors, eps_m=300, min_samples=5)
        labels = ws.read_run(result.run_id).set_index("firm_id")
        assert len(labels) == (n if sectors is None else int((frame.isic_division == "15").sum()))
        want = stored.loc[labels.index]
        assert shapely.equals_exact(labels.geometry.values, want.values, tolerance=0).all()
    # read_lonlat: the rows of the same filtered read, then those at the given positions
    only_15 = [("isic_division", "in", ["15"])]
    lon, lat = ws.read_lonlat("firms", filters=only_15, rows=np.array([2, 0]))
    ids = ws.read("firms", filters=only_15).firm_id.iloc[[2, 0]]
    np.testing.assert_array_equal(lon, stored.loc[ids].x.to_numpy())
    np.testing.assert_array_equal(lat, stored.loc[ids].y.to_numpy())


def test_a_national_scans_labels_are_stored_by_sector(tmp_path):
    # a run's labels layer is ordered as the register is stored (sector, then Hilbert
    # key): each row group holds one sector, so reading one sector's labels reads only
    # its row groups; every firm keeps its own label (reference: the firms by id)
    import pyarrow.parquet as pq

    from geocluster.analyses.clusters import clusters_result
    from geocluster.workspace import Workspace

    rng = np.random.default_rng(9)
    n = 60_000
    division = rng.choice(["10", "15", "46"], n)
    frame = gpd.GeoDataFrame(
        {
            "firm_id": [f"f{i}" for i in range(n)],
            "sector_code": [d + "11" for d in division],
            "isic_division": division,
        },
        geometry=shapely.points(rng.normal(-101.7, 0.05, n), rng.normal(21.05, 0.05, n)),
        crs="EPSG:4326",
    )
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", frame, name="firms")
    result = clusters_result(ws, firms="firms", by="division", eps_m=200, min_samples=20)
    layer = ws.run(result.run_id).layers["labels"]
    files = sorted((tmp_path / "ws" / "data").glob(f"{layer}.*.parquet"))
    groups = []
    for f in files:
        pf = pq.ParquetFile(f)
        col = pf.schema_arrow.names.index("sector")
        for g in range(pf.metadata.num_row_groups):
            st = pf.metadata.row_group(g).column(col).statistics
            groups.append((st.min, st.max))
    assert all(a == b for a, b in groups) and len({a for a, _ in groups}) == 3
    assert [a for a, _ in groups] == sorted(a for a, _ in groups)
    labels = ws.read_run(result.run_id).set_index("firm_id")
    assert len(labels) == n
    assert (labels.loc[frame.firm_id, "sector"].to_numpy() == division).all()
    stored = ws.read("firms").set_index("firm_id").geometry
    assert shapely.equals_exact(
        labels.geometry.values, stored.loc[labels.index].values, tolerance=0
    ).all()
    # an all-firm run's labels are in the register's order too: division, Hilbert key
    division_of = frame.set_index("firm_id").isic_division
    whole = clusters_result(ws, firms="firms", eps_m=200, min_samples=20)
    layer = ws.run(whole.run_id).layers["labels"]
    firms_order = ws.read("firms", columns=["firm_id"]).firm_id.tolist()
    seen = []
    for f in sorted((tmp_path / "ws" / "data").glob(f"{layer}.*.parquet")):
        pf = pq.ParquetFile(f)
        for g in range(pf.metadata.num_row_groups):
            ids = pf.read_row_group(g, columns=["firm_id"]).column(0).to_pylist()
            assert division_of.loc[ids].nunique() == 1
            seen += ids
    assert seen == firms_order
