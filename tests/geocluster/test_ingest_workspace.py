"""End to end: Workspace.ingest through the ingestion pipeline and back out of the store."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from geocluster.errors import CRSError, MissingColumns, UnsafeArchive, UnusableFile

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


FIRMS = (
    "id;nombre;lat;lon;nace;empleados\n"
    "001;Zapatería;21,12;-101,68;C15.20;12\n"
    "002;Tequilera;20,88;-103,83;C11.01;40\n"
    "003;Sin lugar;;-103,83;C11.01;4\n"
    "004;Rara;20,6;-103,3;X99;2\n"
)


def test_ingest_csv_round_trip_with_rejections(workspace, tmp_path):
    path = _write(tmp_path / "firms.csv", FIRMS, "cp1252")
    info = workspace.ingest("firms", path, name="Mexico firms")
    assert info.id == "mexico_firms" and info.kind == "firms" and info.rows == 2
    assert info.crs == "EPSG:4326" and info.working_crs == "EPSG:32613"
    assert [(r["row"], r["column"]) for r in info.rejected] == [(3, "lat"), (4, "nace")]
    frame = workspace.read(info.id).sort_values("firm_id", ignore_index=True)
    assert frame["firm_id"].tolist() == ["001", "002"]
    assert frame["name"].tolist() == ["Zapatería", "Tequilera"]
    assert frame["isic_division"].tolist() == ["15", "11"]
    np.testing.assert_allclose(frame.geometry.x, [-101.68, -103.83])
    np.testing.assert_allclose(frame.geometry.y, [21.12, 20.88])


def test_projected_source_round_trip_through_the_store(workspace, tmp_path):
    rng = np.random.default_rng(7)
    x = rng.uniform(400_000, 600_000, 10)
    y = rng.uniform(2_200_000, 2_400_000, 10)
    lines = ["id,x,y"] + [f"{i},{a:.6f},{b:.6f}" for i, (a, b) in enumerate(zip(x, y))]
    path = _write(tmp_path / "utm.csv", "\n".join(lines) + "\n")
    with pytest.raises(CRSError):
        workspace.ingest("firms", path)
    assert workspace.datasets() == []
    info = workspace.ingest(
        "firms", path, options={"crs": "EPSG:32614", "working_crs": "EPSG:32614"}
    )
    assert info.source_crs == "EPSG:32614" and info.working_crs == "EPSG:32614"
    back = workspace.read(info.id, crs="working").sort_values(
        "firm_id", key=lambda s: s.astype(int)
    )
    np.testing.assert_allclose(back.geometry.x, x, atol=1e-6)
    np.testing.assert_allclose(back.geometry.y, y, atol=1e-6)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda p: _write(p / "e.csv", ""), UnusableFile),
        (lambda p: _write(p / "c.csv", "name,sector\na,15\n"), MissingColumns),
    ],
)
def test_unusable_files_store_nothing(workspace, tmp_path, make, error):
    with pytest.raises(error):
        workspace.ingest("firms", make(tmp_path))
    assert workspace.datasets() == []


def test_unsafe_zip_stores_nothing(workspace, tmp_path):
    path = tmp_path / "t.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("../../x.csv", "lon,lat\n1,2\n")
    with pytest.raises(UnsafeArchive):
        workspace.ingest("firms", path)
    assert workspace.datasets() == []


def test_indicators_and_boundaries(workspace, tmp_path):
    path = _write(tmp_path / "gdp.csv", "state,PCGDP1940,PCGDP1950\nA,1.5,2.5\nB,3.5,4.5\n")
    info = workspace.ingest("indicators", path, options={"id_col": "state"})
    table = workspace.read(info.id)
    assert sorted(table.columns[:4]) == ["indicator", "region_id", "value", "year"]
    assert len(table) == 4 and set(table["indicator"]) == {"PCGDP"}
    mexico = REPO / "data" / "boundaries" / "mexico_states.gpkg"
    if mexico.exists():
        b = workspace.ingest("boundaries", mexico, options={"level": 1})
        assert b.rows == 32
        assert set(workspace.read(b.id)["level"]) == {1}


def test_osm_assets_keep_polygons_in_the_store(workspace):
    info = workspace.ingest("assets", REPO / "data" / "osm" / "Helsinki.osm.pbf")
    frame = workspace.read(info.id)
    assert set(frame.geometry.geom_type) >= {"Point", "Polygon"}
    assert set(frame["category"]) <= {"cultural", "natural", "tourism"}


def test_unclosed_ring_is_a_rejected_row_not_a_crash(workspace, tmp_path):
    # Seen on v1: an unclosed GeoJSON ring raised GEOSException (HTTP 500).
    ring_open = [[[0, 0], [1, 0], [1, 1], [0, 1]]]
    ring_closed = [[[2, 0], [3, 0], [3, 1], [2, 1], [2, 0]]]
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"region_id": rid, "name": rid},
             "geometry": {"type": "Polygon", "coordinates": ring}}
            for rid, ring in (("A", ring_open), ("B", ring_closed))
        ],
    }  # fmt: skip
    path = tmp_path / "rings.geojson"
    path.write_text(json.dumps(fc))
    info = workspace.ingest("boundaries", path)
    assert info.rows == 1 and [r["row"] for r in info.rejected] == [1]
    assert workspace.read(info.id).region_id.tolist() == ["B"]
