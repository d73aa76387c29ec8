"""geocluster.ingest.prepare: schema mapping, CRS handling and every validation rule."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from geocluster.errors import CRSError, FileTooLarge, InvalidInput, MissingColumns, UnusableFile
from geocluster.ingest import IngestOptions, Prepared, Rejection, prepare

REPO = Path(__file__).resolve().parents[2]
NE = REPO / "data" / "boundaries" / "natural_earth_countries.gpkg"

# A tiny land fixture: one "continent" box over Mexico and one over western Europe.
LAND = gpd.GeoSeries(
    [shapely.box(-118, 14, -86, 33), shapely.box(-10, 36, 30, 60)], crs="EPSG:4326"
)


def _csv(tmp_path: Path, text: str, name: str = "f.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _firms_csv(
    tmp_path: Path,
    rows: list[str],
    header: str = "firm_id,name,lon,lat,isic,employees",
    name: str = "f.csv",
) -> Path:
    return _csv(tmp_path, "\n".join([header, *rows]) + "\n", name=name)


GOOD = [
    "f1,Zapatos León,-101.68,21.12,1520,12",
    "f2,Electrónica GDL,-103.35,20.67,2610,250",
    "f3,Tequila Azul,-103.83,20.88,1101,40",
]


def _by_row(prepared: Prepared) -> dict[int, Rejection]:
    return {r.row: r for r in prepared.rejected}


# ------------------------------------------------------------------ happy path + schema
def test_firms_csv_canonical_frame(tmp_path):
    p = prepare("firms", _firms_csv(tmp_path, GOOD), land=LAND)
    f = p.frame
    assert isinstance(f, gpd.GeoDataFrame) and f.crs.to_epsg() == 4326
    assert list(f.columns[:12]) == [
        "firm_id", "name", "sector_code", "sector_code_source", "sector_scheme",
        "isic_section", "isic_division", "employees", "founded", "women_led", "youth_led",
        "informal",
    ]  # fmt: skip
    assert f["firm_id"].tolist() == ["f1", "f2", "f3"]
    assert f["sector_code"].tolist() == ["1520", "2610", "1101"]
    assert f["isic_section"].tolist() == ["C", "C", "C"]
    assert f["isic_division"].tolist() == ["15", "26", "11"]
    assert f["sector_scheme"].unique().tolist() == ["isic4"]
    np.testing.assert_allclose(f["employees"], [12, 250, 40])
    np.testing.assert_allclose(f.geometry.x, [-101.68, -103.35, -103.83])
    np.testing.assert_allclose(f.geometry.y, [21.12, 20.67, 20.88])
    assert p.rejected == []
    assert p.source_crs == "EPSG:4326"
    assert p.working_crs == "EPSG:32613"  # centroid lon ~ -102.95 -> zone 13


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ID,Latitude,Longitude,Sector,Emp", ("ID", "Sector", "Emp")),
        ("company_id,lat,lng,activity,workers", ("company_id", "activity", "workers")),
        ("id,y,x,sector_code,employment", ("id", "sector_code", "employment")),
    ],
)
def test_column_auto_detection(tmp_path, header, expected):
    names = header.split(",")
    lat_first = names[1].lower() in ("latitude", "lat", "y")
    rows = []
    for i, (lon, lat) in enumerate([(-101.68, 21.12), (-103.35, 20.67)]):
        a, b = (lat, lon) if lat_first else (lon, lat)
        rows.append(f"F{i},{a},{b},1520,{i + 3}")
    p = prepare("firms", _firms_csv(tmp_path, rows, header), land=LAND)
    assert p.frame["firm_id"].tolist() == ["F0", "F1"]
    np.testing.assert_allclose(p.frame.geometry.x, [-101.68, -103.35])
    np.testing.assert_allclose(p.frame["employees"], [3, 4])
    assert p.frame["sector_code"].tolist() == ["1520", "1520"]


def test_explicit_options_override_detection(tmp_path):
    text = (
        "lat,lon,lat_true,lon_true,code,staff,n\n"
        "1,1,21.12,-101.68,15,9,3\n"
        "1,1,20.67,-103.35,26,8,4\n"
    )
    opts = IngestOptions(
        lon_col="lon_true", lat_col="lat_true", sector_col="code", employees_col="n", id_col="staff"
    )
    p = prepare("firms", _csv(tmp_path, text), opts, land=LAND)
    np.testing.assert_allclose(p.frame.geometry.x, [-101.68, -103.35])
    assert p.frame["isic_division"].tolist() == ["15", "26"]
    np.testing.assert_allclose(p.frame["employees"], [3, 4])
    assert p.frame["firm_id"].tolist() == ["9", "8"]
    # the unused source columns are kept as extra columns
    assert {"lat", "lon"} <= set(p.frame.columns)


def test_extra_columns_kept_and_optional_fields_parsed(tmp_path):
    text = (
        "firm_id,lon,lat,isic,founded,women_led,informal,municipality\n"
        "a,-101.68,21.12,1520,1998,yes,0,León\n"
        "b,-103.35,20.67,2610,2010-05-03,No,1,Zapopan\n"
        "c,-103.83,20.88,1101,,,,Tequila\n"
    )
    p = prepare("firms", _csv(tmp_path, text), land=LAND)
    f = p.frame
    assert f["municipality"].tolist() == ["León", "Zapopan", "Tequila"]
    assert f["founded"].tolist()[:2] == [1998, 2010] and pd.isna(f["founded"].iloc[2])
    assert f["women_led"].tolist()[:2] == [True, False] and pd.isna(f["women_led"].iloc[2])
    assert f["informal"].tolist()[:2] == [False, True]
    assert str(f["founded"].dtype) == "Int64" and str(f["women_led"].dtype) == "boolean"


def test_leading_zeros_of_ids_and_codes_survive(tmp_path):
    rows = ["007,A,-101.68,21.12,0111,1", "008,B,-103.35,20.67,0112,2"]
    p = prepare("firms", _firms_csv(tmp_path, rows), land=LAND)
    assert p.frame["firm_id"].tolist() == ["007", "008"]
    assert p.frame["sector_code"].tolist() == ["0111", "0112"]
    assert p.frame["isic_section"].tolist() == ["A", "A"]


def test_nace_scheme_maps_to_isic(tmp_path):
    text = "id,lon,lat,nace\n1,-101.68,21.12,C15.20\n2,-103.35,20.67,I56.10\n"
    p = prepare("firms", _csv(tmp_path, text), land=LAND)
    assert p.frame["sector_scheme"].unique().tolist() == ["nace2"]
    assert p.frame["isic_division"].tolist() == ["15", "56"]


def test_firms_without_id_column_get_row_numbers(tmp_path):
    text = "lon,lat\n-101.68,21.12\n-103.35,20.67\n"
    p = prepare("firms", _csv(tmp_path, text), land=LAND)
    assert p.frame["firm_id"].tolist() == ["1", "2"]
    assert any("no id column" in w for w in p.warnings)
    assert any("no sector column" in w for w in p.warnings)


def test_decimal_comma_latin1_semicolon_file(tmp_path):
    text = "id;nombre;lat;lon;sector\n1;Peñasco;19,43;-99,13;4711\n2;Niño;20,67;-103,35;5610\n"
    p = prepare("firms", _csv(tmp_path, text, encoding="cp1252"), land=LAND)
    assert p.frame["name"].tolist() == ["Peñasco", "Niño"]
    np.testing.assert_allclose(p.frame.geometry.y, [19.43, 20.67])


def test_xlsx_firms(tmp_path):
    df = pd.DataFrame(
        {"firm_id": [1, 2], "lat": [21.12, 20.67], "lon": [-101.68, -103.35], "isic": [1520, 111]}
    )
    df.to_excel(tmp_path / "f.xlsx", index=False)
    p = prepare("firms", tmp_path / "f.xlsx", land=LAND)
    assert p.frame["firm_id"].tolist() == ["1", "2"]
    # a spreadsheet turns "0111" into 111: the sectors table restores the zero
    assert p.frame["sector_code"].tolist() == ["1520", "0111"]


# ------------------------------------------------------------------ coordinate rules
def test_missing_nan_and_non_numeric_coordinates(tmp_path):
    rows = [
        GOOD[0],
        "f2,B,,21.0,1520,1",
        "f3,C,-101.0,NaN,1520,1",
        "f4,D,abc,21.0,1520,1",
        "f5,E,-101.0,2l.5,1520,1",
        GOOD[1].replace("f2", "f6"),
    ]
    p = prepare("firms", _firms_csv(tmp_path, rows), land=LAND)
    assert p.frame["firm_id"].tolist() == ["f1", "f6"]
    rej = _by_row(p)
    assert set(rej) == {2, 3, 4, 5}
    assert (rej[2].column, rej[2].reason) == ("lon", "missing longitude")
    assert (rej[3].column, rej[3].reason) == ("lat", "missing latitude")
    assert rej[4].column == "lon" and rej[4].reason == "non-numeric longitude 'abc'"
    assert rej[5].column == "lat" and rej[5].reason == "non-numeric latitude '2l.5'"


def test_latitude_and_longitude_out_of_range(tmp_path):
    rows = [*GOOD, "f4,D,-101.0,95.5,1520,1", "f5,E,-190.0,21.0,1520,1"]
    p = prepare("firms", _firms_csv(tmp_path, rows), land=LAND)
    rej = _by_row(p)
    assert rej[4].column == "lat" and "latitude 95.5 outside -90..90" == rej[4].reason
    assert rej[5].column == "lon" and rej[5].reason == "longitude -190 outside -180..180"
    assert len(p.frame) == 3


def test_null_island(tmp_path):
    rows = [*GOOD, "f4,D,0,0,1520,1", "f5,E,0.0,21.0,1520,1"]
    p = prepare("firms", _firms_csv(tmp_path, rows), land=LAND)
    rej = _by_row(p)
    assert list(rej) == [4]
    assert "null island" in rej[4].reason
    assert len(p.frame) == 4  # lon 0 alone is a real place (Greenwich meridian)


def test_swapped_coordinates_detected_by_range(tmp_path):
    # Mexico with the columns exchanged: "latitude" -101 is impossible, "longitude" 21 is fine
    rows = [r.replace("-101.68,21.12", "21.12,-101.68") for r in GOOD[:1]] + [
        "f2,B,20.67,-103.35,2610,1",
        "f3,C,20.88,-103.83,1101,1",
    ]
    with pytest.raises(InvalidInput, match="look swapped") as exc:
        prepare("firms", _firms_csv(tmp_path, rows), land=LAND)
    assert "--lon-col lat --lat-col lon" in str(exc.value)


def test_swapped_coordinates_detected_by_land_polygons(tmp_path):
    # Points in Europe (lon 2..20, lat 41..55) written with lon/lat exchanged: every pair is
    # a valid lon/lat, but in the sea (Indian Ocean / Horn of Africa) of the fixture.
    rng = np.random.default_rng(1)
    lon = rng.uniform(2, 20, 50)
    lat = rng.uniform(41, 55, 50)
    rows = [f"e{i},x,{la:.4f},{lo:.4f},1520,1" for i, (lo, la) in enumerate(zip(lon, lat))]
    path = _firms_csv(tmp_path, rows)
    with pytest.raises(InvalidInput, match=r"look swapped: 0% of the points fall on land"):
        prepare("firms", path, land=LAND)
    # given the right way round they load
    rows = [f"e{i},x,{lo:.4f},{la:.4f},1520,1" for i, (lo, la) in enumerate(zip(lon, lat))]
    right = _firms_csv(tmp_path, rows, name="right.csv")
    assert len(prepare("firms", right, land=LAND).frame) == 50
    # and the explicit options the message suggests fix a swapped file
    p = prepare("firms", path, IngestOptions(lon_col="lat", lat_col="lon"), land=LAND)
    np.testing.assert_allclose(np.sort(p.frame.geometry.x), np.sort(np.round(lon, 4)))


def test_swapped_coordinates_with_natural_earth(tmp_path):
    # Helsinki-area points, exchanged, land in the Gulf of Oman / Arabian Sea
    rng = np.random.default_rng(2)
    lon = rng.uniform(24.8, 25.1, 40)
    lat = rng.uniform(60.17, 60.3, 40)
    rows = [f"h{i},x,{la:.5f},{lo:.5f},5610,1" for i, (lo, la) in enumerate(zip(lon, lat))]
    with pytest.raises(InvalidInput, match="look swapped"):
        prepare("firms", _firms_csv(tmp_path, rows))
    rows = [f"h{i},x,{lo:.5f},{la:.5f},5610,1" for i, (lo, la) in enumerate(zip(lon, lat))]
    assert len(prepare("firms", _firms_csv(tmp_path, rows)).frame) == 40


# -------------------------------------------------------------------- attribute rules
def test_duplicate_ids(tmp_path):
    rows = [*GOOD, "f1,Dup,-101.0,21.0,1520,1", "f2,Dup2,-101.0,21.0,1520,1"]
    p = prepare("firms", _firms_csv(tmp_path, rows), land=LAND)
    rej = _by_row(p)
    assert rej[4] == Rejection(4, "firm_id", "duplicate firm_id 'f1' (first at row 1)")
    assert rej[5] == Rejection(5, "firm_id", "duplicate firm_id 'f2' (first at row 2)")
    assert p.frame["name"].tolist()[:1] == ["Zapatos León"]


def test_negative_and_non_numeric_employees(tmp_path):
    rows = [
        *GOOD,
        "f4,D,-101.0,21.0,1520,-3",
        "f5,E,-101.0,21.0,1520,many",
        "f6,F,-101.0,21.0,1520,",
    ]
    p = prepare("firms", _firms_csv(tmp_path, rows), land=LAND)
    rej = _by_row(p)
    assert set(rej) == {4, 5}
    assert (rej[4].column, rej[4].reason) == ("employees", "negative employees -3")
    assert rej[5].reason == "non-numeric employees 'many'"
    assert np.isnan(p.frame.set_index("firm_id").loc["f6", "employees"])


def test_unknown_sector_codes(tmp_path):
    rows = [*GOOD, "f4,D,-101.0,21.0,9999,1", "f5,E,-101.0,21.0,ZZ,1", "f6,F,-101.0,21.0,,1"]
    p = prepare("firms", _firms_csv(tmp_path, rows), land=LAND)
    rej = _by_row(p)
    assert set(rej) == {4, 5}
    assert rej[4] == Rejection(4, "isic", "unknown isic4 sector code '9999'")
    assert rej[5] == Rejection(5, "isic", "unknown isic4 sector code 'ZZ'")
    # an empty code is not unknown: the firm stays, without sector, and a warning says so
    assert pd.isna(p.frame.set_index("firm_id").loc["f6", "sector_code"])
    assert any("no sector code" in w for w in p.warnings)


def test_rows_are_numbered_from_one_under_the_header(tmp_path):
    rows = ["f0,A,abc,21,1520,1", *GOOD]
    p = prepare("firms", _firms_csv(tmp_path, rows), land=LAND)
    assert [r.row for r in p.rejected] == [1]


# ---------------------------------------------------------------------- geometries
def test_wkt_column_and_empty_or_invalid_wkt(tmp_path):
    text = (
        "id,wkt\n"
        "1,POINT (-101.68 21.12)\n"
        "2,POINT EMPTY\n"
        "3,POINT (-101.68\n"
        "4,\n"
        "5,POINT (-103.35 20.67)\n"
    )
    p = prepare("firms", _csv(tmp_path, text), land=LAND)
    rej = _by_row(p)
    assert rej[2].reason == "empty geometry"
    assert rej[3].reason.startswith("invalid WKT")
    assert rej[4].reason == "missing WKT geometry"
    assert p.frame["firm_id"].tolist() == ["1", "5"]


def test_invalid_polygons_repaired_and_reported(tmp_path):
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    good = shapely.box(2, 0, 3, 1)
    gdf = gpd.GeoDataFrame(
        {"region_id": ["A", "B"], "name": ["bow", "box"]}, geometry=[good, bowtie], crs=4326
    )
    gdf.to_file(tmp_path / "r.geojson", driver="GeoJSON")
    p = prepare("boundaries", tmp_path / "r.geojson")
    assert p.rejected == []
    assert shapely.is_valid(p.frame.geometry.to_numpy()).all()
    fixed = p.frame.set_index("region_id").geometry["B"]
    assert fixed.geom_type == "MultiPolygon"
    np.testing.assert_allclose(fixed.area, 0.5)  # two triangles of 0.25 each
    assert any("repaired 1 invalid geometries" in w and "row 2" in w for w in p.warnings)


def test_empty_and_missing_geometries_in_vector_files(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"asset_id": ["a", "b", "c"], "category": ["cultural"] * 3},
        geometry=[shapely.Point(-99.1, 19.4), shapely.Polygon(), None],
        crs=4326,
    )
    gdf.to_file(tmp_path / "a.gpkg", driver="GPKG")
    p = prepare("assets", tmp_path / "a.gpkg")
    rej = _by_row(p)
    assert rej[2].reason == "empty geometry"
    assert rej[3].reason == "missing geometry"
    assert p.frame["asset_id"].tolist() == ["a"]


def test_firm_polygons_become_centroids_computed_in_metres(tmp_path):
    # A large polygon at high latitude: the lon/lat centroid differs from the metric one.
    poly = shapely.Polygon([(20, 60), (30, 60), (30, 70), (20, 70)])
    gdf = gpd.GeoDataFrame({"firm_id": ["big"]}, geometry=[poly], crs=4326)
    gdf.to_file(tmp_path / "f.geojson", driver="GeoJSON")
    p = prepare("firms", tmp_path / "f.geojson")
    expected = gdf.to_crs(p.working_crs).centroid.to_crs(4326).iloc[0]
    got = p.frame.geometry.iloc[0]
    assert got.geom_type == "Point"
    np.testing.assert_allclose([got.x, got.y], [expected.x, expected.y], atol=1e-9)
    assert not np.isclose(got.y, poly.centroid.y, atol=1e-3)


# ------------------------------------------------------------------------------ CRS
def test_projected_xy_without_crs_is_an_error(tmp_path):
    text = "id,x,y\n1,500000,2300000\n2,510000,2310000\n"
    with pytest.raises(CRSError, match="not longitude/latitude.*--crs"):
        prepare("firms", _csv(tmp_path, text))


def test_xy_round_trip_through_epsg_32614(tmp_path):
    # Source points in UTM 14N (metres) -> stored lon/lat -> back to UTM 14N.
    rng = np.random.default_rng(3)
    x = rng.uniform(300_000, 700_000, 20)
    y = rng.uniform(2_000_000, 2_500_000, 20)
    lines = ["id,easting,northing,isic"] + [
        f"{i},{a:.9f},{b:.9f},1520" for i, (a, b) in enumerate(zip(x, y))
    ]
    p = prepare("firms", _csv(tmp_path, "\n".join(lines) + "\n"), IngestOptions(crs="EPSG:32614"))
    assert p.source_crs == "EPSG:32614"
    assert p.frame.crs.to_epsg() == 4326
    back = p.frame.to_crs("EPSG:32614")
    np.testing.assert_allclose(back.geometry.x, x, atol=1e-6)  # metres
    np.testing.assert_allclose(back.geometry.y, y, atol=1e-6)
    # independent check of the stored lon/lat with pyproj
    lon, lat = pyproj.Transformer.from_crs(32614, 4326, always_xy=True).transform(x, y)
    np.testing.assert_allclose(p.frame.geometry.x, lon, atol=1e-9)
    np.testing.assert_allclose(p.frame.geometry.y, lat, atol=1e-9)
    assert p.working_crs == "EPSG:32614"


def test_vector_file_crs_is_read_and_reprojected(tmp_path):
    pts = gpd.GeoDataFrame(
        {"firm_id": ["a", "b"]},
        geometry=gpd.points_from_xy([500_000, 600_000], [2_300_000, 2_350_000]),
        crs="EPSG:32614",
    )
    pts.to_file(tmp_path / "f.gpkg", driver="GPKG")
    p = prepare("firms", tmp_path / "f.gpkg")
    assert p.source_crs == "EPSG:32614"
    back = p.frame.to_crs(32614)
    np.testing.assert_allclose(back.geometry.x, [500_000, 600_000], atol=1e-6)
    np.testing.assert_allclose(back.geometry.y, [2_300_000, 2_350_000], atol=1e-6)


@pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")
def test_crs_option_for_a_file_without_crs(tmp_path):
    pts = gpd.GeoDataFrame(
        {"firm_id": ["a"]}, geometry=gpd.points_from_xy([500_000], [2_300_000]), crs=None
    )
    pts.to_file(tmp_path / "f.gpkg", driver="GPKG")
    with pytest.raises(CRSError, match="declares no CRS"):
        prepare("firms", tmp_path / "f.gpkg")
    p = prepare("firms", tmp_path / "f.gpkg", IngestOptions(crs="EPSG:32614"))
    np.testing.assert_allclose(p.frame.to_crs(32614).geometry.x, [500_000], atol=1e-6)


def test_xy_in_degrees_without_crs_are_read_as_lonlat_with_a_warning(tmp_path):
    text = "id,x,y\n1,-101.68,21.12\n2,-103.35,20.67\n"
    p = prepare("firms", _csv(tmp_path, text), land=LAND)
    np.testing.assert_allclose(p.frame.geometry.x, [-101.68, -103.35])
    assert any("in degrees" in w for w in p.warnings)


def test_working_crs_option(tmp_path):
    p = prepare(
        "firms", _firms_csv(tmp_path, GOOD), IngestOptions(working_crs="EPSG:6372"), land=LAND
    )
    assert p.working_crs == "EPSG:6372"
    with pytest.raises(CRSError, match="projected CRS in metres"):
        prepare("firms", _firms_csv(tmp_path, GOOD), IngestOptions(working_crs="EPSG:4326"))
    with pytest.raises(CRSError, match="expected a known CRS"):
        prepare("firms", _firms_csv(tmp_path, GOOD), IngestOptions(crs="EPSG:999999"))


def test_southern_hemisphere_working_crs(tmp_path):
    text = "id,lon,lat\n1,-58.38,-34.60\n2,-58.40,-34.62\n"
    assert prepare("firms", _csv(tmp_path, text)).working_crs == "EPSG:32721"


# ------------------------------------------------------------------- file-level errors
def test_missing_coordinate_columns(tmp_path):
    with pytest.raises(MissingColumns, match="columns found: id, name, sector"):
        prepare("firms", _csv(tmp_path, "id,name,sector\n1,a,15\n"))


def test_option_naming_an_absent_column(tmp_path):
    with pytest.raises(MissingColumns, match=r"'LATX'.*columns found: firm_id, name, lon, lat"):
        prepare("firms", _firms_csv(tmp_path, GOOD), IngestOptions(lon_col="lon", lat_col="LATX"))


def test_file_level_errors_pass_through(tmp_path):
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(UnusableFile):
        prepare("firms", tmp_path / "e.csv")


def test_options_validation():
    with pytest.raises(InvalidInput, match="unknown ingest option"):
        IngestOptions.from_dict({"lon": "x"})
    with pytest.raises(InvalidInput, match="go together"):
        IngestOptions(lon_col="a")
    with pytest.raises(InvalidInput, match="one way to read coordinates"):
        IngestOptions(lon_col="a", lat_col="b", wkt_col="w")
    with pytest.raises(InvalidInput, match="sector_scheme"):
        IngestOptions(sector_scheme="sic")
    assert IngestOptions.from_dict({"level": "2", "max_bytes": 10.0, "crs": None}) == IngestOptions(
        level=2, max_bytes=10
    )
    with pytest.raises(InvalidInput, match="kind"):
        prepare("shops", "x.csv")


def test_progress_is_reported(tmp_path):
    seen: list[tuple[float, str]] = []
    prepare(
        "firms", _firms_csv(tmp_path, GOOD), progress=lambda f, m: seen.append((f, m)), land=LAND
    )
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)


# -------------------------------------------------------------------------- assets
def test_assets_vocabulary_normalised_and_unknown_rejected(tmp_path):
    text = (
        "asset_id,name,lon,lat,category,subtype,designation\n"
        "a1,Catedral,-98.198,19.043,Cultural,Church,National\n"
        "a2,Playa,-86.85,21.16,nature,beach,\n"
        "a3,Agave fields,-103.83,20.88,Agro-food,gi area,PDO\n"
        "a4,Mystery,-99.1,19.4,space,,\n"
        "a5,Museo,-99.1,19.4,,museum,\n"
        "a6,Listed,-99.1,19.4,cultural,,sort of\n"
    )
    p = prepare("assets", _csv(tmp_path, text), land=LAND)
    f = p.frame.set_index("asset_id")
    assert f.loc["a1", ["category", "subtype", "designation"]].tolist() == [
        "cultural", "religious_heritage", "national",
    ]  # fmt: skip
    assert f.loc["a2", "category"] == "natural" and pd.isna(f.loc["a2", "designation"])
    assert f.loc["a3", ["category", "subtype", "designation"]].tolist() == [
        "agro_food",
        "gi_area",
        "gi",
    ]
    assert f.loc["a5", "category"] == "cultural"  # derived from the subtype
    rej = _by_row(p)
    assert set(rej) == {4, 6}
    assert rej[4].column == "category" and rej[4].reason.startswith("unknown category 'space'")
    assert rej[6].column == "designation" and "unknown designation 'sort of'" in rej[6].reason


def test_assets_need_a_category(tmp_path):
    with pytest.raises(MissingColumns, match="category"):
        prepare("assets", _csv(tmp_path, "id,lon,lat\n1,-99,19\n"))


def test_unesco_world_heritage_export(tmp_path):
    text = (
        "id_no,name_en,category,date_inscribed,latitude,longitude,states_name_en\n"
        "414,Historic Centre of Puebla,Cultural,1987,19.0433,-98.1981,Mexico\n"
        "1209,Agave Landscape and Ancient Industrial Facilities of Tequila,Cultural,2006,20.8667,-103.8333,Mexico\n"
        "1410,Archipiélago de Revillagigedo,Natural,2016,18.7833,-112.3,Mexico\n"
        "9999,Broken,Cultural,2000,,-99,Mexico\n"
    )
    p = prepare("assets", _csv(tmp_path, text), land=LAND)
    assert any("UNESCO" in w for w in p.warnings)
    f = p.frame
    assert f["asset_id"].tolist() == ["whc-414", "whc-1209", "whc-1410"]
    assert f["designation"].unique().tolist() == ["unesco"]
    assert f["category"].tolist() == ["cultural", "cultural", "natural"]
    assert _by_row(p)[4].reason == "missing latitude"


# ---------------------------------------------------------------------- boundaries
def _regions(tmp_path: Path, crs: str = "EPSG:4326") -> Path:
    gdf = gpd.GeoDataFrame(
        {
            "CODE": ["01", "02", "03", "02"],
            "NAME": ["Aguascalientes", "Baja California", "Baja California Sur", "Dup"],
            "STATE": ["MX", "MX", "MX", "MX"],
        },
        geometry=[
            shapely.box(0, 0, 1, 1),
            shapely.box(1, 0, 2, 1),
            shapely.box(2, 0, 3, 1),
            shapely.box(3, 0, 4, 1),
        ],
        crs="EPSG:4326",
    ).to_crs(crs)
    path = tmp_path / "regions.gpkg"
    gdf.to_file(path, driver="GPKG")
    return path


def test_boundaries_canonical_columns_level_parent_and_duplicates(tmp_path):
    p = prepare("boundaries", _regions(tmp_path), IngestOptions(level=1, parent_col="STATE"))
    f = p.frame
    assert list(f.columns[:4]) == ["region_id", "name", "level", "parent_id"]
    assert f["region_id"].tolist() == ["01", "02", "03"]
    assert f["level"].unique().tolist() == [1]
    assert f["parent_id"].unique().tolist() == ["MX"]
    assert _by_row(p)[4] == Rejection(4, "CODE", "duplicate region_id '02' (first at row 2)")
    default = prepare("boundaries", _regions(tmp_path))
    assert default.frame["level"].unique().tolist() == [0]
    assert default.frame["parent_id"].isna().all()


def test_boundaries_reject_points(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"region_id": ["a", "b"]}, geometry=[shapely.box(0, 0, 1, 1), shapely.Point(5, 5)], crs=4326
    )
    gdf.to_file(tmp_path / "r.geojson", driver="GeoJSON")
    p = prepare("boundaries", tmp_path / "r.geojson")
    assert _by_row(p)[2].reason == "expected a polygon, got a Point"


def test_boundaries_need_an_id(tmp_path):
    gdf = gpd.GeoDataFrame({"label": ["a"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    gdf.to_file(tmp_path / "r.geojson", driver="GeoJSON")
    with pytest.raises(MissingColumns, match="columns found: label"):
        prepare("boundaries", tmp_path / "r.geojson")
    assert prepare("boundaries", tmp_path / "r.geojson", IngestOptions(id_col="label")).frame[
        "region_id"
    ].tolist() == ["a"]


def test_real_mexico_states():
    p = prepare("boundaries", REPO / "data" / "boundaries" / "mexico_states.gpkg")
    assert len(p.frame) == 32 and p.rejected == []
    assert p.frame.crs.to_epsg() == 4326
    # Mexico spans six UTM zones: the working CRS is a conformal conic fitted to it.
    assert p.working_crs.startswith("+proj=lcc")


# ---------------------------------------------------------------------- indicators
def test_indicators_long_table(tmp_path):
    text = (
        "region_id,year,indicator,value\n"
        "01,2000,gdp,10.5\n"
        "01,2010,gdp,12\n"
        "02,2000,gdp,n/a!\n"
        "02,2000.5,gdp,3\n"
        "01,2000,gdp,11\n"
        ",2000,gdp,1\n"
    )
    p = prepare("indicators", _csv(tmp_path, text))
    assert not isinstance(p.frame, gpd.GeoDataFrame)
    assert list(p.frame.columns[:4]) == ["region_id", "year", "indicator", "value"]
    assert p.frame["region_id"].tolist() == ["01", "01"]
    assert p.frame["year"].tolist() == [2000, 2010]
    rej = _by_row(p)
    assert rej[3].reason == "non-numeric value 'n/a!'"
    assert rej[4].reason == "year 2000.5 is not an integer"
    assert rej[5].reason.startswith("duplicate (region_id, year, indicator)")
    assert rej[6].reason == "missing region_id"
    assert p.source_crs is None and p.working_crs is None


def test_indicators_wide_table_with_prefixes(tmp_path):
    text = (
        "CODE,NAME,PCGDP1940,PCGDP1950,POP1940,POP1950\n"
        "MX01,Aguascalientes,10384,6234,161693,188075\n"
        "MX02,Baja California,22361,x,78907,\n"
    )
    p = prepare("indicators", _csv(tmp_path, text), IngestOptions(id_col="CODE"))
    f = p.frame.sort_values(["indicator", "region_id", "year"]).reset_index(drop=True)
    assert set(f["indicator"]) == {"PCGDP", "POP"}
    got = {(r.region_id, r.year, r.indicator): r.value for r in f.itertuples()}
    assert got[("MX01", 1940, "PCGDP")] == 10384
    assert got[("MX02", 1940, "POP")] == 78907
    assert ("MX02", 1950, "PCGDP") not in got and ("MX02", 1950, "POP") not in got
    assert p.rejected == [Rejection(2, "PCGDP1950", "non-numeric value 'x'")]
    assert any("empty cells" in w for w in p.warnings)


def test_indicators_wide_table_with_bare_years(tmp_path):
    text = "state,1940,1950\nA,1.5,2.5\nB,3.5,4.5\n"
    p = prepare(
        "indicators", _csv(tmp_path, text), IngestOptions(id_col="state", indicator="pcgdp")
    )
    assert set(p.frame["indicator"]) == {"pcgdp"}
    assert len(p.frame) == 4
    np.testing.assert_allclose(
        p.frame.sort_values(["region_id", "year"])["value"], [1.5, 2.5, 3.5, 4.5]
    )


def test_indicators_missing_columns(tmp_path):
    with pytest.raises(MissingColumns, match="columns found: a, b"):
        prepare("indicators", _csv(tmp_path, "a,b\n1,2\n"))


def test_projected_wkt_without_crs_is_an_error(tmp_path):
    text = 'id,wkt\n1,"POINT (500000 2300000)"\n'
    with pytest.raises(CRSError, match="declares no CRS"):
        prepare("firms", _csv(tmp_path, text))
    p = prepare("firms", _csv(tmp_path, text), IngestOptions(crs="EPSG:32614"))
    np.testing.assert_allclose(p.frame.to_crs(32614).geometry.x, [500_000], atol=1e-6)


# ------------------------------------------------------------------ real bundled data
@pytest.mark.parametrize(
    ("kind", "relpath", "min_rows"),
    [
        ("firms", "data/firms/mexico_demo_firms_SYNTHETIC.csv", 1000),
        ("assets", "data/assets/mexico_assets.csv", 10),
        ("indicators", "data/indicators/mexico_pcgdp.csv", 32 * 7),
        ("boundaries", "data/boundaries/natural_earth_countries.gpkg", 200),
    ],
)
def test_bundled_data_ingests_cleanly(kind, relpath, min_rows):
    path = REPO / relpath
    p = prepare(kind, path)
    assert len(p.frame) >= min_rows
    assert p.rejected == []
    if kind == "firms":
        assert p.frame["isic_division"].notna().all()
        assert p.working_crs.startswith("+proj=lcc")  # Mexico-wide: a fitted conic


def test_swapped_axis_order_in_a_geojson(tmp_path):
    # GeoJSON points written (lat, lon): all valid lon/lat pairs, but at sea in the fixture
    gdf = gpd.GeoDataFrame(
        {"firm_id": ["a", "b", "c"]},
        geometry=gpd.points_from_xy([45.0, 48.8, 52.5], [2.0, 2.3, 13.4]),
        crs=4326,
    )
    gdf.to_file(tmp_path / "f.geojson", driver="GeoJSON")
    with pytest.raises(InvalidInput, match="look swapped.*longitude first"):
        prepare("firms", tmp_path / "f.geojson", land=LAND)


# ------------------------------------------------------------- each format, end to end
def _firm_points(crs: str) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame(
        {
            "firm_id": ["a", "b", "c"],
            "name": ["Ñandú", "São", "Zoë"],
            "isic": ["1520", "2610", "1101"],
        },
        geometry=gpd.points_from_xy([-101.68, -103.35, -103.83], [21.12, 20.67, 20.88]),
        crs="EPSG:4326",
    )
    return gdf.to_crs(crs)


def _zip_shp(gdf: gpd.GeoDataFrame, tmp_path: Path) -> Path:
    import zipfile

    d = tmp_path / "shp"
    d.mkdir()
    gdf.to_file(d / "firms.shp", encoding="LATIN1")
    out = tmp_path / "firms.zip"
    with zipfile.ZipFile(out, "w") as zf:
        for f in d.iterdir():
            zf.write(f, f.name)
    return out


@pytest.mark.parametrize(
    "writer",
    [
        pytest.param(
            lambda g, d: (g.to_file(d / "f.geojson", driver="GeoJSON"), d / "f.geojson")[1],
            id="geojson",
        ),
        pytest.param(
            lambda g, d: (g.to_file(d / "f.gpkg", driver="GPKG"), d / "f.gpkg")[1], id="gpkg"
        ),
        pytest.param(
            lambda g, d: (g.to_file(d / "f.fgb", driver="FlatGeobuf"), d / "f.fgb")[1], id="fgb"
        ),
        pytest.param(
            lambda g, d: (g.to_parquet(d / "f.parquet"), d / "f.parquet")[1], id="geoparquet"
        ),
        pytest.param(_zip_shp, id="shapefile-zip"),
    ],
)
def test_every_vector_format_gives_the_same_canonical_firms(tmp_path, writer):
    source = _firm_points("EPSG:32613")
    path = writer(source, tmp_path)
    p = prepare("firms", path, land=LAND)
    f = p.frame.sort_values("firm_id").reset_index(drop=True)
    assert f["firm_id"].tolist() == ["a", "b", "c"]
    assert f["name"].tolist() == ["Ñandú", "São", "Zoë"]
    assert f["isic_division"].tolist() == ["15", "26", "11"]
    np.testing.assert_allclose(f.geometry.x, [-101.68, -103.35, -103.83], atol=1e-9)
    np.testing.assert_allclose(f.geometry.y, [21.12, 20.67, 20.88], atol=1e-9)
    assert p.rejected == []
    assert p.source_crs in ("EPSG:32613", "EPSG:4326")  # GeoJSON is always 4326


def test_utf16_tab_separated_with_decimal_comma(tmp_path):
    text = "id\tlat\tlon\tsector\n1\t19,43\t-99,13\t4711\n2\t20,67\t-103,35\t5610\n"
    path = tmp_path / "f.txt"
    path.write_bytes(text.encode("utf-16"))
    p = prepare("firms", path, land=LAND)
    np.testing.assert_allclose(p.frame.geometry.y, [19.43, 20.67])
    assert p.frame["sector_code"].tolist() == ["4711", "5610"]


def test_max_bytes_option(tmp_path):
    path = _firms_csv(tmp_path, GOOD)
    with pytest.raises(FileTooLarge, match="the limit is 50 bytes"):
        prepare("firms", path, {"max_bytes": 50})
    assert len(prepare("firms", path, {"max_bytes": 10_000}, land=LAND).frame) == 3


def test_missing_value_words(tmp_path):
    # "NA" is Namibia's ISO code and a text value; in a number column it means missing.
    text = (
        "region_id,name,lon,lat,founded,women_led\n"
        "NA,Namibia,17.08,-22.56,NA,n/a\n"
        "ZA,null,28.04,-26.2,1994,yes\n"
        "BW,Botswana,25.9,NA,1966,no\n"
    )
    p = prepare("firms", _csv(tmp_path, text), IngestOptions(id_col="region_id"))
    assert p.frame["firm_id"].tolist() == ["NA", "ZA"]
    assert p.frame["name"].tolist() == ["Namibia", "null"]
    assert _by_row(p)[3].reason == "missing latitude"
    assert not any("not years" in w or "not yes/no" in w for w in p.warnings)


def test_multi_layer_geopackage_picks_a_layer_that_fits_the_kind(tmp_path):
    import pyogrio

    path = tmp_path / "mixed.gpkg"
    table = pd.DataFrame({"region_id": ["01", "02"], "year": [2000, 2000], "value": [1.0, 2.0]})
    pyogrio.write_dataframe(table, path, layer="a_table")
    regions = gpd.GeoDataFrame(
        {"region_id": ["01", "02"]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
        crs=4326,
    )
    regions.to_file(path, layer="b_regions", driver="GPKG")
    assert len(prepare("boundaries", path).frame) == 2
    ind = prepare("indicators", path, {"indicator": "gdp"})
    assert ind.frame["value"].tolist() == [1.0, 2.0]
    assert any("choose another with layer" in w for w in ind.warnings)


# ------------------------------------------------------------------- CRS sanity (issue 11)
# Three firms in León, Guanajuato, given in UTM 14N (EPSG:32614); the eastings and
# northings are pyproj's transform of (-101.68, 21.12), (-101.69, 21.13), (-101.67, 21.11).
_T14 = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32614", always_xy=True)
_LEON = [(-101.68, 21.12), (-101.69, 21.13), (-101.67, 21.11)]


def _utm_rows(extra: list[str] = ()) -> list[str]:
    rows = []
    for i, (lon, lat) in enumerate(_LEON, 1):
        x, y = _T14.transform(lon, lat)
        rows.append(f"u{i},{x:.2f},{y:.2f},1520,5")
    return rows + list(extra)


def test_northing_far_outside_the_utm_zone_is_rejected_per_row(tmp_path):
    header = "firm_id,x,y,isic,employees"
    good = prepare(
        "firms", _firms_csv(tmp_path, _utm_rows(), header), IngestOptions(crs="EPSG:32614")
    )
    path = _firms_csv(tmp_path, _utm_rows(["bad,500000,99999999,1520,5"]), header, "b.csv")
    p = prepare("firms", path, IngestOptions(crs="EPSG:32614"), land=LAND)
    assert p.frame["firm_id"].tolist() == ["u1", "u2", "u3"]
    (r,) = p.rejected
    assert r.row == 4 and r.column is None
    assert "area of use" in r.reason and "99,999,999" in r.reason
    # the bogus northing does not move the working CRS: it is chosen from accepted rows
    assert p.working_crs == good.working_crs == "EPSG:32614"
    np.testing.assert_allclose(p.frame.geometry.x, [lon for lon, _ in _LEON], atol=1e-6)


def test_projected_crs_holding_degrees_is_a_file_error_naming_the_fix(tmp_path):
    rows = [f"d{i},{lon},{lat},1520,5" for i, (lon, lat) in enumerate(_LEON, 1)]
    path = _firms_csv(tmp_path, rows, "firm_id,x,y,isic,employees")
    with pytest.raises(UnusableFile, match="look like degrees.*drop --crs or use --crs EPSG:4326"):
        prepare("firms", path, IngestOptions(crs="EPSG:32614"), land=LAND)
    # the same with lon/lat columns and a wrong --crs
    path = _firms_csv(tmp_path, rows, "firm_id,lon,lat,isic,employees", "ll.csv")
    with pytest.raises(UnusableFile, match="drop --crs"):
        prepare("firms", path, IngestOptions(crs="EPSG:32614"), land=LAND)


def test_vector_file_declaring_utm_but_holding_degrees_is_a_file_error(tmp_path):
    frame = gpd.GeoDataFrame(
        {"firm_id": ["a", "b"], "isic": ["1520", "1520"]},
        geometry=[shapely.Point(lon, lat) for lon, lat in _LEON[:2]],
        crs="EPSG:32614",  # a wrong declaration: the numbers are degrees
    )
    frame.to_file(tmp_path / "f.gpkg")
    with pytest.raises(UnusableFile, match="declares EPSG:32614.*look like degrees"):
        prepare("firms", tmp_path / "f.gpkg", land=LAND)


def test_vector_point_outside_the_area_of_use_is_rejected(tmp_path):
    pts = [shapely.Point(*_T14.transform(lon, lat)) for lon, lat in _LEON]
    pts.append(shapely.Point(500000, 99_999_999))
    frame = gpd.GeoDataFrame(
        {"firm_id": ["a", "b", "c", "d"], "isic": ["1520"] * 4}, geometry=pts, crs="EPSG:32614"
    )
    frame.to_file(tmp_path / "f.gpkg")
    p = prepare("firms", tmp_path / "f.gpkg", land=LAND)
    assert p.frame["firm_id"].tolist() == ["a", "b", "c"]
    assert [r.row for r in p.rejected] == [4] and "area of use" in p.rejected[0].reason
    assert p.working_crs == "EPSG:32614"


def test_lonlat_columns_with_projected_magnitudes_are_a_file_error(tmp_path):
    path = _firms_csv(
        tmp_path, [r.replace("u", "m") for r in _utm_rows()], "firm_id,lon,lat,isic,employees"
    )
    with pytest.raises(UnusableFile, match="--x-col lon --y-col lat"):
        prepare("firms", path, land=LAND)


def test_unknown_crs_code_is_an_invalid_input_error(tmp_path):
    with pytest.raises(InvalidInput, match="EPSG:999999"):
        IngestOptions(crs="EPSG:999999")
    with pytest.raises(InvalidInput, match="working_crs"):
        prepare("firms", _firms_csv(tmp_path, GOOD), {"working_crs": "EPSG:999999"})
    # even when the file itself needs no CRS (lon/lat columns)
    with pytest.raises(CRSError):
        prepare("firms", _firms_csv(tmp_path, GOOD), {"crs": "EPSG:999999"})


def test_area_of_use_margin_against_pyproj_bounds():
    from geocluster.crs import area_of_use_bounds, in_area_of_use

    crs = pyproj.CRS("EPSG:32614")
    area = crs.area_of_use  # pyproj/EPSG: -102 .. -96 E, 0 .. 84 N
    assert (area.west, area.south, area.east, area.north) == (-102.0, 0.0, -96.0, 84.0)
    # half a zone (3 degrees) either side, a tenth of the height (8.4 degrees) below
    assert area_of_use_bounds(crs) == pytest.approx((-105.0, -8.4, -93.0, 90.0))
    inside = in_area_of_use(
        crs, np.array([-101.0, -104.9, -92.0, 83.5]), np.array([21, 21, 21, -0.18])
    )
    assert inside.tolist() == [True, True, False, False]
    assert area_of_use_bounds(pyproj.CRS("EPSG:3857")) is None  # the world: no check


# --------------------------------------------------------------- plausibility (issue 11)
def test_implausible_employees_and_founding_years_are_rejected_per_row(tmp_path):
    header = "firm_id,lon,lat,isic,employees,founded"
    rows = [
        "p1,-101.68,21.12,1520,12,1995",
        "p2,-101.69,21.13,1520,1000000000000,1995",
        "p3,-101.67,21.11,1520,3,1700",
        "p4,-101.66,21.10,1520,3,2999",
    ]
    p = prepare("firms", _firms_csv(tmp_path, rows, header), land=LAND)
    assert p.frame["firm_id"].tolist() == ["p1"]
    by = _by_row(p)
    assert by[2].column == "employees" and "1e+12" in by[2].reason and "1,000,000" in by[2].reason
    assert by[3].column == "founded" and "1700" in by[3].reason
    assert by[4].column == "founded" and "2999" in by[4].reason
    # the bounds are options
    opts = IngestOptions(employees_max=10**13, founded_min=1600, founded_max=3000)
    p = prepare("firms", _firms_csv(tmp_path, rows, header), opts, land=LAND)
    assert p.frame["firm_id"].tolist() == ["p1", "p2", "p3", "p4"]
    with pytest.raises(InvalidInput, match="founded_min"):
        IngestOptions(founded_min=2000, founded_max=1990)


# ---------------------------------------------------------- codes at full detail (issue 11)
def test_nace_code_is_kept_as_source_next_to_its_isic_class(tmp_path):
    header = "firm_id,lon,lat,nace2,employees"
    rows = [
        "n1,-101.68,21.12,15.20,12",  # footwear
        "n2,-101.69,21.13,15.11,3",  # tanning: no longer the same code as footwear
        "n3,-101.67,21.11,C10.13,3",
        "n4,-101.66,21.10,47.11,3",
    ]
    p = prepare("firms", _firms_csv(tmp_path, rows, header), land=LAND)
    f = p.frame
    assert f["sector_code"].tolist() == ["1520", "1511", "1010", "47"]
    assert f["sector_code_source"].tolist() == ["15.20", "15.11", "C10.13", "47.11"]
    assert f["sector_scheme"].unique().tolist() == ["nace2"]
    assert f["isic_division"].tolist() == ["15", "15", "10", "47"]


def test_isic_source_code_is_kept_as_written(tmp_path):
    p = prepare("firms", _firms_csv(tmp_path, GOOD), land=LAND)
    assert p.frame["sector_code_source"].tolist() == ["1520", "2610", "1101"]
    assert p.frame["sector_scheme"].unique().tolist() == ["isic4"]


def test_sector_filter_in_the_dataset_scheme_selects_nace_firms(tmp_path):
    from geocluster.clustering.firms import select_firms
    from geocluster.sectors import normalize_sector_filter

    header = "firm_id,lon,lat,code_naf,employees"  # French NAF: read as NACE
    rows = ["n1,-101.68,21.12,15.20Z,12", "n2,-101.69,21.13,15.11Z,3"]
    f = prepare("firms", _firms_csv(tmp_path, rows, header), land=LAND).frame
    assert f["sector_scheme"].iloc[0] == "nace2"
    for written in ("15.20", "1520"):
        codes = normalize_sector_filter([written], f["sector_scheme"].iloc[0])
        assert select_firms(f, sectors=codes)["firm_id"].tolist() == ["n1"]


def test_explicit_sector_scheme_without_a_sector_column_is_a_file_error(tmp_path):
    path = _firms_csv(tmp_path, ["a,-101.68,21.12,4"], "firm_id,lon,lat,employees")
    with pytest.raises(MissingColumns, match="sector_scheme=nace2.*--sector-col"):
        prepare("firms", path, IngestOptions(sector_scheme="nace2"), land=LAND)
    # without the option, firms without sectors are fine (with a warning)
    assert len(prepare("firms", path, land=LAND).frame) == 1


# ----------------------------------------------------------------- languages (issue 11)
def test_spanish_headers_and_si_no_booleans(tmp_path):
    text = (
        "Razón Social,Longitud,Latitud,CIIU,Personal ocupado,Año inicio,Liderada por mujer,"
        "Liderada por jóvenes,Informal\n"
        "Curtidos Peña,-101.68,21.12,1511,12,1998,Sí,No,no\n"
        "Calzado Ñandú,-101.69,21.13,1520,40,2011,NO,sí,SI\n"
        "Botas León,-101.67,21.11,1520,7,2020,,verdadero,falso\n"
    )
    p = prepare("firms", _csv(tmp_path, text), land=LAND)
    f = p.frame
    assert f["name"].tolist() == ["Curtidos Peña", "Calzado Ñandú", "Botas León"]
    assert f["sector_code"].tolist() == ["1511", "1520", "1520"]
    assert f["employees"].tolist() == [12, 40, 7]
    assert f["founded"].tolist() == [1998, 2011, 2020]
    assert f["women_led"].tolist() == [True, False, pd.NA]
    assert f["youth_led"].tolist() == [False, True, True]
    assert f["informal"].tolist() == [False, True, False]
    assert p.rejected == []


@pytest.mark.parametrize(
    ("header", "yes", "no"),
    [
        ("raison_sociale,longitude,latitude,code_naf,effectif,annee_creation,dirigee_par_femme", "oui", "non"),
        ("nome,longitude,latitude,cnae,funcionarios,ano_fundacao,mulher", "sim", "não"),
    ],
)  # fmt: skip
def test_french_and_portuguese_headers(tmp_path, header, yes, no):
    rows = [f"Sabots,-101.68,21.12,15.20,12,1999,{yes}", f"Cuir,-101.69,21.13,15.11,4,2001,{no}"]
    f = prepare("firms", _firms_csv(tmp_path, rows, header), land=LAND).frame
    assert f["name"].tolist() == ["Sabots", "Cuir"]
    assert f["sector_scheme"].iloc[0] == "nace2"  # NAF and CNAE-2009 keep NACE's digits
    assert f["sector_code"].tolist() == ["1520", "1511"]
    assert f["employees"].tolist() == [12, 4] and f["founded"].tolist() == [1999, 2001]
    assert f["women_led"].tolist() == [True, False]


def test_explicit_options_for_every_firm_column(tmp_path):
    header = "ref,lo,la,act,n,since,w,yg,inf,label"
    rows = ["r1,-101.68,21.12,1520,3,1990,1,0,x,Uno", "r2,-101.69,21.13,1511,5,2005,0,1,0,Dos"]
    opts = IngestOptions(
        id_col="ref", lon_col="lo", lat_col="la", sector_col="act", employees_col="n",
        founded_col="since", women_led_col="w", youth_led_col="yg", informal_col="inf",
        name_col="label",
    )  # fmt: skip
    f = prepare("firms", _firms_csv(tmp_path, rows, header), opts, land=LAND).frame
    assert f["firm_id"].tolist() == ["r1", "r2"] and f["name"].tolist() == ["Uno", "Dos"]
    assert f["founded"].tolist() == [1990, 2005]
    assert f["women_led"].tolist() == [True, False]
    assert f["youth_led"].tolist() == [False, True]
    assert f["informal"].tolist() == [True, False]
    with pytest.raises(MissingColumns, match="founded_col names the column 'nope'"):
        prepare(
            "firms", _firms_csv(tmp_path, rows, header), {**opts.to_dict(), "founded_col": "nope"}
        )


def test_spanish_asset_subtypes_keep_their_unicode_and_get_a_category(tmp_path):
    text = (
        "nombre,longitud,latitud,tipo\n"
        "Cañada de la Virgen,-100.93,20.86,Zona arqueológica\n"
        "Templo de San Francisco,-101.25,20.52,templo\n"
        "Museo Casa Diego Rivera,-101.25,21.02,Museo\n"
        "Mercado Hidalgo,-101.25,21.01,mercado\n"
        "Église Saint-Jean,-101.2,21.0,Église\n"
    )
    p = prepare("assets", _csv(tmp_path, text), land=LAND)
    f = p.frame
    assert f["name"].iloc[0] == "Cañada de la Virgen"
    assert f["subtype"].tolist() == ["zona_arqueológica", "templo", "museo", "mercado", "église"]
    assert f["category"].tolist() == ["cultural", "cultural", "cultural", "agro_food", "cultural"]
    assert p.rejected == []


def test_asset_columns_by_option(tmp_path):
    text = "id,lon,lat,clase_activo,subclase\na,-101.2,21.0,Patrimonio cultural,Zona arqueológica\n"
    opts = IngestOptions(category_col="clase_activo", subtype_col="subclase")
    f = prepare("assets", _csv(tmp_path, text), opts, land=LAND).frame
    assert f["category"].tolist() == ["cultural"] and f["subtype"].tolist() == ["zona_arqueológica"]


# ---------------------------------------------------------------- multi-sheet XLSX
def test_multi_sheet_xlsx_names_the_sheets_and_layer(tmp_path):
    path = tmp_path / "book.xlsx"
    firms = pd.DataFrame({"firm_id": ["a"], "lon": [-101.68], "lat": [21.12], "isic": ["1520"]})
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"note": ["read me", "second line"]}).to_excel(
            xl, sheet_name="Notas", index=False
        )
        firms.to_excel(xl, sheet_name="Empresas", index=False)
        pd.DataFrame().to_excel(xl, sheet_name="Vacía", index=False)
    with pytest.raises(UnusableFile, match=r"2 sheets \('Notas', 'Empresas'\).*--layer"):
        prepare("firms", path, land=LAND)
    p = prepare("firms", path, IngestOptions(layer="Empresas"), land=LAND)
    assert p.frame["firm_id"].tolist() == ["a"]


def test_indicator_years_beyond_int64_safe_range_are_rejected(tmp_path):
    text = "region_id,year,indicator,value\nr1,2000,gdp,1\nr2,1e30,gdp,2\nr3,-5,gdp,3\n"
    p = prepare("indicators", _csv(tmp_path, text))
    assert p.frame["region_id"].tolist() == ["r1"]
    assert [(r.row, r.column) for r in p.rejected] == [(2, "year"), (3, "year")]
    assert "outside 0..9999" in p.rejected[0].reason
