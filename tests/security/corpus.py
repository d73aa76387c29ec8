"""A hostile-input corpus, generated (never committed as blobs).

:func:`build_corpus` writes some 90 files into a directory: GDAL VRT tricks (a CSV
source on a secret file, ``/vsicurl/`` and plain ``http://`` on a local listener,
``/vsizip/``) under every name geocluster reads, alone and inside zips and GeoPackages;
GeoPackages with raster tiles, views, virtual tables, triggers and generated
columns; zip bombs, zip-slip names, symlink members; XLSX with malformed XML, a
"billion laughs" and external entities; GeoJSON with a linked CRS on the listener and
absurd coordinates; CSV with huge fields and NUL bytes; and a few benign files that
must still be read.

Each :class:`Case` says what geocluster must do with the file: ``"refuse"`` (a
:class:`~geocluster.errors.GeoclusterError`, a 4xx over HTTP), ``"accept"`` (read, a
201) or ``"either"`` (harmless either way); in every case nothing may leak.

Run ``python -m tests.security.corpus DIR`` to write the corpus for manual probing.
"""

from __future__ import annotations

import io
import json
import sqlite3
import stat
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: A value only the secret file holds: it must never appear in any output.
SECRET_MARKER = "GEOCLUSTER-SECRET-7f3a9c"

GOOD_CSV = (
    "firm_id,name,lon,lat,isic,employees\n"
    "a1,Alpha,-103.35,20.67,15,4\n"
    "a2,Beta,-103.36,20.68,26,12\n"
    "a3,Gamma,-101.68,21.12,15,2\n"
)


@dataclass(frozen=True)
class Case:
    """One corpus file.

    Attributes
    ----------
    path
        The file.
    expect
        ``"refuse"``, ``"accept"`` or ``"either"``.
    why
        What the file tries.
    """

    path: Path
    expect: str
    why: str

    @property
    def id(self) -> str:
        return self.path.name


# ---------------------------------------------------------------- payloads


def secret_csv(directory: Path) -> Path:
    """A CSV outside the upload that a VRT would read: points with a marker name."""
    path = directory / "secret" / "secret.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "firm_id,name,lon,lat,isic,employees\n"
        f"s1,{SECRET_MARKER},-103.35,20.67,15,4\n"
        f"s2,{SECRET_MARKER},-103.36,20.68,26,12\n"
        f"s3,{SECRET_MARKER},-101.68,21.12,15,2\n"
    )
    return path


def _ogr_vrt(source: str, *, points: bool = True) -> str:
    geom = (
        '<GeometryType>wkbPoint</GeometryType><GeometryField encoding="PointFromColumns" '
        'x="lon" y="lat"/>'
        if points
        else "<GeometryType>wkbNone</GeometryType>"
    )
    # the CSV driver names a file's layer after its stem
    layer = source.rsplit("/", 1)[-1].split(".")[0]
    return (
        "<OGRVRTDataSource>\n"
        '  <OGRVRTLayer name="firms">\n'
        f'    <SrcDataSource relativeToVRT="0">{source}</SrcDataSource>\n'
        f"    <SrcLayer>{layer}</SrcLayer>\n"
        f"    {geom}\n"
        "  </OGRVRTLayer>\n"
        "</OGRVRTDataSource>\n"
    )


def _raster_vrt(source: str) -> str:
    return (
        '<VRTDataset rasterXSize="10" rasterYSize="10">\n'
        '  <VRTRasterBand dataType="Byte" band="1"><SimpleSource>\n'
        f'    <SourceFilename relativeToVRT="0">{source}</SourceFilename>\n'
        "    <SourceBand>1</SourceBand>\n"
        "  </SimpleSource></VRTRasterBand>\n"
        "</VRTDataset>\n"
    )


