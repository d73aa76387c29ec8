"""Small synthetic workspaces for the API and browser tests (explicit CRS, seeded)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

#: Two synthetic firm concentrations (lon, lat, sd in degrees) in western Mexico.
CENTRES = [(-103.35, 20.67, 0.02), (-101.68, 21.12, 0.02)]


def synthetic_firms(
    n_per_centre: int = 300, n_background: int = 200, seed: int = 0
) -> gpd.GeoDataFrame:
    """Firms clustered around two centres plus uniform background, EPSG:4326."""
    rng = np.random.default_rng(seed)
    lon, lat, sector = [], [], []
    for (cx, cy, sd), code in zip(CENTRES, ("15", "26")):
        lon.append(rng.normal(cx, sd, n_per_centre))
        lat.append(rng.normal(cy, sd, n_per_centre))
        sector += [code] * n_per_centre
    lon.append(rng.uniform(-104.5, -100.5, n_background))
    lat.append(rng.uniform(19.5, 22.5, n_background))
    sector += list(rng.choice(["10", "47", "56"], n_background))
    lon = np.concatenate(lon)
    lat = np.concatenate(lat)
    n = len(lon)
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"F{i:05d}" for i in range(n)],
            "name": [f"Firm {i}" for i in range(n)],
            "sector_code": sector,
            "sector_scheme": "isic4",
            "isic_division": sector,
            "employees": rng.integers(1, 60, n).astype(float),
            "women_led": rng.random(n) < 0.3,
            "informal": rng.random(n) < 0.2,
        },
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
    )


def synthetic_regions() -> gpd.GeoDataFrame:
    """Six rectangular regions (3 x 2) covering the firms, with a parent each."""
    rows = []
    for i, x0 in enumerate((-104.5, -103.0, -101.5)):
        for j, y0 in enumerate((19.5, 21.0)):
            rows.append(
                {
                    "region_id": f"R{i}{j}",
                    "name": f"Region {i}{j}",
                    "level": 1,
                    "parent_id": f"P{i}",
                    "geometry": shapely.box(x0, y0, x0 + 1.5, y0 + 1.5),
                }
            )
    return gpd.GeoDataFrame(rows, crs="EPSG:4326")


def synthetic_indicators() -> pd.DataFrame:
    regions = [f"R{i}{j}" for i in range(3) for j in range(2)]
    rows = []
    for year, scale in ((2000, 1.0), (2010, 1.3)):
        for k, r in enumerate(regions):
            rows.append(
                {"region_id": r, "year": year, "indicator": "gdp_pc", "value": scale * (10 + 3 * k)}
            )
            rows.append(
                {"region_id": r, "year": year, "indicator": "population", "value": 1000.0 * (k + 1)}
            )
    return pd.DataFrame(rows)


def synthetic_assets() -> gpd.GeoDataFrame:
    cats = ["cultural", "natural", "agro_food", "tourism", "infrastructure"]
    rng = np.random.default_rng(1)
    n = 25
    return gpd.GeoDataFrame(
        {
            "asset_id": [f"A{i}" for i in range(n)],
            "name": [f"Asset {i}" for i in range(n)],
            "category": [cats[i % 5] for i in range(n)],
            "subtype": "site",
            "designation": None,
        },
        geometry=gpd.points_from_xy(rng.uniform(-104, -101, n), rng.uniform(20, 22, n)),
        crs="EPSG:4326",
    )


def write_kde_raster(path: Path) -> Path:
    """A small density-like GeoTIFF in EPSG:3857 around the first firm centre."""
    from affine import Affine

    from geocluster.io.raster import write_cog

    size = 64
    yy, xx = np.mgrid[0:size, 0:size]
    data = np.exp(-(((xx - 32) ** 2 + (yy - 32) ** 2) / (2 * 10.0**2))).astype("float32")
    data[data < 0.01] = 0.0
    # top-left corner at about (-103.4, 20.75), 1 km cells
    transform = Affine(1000.0, 0.0, -11_510_000.0, 0.0, -1000.0, 2_360_000.0)
    write_cog(path, data, transform=transform, crs="EPSG:3857", nodata=-1.0)
    return path


def hulls_for(firms: gpd.GeoDataFrame, labels: np.ndarray) -> gpd.GeoDataFrame:
    """Convex hulls with the CONTRACT summary columns, for a hand-labelled run."""
    rows = []
    proj = firms.to_crs("EPSG:32613")
    for cid in sorted(set(labels) - {-1}):
        sel = labels == cid
        hull = shapely.convex_hull(shapely.multipoints(proj.geometry[sel].to_numpy()))
        rows.append(
            {
                "cluster_id": int(cid),
                "n_firms": int(sel.sum()),
                "employees": float(firms["employees"][sel].sum()),
                "dominant_sector": firms["sector_code"][sel].mode().iloc[0],
                "area_km2": hull.area / 1e6,
                "geometry": hull,
            }
        )
    return gpd.GeoDataFrame(rows, crs="EPSG:32613").to_crs("EPSG:4326")


def build_demo_like_workspace(ws_dir: Path) -> dict:
    """Workspace with firms, regions, indicators, assets, a KDE raster and a clusters run.

    The clusters run comes from :func:`geocluster.analyses.clusters.run_clusters` when
    that module is available, else from labels assigned by distance to the centres.
    """
    from geocluster.workspace import Workspace

    ws = Workspace(ws_dir)
    firms = synthetic_firms()
    ws.add_dataset("firms", firms, name="firms")
    ws.add_dataset("boundaries", synthetic_regions(), name="regions")
    ws.add_dataset("indicators", synthetic_indicators(), name="indicators")
    ws.add_dataset("assets", synthetic_assets(), name="assets")
    tif = write_kde_raster(Path(ws_dir).parent / "kde_src.tif")
    kde = ws.add_raster(tif, name="kde firms", kind="kde")
    run_id = None
    try:
        from geocluster.analyses.clusters import run_clusters
    except ImportError:
        run_clusters = None
    if run_clusters is not None:
        result = run_clusters(ws, firms="firms", method="dbscan", eps_m=3000.0, min_samples=10)
        run_id = result["run_id"]
    else:
        lon = firms.geometry.x.to_numpy()
        lat = firms.geometry.y.to_numpy()
        labels = np.full(len(firms), -1)
        for k, (cx, cy, sd) in enumerate(CENTRES):
            labels[np.hypot(lon - cx, lat - cy) < 3 * sd] = k
        hulls = hulls_for(firms, labels)
        run = ws.save_run(
            "clusters",
            params={"firms": "firms", "method": "manual"},
            inputs=["firms"],
            layers={
                "labels": firms[["firm_id", "geometry"]].assign(cluster_id=labels),
                "hulls": hulls,
            },
            summary={"n_clusters": len(hulls)},
            primary="labels",
        )
        run_id = run.id
    hotspots_id = _hotspots_run(ws)
    specialization_id = ranking_id = None
    try:
        from geocluster.analyses.specialization import run_ranking, run_specialization
    except ImportError:
        pass
    else:
        specialization_id = run_specialization(ws, firms="firms", boundaries="regions")["run_id"]
        ranking_id = run_ranking(ws, clusters_run=run_id, boundaries="regions", assets="assets")[
            "run_id"
        ]
    return {
        "ws": ws,
        "firms": "firms",
        "kde": kde.id,
        "clusters_run": run_id,
        "hotspots_run": hotspots_id,
        "specialization_run": specialization_id,
        "ranking_run": ranking_id,
        "n_firms": len(firms),
    }


def _hotspots_run(ws) -> str:
    """A hotspots run of gdp_pc 2010 (``run_hotspots`` if available, else esda directly)."""
    try:
        from geocluster.analyses.specialization import run_hotspots
    except ImportError:
        run_hotspots = None
    if run_hotspots is not None:
        result = run_hotspots(
            ws,
            boundaries="regions",
            indicators="indicators",
            indicator="gdp_pc",
            year=2010,
            permutations=0,
        )
        return result["run_id"]
    import esda
    import libpysal

    regions = ws.read("regions")
    ind = ws.read("indicators")
    sel = ind[(ind["indicator"] == "gdp_pc") & (ind["year"] == 2010)].set_index("region_id")[
        "value"
    ]
    y = regions["region_id"].map(sel).to_numpy(dtype=float)
    w = libpysal.weights.Queen.from_dataframe(regions, use_index=False, silence_warnings=True)
    w.transform = "r"
    # permutations=0: no numba compilation (tens of seconds); quadrants only
    lisa = esda.Moran_Local(y, w, permutations=0)
    labels = np.array(["", "HH", "LH", "LL", "HL"])[lisa.q]
    table = pd.DataFrame(
        {
            "region_id": regions["region_id"],
            "statistic": lisa.Is,
            "label": labels,
            "significant": np.abs(lisa.Is) >= np.median(np.abs(lisa.Is)),
        }
    )
    run = ws.save_run(
        "hotspots",
        params={"boundaries": "regions", "method": "lisa"},
        inputs=["regions", "indicators"],
        layers={"regions": table},
        summary={},
    )
    return run.id
