"""CLI: ``assets`` (density, linkage, gaps, clusters), ``zonal`` and ``raster add|list``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from geocluster.cli._common import add_workspace_arg, open_ws, print_json, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``assets``, ``zonal`` and ``raster``."""
    from geocluster.analyses.assets import ANALYSES
    from geocluster.assets.catalog import CATEGORIES
    from geocluster.assets.zonal import STATS

    p = sub.add_parser(
        "assets",
        help="territorial assets: density, firm linkage, gaps, clusters",
        description="Analyse a territorial-asset dataset: density per region (per km2 and "
        "per 10,000 inhabitants), firm-asset linkage (co-location quotient, firms within a "
        "radius), asset gaps (no linked business within the radius) or asset clusters.",
    )
    p.add_argument("analysis", choices=ANALYSES)
    add_workspace_arg(p)
    p.add_argument("--assets", required=True, help="assets dataset id")
    p.add_argument("--firms", help="firms dataset id (linkage, gaps)")
    p.add_argument("--boundaries", help="boundaries dataset id (density)")
    p.add_argument("--radius-m", type=float, default=5000.0, help="radius in metres (default 5000)")
    p.add_argument("--category", choices=tuple(CATEGORIES), help="only assets of this category")
    p.add_argument("--sector-group", help="firm group instead of the linked sectors, e.g. tourism")
    p.add_argument(
        "--sectors", help="comma-separated ISIC codes (sections, divisions, classes), e.g. 55,56"
    )
    p.add_argument("--permutations", type=int, default=99, help="CLQ permutation test (default 99)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eps-m", type=float, help="clusters: DBSCAN radius (default --radius-m)")
    p.add_argument("--min-samples", type=int, default=3, help="clusters: DBSCAN min_samples")
    p.add_argument("--level", type=int, help="density: boundary level")
    p.add_argument("--indicators", help="density: indicators dataset with population")
    p.add_argument("--population-indicator", default="population")
    p.add_argument("--year", type=int, help="density: population year (default latest)")
    p.add_argument("--population-raster", help="density: registered population raster id")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(handler=_assets)

    p = sub.add_parser(
        "zonal",
        help="zonal statistics of a registered raster per region or asset buffer",
        description="Statistics of a registered raster inside each region, or within "
        "--radius-m of each asset (e.g. population within 5 km). Windowed reads: the raster "
        "is never loaded whole.",
    )
    add_workspace_arg(p)
    p.add_argument("--raster", required=True, help="registered raster id")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--boundaries", help="boundaries dataset id")
    target.add_argument("--assets", help="assets dataset id")
    p.add_argument("--radius-m", type=float, help="buffer around each asset, metres")
    p.add_argument(
        "--stats",
        default="sum,mean",
        help=f"comma-separated among {','.join(STATS)} (default sum,mean)",
    )
    p.add_argument("--level", type=int)
    p.add_argument("--category", choices=tuple(CATEGORIES))
    p.add_argument("--band", type=int, default=1)
    p.add_argument(
        "--coverage",
        choices=("centre", "touched", "fraction"),
        default="centre",
        help="pixels in a zone: centre inside (default), touched, or weighted by area inside",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_zonal)

    p = sub.add_parser("raster", help="register or list rasters (GeoTIFF layers)")
    rsub = p.add_subparsers(dest="raster_command", metavar="{add,list}")
    rsub.required = True
    a = rsub.add_parser("add", help="validate a raster, store it as a COG and register it")
    a.add_argument("path", help="a GeoTIFF (or any GDAL raster file)")
    a.add_argument("--name", required=True, help="name; the id is its slug")
    add_workspace_arg(a)
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=_raster_add)
    ls = rsub.add_parser("list", help="list the registered rasters")
    add_workspace_arg(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_raster_list)


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _assets(args: argparse.Namespace) -> int:
    from geocluster.analyses.assets import run_assets

    ws = open_ws(args)
    with progress_bar(not args.json) as update:
        result = run_assets(
            ws,
            assets=args.assets,
            firms=args.firms,
            boundaries=args.boundaries,
            analysis=args.analysis,
            radius_m=args.radius_m,
            sector_group=args.sector_group,
            sectors=_split(args.sectors),
            category=args.category,
            permutations=args.permutations,
            seed=args.seed,
            eps_m=args.eps_m,
            min_samples=args.min_samples,
            level=args.level,
            indicators=args.indicators,
            population_indicator=args.population_indicator,
            year=args.year,
            population_raster=args.population_raster,
            progress=update,
        )
    if args.json:
        print_json(result)
        return 0
    _print_assets(result)
    return 0


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def _print_assets(result: dict[str, Any]) -> None:
    out = sys.stdout
    analysis = result["analysis"]
    out.write(f"run {result['run_id']}: {analysis} of {result['n_assets']} assets\n")
    if analysis == "density":
        out.write("region_id\tcategory\tn_assets\tper_km2\tper_10k\n")
        for r in result["rows"]:
            out.write(
                f"{r['region_id']}\t{r['category']}\t{r['n_assets']}\t"
                f"{_fmt(r['assets_per_km2'])}\t{_fmt(r['assets_per_10k'])}\n"
            )
    elif analysis == "clusters":
        out.write(f"{result['n_zones']} zones, {result['noise']} assets outside any zone\n")
        for f in result["zones"]["features"]:
            p = f["properties"]
            out.write(
                f"zone {p['zone_id']}: {p['n_assets']} assets ({p['categories']}), "
                f"{_fmt(p['area_km2'])} km2\n"
            )
    elif analysis == "gaps":
        out.write(
            f"{result['n_gaps']} assets with no linked business within {result['radius_m']:g} m\n"
        )
        for f in result["assets"]["features"]:
            p = f["properties"]
            near = p.get("nearest_linked_firm_m")
            out.write(
                f"{p['asset_id']}\t{p['name']}\t{p['category']}/{p['subtype']}\t"
                f"{p.get('designation') or '-'}\tnearest linked firm "
                f"{_fmt(near / 1000 if near is not None else None)} km\n"
            )
    else:
        out.write("co-location quotients (firms -> assets, assets -> firms):\n")
        for r in result["colocation"]:
            out.write(
                f"  {r['category']} vs {r['firms']}: {_fmt(r['clq_firms_to_assets'])} "
                f"(p={_fmt(r['p_firms_to_assets'])}), {_fmt(r['clq_assets_to_firms'])} "
                f"(p={_fmt(r['p_assets_to_firms'])})\n"
            )
        out.write(f"firms within {result['radius_m']:g} m of an asset:\n")
        for r in result["shares"]:
            out.write(f"  {r['firms']}: {r['n_within']}/{r['n_firms']} ({_fmt(r['share'])})\n")
        out.write(f"{result['assets_with_linked_firms']} assets have linked firms nearby\n")


