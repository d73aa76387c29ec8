"""Support institutions: ingest from files (CSV, GeoJSON), CLI, and reach/gaps per cluster.

The reach/gap expectations are a hand computation on a toy in EPSG:32614 (distances
written out below), independent of the module's STRtree queries.
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geocluster.assets.institutions import gap_table, institutions_within_reach
from geocluster.cli import main
from geocluster.errors import InvalidInput, MissingColumns
from geocluster.ingest import prepare
from geocluster.sectors.osm import INSTITUTION_TYPES
from geocluster.workspace import Workspace
from tests.conftest import DATA

X0, Y0 = 500_000.0, 2_000_000.0  # EPSG:32614 (UTM 14N), metres


def _pt(x, y):
    return shapely.Point(X0 + x, Y0 + y)


@pytest.fixture
def toy():
    clusters = gpd.GeoDataFrame(
        {"cluster_id": ["A", "B", "C"]},
        geometry=[shapely.box(X0, Y0, X0 + 100, Y0 + 100), _pt(1000, 0), _pt(5000, 5000)],
        crs="EPSG:32614",
    )
    inst = gpd.GeoDataFrame(
        {
            "institution_id": ["t1", "a1", "u1", "c1", "r1"],
            "type": ["training", "business_association", "university", "chamber", "research"],
        },
        geometry=[_pt(150, 50), _pt(50, 50), _pt(1000, 300), _pt(1400, 0), _pt(5000, 5600)],
        crs="EPSG:32614",
    )
    return clusters, inst


def test_reach_and_gaps_hand_computed(toy):
    clusters, inst = toy
    out = institutions_within_reach(clusters, inst, radius_m=500).set_index("cluster_id")
    # Hand distances (m), cluster -> institution:
    #   A (square 0..100): t1 50, a1 0 (inside), u1 hypot(900,200)=921.95, c1 1300,
    #                      r1 hypot(4900,5500)
    #   B (1000,0): t1 hypot(850,50)=851.47, a1 hypot(950,50)=951.31, u1 300, c1 400
    #   C (5000,5000): r1 600, t1 hypot(4850,4950)=6930.0, c1 hypot(3600,5000)=6161.17,
    #                  a1 hypot(4950,4950)=7000.36
    assert out.loc["A", "n_institutions"] == 2
    assert out.loc["A", ["n_training", "n_business_association"]].tolist() == [1, 1]
    assert out.loc["B", "n_institutions"] == 2
    assert out.loc["B", ["n_university", "n_chamber", "n_training"]].tolist() == [1, 1, 0]
    assert out.loc["C", "n_institutions"] == 0 and out.loc["C", "n_research"] == 0
    np.testing.assert_allclose(
        out["nearest_training_m"].to_numpy(),
        [50.0, math.hypot(850, 50), math.hypot(4850, 4950)],
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        out["nearest_association_m"].to_numpy(),
        [0.0, 400.0, math.hypot(3600, 5000)],
        rtol=1e-12,
    )
    assert out["training_gap"].tolist() == [False, True, True]
    assert out["association_gap"].tolist() == [False, False, True]
    assert out["gap"].tolist() == [False, True, True]
    assert {f"n_{t}" for t in INSTITUTION_TYPES} <= set(out.columns)
    gaps = gap_table(out.reset_index())
    assert gaps.to_dict("records") == [
        {"cluster_id": "B", "missing": "training"},
        {"cluster_id": "C", "missing": "training, association"},
    ]
    # a radius of 1000 m reaches t1 from B (851 m): B's training gap closes
    wide = institutions_within_reach(clusters, inst, radius_m=1000).set_index("cluster_id")
    assert not wide.loc["B", "gap"] and wide.loc["A", "n_institutions"] == 3  # + u1


def test_reach_custom_groups_and_reprojection(toy):
    clusters, inst = toy
    out = institutions_within_reach(
        clusters, inst.to_crs(4326), radius_m=650, gap_groups={"research": ["research"]}
    ).set_index("cluster_id")
    # C reaches r1 at 600 m; A and B do not (>= 4 km)
    assert out["research_gap"].tolist() == [True, True, False]
    np.testing.assert_allclose(out.loc["C", "nearest_research_m"], 600.0, atol=1e-3)


def test_reach_refuses_bad_input(toy):
    clusters, inst = toy
    with pytest.raises(InvalidInput, match="metric"):
        institutions_within_reach(clusters.to_crs(4326), inst, radius_m=500)
    with pytest.raises(InvalidInput, match="positive"):
        institutions_within_reach(clusters, inst, radius_m=0)
    with pytest.raises(InvalidInput, match="unknown institution types"):
        institutions_within_reach(clusters, inst, radius_m=5, gap_groups={"x": ["school"]})
    bad = inst.assign(type=["training", "school", "research", "chamber", "finance"])
    with pytest.raises(InvalidInput, match="school"):
        institutions_within_reach(clusters, bad, radius_m=500)


def test_no_institutions_at_all_is_a_gap_everywhere(toy):
    clusters, inst = toy
    out = institutions_within_reach(clusters, inst.iloc[:0], radius_m=500)
    assert out["gap"].all() and out["nearest_training_m"].isna().all()
    assert (out["n_institutions"] == 0).all()


# ------------------------------------------------------------------------- ingest
CSV = (
    "id,nombre,tipo,sectores,latitud,longitud\n"
    'I1,Centro de Capacitación Textil,capacitación,"13, 14",17.06,-96.72\n'
    "I2,Cámara de Comercio de Oaxaca,Cámara de comercio,,17.07,-96.73\n"
    "I3,Laboratorio de calidad,laboratorio,10;11,17.08,-96.70\n"
    "I4,Financiera Rural,microfinanciera,,17.05,-96.71\n"
    "I5,Escuela sin tipo,,,17.05,-96.71\n"
    "I6,Club deportivo,sports_club,,17.05,-96.71\n"
)


def test_csv_with_spanish_headers_and_types(tmp_path):
    path = tmp_path / "instituciones.csv"
    path.write_text(CSV, encoding="utf-8")
    prepared = prepare("institutions", path)
    f = prepared.frame.set_index("institution_id")
    assert f["type"].to_dict() == {
        "I1": "training",
        "I2": "chamber",
        "I3": "quality_lab",
        "I4": "finance",
    }
    assert f.loc["I1", "sectors"] == "13;14" and f.loc["I3", "sectors"] == "10;11"
    assert f.loc["I1", "name"] == "Centro de Capacitación Textil"  # Unicode kept
    assert f.loc["I2"].geometry.equals(shapely.Point(-96.73, 17.07))
    reasons = {r.row: r.reason for r in prepared.rejected}
    assert set(reasons) == {5, 6}
    assert reasons[5] == "missing institution type"
    assert "unknown institution type 'sports_club'" in reasons[6]
    assert list(prepared.frame.columns[:4]) == ["institution_id", "name", "type", "sectors"]


def test_geojson_polygons_kept(tmp_path):
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"institution_id": "U1", "name": "UABJO", "type": "Universidad"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[-96.7, 17.0], [-96.69, 17.0], [-96.69, 17.01], [-96.7, 17.0]]
                    ],
                },
            }
        ],
    }
    path = tmp_path / "inst.geojson"
    path.write_text(json.dumps(fc), encoding="utf-8")
    prepared = prepare("institutions", path)
    assert prepared.frame.loc[0, "type"] == "university"
    assert prepared.frame.geometry.iloc[0].geom_type == "Polygon"


def test_missing_type_column(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,name,lat,lon\n1,a,17,-96\n", encoding="utf-8")
    with pytest.raises(MissingColumns, match="type column"):
        prepare("institutions", path)


def test_cli_and_workspace_ingest_institutions(tmp_path, capsys):
    path = tmp_path / "instituciones.csv"
    path.write_text(CSV, encoding="utf-8")
    ws = tmp_path / "ws"
    assert main(["ingest", "institutions", str(path), "--workspace", str(ws), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "institutions" and summary["rows"] == 4
    assert [r["row"] for r in summary["rejected"]] == [5, 6]
    stored = Workspace(ws).read(summary["id"])
    assert sorted(stored["type"]) == ["chamber", "finance", "quality_lab", "training"]


def test_osm_institutions_through_the_workspace(workspace):
    info = workspace.ingest("institutions", DATA / "osm" / "Helsinki.osm.pbf", name="tuki")
    frame = workspace.read("tuki")
    assert info.kind == "institutions" and len(frame) == 33
    assert any("not imported, by reason" in w for w in info.warnings)
    assert set(frame["type"]) <= set(INSTITUTION_TYPES)


def test_http_upload_institutions_and_read_items(tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    app = create_app(Settings(workspace=tmp_path / "ws"))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post(
            "/datasets",
            data={"kind": "institutions", "name": "apoyo"},
            files={"file": ("instituciones.csv", CSV.encode("utf-8"), "text/csv")},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["kind"] == "institutions" and body["rows"] == 4
        assert [x["row"] for x in body["rejected"]] == [5, 6]
        items = client.get(f"/collections/{body['id']}/items").json()
        got = {
            f["properties"]["institution_id"]: f["properties"]["type"] for f in items["features"]
        }
        assert got == {"I1": "training", "I2": "chamber", "I3": "quality_lab", "I4": "finance"}
        r = client.post(
            "/datasets",
            data={"kind": "schools"},
            files={"file": ("x.csv", CSV.encode("utf-8"), "text/csv")},
        )
        assert r.status_code == 422 and "institutions" in r.text
