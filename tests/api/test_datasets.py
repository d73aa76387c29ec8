"""``/datasets`` through HTTP: uploads, rejection report, every file-level error."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings, UploadSettings

GOOD = (
    "firm_id,name,lon,lat,isic,employees\n"
    "a1,Alpha,-103.35,20.67,15,4\n"
    "a2,Beta,-103.36,20.68,26,12\n"
    "a3,Gamma,-101.68,21.12,15,2\n"
)


def _upload(client, content: bytes | str, filename: str = "firms.csv", kind: str = "firms", **data):
    if isinstance(content, str):
        content = content.encode()
    form = {"kind": kind, **data}
    return client.post(
        "/datasets", data=form, files={"file": (filename, content, "application/octet-stream")}
    )


def test_upload_list_get_delete(client):
    r = _upload(client, GOOD, name="My Firms")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == "my_firms"
    assert body["kind"] == "firms" and body["rows"] == 3 and body["rejected"] == []
    assert body["crs"] == "EPSG:4326"
    assert body["bbox"] == pytest.approx([-103.36, 20.67, -101.68, 21.12])
    assert body["source"] == "firms.csv"  # the original file name is kept

    listed = client.get("/datasets").json()["datasets"]
    assert [d["id"] for d in listed] == ["my_firms"]
    got = client.get("/datasets/my_firms").json()
    assert got["rows"] == 3 and got["versions"] == [1]

    # same name again: version 2, and version 1 stays addressable
    assert _upload(client, GOOD, name="My Firms").json()["version"] == 2
    assert client.get("/datasets/my_firms@1").json()["version"] == 1
    assert client.get("/datasets/my_firms@9").status_code == 404

    assert client.delete("/datasets/my_firms").status_code == 204
    assert client.get("/datasets/my_firms").status_code == 404
    assert client.delete("/datasets/my_firms").status_code == 404


def test_default_name_is_the_file_stem(client):
    assert _upload(client, GOOD, filename="registry 2024.csv").json()["id"] == "registry_2024"


def test_rejected_rows_are_reported(client):
    content = (
        GOOD
        + "a4,Bad,-103.3,123.0,15,1\na5,Null,0,0,15,1\na1,Dup,-103.2,20.6,15,1\na6,Sec,-103.2,20.6,9999,1\n"
    )
    r = _upload(client, content)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["rows"] == 3
    by_row = {rej["row"]: rej for rej in body["rejected"]}
    assert set(by_row) >= {4, 5, 6, 7}
    assert by_row[4]["column"] == "lat" and "123" in by_row[4]["reason"]
    assert "null island" in by_row[5]["reason"].lower() or "(0, 0)" in by_row[5]["reason"]
    assert "duplicate" in by_row[6]["reason"].lower()
    assert "9999" in by_row[7]["reason"] or "unknown" in by_row[7]["reason"].lower()


def test_options_json_maps_columns(client):
    content = "id,X_LON,X_LAT,activity,staff\nq1,-103.35,20.67,15,4\nq2,-103.3,20.6,26,3\n"
    opts = {
        "lon_col": "X_LON",
        "lat_col": "X_LAT",
        "id_col": "id",
        "sector_col": "activity",
        "employees_col": "staff",
    }
    r = _upload(client, content, options=json.dumps(opts))
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 2


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ("{not json", "JSON"),
        ("[1, 2]", "JSON object"),
        ('{"lon": "x"}', "unknown ingest option"),
        ('{"sector_scheme": "sic"}', "sector_scheme"),
    ],
)
def test_bad_options_are_422(client, options, fragment):
    r = _upload(client, GOOD, options=options)
    assert r.status_code == 422
    assert fragment in r.json()["detail"]


def test_unknown_kind_is_422(client):
    r = _upload(client, GOOD, kind="shops")
    assert r.status_code == 422 and "kind" in r.json()["detail"]


def test_missing_file_field_is_422(client):
    r = client.post("/datasets", data={"kind": "firms"})
    assert r.status_code == 422 and "file" in r.json()["detail"]


def test_empty_file_is_400(client):
    r = _upload(client, b"")
    assert r.status_code == 400 and "empty" in r.json()["detail"]
    assert client.get("/datasets").json()["datasets"] == []


def test_header_only_file_is_4xx(client):
    r = _upload(client, "firm_id,lon,lat\n")
    assert 400 <= r.status_code < 500


def test_corrupt_file_is_400(client):
    r = _upload(client, b"\x00\x01garbage that is not a geopackage" * 10, filename="data.gpkg")
    assert r.status_code == 400, r.text
    assert client.get("/datasets").json()["datasets"] == []


def test_unsupported_format_is_415(client):
    r = _upload(client, b"%PDF-1.4 not data", filename="report.pdf")
    assert r.status_code == 415, r.text
    assert "pdf" in r.json()["detail"].lower()


def test_missing_columns_is_422_and_names_found_columns(client):
    r = _upload(client, "foo,bar\n1,2\n")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "foo" in detail and "bar" in detail


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_with_path_traversal_is_400(client):
    payload = _zip({"../../evil.shp": b"x" * 100, "ok.dbf": b"y"})
    r = _upload(client, payload, filename="layer.zip")
    assert r.status_code == 400, r.text
    assert ".." in r.json()["detail"] or "traversal" in r.json()["detail"].lower()


def test_zip_bomb_is_400(client):
    payload = _zip({"big.csv": b"0" * (40 * 1024 * 1024)})  # 40 MB of zeros, ~40 kB packed
    assert len(payload) < 200_000
    r = _upload(client, payload, filename="bomb.zip")
    assert r.status_code == 400, r.text
    assert "bomb" in r.json()["detail"].lower() or "expan" in r.json()["detail"].lower()


def test_too_large_upload_is_413_and_nothing_stored(tmp_path):
    settings = Settings(workspace=tmp_path / "ws", upload=UploadSettings(max_upload_mb=0.001))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        big = GOOD + "".join(f"b{i},N,-103.3,20.6,15,1\n" for i in range(200))
        r = _upload(c, big)
        assert r.status_code == 413, r.text
        assert "MB" in r.json()["detail"]
        assert c.get("/datasets").json()["datasets"] == []


def _multipart(
    fields: dict[str, str], filename: str, payload: bytes, boundary: str = "XyZ"
) -> bytes:
    parts = []
    for key, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts)


def test_declared_oversize_body_is_refused_before_parsing(tmp_path):
    settings = Settings(workspace=tmp_path / "ws", upload=UploadSettings(max_upload_mb=1))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        body = _multipart({"kind": "firms"}, "big.csv", b"x" * (3 * 1024 * 1024))
        r = c.post(
            "/datasets",
            content=body,
            headers={"content-type": "multipart/form-data; boundary=XyZ"},
        )
        assert r.status_code == 413, r.text
        assert "limit of 1 MB" in r.json()["detail"]


def test_chunked_oversize_body_without_content_length_is_413(tmp_path):
    settings = Settings(workspace=tmp_path / "ws", upload=UploadSettings(max_upload_mb=1))
    body = _multipart({"kind": "firms"}, "big.csv", b"x" * (3 * 1024 * 1024))

    def chunks():  # no Content-Length: the body is streamed chunked
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        r = c.post(
            "/datasets",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=XyZ"},
        )
        assert r.status_code == 413, r.text
        assert c.get("/datasets").json()["datasets"] == []


def test_too_large_stream_without_content_length_is_413(tmp_path):
    """The streamed copy stops at the limit even when no size is declared."""
    from fastapi import UploadFile

    from api.errors import UploadTooLarge
    from api.uploads import saved_upload

    settings = Settings(
        workspace=tmp_path / "ws",
        upload=UploadSettings(max_upload_mb=0.001, upload_chunk_bytes=1024),
    )
    upload = UploadFile(io.BytesIO(b"x" * 5000), filename="x.csv")
    with pytest.raises(UploadTooLarge):
        with saved_upload(upload, settings):
            pass


def test_upload_filename_cannot_escape_the_temp_dir():
    from api.uploads import safe_filename

    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("..\\..\\x.csv") == "x.csv"
    assert safe_filename("") == "upload"
    assert safe_filename("a b;c.csv") == "a_b_c.csv"


def test_upload_of_each_kind(client):
    from tests.api.fixtures import synthetic_indicators, synthetic_regions

    gj = synthetic_regions().to_json()
    r = _upload(client, gj, filename="regions.geojson", kind="boundaries")
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 6
    csv = synthetic_indicators().to_csv(index=False)
    r = _upload(client, csv, filename="ind.csv", kind="indicators")
    assert r.status_code == 201, r.text
    assert r.json()["bbox"] is None
    assets = "asset_id,name,category,lon,lat\nx1,Museum,cultural,-103.3,20.6\nx2,Park,natural,-103.2,20.5\n"
    r = _upload(client, assets, filename="assets.csv", kind="assets")
    assert r.status_code == 201, r.text


def test_more_row_rejections_through_http(client):
    content = (
        "firm_id,name,lon,lat,isic,employees\n"
        "f1,Zapatos,-101.68,21.12,1520,12\n"
        "f2,B,,21.0,1520,1\n"
        "f3,C,abc,21.0,1520,1\n"
        "f4,D,-103.35,20.67,2610,-5\n"
        "f5,E,-190.0,21.0,1520,1\n"
        "f6,F,-103.83,20.88,1101,40\n"
    )
    body = _upload(client, content).json()
    by_row = {r["row"]: r for r in body["rejected"]}
    assert by_row[2]["reason"] == "missing longitude"
    assert by_row[3]["reason"] == "non-numeric longitude 'abc'"
    assert by_row[4]["column"] == "employees" and "-5" in by_row[4]["reason"]
    assert by_row[5]["reason"] == "longitude -190 outside -180..180"
    assert body["rows"] == 2


def test_swapped_coordinates_are_a_422_naming_the_fix(client):
    content = "firm_id,name,lon,lat,isic,employees\nf1,A,21.12,-101.68,1520,1\nf2,B,20.67,-103.35,2610,1\n"
    r = _upload(client, content)
    assert r.status_code == 422
    assert "swapped" in r.json()["detail"]


def test_projected_xy_without_crs_is_a_422(client):
    content = "firm_id,x,y,isic\nf1,500000,2300000,1520\nf2,510000,2310000,1520\n"
    r = _upload(client, content, options=json.dumps({"x_col": "x", "y_col": "y"}))
    assert r.status_code == 422
    assert "CRS" in r.json()["detail"] or "crs" in r.json()["detail"]
    ok = _upload(
        client, content, options=json.dumps({"x_col": "x", "y_col": "y", "crs": "EPSG:32614"})
    )
    assert ok.status_code == 201, ok.text


def test_invalid_and_empty_geometries_through_http(client):
    import geopandas as gpd
    import shapely

    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    regions = gpd.GeoDataFrame(
        {"region_id": ["A", "B", "C"], "name": ["box", "bow", "void"]},
        geometry=[shapely.box(2, 0, 3, 1), bowtie, shapely.Polygon()],
        crs=4326,
    )
    body = _upload(client, regions.to_json(), filename="r.geojson", kind="boundaries").json()
    assert body["rows"] == 2
    assert any("repaired" in w for w in body["warnings"])
    # GeoJSON writes an empty polygon as a null geometry
    assert [(r["row"], r["reason"]) for r in body["rejected"]] == [(3, "missing geometry")]


def test_zip_expanding_past_the_server_limit_is_413_whatever_the_client_says(tmp_path):
    import io
    import zipfile

    rows = "".join(
        f"F{i},Firm {i},1520,{i % 40 + 1},-101.{i % 9000:04d},21.{i % 7000:04d}\n"
        for i in range(40_000)
    )
    csv = "firm_id,name,isic,employees,lon,lat\n" + rows
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("firms.csv", csv)
    payload = buf.getvalue()
    assert len(payload) < 1024 * 1024 < len(csv)  # small upload, large expansion (< 100x)
    settings = Settings(workspace=tmp_path / "ws", upload=UploadSettings(max_upload_mb=1))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        r = _upload(c, payload, filename="firms.zip", options='{"max_bytes": 1000000000000}')
        assert r.status_code == 413, r.text
        assert c.get("/datasets").json()["datasets"] == []


# ---------------------------------------------------------------- issue 11: ingest fidelity
def test_options_json_accepts_every_canonical_column_key(client):
    content = (
        "ref,lo,la,act,n,desde,w,yg,inf,label\n"
        "r1,-101.68,21.12,15.20,3,1990,sí,no,no,Zapatería Ñu\n"
        "r2,-101.69,21.13,15.11,5,2005,no,sim,x,Curtiduría\n"
    )
    opts = {
        "id_col": "ref", "lon_col": "lo", "lat_col": "la", "sector_col": "act",
        "sector_scheme": "nace2", "employees_col": "n", "founded_col": "desde",
        "women_led_col": "w", "youth_led_col": "yg", "informal_col": "inf",
        "name_col": "label", "employees_max": 4,
    }  # fmt: skip
    r = _upload(client, content, options=json.dumps(opts))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["rows"] == 1 and body["rejected"][0]["column"] == "n"
    items = client.get(f"/collections/{body['id']}/items").json()
    (props,) = [f["properties"] for f in items["features"]]
    assert props["name"] == "Zapatería Ñu" and props["founded"] == 1990
    assert props["sector_code"] == "1520" and props["sector_code_source"] == "15.20"


def test_asset_option_keys(client):
    content = "id,lon,lat,clase,subclase\na,-101.2,21.0,,Zona arqueológica\n"
    opts = {"category_col": "clase", "subtype_col": "subclase"}
    r = _upload(client, content, filename="sitios.csv", kind="assets", options=json.dumps(opts))
    assert r.status_code == 201, r.text
    items = client.get("/collections/sitios/items").json()
    props = items["features"][0]["properties"]
    assert props["subtype"] == "zona_arqueológica" and props["category"] == "cultural"


def test_unicode_file_name_gives_the_cli_id(client, tmp_path):
    from geocluster.workspace import slugify

    r = _upload(client, GOOD, filename="数据.csv")
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "数据" == slugify("数据")
    assert client.get("/datasets/数据").status_code == 200
    r = _upload(client, GOOD, filename="Fírmás Ünícódé.csv")
    assert r.json()["id"] == "firmas_unicode" == slugify("Fírmás Ünícódé")  # accents folded
    r = _upload(client, GOOD, filename="Ørsted Ðata.csv")  # no decomposition: kept
    assert r.json()["id"] == "ørsted_ðata" == slugify("Ørsted Ðata")


@pytest.mark.parametrize(
    ("content", "options", "status", "fragment"),
    [
        (GOOD, {"crs": "EPSG:999999"}, 422, "EPSG:999999"),
        (GOOD, {"crs": "EPSG:32614"}, 400, "look like degrees"),
        ("id,lon,lat,employees\na,-101.68,21.12,4\n", {"sector_scheme": "nace2"}, 422,
         "no sector column"),
        (GOOD, {"employees_max": "many"}, 422, "employees_max"),
    ],
)  # fmt: skip
def test_crs_and_scheme_mistakes_are_4xx_with_the_fix(client, content, options, status, fragment):
    r = _upload(client, content, options=json.dumps(options))
    assert r.status_code == status, r.text
    assert fragment in r.text
    assert client.get("/datasets").json()["datasets"] == []


def test_multi_sheet_xlsx_is_400_naming_the_sheets(client, tmp_path):
    import pandas as pd

    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"a": [1, 2]}).to_excel(xl, sheet_name="Notes", index=False)
        pd.DataFrame(
            {"firm_id": ["a"], "lon": [-101.68], "lat": [21.12], "isic": ["1520"]}
        ).to_excel(xl, sheet_name="Firms", index=False)
    r = _upload(client, path.read_bytes(), filename="book.xlsx")
    assert r.status_code == 400 and "'Notes', 'Firms'" in r.text and "--layer" in r.text
    r = _upload(client, path.read_bytes(), filename="book.xlsx", options='{"layer": "Firms"}')
    assert r.status_code == 201 and r.json()["rows"] == 1
