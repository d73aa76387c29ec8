"""CLI: ``ingest``, ``datasets``, ``serve``, ``demo``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from geocluster.cli._common import (
    add_engine_args,
    add_workspace_arg,
    engine_choice,
    one_shot_memory_pool,
    open_ws,
    print_json,
    progress_bar,
    store_url,
)
from geocluster.ingest import IngestOptions

#: IngestOptions keys that are CLI flags (CONTRACT.md: the flag's name in snake case);
#: the size limit is the server's business, not a flag.
INGEST_OPTIONS = tuple(f.name for f in fields(IngestOptions) if f.metadata.get("cli", True))

_GROUPS = {
    "crs": None,
    "coordinates": "coordinates (default: auto-detected)",
    "columns": "columns (default: auto-detected)",
    "file": "file",
    "bounds": "plausibility bounds (rows outside are rejected)",
}


def _add_option_flags(p: argparse.ArgumentParser) -> None:
    """One flag per :class:`IngestOptions` field, from its metadata (the one declaration)."""
    groups: dict[str, argparse._ActionsContainer] = {}
    for f in fields(IngestOptions):
        if f.name not in INGEST_OPTIONS:
            continue
        group = f.metadata.get("group", "columns")
        if group not in groups:
            title = _GROUPS.get(group, group)
            groups[group] = p if title is None else p.add_argument_group(title)
        kwargs: dict = {"help": f.metadata.get("help"), "dest": f.name}
        if f.metadata.get("type") is int:
            kwargs["type"] = int
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        groups[group].add_argument("--" + f.name.replace("_", "-"), **kwargs)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``ingest``, ``datasets``, ``serve`` and ``demo``."""
    p = sub.add_parser(
        "ingest",
        help="read, validate and store firms, assets, boundaries or indicators",
        description="Ingest a file into the workspace. Rejected rows are reported (exit 0); "
        "an unusable file or option exits 2 and stores nothing.",
    )
    p.add_argument("kind", choices=("firms", "assets", "boundaries", "indicators", "institutions"))
    p.add_argument(
        "path",
        help="CSV/TSV, XLSX, GeoJSON, GPKG, zipped Shapefile, GeoParquet, FlatGeobuf or OSM PBF",
    )
    add_workspace_arg(p)
    p.add_argument("--name", help="dataset name (default: file name); reusing one adds a version")
    _add_option_flags(p)
    p.add_argument("--json", action="store_true", help="print the dataset summary as JSON")
    p.set_defaults(handler=_ingest)

    p = sub.add_parser("datasets", help="list the workspace's datasets")
    add_workspace_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_datasets)

    p = sub.add_parser("serve", help="serve the API and the web map")
    add_workspace_arg(p)
    add_engine_args(p)
    p.add_argument("--host", default=None, help="default 127.0.0.1 ($GEOCLUSTER_HOST)")
    p.add_argument("--port", type=int, default=None, help="default 8000 ($GEOCLUSTER_PORT)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes (default: the number of cores; the workspace is safe "
        "across processes)",
    )
    p.set_defaults(handler=_serve)

    p = sub.add_parser("demo", help="build the demo workspace (Mexico + Helsinki) and serve it")
    add_workspace_arg(p)
    p.add_argument("--no-serve", action="store_true", help="build only, do not serve")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_demo)


def _ingest(args: argparse.Namespace) -> int:
    one_shot_memory_pool()
    ws = open_ws(args)
    options = {k: getattr(args, k) for k in INGEST_OPTIONS if getattr(args, k, None) is not None}
    with progress_bar(not args.json) as update:
        info = ws.ingest(args.kind, args.path, name=args.name, options=options, progress=update)
    summary = info.to_dict()
    if args.json:
        print_json(summary)
        return 0
    print(
        f"{info.kind} {info.id!r} v{info.version}: {info.rows:,} rows stored "
        f"({info.rejected_count:,} rejected) from {info.source}"
    )
    print(
        f"  bbox {_bbox(info.bbox)}  source CRS {info.source_crs}  working CRS {info.working_crs}"
    )
    for r in info.rejected[:20]:
        print(
            f"  rejected row {r['row']}"
            + (f" [{r['column']}]" if r["column"] else "")
            + f": {r['reason']}"
        )
    if info.rejected_count > 20:
        print(f"  … and {info.rejected_count - 20:,} more (use --json for all)")
    for w in info.warnings:
        print(f"  warning: {w}")
    return 0


def _datasets(args: argparse.Namespace) -> int:
    ws = open_ws(args)
    infos = ws.datasets()
    if args.json:
        print_json([i.to_dict() | {"rejected": i.rejected[:0]} for i in infos])
        return 0
    if not infos:
        print(f"no datasets in {ws.path}")
        return 0
    print(f"{'id':24} {'kind':11} {'ver':>3} {'rows':>10} {'rejected':>8}  source")
    for i in infos:
        print(
            f"{i.id:24} {i.kind:11} {i.version:>3} {i.rows:>10,} {i.rejected_count:>8,}  "
            f"{i.source or ''}"
        )
    return 0


def _serve(args: argparse.Namespace) -> int:
    serve_workspace(open_ws(args), args)
    return 0


def serve_workspace(ws, args: argparse.Namespace) -> None:
    """Serve ``ws`` with the flags of ``serve`` (workers, engine, store, host, port)."""
    from api.server import serve, settings_for_serve
    from geocluster.auth import check_serve_allowed

    settings = settings_for_serve(ws.path, getattr(args, "host", None), getattr(args, "port", None))
    engine, scheduler = engine_choice(args)
    settings = settings.model_copy(
        update={"store": store_url(args), "engine": engine, "dask_scheduler": scheduler}
    )
    # a non-loopback bind of a workspace without keys would publish it to the network
    check_serve_allowed(settings.host, ws.catalog)
    if ws.notice:
        print(f"geocluster: {ws.notice}", file=sys.stderr)
    serve(settings, workers=getattr(args, "workers", None))


def _demo(args: argparse.Namespace) -> int:
    from geocluster.demo import build_demo

    ws = open_ws(args)
    with progress_bar(not args.json) as update:
        summary = build_demo(ws.path, progress=update)
    if args.json:
        print_json([s.to_dict() if hasattr(s, "to_dict") else s for s in summary])
    else:
        print(f"demo workspace ready in {ws.path}:")
        for s in summary:
            d = s.to_dict() if hasattr(s, "to_dict") else s
            if d.get("kind") == "run":
                status = d.get("status", "")
                detail = f"  {d['detail']}" if status != "ok" and d.get("detail") else ""
                print(
                    f"  {'analysis':12} {d.get('label') or d.get('analysis', ''):28} {status:>8}  "
                    f"{d.get('id') or ''}{detail}"
                )
            else:
                print(f"  {d['kind']:12} {d['id']:28} {d['rows']:>8,} rows")
        from geocluster.demo import demo_links

        links = demo_links(ws)
        if links:  # the UNIDO cycle: every layer of the map and the Oaxaca report
            print(f"  map of the UNIDO cycle: {links['map']}")
            print(f"  Oaxaca report: {links['report']}")
    sys.stdout.flush()
    if args.no_serve:
        return 0
    serve_workspace(ws, args)
    return 0


def _bbox(b: list[float] | None) -> str:
    return "—" if not b else "[" + ", ".join(f"{v:.4f}" for v in b) + "]"
