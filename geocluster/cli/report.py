"""CLI: ``geocluster report REGION --boundaries ID --out report.pdf|report.html``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geocluster.cli._common import add_workspace_arg, open_ws


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``report``."""
    p = sub.add_parser(
        "report",
        help="write a region report (PDF or HTML) to hand out",
        description="A region's profile, its indicators against its peers over time, its "
        "clusters (of the named clusters run) with their ranking components, "
        "specialisation, inequality, assets and gaps, SDG proxies, baseline -> follow-up "
        "cluster change, support institutions and gaps, dynamics, shift-share, complexity, "
        "a locator map and the exact inputs. "
        "An input left out is used only when it is the only candidate.",
    )
    p.add_argument("region_id", metavar="REGION", help="region id, e.g. MX-OAX")
    p.add_argument("--boundaries", help="boundaries dataset id")
    p.add_argument("--clusters-run", dest="clusters_run", help="clusters run id")
    p.add_argument("--indicators", help="indicators dataset id")
    p.add_argument("--firms", help="firms dataset id")
    p.add_argument("--assets", help="assets dataset id")
    p.add_argument("--change-run", dest="change_run", help="change run (baseline -> follow-up)")
    p.add_argument("--institutions-run", dest="institutions_run", help="institutions run")
    p.add_argument("--dynamics-run", dest="dynamics_run", help="dynamics run")
    p.add_argument("--shiftshare-run", dest="shiftshare_run", help="shiftshare run")
    p.add_argument("--relatedness-run", dest="relatedness_run", help="relatedness run")
    p.add_argument(
        "--out", required=True, help="output file; .pdf writes a PDF, .html an HTML page"
    )
    add_workspace_arg(p)
    p.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from geocluster.errors import InvalidInput
    from geocluster.report import build_report

    out = Path(args.out)
    fmt = out.suffix.lower().lstrip(".")
    fmt = "html" if fmt == "htm" else fmt
    if fmt not in ("pdf", "html"):
        raise InvalidInput(f"expected --out ending in .pdf or .html, got {out.name!r}")
    content = build_report(
        open_ws(args),
        args.region_id,
        f=fmt,
        boundaries=args.boundaries,
        clusters_run=args.clusters_run,
        indicators=args.indicators,
        firms=args.firms,
        assets=args.assets,
        change_run=args.change_run,
        institutions_run=args.institutions_run,
        dynamics_run=args.dynamics_run,
        shiftshare_run=args.shiftshare_run,
        relatedness_run=args.relatedness_run,
    )
    try:
        out.write_bytes(content)
    except OSError as exc:
        raise InvalidInput(f"cannot write {out.name!r}: {exc.strerror}") from None
    sys.stdout.write(f"wrote {out} ({len(content):,} bytes)\n")
    return 0
