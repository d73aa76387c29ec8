"""Readers in geocluster.io: every format, sniffing, and file-level failures."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geocluster.errors import (
    FileTooLarge,
    InvalidInput,
    UnsafeArchive,
    UnsupportedFormat,
    UnusableFile,
)
from geocluster.io import detect_format, read_table, sniff_delimiter, sniff_encoding

ROWS = [
    ("f1", "Zapatería Ñandú", -101.68, 21.12, "1520"),
    ("f2", "Café São João", -99.13, 19.43, "5630"),
    ("f3", "Cerámica Talavera", -98.20, 19.04, "2393"),
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["firm_id", "name", "lon", "lat", "isic"])


def _gdf(crs: str = "EPSG:4326") -> gpd.GeoDataFrame:
    df = _frame()
    gdf = gpd.GeoDataFrame(
        df.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(df.lon, df.lat),
        crs="EPSG:4326",
    )
    return gdf.to_crs(crs)


def _write_text(path: Path, text: str, encoding: str) -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _csv_text(delimiter: str = ",", decimal: str = ".") -> str:
    lines = [delimiter.join(["firm_id", "name", "lon", "lat", "isic"])]
    for fid, name, lon, lat, code in ROWS:
        lon_s, lat_s = (str(lon).replace(".", decimal), str(lat).replace(".", decimal))
        lines.append(delimiter.join([fid, name, lon_s, lat_s, code]))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- CSV
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1"])
def test_csv_encodings_are_detected_and_text_decoded(tmp_path, encoding):
    path = _write_text(tmp_path / "f.csv", _csv_text(), encoding)
    raw = read_table(path)
    assert list(raw.frame.columns) == ["firm_id", "name", "lon", "lat", "isic"]
    assert raw.frame["name"].tolist() == [r[1] for r in ROWS]
    np.testing.assert_allclose(raw.frame["lat"].to_numpy(float), [r[3] for r in ROWS])


def test_sniff_encoding_prefers_utf8_then_cp1252(tmp_path):
    assert sniff_encoding(_write_text(tmp_path / "a.csv", "a\nñ\n", "utf-8")) == "utf-8"
    assert sniff_encoding(_write_text(tmp_path / "b.csv", "a\nñ\n", "utf-8-sig")) == "utf-8-sig"
    # "€" is 0x80 in cp1252 and undefined in latin-1 text use; 0x81 is undefined in cp1252
    assert sniff_encoding(_write_text(tmp_path / "c.csv", "a\n€ñ\n", "cp1252")) == "cp1252"
    (tmp_path / "d.csv").write_bytes(b"a\n\x81\xf1\n")
    assert sniff_encoding(tmp_path / "d.csv") == "latin-1"


@pytest.mark.parametrize(
    "tail, want",
    [
        ("é".encode() + b"b" * 100, "utf-8"),  # a 2-byte character across the 8 MB read
        (b"\xc3", "cp1252"),  # the file ends inside a character
        (b"\xc3" + b"b" * 100, "cp1252"),  # a lone lead byte, then an all-ASCII read
        (b"\xe2\x82" + b"b" * 100, "cp1252"),  # a cut 3-byte character
        (b"\x81", "latin-1"),  # undefined in cp1252
    ],
)
def test_sniff_encoding_across_read_boundaries(tmp_path, tail, want):
    # reference: bytes.decode of the whole file (the skipped all-ASCII reads must not
    # hide a character cut at a boundary)
    body = b"a" * ((8 << 20) - 1) + tail
    (tmp_path / "big.csv").write_bytes(body)
    assert sniff_encoding(tmp_path / "big.csv") == want
    for encoding in ("utf-8", "cp1252"):
        try:
            body.decode(encoding)
        except UnicodeDecodeError:
            continue
        assert want == encoding
        break


def test_utf8_file_with_a_latin1_byte_on_the_last_line(tmp_path):
    body = _csv_text().encode("utf-8") + "f4,Pequeño,-100.0,20.0,1520\n".encode("latin-1")
    (tmp_path / "f.csv").write_bytes(body)
    raw = read_table(tmp_path / "f.csv")
    assert raw.frame["name"].iloc[-1] == "Pequeño"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_sniffing(tmp_path, delimiter):
    path = _write_text(tmp_path / "f.txt", _csv_text(delimiter), "utf-8")
    raw = read_table(path)
    assert raw.frame.shape == (3, 5)
    assert (f"delimiter {delimiter!r}" in raw.notes) == (delimiter != ",")


def test_tsv_extension(tmp_path):
    path = _write_text(tmp_path / "f.tsv", _csv_text("\t"), "utf-8")
    assert read_table(path).frame.shape == (3, 5)


def test_sniff_delimiter_ignores_commas_inside_quotes():
    lines = ["id;name;v", '1;"Smith, John";2', '2;"Doe, Jane";3']
    assert sniff_delimiter(lines) == ";"


def test_decimal_comma_with_semicolon(tmp_path):
    path = _write_text(tmp_path / "f.csv", _csv_text(";", ","), "cp1252")
    raw = read_table(path)
    assert "decimal comma" in raw.notes
    np.testing.assert_allclose(raw.frame["lon"].to_numpy(float), [r[2] for r in ROWS])
    np.testing.assert_allclose(raw.frame["lat"].to_numpy(float), [r[3] for r in ROWS])


def test_text_columns_keep_leading_zeros(tmp_path):
    path = _write_text(tmp_path / "f.csv", "id,code,v\n007,0111,1\n008,0112,2\n", "utf-8")
    raw = read_table(path, text_columns=lambda header: ["id", "code"])
    assert raw.frame["id"].tolist() == ["007", "008"]
    assert raw.frame["code"].tolist() == ["0111", "0112"]
    assert raw.frame["v"].tolist() == [1, 2]


def test_quoted_fields_with_delimiters_and_newlines(tmp_path):
    text = 'id,name,lon,lat\n1,"Hat, Inc.",1.5,2.5\n2,"two\nlines",3.5,4.5\n'
    raw = read_table(_write_text(tmp_path / "f.csv", text, "utf-8"))
    assert raw.frame["name"].tolist() == ["Hat, Inc.", "two\nlines"]


# ------------------------------------------------------------------------------ XLSX
def test_xlsx_first_sheet_and_named_sheet(tmp_path):
    path = tmp_path / "f.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        _frame().to_excel(xw, sheet_name="firms", index=False)
        pd.DataFrame({"a": [1]}).to_excel(xw, sheet_name="other", index=False)
    raw = read_table(path)
    assert raw.format == "xlsx" and raw.layer == "firms"
    assert raw.frame["name"].tolist() == [r[1] for r in ROWS]
    assert any("other" in n for n in raw.notes)
    assert read_table(path, layer="other").frame["a"].tolist() == [1]
    with pytest.raises(InvalidInput, match="sheets are"):
        read_table(path, layer="nope")


# ---------------------------------------------------------------------------- vectors
@pytest.mark.parametrize(
    ("suffix", "driver", "fmt"),
    [
        (".geojson", "GeoJSON", "geojson"),
        (".gpkg", "GPKG", "gpkg"),
        (".fgb", "FlatGeobuf", "flatgeobuf"),
    ],
)
def test_gdal_vector_formats_round_trip(tmp_path, suffix, driver, fmt):
    path = tmp_path / f"f{suffix}"
    _gdf("EPSG:32614").to_file(path, driver=driver)
    raw = read_table(path)
    assert raw.format == fmt
    # FlatGeobuf stores features in spatial-index order
    assert sorted(raw.frame["name"]) == sorted(r[1] for r in ROWS)
    if fmt != "geojson":  # GeoJSON (RFC 7946) always declares EPSG:4326
        assert raw.crs == "EPSG:32614"


def test_geopackage_layer_choice(tmp_path):
    path = tmp_path / "f.gpkg"
    _gdf().to_file(path, layer="firms", driver="GPKG")
    _gdf().iloc[:1].to_file(path, layer="more", driver="GPKG")
    raw = read_table(path)
    assert raw.layer == "firms" and len(raw.frame) == 3
    assert any("more" in n for n in raw.notes)
    raw = read_table(path, layer="more")
    assert raw.layer == "more" and len(raw.frame) == 1
    with pytest.raises(InvalidInput, match="layers are"):
        read_table(path, layer="missing")


def test_geoparquet_and_plain_parquet(tmp_path):
    _gdf("EPSG:32614").to_parquet(tmp_path / "f.parquet")
    raw = read_table(tmp_path / "f.parquet")
    assert raw.format == "geoparquet" and raw.crs == "EPSG:32614"
    assert isinstance(raw.frame, gpd.GeoDataFrame) and len(raw.frame) == 3
    _frame().to_parquet(tmp_path / "plain.parquet")
    raw = read_table(tmp_path / "plain.parquet")
    assert not isinstance(raw.frame, gpd.GeoDataFrame)
    assert list(raw.frame.columns) == ["firm_id", "name", "lon", "lat", "isic"]


def _zip_shapefile(tmp_path: Path, encoding: str = "LATIN1", prj: bool = True) -> Path:
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    _gdf("EPSG:32614").to_file(shp_dir / "firms.shp", encoding=encoding)
    path = tmp_path / "firms.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(shp_dir.iterdir()):
            if f.suffix == ".prj" and not prj:
                continue
            zf.write(f, f"data/{f.name}")
    return path


def test_zipped_shapefile_with_cpg_latin1(tmp_path):
    path = _zip_shapefile(tmp_path)
    with zipfile.ZipFile(path) as zf:
        assert zf.read("data/firms.cpg").decode().upper().replace("-", "") in ("LATIN1", "ISO88591")
        dbf = zf.read("data/firms.dbf")
    assert "Ñandú".encode("latin-1") in dbf  # the attribute bytes really are latin-1
    raw = read_table(path)
    assert raw.format == "shapefile" and raw.crs == "EPSG:32614"
    assert raw.frame["name"].tolist() == [r[1] for r in ROWS]


def test_zipped_shapefile_without_prj_is_noted(tmp_path):
    raw = read_table(_zip_shapefile(tmp_path, prj=False))
    assert raw.crs is None
    assert any("no .prj" in n for n in raw.notes)


def test_zip_with_a_single_csv(tmp_path):
    csv = _write_text(tmp_path / "f.csv", _csv_text(), "utf-8")
    path = tmp_path / "f.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(csv, "inner/f.csv")
    raw = read_table(path)
    assert raw.format == "csv" and len(raw.frame) == 3


def test_zip_shapefile_missing_dbf(tmp_path):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.shp", b"\x00\x00\x27\x0a" + b"\x00" * 96)
    with pytest.raises(UnusableFile, match=r"lacks \.shx, \.dbf"):
        read_table(path)


# ------------------------------------------------------------------ format detection
@pytest.mark.filterwarnings("ignore:The filename extension should be:RuntimeWarning")
def test_detect_format_by_magic_bytes_overrides_extension(tmp_path):
    _gdf().to_file(tmp_path / "really_a_gpkg.csv", driver="GPKG")
    assert detect_format(tmp_path / "really_a_gpkg.csv") == "gpkg"
    (tmp_path / "x.json").write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    assert detect_format(tmp_path / "x.json") == "geojson"
    (tmp_path / "noext").write_text('{"type": "FeatureCollection"}')
    assert detect_format(tmp_path / "noext") == "geojson"


def test_real_osm_pbf_is_detected():
    fixture = Path(pyogrio_fixture("sample.osm.pbf"))
    assert detect_format(fixture) == "osm"


def pyogrio_fixture(name: str) -> str:
    import pyogrio

    return str(Path(pyogrio.__file__).parent / "tests" / "fixtures" / name)


# ------------------------------------------------------------------ file-level errors
def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(UnusableFile, match="empty"):
        read_table(tmp_path / "e.csv")
    (tmp_path / "w.csv").write_text("\n\n   \n")
    with pytest.raises(UnusableFile, match="empty"):
        read_table(tmp_path / "w.csv")


def test_header_only_csv(tmp_path):
    (tmp_path / "h.csv").write_text("lon,lat,name\n")
    with pytest.raises(UnusableFile, match="no data rows"):
        read_table(tmp_path / "h.csv")


def test_empty_vector_layer(tmp_path):
    _gdf().iloc[:0].to_file(tmp_path / "e.gpkg", driver="GPKG")
    with pytest.raises(UnusableFile, match="no features"):
        read_table(tmp_path / "e.gpkg")


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet", ".fgb", ".xlsx", ".zip"])
def test_corrupt_binary_files(tmp_path, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(b"this is not what the extension says\n" * 10)
    with pytest.raises(UnusableFile, match="corrupt|not a readable"):
        read_table(path)


def test_truncated_geopackage(tmp_path):
    _gdf().to_file(tmp_path / "f.gpkg", driver="GPKG")
    data = (tmp_path / "f.gpkg").read_bytes()
    (tmp_path / "t.gpkg").write_bytes(data[:2000])
    with pytest.raises(UnusableFile):
        read_table(tmp_path / "t.gpkg")


def test_broken_geojson(tmp_path):
    (tmp_path / "b.geojson").write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(UnusableFile):
        read_table(tmp_path / "b.geojson")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("f.kml", b"<kml/>", "KML"),
        ("f.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "legacy Excel"),
        ("f.bin", b"\x00\x01\x02\x03" * 50, "binary file of an unknown format"),
        ("f.docx.gz", b"\x1f\x8b\x08\x00" + b"\x00" * 50, "gzip"),
        ("f.weird", b"a,b\n1,2\n", "unsupported file type"),
    ],
)
def test_unsupported_formats(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UnsupportedFormat, match=match):
        read_table(tmp_path / name)


def test_file_over_size_limit(tmp_path):
    path = _write_text(tmp_path / "f.csv", _csv_text(), "utf-8")
    size = path.stat().st_size
    with pytest.raises(FileTooLarge, match=f"{size:,} bytes; the limit is 10 bytes"):
        read_table(path, max_bytes=10)
    assert len(read_table(path, max_bytes=size).frame) == 3


@pytest.mark.parametrize(
    "member", ["../evil.csv", "/etc/evil.csv", "a/../../evil.csv", "C:\\evil.csv"]
)
def test_zip_path_traversal(tmp_path, member):
    path = tmp_path / "t.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, _csv_text())
    with pytest.raises(UnsafeArchive, match="leaves the archive"):
        read_table(path)
    assert not (tmp_path.parent / "evil.csv").exists()


def test_zip_bomb(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("big.csv", b"0" * (64 * 1024 * 1024))
    assert path.stat().st_size < 1024 * 1024  # ~1000x compression
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        read_table(path)


def test_zip_whose_sizes_lie_is_caught_while_extracting(tmp_path):
    # A member that declares a small size but inflates to more: rewrite the sizes in
    # both headers so the central-directory check passes, and the capped reader must stop.
    from geocluster.io import _archive

    path = tmp_path / "liar.zip"
    payload = b"x,y\n" + b"1,2\n" * (2 * 1024 * 1024)  # 8 MiB
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("f.csv", payload)
    info = zipfile.ZipFile(path).infolist()[0]
    info.file_size = 100
    # zipfile itself stops at the declared size and then fails the CRC; the capped
    # reader is the second line of defence. Either way nothing beyond the cap is written.
    with pytest.raises(UnusableFile, match="declared size|Bad CRC"):
        old = (_archive.RATIO_MIN_BYTES, _archive.MAX_RATIO)
        _archive.RATIO_MIN_BYTES, _archive.MAX_RATIO = 1024, 2
        try:
            _archive.extract_member(path, info, tmp_path)
        finally:
            _archive.RATIO_MIN_BYTES, _archive.MAX_RATIO = old
    assert (tmp_path / "f.csv").stat().st_size <= 1024 * 1024


def test_nested_zip_is_refused(tmp_path):
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("f.csv", _csv_text())
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "inner.zip")
    with pytest.raises(UnsupportedFormat, match="one shapefile"):
        read_table(outer)


def test_zip_with_several_data_files_is_ambiguous(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.csv", _csv_text())
        zf.writestr("b.csv", _csv_text())
    with pytest.raises(UnsupportedFormat, match="found"):
        read_table(path)


def test_wkt_column_survives_reading(tmp_path):
    text = 'id,wkt\n1,POINT (1 2)\n2,"POLYGON ((0 0, 1 0, 1 1, 0 0))"\n'
    raw = read_table(_write_text(tmp_path / "f.csv", text, "utf-8"))
    geoms = shapely.from_wkt(raw.frame["wkt"].to_numpy(dtype=object))
    assert [g.geom_type for g in geoms] == ["Point", "Polygon"]


def test_zip_expanding_over_the_size_limit(tmp_path):
    path = tmp_path / "f.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("f.csv", _csv_text() * 50)
    assert path.stat().st_size < 2000
    with pytest.raises(FileTooLarge, match="expands to"):
        read_table(path, max_bytes=2000)


# ------------------------------------------------------------------ property: round trip
_LATIN1_TEXT = st.text(
    alphabet=st.characters(
        codec="latin-1", categories=("L", "N", "Zs"), exclude_characters="\x85\xa0"
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() == s and not s.isdigit())


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(_LATIN1_TEXT, min_size=2, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
    decimal_comma=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_csv_round_trip_property(tmp_path, names, delimiter, encoding, decimal_comma, seed):
    """Whatever the delimiter, encoding and decimal mark, the table read is the one written."""
    decimal = "," if decimal_comma and delimiter != "," else "."
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "name": names,
            "lon": np.round(rng.uniform(-180, 180, len(names)), 5),
            "lat": np.round(rng.uniform(-90, 90, len(names)), 5),
        }
    )
    path = tmp_path / f"p{seed}_{len(names)}.csv"
    frame.to_csv(path, sep=delimiter, encoding=encoding, decimal=decimal, index=False)
    raw = read_table(path, text_columns=lambda header: ["name"])
    assert list(raw.frame.columns) == ["name", "lon", "lat"]
    assert raw.frame["name"].tolist() == names
    np.testing.assert_allclose(raw.frame["lon"].to_numpy(float), frame["lon"])
    np.testing.assert_allclose(raw.frame["lat"].to_numpy(float), frame["lat"])


def test_zip_with_two_shapefiles_and_layer_choice(tmp_path):
    d = tmp_path / "two"
    d.mkdir()
    _gdf().to_file(d / "alpha.shp")
    _gdf().iloc[:1].to_file(d / "beta.shp")
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(d.iterdir()):
            zf.write(f, f.name)
    raw = read_table(path)
    assert raw.layer == "alpha" and len(raw.frame) == 3
    assert any("beta.shp" in n for n in raw.notes)
    raw = read_table(path, layer="beta")
    assert raw.layer == "beta" and len(raw.frame) == 1
    with pytest.raises(InvalidInput, match="no shapefile 'gamma'"):
        read_table(path, layer="gamma")


# ------------------------------------------------------------------ hardening (issue 10)
def test_gdal_keeps_only_self_contained_vector_drivers(tmp_path):
    import pyogrio

    from geocluster.io import harden

    _gdf().to_file(tmp_path / "f.gpkg", driver="GPKG")
    read_table(tmp_path / "f.gpkg")  # any read hardens the process
    harden()  # idempotent
    drivers = set(pyogrio.list_drivers())
    assert drivers <= {"GeoJSON", "GPKG", "ESRI Shapefile", "FlatGeobuf", "MEM", "Memory"}
    assert {"GeoJSON", "GPKG", "ESRI Shapefile", "FlatGeobuf"} <= drivers
    assert not drivers & {"OGR_VRT", "VRT", "CSV", "SQLite", "GDALG", "HTTP", "OAPIF", "WFS"}
    options = pyogrio.get_gdal_config_option
    assert options("CPL_VSIL_CURL_ALLOWED_EXTENSIONS") == ".geocluster-no-network"
    assert options("GDAL_HTTP_PROXY") == "127.0.0.1:9"


def test_a_vrt_is_refused_under_any_name_before_gdal_reads_it(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("name,lon,lat\nTOPSECRET,1,2\n")
    vrt = (
        f'<OGRVRTDataSource><OGRVRTLayer name="s"><SrcDataSource>{secret}</SrcDataSource>'
        "<SrcLayer>secret</SrcLayer></OGRVRTLayer></OGRVRTDataSource>"
    )
    for name in ("a.geojson", "a.csv", "a.json", "a.txt", "noext"):
        (tmp_path / name).write_text("\ufeff  \n" + vrt)
        with pytest.raises(UnsupportedFormat, match="XML") as info:
            read_table(tmp_path / name)
        assert "TOPSECRET" not in str(info.value) and str(tmp_path) not in str(info.value)
    (tmp_path / "a.vrt").write_text(vrt)
    with pytest.raises(UnsupportedFormat, match="VRT"):
        read_table(tmp_path / "a.vrt")
    for member in ("a.geojson", "layer.vrt"):
        path = tmp_path / f"z_{member}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(member, vrt)
        with pytest.raises(UnusableFile):
            read_table(path)


def test_geojson_must_be_a_json_object(tmp_path):
    (tmp_path / "a.geojson").write_text("firm_id,lon\n1,2\n")
    with pytest.raises(UnusableFile, match="JSON object"):
        read_table(tmp_path / "a.geojson")


def _gpkg_with(tmp_path, name: str, *sql: str) -> Path:
    import sqlite3

    path = tmp_path / name
    _gdf().to_file(path, layer="firms", driver="GPKG")
    con = sqlite3.connect(path)
    for stmt in sql:
        con.execute(stmt)
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        (
            (
                "CREATE TABLE t (id INTEGER PRIMARY KEY, tile_data BLOB)",
                "INSERT INTO gpkg_contents (table_name, data_type, identifier) "
                "VALUES ('t', 'tiles', 't')",
            ),
            "tiles table",
        ),
        (
            (
                "CREATE VIEW v AS SELECT * FROM firms",
                "INSERT INTO gpkg_contents (table_name, data_type, identifier) "
                "VALUES ('v', 'attributes', 'v')",
            ),
            "is a view",
        ),
        (
            (
                "CREATE TABLE log (x TEXT)",
                "CREATE TRIGGER g AFTER INSERT ON firms BEGIN INSERT INTO log "
                "SELECT ogr_geocode('x'); END",
            ),
            "trigger",
        ),
        (
            (
                "CREATE TABLE g (fid INTEGER PRIMARY KEY, a TEXT, b TEXT "
                "GENERATED ALWAYS AS (upper(a)) VIRTUAL)",
                "INSERT INTO gpkg_contents (table_name, data_type, identifier) "
                "VALUES ('g', 'attributes', 'g')",
            ),
            "generated",
        ),
    ],
    ids=["tiles", "view", "trigger", "generated"],
)
def test_geopackages_that_are_more_than_tables_are_refused(tmp_path, sql, match):
    path = _gpkg_with(tmp_path, "x.gpkg", *sql)
    with pytest.raises(UnusableFile, match=match):
        read_table(path)


def test_plain_geopackage_with_spatial_index_is_read(tmp_path):
    _gdf().to_file(tmp_path / "f.gpkg", driver="GPKG", SPATIAL_INDEX="YES")
    assert len(read_table(tmp_path / "f.gpkg").frame) == 3


def test_user_strings_with_virtual_paths_or_urls_are_refused(tmp_path):
    from geocluster.io import check_user_string

    _gdf().to_file(tmp_path / "f.gpkg", driver="GPKG")
    for layer in ("/vsicurl/http://127.0.0.1/x", "CSV:/vsizip/a.zip", "http://x/y", "a\x00b"):
        with pytest.raises(InvalidInput, match="plain name"):
            read_table(tmp_path / "f.gpkg", layer=layer)
    with pytest.raises(InvalidInput):
        read_table("/vsicurl/http://127.0.0.1:9/f.csv")
    assert check_user_string("/data/vsi_firms.csv", "path") == "/data/vsi_firms.csv"


def test_clean_detail_removes_paths_and_caps_length():
    from geocluster.io import clean_detail

    text = "'/srv/up/geocluster-upload-x1/f.gpkg' failed; see /var/lib/ws/catalog.gpkg\nmore"
    out = clean_detail(text, paths=("/srv/up/geocluster-upload-x1/f.gpkg",))
    assert out == "'f.gpkg' failed; see catalog.gpkg more"
    assert len(clean_detail("x" * 5000)) == 300


def test_header_summary_quotes_only_plausible_names():
    from geocluster.io import header_summary

    assert header_summary(["lon", "lat"]) == "lon, lat"
    assert header_summary(["x" * 500]) == "1 columns whose names do not look like header names"
    assert len(header_summary([f"column_{i}" for i in range(1000)])) <= 300


def test_a_huge_first_field_is_an_unusable_file_with_a_short_message(tmp_path):
    (tmp_path / "h.csv").write_text("x" * (2 * 1024 * 1024))
    with pytest.raises(UnusableFile) as info:
        read_table(tmp_path / "h.csv")
    assert len(str(info.value)) < 400


def _xlsx_with(path: Path, sheet_xml: str) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["a", "b"])
    book.active.append([1, 2])
    book.save(path)
    src = zipfile.ZipFile(path)
    parts = {n: src.read(n) for n in src.namelist()}
    src.close()
    parts["xl/worksheets/sheet1.xml"] = sheet_xml.encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, data in parts.items():
            zf.writestr(n, data)
    return path


@pytest.mark.parametrize(
    ("sheet", "match"),
    [
        ("<worksheet><sheetData><row><c>", "malformed"),
        (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><worksheet>&b;</worksheet>',
            "not a readable",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            "<worksheet>&e;</worksheet>",
            "not a readable",
        ),
    ],
    ids=["malformed", "entities", "xxe"],
)
def test_hostile_xlsx_is_one_unusable_file_line(tmp_path, sheet, match):
    path = _xlsx_with(tmp_path / "w.xlsx", sheet)
    with pytest.raises(UnusableFile, match=match) as info:
        read_table(path)
    message = str(info.value)
    assert "\n" not in message and "root:" not in message and str(tmp_path) not in message


def test_xlsx_zip_bomb_is_refused(tmp_path):
    path = _xlsx_with(
        tmp_path / "b.xlsx", "<worksheet>" + " " * (40 * 1024 * 1024) + "</worksheet>"
    )
    with pytest.raises(UnsafeArchive, match="bomb"):
        read_table(path)


def test_csv_safe_neutralises_formulas_only_in_text():
    from geocluster.io import csv_safe

    frame = pd.DataFrame(
        {
            "name": ["=1+2", "+x", "-y", "@z", "\tt", "\rr", "plain", None, "a=b"],
            "lon": [-1.5] * 9,
        }
    )
    out = csv_safe(frame)
    assert out["name"].tolist()[:7] == ["'=1+2", "'+x", "'-y", "'@z", "'\tt", "'\rr", "plain"]
    assert pd.isna(out["name"].iloc[7]) and out["name"].iloc[8] == "a=b"
    assert out["lon"].tolist() == [-1.5] * 9  # numbers are data, not formulas
    assert frame["name"].iloc[0] == "=1+2"  # the input is not modified
    assert list(csv_safe(pd.DataFrame({"=bad": [1]})).columns) == ["'=bad"]
