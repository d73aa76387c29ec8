"""CLI: ``clusters``, ``kdistance``, ``kde`` (point clusters and density surfaces of firms)."""

from __future__ import annotations

import argparse

from geocluster.cli._common import add_workspace_arg, open_ws, print_json, progress_bar


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--firms", required=True, metavar="ID", help="firms dataset id")
    p.add_argument(
        "--sector",
        dest="sectors",
        action="extend",
        nargs="+",
        metavar="CODE",
        help="ISIC Rev.4 code(s): section letter, division (15), group (152) or class (1520)",
    )
    p.add_argument(
        "--sector-group", metavar="G", help="sector group: agro_food, tourism, creative_industries"
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``clusters``, ``kdistance`` and ``kde``."""
    p = sub.add_parser(
        "clusters",
        help="find point clusters of firms (DBSCAN or HDBSCAN)",
        description="Density clusters of firm locations in the working CRS, with per-cluster "
        "summaries (size, employees, sector mix, hull, density, shares). Saved as a run: "
        "collection <run_id> (firm labels) and <run_id>.clusters (hulls).",
    )
    add_workspace_arg(p)
    _add_selection(p)
    p.add_argument("--method", choices=("dbscan", "hdbscan"), default="dbscan")
    p.add_argument("--eps-m", type=float, default=1000.0, help="DBSCAN radius, metres (1000)")
    p.add_argument(
        "--min-samples",
        type=float,
        default=None,
        help="DBSCAN core threshold, the firm itself included (10); HDBSCAN core "
        "neighbourhood (default: --min-cluster-size)",
    )
    p.add_argument("--min-cluster-size", type=int, default=15, help="HDBSCAN (15)")
    p.add_argument(
        "--weight", choices=("employees",), default=None, help="weight firms by employees"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_clusters)

    p = sub.add_parser(
        "kdistance",
        help="k-distance curve of firms and the suggested DBSCAN eps",
        description="Distance of each firm to its k-th nearest firm (itself counted), sorted, "
        "and the curve's knee: a suggested --eps-m for 'clusters' with --min-samples k.",
    )
    add_workspace_arg(p)
    _add_selection(p)
    p.add_argument("-k", "--k", type=int, default=10, help="neighbour rank (10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_kdistance)

    p = sub.add_parser(
        "kde",
        help="kernel density surface of firms (COG raster)",
        description="Gaussian kernel density of firms on a grid in the working CRS (firms or "
        "employees per km2), written as a Cloud-Optimised GeoTIFF and registered as a raster.",
    )
    add_workspace_arg(p)
    _add_selection(p)
    p.add_argument(
        "--bandwidth", default="scott", help="'scott', 'silverman' or metres (default scott)"
    )
    p.add_argument("--cell-m", type=float, default=None, help="cell side in metres")
    p.add_argument("--grid-size", type=int, default=None, help="cells along the longer side")
    p.add_argument("--weight", choices=("employees",), default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_kde)


def _count(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _clusters(args: argparse.Namespace) -> int:
    from geocluster.analyses.clusters import run_clusters

    ws = open_ws(args)
    min_samples = _count(args.min_samples)
    if min_samples is None and args.method == "dbscan":
        min_samples = 10
    with progress_bar(not args.json) as update:
        result = run_clusters(
            ws,
            firms=args.firms,
            method=args.method,
            eps_m=args.eps_m,
            min_samples=min_samples,
            min_cluster_size=args.min_cluster_size,
            sectors=args.sectors,
            sector_group=args.sector_group,
            weight=args.weight,
            progress=update,
        )
    if args.json:
        print_json(result)
        return 0
    print(
        f"run {result['run_id']}: {result['n_clusters']:,} clusters, "
        f"{result['noise']:,} of {result['n_firms']:,} firms noise "
        f"(working CRS {result['working_crs']})"
    )
    feats = sorted(result["clusters"]["features"], key=lambda f: -(f["properties"]["n_firms"] or 0))
    if feats:
        print(f"  {'id':>5} {'firms':>7} {'employees':>10} {'sector':>6} {'km2':>9} {'per km2':>9}")
    for f in feats[:20]:
        p = f["properties"]
        emp = "" if p["employees"] is None else f"{p['employees']:,.0f}"
        print(
            f"  {p['cluster_id']:>5} {p['n_firms']:>7,} {emp:>10} "
            f"{p['dominant_sector'] or '':>6} {p['area_km2']:>9.3f} {p['density_per_km2']:>9.1f}"
        )
    if len(feats) > 20:
        print(f"  … and {len(feats) - 20:,} more (use --json, or the run's collections)")
    return 0


def _kdistance(args: argparse.Namespace) -> int:
    from geocluster.analyses.clusters import run_kdistance

    ws = open_ws(args)
    result = run_kdistance(
        ws, firms=args.firms, k=args.k, sectors=args.sectors, sector_group=args.sector_group
    )
    if args.json:
        print_json(result)
        return 0
    d = result["curve"]["distance_m"]
    print(
        f"k-distance (k={result['k']}) of {result['n_firms']:,} firms: "
        f"min {d[0]:,.1f} m, median {d[len(d) // 2]:,.1f} m, max {d[-1]:,.1f} m"
    )
    print(
        f"  knee at rank {result['knee_index']:,}: suggested --eps-m {result['knee_m']:,.1f} "
        f"with --min-samples {result['k']}  (run {result['run_id']})"
    )
    return 0


def _kde(args: argparse.Namespace) -> int:
    from geocluster.analyses.clusters import run_kde

    ws = open_ws(args)
    with progress_bar(not args.json) as update:
        result = run_kde(
            ws,
            firms=args.firms,
            bandwidth=args.bandwidth,
            cell_m=args.cell_m,
            grid_size=args.grid_size,
            weight=args.weight,
            sectors=args.sectors,
            sector_group=args.sector_group,
            progress=update,
        )
    if args.json:
        print_json(result)
        return 0
    unit = "employees" if args.weight else "firms"
    print(
        f"raster {result['raster_id']}: {result['width']} x {result['height']} cells of "
        f"{result['cell_m']:,.1f} m, bandwidth {result['bandwidth_m']:,.1f} m, "
        f"max {result['max_density']:,.2f} {unit} per km2"
    )
    return 0
