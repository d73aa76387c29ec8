"""UNESCO World Heritage List CSV through the full ingestion path (prepare, workspace, CLI)."""

from __future__ import annotations

import json

import pytest

from geocluster.analyses.assets import run_assets
from geocluster.ingest import IngestOptions, prepare

# Columns as in the World Heritage Centre export (whc-sites-2023.csv), real rows for the
# first three sites, then rows with broken coordinates or category.
WHC_CSV = """unique_number,id_no,rev_bis,name_en,short_description_en,date_inscribed,danger,longitude,latitude,area_hectares,category,category_short,states_name_en,region_en,iso_code,transboundary
1,583,,Fortress of Suomenlinna,"Built in the second half of the 18th century by Sweden",1991,0,24.9881,60.1454,40.87,Cultural,C,Finland,Europe and North America,fi,0
2,1196,,Struve Geodetic Arc,"A chain of survey triangulations",2005,0,26.0,59.0,,Cultural,C,"Belarus,Estonia,Finland,Latvia,Lithuania,Norway,Republic of Moldova,Russian Federation,Sweden,Ukraine",Europe and North America,"by,ee,fi",1
3,64,,Tikal National Park,"In the heart of the jungle",1979,0,-89.6237,17.2220,57600,Mixed,C/N,Guatemala,Latin America and the Caribbean,gt,0
4,9001,,Row with text latitude,x,2001,0,10.0,north,,Natural,N,Nowhere,Z,zz,0
5,9002,,Row off the globe,x,2001,1,10.0,95.5,,Natural,N,Nowhere,Z,zz,0
6,9003,,Row without coordinates,x,2001,0,,,,Natural,N,Nowhere,Z,zz,0
7,9004,,Row with unknown category,x,2001,0,10.0,10.0,,Imaginary,I,Nowhere,Z,zz,0
8,9005,,Row with longitude out of range,x,2001,0,190.0,10.0,,Natural,N,Nowhere,Z,zz,0
"""


@pytest.fixture
def whc_csv(tmp_path):
    path = tmp_path / "whc-sites.csv"
    path.write_text(WHC_CSV, encoding="utf-8")
    return path


def test_prepare_maps_and_rejects(whc_csv):
    prepared = prepare("assets", whc_csv, IngestOptions())
    frame = prepared.frame
    assert frame["asset_id"].tolist() == ["whc-583", "whc-1196", "whc-64"]
    assert frame["category"].tolist() == ["cultural", "cultural", "cultural"]
    assert frame["subtype"].tolist() == [
        "world_heritage_site",
        "world_heritage_site",
        "mixed_world_heritage_site",
    ]
    assert (frame["designation"] == "unesco").all()
    assert frame.geometry.iloc[0].x == pytest.approx(24.9881) and frame.geometry.iloc[
        0
    ].y == pytest.approx(60.1454)
    assert frame["date_inscribed"].tolist() == [1991, 2005, 1979]
    assert frame["states"].iloc[1].startswith("Belarus,Estonia,Finland")
    # every bad row is rejected and reported with its 1-based data row and the column
    rejected = {r.row: r for r in prepared.rejected}
    assert set(rejected) == {4, 5, 6, 7, 8}
    assert rejected[4].column == "latitude" and "north" in rejected[4].reason
    assert rejected[5].column == "latitude" and "95.5" in rejected[5].reason
    assert rejected[6].column in ("longitude", "latitude") and "missing" in rejected[6].reason
    assert rejected[7].column == "category" and "Imaginary" in rejected[7].reason
    assert rejected[8].column == "longitude" and "190" in rejected[8].reason


def test_workspace_and_cli(whc_csv, workspace, capsys):
    from geocluster.cli import main

    info = workspace.ingest("assets", whc_csv, name="whc")
    assert info.rows == 3 and len(info.rejected) == 5
    assert {r["row"] for r in info.rejected} == {4, 5, 6, 7, 8}
    assets = workspace.read("whc")
    assert assets["designation"].tolist() == ["unesco"] * 3
    # the CLI reports rejections and still exits 0
    code = main(
        [
            "ingest",
            "assets",
            str(whc_csv),
            "--name",
            "whc",
            "--workspace",
            str(workspace.path),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 3 and len(out["rejected"]) == 5
    # the imported sites are usable assets (clusters: the two Baltic sites within 200 km)
    res = run_assets(workspace, assets="whc", analysis="clusters", eps_m=200_000, min_samples=2)
    assert res["n_zones"] == 1 and res["noise"] == 1
    props = {f["properties"]["asset_id"]: f["properties"] for f in res["assets"]["features"]}
    assert (
        props["whc-64"]["zone_id"] == -1
        and props["whc-64"]["subtype"] == "mixed_world_heritage_site"
    )
