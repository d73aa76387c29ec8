"""CLI: ``inequality``, ``compare``, ``profile``, ``peers``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geocluster.cli._common import add_workspace_arg, open_ws, print_json, progress_bar
from geocluster.errors import InvalidInput


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``inequality``, ``compare``, ``profile`` and ``peers``."""
    p = sub.add_parser(
        "inequality",
        help="Gini, Theil, Atkinson, Williamson … for inline values or an indicator over years",
        description="Either inline values (--values 1,2,3 [--population …] [--groups …] "
        "[--weights 0-1,1-2]) or an indicators dataset (--indicators ID --indicator NAME "
        "[--years 1940,2000] [--population-indicator NAME] [--group-by parent_id] "
        "[--boundaries ID]). Results from a dataset are stored as a run.",
    )
    add_workspace_arg(p)
    inline = p.add_argument_group("inline values")
    inline.add_argument("--values", help="comma-separated regional values")
    inline.add_argument(
        "--population", help="comma-separated populations (inline), or an indicator name"
    )
    inline.add_argument("--groups", help="comma-separated group labels (Theil decomposition)")
    inline.add_argument(
        "--weights", help="neighbour pairs of 0-based indices, e.g. 0-1,1-2 (spatial Gini)"
    )
    data = p.add_argument_group("from an indicators dataset")
    data.add_argument("--indicators", metavar="ID", help="indicators dataset id")
    data.add_argument("--indicator", metavar="NAME", help="indicator to analyse")
    data.add_argument("--years", help="comma-separated years (default: all)")
    data.add_argument("--population-indicator", metavar="NAME", help="population indicator")
    data.add_argument("--group-by", metavar="COLUMN", help="boundaries column, e.g. parent_id")
    data.add_argument("--boundaries", metavar="ID", help="boundaries dataset (spatial Gini)")
    data.add_argument("--level", type=int, help="only regions of this boundaries level")
    p.add_argument("--permutations", type=int, default=99)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--png", metavar="FILE", help="also write a chart to FILE")
    p.add_argument(
        "--chart",
        choices=("lorenz", "indices", "decomposition"),
        default=None,
        help="chart for --png (default: indices over years, or the Lorenz curve)",
    )
    p.set_defaults(handler=_inequality)

    for name, helptext in (
        ("compare", "compare 2-10 regions side by side"),
        ("profile", "everything the workspace knows about one region"),
        ("peers", "the k regions most similar on standardised indicators"),
    ):
        q = sub.add_parser(name, help=helptext)
        add_workspace_arg(q)
        if name == "compare":
            q.add_argument("regions", nargs="+", metavar="REGION", help="region ids")
        else:
            q.add_argument("region", metavar="REGION", help="region id")
        q.add_argument("--boundaries", metavar="ID", help="default: the newest boundaries")
        q.add_argument("--firms", metavar="ID")
        q.add_argument("--indicators", metavar="ID")
        q.add_argument("--year", type=int, help="indicator year (default: latest)")
        if name != "peers":
            q.add_argument("--assets", metavar="ID")
        else:
            q.add_argument("-k", type=int, default=5, help="number of peers (default 5)")
        q.add_argument("--json", action="store_true")
        q.set_defaults(handler={"compare": _compare, "profile": _profile, "peers": _peers}[name])


