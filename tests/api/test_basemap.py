"""``/basemap``: the offline basemap tiles (land, admin outlines, place names) and style.

Reference positions are GeoNames' own coordinates of the places (geonames.org ids 3998655
León de los Aldama, 3522507 Oaxaca, 3530597 Mexico City); tile numbers use the slippy-map
formula of the OSM wiki ("Slippy map tilenames"), written out here independently of the
code under test.
"""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
import shapely

LEON = (-101.68253, 21.12183)  # GeoNames 3998655, population 1,579,803
OAXACA = (-96.72365, 17.06542)  # GeoNames 3522507 ("Oaxaca", i.e. Oaxaca de Juárez)
MEXICO_CITY = (-99.12766, 19.42847)  # GeoNames 3530597


def slippy_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    lat_r = math.radians(lat)
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n)
    return x, y


def tile_lonlat(z: int, x: int, y: int, px: float, py: float, extent: int = 4096):
    """Lon/lat of tile coordinates (y down), the inverse slippy-map formula."""
    n = 2**z
    gx = (x + px / extent) / n
    gy = (y + py / extent) / n
    lon = gx * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * gy))))
    return lon, lat


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})


def get_tile(client, lon, lat, z):
    x, y = slippy_tile(lon, lat, z)
    r = client.get(f"/basemap/tiles/{z}/{x}/{y}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    return (z, x, y), decode(r.content)


def places(tile: dict) -> dict[str, dict]:
    return {f["properties"]["name"]: f for f in tile.get("places", {}).get("features", [])}


def test_style_json_describes_the_tiles(client):
    r = client.get("/basemap/style.json")
    assert r.status_code == 200
    style = r.json()
    assert style["version"] == 8
    src = style["sources"]["geocluster-basemap"]
    assert src["type"] == "vector"
    assert src["tiles"][0].endswith("/basemap/tiles/{z}/{x}/{y}")
    assert "GeoNames" in src["attribution"] and "Natural Earth" in src["attribution"]
    ids = [layer["id"] for layer in style["layers"]]
    assert ids[0] == "water" and style["layers"][0]["type"] == "background"
    assert {"land", "country-borders", "admin-borders", "place-labels"} <= set(ids)
    layers = {layer.get("source-layer") for layer in style["layers"]} - {None}
    assert layers == {"land", "admin", "country_labels", "places"}
    # the style's own tile URL answers
    x, y = slippy_tile(*LEON, 6)
    url = src["tiles"][0].format(z=6, x=x, y=y)
    assert client.get(url).status_code == 200


def test_leon_is_labelled_at_its_position(client):
    (z, x, y), tile = get_tile(client, *LEON, 10)
    assert {"land", "places"} <= set(tile)
    found = places(tile)
    assert "León de los Aldama" in found, sorted(found)
    feat = found["León de los Aldama"]
    assert feat["properties"]["population"] > 1_000_000
    assert feat["properties"]["rank"] == 0  # the largest place of the tile comes first
    px, py = feat["geometry"]["coordinates"]
    lon, lat = tile_lonlat(z, x, y, px, py)
    # one tile unit at zoom 10 is ~10 m: the label sits on GeoNames' coordinates
    assert lon == pytest.approx(LEON[0], abs=2e-4) and lat == pytest.approx(LEON[1], abs=2e-4)
    # the tile's land polygon covers the city
    land = shapely.geometry.shape(tile["land"]["features"][0]["geometry"])
    assert land.contains(shapely.Point(px, py))
    assert tile["land"]["features"][0]["properties"]["iso_a3"] == "MEX"


def test_oaxaca_and_small_towns_at_high_zoom(client):
    _, tile = get_tile(client, *OAXACA, 12)
    found = places(tile)
    assert "Oaxaca" in found, sorted(found)
    # at zoom 12 places down to 1,000 inhabitants are kept
    assert min(f["properties"]["population"] for f in found.values()) < 20_000


def test_low_zoom_keeps_only_large_places(client):
    _, tile = get_tile(client, *MEXICO_CITY, 4)
    found = places(tile)
    assert "Mexico City" in found
    assert all(f["properties"]["population"] >= 750_000 for f in found.values()), found.keys()
    # zoom 3 tile 1/3 spans 135-90 W, 0-41 N: Mexico's label point (Natural Earth's) is in it
    _, tile = get_tile(client, *MEXICO_CITY, 3)
    labels = {f["properties"]["name"] for f in tile["country_labels"]["features"]}
    assert "Mexico" in labels


def test_open_ocean_has_no_land(client):
    # mid Pacific, zoom 6: no country, no place
    _, tile = get_tile(client, -140.0, 0.5, 6)
    assert "land" not in tile and "places" not in tile


def test_admin_outlines_come_from_the_workspace(demo_client, client):
    # the demo workspace's six level-1 regions cover -104.5..-100, 19.5..22.5
    _, tile = get_tile(demo_client, -103.0, 21.0, 7)
    names = {f["properties"]["name"] for f in tile["admin"]["features"]}
    assert {"Region 00", "Region 10"} <= names
    kinds = {f["geometry"]["type"] for f in tile["admin"]["features"]}
    assert kinds <= {"LineString", "MultiLineString"}  # outlines, never filled
    _, empty_ws = get_tile(client, -103.0, 21.0, 7)
    assert "admin" not in empty_ws


def test_tiles_outside_the_grid_are_refused(client):
    r = client.get("/basemap/tiles/3/8/0")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "outside" in detail and "\n" not in detail and "/" not in detail.replace("3/8/0", "")
    assert client.get("/basemap/tiles/17/0/0").status_code == 422