def vrt_payloads(secret: Path, port: int, inner_zip: Path) -> dict[str, str]:
    """XML documents that make GDAL read a file or a URL, by name."""
    url = f"http://127.0.0.1:{port}/firms.csv"
    return {
        "vrt_secret": _ogr_vrt(str(secret)),
        "vrt_csv_prefix_secret": _ogr_vrt(f"CSV:{secret}"),
        "vrt_passwd": _ogr_vrt("CSV:/etc/passwd", points=False),
        "vrt_vsicurl": _ogr_vrt(f"/vsicurl/{url}"),
        "vrt_http": _ogr_vrt(f"CSV:{url}"),
        "vrt_vsizip": _ogr_vrt(f"/vsizip/{inner_zip}/secret.csv"),
        "raster_vrt_passwd": _raster_vrt("/etc/passwd"),
        "raster_vrt_vsicurl": _raster_vrt(f"/vsicurl/http://127.0.0.1:{port}/x.tif"),
    }


def _zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _symlink_zip(name: str, target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.create_system = 3  # unix: external_attr carries the mode
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return buf.getvalue()


def _good_gdf():
    import geopandas as gpd
    import shapely

    return gpd.GeoDataFrame(
        {
            "firm_id": ["a1", "a2", "a3"],
            "name": ["Alpha", "Beta", "Gamma"],
            "isic": ["15", "26", "15"],
            "employees": [4, 12, 2],
        },
        geometry=[
            shapely.Point(-103.35, 20.67),
            shapely.Point(-103.36, 20.68),
            shapely.Point(-101.68, 21.12),
        ],
        crs="EPSG:4326",
    )


def _shapefile_parts(directory: Path) -> dict[str, bytes]:
    d = directory / "_shp"
    d.mkdir(exist_ok=True)
    _good_gdf().to_file(d / "firms.shp")
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def _gpkg(path: Path, sql: list[str] | None = None, *, writable_schema: bool = False) -> Path:
    _good_gdf().to_file(path, layer="firms", driver="GPKG")
    if sql:
        con = sqlite3.connect(path)
        try:
            if writable_schema:
                con.execute("PRAGMA writable_schema = ON")
            for stmt in sql:
                con.execute(stmt)
            con.commit()
        finally:
            con.close()
    return path


def _xlsx_parts(sheet_xml: str | None = None, **overrides: str) -> dict[str, bytes]:
    """The parts of a minimal workbook (a header and three rows), some replaced."""
    rows = [["firm_id", "name", "lon", "lat", "isic", "employees"]] + [
        line.split(",") for line in GOOD_CSV.splitlines()[1:]
    ]

    def cell(ref: str, value: str) -> str:
        try:
            float(value)
        except ValueError:
            return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'
        return f'<c r="{ref}"><v>{value}</v></c>'

    body = "".join(
        f'<row r="{i + 1}">'
        + "".join(cell(f"{'ABCDEF'[j]}{i + 1}", v) for j, v in enumerate(row))
        + "</row>"
        for i, row in enumerate(rows)
    )
    sheet = sheet_xml or (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{body}</sheetData></worksheet>"
    )
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="firms" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": sheet,
    }
    parts.update(overrides)
    return {k: v.encode() for k, v in parts.items()}


_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz ['
    '<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)


def _xxe(system: str) -> str:
    return (
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "{system}">]>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&xxe;</t></is></c></row>'
        '<row r="2"><c r="A2"><v>1</v></c></row></sheetData></worksheet>'
    )


# ---------------------------------------------------------------- the corpus