def _floats(text: str | None, what: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise InvalidInput(f"expected {what} as comma-separated numbers, got {text!r}") from exc


def _pairs(text: str | None) -> list[list[int]] | None:
    if text is None:
        return None
    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            i, j = part.split("-")
            out.append([int(i), int(j)])
        except ValueError as exc:
            raise InvalidInput(
                f"expected --weights as i-j pairs like 0-1,1-2, got {part!r}"
            ) from exc
    return out


def _inequality(args: argparse.Namespace) -> int:
    from geocluster.analyses.inequality import chart_png, run_inequality

    population = args.population
    kwargs = {"permutations": args.permutations, "seed": args.seed}
    if args.values is not None:
        kwargs.update(
            values=_floats(args.values, "--values"),
            population=_floats(population, "--population"),
            groups=[g.strip() for g in args.groups.split(",")] if args.groups else None,
            weights=_pairs(args.weights),
        )
        ws = None
        stray = [
            flag
            for flag, v in (
                ("--indicator", args.indicator),
                ("--years", args.years),
                ("--population-indicator", args.population_indicator),
                ("--group-by", args.group_by),
                ("--boundaries", args.boundaries),
                ("--level", args.level),
            )
            if v is not None
        ]
        if stray:
            raise InvalidInput(f"{', '.join(stray)} only apply with --indicators, not --values")
    else:
        if args.groups or args.weights:
            raise InvalidInput("--groups and --weights go with --values; use --group-by instead")
        years = None
        if args.years:
            try:
                years = [int(y) for y in args.years.split(",") if y.strip()]
            except ValueError as exc:
                raise InvalidInput(f"expected --years like 1940,2000, got {args.years!r}") from exc
        kwargs.update(
            indicators=args.indicators,
            indicator=args.indicator,
            years=years,
            population_indicator=args.population_indicator or population,
            group_by=args.group_by,
            boundaries=args.boundaries,
            level=args.level,
        )
        ws = open_ws(args) if args.indicators is not None else None
    with progress_bar(not args.json) as progress:
        result = run_inequality(ws, progress=progress, **kwargs)
    if args.png:
        kind = args.chart or (
            "indices" if result["mode"] == "indicators" and len(result["years"]) > 1 else "lorenz"
        )
        Path(args.png).write_bytes(chart_png(kind, result))
    if args.json:
        print_json(result)
    else:
        _print_inequality(result)
        if args.png:
            print(f"chart written to {args.png}")
    return 0


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4f}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def _print_inequality(result: dict) -> None:
    out = sys.stdout
    entries = {"": result["result"]} if result["mode"] == "inline" else result["years"]
    cols = ["gini", "theil_t", "theil_l", "cv", "williamson", "hoover", "max_min"]
    cols = [c for c in cols if any(c in e for e in entries.values())]
    head = ["year", "n", *cols, "atk(0.5)", "atk(1)", "atk(2)"]
    has_dec = any("decomposition" in e for e in entries.values())
    has_sg = any("spatial_gini" in e for e in entries.values())
    if has_dec:
        head += ["between", "between%", "p(between)"]
    if has_sg:
        head += ["polarization", "p(spatial)"]
    out.write("\t".join(head) + "\n")
    for year, e in entries.items():
        row = [year or "-", str(e["n"]), *(_fmt(e.get(c)) for c in cols)]
        row += [_fmt(e["atkinson"][k]) for k in ("0.5", "1", "2")]
        if has_dec:
            d = e["decomposition"]
            share = d["between_share"]
            row += [_fmt(d["between"]), "-" if share is None else f"{100 * share:.1f}"]
            row += [_fmt(d["p_value"])]
        if has_sg:
            s = e["spatial_gini"]
            row += [_fmt(s["polarization"]), _fmt(s["p_value"])]
        out.write("\t".join(row) + "\n")
    if result["mode"] == "indicators":
        out.write(f"run: {result['run_id']}  regions: {result['n']}")
        if result["excluded_regions"]:
            out.write(f"  excluded: {len(result['excluded_regions'])}")
        out.write("\n")
        conv = result.get("convergence")
        if conv:
            sig = conv["sigma"]["cv"]
            out.write(
                f"sigma convergence {conv['first_year']}-{conv['last_year']}: CV slope "
                f"{sig['slope']:.5f}/yr ({'converging' if sig['converging'] else 'diverging'})\n"
            )
            b = conv["beta"]
            if b:
                out.write(
                    f"beta convergence: beta {b['beta']:.5f} (se {b['stderr']:.5f}), speed "
                    f"{_fmt(b['speed'])}/yr, half-life {_fmt(b['half_life'])} years\n"
                )
            rm = conv["rank_mobility"]
            out.write(f"rank mobility: Kendall tau {_fmt(rm['kendall_tau'])}\n")
    for name, reason in next(iter(entries.values())).get("undefined", {}).items():
        out.write(f"note: {name}: {reason}\n")


def _context_kwargs(args: argparse.Namespace, assets: bool = True) -> dict:
    kw = {
        "boundaries": args.boundaries,
        "firms": args.firms,
        "indicators": args.indicators,
        "year": args.year,
    }
    if assets:
        kw["assets"] = args.assets
    return kw


def _compare(args: argparse.Namespace) -> int:
    from geocluster.analyses.territories import compare_regions

    result = compare_regions(open_ws(args), args.regions, **_context_kwargs(args))
    if args.json:
        print_json(result)
        return 0
    ids = result["ids"]
    names = [str(p["name"] or p["region_id"]) for p in result["regions"]]
    sys.stdout.write("\t".join(["metric", *names]) + "\n")
    for row in result["table"]:
        sys.stdout.write("\t".join([row["metric"], *(_fmt(row["values"][i]) for i in ids)]) + "\n")
    return 0


def _profile(args: argparse.Namespace) -> int:
    from geocluster.analyses.territories import region_profile

    p = region_profile(open_ws(args), args.region, **_context_kwargs(args))
    if args.json:
        print_json(p)
        return 0
    w = sys.stdout.write
    w(f"{p['name']} ({p['region_id']}), level {p['level']}, parent {p['parent_id']}\n")
    w(f"area: {_fmt(p['area_km2'])} km²\n")
    if p["population"]:
        w(f"population ({p['population']['year']}): {_fmt(p['population']['value'])}\n")
    if p["firms"]:
        f = p["firms"]
        w(
            f"firms: {f['count']} (rank {f['rank']} of {f['of']}), employees "
            f"{_fmt(f['employees'])}, {_fmt(f['density_per_km2'])} per km²\n"
        )
    if p["sectors"]:
        w(f"top sectors by LQ ({p['sectors']['measure']}):\n")
        for s in p["sectors"]["top"]:
            star = " strong" if s["strong"] else ""
            w(f"  {s['sector']} {s['title'] or ''}: LQ {_fmt(s['lq'])}{star}\n")
    if p["clusters"]:
        w(
            f"point clusters intersecting ({p['clusters']['run_id']}): {len(p['clusters']['items'])}\n"
        )
    if p["assets"]:
        cats = ", ".join(f"{k} {v}" for k, v in p["assets"]["by_category"].items())
        w(f"assets: {p['assets']['total']} ({cats or 'none'})\n")
    if p["indicators"]:
        for v in p["indicators"]["values"]:
            w(
                f"{v['indicator']} ({v['year']}): {_fmt(v['value'])}, rank {v['rank']} of "
                f"{v['of']}, Theil share {_fmt(v['theil_share'])}\n"
            )
    return 0


def _peers(args: argparse.Namespace) -> int:
    from geocluster.analyses.territories import peer_regions

    res = peer_regions(open_ws(args), args.region, k=args.k, **_context_kwargs(args, assets=False))
    if args.json:
        print_json(res)
        return 0
    used = ", ".join(f"{u['indicator']} ({u['year']})" for u in res["indicators"])
    sys.stdout.write(f"peers of {res['region_id']} on {used}:\n")
    for p in res["peers"]:
        sys.stdout.write(f"  {p['region_id']}\t{p['name'] or ''}\tdistance {_fmt(p['distance'])}\n")
    return 0
