"""Specs of the point-cluster analyses: ``clusters``, ``kdistance``, ``kde``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from geocluster.analyses.spec import AnalysisSpec, Cli, Params, register
from geocluster.analyses.specs._fields import FirmsId, Preset, SectorGroup, Sectors

Weight = Annotated[
    Literal["employees"] | None,
    Field(description="weight firms by employees (unknown counts as 1)"),
]


class ClustersParams(Params):
    """Parameters of ``clusters``."""

    firms: FirmsId
    method: Literal["dbscan", "hdbscan"] = Field(
        "dbscan", description="exact grid DBSCAN or HDBSCAN (fast_hdbscan)"
    )
    eps_m: float = Field(1000.0, gt=0, le=1_000_000, description="DBSCAN radius in metres")
    min_samples: float | None = Field(
        None,
        ge=1,
        le=100_000,
        description="DBSCAN core threshold, the firm itself included (default 10; employees "
        "when weighted); HDBSCAN core neighbourhood (default: min_cluster_size)",
    )
    min_cluster_size: int = Field(
        15, ge=2, le=1_000_000, description="HDBSCAN smallest cluster (firms)"
    )
    sectors: Sectors = None
    sector_group: SectorGroup = None
    weight: Weight = None
    by: Literal["section", "division", "group"] | None = Field(
        None,
        description="national scan: cluster each ISIC section, division or group separately "
        "in one run (every cluster carries its sector); progress per sector",
    )
    preset: Preset = None


def _count(value: float | None) -> float | int | None:
    return int(value) if value is not None and float(value).is_integer() else value


def _run_clusters(ctx: Any, p: ClustersParams, progress) -> Any:
    from geocluster.analyses.clusters import clusters_result

    values = p.model_dump()
    preset = values.pop("preset")
    if preset is not None:
        from geocluster.clustering.presets import get_preset

        chosen = get_preset(preset)
        if p.method != "dbscan":
            from geocluster.errors import InvalidInput

            raise InvalidInput(f"expected method dbscan with preset {preset!r}, got {p.method!r}")
        # explicit values win over the preset's
        if "eps_m" not in p.model_fields_set:
            values["eps_m"] = chosen.eps_m
        if "min_samples" not in p.model_fields_set:
            values["min_samples"] = chosen.min_samples
        if "weight" not in p.model_fields_set:
            values["weight"] = None  # the preset's measure: firm counts
    min_samples = _count(values["min_samples"])
    if min_samples is None and p.method == "dbscan":
        min_samples = 10
    values["min_samples"] = min_samples
    result = clusters_result(ctx, **values, progress=progress)
    return result if preset is None else _keep_preset_clusters(result, chosen)


def _keep_preset_clusters(result: Any, preset: Any) -> Any:
    """The result with only the clusters of at least ``preset.min_firms`` firms.

    The stored run keeps every detected concentration (its layers are the DBSCAN output);
    the response lists the clusters the preset's definition accepts and names the others.
    """
    from dataclasses import replace

    from geocluster.clustering.presets import keep_clusters

    layer = result.layers["clusters"]
    kept = keep_clusters(layer.frame, preset)
    dropped = sorted(set(layer.frame["cluster_id"]) - set(kept["cluster_id"]))
    body = {
        **dict(result.body),
        "n_clusters": len(kept),
        "preset": preset.to_dict(),
        "below_min_firms": [int(c) for c in dropped],
    }
    return replace(result, body=body, layers={**result.layers, "clusters": layer.with_frame(kept)})


def _clusters_text(r: Mapping[str, Any]) -> str:
    lines = [
        f"run {r['run_id']}: {r['n_clusters']:,} clusters, {r['noise']:,} of "
        f"{r['n_firms']:,} firms noise (working CRS {r['working_crs']})"
    ]
    feats = sorted(r["clusters"]["features"], key=lambda f: -(f["properties"]["n_firms"] or 0))
    if feats:
        lines.append(
            f"  {'id':>5} {'firms':>7} {'employees':>10} {'sector':>6} {'km2':>9} {'per km2':>9}"
        )
    for f in feats[:20]:
        p = f["properties"]
        emp = "" if p["employees"] is None else f"{p['employees']:,.0f}"
        n = "" if p["n_firms"] is None else f"{p['n_firms']:,}"
        area = "" if p.get("area_km2") is None else f"{p['area_km2']:.3f}"
        dens = "" if p.get("density_per_km2") is None else f"{p['density_per_km2']:.1f}"
        lines.append(
            f"  {p['cluster_id']:>5} {n:>7} {emp:>10} {p['dominant_sector'] or '':>6} "
            f"{area:>9} {dens:>9}"
        )
    if len(feats) > 20:
        lines.append(f"  … and {len(feats) - 20:,} more (use --json, or the run's collections)")
    return "\n".join(lines)


CLUSTERS = register(
    AnalysisSpec(
        name="clusters",
        summary="Density clusters of firms (DBSCAN/HDBSCAN)",
        description="Density clusters of firm locations in the working CRS, with per-cluster "
        "summaries (size, employees, sector mix, hull, density, shares). Saved as a run: "
        "collection <run_id> (per-firm labels, noise -1) and <run_id>.clusters (hulls). "
        "Returns run_id, n_clusters, noise and clusters (a FeatureCollection).",
        params=ClustersParams,
        run=_run_clusters,
        examples=({"firms": "firms", "method": "dbscan", "eps_m": 1500, "min_samples": 10},),
        text=_clusters_text,
    )
)


class KDistanceParams(Params):
    """Parameters of ``kdistance``."""

    firms: FirmsId
    k: Annotated[
        int,
        Field(ge=1, le=1000, description="neighbour rank, the firm itself counted"),
        Cli(aliases=("-k",)),
    ] = 10
    sectors: Sectors = None
    sector_group: SectorGroup = None


def _run_kdistance(ctx: Any, p: KDistanceParams, progress) -> Any:
    from geocluster.analyses.clusters import kdistance_result

    return kdistance_result(ctx, **p.model_dump(), progress=progress)


def _kdistance_text(r: Mapping[str, Any]) -> str:
    d = r["curve"]["distance_m"]
    return (
        f"k-distance (k={r['k']}) of {r['n_firms']:,} firms: min {d[0]:,.1f} m, median "
        f"{d[len(d) // 2]:,.1f} m, max {d[-1]:,.1f} m\n"
        f"  knee at rank {r['knee_index']:,}: suggested --eps-m {r['knee_m']:,.1f} with "
        f"--min-samples {r['k']}  (run {r['run_id']})"
    )


KDISTANCE = register(
    AnalysisSpec(
        name="kdistance",
        summary="k-distance curve of firms and the suggested DBSCAN eps",
        description="Distance of each firm to its k-th nearest firm (itself counted), sorted, "
        "and the curve's knee: a suggested eps_m for 'clusters' with min_samples k.",
        params=KDistanceParams,
        run=_run_kdistance,
        examples=({"firms": "firms", "k": 10},),
        text=_kdistance_text,
    )
)


class KDEParams(Params):
    """Parameters of ``kde``."""

    firms: FirmsId
    bandwidth: Literal["scott", "silverman"] | Annotated[float, Field(gt=0)] = Field(
        "scott", description="Gaussian kernel: 'scott', 'silverman' or a bandwidth in metres"
    )
    cell_m: float | None = Field(None, gt=0, description="output cell side in metres")
    grid_size: int | None = Field(None, ge=2, le=10_000, description="cells along the longer side")
    weight: Weight = None
    sectors: Sectors = None
    sector_group: SectorGroup = None


def _run_kde(ctx: Any, p: KDEParams, progress) -> Any:
    from geocluster.analyses.clusters import kde_result

    # --engine dask: the per-piece grids are computed and summed on the workers
    engine = ctx.engine() if getattr(ctx, "engine_name", "local") != "local" else None
    return kde_result(ctx, **p.model_dump(), progress=progress, engine=engine)


def _kde_text(r: Mapping[str, Any]) -> str:
    peak = "-" if r.get("max_density") is None else f"{r['max_density']:,.2f}"
    unit = "employees" if r["params"].get("weight") else "firms"
    return (
        f"raster {r['raster_id']}: {r['width']} x {r['height']} cells of {r['cell_m']:,.1f} m, "
        f"bandwidth {r['bandwidth_m']:,.1f} m, max {peak} {unit} per km2"
    )


KDE = register(
    AnalysisSpec(
        name="kde",
        summary="Kernel density surface of firms (registered as a raster)",
        description="Gaussian kernel density of firms on a grid in the working CRS (firms or "
        "employees per km2), written as a Cloud-Optimised GeoTIFF and registered as a raster: "
        "tiles at /rasters/{raster_id}/tiles/WebMercatorQuad/{z}/{x}/{y}.png.",
        params=KDEParams,
        run=_run_kde,
        examples=({"firms": "firms", "bandwidth": "scott", "cell_m": 1000},),
        text=_kde_text,
    )
)