def _zonal(args: argparse.Namespace) -> int:
    from geocluster.analyses.assets import run_zonal

    ws = open_ws(args)
    result = run_zonal(
        ws,
        raster=args.raster,
        boundaries=args.boundaries,
        assets=args.assets,
        radius_m=args.radius_m,
        stats=_split(args.stats) or [],
        level=args.level,
        category=args.category,
        band=args.band,
        coverage=args.coverage,
    )
    if args.json:
        print_json(result)
        return 0
    rows = result["rows"]
    stat_cols = [
        c for c in (rows[0] if rows else {}) if c in result["stats"] or c.startswith("share_")
    ]
    key = "region_id" if result["target"] == "boundaries" else "asset_id"
    sys.stdout.write(f"run {result['run_id']}: {len(rows)} zones\n")
    sys.stdout.write("\t".join([key, "name", *stat_cols]) + "\n")
    for r in rows:
        sys.stdout.write(
            "\t".join([str(r[key]), str(r.get("name")), *(_fmt(r[c]) for c in stat_cols)]) + "\n"
        )
    return 0


def _raster_add(args: argparse.Namespace) -> int:
    ws = open_ws(args)
    info = ws.add_raster(args.path, name=args.name)
    if args.json:
        print_json(info.to_dict())
    else:
        sys.stdout.write(
            f"raster {info.id}: {info.width} x {info.height} px, {info.count} band(s), "
            f"{info.dtype}, {info.crs}\n"
        )
    return 0


def _raster_list(args: argparse.Namespace) -> int:
    ws = open_ws(args)
    rasters = ws.rasters()
    if args.json:
        print_json([r.to_dict() for r in rasters])
        return 0
    for r in rasters:
        sys.stdout.write(f"{r.id}\t{r.name}\t{r.kind}\t{r.width}x{r.height}\t{r.crs}\n")
    return 0