def build_corpus(directory: str | Path, *, port: int) -> list[Case]:
    """Write the corpus into ``directory`` and describe each file.

    Parameters
    ----------
    directory
        An empty directory.
    port
        Port of a local TCP listener on 127.0.0.1: URLs in the corpus point there, so
        a connection to it proves that a network request was made.

    Returns
    -------
    list of Case
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    files = root / "files"
    files.mkdir(exist_ok=True)
    secret = secret_csv(root)
    inner_zip = root / "secret" / "inner.zip"
    inner_zip.write_bytes(_zip_bytes({"secret.csv": secret.read_bytes()}))
    cases: list[Case] = []

    def add(name: str, data: bytes | str, expect: str, why: str) -> None:
        path = files / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        cases.append(Case(path, expect, why))

    # --- VRT documents under every name, plain, with a BOM, with leading blanks, UTF-16
    payloads = vrt_payloads(secret, port, inner_zip)
    names = (".geojson", ".json", ".csv", ".tsv", ".txt", ".gpkg", ".fgb", ".parquet")
    names += (".shp", ".xlsx", ".vrt", ".dat", "")
    for key in ("vrt_secret", "vrt_vsicurl"):
        for ext in names:
            add(f"{key}{ext or '_noext'}", payloads[key], "refuse", f"OGR VRT named {ext!r}")
    for key in ("vrt_csv_prefix_secret", "vrt_passwd", "vrt_http", "vrt_vsizip"):
        for ext in (".geojson", ".csv", ".json"):
            add(f"{key}{ext}", payloads[key], "refuse", f"OGR VRT named {ext!r}")
    add("vrt_bom.geojson", "\ufeff" + payloads["vrt_secret"], "refuse", "VRT after a BOM")
    add("vrt_blanks.csv", "\n\n   \t" + payloads["vrt_secret"], "refuse", "VRT after blanks")
    add(
        "vrt_utf16.csv",
        payloads["vrt_secret"].encode("utf-16"),
        "refuse",
        "VRT in UTF-16 named .csv",
    )
    add(
        "vrt_xmldecl.geojson",
        '<?xml version="1.0"?>\n' + payloads["vrt_vsicurl"],
        "refuse",
        "VRT with an XML declaration",
    )
    for key in ("raster_vrt_passwd", "raster_vrt_vsicurl"):
        for ext in (".geojson", ".csv", ".tif"):
            add(f"{key}{ext}", payloads[key], "refuse", "raster VRT")

    # --- VRTs inside zips
    for member in ("firms.geojson", "firms.csv", "firms.json", "firms.vrt", "firms.txt"):
        add(
            f"zip_vrt_{member.replace('.', '_')}.zip",
            _zip_bytes({member: payloads["vrt_secret"].encode()}),
            "refuse",
            f"VRT as zip member {member}",
        )
    shp = _shapefile_parts(root)
    add(
        "zip_shapefile_with_vrt.zip",
        _zip_bytes({**shp, "firms.vrt": payloads["vrt_secret"].encode()}),
        "refuse",
        "shapefile with a .vrt sibling",
    )
    add(
        "zip_shp_is_vrt.zip",
        _zip_bytes(
            {
                "firms.shp": payloads["vrt_secret"].encode(),
                "firms.shx": shp["firms.shx"],
                "firms.dbf": shp["firms.dbf"],
            }
        ),
        "refuse",
        "the .shp member is a VRT",
    )
    add(
        "zip_vsicurl_member.zip",
        _zip_bytes({"firms.geojson": payloads["vrt_vsicurl"].encode()}),
        "refuse",
        "vsicurl VRT in a zip",
    )
    add(
        "zip_raster_vrt.zip",
        _zip_bytes({"firms.tif.csv": payloads["raster_vrt_passwd"].encode()}),
        "refuse",
        "raster VRT in a zip",
    )

    # --- zip structure attacks
    add(
        "zip_slip_dotdot.zip",
        _zip_bytes({"../../../tmp/evil.csv": GOOD_CSV.encode()}),
        "refuse",
        "zip slip ../",
    )
    add(
        "zip_slip_absolute.zip",
        _zip_bytes({"/tmp/evil.csv": GOOD_CSV.encode()}),
        "refuse",
        "absolute member path",
    )
    add(
        "zip_slip_drive.zip",
        _zip_bytes({"C:\\evil\\firms.csv": GOOD_CSV.encode()}),
        "refuse",
        "drive-letter member path",
    )
    add(
        "zip_slip_backslash.zip",
        _zip_bytes({"..\\..\\firms.csv": GOOD_CSV.encode()}),
        "refuse",
        "backslash traversal",
    )
    add("zip_symlink_passwd.zip", _symlink_zip("firms.csv", "/etc/passwd"), "refuse", "symlink")
    add(
        "zip_symlink_secret.zip",
        _symlink_zip("firms.csv", str(secret)),
        "refuse",
        "symlink to the secret",
    )
    add(
        "zip_bomb.zip",
        _zip_bytes({"firms.csv": b"0" * (60 * 1024 * 1024)}),
        "refuse",
        "60 MB of zeros in ~60 kB",
    )
    add(
        "zip_bomb_in_shapefile.zip",
        _zip_bytes({**shp, "firms.dbf": shp["firms.dbf"] + b"\x00" * (40 * 1024 * 1024)}),
        "refuse",
        "a 40 MB .dbf in a few kB",
    )
    add(
        "zip_nested.zip",
        _zip_bytes({"inner.zip": _zip_bytes({"firms.csv": GOOD_CSV.encode()})}),
        "refuse",
        "a zip in a zip",
    )
    add(
        "zip_many_members.zip",
        _zip_bytes({f"m{i}.txt": b"" for i in range(10_050)}, compression=zipfile.ZIP_STORED),
        "refuse",
        "over 10,000 members",
    )
    add("zip_empty.zip", _zip_bytes({}), "refuse", "an empty archive")
    add("zip_truncated.zip", _zip_bytes({"firms.csv": GOOD_CSV.encode()})[:60], "refuse", "cut")
    add(
        "zip_member_named_vsicurl.zip",
        _zip_bytes({"vsicurl_http___127.0.0.1.csv": GOOD_CSV.encode()}),
        "accept",
        "an odd but harmless member name",
    )

    # --- GeoPackages
    gpkg_dir = root / "_gpkg"
    gpkg_dir.mkdir(exist_ok=True)

    def add_gpkg(name: str, sql: list[str], expect: str, why: str, **kw) -> None:
        path = _gpkg(gpkg_dir / name, sql, **kw)
        add(name, path.read_bytes(), expect, why)

    add_gpkg(
        "gpkg_tiles.gpkg",
        [
            "CREATE TABLE tiles (id INTEGER PRIMARY KEY, zoom_level INTEGER, tile_column "
            "INTEGER, tile_row INTEGER, tile_data BLOB)",
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
            "VALUES ('tiles', 'tiles', 'tiles', 4326)",
            "CREATE TABLE IF NOT EXISTS gpkg_tile_matrix_set (table_name TEXT PRIMARY KEY, "
            "srs_id INTEGER, min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE)",
            "INSERT INTO gpkg_tile_matrix_set VALUES ('tiles', 4326, -180, -90, 180, 90)",
        ],
        "refuse",
        "a raster tile table",
    )
    add_gpkg(
        "gpkg_coverage.gpkg",
        [
            "CREATE TABLE cov (id INTEGER PRIMARY KEY, tile_data BLOB)",
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
            "VALUES ('cov', '2d-gridded-coverage', 'cov', 4326)",
        ],
        "refuse",
        "a gridded coverage",
    )
    add_gpkg(
        "gpkg_view_ogr_function.gpkg",
        [
            "CREATE VIEW v AS SELECT fid, geom, ogr_datasource_load_layers('/etc/passwd') "
            "AS x FROM firms",
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
            "VALUES ('v', 'features', 'v', 4326)",
            "INSERT INTO gpkg_geometry_columns VALUES ('v', 'geom', 'POINT', 4326, 0, 0)",
        ],
        "refuse",
        "a view layer calling ogr_datasource_load_layers",
    )
    add_gpkg(
        "gpkg_virtualogr.gpkg",
        [
            "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES "
            "('table', 'vt', 'vt', 0, 'CREATE VIRTUAL TABLE vt USING VirtualOGR(''/etc/passwd'')')",
            "INSERT INTO gpkg_contents (table_name, data_type, identifier) "
            "VALUES ('vt', 'attributes', 'vt')",
        ],
        "refuse",
        "a VirtualOGR virtual table on /etc/passwd",
        writable_schema=True,
    )
    add_gpkg(
        "gpkg_trigger_geocode.gpkg",
        [
            "CREATE TABLE log (x TEXT)",
            "CREATE TRIGGER t AFTER INSERT ON firms BEGIN INSERT INTO log "
            f"SELECT ogr_geocode('http://127.0.0.1:{port}/'); END",
        ],
        "refuse",
        "a trigger calling ogr_geocode",
    )
    add_gpkg(
        "gpkg_generated_column.gpkg",
        [
            "CREATE TABLE gen (fid INTEGER PRIMARY KEY, a TEXT, b TEXT GENERATED ALWAYS AS "
            "(upper(a)) VIRTUAL)",
            "INSERT INTO gen (a) VALUES ('x')",
            "INSERT INTO gpkg_contents (table_name, data_type, identifier) "
            "VALUES ('gen', 'attributes', 'gen')",
        ],
        "refuse",
        "a generated column",
    )
    add_gpkg(
        "gpkg_layer_named_vsicurl.gpkg",
        [
            f'ALTER TABLE firms RENAME TO "/vsicurl/http://127.0.0.1:{port}/x"',
            f"UPDATE gpkg_contents SET table_name = '/vsicurl/http://127.0.0.1:{port}/x'",
            f"UPDATE gpkg_geometry_columns SET table_name = '/vsicurl/http://127.0.0.1:{port}/x'",
        ],
        "either",
        "a layer whose name is a /vsicurl URL",
    )
    add_gpkg("gpkg_benign.gpkg", [], "accept", "a plain GeoPackage")
    plain_sqlite = gpkg_dir / "plain.sqlite"
    con = sqlite3.connect(plain_sqlite)
    con.execute("CREATE TABLE firms (firm_id TEXT, lon REAL, lat REAL)")
    con.execute("INSERT INTO firms VALUES ('a', 1, 2)")
    con.commit()
    con.close()
    add("sqlite_not_gpkg.gpkg", plain_sqlite.read_bytes(), "refuse", "SQLite without gpkg_contents")
    add("sqlite_named_csv.csv", plain_sqlite.read_bytes(), "refuse", "SQLite named .csv")
    add("gpkg_truncated.gpkg", (gpkg_dir / "gpkg_benign.gpkg").read_bytes()[:3000], "refuse", "cut")
    add(
        "zip_gpkg_tiles.zip",
        _zip_bytes({"firms.gpkg": (files / "gpkg_tiles.gpkg").read_bytes()}),
        "refuse",
        "a tile GeoPackage in a zip",
    )
    add(
        "zip_gpkg_virtualogr.zip",
        _zip_bytes({"firms.gpkg": (files / "gpkg_virtualogr.gpkg").read_bytes()}),
        "refuse",
        "a VirtualOGR GeoPackage in a zip",
    )

    # --- GeoJSON
    point_fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"firm_id": f"a{i}", "isic": "15", "employees": 3},
                "geometry": {"type": "Point", "coordinates": [-103.3 - i / 100, 20.6]},
            }
            for i in range(3)
        ],
    }
    for kind in ("link", "url"):
        fc = dict(point_fc)
        fc["crs"] = {
            "type": kind,
            "properties": {
                "href": f"http://127.0.0.1:{port}/crs",
                "url": f"http://127.0.0.1:{port}/crs",
                "type": "ogcwkt",
            },
        }
        add(f"geojson_crs_{kind}.geojson", json.dumps(fc), "either", "a CRS fetched from a URL")
    fc = dict(point_fc)
    fc["crs"] = {"type": "name", "properties": {"name": str(secret)}}
    add("geojson_crs_file.geojson", json.dumps(fc), "either", "a CRS read from a file")
    fc = dict(point_fc)
    fc["crs"] = {"type": "name", "properties": {"name": "/etc/passwd"}}
    add("geojson_crs_passwd.geojson", json.dumps(fc), "either", "a CRS named /etc/passwd")
    huge = json.loads(json.dumps(point_fc))
    for i, feat in enumerate(huge["features"]):
        feat["geometry"]["coordinates"] = [1e308 * (i + 1) if i < 2 else -1e308, 1e300]
    add(
        "geojson_huge_coords.geojson",
        json.dumps(huge).replace("Infinity", "1e999"),
        "refuse",
        "huge coordinates",
    )
    add(
        "geojson_deep_nesting.geojson",
        '{"type": "FeatureCollection", "features": [' + "[" * 50_000 + "]" * 50_000 + "]}",
        "refuse",
        "50,000 nested arrays",
    )
    big_prop = json.loads(json.dumps(point_fc))
    big_prop["features"][0]["properties"]["name"] = "x" * 2_000_000
    add("geojson_huge_property.geojson", json.dumps(big_prop), "either", "a 2 MB property")
    add("geojson_truncated.geojson", json.dumps(point_fc)[:80], "refuse", "cut JSON")
    add("geojson_array.geojson", "[1, 2, 3]", "refuse", "a JSON array")
    add("geojson_empty_fc.geojson", '{"type": "FeatureCollection", "features": []}', "refuse", "0")
    add("geojson_benign.geojson", json.dumps(point_fc), "accept", "a plain GeoJSON")

    # --- CSV
    add("csv_huge_first_field.csv", "x" * (3 * 1024 * 1024), "refuse", "a 3 MB header, no data")
    add(
        "csv_huge_first_field_rows.csv",
        "a" * (1024 * 1024) + ",lat\n1,2\n3,4\n",
        "refuse",
        "a 1 MB column name",
    )
    add("csv_nul_bytes.csv", b"firm_id,lon,lat\x00\x00\x00\n" + b"\x00" * 100, "refuse", "NULs")
    add(
        "csv_nul_later.csv",
        GOOD_CSV.encode() + b"a4,Del\x00ta,-103.3,20.6,15,1\n",
        "either",
        "a NUL inside a value",
    )
    add(
        "csv_many_columns.csv",
        ",".join(f"c{i}" for i in range(20_000)) + "\n" + ",".join("1" * 20_000) + "\n",
        "either",
        "20,000 columns",
    )
    add(
        "csv_formulas.csv",
        "firm_id,name,lon,lat,isic,employees\n"
        "a1,=cmd|' /C calc'!A0,-103.35,20.67,15,4\n"
        "a2,@SUM(1+1)*cmd|' /C calc'!A0,-103.36,20.68,26,12\n"
        'a3,+HYPERLINK("http://127.0.0.1"),-101.68,21.12,15,2\n',
        "accept",
        "formula cells (stored as text, neutralised on export)",
    )
    add(
        "csv_vsi_strings.csv",
        GOOD_CSV.replace("Alpha", "/vsicurl/http://127.0.0.1/x").replace(
            "Beta", "file:///etc/passwd"
        ),
        "accept",
        "URL-like text in cells is data",
    )
    add("csv_benign.csv", GOOD_CSV, "accept", "a plain CSV")
    # what a reader in chunks could get wrong at a chunk boundary (the corpus test ingests
    # these in 7-row chunks and compares with the in-memory ingest)
    rows = [
        f"b{i},Firm {i},{-103.3 - i / 1000:.4f},{20.6 + i / 1000:.4f},15,{i % 9}" for i in range(40)
    ]
    head = "firm_id,name,lon,lat,isic,employees\n"
    add(
        "csv_quoted_newlines.csv",
        head
        + "\n".join(rows[:9])
        + '\nq1,"two\nlines",-103.31,20.61,15,3\n'
        + "\n".join(rows[9:])
        + "\n",
        "accept",
        "a quoted value spanning lines",
    )
    add(
        "csv_types_change_late.csv",
        head
        + "\n".join(rows[:20])
        + "\nz1,Late,-103.32,20.62,15,n/a\nz2,Later,-103.33,20.63,15,2.5\n"
        + "\n".join(rows[20:])
        + "\n",
        "accept",
        "integers, then a missing word and a fraction in later rows",
    )
    add(
        "csv_duplicates_far_apart.csv",
        head + "\n".join(rows) + "\nb3,Again,-103.34,20.64,15,1\nb39,Again,-103.35,20.65,15,1\n",
        "accept",
        "ids repeated 36 and 40 rows later",
    )
    add(
        "csv_ragged_late.csv",
        head + "\n".join(rows) + "\nr1,Ragged,-103.3,20.6,15,1,extra,fields\n",
        "either",
        "a ragged row after 40 good ones",
    )
    add(
        "csv_semicolon_decimal_comma_cp1252.csv",
        (
            "firm_id;name;lon;lat;isic;employees\n"
            + "\n".join(
                f"s{i};Caf\u00e9 {i};-103,{3000 + i};20,{6000 + i};56;{i}" for i in range(30)
            )
            + "\n"
        ).encode("cp1252"),
        "accept",
        "semicolons, decimal commas, cp1252",
    )
    add(
        "csv_bom_crlf.csv",
        ("\ufeff" + head + "\n".join(rows) + "\n").replace("\n", "\r\n").encode("utf-8"),
        "accept",
        "a UTF-8 BOM and CRLF line ends",
    )

    # --- XLSX
    def add_xlsx(name: str, expect: str, why: str, sheet: str | None = None, **parts) -> None:
        add(name, _zip_bytes(_xlsx_parts(sheet, **parts)), expect, why)

    add_xlsx("xlsx_benign.xlsx", "accept", "a plain workbook")
    add_xlsx(
        "xlsx_malformed_sheet.xlsx",
        "refuse",
        "malformed sheet XML",
        sheet="<worksheet><sheetData><row><c><v>1</v></row></sheetData>",
    )
    add_xlsx(
        "xlsx_malformed_workbook.xlsx",
        "refuse",
        "malformed workbook XML",
        **{"xl/workbook.xml": "<workbook><sheets><sheet name="},
    )
    add_xlsx(
        "xlsx_billion_laughs_sheet.xlsx",
        "refuse",
        "billion laughs in the sheet",
        sheet=_LAUGHS
        + '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
        "</sheetData></worksheet>",
    )
    add_xlsx(
        "xlsx_billion_laughs_workbook.xlsx",
        "refuse",
        "billion laughs in workbook.xml",
        **{"xl/workbook.xml": _LAUGHS + "<workbook>&lol9;</workbook>"},
    )
    add_xlsx(
        "xlsx_billion_laughs_types.xlsx",
        "refuse",
        "billion laughs in [Content_Types].xml",
        **{"[Content_Types].xml": _LAUGHS + "<Types>&lol9;</Types>"},
    )
    add_xlsx("xlsx_xxe_passwd.xlsx", "refuse", "XXE file", sheet=_xxe("file:///etc/passwd"))
    add_xlsx("xlsx_xxe_secret.xlsx", "refuse", "XXE secret", sheet=_xxe(f"file://{secret}"))
    add_xlsx("xlsx_xxe_http.xlsx", "refuse", "XXE URL", sheet=_xxe(f"http://127.0.0.1:{port}/x"))
    add_xlsx("xlsx_no_workbook.xlsx", "refuse", "no workbook part", **{"xl/workbook.xml": ""})
    bomb = _xlsx_parts()
    bomb["xl/worksheets/sheet1.xml"] = bomb["xl/worksheets/sheet1.xml"].replace(
        b"<sheetData>", b"<sheetData>" + b" " * (60 * 1024 * 1024)
    )
    add("xlsx_zip_bomb.xlsx", _zip_bytes(bomb), "refuse", "a 60 MB sheet in ~60 kB")
    add_xlsx(
        "xlsx_external_link.xlsx",
        "either",
        "an external link to /etc/passwd",
        **{
            "xl/externalLinks/externalLink1.xml": (
                '<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                '<externalBook r:id="rId1" xmlns:r="http://schemas.openxmlformats.org/'
                'officeDocument/2006/relationships"/></externalLink>'
            ),
            "xl/externalLinks/_rels/externalLink1.xml.rels": (
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
                '2006/relationships/externalLinkPath" Target="file:///etc/passwd" '
                'TargetMode="External"/></Relationships>'
            ),
        },
    )

    # --- other binary formats, corrupt or disguised
    add("parquet_garbage.parquet", b"PAR1" + b"\x01\x02" * 100 + b"PAR1", "refuse", "bad Parquet")
    add("fgb_garbage.fgb", b"fgb\x03fgb\x00" + b"\xff" * 200, "refuse", "bad FlatGeobuf")
    add("shp_garbage.shp", b"\x00\x00\x27\x0a" + b"\x00" * 96, "refuse", "a lone bad .shp")
    add(
        "osm_garbage.osm.pbf",
        b"\x00\x00\x00\x0d\x0a\x09OSMHeader" + b"\xff" * 64,
        "refuse",
        "bad PBF",
    )
    add("tiff_named_csv.csv", b"II*\x00" + b"\x00" * 200, "refuse", "a TIFF named .csv")
    add("gzip_named_geojson.geojson", b"\x1f\x8b\x08\x00" + b"\x00" * 20, "refuse", "gzip")
    add("kml_named_kml.kml", "<kml><Document/></kml>", "refuse", "KML")
    add("html_named_csv.csv", "<html><body>not data</body></html>", "refuse", "HTML")
    add("empty.csv", b"", "refuse", "an empty file")
    add(
        "gdalg.json",
        json.dumps({"type": "gdal_streamed_alg", "command_line": "gdal vector read /etc/passwd"}),
        "refuse",
        "a GDALG pipeline as JSON",
    )
    add(
        "stac.json",
        json.dumps(
            {
                "stac_version": "1.0.0",
                "type": "Feature",
                "assets": {"a": {"href": f"http://127.0.0.1:{port}/a.tif"}},
            }
        ),
        "either",
        "a STAC item",
    )

    # --- benign formats that must keep working
    gdf = _good_gdf()
    gdf.to_file(root / "_shp_good.fgb", driver="FlatGeobuf")
    add("fgb_benign.fgb", (root / "_shp_good.fgb").read_bytes(), "accept", "a plain FlatGeobuf")
    gdf.to_parquet(root / "_good.parquet")
    add("parquet_benign.parquet", (root / "_good.parquet").read_bytes(), "accept", "GeoParquet")
    add("zip_shapefile_benign.zip", _zip_bytes(shp), "accept", "a plain zipped shapefile")
    add(
        "zip_csv_benign.zip", _zip_bytes({"firms.csv": GOOD_CSV.encode()}), "accept", "a zipped CSV"
    )
    return cases


def build_raster_corpus(directory: str | Path, *, port: int) -> list[Case]:
    """Raster uploads: VRT descriptions under raster names, corrupt TIFFs, one good GeoTIFF."""
    root = Path(directory)
    files = root / "rasters"
    files.mkdir(parents=True, exist_ok=True)
    secret = secret_csv(root)
    payloads = vrt_payloads(secret, port, root / "secret" / "inner.zip")
    cases: list[Case] = []

    def add(name: str, data: bytes | str, expect: str, why: str) -> None:
        path = files / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        cases.append(Case(path, expect, why))

    for key in ("raster_vrt_passwd", "raster_vrt_vsicurl", "vrt_secret", "vrt_vsicurl"):
        for ext in (".tif", ".tiff", ".vrt", ""):
            add(f"{key}{ext or '_noext'}", payloads[key], "refuse", f"VRT named {ext!r}")
    add("tiff_truncated.tif", b"II*\x00\x08\x00\x00\x00" + b"\x00" * 40, "refuse", "a cut TIFF")
    add("gpkg_named_tif.tif", b"SQLite format 3\x00" + b"\x00" * 200, "refuse", "not a TIFF")
    import numpy as np
    from rasterio.transform import from_origin

    from geocluster.io.raster import write_cog

    good = write_cog(
        root / "_good.tif",
        np.arange(100, dtype="float32").reshape(10, 10),
        transform=from_origin(-104.0, 21.0, 0.01, 0.01),
        crs="EPSG:4326",
        nodata=-1.0,
    )
    add("raster_benign.tif", good.read_bytes(), "accept", "a plain GeoTIFF")
    return cases


if __name__ == "__main__":  # pragma: no cover - manual probing
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    built = build_corpus(out, port=int(sys.argv[2]) if len(sys.argv) > 2 else 9)
    for case in built:
        print(f"{case.expect:7s} {case.path.name:45s} {case.why}")
    print(f"{len(built)} files in {out / 'files'}")
