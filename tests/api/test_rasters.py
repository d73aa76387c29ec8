"""``/rasters``: upload, listing and PNG tiles (decoded, transparency and colours checked)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from api.tiling import lonlat_to_unit


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    u, v = lonlat_to_unit(np.array([lon]), np.array([lat]))
    return int(u[0] * (1 << z)), int(v[0] * (1 << z))


def test_raster_tile_png_with_transparent_nodata(demo_client, demo):
    rid = demo["kde"]
    x, y = _tile_of(-103.1, 20.45, 8)
    r = demo_client.get(f"/rasters/{rid}/tiles/WebMercatorQuad/8/{x}/{y}.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert "etag" in r.headers
    img = Image.open(io.BytesIO(r.content))
    assert img.size == (256, 256) and img.mode == "RGBA"
    alpha = np.asarray(img)[:, :, 3]
    assert (alpha == 0).any() and (alpha == 255).any()  # zero density is transparent
    r2 = demo_client.get(
        f"/rasters/{rid}/tiles/WebMercatorQuad/8/{x}/{y}.png",
        headers={"If-None-Match": r.headers["etag"]},
    )
    assert r2.status_code == 304


def test_raster_colormap_and_rescale(demo_client, demo):
    rid = demo["kde"]
    x, y = _tile_of(-103.1, 20.45, 8)
    base = f"/rasters/{rid}/tiles/WebMercatorQuad/8/{x}/{y}.png"
    a = demo_client.get(base + "?colormap=magma").content
    b = demo_client.get(base + "?colormap=viridis").content
    assert a != b
    assert demo_client.get(base + "?colormap=nope").status_code == 422
    assert demo_client.get(base + "?rescale=1,0").status_code == 422
    assert demo_client.get(base + "?rescale=0,0.5").status_code == 200


def test_raster_tile_outside_the_raster_is_404(demo_client, demo):
    x, y = _tile_of(100.0, -30.0, 8)
    r = demo_client.get(f"/rasters/{demo['kde']}/tiles/WebMercatorQuad/8/{x}/{y}.png")
    assert r.status_code == 404
    assert demo_client.get("/rasters/nope/tiles/WebMercatorQuad/0/0/0.png").status_code == 404


def test_raster_tilejson_and_listing(demo_client, demo):
    tj = demo_client.get(f"/rasters/{demo['kde']}/tilejson.json").json()
    assert tj["tiles"][0].endswith(".png")
    assert tj["rescale"][0] == 0.0 and tj["rescale"][1] > 0
    listed = demo_client.get("/rasters").json()["rasters"]
    assert demo["kde"] in {r["id"] for r in listed}
    one = demo_client.get(f"/rasters/{demo['kde']}").json()
    assert "path" not in one  # no server paths leak
    assert demo_client.get("/rasters/nope").status_code == 404


def test_raster_upload(client, tmp_path):
    from tests.api.fixtures import write_kde_raster

    tif = write_kde_raster(tmp_path / "surface.tif")
    r = client.post(
        "/rasters", data={"name": "Population"}, files={"file": ("surface.tif", tif.read_bytes())}
    )
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "population"
    r = client.post("/rasters", files={"file": ("junk.tif", b"not a tiff at all")})
    assert r.status_code == 400
