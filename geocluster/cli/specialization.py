"""CLI: ``specialization``, ``hotspots``, ``pointpattern``, ``rank``."""

from __future__ import annotations

import argparse
import json

from geocluster.cli._common import add_workspace_arg, open_ws, print_json, progress_bar
from geocluster.errors import InvalidInput


def _json_arg(text: str, what: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"expected {what} as JSON, got {text!r} ({exc.msg})") from None


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``specialization``, ``hotspots``, ``pointpattern`` and ``rank``."""
    p = sub.add_parser(
        "specialization",
        help="region x sector specialisation (LQ, HHI, Krugman, EG, MS, strong clusters)",
        description="Join firms to regions and compute location quotients, strong-cluster "
        "flags and stars per region x sector, HHI and Krugman per region, Ellison-Glaeser and "
        "Maurel-Sedillot per sector. Saved as a run (<run_id>: regions, <run_id>.rows).",
    )
    add_workspace_arg(p)
    p.add_argument("--firms", required=True, metavar="ID")
    p.add_argument("--boundaries", required=True, metavar="ID")
    p.add_argument("--measure", choices=("employees", "firms", "auto"), default="employees")
    p.add_argument("--sector-level", choices=("section", "division", "group"), default="division")
    p.add_argument(
        "--sector-group",
        dest="sector_groups",
        action="extend",
        nargs="+",
        metavar="G",
        help="with --sector-level group: the groups (default all)",
    )
    p.add_argument("--level", type=int, default=None, help="boundary level (default finest)")
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap replicates for LQ CIs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_specialization)

    p = sub.add_parser(
        "hotspots",
        help="LISA / Getis-Ord Gi* hot spots and global Moran's I of a value per region",
        description="Local spatial autocorrelation of an indicator (or inline values) over "
        "region polygons, with seeded permutations; PySAL (esda) underneath.",
    )
    add_workspace_arg(p)
    p.add_argument("--boundaries", required=True, metavar="ID")
    p.add_argument("--indicators", metavar="ID", help="indicators dataset id")
    p.add_argument("--indicator", metavar="NAME")
    p.add_argument("--year", type=int, default=None, help="default: the latest year")
    p.add_argument("--values", metavar="JSON", help='inline {"region_id": value, ...}')
    p.add_argument(
        "--specialization-run",
        metavar="RUN_ID",
        help="use a specialization run: the LQ of --sector, or firms per km2 without it",
    )
    p.add_argument("--sector", metavar="CODE", help="with --specialization-run")
    p.add_argument("--method", choices=("lisa", "gi_star"), default="lisa")
    p.add_argument("--weights", default="queen", help="queen, rook, knn:K or distance:M (metres)")
    p.add_argument("--permutations", type=int, default=999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fdr", action="store_true", help="Benjamini-Hochberg false discovery rate")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--level", type=int, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_hotspots)

    p = sub.add_parser(
        "pointpattern",
        help="Ripley's L or Duranton-Overman K-density test of a sector's firms",
    )
    add_workspace_arg(p)
    p.add_argument("--firms", required=True, metavar="ID")
    p.add_argument("--sector", dest="sectors", action="extend", nargs="+", metavar="CODE")
    p.add_argument("--sector-group", metavar="G")
    p.add_argument("--method", choices=("ripley", "kdensity"), default="ripley")
    p.add_argument("--simulations", type=int, default=99)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-distance-m", type=float, default=None, help="K-density range")
    p.add_argument("--boundaries", metavar="ID", help="with --region: test inside one region")
    p.add_argument("--region", metavar="REGION_ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_pointpattern)

    p = sub.add_parser(
        "rank",
        help="rank the clusters of a clusters run (size, specialisation, density, ...)",
        description="Score each cluster of a 'clusters' run on the UNIDO criteria; every "
        "normalised component is shown with the weights used.",
    )
    add_workspace_arg(p)
    p.add_argument("--clusters-run", required=True, metavar="RUN_ID")
    p.add_argument("--boundaries", metavar="ID", help="for the LQ (specialisation) component")
    p.add_argument("--assets", metavar="ID", help="for the territorial-assets component")
    p.add_argument("--radius-m", type=float, default=5000.0)
    p.add_argument("--weights", metavar="JSON", help='e.g. {"dynamism": 0.3, "assets": 0}')
    p.add_argument("--measure", choices=("employees", "firms", "auto"), default="employees")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_rank)


def _fmt(v, spec=".2f") -> str:
    return "" if v is None else format(v, spec)


def _specialization(args: argparse.Namespace) -> int:
    from geocluster.analyses.specialization import run_specialization

    ws = open_ws(args)
    with progress_bar(not args.json) as update:
        result = run_specialization(
            ws,
            firms=args.firms,
            boundaries=args.boundaries,
            measure=args.measure,
            sector_level=args.sector_level,
            level=args.level,
            bootstrap=args.bootstrap,
            seed=args.seed,
            sector_groups=args.sector_groups,
            progress=update,
        )
    if args.json:
        print_json(result)
        return 0
    print(
        f"run {result['run_id']}: {result['n_firms']:,} firms in regions "
        f"({result['outside']:,} outside), LQ on {result['measure_used']}"
    )
    strong = sorted(
        (r for r in result["rows"] if r["strong"]),
        key=lambda r: (r["small_count"], -r["stars"], -(r["employees"] or 0), -r["count"]),
    )
    print(f"  {len(strong)} strong region x sector cells (largest first; * fewer than 3 firms)")
    for r in strong[:20]:
        flag = "*" if r["small_count"] else " "
        print(
            f"  {r['region_id']:>12} {r['sector']:>6} LQ {_fmt(r['lq']):>7} "
            f"firms {r['count']:>6,}{flag} stars {r['stars']}"
        )
    return 0


def _hotspots(args: argparse.Namespace) -> int:
    from geocluster.analyses.specialization import run_hotspots

    ws = open_ws(args)
    values = _json_arg(args.values, "--values") if args.values else None
    result = run_hotspots(
        ws,
        boundaries=args.boundaries,
        values=values,
        indicators=args.indicators,
        indicator=args.indicator,
        year=args.year,
        method=args.method,
        weights=args.weights,
        permutations=args.permutations,
        seed=args.seed,
        fdr=args.fdr,
        alpha=args.alpha,
        level=args.level,
        specialization_run=args.specialization_run,
        sector=args.sector,
    )
    if args.json:
        print_json(result)
        return 0
    g = result["global"]
    print(
        f"run {result['run_id']}: Moran's I {_fmt(g['moran_i'], '.3f')} "
        f"(p {_fmt(g['p_value'], '.3f')}), {args.method} with {args.weights} weights"
    )
    for r in result["regions"]:
        if r["significant"]:
            print(f"  {r['region_id']:>12} {r['label']:>4} p {_fmt(r['p_value'], '.3f')}")
    return 0


def _pointpattern(args: argparse.Namespace) -> int:
    from geocluster.analyses.specialization import run_pointpattern

    ws = open_ws(args)
    result = run_pointpattern(
        ws,
        firms=args.firms,
        sectors=args.sectors,
        sector_group=args.sector_group,
        method=args.method,
        n_simulations=args.simulations,
        seed=args.seed,
        max_distance_m=args.max_distance_m,
        boundaries=args.boundaries,
        region=args.region,
    )
    if args.json:
        print_json(result)
        return 0
    if args.method == "ripley":
        over = [d for d, c in zip(result["distance_m"], result["clustered"]) if c]
        print(
            f"run {result['run_id']}: Ripley's L of {result['n_points']:,} firms; "
            f"clustered at {len(over)} of {len(result['distance_m'])} distances"
        )
    else:
        print(
            f"run {result['run_id']}: K-density of {result['n_firms']:,} firms: "
            f"localization {result['localization_index']:.4f}, "
            f"dispersion {result['dispersion_index']:.4f}"
        )
    return 0


def _rank(args: argparse.Namespace) -> int:
    from geocluster.analyses.specialization import run_ranking

    ws = open_ws(args)
    weights = _json_arg(args.weights, "--weights") if args.weights else None
    result = run_ranking(
        ws,
        clusters_run=args.clusters_run,
        boundaries=args.boundaries,
        assets=args.assets,
        radius_m=args.radius_m,
        weights=weights,
        measure=args.measure,
    )
    if args.json:
        print_json(result)
        return 0
    print(f"run {result['run_id']}: weights {result['weights']}")
    for c in result["clusters"][:20]:
        print(
            f"  #{c['rank']:<3} cluster {c['cluster_id']:>5} score {c['score']:.3f} "
            f"firms {c['n_firms']:,.0f} sector {c['dominant_sector']}"
        )
    return 0
