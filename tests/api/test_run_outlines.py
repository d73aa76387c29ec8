"""Below editor, stored cluster outlines leave the server as unions of safe grid cells.

Reference: the public grid itself (:func:`geocluster.disclosure.grid_cells` /
``cell_bounds``): every vertex of a published outline must be a corner of a cell of
that grid, and every cell it covers must hold at least ``min_contributors`` of the
cluster's firms, counted here from the firms' own coordinates. An editor still gets
the analysis hull, whose vertices are firm locations.
"""

from __future__ import annotations

import mapbox_vector_tile
import morecantile
import numpy as np
import shapely

from geocluster.disclosure import cell_bounds, grid_cells
from tests.api.fixtures import CENTRES, synthetic_firms
from tests.api.test_security import _h, world  # noqa: F401 (the keyed server fixture)

WMQ = morecantile.tms.get("WebMercatorQuad")


def _grid_vertex(x: float, y: float, zoom: int) -> bool:
    ix, iy = grid_cells(np.array([x]), np.array([y]), zoom)
    for dx in (0, -1):
        for dy in (0, -1):
            b = cell_bounds(zoom, ix + dx, iy + dy)[0]
            for cx, cy in ((b[0], b[1]), (b[0], b[3]), (b[2], b[1]), (b[2], b[3])):
                if abs(cx - x) < 1e-9 and abs(cy - y) < 1e-9:
                    return True
    return False


def test_viewer_items_of_a_clusters_run_are_grid_cell_unions(world):  # noqa: F811
    c, k, run = world["client"], world["keys"], world["run"]
    r = c.patch("/datasets/firms_a", json={"visibility": "public"}, headers=_h(k["a"]))
    assert r.status_code == 200
    try:
        settings = c.app.state.settings
        policy = settings.disclosure.policy()
        zoom, threshold = policy.public_zoom, policy.min_contributors
        firms = synthetic_firms(n_per_centre=120, n_background=60, seed=0)
        editor = c.get(f"/collections/{run}.clusters/items?limit=1000", headers=_h(k["a"]))
        assert editor.status_code == 200
        editor_geoms = {
            f["properties"]["cluster_id"]: shapely.geometry.shape(f["geometry"])
            for f in editor.json()["features"]
            if f["geometry"]
        }
        assert editor_geoms
        # the editor's hulls have firm locations as vertices
        xy = set(zip(firms.geometry.x.round(7), firms.geometry.y.round(7), strict=True))
        hull_vertices = {
            (round(x, 7), round(y, 7))
            for g in editor_geoms.values()
            for x, y in shapely.get_coordinates(g)
        }
        assert hull_vertices & xy
        labels = c.get(f"/collections/{run}/items?limit=10000", headers=_h(k["a"])).json()
        by_cluster: dict[int, list[tuple[float, float]]] = {}
        for f in labels["features"]:
            cid = f["properties"]["cluster_id"]
            if cid >= 0:
                by_cluster.setdefault(cid, []).append(tuple(f["geometry"]["coordinates"]))
        for headers in ({}, _h(k["viewer"])):
            r = c.get(f"/collections/{run}.clusters/items?limit=1000", headers=headers)
            assert r.status_code == 200, r.text
            feats = r.json()["features"]
            drawn = [f for f in feats if f["geometry"]]
            assert drawn, "a viewer still sees where the clusters are"
            for f in drawn:
                cid = f["properties"]["cluster_id"]
                geom = shapely.geometry.shape(f["geometry"])
                coords = shapely.get_coordinates(geom)
                assert all(_grid_vertex(x, y, zoom) for x, y in coords), cid
                assert not {(round(x, 7), round(y, 7)) for x, y in coords} & xy
                # every covered cell holds >= threshold of this cluster's firms
                pts = np.array(by_cluster[cid])
                ix, iy = grid_cells(pts[:, 0], pts[:, 1], zoom)
                cells, counts = np.unique(np.column_stack([ix, iy]), axis=0, return_counts=True)
                safe = {
                    tuple(cell) for cell, n in zip(cells, counts, strict=True) if n >= threshold
                }
                rep = shapely.get_coordinates(shapely.point_on_surface(shapely.get_parts(geom)))
                rx, ry = grid_cells(rep[:, 0], rep[:, 1], zoom)
                assert {(a, b) for a, b in zip(rx, ry, strict=True)} <= safe
                assert f["properties"]["centroid_lon"] is None or np.isfinite(
                    f["properties"]["centroid_lon"]
                )
            # the same outlines in the run layer's tiles
            lon, lat, _ = CENTRES[0]
            t = WMQ.tile(lon, lat, 10)
            r = c.get(
                f"/collections/{run}.clusters/tiles/WebMercatorQuad/10/{t.x}/{t.y}",
                headers=headers,
            )
            assert r.status_code == 200
            layers = mapbox_vector_tile.decode(r.content)
            polys = [f for layer in layers.values() for f in layer["features"]]
            assert polys
            for f in polys:
                assert "firm_id" not in f["properties"]
    finally:
        c.patch("/datasets/firms_a", json={"visibility": "private"}, headers=_h(k["a"]))
